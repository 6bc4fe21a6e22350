package perf

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/mspvault/orgkey/internal/activation"
	"github.com/mspvault/orgkey/internal/dev/perf/probe"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/reset"
	"github.com/mspvault/orgkey/internal/revealkey"
	"github.com/mspvault/orgkey/internal/sendkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
	"github.com/mspvault/orgkey/internal/testing/fixtures"
)

// Settings every function gets in benchmarks and tests. The rate limits are raised so
// that a load of one user's requests measures the flow, not the limiter's refusals
// (the limiter's own call is made either way).
const (
	MailFrom  = "no-reply@orgkey.test"
	AppURL    = "https://vault.example.test"
	bigLimit  = 1_000_000
	resetName = "Infogérance Martin SARL"
)

// The user pool the claim page names; the flows measured never call Cognito.
const (
	PagePoolID   = "us-east-1_bench"
	PageClientID = "benchclient"
)

// Function names, as under functions/.
const (
	FnActivation = "activation-email"
	FnRevealKey  = "reveal-key"
	FnSendKey    = "send-key"
	FnReset      = "support-reset"
)

// Functions lists them in report order.
var Functions = []string{FnActivation, FnSendKey, FnRevealKey, FnReset}

// World is a seeded organization on a table, with an admin of every kind, and the
// events of every flow aimed at it.
type World struct {
	Root      string // repository root (events/ is read from there)
	Table     string
	KMSKeyID  string
	Store     *store.Store
	Seeder    *fixtures.Seeder
	Org       tenant.Org
	Admin     tenant.User // org admin: sends, reveals
	Admin2    tenant.User // second org admin: told of reveals, asked by requests
	Pro       tenant.User // pro user: receives sends, requests the key
	Vault     int         // passwords seeded in the reset's organizations
	seq       atomic.Int64
	eventsDir string
}

// NewWorld seeds an organization on table (which must exist) with cfg reaching the
// emulators.
func NewWorld(ctx context.Context, cfg aws.Config, root, table, kmsKeyID string) (*World, error) {
	st := store.New(dynamodb.NewFromConfig(cfg), table)
	w := &World{
		Root: root, Table: table, KMSKeyID: kmsKeyID, Store: st, Vault: ResetVaultItems,
		Seeder:    fixtures.New(st, &keywrap.Wrapper{KMS: kms.NewFromConfig(cfg), KeyID: kmsKeyID}),
		eventsDir: filepath.Join(root, "events"),
	}
	var err error
	// Addresses of this world only: one person is a member of one organization, and
	// several worlds share a table.
	id := w.next()
	w.Org, w.Admin, _, err = w.Seeder.Organization(ctx, "Acme IT", tenant.User{Email: "alice-" + id + "@acme.example.test", Name: "Alice", Locale: "fr-FR"})
	if err != nil {
		return nil, fmt.Errorf("seed organization: %w", err)
	}
	if w.Admin2, err = w.Seeder.User(ctx, w.Org.ID, tenant.User{Email: "bob-" + id + "@acme.example.test", Name: "Bob", Role: tenant.OrgAdmin}); err != nil {
		return nil, err
	}
	if w.Pro, err = w.Seeder.User(ctx, w.Org.ID, tenant.User{Email: "carol-" + id + "@acme.example.test", Name: "Carol", Role: tenant.ProUser}); err != nil {
		return nil, err
	}
	return w, nil
}

// Env is the environment of the function fn (its template variables, with the rate
// limits raised), to which the emulators' endpoint variables are added.
func (w *World) Env(fn string) []string {
	env := []string{
		"TABLE_NAME=" + w.Table, "KMS_KEY_ID=" + w.KMSKeyID,
		"MAIL_FROM=" + MailFrom, "APP_URL=" + AppURL,
	}
	switch fn {
	case FnSendKey:
		env = append(env, "SEND_RATE_LIMIT_PER_HOUR="+strconv.Itoa(bigLimit), "REQUEST_RATE_LIMIT_PER_HOUR="+strconv.Itoa(bigLimit),
			// The claim page's pool (only rendered into the page: no call is made to it).
			"USER_POOL_ID="+PagePoolID, "USER_POOL_CLIENT_ID="+PageClientID, "AWS_REGION=us-east-1")
	case FnRevealKey:
		env = append(env, "REVEAL_RATE_LIMIT_PER_HOUR="+strconv.Itoa(bigLimit))
	case FnReset:
		env = append(env, "SAFETY_MARGIN_SECONDS=5")
	}
	return env
}

// ProbeTarget is what the floors' bare round trips (internal/dev/perf/probe) are made on:
// this world's table, key and organization.
func (w *World) ProbeTarget() probe.Target {
	return probe.Target{Table: w.Table, KMSKeyID: w.KMSKeyID, OrgID: w.Org.ID, MailFrom: MailFrom}
}

