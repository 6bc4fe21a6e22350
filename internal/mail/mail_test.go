package mail

import (
	"bytes"
	"crypto/rand"
	"log/slog"
	"strings"
	"testing"

	"github.com/mspvault/orgkey/internal/orgkey"
)

func TestLanguage(t *testing.T) {
	for in, want := range map[string]string{
		"fr": "fr", "fr-FR": "fr", "FR_ca": "fr", " fr-BE ": "fr",
		"en": "en", "en-GB": "en", "de": "en", "": "en", "fro": "en", "french": "en",
	} {
		if got := Language(in); got != want {
			t.Errorf("Language(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestActivationMailEscapesAndCarriesKey(t *testing.T) {
	key, _ := orgkey.Generate(rand.Reader)
	m, err := ActivationMail("en", "a@example.test", Activation{
		Name: "<script>alert(1)</script>", Company: "Acme & Sons", Key: key, AppURL: "https://vault.example.test",
	})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(m.HTML, "<script>") || !strings.Contains(m.HTML, "Acme &amp; Sons") {
		t.Error("HTML body does not escape user input")
	}
	if !strings.Contains(m.Text, key.Reveal()) || !strings.Contains(m.HTML, key.Reveal()) {
		t.Error("mail lacks the key")
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("sent", "mail", m)
	if strings.Contains(logs.String(), key.Reveal()) || !strings.Contains(logs.String(), m.Subject) {
		t.Errorf("logged message: %s", logs.String())
	}
}

func TestActivationMailLanguages(t *testing.T) {
	key, _ := orgkey.Generate(rand.Reader)
	for _, tc := range []struct{ locale, subject, safety string }{
		{"fr-FR", "Activation du compte terminée", "Conservez-la en lieu sûr"},
		{"en", "Account activation complete", "Keep it safe"},
	} {
		m, err := ActivationMail(tc.locale, "a@example.test", Activation{Company: "Acme", Key: key})
		if err != nil {
			t.Fatal(err)
		}
		if m.Subject != tc.subject || !strings.Contains(m.Text, tc.safety) {
			t.Errorf("%s: subject %q, text lacks %q", tc.locale, m.Subject, tc.safety)
		}
	}
}
