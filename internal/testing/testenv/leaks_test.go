package testenv_test

import (
	"crypto/rand"
	"strings"
	"testing"

	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

// The leak check finds a key in every form orgkey.Parse reads, and only that key.
func TestHoldsKeyInEveryParsedForm(t *testing.T) {
	k, err := orgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	other, err := orgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s := k.Reveal()
	compact := strings.ReplaceAll(s, "-", "")
	forms := map[string]string{
		"printed":            s,
		"lower case":         strings.ToLower(s),
		"no dashes":          compact,
		"lower, no dashes":   strings.ToLower(compact),
		"spaces":             strings.ReplaceAll(s, "-", " "),
		"zero for the O":     "0" + s[1:],
		"in a JSON log line": `{"msg":"x","k":"` + strings.ToLower(compact) + `"}`,
		"in an item, spaced": `{"ua":"curl ` + strings.ReplaceAll(s, "-", " ") + `"}`,
	}
	for name, text := range forms {
		if _, err := orgkey.Parse(text); err != nil && !strings.HasPrefix(name, "in ") {
			t.Fatalf("%s: Parse refuses it, so it is no form of the key: %v", name, err)
		}
		if !testenv.HoldsKey(text, k) {
			t.Errorf("%s: the key is not found in %q", name, text)
		}
		if testenv.HoldsKey(text, other) {
			t.Errorf("%s: another key is found", name)
		}
	}
}