// ProbeEnv is the environment of floor (c) (internal/dev/perf/testdata/roundtrips), to
// which the emulators' endpoint variables are added.
func (w *World) ProbeEnv() []string {
	t := w.ProbeTarget()
	return []string{"TABLE_NAME=" + t.Table, "KMS_KEY_ID=" + t.KMSKeyID, "PROBE_ORG_ID=" + t.OrgID, "MAIL_FROM=" + t.MailFrom}
}

// Flow is one request kind of one function.
type Flow struct {
	Name     string // e.g. "send-key: send"
	Function string // which function serves it
	// Event returns the next request's payload. It may write fixtures first (a new
	// claim link, a new organization to reset): that work is not the flow's.
	Event func(ctx context.Context) ([]byte, error)
}

// Flows are the flows the service serves, each with the events of successful
// requests.
func (w *World) Flows() []Flow {
	return []Flow{
		{Name: "activation: pre sign-up", Function: FnActivation, Event: w.preSignUpEvent},
		{Name: "activation: sign-up confirmed", Function: FnActivation, Event: w.activationEvent},
		{Name: "send-key: send", Function: FnSendKey, Event: w.sendEvent},
		{Name: "send-key: claim", Function: FnSendKey, Event: w.claimEvent},
		{Name: "send-key: request", Function: FnSendKey, Event: w.requestEvent},
		{Name: "reveal-key: reveal", Function: FnRevealKey, Event: w.revealEvent},
		{Name: "support-reset: dry run", Function: FnReset, Event: func(ctx context.Context) ([]byte, error) { return w.resetEvent(ctx, true) }},
		{Name: "support-reset: schedule", Function: FnReset, Event: func(ctx context.Context) ([]byte, error) { return w.resetEvent(ctx, false) }},
		{Name: "support-reset: confirm", Function: FnReset, Event: w.resetConfirmEvent},
		{Name: "support-reset: run", Function: FnReset, Event: w.resetRunEvent},
		{Name: "support-reset: sweep", Function: FnReset, Event: w.resetSweepEvent},
	}
}

// Flow returns the flow named name.
func (w *World) Flow(name string) Flow {
	for _, f := range w.Flows() {
		if f.Name == name {
			return f
		}
	}
	panic("perf: no flow " + name)
}

func (w *World) next() string { return fmt.Sprintf("%d-%d", time.Now().UnixNano(), w.seq.Add(1)) }

func (w *World) golden(name string) (map[string]any, error) {
	raw, err := os.ReadFile(filepath.Join(w.eventsDir, name))
	if err != nil {
		return nil, err
	}
	var ev map[string]any
	return ev, json.Unmarshal(raw, &ev)
}

func (w *World) activationEvent(context.Context) ([]byte, error) {
	ev, err := w.golden("activation-email.json")
	if err != nil {
		return nil, err
	}
	sub := "sub-" + w.next()
	ev["userName"] = sub
	attrs := ev["request"].(map[string]any)["userAttributes"].(map[string]any)
	attrs["sub"] = sub
	attrs["email"] = sub + "@signup.example.test"
	attrs["cognito:email_alias"] = attrs["email"]
	return json.Marshal(ev)
}

// preSignUpEvent is Cognito's PreSignUp for a fresh address: accepted after one read.
func (w *World) preSignUpEvent(context.Context) ([]byte, error) {
	ev, err := w.golden("activation-presignup.json")
	if err != nil {
		return nil, err
	}
	sub := "sub-" + w.next()
	ev["userName"] = sub
	ev["request"].(map[string]any)["userAttributes"].(map[string]any)["email"] = sub + "@signup.example.test"
	return json.Marshal(ev)
}

// httpEvent is a golden API event from user sub, signed in a minute ago.
func (w *World) httpEvent(name, sub, body string) ([]byte, error) {
	ev, err := w.golden(name)
	if err != nil {
		return nil, err
	}
	rc := ev["requestContext"].(map[string]any)
	if az, ok := rc["authorizer"].(map[string]any); ok {
		claims := az["jwt"].(map[string]any)["claims"].(map[string]any)
		claims["sub"], claims["username"] = sub, sub
		claims["auth_time"] = strconv.FormatInt(time.Now().Add(-time.Minute).Unix(), 10)
	}
	if body != "" {
		ev["body"] = body
	}
	return json.Marshal(ev)
}

func (w *World) sendEvent(context.Context) ([]byte, error) {
	return w.httpEvent("send-key.json", w.Admin.ID, fmt.Sprintf(`{"userId":%q}`, w.Pro.ID))
}

func (w *World) requestEvent(context.Context) ([]byte, error) {
	return w.httpEvent("request-key.json", w.Pro.ID, "")
}

