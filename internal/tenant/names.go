package tenant

import (
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

// NormalizeName is the one form names (of organizations and people) are stored and
// compared in: Unicode NFC (so "é" typed as e + U+0301 and "é" typed at once are one
// name), every Unicode space (no-break, narrow, ideographic...) as a plain space, and
// trimmed. Nothing else changes: two spaces stay two, case stays. Support types an
// organization's name back to confirm a reset; what they see and type must be what
// is stored.
func NormalizeName(s string) string {
	s = norm.NFC.String(s)
	s = strings.Map(func(r rune) rune {
		if unicode.Is(unicode.Zs, r) {
			return ' '
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// Why a name is refused (NameProblem).
const (
	NameInvalidUTF8 = "invalid_utf8"
	NameControl     = "control"     // C0/C1 controls, line and paragraph separators
	NameInvisible   = "invisible"   // format characters (zero-width, bidi overrides, BOM, soft hyphen, tags), other default-ignorables (Hangul fillers...), variation selectors
	NamePrivateUse  = "private_use" // private-use code points: they render as whatever a font puts there
	NameUnassigned  = "unassigned"  // unassigned code points and noncharacters, U+FFFD (what a decoder makes of broken input)
)

// NameProblem says why s cannot be a name, or "" when it can: it must be UTF-8 and
// hold only characters a reader can see and tell apart from their absence. Invisible
// characters make two names that look the same differ (support could not type one
// back), and bidi overrides make a name display in another order than it reads
// ("Acme\u202eTI" shows as "AcmeIT" reversed).
func NameProblem(s string) string {
	if !utf8.ValidString(s) {
		return NameInvalidUTF8
	}
	for _, r := range s {
		switch {
		case r == utf8.RuneError:
			return NameUnassigned
		case unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp):
			return NameControl
		case unicode.In(r, unicode.Cf, unicode.Other_Default_Ignorable_Code_Point, unicode.Variation_Selector):
			return NameInvisible
		case unicode.Is(unicode.Co, r):
			return NamePrivateUse
		case unicode.Is(unicode.Noncharacter_Code_Point, r) || !assigned(r):
			return NameUnassigned
		}
	}
	return ""
}

// assigned reports whether r is an assigned code point in the Unicode version Go
// knows: one of the general categories other than Cn.
func assigned(r rune) bool {
	return unicode.In(r, unicode.L, unicode.M, unicode.N, unicode.P, unicode.S, unicode.Z, unicode.Cc, unicode.Cf, unicode.Co, unicode.Cs)
}

// NameLength is a name's length as a person counts it: code points after
// normalisation (Cognito counts custom attribute lengths in characters too).
func NameLength(s string) int { return utf8.RuneCountInString(s) }
