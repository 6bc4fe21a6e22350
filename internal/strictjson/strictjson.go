// Package strictjson is the one strict reading of JSON that every entry point of the
// service uses: HTTP bodies (internal/httpapi), the Cognito triggers and the schedule's
// event (internal/activation) and the console's reset event (internal/reset).
//
// encoding/json is lenient in ways an attacker can use: a repeated key silently keeps
// its last value (so a check of the first and a use of the last disagree), keys match
// struct fields case-insensitively ("TriggerSource" fills triggerSource, and so does
// the Kelvin sign's "\u212aey" fill "key"), and invalid UTF-8 becomes U+FFFD, a value
// the sender never sent. Check refuses all three before anything decodes; Object also
// hands members back by their exact names.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Kind is what was wrong.
type Kind string

const (
	Malformed   Kind = "malformed"    // not JSON, not one object, or data after it
	InvalidUTF8 Kind = "invalid_utf8" // bytes that are not UTF-8, anywhere
	Duplicate   Kind = "duplicate"    // a key twice in one object, in any case variant
	Unknown     Kind = "unknown"      // a key the shape does not have (Object only)
)

// Error is a refusal. Field is the offending key's path (a.b.c) for Duplicate and
// Unknown, cut to a readable length; it is the sender's own input, never a secret of
// ours.
type Error struct {
	Kind  Kind
	Field string
}

func (e *Error) Error() string {
	switch e.Kind {
	case Duplicate:
		return fmt.Sprintf("the field %q appears twice", e.Field)
	case Unknown:
		return fmt.Sprintf("unknown field %q", e.Field)
	case InvalidUTF8:
		return "not valid UTF-8"
	}
	return "not one valid JSON object"
}

// KindOf is the Kind of a refusal from this package, or "" for any other error.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return ""
}

// maxField bounds the field path an Error carries (and so what reaches a log).
const maxField = 64

// Check reports whether raw is exactly one JSON object, in valid UTF-8, with no key
// repeated within any object at any depth (keys compare case-folded, as encoding/json
// matches them), and nothing but white space after it.
func Check(raw []byte) error {
	if !utf8.Valid(raw) {
		return &Error{Kind: InvalidUTF8}
	}
	if !json.Valid(raw) {
		return &Error{Kind: Malformed}
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return &Error{Kind: Malformed}
	}
	type frame struct {
		object  bool
		wantKey bool
		seen    map[string]bool
		path    string
		key     string // the key whose value is being read
	}
	stack := []frame{{object: true, wantKey: true, seen: map[string]bool{}}}
	valueDone := func() {
		if top := &stack[len(stack)-1]; top.object {
			top.wantKey = true
		}
	}
	childPath := func() string {
		top := stack[len(stack)-1]
		if !top.object {
			return top.path
		}
		if top.path == "" {
			return top.key
		}
		return top.path + "." + top.key
	}
	for len(stack) > 0 {
		t, err := dec.Token()
		if err != nil {
			return &Error{Kind: Malformed}
		}
		top := &stack[len(stack)-1]
		if top.object && top.wantKey {
			if t == json.Delim('}') {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 {
					valueDone()
				}
				continue
			}
			k, _ := t.(string)
			f := Fold(k)
			if top.seen[f] {
				p := k
				if top.path != "" {
					p = top.path + "." + k
				}
				return &Error{Kind: Duplicate, Field: cut(p)}
			}
			top.seen[f] = true
			top.key, top.wantKey = k, false
			continue
		}
		switch t {
		case json.Delim('{'):
			stack = append(stack, frame{object: true, wantKey: true, seen: map[string]bool{}, path: childPath()})
		case json.Delim('['):
			stack = append(stack, frame{path: childPath()})
		case json.Delim(']'):
			stack = stack[:len(stack)-1]
			valueDone()
		default:
			valueDone()
		}
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return &Error{Kind: Malformed}
	}
	return nil
}

// Object checks raw (Check) and returns the members of its object by their exact
// names. known are the names the shape has. A key spelled like a known one in another
// case is refused as Unknown whatever allowUnknown says (encoding/json would take it
// for the known one); other keys are refused unless allowUnknown, which is for shapes
// AWS owns and may extend (Cognito's and EventBridge's events).
func Object(raw []byte, known []string, allowUnknown bool) (map[string]json.RawMessage, error) {
	if err := Check(raw); err != nil {
		return nil, err
	}
	var members map[string]json.RawMessage
	if err := json.Unmarshal(raw, &members); err != nil {
		return nil, &Error{Kind: Malformed}
	}
	for k := range members {
		if slices.Contains(known, k) {
			continue
		}
		if allowUnknown && !slices.ContainsFunc(known, func(n string) bool { return Fold(n) == Fold(k) }) {
			continue
		}
		return nil, &Error{Kind: Unknown, Field: cut(k)}
	}
	return members, nil
}

// String decodes a member that must be a JSON string; absent (nil) gives "", false.
func String(raw json.RawMessage) (string, bool) {
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '"' {
		return "", false
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// Fold maps every rune to the smallest of its simple case folds, so that keys that
// encoding/json treats as one field map to one string.
func Fold(s string) string {
	var b strings.Builder
	for _, r := range s {
		least := r
		for f := unicode.SimpleFold(r); f != r; f = unicode.SimpleFold(f) {
			least = min(least, f)
		}
		b.WriteRune(least)
	}
	return b.String()
}

func cut(s string) string {
	if len(s) <= maxField {
		return s
	}
	s = s[:maxField]
	for !utf8.ValidString(s) {
		s = s[:len(s)-1]
	}
	return s + "…"
}
