package orgkey

import (
	"bytes"
	"testing"
)

// FuzzParse: Parse never panics, accepts only what it can print back, and a key it
// accepts parses again to itself from its printed form.
func FuzzParse(f *testing.F) {
	k, _ := Generate(bytes.NewReader(bytes.Repeat([]byte{0x5a}, 17)))
	for _, s := range []string{k.Reveal(), "", "OK1-", "ok1 0000 0000", "0K1-IIII-LLLL-OOOO-0000-1111-2222-3333", "OK1-UUUU"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := Parse(s)
		if err != nil {
			if err != ErrMalformed {
				t.Fatalf("unexpected error type %v", err)
			}
			return
		}
		again, err := Parse(key.Reveal())
		if err != nil || !again.Equal(key) {
			t.Fatalf("accepted key does not round-trip: %v", err)
		}
	})
}

// FuzzParseClaim: ParseClaim never panics and accepts only tokens that print back as given.
func FuzzParseClaim(f *testing.F) {
	tok, _ := NewClaimToken(bytes.NewReader(bytes.Repeat([]byte{7}, 32)))
	for _, s := range []string{tok.Reveal(), "", ClaimPrefix, "okc1_!!!!"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseClaim(s)
		if err != nil {
			return
		}
		if got.Reveal() != s {
			t.Fatal("accepted token changed")
		}
	})
}
