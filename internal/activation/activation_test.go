package activation_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/mspvault/orgkey/internal/activation"
	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/dev/emulators"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
	"github.com/mspvault/orgkey/internal/testing/faultinject"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

const mailFrom = "no-reply@orgkey.test"

// TestMain scans, after every test, every mail of the run with a key against every
// log line of the package's tests.
func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, ledger.Check(testenv.Need{Keys: true})))
}

// ledger is the package's leak check (testenv.Ledger): the keys mailed to their
// documented recipients (read through ledger.MailsTo), and every log line (logSink),
// checked by TestMain.
var ledger = testenv.NewLedger()

// logSink collects every log line of the package's tests.
var logSink = ledger.Logs

// fixture is one service wired to the emulators, with its own log buffer.
type fixture struct {
	env     *testenv.Env
	table   string
	store   *store.Store
	svc     *activation.Service
	handler *activation.Handler
	logs    *testenv.LogBuffer
}

// option arms a fault between the flow and AWS, in the aws.Config the handler is
// built from.
type option func(*faultinject.Injector)

// deadSES refuses every SES connection: SES is down.
func deadSES(in *faultinject.Injector) {
	in.Add(faultinject.Rule{Service: faultinject.SES, To: -1, Kind: faultinject.Unreachable})
}

// deadKMS refuses every KMS connection: KMS is down.
func deadKMS(in *faultinject.Injector) {
	in.Add(faultinject.Rule{Service: faultinject.KMS, To: -1, Kind: faultinject.Unreachable})
}

func newFixture(t *testing.T, table string, opts ...option) *fixture {
	t.Helper()
	env := testenv.Get(t)
	if table == "" {
		table = env.TableName
	}
	cfg := env.AWSConfig
	if len(opts) > 0 {
		in := &faultinject.Injector{}
		for _, o := range opts {
			o(in)
		}
		cfg = in.Apply(cfg)
	}
	logs := testenv.NewLogBuffer(logSink)
	h, err := activation.New(activation.Config{
		Common:       lambdamain.Common{TableName: table, KMSKeyID: env.KMSKeyID, MailFrom: mailFrom, AppURL: "https://vault.example.test"},
		CatchUpAfter: 120,
	}, cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(dynamodb.NewFromConfig(env.AWSConfig), table)
	return &fixture{env: env, table: table, store: st, svc: h.Service, handler: h, logs: logs}
}

// signUpEvent is events/activation-email.json for a fresh user.
func signUpEvent(t *testing.T, locale string) (raw json.RawMessage, sub, email string) {
	t.Helper()
	var ev events.CognitoEventUserPoolsPostConfirmation
	readEvent(t, "activation-email.json", &ev)
	sub = testenv.UniqueName("sub")
	email = testenv.UniqueName("creator") + "@example.test"
	ev.UserName = sub
	ev.Request.UserAttributes["sub"] = sub
	ev.Request.UserAttributes["email"] = email
	ev.Request.UserAttributes["cognito:email_alias"] = email
	ev.Request.UserAttributes["locale"] = locale
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return raw, sub, email
}

func readEvent(t *testing.T, name string, v any) []byte {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "events", name))
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return b
}

func (f *fixture) invoke(t *testing.T, raw json.RawMessage) (any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second) // Cognito's budget
	defer cancel()
	out, err := f.handler.Handle(ctx, raw)
	res, _ := json.Marshal(out)
	ledger.Text("answer", fmt.Sprintf("%s %v", res, err))
	return out, err
}

// keyIn reads the org key from a mail body.
func keyIn(t *testing.T, body string) orgkey.Key {
	t.Helper()
	k, ok := orgkey.Find(body)
	if !ok {
		t.Fatalf("no well-formed org key in mail:\n%s", body)
	}
	return k
}

// items returns every item of the table whose attribute attr is the string value.
func (f *fixture) items(t *testing.T, attr, value string) []map[string]ddbtypes.AttributeValue {
	t.Helper()
	var out []map[string]ddbtypes.AttributeValue
	for _, it := range f.env.Scan(t, f.table) {
		if v, ok := it[attr].(*ddbtypes.AttributeValueMemberS); ok && v.Value == value {
			out = append(out, it)
		}
	}
	return out
}

// countKind counts items of a kind ("org", "user", "signup") tied to a sub.
func (f *fixture) countKind(t *testing.T, kind, attr, sub string) int {
	n := 0
	for _, it := range f.items(t, attr, sub) {
		if k, ok := it["kind"].(*ddbtypes.AttributeValueMemberS); ok && k.Value == kind {
			n++
		}
	}
	return n
}

