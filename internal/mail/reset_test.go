package mail

import (
	"bytes"
	"crypto/rand"
	"log/slog"
	"strings"
	"testing"

	"github.com/mspvault/orgkey/internal/orgkey"
)

func TestResetMail(t *testing.T) {
	key, _ := orgkey.Generate(rand.Reader)
	for _, tc := range []struct{ locale, subject, phrase string }{
		{"fr-FR", "Votre clé d'organisation a été remplacée", "2000 mots de passe"},
		{"en", "Your organization key was replaced", "4 sign-in accounts"},
		{"", "Your organization key was replaced", "version 3"},
	} {
		t.Run("locale="+tc.locale, func(t *testing.T) {
			m, err := ResetMail(tc.locale, "a@example.test", Reset{
				Name: "<b>Camille</b>", Company: "Acme & Sons", Key: key, KeyVersion: 3, TicketID: "SUP-1",
				Passwords: 2000, Users: 4, Accounts: 4, Sites: 3, ClaimLinks: 2, AppURL: "https://vault.example.test",
			})
			if err != nil {
				t.Fatal(err)
			}
			if m.Subject != tc.subject || !strings.Contains(m.Text, tc.phrase) {
				t.Errorf("subject %q, text lacks %q:\n%s", m.Subject, tc.phrase, m.Text)
			}
			if !strings.Contains(m.Text, key.Reveal()) || !strings.Contains(m.HTML, key.Reveal()) {
				t.Error("mail lacks the key")
			}
			if strings.Contains(m.HTML, "<b>Camille") || !strings.Contains(m.HTML, "Acme &amp; Sons") {
				t.Error("HTML body does not escape input")
			}
			var logs bytes.Buffer
			slog.New(slog.NewJSONHandler(&logs, nil)).Info("sent", "mail", m)
			if strings.Contains(logs.String(), key.Reveal()) {
				t.Error("the key reached a log line")
			}
		})
	}
}
