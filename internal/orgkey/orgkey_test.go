package orgkey

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/bits"
	"strings"
	"testing"
)

func mustGenerate(t testing.TB) Key {
	t.Helper()
	k, err := Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestGenerateShape(t *testing.T) {
	k := mustGenerate(t)
	s := k.Reveal()
	groups := strings.Split(s, "-")
	if groups[0] != Prefix || len(groups) != 8 {
		t.Fatalf("key %q: want prefix %s and 7 groups", s, Prefix)
	}
	for _, g := range groups[1:] {
		if len(g) != groupSize || strings.Trim(g, alphabet) != "" {
			t.Fatalf("key %q: group %q not 4 Crockford characters", s, g)
		}
	}
	if Bits < 128 {
		t.Fatalf("key entropy %d bits, want >= 128", Bits)
	}
}

func TestGenerateUsesAllRandomBits(t *testing.T) {
	// All-zero and all-one randomness give different keys in every data character,
	// so no data character is constant.
	zero, _ := Generate(bytes.NewReader(make([]byte, 17)))
	ones, _ := Generate(bytes.NewReader(bytes.Repeat([]byte{0xff}, 17)))
	z := strings.ReplaceAll(zero.Reveal(), "-", "")[len(Prefix):]
	o := strings.ReplaceAll(ones.Reveal(), "-", "")[len(Prefix):]
	for i := 0; i < dataChars; i++ {
		if z[i] == o[i] {
			t.Fatalf("data character %d does not depend on randomness", i)
		}
	}
	// 1000 keys are all different.
	seen := map[string]bool{}
	for i := 0; i < 1000; i++ {
		s := mustGenerate(t).Reveal()
		if seen[s] {
			t.Fatalf("duplicate key after %d draws", i)
		}
		seen[s] = true
	}
}

func TestGenerateShortRandomness(t *testing.T) {
	if _, err := Generate(bytes.NewReader(make([]byte, 3))); err == nil {
		t.Fatal("Generate with short randomness: want error")
	}
}

func TestParseAcceptsHumanVariants(t *testing.T) {
	k := mustGenerate(t)
	s := k.Reveal()
	variants := map[string]string{
		"canonical":   s,
		"lower case":  strings.ToLower(s),
		"no dashes":   strings.ReplaceAll(s, "-", ""),
		"spaces":      strings.ReplaceAll(s, "-", " "),
		"surrounding": "  " + s + "\t",
		"zero for O":  "0" + s[1:],
		"look-alikes": lookAlikes(s),
	}
	for name, in := range variants {
		t.Run(name, func(t *testing.T) {
			got, err := Parse(in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if !got.Equal(k) {
				t.Fatal("Parse returned another key")
			}
		})
	}
}

// lookAlikes replaces 0 and 1 in the data with O and l, as a person might type them.
func lookAlikes(s string) string {
	head, body := s[:len(Prefix)], s[len(Prefix):]
	body = strings.NewReplacer("0", "O", "1", "l").Replace(body)
	return head + body
}

func TestParseRejects(t *testing.T) {
	s := mustGenerate(t).Reveal()
	compact := strings.ReplaceAll(s, "-", "")
	cases := map[string]string{
		"empty":           "",
		"prefix only":     Prefix,
		"wrong prefix":    "OK2" + compact[3:],
		"short":           compact[:len(compact)-1],
		"long":            compact + "0",
		"U is not base32": compact[:5] + "U" + compact[6:],
		"punctuation":     compact[:5] + "!" + compact[6:],
		"non-ASCII":       compact[:5] + "é" + compact[7:],
		"huge":            strings.Repeat("A", 10000),
	}
	for name, in := range cases {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(in); err != ErrMalformed {
				t.Fatalf("Parse(%q) = %v, want ErrMalformed", in, err)
			}
		})
	}
}