func TestActivationCreatesOrganizationAndMailsKey(t *testing.T) {
	cases := []struct {
		locale, subject, phrase string
	}{
		{"fr-FR", "Activation du compte terminée", "Voici votre clé d'organisation"},
		{"fr", "Activation du compte terminée", "Conservez-la en lieu sûr"},
		{"en-US", "Account activation complete", "This is your organization key"},
		{"de-DE", "Account activation complete", "Keep it safe"}, // other locales: English
		{"", "Account activation complete", "Keep it safe"},
	}
	for _, tc := range cases {
		t.Run("locale="+tc.locale, func(t *testing.T) {
			f := newFixture(t, "")
			raw, sub, email := signUpEvent(t, tc.locale)
			got, err := f.invoke(t, raw)
			if err != nil {
				t.Fatalf("Handle: %v", err)
			}
			// Cognito requires the event back unchanged.
			gotJSON, _ := json.Marshal(got)
			if !jsonEqual(t, gotJSON, raw) {
				t.Fatalf("handler changed the event:\n got %s\nwant %s", gotJSON, raw)
			}

			mails := ledger.MailsTo(t, email)
			if len(mails) != 1 {
				t.Fatalf("%d mails to the creator, want 1", len(mails))
			}
			m := mails[0]
			if m.Subject != tc.subject || !strings.Contains(m.From, mailFrom) {
				t.Errorf("mail from %q subject %q, want from %q subject %q", m.From, m.Subject, mailFrom, tc.subject)
			}
			if !strings.Contains(m.Text, tc.phrase) || !strings.Contains(m.HTML, tc.phrase) && !strings.Contains(m.HTML, htmlEscape(tc.phrase)) {
				t.Errorf("mail lacks %q in text or HTML", tc.phrase)
			}
			if !strings.Contains(m.Text, "Infogérance Martin SARL") {
				t.Errorf("mail does not name the company")
			}
			key := keyIn(t, m.Text)
			if !keyIn(t, m.HTML).Equal(key) {
				t.Fatal("text and HTML carry different keys")
			}

			// The organization, its admin and the sign-up exist, once.
			su, err := f.store.GetSignup(t.Context(), sub)
			if err != nil || su.State != tenant.SignupDone {
				t.Fatalf("sign-up %+v, %v: want done", su, err)
			}
			org, err := f.store.GetOrg(t.Context(), su.TenantID)
			if err != nil {
				t.Fatal(err)
			}
			if org.Name != "Infogérance Martin SARL" || org.KeyVersion != 1 || org.Status != tenant.Active || org.CreatorID != sub {
				t.Errorf("org = %+v", org)
			}
			admin, err := f.store.GetUser(t.Context(), org.ID, sub)
			if err != nil || admin.Role != tenant.OrgAdmin || admin.Email != email {
				t.Errorf("admin = %+v, %v", admin, err)
			}

			// Only the ciphertext is stored, and it decrypts to the mailed key.
			assertNotStoredInClear(t, f, key)
			unwrapped, err := (&keywrap.Unwrapper{KMS: kms.NewFromConfig(f.env.AWSConfig), KeyID: f.env.KMSKeyID}).
				Unwrap(t.Context(), org.ID, org.KeyVersion, org.WrappedKey)
			if err != nil || !unwrapped.Equal(key) {
				t.Fatalf("stored key does not unwrap to the mailed key: %v", err)
			}
			testenv.AssertKeyNotLogged(t, f.logs.String(), key)
			if !strings.Contains(f.logs.String(), `"outcome":"ok"`) || !strings.Contains(f.logs.String(), org.ID) {
				t.Errorf("log line lacks outcome or tenant: %s", f.logs.String())
			}
		})
	}
}

func htmlEscape(s string) string { return strings.ReplaceAll(s, "'", "&#39;") }

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatal(err)
	}
	xa, _ := json.Marshal(x)
	ya, _ := json.Marshal(y)
	return bytes.Equal(xa, ya)
}

// assertNotStoredInClear scans the whole table for the key's text.
func assertNotStoredInClear(t *testing.T, f *fixture, key orgkey.Key) {
	t.Helper()
	// Every attribute as text (strings as themselves, not as pointers), then the
	// binary ones as raw bytes.
	for k, item := range f.env.Dump(t, f.table) {
		if testenv.HoldsKey(item, key) {
			t.Fatalf("the org key is stored in clear in %s", k)
		}
	}
	for _, it := range f.env.Scan(t, f.table) {
		for name, av := range it {
			if b, ok := av.(*ddbtypes.AttributeValueMemberB); ok && testenv.HoldsKey(string(b.Value), key) {
				t.Fatalf("the org key is stored in clear in binary attribute %s", name)
			}
		}
	}
}

