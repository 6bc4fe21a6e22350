package activation_test

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mspvault/orgkey/internal/tenant"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

// preSignUpEvent is events/activation-presignup.json for a fresh address, edited.
func preSignUpEvent(t *testing.T, email string, edit func(attrs map[string]string)) json.RawMessage {
	t.Helper()
	var ev events.CognitoEventUserPoolsPreSignup
	readEvent(t, "activation-presignup.json", &ev)
	ev.UserName = testenv.UniqueName("sub")
	ev.Request.UserAttributes["email"] = email
	if edit != nil {
		edit(ev.Request.UserAttributes)
	}
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// confirmed signs email up for real (PostConfirmation) and returns the sub.
func (f *fixture) confirmed(t *testing.T, email string) string {
	t.Helper()
	raw, sub, _ := signUpEvent(t, "en")
	var ev map[string]any
	json.Unmarshal(raw, &ev)
	ev["request"].(map[string]any)["userAttributes"].(map[string]any)["email"] = email
	raw, _ = json.Marshal(ev)
	if _, err := f.invoke(t, raw); err != nil {
		t.Fatalf("sign-up of %s: %v", email, err)
	}
	ledger.MailsTo(t, email) // the activation mail's key is documented for its creator
	return sub
}

func TestPreSignUp(t *testing.T) {
	f := newFixture(t, testenv.Get(t).NewTable(t))
	taken := testenv.UniqueName("taken") + "@example.test"
	f.confirmed(t, taken)
	attr := func(k, v string) func(map[string]string) {
		return func(a map[string]string) {
			if v == "<delete>" {
				delete(a, k)
			} else {
				a[k] = v
			}
		}
	}
	fresh := func() string { return testenv.UniqueName("new") + "@example.test" }
	for _, tc := range []struct {
		name   string
		email  string
		edit   func(map[string]string)
		reason string // "" for accepted
		text   string // part of the message the form shows
	}{
		{"a valid sign-up", fresh(), nil, "", ""},
		{"a name with an accent typed decomposed", fresh(), attr("custom:company_name", "Infoge\u0301rance"), "", ""},
		{"no company name", fresh(), attr("custom:company_name", "<delete>"), "missing_company_name", "Indiquez le nom de votre entreprise."},
		{"blank company name", fresh(), attr("custom:company_name", " \u00a0 "), "missing_company_name", "entreprise"},
		{"company name with a zero-width space", fresh(), attr("custom:company_name", "Acme\u200b IT"), "invalid_company_name", "invisibles"},
		{"company name of 129 characters", fresh(), attr("custom:company_name", strings.Repeat("é", 129)), "company_name_too_long", "128"},
		{"no name", fresh(), attr("name", "<delete>"), "missing_name", "Indiquez votre nom."},
		{"name with a bidi override", fresh(), attr("name", "Camille \u202eNitram"), "invalid_name", "invisibles"},
		{"an email with an account", taken, nil, "email_taken", "Un compte existe déjà"},
		{"an email with an account, in capitals", strings.ToUpper(taken), nil, "email_taken", "Un compte existe déjà"},
		{"an email with an account, English form", taken, attr("locale", "en-GB"), "email_taken", "An account already exists"},
		{"no locale: both languages", taken, attr("locale", "<delete>"), "email_taken", "An account already exists for this email address: sign in, or reset your password. / Un compte existe déjà"},
		{"an email with a zero-width space", "ali\u200bce@example.test", nil, "invalid_email", "adresse e-mail"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := preSignUpEvent(t, tc.email, tc.edit)
			out, err := f.invoke(t, raw)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				b, _ := json.Marshal(out)
				if !jsonEqual(t, b, raw) {
					t.Errorf("the event was not handed back unchanged: %s", b)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			if msg := err.Error(); !strings.HasPrefix(msg, tc.reason+": ") || !strings.Contains(msg, tc.text) {
				t.Errorf("message %q, want %s: ...%s...", msg, tc.reason, tc.text)
			}
		})
	}
	// PreSignUp writes nothing: only the one sign-up above is in the table.
	if n := len(f.items(t, "kind", "signup")); n != 1 {
		t.Errorf("%d sign-up records after PreSignUp calls, want 1", n)
	}
}

// An invitation (AdminCreateUser) needs no company name; its address must be free too.
func TestPreSignUpInvitation(t *testing.T) {
	f := newFixture(t, "")
	taken := testenv.UniqueName("member") + "@example.test"
	f.confirmed(t, taken)
	admin := func(a map[string]string) { delete(a, "custom:company_name"); delete(a, "name") }
	var ev map[string]any
	json.Unmarshal(preSignUpEvent(t, testenv.UniqueName("invited")+"@example.test", admin), &ev)
	ev["triggerSource"] = "PreSignUp_AdminCreateUser"
	raw, _ := json.Marshal(ev)
	if _, err := f.invoke(t, raw); err != nil {
		t.Errorf("an invitation without company name: %v", err)
	}
	json.Unmarshal(preSignUpEvent(t, taken, admin), &ev)
	ev["triggerSource"] = "PreSignUp_AdminCreateUser"
	raw, _ = json.Marshal(ev)
	if _, err := f.invoke(t, raw); err == nil || !strings.HasPrefix(err.Error(), "email_taken") {
		t.Errorf("an invitation of a member of another organization: %v", err)
	}
}

// A second sign-up of a person who has an organization (another Cognito account: the
// address in another case, or signed up again after deleting the account) makes no
// second membership, and is not left for the sweep to retry.
func TestSecondSignUpOfAPersonIsRefused(t *testing.T) {
	f := newFixture(t, testenv.Get(t).NewTable(t))
	email := testenv.UniqueName("alice") + "@example.test"
	first := f.confirmed(t, email)

	raw, second, _ := signUpEvent(t, "fr")
	var ev map[string]any
	json.Unmarshal(raw, &ev)
	ev["request"].(map[string]any)["userAttributes"].(map[string]any)["email"] = strings.ToUpper(email[:1]) + email[1:]
	raw, _ = json.Marshal(ev)
	_, err := f.invoke(t, raw)
	if err == nil || !strings.Contains(err.Error(), "email_taken: Un compte existe déjà") {
		t.Fatalf("second sign-up: %v", err)
	}
	if n := f.countKind(t, "org", "creatorId", second); n != 0 {
		t.Errorf("%d organizations for the second sign-up", n)
	}
	if n := f.countKind(t, "user", "email", email); n != 1 {
		t.Errorf("%d memberships of %s, want 1", n, email)
	}
	su, err := f.store.GetSignup(t.Context(), second)
	if err != nil || su.State != tenant.SignupRefused {
		t.Errorf("second sign-up record: %+v %v", su, err)
	}
	left, err := f.store.UnfinishedSignups(t.Context(), time.Now().Add(time.Hour), 100)
	if err != nil || len(left) != 0 {
		t.Errorf("left for the sweep: %+v %v", left, err)
	}
	// Cognito's retry of the refused one is refused the same way, and writes nothing.
	if _, err := f.invoke(t, raw); err == nil || !strings.Contains(err.Error(), "email_taken") {
		t.Errorf("retry: %v", err)
	}
	if holder, _, found, err := f.store.EmailHolder(t.Context(), strings.ToUpper(email)); err != nil || !found || holder != first {
		t.Errorf("the address is held by %q (%v, %v), want the first sign-up %q", holder, found, err, first)
	}
}

// Two sign-ups of one person at once (two Cognito accounts that PreSignUp let through
// before either had an organization) make one organization and one membership.
func TestRacingSignUpsOfOnePersonMakeOneOrganization(t *testing.T) {
	f := newFixture(t, testenv.Get(t).NewTable(t))
	email := testenv.UniqueName("race") + "@example.test"
	const racers = 4
	raws := make([]json.RawMessage, racers)
	subs := make([]string, racers)
	for i := range racers {
		raw, sub, _ := signUpEvent(t, "en")
		var ev map[string]any
		json.Unmarshal(raw, &ev)
		addr := email
		if i%2 == 1 {
			addr = strings.ToUpper(email)
		}
		ev["request"].(map[string]any)["userAttributes"].(map[string]any)["email"] = addr
		raws[i], _ = json.Marshal(ev)
		subs[i] = sub
	}
	errs := make([]error, racers)
	var wg sync.WaitGroup
	for i := range racers {
		wg.Go(func() { _, errs[i] = f.invoke(t, raws[i]) })
	}
	wg.Wait()
	// A transaction conflict is retried, as Cognito retries a failed trigger.
	for i := range racers {
		for try := 0; errs[i] != nil && !strings.Contains(errs[i].Error(), "email_taken") && try < 5; try++ {
			_, errs[i] = f.invoke(t, raws[i])
		}
	}
	won := 0
	for i, err := range errs {
		switch {
		case err == nil:
			won++
		case !strings.Contains(err.Error(), "email_taken"):
			t.Errorf("sign-up %d: %v", i, err)
		}
	}
	if won != 1 {
		t.Errorf("%d sign-ups succeeded, want 1", won)
	}
	orgs := 0
	for _, sub := range subs {
		orgs += f.countKind(t, "org", "creatorId", sub)
	}
	if orgs != 1 {
		t.Errorf("%d organizations, want 1", orgs)
	}
	if n := f.countKind(t, "user", "email", strings.ToLower(email)); n != 1 {
		t.Errorf("%d memberships, want 1", n)
	}
	// The SES store matches recipients case-insensitively: this counts both spellings.
	ledger.MailsTo(t, strings.ToUpper(email)) // whichever spelling won, the key is its creator's
	if n := len(ledger.MailsTo(t, email)); n != 1 {
		t.Errorf("%d activation mails, want 1", n)
	}
}

func TestNamesAreStoredNormalized(t *testing.T) {
	f := newFixture(t, "")
	raw, sub, email := signUpEvent(t, "fr")
	var ev map[string]any
	json.Unmarshal(raw, &ev)
	a := ev["request"].(map[string]any)["userAttributes"].(map[string]any)
	a["custom:company_name"], a["name"] = "  Infoge\u0301rance\u00a0Martin SARL ", "Ce\u0301line "
	raw, _ = json.Marshal(ev)
	if _, err := f.invoke(t, raw); err != nil {
		t.Fatal(err)
	}
	ledger.MailsTo(t, email)
	su, err := f.store.GetSignup(t.Context(), sub)
	if err != nil {
		t.Fatal(err)
	}
	org, err := f.store.GetOrg(t.Context(), su.TenantID)
	if err != nil {
		t.Fatal(err)
	}
	if org.Name != "Infogérance Martin SARL" || su.Name != "Céline" {
		t.Errorf("stored %q / %q", org.Name, su.Name)
	}
	u, err := f.store.GetUser(t.Context(), su.TenantID, sub)
	if err != nil || u.Name != "Céline" {
		t.Errorf("admin %+v %v", u, err)
	}
}