func (w *World) revealEvent(context.Context) ([]byte, error) {
	return w.httpEvent("reveal-key.json", w.Admin.ID, "")
}

// claimEvent stores a fresh claim link for the pro user, as a send would, and spends
// it as the pro user (POST /org-key/claim with the user's JWT claims).
func (w *World) claimEvent(ctx context.Context) ([]byte, error) {
	tok, err := orgkey.NewClaimToken(rand.Reader)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if err := w.Store.PutLiveClaim(ctx, store.Claim{Hash: tok.Hash(), TenantID: w.Org.ID, UserID: w.Pro.ID,
		SentBy: w.Admin.ID, KeyVersion: w.Org.KeyVersion, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]string{"token": tok.Reveal()})
	if err != nil {
		return nil, err
	}
	return w.httpEvent("claim-key.json", w.Pro.ID, string(body))
}

// resetEvent seeds an organization like a small real one (an admin, three more
// users, a site, a claim link and Vault passwords) and asks to reset it.
func (w *World) resetEvent(ctx context.Context, dryRun bool) ([]byte, error) {
	o, admin, err := w.SeedResetOrg(ctx, w.Vault)
	if err != nil {
		return nil, err
	}
	return w.ResetEvent(o, admin, dryRun)
}

// scheduleReset seeds an organization to reset and schedules its reset in the table,
// as support's event would, with a confirmation token the caller keeps.
func (w *World) scheduleReset(ctx context.Context) (store.ResetRecord, orgkey.ClaimToken, []byte, error) {
	o, admin, err := w.SeedResetOrg(ctx, w.Vault)
	if err != nil {
		return store.ResetRecord{}, orgkey.ClaimToken{}, nil, err
	}
	return w.scheduleResetOf(ctx, o, admin)
}