func TestConcurrentTriggersMakeOneOrganizationAndOneMail(t *testing.T) {
	f := newFixture(t, "")
	raw, sub, email := signUpEvent(t, "en")
	const tries = 8
	var wg sync.WaitGroup
	errs := make([]error, tries)
	for i := range tries {
		wg.Go(func() { _, errs[i] = f.invoke(t, raw) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("try %d: %v", i, err)
		}
	}
	// And Cognito's retry after all of them.
	if _, err := f.invoke(t, raw); err != nil {
		t.Fatal(err)
	}
	if n := f.countKind(t, "org", "creatorId", sub); n != 1 {
		t.Errorf("%d organizations, want 1", n)
	}
	if n := f.countKind(t, "user", "userId", sub); n != 1 {
		t.Errorf("%d admin users, want 1", n)
	}
	if n := f.countKind(t, "signup", "sub", sub); n != 1 {
		t.Errorf("%d sign-up records, want 1", n)
	}
	mails := ledger.MailsTo(t, email)
	if len(mails) != 1 {
		t.Fatalf("%d mails, want 1", len(mails))
	}
	testenv.AssertKeyNotLogged(t, f.logs.String(), keyIn(t, mails[0].Text))
}

func TestSESFailureThenRetrySendsOnce(t *testing.T) {
	raw, sub, email := signUpEvent(t, "fr")
	down := newFixture(t, "", deadSES)
	_, err := down.invoke(t, raw)
	if err == nil {
		t.Fatal("SES down: want an error so that Cognito retries")
	}
	if strings.Contains(err.Error(), "127.0.0.1") || strings.Contains(err.Error(), "dial") {
		t.Errorf("error shown to the user leaks internals: %v", err)
	}
	su, err := down.store.GetSignup(t.Context(), sub)
	if err != nil || su.State != tenant.SignupOrgCreated {
		t.Fatalf("after SES failure: sign-up %+v, %v; want org_created", su, err)
	}
	if _, err := down.store.GetOrg(t.Context(), su.TenantID); err != nil {
		t.Fatalf("organization must exist after SES failure: %v", err)
	}
	if n := len(ledger.MailsTo(t, email)); n != 0 {
		t.Fatalf("%d mails while SES is down", n)
	}

	// Cognito's retry, SES back: the mail goes out once, with the stored key
	// (read back from KMS, since this try did not make it).
	up := newFixture(t, "")
	for range 2 {
		if _, err := up.invoke(t, raw); err != nil {
			t.Fatal(err)
		}
	}
	mails := ledger.MailsTo(t, email)
	if len(mails) != 1 {
		t.Fatalf("%d mails after retries, want 1", len(mails))
	}
	key := keyIn(t, mails[0].Text)
	org, _ := up.store.GetOrg(t.Context(), su.TenantID)
	stored, err := (&keywrap.Unwrapper{KMS: kms.NewFromConfig(up.env.AWSConfig), KeyID: up.env.KMSKeyID}).Unwrap(t.Context(), org.ID, 1, org.WrappedKey)
	if err != nil || !stored.Equal(key) {
		t.Fatalf("mailed key is not the stored key: %v", err)
	}
	testenv.AssertKeyNotLogged(t, down.logs.String()+up.logs.String(), key)
}

func TestCatchUpFinishesWhatTriesLeft(t *testing.T) {
	table := testenv.Get(t).NewTable(t) // the sweep reads the whole pending index
	// Sign-up A: KMS was down on every try: recorded, no organization.
	rawA, subA, emailA := signUpEvent(t, "en")
	if _, err := newFixture(t, table, deadKMS).invoke(t, rawA); err == nil {
		t.Fatal("KMS down: want an error")
	}
	// Sign-up B: SES was down on every try: organization, no mail.
	rawB, subB, emailB := signUpEvent(t, "fr")
	if _, err := newFixture(t, table, deadSES).invoke(t, rawB); err == nil {
		t.Fatal("SES down: want an error")
	}
	// Sign-up C: finished normally; the sweep must leave it alone.
	rawC, _, emailC := signUpEvent(t, "en")
	if _, err := newFixture(t, table).invoke(t, rawC); err != nil {
		t.Fatal(err)
	}

	f := newFixture(t, table)
	for _, sub := range []string{subA, subB} {
		if _, err := f.store.GetSignup(t.Context(), sub); err != nil {
			t.Fatalf("sign-up %s not durable: %v", sub, err)
		}
	}
	var sched json.RawMessage = readEvent(t, "activation-catchup.json", nil)

	// Too early: the sweep leaves young sign-ups to Cognito's own retries.
	res, err := f.invoke(t, sched)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(activation.SweepResult); r.Found != 0 {
		t.Fatalf("early sweep found %d, want 0", r.Found)
	}

	later := time.Now().Add(10 * time.Minute)
	f.svc.Now = func() time.Time { return later }
	res, err = f.invoke(t, sched)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(activation.SweepResult); r.Found != 2 || r.Finished != 2 || r.Failed != 0 {
		t.Fatalf("sweep = %+v, want 2 found and finished", r)
	}
	for _, c := range []struct{ sub, email string }{{subA, emailA}, {subB, emailB}, {"", emailC}} {
		if n := len(ledger.MailsTo(t, c.email)); n != 1 {
			t.Errorf("%s: %d mails, want 1", c.email, n)
		}
		if c.sub == "" {
			continue
		}
		su, err := f.store.GetSignup(t.Context(), c.sub)
		if err != nil || su.State != tenant.SignupDone {
			t.Errorf("sign-up %s: %+v %v, want done", c.sub, su, err)
		}
		if n := f.countKind(t, "org", "creatorId", c.sub); n != 1 {
			t.Errorf("%d organizations for %s, want 1", n, c.sub)
		}
	}
	// A second sweep finds nothing left.
	res, err = f.invoke(t, sched)
	if err != nil {
		t.Fatal(err)
	}
	if r := res.(activation.SweepResult); r.Found != 0 {
		t.Fatalf("second sweep found %d, want 0", r.Found)
	}
}

func TestBadEventsChangeNothing(t *testing.T) {
	type mutate func(ev *events.CognitoEventUserPoolsPostConfirmation)
	attr := func(name, value string) mutate {
		return func(ev *events.CognitoEventUserPoolsPostConfirmation) {
			if value == "<delete>" {
				delete(ev.Request.UserAttributes, name)
			} else {
				ev.Request.UserAttributes[name] = value
			}
		}
	}
	cases := []struct {
		name   string
		mutate mutate
		raw    string // used instead of the event when set
		reason string
	}{
		{name: "missing email", mutate: attr("email", "<delete>"), reason: "missing_email"},
		{name: "empty email", mutate: attr("email", ""), reason: "missing_email"},
		{name: "invalid email", mutate: attr("email", "not-an-address"), reason: "invalid_email"},
		{name: "email with display name", mutate: attr("email", "Eve <eve@example.test>"), reason: "invalid_email"},
		{name: "missing company name", mutate: attr("custom:company_name", "<delete>"), reason: "missing_company_name"},
		{name: "blank company name", mutate: attr("custom:company_name", "   "), reason: "missing_company_name"},
		{name: "company name with NUL", mutate: attr("custom:company_name", "Acme\x00Corp"), reason: "invalid_company_name"},
		{name: "huge company name", mutate: attr("custom:company_name", strings.Repeat("x", 5000)), reason: "company_name_too_long"},
		{name: "company name with a zero-width space", mutate: attr("custom:company_name", "Acme\u200b IT"), reason: "invalid_company_name"},
		{name: "company name with a right-to-left override", mutate: attr("custom:company_name", "Acme \u202eTI"), reason: "invalid_company_name"},
		{name: "missing name", mutate: attr("name", "<delete>"), reason: "missing_name"},
		{name: "invalid UTF-8 name", mutate: attr("name", "Camille \xff"), reason: "invalid_name"},
		{name: "control character in name", mutate: attr("name", "Camille\u0007"), reason: "invalid_name"},
		{name: "invalid UTF-8 in raw JSON", raw: "{\"triggerSource\":\"PostConfirmation_ConfirmSignUp\",\"request\":{\"userAttributes\":{\"sub\":\"s-raw\",\"email\":\"raw@example.test\",\"custom:company_name\":\"Acme \xff\"}}}", reason: "invalid_utf8"},
		{name: "missing sub", mutate: attr("sub", "<delete>"), reason: "missing_sub"},
		{name: "unknown trigger", mutate: func(ev *events.CognitoEventUserPoolsPostConfirmation) { ev.TriggerSource = "PostConfirmation_Whatever" }},
		{name: "external provider sign-up", mutate: func(ev *events.CognitoEventUserPoolsPostConfirmation) {
			ev.TriggerSource = "PreSignUp_ExternalProvider"
		}},
		{name: "trigger source twice", raw: `{"triggerSource":"PostConfirmation_ConfirmForgotPassword","request":{"userAttributes":{"sub":"s-dup","email":"dup@example.test","name":"D","custom:company_name":"Dup"}},"triggerSource":"PostConfirmation_ConfirmSignUp"}`, reason: "duplicate"},
		{name: "trigger source twice in another case", raw: `{"TriggerSource":"PostConfirmation_ConfirmSignUp","triggerSource":"PostConfirmation_ConfirmForgotPassword","request":{"userAttributes":{"sub":"s-dup2","email":"dup2@example.test","name":"D","custom:company_name":"Dup"}}}`, reason: "duplicate"},
		{name: "not JSON", raw: `{"triggerSource": "PostConfirmation_ConfirmSignUp", `},
		{name: "JSON array", raw: `[1,2,3]`},
		{name: "JSON string", raw: `"hello"`},
		{name: "empty object", raw: `{}`},
		{name: "attributes of wrong type", raw: `{"triggerSource":"PostConfirmation_ConfirmSignUp","request":{"userAttributes":{"email":42}}}`},
	}
	// A table of its own, so that "nothing changed" is the whole table unchanged;
	// the package's tests run one at a time, so the mail count is exact too.
	env := testenv.Get(t)
	f := newFixture(t, env.NewTable(t))
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw, _, _ := signUpEvent(t, "en")
			if tc.raw != "" {
				raw = json.RawMessage(tc.raw)
			} else {
				var ev events.CognitoEventUserPoolsPostConfirmation
				json.Unmarshal(raw, &ev)
				tc.mutate(&ev)
				raw, _ = json.Marshal(ev)
			}
			table := env.Dump(t, f.table)
			mails := len(allMails(t))
			before := len(f.logs.String())
			_, err := f.invoke(t, raw)
			if err == nil {
				t.Fatal("want an error")
			}
			for _, d := range testenv.DiffDumps(table, env.Dump(t, f.table)) {
				t.Errorf("table changed: %s", d)
			}
			if n := len(allMails(t)) - mails; n != 0 {
				t.Errorf("%d mails sent", n)
			}
			line := f.logs.String()[before:]
			if !strings.Contains(line, `"outcome":"rejected"`) || !strings.Contains(line, `"level":"ERROR"`) {
				t.Errorf("no clear error in the log: %s", line)
			}
			if tc.reason != "" && !strings.Contains(line, tc.reason) {
				t.Errorf("log does not name the reason %q: %s", tc.reason, line)
			}
		})
	}
}

