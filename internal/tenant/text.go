package tenant

import (
	"net/mail"
	"strings"
	"unicode"
	"unicode/utf8"
)

// PlainText reports whether s is text a person could have typed: valid UTF-8, no
// control characters, and no U+FFFD (what a JSON decoder makes of invalid UTF-8, so
// its presence means the input was corrupt).
func PlainText(s string) bool {
	if !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == utf8.RuneError {
			return false
		}
	}
	return true
}

// PlainID reports whether s is usable as an identifier: plain text without spaces.
func PlainID(s string) bool {
	return PlainText(s) && !strings.ContainsFunc(s, unicode.IsSpace)
}

// PlainEmail reports whether s is a bare email address (no display name, no
// comments, nothing around it).
func PlainEmail(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Address == s && a.Name == ""
}