// Every single-character substitution and every swap of two neighbouring distinct
// characters of the data and check part is caught, on many keys.
func TestParseCatchesTypos(t *testing.T) {
	for n := 0; n < 50; n++ {
		compact := strings.ReplaceAll(mustGenerate(t).Reveal(), "-", "")
		body := []byte(compact[len(Prefix):])
		for i := range body {
			for _, c := range []byte(alphabet) {
				if c == body[i] {
					continue
				}
				typo := append([]byte(nil), body...)
				typo[i] = c
				if _, err := Parse(Prefix + string(typo)); err == nil {
					t.Fatalf("substitution at %d (%c->%c) accepted", i, body[i], c)
				}
			}
			if i+1 < len(body) && body[i] != body[i+1] {
				typo := append([]byte(nil), body...)
				typo[i], typo[i+1] = typo[i+1], typo[i]
				if _, err := Parse(Prefix + string(typo)); err == nil {
					t.Fatalf("transposition at %d (%c%c) accepted", i, body[i], body[i+1])
				}
			}
		}
	}
}

func TestKeyRedacts(t *testing.T) {
	k := mustGenerate(t)
	secret := k.Reveal()
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "key", k, "struct", struct{ K Key }{k})
	js, _ := json.Marshal(map[string]any{"k": k})
	outputs := map[string]string{
		"%v":   fmt.Sprintf("%v", k),
		"%s":   fmt.Sprintf("%s", k), //lint:ignore S1025 the test is about what each fmt verb prints
		"%#v":  fmt.Sprintf("%#v", k),
		"%+v":  fmt.Sprintf("%+v", struct{ K Key }{k}),
		"slog": logs.String(),
		"json": string(js),
	}
	// Parse accepts any case, with or without separators: so must the check (a key
	// logged lower-cased without dashes is a leak too).
	fold := func(s string) string {
		return strings.Map(func(r rune) rune {
			switch {
			case r >= 'a' && r <= 'z':
				return r - 'a' + 'A'
			case r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
				return r
			}
			return -1
		}, s)
	}
	body := fold(secret[len(Prefix)+1:])
	for name, out := range outputs {
		if strings.Contains(out, secret) || strings.Contains(fold(out), body) {
			t.Errorf("%s leaks the key: %s", name, out)
		}
	}
}

func TestClaimToken(t *testing.T) {
	tok, err := NewClaimToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseClaim(tok.Reveal())
	if err != nil || got.Hash() != tok.Hash() {
		t.Fatalf("round trip: %v", err)
	}
	if len(tok.Hash()) != 64 || strings.Contains(tok.Hash(), tok.Reveal()[len(ClaimPrefix):]) {
		t.Fatal("hash is not a sha256 hex digest")
	}
	// one character changed
	s := []byte(tok.Reveal())
	s[10] ^= 1
	if other, err := ParseClaim(string(s)); err == nil && other.Hash() == tok.Hash() {
		t.Fatal("changed token hashes the same")
	}
	for _, bad := range []string{"", ClaimPrefix, "x" + tok.Reveal(), tok.Reveal() + "A", tok.Reveal()[:len(tok.Reveal())-1] + "*"} {
		if _, err := ParseClaim(bad); err != ErrMalformedClaim {
			t.Errorf("ParseClaim(%q) = %v, want ErrMalformedClaim", bad, err)
		}
	}
	if strings.Contains(fmt.Sprint(tok), tok.Reveal()) {
		t.Fatal("claim token prints itself")
	}
}

func TestClaimTokenEntropy(t *testing.T) {
	a, _ := NewClaimToken(rand.Reader)
	b, _ := NewClaimToken(rand.Reader)
	diff := 0
	for i := range a.Reveal() {
		diff += bits.OnesCount8(a.Reveal()[i] ^ b.Reveal()[i])
	}
	if a.Reveal() == b.Reveal() || diff < 50 {
		t.Fatal("two tokens are too alike")
	}
}

func TestFind(t *testing.T) {
	k := mustGenerate(t)
	if got, ok := Find("x OK1-ABCD and then: " + k.Reveal() + ". Done"); !ok || !got.Equal(k) {
		t.Fatal("Find missed the key")
	}
	if _, ok := Find("OK1-" + strings.ToLower(k.Reveal()[4:10])); ok {
		t.Fatal("Find accepted a fragment")
	}
	if _, ok := Find(""); ok {
		t.Fatal("Find in empty text")
	}
	if len(k.Reveal()) != canonicalLen {
		t.Fatalf("canonicalLen %d, key length %d", canonicalLen, len(k.Reveal()))
	}
}