func TestForgotPasswordPassesThrough(t *testing.T) {
	f := newFixture(t, "")
	raw := json.RawMessage(readEvent(t, "activation-forgot-password.json", nil))
	var ev events.CognitoEventUserPoolsPostConfirmation
	json.Unmarshal(raw, &ev)
	got, err := f.invoke(t, raw)
	if err != nil {
		t.Fatal(err)
	}
	gotJSON, _ := json.Marshal(got)
	if !jsonEqual(t, gotJSON, raw) {
		t.Fatalf("event changed: %s", gotJSON)
	}
	if _, err := f.store.GetSignup(t.Context(), ev.Request.UserAttributes["sub"]); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("password reset recorded a sign-up: %v", err)
	}
}

// The sample events decode into aws-lambda-go's types and encode back to the same
// JSON: they are what Cognito and EventBridge send, for sam local invoke and tests.
func TestSampleEventsRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		file string
		v    any
	}{
		{"activation-email.json", &events.CognitoEventUserPoolsPostConfirmation{}},
		{"activation-forgot-password.json", &events.CognitoEventUserPoolsPostConfirmation{}},
		{"activation-catchup.json", &events.EventBridgeEvent{}},
		{"activation-presignup.json", &events.CognitoEventUserPoolsPreSignup{}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw := readEvent(t, tc.file, tc.v)
			back, err := json.Marshal(tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if !jsonEqual(t, back, raw) {
				t.Fatalf("round trip changed the event:\n got %s\nwant %s", back, raw)
			}
		})
	}
}

// allMails is every mail the SES emulator holds; a read error fails the test.
func allMails(t *testing.T) []emulators.Email {
	t.Helper()
	all, err := testenv.Get(t).Emails(t.Context())
	if err != nil {
		t.Fatalf("reading the SES store: %v", err)
	}
	return all
}
