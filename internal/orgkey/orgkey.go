// Package orgkey owns the organization key as people see it: how it is generated, how
// it is printed so that a person can type it, and how a typed key is checked before any
// lookup. It also owns the one-time claim tokens that carry a key to a browser.
//
// A key is 135 bits from a cryptographic source, printed in Crockford's base32 (no I, L,
// O or U, so nothing is ambiguous) after a version prefix, with a check character
// (a polynomial code over GF(32)), in groups of four:
//
//	OK1-7F3K-Q2MZ-0C9D-XR4H-BW8E-T6N1-JY5A
//
// The check character catches every single-character typo and every swap of two
// neighbouring characters. Key values redact themselves in logs, fmt and JSON; only
// Reveal gives the text, and only code that must show or send a key calls it.
package orgkey

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// alphabet is Crockford's base32.
const alphabet = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

const (
	// Prefix names the format version of a key; a new format gets a new prefix.
	Prefix = "OK1"
	// dataChars is the number of random characters: 27 x 5 = 135 bits.
	dataChars = 27
	// groupSize is the number of characters between dashes.
	groupSize = 4
)

// Bits is the entropy of a key.
const Bits = dataChars * 5

// ErrMalformed is returned by Parse for anything that is not a well-formed key.
var ErrMalformed = errors.New("orgkey: not a valid organization key")

const redacted = "[REDACTED org key]"

// Key is an organization key. The zero Key is not a valid key.
type Key struct {
	canonical string // e.g. OK1-XXXX-...; empty for the zero Key
}

// Reveal returns the key's printed form. Call it only to show or send the key to a
// person entitled to it.
func (k Key) Reveal() string { return k.canonical }

// IsZero reports whether k is the zero Key.
func (k Key) IsZero() bool { return k.canonical == "" }

// Equal reports whether two keys are the same key.
func (k Key) Equal(o Key) bool { return k.canonical == o.canonical }

// String redacts the key, so that %v and %s never print it.
func (k Key) String() string { return redacted }

// GoString redacts the key, so that %#v never prints it.
func (k Key) GoString() string { return redacted }

// LogValue redacts the key in slog output.
func (k Key) LogValue() slog.Value { return slog.StringValue(redacted) }

// MarshalJSON redacts the key: a Key that reaches an encoder by accident prints nothing
// secret. Responses that must carry the key use Reveal explicitly.
func (k Key) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// MarshalText redacts the key for text encoders.
func (k Key) MarshalText() ([]byte, error) { return []byte(redacted), nil }

// Generate returns a new key drawn from random (crypto/rand.Reader in production).
func Generate(random io.Reader) (Key, error) {
	// 17 bytes = 136 bits; the last bit is dropped.
	var buf [17]byte
	if _, err := io.ReadFull(random, buf[:]); err != nil {
		return Key{}, fmt.Errorf("orgkey: reading randomness: %w", err)
	}
	digits := make([]byte, dataChars)
	var acc uint32
	var nbits uint
	j := 0
	for _, b := range buf {
		acc = acc<<8 | uint32(b)
		nbits += 8
		for nbits >= 5 && j < dataChars {
			nbits -= 5
			digits[j] = byte(acc>>nbits) & 31
			j++
		}
	}
	return fromDigits(digits), nil
}

// fromDigits builds the canonical form from data digit values (0..31).
func fromDigits(digits []byte) Key {
	chars := make([]byte, 0, len(digits)+1)
	for _, d := range digits {
		chars = append(chars, alphabet[d])
	}
	chars = append(chars, alphabet[checkDigit(digits)])
	var b strings.Builder
	b.WriteString(Prefix)
	for i, c := range chars {
		if i%groupSize == 0 {
			b.WriteByte('-')
		}
		b.WriteByte(c)
	}
	return Key{canonical: b.String()}
}

// Parse reads a key as a person typed it: case, spaces and dashes do not matter, and
// the look-alikes O, I and L read as 0, 1 and 1. A key with a wrong prefix, a wrong
// length, a character outside the alphabet or a wrong check character is refused with
// ErrMalformed, before anything is looked up. The error never repeats the input.
func Parse(s string) (Key, error) {
	if len(s) > 128 {
		return Key{}, ErrMalformed
	}
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ' || c == '\t':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		clean = append(clean, c)
	}
	// The prefix is letters and a digit; accept a zero typed for its O.
	if len(clean) < len(Prefix) {
		return Key{}, ErrMalformed
	}
	head := string(clean[:len(Prefix)])
	if head != Prefix && head != "0"+Prefix[1:] {
		return Key{}, ErrMalformed
	}
	body := clean[len(Prefix):]
	if len(body) != dataChars+1 {
		return Key{}, ErrMalformed
	}
	digits := make([]byte, len(body))
	for i, c := range body {
		d, ok := digitValue(c)
		if !ok {
			return Key{}, ErrMalformed
		}
		digits[i] = d
	}
	if checkDigit(digits[:dataChars]) != digits[dataChars] {
		return Key{}, ErrMalformed
	}
	return fromDigits(digits[:dataChars]), nil
}

// digitValue decodes one Crockford character (upper case), mapping look-alikes.
func digitValue(c byte) (byte, bool) {
	switch c {
	case 'O':
		return 0, true
	case 'I', 'L':
		return 1, true
	}
	if i := strings.IndexByte(alphabet, c); i >= 0 {
		return byte(i), true
	}
	return 0, false
}

// checkDigit returns the character that makes the whole key a codeword of a
// polynomial code over GF(32): reading the digits d0..dn as coefficients, the sum of
// d_i * alpha^(n-i) is zero, where alpha is a primitive element (x^5 + x^2 + 1). A
// single substitution adds e*alpha^k (non-zero); a swap of two neighbours adds
// (a-b)*alpha^k*(alpha-1) (non-zero, as alpha != 1). The powers of alpha are distinct
// for fewer than 31 positions, so both are always caught (Luhn mod 32 misses "0Z").
func checkDigit(digits []byte) byte {
	return mulAlpha(horner(digits))
}

// horner evaluates the digits as a polynomial at alpha in GF(32).
func horner(digits []byte) byte {
	var acc byte
	for _, d := range digits {
		acc = mulAlpha(acc) ^ d
	}
	return acc
}

// mulAlpha multiplies by alpha in GF(32) modulo x^5 + x^2 + 1.
func mulAlpha(x byte) byte {
	x <<= 1
	if x&0x20 != 0 {
		x ^= 0x25
	}
	return x
}

// canonicalLen is the length of a key's printed form.
const canonicalLen = len(Prefix) + (dataChars+1)/groupSize*(groupSize+1)

// Find returns the first well-formed key printed in canonical form in s (a mail body,
// a log). Tests use it to read a mailed key and to scan output for leaked keys.
func Find(s string) (Key, bool) {
	for i := 0; ; {
		j := strings.Index(s[i:], Prefix+"-")
		if j < 0 {
			return Key{}, false
		}
		i += j
		if end := i + canonicalLen; end <= len(s) {
			if k, err := Parse(s[i:end]); err == nil {
				return k, true
			}
		}
		i += len(Prefix)
	}
}
