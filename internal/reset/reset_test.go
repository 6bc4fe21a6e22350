package reset_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/smithy-go/middleware"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/dev/emulators"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/lambdamain"
	mailpkg "github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/reset"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
	"github.com/mspvault/orgkey/internal/testing/faultinject"
	"github.com/mspvault/orgkey/internal/testing/fixtures"
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

// faults fails or slows the store's DynamoDB writes, as an SDK middleware in the
// handler's aws.Config: counted once per call, before the SDK's retries, so that an
// injected failure is the call's answer.
type faults struct {
	batchCalls, transactCalls atomic.Int64
	failBatchAt               int64         // fail the n-th BatchWriteItem call (1-based); 0: never
	failTransactAt            int64         // fail the n-th TransactWriteItems call; 0: never
	batchDelay                time.Duration // added to every BatchWriteItem call
}

var errInjected = errors.New("injected failure")

// register is an aws.Config.APIOptions entry.
func (f *faults) register(stack *middleware.Stack) error {
	return stack.Initialize.Add(middleware.InitializeMiddlewareFunc("resetfaults",
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			switch in.Parameters.(type) {
			case *dynamodb.BatchWriteItemInput:
				if n := f.batchCalls.Add(1); n == f.failBatchAt {
					return middleware.InitializeOutput{}, middleware.Metadata{}, errInjected
				}
				if f.batchDelay > 0 {
					time.Sleep(f.batchDelay)
				}
			case *dynamodb.TransactWriteItemsInput:
				if n := f.transactCalls.Add(1); n == f.failTransactAt {
					return middleware.InitializeOutput{}, middleware.Metadata{}, errInjected
				}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
}

// fixture is one handler built by New on the emulators, with faults in its aws.Config
// (none armed unless an option or the test arms them) and its own log buffer.
type fixture struct {
	env     *testenv.Env
	table   string
	store   *store.Store // without faults, for assertions
	faults  *faults
	down    *faultinject.Injector
	svc     *reset.Service
	handler *reset.Handler
	logs    *testenv.LogBuffer
}

type option func(*fixture)

// deadSES and deadKMS refuse every connection to the service: it is down.
func deadSES(f *fixture) {
	f.down.Add(faultinject.Rule{Service: faultinject.SES, To: -1, Kind: faultinject.Unreachable})
}

func deadKMS(f *fixture) {
	f.down.Add(faultinject.Rule{Service: faultinject.KMS, To: -1, Kind: faultinject.Unreachable})
}

// deadCognito gives the reset a user pool whose endpoint refuses every connection:
// the accounts of a page are deleted before its users' items, so the run stops with
// the items in place. (The suites run without cognito-local; the e2e reset test
// deletes real accounts.)
func deadCognito(f *fixture) {
	cfg := f.env.AWSConfig.Copy()
	cfg.APIOptions = append(slices.Clip(cfg.APIOptions), f.down.Register)
	f.svc.Accounts = &reset.CognitoAccounts{Cognito: cognitoidentityprovider.NewFromConfig(cfg), PoolID: "us-east-1_SuitePool"}
	f.down.Add(faultinject.Rule{Service: "Cognito Identity Provider", To: -1, Kind: faultinject.Unreachable})
}

func failBatchAt(n int64) option    { return func(f *fixture) { f.faults.failBatchAt = n } }
func failTransactAt(n int64) option { return func(f *fixture) { f.faults.failTransactAt = n } }

func newFixture(t testing.TB, table string, opts ...option) *fixture {
	t.Helper()
	env := testenv.Get(t)
	if table == "" {
		table = env.TableName
	}
	f := &fixture{env: env, table: table, store: store.New(dynamodb.NewFromConfig(env.AWSConfig), table),
		faults: &faults{}, down: &faultinject.Injector{}, logs: testenv.NewLogBuffer(logSink)}
	// Both fault layers sit in the stack only; the retryer stays the SDK's, as in the
	// function.
	cfg := env.AWSConfig.Copy()
	cfg.APIOptions = append(slices.Clip(cfg.APIOptions), f.down.Register, f.faults.register)
	h, err := reset.New(reset.Config{
		Common:              lambdamain.Common{TableName: table, KMSKeyID: env.KMSKeyID, MailFrom: mailFrom, AppURL: "https://vault.example.test"},
		SafetyMarginSeconds: 2,
	}, cfg, slog.New(slog.NewJSONHandler(f.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	f.handler, f.svc = h, h.Service
	for _, o := range opts {
		o(f)
	}
	return f
}

// org is a seeded organization: the numbers of the "Done when".
type org struct {
	tenant.Org
	name    string
	oldKey  orgkey.Key
	admin   tenant.User   // the org admin support keeps
	others  []tenant.User // 4 more users: another org admin, a pro user, a site admin, a site user
	sites   []tenant.Site
	claims  []string // hashes of pending claim links
	vaultN  int
	oldBlob []byte
}

func seedOrg(t testing.TB, f *fixture, passwords int) *org {
	t.Helper()
	ctx := t.Context()
	sd := fixtures.New(f.store, &keywrap.Wrapper{KMS: kms.NewFromConfig(f.env.AWSConfig), KeyID: f.env.KMSKeyID})
	name := "Infogérance " + testenv.UniqueName("Martin") + " SARL"
	o, admin, key, err := sd.Organization(ctx, name, tenant.User{
		Email: testenv.UniqueName("camille") + "@example.test", Name: "Camille Martin", Locale: "fr-FR",
	})
	if err != nil {
		t.Fatal(err)
	}
	res := &org{Org: o, name: name, oldKey: key, admin: admin, vaultN: passwords, oldBlob: o.WrappedKey}
	for i := range 3 {
		s, err := sd.Site(ctx, o.ID, fmt.Sprintf("Client %d", i))
		if err != nil {
			t.Fatal(err)
		}
		res.sites = append(res.sites, s)
	}
	for _, r := range []tenant.Role{tenant.OrgAdmin, tenant.ProUser, tenant.SiteAdmin, tenant.SiteUser} {
		u, err := sd.User(ctx, o.ID, tenant.User{
			Email: testenv.UniqueName(string(r)) + "@example.test", Name: string(r), Role: r,
			Sites: []string{res.sites[0].ID},
		})
		if err != nil {
			t.Fatal(err)
		}
		res.others = append(res.others, u)
	}
	for _, u := range res.others[:3] {
		tok, err := orgkey.NewClaimToken(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		if err := f.store.PutClaim(ctx, store.Claim{
			Hash: tok.Hash(), TenantID: o.ID, UserID: u.ID, SentBy: admin.ID, KeyVersion: 1,
			CreatedAt: now, ExpiresAt: now.Add(time.Hour),
		}); err != nil {
			t.Fatal(err)
		}
		res.claims = append(res.claims, tok.Hash())
	}
	items := make([]store.VaultItem, passwords)
	for i := range items {
		items[i] = store.VaultItem{TenantID: o.ID, ID: fmt.Sprintf("pw-%05d", i), Data: []byte("ciphertext")}
	}
	if err := f.store.PutVaultItems(ctx, items); err != nil {
		t.Fatal(err)
	}
	return res
}

// event is events/support-reset.json (or the dry-run one) aimed at o.
func (o *org) event(t testing.TB, ticket string, dryRun bool) json.RawMessage {
	t.Helper()
	name := "support-reset.json"
	if dryRun {
		name = "support-reset-dry-run.json"
	}
	var ev map[string]any
	if err := json.Unmarshal(readEvent(t, name), &ev); err != nil {
		t.Fatal(err)
	}
	ev["tenantId"] = o.ID
	ev["ticketId"] = ticket
	ev["confirmOrganizationName"] = o.name
	ev["keepAdminEmail"] = o.admin.Email
	raw, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func readEvent(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func newTicket() string { return testenv.UniqueName("SUP") }

// invoke runs the handler with a Lambda-like deadline.
func (f *fixture) invoke(t testing.TB, raw json.RawMessage, timeout time.Duration) (*reset.Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	out, err := f.handler.Handle(ctx, raw)
	res, _ := json.Marshal(out)
	ledger.Text("answer", fmt.Sprintf("%s %v", res, err))
	return out, err
}

func (f *fixture) mustComplete(t *testing.T, raw json.RawMessage) *reset.Report {
	t.Helper()
	rep, err := f.invoke(t, raw, time.Minute)
	if err != nil {
		t.Fatalf("reset: %v", err)
	}
	if rep.Status != reset.StatusCompleted {
		t.Fatalf("status %s, want completed: %+v", rep.Status, rep)
	}
	return rep
}

// Subjects of the kept admin's mails (fr: the seeded admin's locale).
const (
	keyMailSubject     = "Votre clé d'organisation a été remplacée"
	confirmMailSubject = "Confirmez ou refusez la réinitialisation de votre clé d'organisation"
)

// mailsTo are the mails to addr whose subject starts with subject.
func mailsTo(t testing.TB, addr, subject string) []emulators.Email {
	t.Helper()
	var out []emulators.Email
	for _, m := range ledger.MailsTo(t, addr) {
		if strings.HasPrefix(m.Subject, subject) {
			out = append(out, m)
		}
	}
	return out
}

// notices are the scheduling's notices to addr (any language).
func notices(t testing.TB, addr string) []emulators.Email {
	t.Helper()
	return append(mailsTo(t, addr, "A reset of your organization key was requested"),
		mailsTo(t, addr, "Une réinitialisation de votre clé d'organisation a été demandée")...)
}

// confirmToken is the token of the latest confirmation link mailed to addr.
func confirmToken(t testing.TB, addr string) string {
	t.Helper()
	mails := mailsTo(t, addr, confirmMailSubject)
	if len(mails) == 0 {
		t.Fatalf("no confirmation mail to %s", addr)
	}
	_, tok, ok := strings.Cut(mails[len(mails)-1].Text, mailpkg.ResetConfirmPath+"#token=")
	if !ok {
		t.Fatalf("the confirmation mail holds no link:\n%s", mails[len(mails)-1].Text)
	}
	return strings.Fields(tok)[0]
}

// schedule invokes raw (dryRun false, a new ticket) and checks that it only scheduled
// the reset.
func (f *fixture) schedule(t testing.TB, raw json.RawMessage) *reset.Report {
	t.Helper()
	rep, err := f.invoke(t, raw, time.Minute)
	if err != nil {
		t.Fatalf("schedule: %v", err)
	}
	if rep.Status != reset.StatusPending || rep.ConfirmBy == nil || !rep.ConfirmationMailed || rep.Deleted != nil {
		t.Fatalf("schedule: %+v, want pending_confirmation with its link mailed", rep)
	}
	return rep
}

// confirm is the kept admin confirming by the mailed link.
func (f *fixture) confirm(t testing.TB, o *org) {
	t.Helper()
	if _, err := f.svc.Confirm(t.Context(), confirmToken(t, o.admin.Email), o.admin.ID, reset.Meta{SourceIP: "203.0.113.7"}); err != nil {
		t.Fatalf("confirm: %v", err)
	}
}

// confirmed schedules raw's reset and has the kept admin confirm it.
func (f *fixture) confirmed(t testing.TB, o *org, raw json.RawMessage) {
	t.Helper()
	f.schedule(t, raw)
	f.confirm(t, o)
}

func keyIn(t *testing.T, body string) orgkey.Key {
	t.Helper()
	k, ok := orgkey.Find(body)
	if !ok {
		t.Fatalf("no well-formed org key in mail:\n%s", body)
	}
	return k
}

func (f *fixture) counts(t *testing.T, o *org) store.ResetCounts {
	t.Helper()
	c, err := f.store.CountTenantData(t.Context(), o.ID, o.admin.ID)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var full = store.ResetCounts{Passwords: 2000, Users: 4, Sites: 3, ClaimLinks: 3}

// assertUntouched checks that o is as seeded: active, version 1, everything there,
// no reset recorded under ticket, no mail to the admin.
func (f *fixture) assertUntouched(t *testing.T, o *org, ticket string, want store.ResetCounts) {
	t.Helper()
	got, err := f.store.GetOrg(t.Context(), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != tenant.Active || got.KeyVersion != 1 || !bytes.Equal(got.WrappedKey, o.oldBlob) {
		t.Errorf("organization changed: status %s version %d", got.Status, got.KeyVersion)
	}
	if c := f.counts(t, o); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	if _, err := f.store.GetReset(t.Context(), ticket); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("a reset was recorded for %s (%v)", ticket, err)
	}
	if n := len(ledger.MailsTo(t, o.admin.Email)); n != 0 {
		t.Errorf("%d mails to the admin", n)
	}
}

// assertCompleted checks the state after a finished reset: exactly the organization
// (new key, active) and the kept admin remain; one mail, to the kept admin only,
// carries the stored key.
func (f *fixture) assertCompleted(t *testing.T, o *org, rep *reset.Report, wantVersion int) {
	t.Helper()
	ctx := t.Context()
	if *rep.Deleted != full {
		t.Errorf("report counts %+v, want %+v", *rep.Deleted, full)
	}
	if rep.OldKeyVersion != 1 || rep.NewKeyVersion != wantVersion || !rep.MailSent {
		t.Errorf("report versions %d -> %d (mail %v), want 1 -> %d", rep.OldKeyVersion, rep.NewKeyVersion, rep.MailSent, wantVersion)
	}
	got, err := f.store.GetOrg(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != tenant.Active || got.KeyVersion != wantVersion || got.Name != o.name {
		t.Errorf("organization after reset: status %s, version %d", got.Status, got.KeyVersion)
	}
	if c := f.counts(t, o); c != (store.ResetCounts{}) {
		t.Errorf("left after reset: %+v", c)
	}
	users, sites, err := f.store.Members(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(users) != 1 || users[0].ID != o.admin.ID || len(sites) != 0 {
		t.Errorf("members after reset: %d users (%v), %d sites; want only the kept admin", len(users), users, len(sites))
	}
	// The old ciphertext is gone from the whole table.
	f.assertBlobGone(t, o.oldBlob)
	// Old claim links fail.
	for _, h := range o.claims {
		if _, err := f.store.ConsumeClaim(ctx, h, o.ID, 1, time.Now()); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("old claim link still answers: %v", err)
		}
	}
	// One key mail, to the kept admin, in their language, with the stored key; besides
	// it, the confirmation's mail only.
	mails := mailsTo(t, o.admin.Email, keyMailSubject)
	if len(mails) != 1 {
		t.Fatalf("%d key mails to the kept admin, want 1", len(mails))
	}
	if all, confirms := len(ledger.MailsTo(t, o.admin.Email)), len(mailsTo(t, o.admin.Email, confirmMailSubject)); all != 1+confirms || confirms == 0 {
		t.Errorf("%d mails to the kept admin: %d confirmations and the key's, want only those", all, confirms)
	}
	m := mails[0]
	if m.Subject != keyMailSubject || !strings.Contains(m.From, mailFrom) {
		t.Errorf("mail %q from %q", m.Subject, m.From)
	}
	if !strings.Contains(m.Text, "2000 mots de passe") || !strings.Contains(m.Text, fmt.Sprintf("version %d", wantVersion)) {
		t.Errorf("mail lacks the summary:\n%s", m.Text)
	}
	key := keyIn(t, m.Text)
	unwrapped, err := (&keywrap.Unwrapper{KMS: kms.NewFromConfig(f.env.AWSConfig), KeyID: f.env.KMSKeyID}).
		Unwrap(ctx, o.ID, got.KeyVersion, got.WrappedKey)
	if err != nil || !unwrapped.Equal(key) {
		t.Fatalf("the mailed key is not the stored key: %v", err)
	}
	if key.Equal(o.oldKey) {
		t.Fatal("the key did not change")
	}
	for _, u := range o.others {
		if n := len(ledger.MailsTo(t, u.Email)) - len(notices(t, u.Email)); n != 0 {
			t.Errorf("%d mails but the scheduling's notices to deleted user %s", n, u.Role)
		}
	}
	// The audit trail survives, with the reset's start and end.
	recs, err := f.store.Audit(ctx, o.ID)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, r := range recs {
		actions = append(actions, r.Action)
	}
	if strings.Join(actions, ",") != strings.Join([]string{store.ActionResetScheduled, store.ActionResetConfirmed,
		store.ActionResetStarted, store.ActionResetCompleted}, ",") {
		t.Errorf("audit actions %v", actions)
	}
	testenv.AssertKeyNotLogged(t, f.logs.String(), key)
	testenv.AssertKeyNotLogged(t, f.logs.String(), o.oldKey)
}

func (f *fixture) assertBlobGone(t *testing.T, blob []byte) {
	t.Helper()
	for _, it := range f.env.Scan(t, f.table) {
		for _, av := range it {
			if b, ok := av.(*ddbtypes.AttributeValueMemberB); ok && bytes.Equal(b.Value, blob) {
				t.Fatal("the old wrapped key is still in the table")
			}
		}
	}
}

func TestDryRunChangesNothing(t *testing.T) {
	f := newFixture(t, "")
	o := seedOrg(t, f, 2000)
	ticket := newTicket()
	rep, err := f.invoke(t, o.event(t, ticket, true), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Status != reset.StatusDryRun || rep.WouldDelete == nil || *rep.WouldDelete != full || rep.Deleted != nil {
		t.Fatalf("dry run report %+v, want would-delete %+v", rep, full)
	}
	if rep.OldKeyVersion != 1 || rep.NewKeyVersion != 0 || rep.MailSent || rep.KeptAdminEmail != o.admin.Email {
		t.Errorf("dry run report %+v", rep)
	}
	f.assertUntouched(t, o, ticket, full)
	if !strings.Contains(f.logs.String(), `"outcome":"dry_run"`) {
		t.Errorf("log: %s", f.logs.String())
	}
}

func TestResetLeavesOnlyOrganizationAndKeptAdmin(t *testing.T) {
	f := newFixture(t, testenv.Get(t).NewTable(t))
	o := seedOrg(t, f, 2000)
	bystander := seedOrg(t, f, 50) // another tenant of the same table: untouched
	ticket := newTicket()
	raw := o.event(t, ticket, false)
	f.confirmed(t, o, raw)
	rep := f.mustComplete(t, raw)
	f.assertCompleted(t, o, rep, 2)
	if rep.TicketID != ticket || rep.TenantID != o.ID || rep.Agent == "" || rep.Runs != 1 || rep.FinishedAt == nil {
		t.Errorf("report %+v", rep)
	}
	f.assertUntouched(t, bystander, newTicket(), store.ResetCounts{Passwords: 50, Users: 4, Sites: 3, ClaimLinks: 3})

	// The same ticket again returns the finished report and changes nothing.
	again := f.mustComplete(t, o.event(t, ticket, false))
	if *again.Deleted != full || again.NewKeyVersion != 2 || !again.FinishedAt.Equal(*rep.FinishedAt) {
		t.Errorf("second invocation: %+v", again)
	}
	f.assertCompleted(t, o, again, 2)
	// The report is the JSON the console shows.
	b, _ := json.Marshal(again)
	for _, k := range []string{`"status":"completed"`, `"oldKeyVersion":1`, `"newKeyVersion":2`, `"passwords":2000`, `"claimLinks":3`, `"duration"`} {
		if !bytes.Contains(b, []byte(k)) {
			t.Errorf("report JSON lacks %s: %s", k, b)
		}
	}
}

// Each case breaks the first invocation at one step; the next invocation with the
// same event finishes with exact counts and one mail.
func TestResumeAfterFailure(t *testing.T) {
	cases := []struct {
		name        string
		opt         option
		wantVersion int // a resumed run that did not mail replaces the key once more
	}{
		{"KMS down before the key is replaced", deadKMS, 2},
		{"DynamoDB fails mid-deletion", failBatchAt(20), 3},
		{"DynamoDB fails on the first deletion batch", failBatchAt(1), 3},
		{"SES down after deletion", deadSES, 3},
		{"Cognito down while deleting accounts", deadCognito, 3},
		{"crash after the mail, before finishing", failTransactAt(3), 2}, // Start, ReplaceKey, Finish
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			table := testenv.Get(t).NewTable(t)
			f := newFixture(t, table)
			o := seedOrg(t, f, 2000)
			raw := o.event(t, newTicket(), false)
			f.confirmed(t, o, raw)
			broken := newFixture(t, table, tc.opt)
			_, err := broken.invoke(t, raw, time.Minute)
			if err == nil {
				t.Fatal("want the first invocation to fail")
			}
			if strings.Contains(err.Error(), "injected") || strings.Contains(err.Error(), "127.0.0.1") {
				t.Errorf("error shown to support leaks internals: %v", err)
			}
			if !strings.Contains(err.Error(), "invoke again with the same event") {
				t.Errorf("error does not say what to do: %v", err)
			}
			mid, err := broken.store.GetOrg(t.Context(), o.ID)
			if err != nil || mid.Status != tenant.Resetting {
				t.Fatalf("after the failure the organization is %s (%v), want resetting (key flows answer 409)", mid.Status, err)
			}

			rep := f.mustComplete(t, raw)
			if rep.Runs != 2 {
				t.Errorf("runs %d, want 2", rep.Runs)
			}
			f.assertCompleted(t, o, rep, tc.wantVersion)
		})
	}
}

func TestShortDeadlineReturnsInProgressThenResumes(t *testing.T) {
	table := testenv.Get(t).NewTable(t)
	f := newFixture(t, table)
	o := seedOrg(t, f, 2000)
	raw := o.event(t, newTicket(), false)
	f.confirmed(t, o, raw)

	// Slow storage and two lanes at a time: about 4 s of deletion work (a lane's
	// batches go out together, so each of the 35 lanes costs about one delay), cut
	// into invocations of 3 s with a 1.5 s safety margin. An invocation that ran past
	// its deadline would fail with the context's error (checked below), so the test
	// needs no wall-clock assertion and holds on a loaded machine too.
	f.faults.batchDelay = 250 * time.Millisecond
	f.svc.Workers = 2
	f.svc.SafetyMargin = 1500 * time.Millisecond
	var reports []*reset.Report
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("no completion after 100 invocations")
		}
		rep, err := f.invoke(t, raw, 3*time.Second)
		if err != nil {
			t.Fatalf("invocation %d: %v", i, err)
		}
		reports = append(reports, rep)
		if rep.Status == reset.StatusCompleted {
			break
		}
		if rep.Status != reset.StatusInProgress || rep.MailSent {
			t.Fatalf("invocation %d: %+v", i, rep)
		}
		if i > 0 && rep.Deleted.Passwords < reports[i-1].Deleted.Passwords {
			t.Fatalf("progress went backwards: %d then %d", reports[i-1].Deleted.Passwords, rep.Deleted.Passwords)
		}
	}
	if len(reports) < 3 {
		t.Fatalf("%d invocations: the deadline did not cut the reset", len(reports))
	}
	last := reports[len(reports)-1]
	// Every in_progress run replaced no key after the first; the finishing run, which
	// did not make the stored key, replaced it once more.
	f.assertCompleted(t, o, last, 3)
	if !strings.Contains(f.logs.String(), `"outcome":"in_progress"`) {
		t.Error("no in_progress log line")
	}
}

func TestSecondTicketRefusedWhileOneRuns(t *testing.T) {
	table := testenv.Get(t).NewTable(t)
	f := newFixture(t, table)
	o := seedOrg(t, f, 2000)
	first := newTicket()
	f.schedule(t, o.event(t, first, false))
	// While the first waits for its confirmation, a second ticket is refused.
	second := newTicket()
	_, err := f.invoke(t, o.event(t, second, false), time.Minute)
	var e *reset.Error
	if !errors.As(err, &e) || e.Code != apperr.Conflict || e.Reason != store.ReasonResetPending || !strings.Contains(e.Message, first) {
		t.Fatalf("second ticket while the first is pending: %v, want conflict reset_pending naming %s", err, first)
	}
	f.confirm(t, o)
	broken := newFixture(t, table, deadSES)
	if _, err := broken.invoke(t, o.event(t, first, false), time.Minute); err == nil {
		t.Fatal("want the first reset to stop (SES down)")
	}
	_, err = f.invoke(t, o.event(t, second, false), time.Minute)
	if !errors.As(err, &e) || e.Code != apperr.Conflict || e.Reason != store.ReasonResetRunning || !strings.Contains(e.Message, first) {
		t.Fatalf("second ticket: %v, want conflict reset_running naming %s", err, first)
	}
	if _, err := f.store.GetReset(t.Context(), second); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("the refused ticket was recorded (%v)", err)
	}
	// A dry run still counts, and says a reset is running.
	rep, err := f.invoke(t, o.event(t, second, true), time.Minute)
	if err != nil || rep.OrganizationStatus != string(tenant.Resetting) {
		t.Errorf("dry run during a reset: %+v, %v", rep, err)
	}
	// The same ticket against another organization is refused too.
	other := seedOrg(t, f, 10)
	if _, err := f.invoke(t, other.event(t, first, false), time.Minute); !errors.As(err, &e) || e.Reason != "ticket_reused" {
		t.Errorf("ticket reused on another organization: %v", err)
	}
	f.assertUntouched(t, other, second, store.ResetCounts{Passwords: 10, Users: 4, Sites: 3, ClaimLinks: 3})
	// The first ticket finishes.
	f.assertCompleted(t, o, f.mustComplete(t, o.event(t, first, false)), 3)

	// The refused ticket, invoked again once the first completed, is refused again:
	// one reset per request, the key the admin was mailed stays.
	mails := len(f.env.MailsTo(t, o.admin.Email))
	_, err = f.invoke(t, o.event(t, second, false), time.Minute)
	if !errors.As(err, &e) || e.Code != apperr.Conflict || e.Reason != store.ReasonResetRecentlyCompleted || !strings.Contains(e.Message, first) {
		t.Fatalf("second ticket after the first completed: %v, want conflict reset_recently_completed naming %s", err, first)
	}
	if _, err := f.store.GetReset(t.Context(), second); apperr.CodeOf(err) != apperr.NotFound {
		t.Errorf("the refused ticket was recorded (%v)", err)
	}
	if after, err := f.store.GetOrg(t.Context(), o.ID); err != nil || after.KeyVersion != 3 || after.Status != tenant.Active {
		t.Errorf("after the refusal the organization is %+v (%v), want key version 3, active", after, err)
	}
	if n := len(f.env.MailsTo(t, o.admin.Email)); n != mails {
		t.Errorf("the refused ticket mailed the admin (%d mails, then %d)", mails, n)
	}
}

func TestConcurrentInvocationsOfOneTicket(t *testing.T) {
	table := testenv.Get(t).NewTable(t)
	f := newFixture(t, table)
	o := seedOrg(t, f, 2000)
	raw := o.event(t, newTicket(), false)
	f.confirmed(t, o, raw)
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() { _, errs[i] = f.invoke(t, raw, time.Minute) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("invocation %d: %v", i, err)
		}
	}
	f.assertCompleted(t, o, f.mustComplete(t, raw), 2)
}

func TestBadInputRefusedAndChangesNothing(t *testing.T) {
	f := newFixture(t, "")
	o := seedOrg(t, f, 30)
	otherOrg := seedOrg(t, f, 1)
	want := store.ResetCounts{Passwords: 30, Users: 4, Sites: 3, ClaimLinks: 3}
	set := func(k string, v any) func(map[string]any) {
		return func(ev map[string]any) {
			if v == nil {
				delete(ev, k)
			} else {
				ev[k] = v
			}
		}
	}
	setVer := func(k string, v any) func(map[string]any) {
		return func(ev map[string]any) {
			ver := ev["verification"].(map[string]any)
			if v == nil {
				delete(ver, k)
			} else {
				ver[k] = v
			}
		}
	}
	cases := []struct {
		name   string
		edit   func(map[string]any)
		raw    func(ev []byte) string // used instead when set
		reason string
	}{
		{name: "unknown field", edit: set("force", true), reason: "invalid_input"},
		{name: "field in the wrong case", raw: func(ev []byte) string {
			return strings.Replace(string(ev), `"tenantId"`, `"TenantId"`, 1)
		}, reason: "invalid_input"},
		{name: "field twice", raw: func(ev []byte) string {
			return strings.Replace(string(ev), `"dryRun":false`, `"dryRun":true,"dryRun":false`, 1)
		}, reason: "invalid_input"},
		{name: "missing tenantId", edit: set("tenantId", nil), reason: "invalid_input"},
		{name: "missing ticketId", edit: set("ticketId", nil), reason: "invalid_input"},
		{name: "missing agent", edit: set("agent", nil), reason: "invalid_input"},
		{name: "missing verification", edit: set("verification", nil), reason: "invalid_input"},
		{name: "missing verification reference", edit: setVer("reference", nil), reason: "invalid_input"},
		{name: "unknown verification field", edit: setVer("by", "me"), reason: "invalid_input"},
		{name: "missing confirmOrganizationName", edit: set("confirmOrganizationName", nil), reason: "invalid_input"},
		{name: "missing keepAdminEmail", edit: set("keepAdminEmail", nil), reason: "invalid_input"},
		{name: "missing dryRun", edit: set("dryRun", nil), reason: "invalid_input"},
		{name: "dryRun as a string", edit: set("dryRun", "false"), reason: "invalid_input"},
		{name: "dryRun null", raw: func(ev []byte) string {
			return strings.Replace(string(ev), `"dryRun":false`, `"dryRun":null`, 1)
		}, reason: "invalid_input"},
		{name: "ticketId as a number", edit: set("ticketId", 4217), reason: "invalid_input"},
		{name: "empty ticketId", edit: set("ticketId", " "), reason: "missing_field"},
		{name: "empty agent", edit: set("agent", ""), reason: "missing_field"},
		{name: "unknown verification method", edit: setVer("method", "email"), reason: "invalid_verification_method"},
		{name: "wrong organization name", edit: set("confirmOrganizationName", "Acme"), reason: "organization_name_mismatch"},
		{name: "organization name in another case", edit: func(ev map[string]any) {
			ev["confirmOrganizationName"] = strings.ToUpper(ev["confirmOrganizationName"].(string))
		}, reason: "organization_name_mismatch"},
		{name: "another organization's name", edit: set("confirmOrganizationName", otherOrg.name), reason: "organization_name_mismatch"},
		{name: "unknown tenant", edit: set("tenantId", "org_doesnotexist"), reason: "organization_not_found"},
		{name: "keepAdminEmail not a user", edit: set("keepAdminEmail", "nobody@example.test"), reason: "keep_admin_not_found"},
		{name: "keepAdminEmail of another organization's admin", edit: set("keepAdminEmail", otherOrg.admin.Email), reason: "keep_admin_not_found"},
		{name: "keepAdminEmail of a pro user", edit: set("keepAdminEmail", o.others[1].Email), reason: "keep_admin_not_org_admin"},
		{name: "keepAdminEmail of a site admin", edit: set("keepAdminEmail", o.others[2].Email), reason: "keep_admin_not_org_admin"},
		{name: "keepAdminEmail with a display name", edit: set("keepAdminEmail", "Camille <"+o.admin.Email+">"), reason: "invalid_keep_admin_email"},
		{name: "not JSON", raw: func([]byte) string { return `{"tenantId": ` }, reason: "invalid_input"},
		{name: "JSON array", raw: func([]byte) string { return `[]` }, reason: "invalid_input"},
		{name: "trailing data", raw: func(ev []byte) string { return string(ev) + `{}` }, reason: "invalid_input"},
		{name: "empty event", raw: func([]byte) string { return `{}` }, reason: "invalid_input"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ticket := newTicket()
			base := o.event(t, ticket, false)
			var raw []byte
			if tc.raw != nil {
				raw = []byte(tc.raw(base))
			} else {
				var ev map[string]any
				json.Unmarshal(base, &ev)
				tc.edit(ev)
				raw, _ = json.Marshal(ev)
			}
			before := len(f.logs.String())
			rep, err := f.invoke(t, raw, time.Minute)
			var e *reset.Error
			if !errors.As(err, &e) || rep != nil {
				t.Fatalf("got %+v, %v; want a refusal", rep, err)
			}
			if e.Code != apperr.Invalid || e.Reason != tc.reason || !strings.Contains(e.Message, "nothing was changed") {
				t.Errorf("refusal %v, want invalid (%s) saying nothing was changed", e, tc.reason)
			}
			line := f.logs.String()[before:]
			if !strings.Contains(line, `"outcome":"rejected"`) || !strings.Contains(line, tc.reason) {
				t.Errorf("log: %s", line)
			}
			f.assertUntouched(t, o, ticket, want)
		})
	}
}

// The sample events are what `sam local invoke -e` sends: they decode, and differ only
// in dryRun.
func TestSampleEvents(t *testing.T) {
	real, err := reset.DecodeRequest(readEvent(t, "support-reset.json"))
	if err != nil {
		t.Fatal(err)
	}
	dry, err := reset.DecodeRequest(readEvent(t, "support-reset-dry-run.json"))
	if err != nil {
		t.Fatal(err)
	}
	if real.DryRun || !dry.DryRun {
		t.Fatalf("dryRun: real %v, dry %v", real.DryRun, dry.DryRun)
	}
	dry.DryRun = false
	if dry != real {
		t.Errorf("the events differ beyond dryRun:\n%+v\n%+v", real, dry)
	}
}

func TestNameMatches(t *testing.T) {
	for _, tc := range []struct {
		typed, name string
		want        bool
	}{
		{"Infogérance Martin SARL", "Infogérance Martin SARL", true},
		{"  Infogérance Martin SARL ", "Infogérance Martin SARL", true},
		{"infogérance martin sarl", "Infogérance Martin SARL", false},
		{"Infogerance Martin SARL", "Infogérance Martin SARL", false},
		{"Infogérance  Martin SARL", "Infogérance Martin SARL", false},
		// Normalised as names are stored: NFC, Unicode spaces as plain ones.
		{"Infoge\u0301rance Martin SARL", "Infogérance Martin SARL", true},
		{"Infogérance\u00a0Martin\u202fSARL", "Infogérance Martin SARL", true},
		{"Infogérance Martin SARL", "Infoge\u0301rance Martin SARL", true},
		{"Infogérance Martin SARL\u200b", "Infogérance Martin SARL", false},
		{"", "Infogérance Martin SARL", false},
	} {
		if got := reset.NameMatches(tc.typed, tc.name); got != tc.want {
			t.Errorf("NameMatches(%q) = %v, want %v", tc.typed, got, tc.want)
		}
	}
}

// TestKilledRunResumedAfterItsLease: a run killed mid-deletion leaves its lease, which
// nobody renews any more. Until the lease runs out (DefaultLeaseTTL after it was
// taken), another invocation says one is working and deletes nothing; once it has run
// out, the next invocation takes over and finishes. The clock is injected: the test
// asserts the stored expiry and never waits for it.
func TestKilledRunResumedAfterItsLease(t *testing.T) {
	table := testenv.Get(t).NewTable(t)
	killed := newFixture(t, table)
	o := seedOrg(t, killed, 2000)
	ticket := newTicket()
	raw := o.event(t, ticket, false)
	// In the past, so that no clock of the test reaches the invocations' real deadlines.
	began := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Microsecond)
	f := newFixture(t, table)
	f.svc.Now = func() time.Time { return began.Add(-time.Minute) } // scheduled and confirmed just before
	f.schedule(t, raw)
	f.svc.Now = func() time.Time { return began.Add(-30 * time.Second) }
	f.confirm(t, o)
	killed.svc.Now = func() time.Time { return began }
	killed.down.KillAfter(40) // reads, begin, key, and into the lanes
	if _, err := killed.invoke(t, raw, time.Minute); err == nil {
		t.Fatal("want the killed invocation to fail")
	}
	rec, err := killed.store.GetReset(t.Context(), ticket)
	if err != nil {
		t.Fatal(err)
	}
	if rec.State != store.ResetKeyReplaced {
		t.Fatalf("killed in state %s, want key_replaced (mid-deletion)", rec.State)
	}
	if want := began.Add(reset.DefaultLeaseTTL); !rec.LeaseUntil.Equal(want) {
		t.Fatalf("the killed run's lease runs to %v, want %v (a lease TTL after it began)", rec.LeaseUntil, want)
	}
	mid, err := killed.store.ResetProgress(t.Context(), ticket)
	if err != nil {
		t.Fatal(err)
	}

	f.svc.Now = func() time.Time { return began.Add(reset.DefaultLeaseTTL - time.Second) }
	rep, err := f.invoke(t, raw, time.Minute)
	if err != nil || rep.Status != reset.StatusInProgress || !strings.Contains(rep.Next, "Another invocation is working") ||
		!strings.Contains(rep.Next, rec.LeaseUntil.Format(time.RFC3339)) {
		t.Fatalf("while the lease is live: %+v, %v; want in_progress naming the lease's expiry", rep, err)
	}
	if *rep.Deleted != mid {
		t.Errorf("an invocation without the lease deleted: %+v, then %+v", mid, *rep.Deleted)
	}

	f.svc.Now = func() time.Time { return began.Add(reset.DefaultLeaseTTL + time.Second) }
	done := f.mustComplete(t, raw)
	if done.Runs != 2 {
		t.Errorf("runs %d, want 2 (the killed one and the one that took over)", done.Runs)
	}
	f.assertCompleted(t, o, done, 3)
	if rec, err := f.store.GetReset(t.Context(), ticket); err != nil || !rec.LeaseUntil.IsZero() {
		t.Errorf("after completion the lease is %v (%v), want none", rec.LeaseUntil, err)
	}
}