func (w *World) scheduleResetOf(ctx context.Context, o tenant.Org, admin tenant.User) (store.ResetRecord, orgkey.ClaimToken, []byte, error) {
	ev, err := w.ResetEvent(o, admin, false)
	if err != nil {
		return store.ResetRecord{}, orgkey.ClaimToken{}, nil, err
	}
	var req struct {
		TicketID string `json:"ticketId"`
	}
	if err := json.Unmarshal(ev, &req); err != nil {
		return store.ResetRecord{}, orgkey.ClaimToken{}, nil, err
	}
	tok, err := orgkey.NewClaimToken(rand.Reader)
	if err != nil {
		return store.ResetRecord{}, orgkey.ClaimToken{}, nil, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	rec, _, err := w.Store.ScheduleReset(ctx, store.ResetRecord{
		TicketID: req.TicketID, TenantID: o.ID, Agent: "bench", VerificationMethod: "phone_callback", VerificationReference: "bench",
		KeepAdminID: admin.ID, KeepAdminEmail: admin.Email, OldKeyVersion: o.KeyVersion, ConfirmBy: now.Add(time.Hour),
	}, tok.Hash(), now)
	return rec, tok, ev, err
}

// resetConfirmEvent schedules a reset and confirms it as its kept admin (POST
// /org-key/claim/reset-confirm with their JWT claims and the link's token).
func (w *World) resetConfirmEvent(ctx context.Context) ([]byte, error) {
	rec, tok, _, err := w.scheduleReset(ctx)
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(map[string]string{"token": tok.Reveal()})
	if err != nil {
		return nil, err
	}
	return w.httpEvent("support-reset-confirm.json", rec.KeepAdminID, string(body))
}

// resetRunEvent schedules and confirms a reset in the table and asks to run it
// (support's event again).
func (w *World) resetRunEvent(ctx context.Context) ([]byte, error) {
	o, admin, err := w.SeedResetOrg(ctx, w.Vault)
	if err != nil {
		return nil, err
	}
	return w.ConfirmedResetEvent(ctx, o, admin)
}

// resetSweepEvent confirms a reset in the table, due at once, and is the schedule's
// event that runs it.
func (w *World) resetSweepEvent(ctx context.Context) ([]byte, error) {
	if _, err := w.resetRunEvent(ctx); err != nil {
		return nil, err
	}
	return os.ReadFile(filepath.Join(w.eventsDir, "support-reset-sweep.json"))
}

// ConfirmedResetEvent schedules a reset of o keeping admin and confirms it as admin,
// in the table (the two phases are not the run's work), and returns support's event
// that runs it.
func (w *World) ConfirmedResetEvent(ctx context.Context, o tenant.Org, admin tenant.User) ([]byte, error) {
	rec, tok, ev, err := w.scheduleResetOf(ctx, o, admin)
	if err != nil {
		return nil, err
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	err = w.Store.ConfirmReset(ctx, rec, tok.Hash(), rec.KeepAdminID, now, now, store.AuditRecord{
		TenantID: rec.TenantID, Action: store.ActionResetConfirmed, Outcome: "ok", ActorID: rec.KeepAdminID})
	return ev, err
}

// SeedResetOrg seeds an organization to reset with n passwords.
func (w *World) SeedResetOrg(ctx context.Context, n int) (tenant.Org, tenant.User, error) {
	id := w.next()
	o, admin, _, err := w.Seeder.Organization(ctx, resetName, tenant.User{Email: "camille-" + id + "@example.test", Name: "Camille", Locale: "fr-FR"})
	if err != nil {
		return tenant.Org{}, tenant.User{}, err
	}
	site, err := w.Seeder.Site(ctx, o.ID, "Clinic")
	if err != nil {
		return tenant.Org{}, tenant.User{}, err
	}
	for _, r := range []tenant.Role{tenant.ProUser, tenant.SiteAdmin, tenant.SiteUser} {
		if _, err := w.Seeder.User(ctx, o.ID, tenant.User{Email: string(r) + "-" + id + "@example.test", Name: string(r), Role: r, Sites: []string{site.ID}}); err != nil {
			return tenant.Org{}, tenant.User{}, err
		}
	}
	items := make([]store.VaultItem, n)
	for i := range items {
		items[i] = store.VaultItem{TenantID: o.ID, ID: fmt.Sprintf("pw-%07d", i), Data: []byte("ciphertext")}
	}
	if err := w.Store.PutVaultItems(ctx, items); err != nil {
		return tenant.Org{}, tenant.User{}, err
	}
	return o, admin, nil
}

// ResetEvent is events/support-reset.json aimed at o, with a new ticket.
func (w *World) ResetEvent(o tenant.Org, admin tenant.User, dryRun bool) ([]byte, error) {
	ev, err := w.golden("support-reset.json")
	if err != nil {
		return nil, err
	}
	ev["tenantId"] = o.ID
	ev["ticketId"] = "SUP-" + w.next()
	ev["confirmOrganizationName"] = o.Name
	ev["keepAdminEmail"] = admin.Email
	ev["dryRun"] = dryRun
	return json.Marshal(ev)
}

// Handlers builds each function's handler in this process through the flow's New, as
// its main.go does (lambdamain.Run), from the environment Env gives its process, so
// that a test can count the calls it makes.
func (w *World) Handlers(cfg aws.Config, logs io.Writer) (map[string]lambda.Handler, error) {
	if logs == nil {
		logs = io.Discard
	}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	hs := map[string]lambda.Handler{}
	var err error
	if hs[FnActivation], err = build(w, FnActivation, activation.New, cfg, log); err != nil {
		return nil, err
	}
	if hs[FnSendKey], err = build(w, FnSendKey, sendkey.New, cfg, log); err != nil {
		return nil, err
	}
	if hs[FnRevealKey], err = build(w, FnRevealKey, revealkey.New, cfg, log); err != nil {
		return nil, err
	}
	if hs[FnReset], err = build(w, FnReset, reset.New, cfg, log); err != nil {
		return nil, err
	}
	return hs, nil
}

// build reads fn's configuration from its environment and builds its handler with New.
func build[C lambdamain.Validator, H lambda.Handler](w *World, fn string, newHandler func(C, aws.Config, *slog.Logger) (H, error), cfg aws.Config, log *slog.Logger) (lambda.Handler, error) {
	c, err := lambdamain.ParseEnv[C](w.Env(fn))
	if err != nil {
		return nil, fmt.Errorf("%s: configuration: %w", fn, err)
	}
	h, err := newHandler(c, cfg, log)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", fn, err)
	}
	return h, nil
}

// CheckAnswer fails on an answer that is not a success of flow: a function error, an
// HTTP status other than 200, a reset that did not complete.
func CheckAnswer(flow Flow, out []byte) error {
	var v struct {
		StatusCode *int   `json:"statusCode"`
		Status     string `json:"status"`
		Due        *int   `json:"due"` // a sweep's answer
		Completed  int    `json:"completed"`
	}
	if err := json.Unmarshal(out, &v); err != nil {
		return fmt.Errorf("%s: answer %.200q: %w", flow.Name, out, err)
	}
	switch {
	case v.StatusCode != nil && (*v.StatusCode < 200 || *v.StatusCode > 299):
		return fmt.Errorf("%s: status %d: %.300s", flow.Name, *v.StatusCode, out)
	case v.Due != nil:
		if *v.Due == 0 || v.Completed != *v.Due {
			return fmt.Errorf("%s: %.300s", flow.Name, out)
		}
	case flow.Function == FnReset && v.StatusCode == nil && v.Status != "completed" && v.Status != "dry_run" && v.Status != "pending_confirmation":
		return fmt.Errorf("%s: %.300s", flow.Name, out)
	}
	return nil
}
