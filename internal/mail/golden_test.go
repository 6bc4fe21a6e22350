package mail

import (
	"encoding/json"
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mspvault/orgkey/internal/orgkey"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.json from the renderer")

// goldenMails renders every mail in both languages, with plain input and with input a
// renderer could get wrong (markup, quotes, plus signs, NUL, non-ASCII, a javascript:
// link, empty optional fields).
func goldenMails(t *testing.T) map[string]Message {
	t.Helper()
	random := strings.NewReader(strings.Repeat("golden input for deterministic keys ", 64))
	key, err := orgkey.Generate(random)
	if err != nil {
		t.Fatal(err)
	}
	token, err := orgkey.NewClaimToken(random)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 24, 10, 0, 0, 0, time.UTC)
	type input struct {
		name, company, url, ip string
	}
	inputs := map[string]input{
		"plain": {"Camille", "Acme", "https://vault.example.test", "203.0.113.7"},
		"hostile": {`<b>"Ca'mille"</b> + é` + "\x00", `Acme & Sons <script>alert(1)</script>`,
			`javascript:alert("x")`, `1.2.3.4"><img src=x>`},
		"url":   {"", "Acme", `https://vault.example.test/a b?q="é"&x=<1>#f'`, ""},
		"empty": {"", "", "", ""},
	}
	out := map[string]Message{}
	add := func(k string, m Message, err error) {
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
		out[k] = m
	}
	for _, locale := range []string{"fr", "en"} {
		for in, v := range inputs {
			p := locale + "/" + in + "/"
			m, err := ActivationMail(locale, "to@example.test", Activation{Name: v.name, Company: v.company, Key: key, AppURL: v.url})
			add(p+"activation", m, err)
			m, err = ResetMail(locale, "to@example.test", Reset{Name: v.name, Company: v.company, Key: key, KeyVersion: 3,
				TicketID: v.ip, Passwords: 2000, Users: 4, Accounts: 4, Sites: 0, ClaimLinks: 2, AppURL: v.url})
			add(p+"reset", m, err)
			m, err = RevealNoticeMail(locale, "to@example.test", RevealNotice{RecipientName: v.name, ViewerName: v.company,
				ViewerEmail: v.name + "@example.test", Company: v.company, At: now, SourceIP: v.ip, AppURL: v.url})
			add(p+"reveal", m, err)
			m, err = SendKeyMail(locale, "to@example.test", SendKey{Name: v.name, SenderName: v.company, OrgName: v.company,
				ClaimBaseURL: v.url, Token: token, ExpiresAt: now.Add(72 * time.Hour)}, now)
			add(p+"sendkey", m, err)
			m, err = KeyRequestMail(locale, "to@example.test", KeyRequest{AdminName: v.name, RequesterName: v.company,
				RequesterEmail: v.name + "@example.test", OrgName: v.company, SendURL: v.url})
			add(p+"request", m, err)
			m, err = ClaimRevokedMail(locale, "to@example.test", ClaimRevoked{AdminName: v.name, TargetName: v.company,
				TargetEmail: v.name + "@example.test", Attempts: 5, SendURL: v.url})
			add(p+"claimrevoked", m, err)
			m, err = ResetConfirmMail(locale, "to@example.test", ResetConfirm{Name: v.name, Company: v.company, TicketID: v.ip,
				BaseURL: v.url, Token: token, ConfirmBy: now.Add(72 * time.Hour), Passwords: 2000, Users: 4, Sites: 1, ClaimLinks: 2})
			add(p+"resetconfirm", m, err)
			m, err = ResetNoticeMail(locale, "to@example.test", ResetNotice{Name: v.name, Company: v.company, TicketID: v.ip,
				KeptAdmin: v.name + "@example.test", ConfirmBy: now.Add(72 * time.Hour), CoolOff: 24 * time.Hour,
				Passwords: 2000, Users: 4, Sites: 1, ClaimLinks: 2, AppURL: v.url})
			add(p+"resetnotice", m, err)
		}
	}
	return out
}

// TestGolden pins every mail byte for byte: testdata/golden.json was written by the
// html/template renderer this package used before, so the plain renderer must say
// and escape exactly what it did. (The claim-link mail's new wording and the
// claim-revoked mail and the reset's confirmation and notice mails were written with -update by this renderer, after checking that
// their escaping matches the other mails'.)
func TestGolden(t *testing.T) {
	got := goldenMails(t)
	if *update {
		b, err := json.MarshalIndent(got, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile("testdata/golden.json", append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	b, err := os.ReadFile("testdata/golden.json")
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]Message
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Errorf("%d mails, golden has %d", len(got), len(want))
	}
	for k, w := range want {
		if g := got[k]; g != w {
			t.Errorf("%s differs from its golden:\n got %+q\nwant %+q", k, g, w)
		}
	}
}
