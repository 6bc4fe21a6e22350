package adversarial_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/mspvault/orgkey/internal/activation"
	"github.com/mspvault/orgkey/internal/dev/emulators"
	"github.com/mspvault/orgkey/internal/httpapi"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/reset"
	"github.com/mspvault/orgkey/internal/revealkey"
	"github.com/mspvault/orgkey/internal/sendkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
	"github.com/mspvault/orgkey/internal/testing/faultinject"
	"github.com/mspvault/orgkey/internal/testing/fixtures"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

const (
	mailFrom = "no-reply@orgkey.test"
	appURL   = "https://vault.example.test"
	// The sample events' API domain: claim links point there (CLAIM_BASE_URL empty).
	apiOrigin = "https://a1b2c3d4e5.execute-api.eu-west-3.amazonaws.com"
)

func TestMain(m *testing.M) {
	code := testenv.Main(m, noLeakAnywhere)
	if path := os.Getenv("ORGKEY_ADVERSARIAL_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(figures.markdown(code == 0)), 0o644); err != nil {
			fmt.Fprintf(os.Stderr, "adversarial: writing the report: %v\n", err)
			if code == 0 {
				code = 1
			}
		}
	}
	os.Exit(code)
}

// ------------------------------------------------------------------ the rig

// rig is every function's handler, built by the flow's New as functions/*/main.go
// builds it, on a table of its own, with a fault injector between the handlers and the
// emulators. The raw clients (no injector) are for setting up and checking.
type rig struct {
	env    *testenv.Env
	table  string
	db     *dynamodb.Client
	st     *store.Store
	seeder *fixtures.Seeder
	unwrap *keywrap.Unwrapper
	inj    *faultinject.Injector
	logs   *syncBuffer

	act     *activation.Handler
	reveal  *revealkey.Handler
	sendSvc *sendkey.Service
	send    *sendkey.Handler
	reset   *reset.Handler
}

func newRig(t *testing.T) *rig {
	t.Helper()
	env := testenv.Get(t)
	table := env.NewTable(t)
	inj := &faultinject.Injector{}
	logs := &syncBuffer{tee: capture.logs}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	raw := dynamodb.NewFromConfig(env.AWSConfig)
	rawKMS := kms.NewFromConfig(env.AWSConfig)
	r := &rig{
		env: env, table: table, db: raw, st: store.New(raw, table), inj: inj, logs: logs,
		unwrap: &keywrap.Unwrapper{KMS: rawKMS, KeyID: env.KMSKeyID},
	}
	r.seeder = fixtures.New(r.st, &keywrap.Wrapper{KMS: rawKMS, KeyID: env.KMSKeyID})

	// From here on, as the functions' main.go: each flow's New, from one aws.Config
	// (with the injector in it) and the settings template.yaml gives by default.
	cfg := inj.Apply(env.AWSConfig)
	common := lambdamain.Common{TableName: table, KMSKeyID: env.KMSKeyID, MailFrom: mailFrom, AppURL: appURL}
	var err error
	if r.act, err = activation.New(activation.Config{Common: common, CatchUpAfter: 120}, cfg, log); err != nil {
		t.Fatal(err)
	}
	if r.reveal, err = revealkey.New(revealkey.Config{Common: common, StepUpSeconds: 300, RatePerHour: 10}, cfg, log); err != nil {
		t.Fatal(err)
	}
	if r.send, err = sendkey.New(sendkey.Config{Common: common, ClaimTTLHours: 72, SendRateLimit: 30, RequestRateLimit: 3,
		UserPoolID: "eu-west-3_Example01", ClientID: "exampleclient", Region: "eu-west-3"}, cfg, log); err != nil {
		t.Fatal(err)
	}
	r.sendSvc = r.send.Service
	if r.reset, err = reset.New(reset.Config{Common: common, SafetyMarginSeconds: 2}, cfg, log); err != nil {
		t.Fatal(err)
	}
	return r
}

// ------------------------------------------------------------------ the world

// world is two organizations with every role, plus users the table no longer has as
// their token says: one deleted, two whose role was lowered.
type world struct {
	a, b       tenant.Org
	aName      string
	aKey, bKey orgkey.Key
	sites      [3]string // of a: s0, s1 administered by siteAdmin; s2 by siteAdmin2

	orgAdmin, orgAdmin2, pro, siteAdmin, siteAdmin2, siteUser, siteUser2, siteUserLone tenant.User
	deleted, loweredAdmin, loweredSiteAdmin                                            tenant.User
	bAdmin, bPro, bSiteAdmin, bSiteUser                                                tenant.User
	bSites                                                                             [1]string
}

func (r *rig) newWorld(t *testing.T) *world {
	t.Helper()
	ctx := t.Context()
	w := &world{aName: "Infogérance " + testenv.UniqueName("Martin")}
	var err error
	w.a, w.orgAdmin, w.aKey, err = r.seeder.Organization(ctx, w.aName, tenant.User{Email: addr("admin"), Name: "Camille", Locale: "fr-FR"})
	if err != nil {
		t.Fatal(err)
	}
	w.b, w.bAdmin, w.bKey, err = r.seeder.Organization(ctx, "Other MSP", tenant.User{Email: addr("badmin"), Name: "Otto"})
	if err != nil {
		t.Fatal(err)
	}
	capture.key(w.aKey)
	capture.key(w.bKey)
	for i := range w.sites {
		s, err := r.seeder.Site(ctx, w.a.ID, fmt.Sprintf("Client %d", i))
		if err != nil {
			t.Fatal(err)
		}
		w.sites[i] = s.ID
	}
	bs, err := r.seeder.Site(ctx, w.b.ID, "B client")
	if err != nil {
		t.Fatal(err)
	}
	w.bSites[0] = bs.ID
	mk := func(tid, name string, role tenant.Role, sites ...string) tenant.User {
		t.Helper()
		u, err := r.seeder.User(ctx, tid, tenant.User{Email: addr(name), Name: name, Role: role, Sites: sites})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	s := w.sites
	w.orgAdmin2 = mk(w.a.ID, "orgadmin2", tenant.OrgAdmin)
	w.pro = mk(w.a.ID, "pro", tenant.ProUser)
	w.siteAdmin = mk(w.a.ID, "siteadmin", tenant.SiteAdmin, s[0], s[1])
	w.siteAdmin2 = mk(w.a.ID, "siteadmin2", tenant.SiteAdmin, s[2])
	w.siteUser = mk(w.a.ID, "siteuser", tenant.SiteUser, s[0])
	w.siteUser2 = mk(w.a.ID, "siteuser2", tenant.SiteUser, s[1], s[2])
	w.siteUserLone = mk(w.a.ID, "siteuserlone", tenant.SiteUser, s[2])
	w.bPro = mk(w.b.ID, "bpro", tenant.ProUser)
	w.bSiteAdmin = mk(w.b.ID, "bsiteadmin", tenant.SiteAdmin, bs.ID)
	w.bSiteUser = mk(w.b.ID, "bsiteuser", tenant.SiteUser, bs.ID)

	// Tokens were issued to these three; then the table changed.
	w.deleted = mk(w.a.ID, "deleted", tenant.OrgAdmin)
	if err := r.st.DeleteUser(ctx, w.a.ID, w.deleted.ID); err != nil {
		t.Fatal(err)
	}
	w.loweredAdmin = mk(w.a.ID, "loweredadmin", tenant.OrgAdmin)
	w.loweredAdmin.Role = tenant.ProUser
	w.loweredSiteAdmin = mk(w.a.ID, "loweredsiteadmin", tenant.SiteAdmin, s[0])
	w.loweredSiteAdmin.Role = tenant.SiteUser
	for _, u := range []tenant.User{w.loweredAdmin, w.loweredSiteAdmin} {
		if err := r.st.PutUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func addr(name string) string { return testenv.UniqueName(name) + "@example.test" }

// ------------------------------------------------------------------ events

func readEvent(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// httpEvent is events/<name> as API Gateway hands it over once its JWT authorizer
// accepted the token: claims carry sub (none when sub is ""), a fresh auth_time, and
// the Authorization header a JWT the leak check looks for.
func httpEvent(t testing.TB, name, sub, body string) httpapi.Request {
	t.Helper()
	var req httpapi.Request
	if err := json.Unmarshal(readEvent(t, name), &req); err != nil {
		t.Fatal(err)
	}
	req.Body = body
	jwt := newJWT(sub)
	if req.Headers != nil {
		req.Headers["authorization"] = "Bearer " + jwt
	}
	req.RequestContext.RequestID = testenv.UniqueName("req")
	if a := req.RequestContext.Authorizer; a != nil && a.JWT != nil {
		c := a.JWT.Claims
		if sub == "" {
			delete(c, "sub")
			delete(c, "username")
		} else {
			c["sub"], c["username"] = sub, sub
		}
		now := time.Now()
		c["auth_time"] = strconv.FormatInt(now.Add(-10*time.Second).Unix(), 10)
		c["iat"] = c["auth_time"]
		c["exp"] = strconv.FormatInt(now.Add(time.Hour).Unix(), 10)
	}
	return req
}

// newJWT is a JWT-shaped string unique to this request; the function never sees a
// verified token (API Gateway's authorizer checks signature, exp and aud), but it must
// not echo the header anywhere.
func newJWT(sub string) string {
	var sig [24]byte
	rand.Read(sig[:])
	enc := base64.RawURLEncoding
	tok := enc.EncodeToString([]byte(`{"alg":"RS256","kid":"adv"}`)) + "." +
		enc.EncodeToString([]byte(`{"sub":"`+sub+`","token_use":"access"}`)) + "." + enc.EncodeToString(sig[:])
	capture.jwt(tok)
	return tok
}

func sendEvent(t testing.TB, sub, body string) httpapi.Request {
	return httpEvent(t, "send-key.json", sub, body)
}

func requestEvent(t testing.TB, sub, body string) httpapi.Request {
	return httpEvent(t, "request-key.json", sub, body)
}

func revealEvent(t testing.TB, sub, body string) httpapi.Request {
	return httpEvent(t, "reveal-key.json", sub, body)
}

// claimEvent is POST /org-key/claim by sub ("" for no session) with the token in the
// body, from a source IP of its own (claims of unknown tokens are counted per IP).
func claimEvent(t testing.TB, sub, token string) httpapi.Request {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"token": token})
	req := httpEvent(t, "claim-key.json", sub, string(body))
	n := claimIPs.Add(1)
	req.RequestContext.HTTP.SourceIP = fmt.Sprintf("198.18.%d.%d", n/250%250, n%250+1)
	return req
}

var claimIPs atomic.Int64

// pageEvent is GET or HEAD of the claim page.
func pageEvent(t testing.TB, method string) httpapi.Request {
	t.Helper()
	req := httpEvent(t, "claim-page.json", "", "")
	req.RouteKey = method + " /org-key/claim"
	req.RequestContext.RouteKey = req.RouteKey
	req.RequestContext.HTTP.Method = method
	return req
}

// ------------------------------------------------------------------ calls

func (r *rig) callHTTP(t *testing.T, h func(context.Context, httpapi.Request) (httpapi.Response, error), entry string, req httpapi.Request) httpapi.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	resp, err := h(ctx, req)
	if err != nil {
		t.Fatalf("%s: the handler returned an error to the runtime (it must answer every request): %v", entry, err)
	}
	capture.response(entry, resp)
	return resp
}

func (r *rig) callSend(t *testing.T, req httpapi.Request) httpapi.Response {
	t.Helper()
	return r.callHTTP(t, r.send.Handle, entryOf(req.RouteKey), req)
}

func (r *rig) callReveal(t *testing.T, req httpapi.Request) httpapi.Response {
	t.Helper()
	return r.callHTTP(t, r.reveal.Handle, "POST /org-key/reveal", req)
}

func entryOf(route string) string {
	switch route {
	case sendkey.RouteSend, sendkey.RouteClaim, sendkey.RouteClaimPage, sendkey.RouteClaimHead, sendkey.RouteRequest:
		return route
	}
	return "send-key function, other route"
}

// callActivation invokes the trigger as Lambda would, with Cognito's 5-second budget.
func (r *rig) callActivation(t *testing.T, raw []byte) (any, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	out, err := r.act.Handle(ctx, raw)
	capture.text("activation answer", fmt.Sprintf("%v %v", jsonOf(out), err))
	return out, err
}

// callReset invokes the console event with a Lambda-like deadline; onKill, when
// given, receives the invocation's cancel, for a kill to end it.
func (r *rig) callReset(t *testing.T, raw []byte, timeout time.Duration, onKill ...func(func()) *faultinject.Injector) (*reset.Report, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	for _, f := range onKill {
		f(cancel)
	}
	rep, err := r.reset.Handle(ctx, raw)
	capture.text("support-reset answer", fmt.Sprintf("%v %v", jsonOf(rep), err))
	return rep, err
}

// confirmToken is the token of the latest reset confirmation link mailed to addr,
// recorded as addr's to receive.
func (r *rig) confirmToken(t *testing.T, addr string) string {
	t.Helper()
	var tok string
	for _, m := range r.mailsTo(t, addr) {
		if _, rest, ok := strings.Cut(m.Text, mail.ResetConfirmPath+"#token="); ok {
			tok = strings.Fields(rest)[0]
			capture.token(tok, []string{addr})
		}
	}
	if tok == "" {
		t.Fatalf("no reset confirmation mailed to %s", addr)
	}
	return tok
}

// confirmedReset schedules raw's reset (a new ticket) and has its kept admin confirm
// it by the mailed link: what support's event then runs.
func (r *rig) confirmedReset(t *testing.T, raw []byte, admin tenant.User) {
	t.Helper()
	rep, err := r.callReset(t, raw, time.Minute)
	if err != nil || rep.Status != reset.StatusPending {
		t.Fatalf("scheduling the reset: %s %v", jsonOf(rep), err)
	}
	if _, err := r.reset.Service.Confirm(t.Context(), r.confirmToken(t, admin.Email), admin.ID, reset.Meta{}); err != nil {
		t.Fatalf("confirming the reset: %v", err)
	}
}

// keyMails are the mails to addr but the reset confirmations: the ones with a key.
func (r *rig) keyMails(t *testing.T, addr string) []emulators.Email {
	t.Helper()
	var out []emulators.Email
	for _, m := range r.mailsTo(t, addr) {
		if !strings.Contains(m.Text, mail.ResetConfirmPath) {
			out = append(out, m)
		}
	}
	return out
}

func jsonOf(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// errorBody is the JSON shape of an error answer.
func errorBody(resp httpapi.Response) httpapi.ErrorBody {
	var b httpapi.ErrorBody
	json.Unmarshal([]byte(resp.Body), &b)
	return b
}

// ------------------------------------------------------------------ the table

// snapshot is the whole table: pk and sk to the item in canonical JSON.
type snapshot map[string]string

func (r *rig) snapshot(t *testing.T) snapshot {
	t.Helper()
	snap := snapshot{}
	p := dynamodb.NewScanPaginator(r.db, &dynamodb.ScanInput{TableName: &r.table, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("scan: %v", err)
		}
		for _, it := range page.Items {
			var m map[string]any
			if err := attributevalue.UnmarshalMap(it, &m); err != nil {
				t.Fatal(err)
			}
			b, _ := json.Marshal(m)
			snap[fmt.Sprint(m["pk"])+" | "+fmt.Sprint(m["sk"])] = string(b)
		}
	}
	capture.tableScanned(t, snap)
	return snap
}

// effects are the writes a flow documents making on a refusal: an audit record with
// a reason, and one count on a rate counter.
type effects struct {
	audits []string // the reasons of the audit records written, one record each
	rate   string   // the flow whose RATE# counter may count this call ("" none)
	// attempt is the claim link (its CLAIM# key) whose wrong-user count this call may
	// raise by one ("" none).
	attempt string
}

// assertOnly checks that the table changed by exactly the documented effects.
func (r *rig) assertOnly(t *testing.T, before snapshot, want effects) {
	t.Helper()
	after := r.snapshot(t)
	var audits []string
	rates := 0
	for _, k := range slices.Sorted(maps.Keys(mergeKeys(before, after))) {
		b, inBefore := before[k]
		a, inAfter := after[k]
		if b == a {
			continue
		}
		switch {
		case store.IsAuditKey(k) && !inBefore:
			var rec store.AuditRecord
			json.Unmarshal([]byte(a), &rec)
			if rec.Outcome == "ok" || rec.Outcome == "shown" {
				t.Errorf("a refusal was audited as a success: %s", a)
			}
			audits = append(audits, rec.Detail["reason"])
		case strings.HasPrefix(k, store.RateFlowPrefix(want.rate)) && want.rate != "" && inAfter:
			rates++
			if got, was := countOf(a), countOf(b); got != was+1 {
				t.Errorf("rate counter %s went from %d to %d", k, was, got)
			}
		case want.attempt != "" && strings.HasPrefix(k, want.attempt) && inBefore && inAfter:
			if got, was := attemptsOf(a), attemptsOf(b); got != was+1 {
				t.Errorf("claim attempts went from %d to %d", was, got)
			}
			if strings.Contains(a, "usedAt") {
				t.Errorf("a wrong user's attempt spent the link")
			}
		case !inBefore:
			t.Errorf("item added: %s", a)
		case !inAfter:
			t.Errorf("item deleted: %s", b)
		default:
			t.Errorf("item changed:\n before %s\n after  %s", b, a)
		}
	}
	slices.Sort(audits)
	wantAudits := slices.Sorted(slices.Values(want.audits))
	if !slices.Equal(audits, wantAudits) {
		t.Errorf("audit records with reasons %q, want %q", audits, wantAudits)
	}
	if rates > 1 {
		t.Errorf("%d rate counters counted this call", rates)
	}
}

func mergeKeys(a, b snapshot) map[string]bool {
	m := map[string]bool{}
	for k := range a {
		m[k] = true
	}
	for k := range b {
		m[k] = true
	}
	return m
}

func attemptsOf(item string) int {
	var v struct {
		Attempts int `json:"attempts"`
	}
	json.Unmarshal([]byte(item), &v)
	return v.Attempts
}

func countOf(item string) int {
	var v struct {
		Count int `json:"count"`
	}
	json.Unmarshal([]byte(item), &v)
	return v.Count
}

// ------------------------------------------------------------------ mail

func (r *rig) mails(t *testing.T) []emulators.Email {
	t.Helper()
	all, err := r.env.Emails(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return all
}

func (r *rig) mailsTo(t *testing.T, to string) []emulators.Email {
	t.Helper()
	got, err := r.env.EmailsTo(t.Context(), to)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// keyIn takes the org key out of an activation or reset mail.
func keyIn(t *testing.T, body string) orgkey.Key {
	t.Helper()
	i := strings.Index(body, orgkey.Prefix+"-")
	if i < 0 {
		t.Fatalf("no org key in mail:\n%s", body)
	}
	k, err := orgkey.Parse(body[i : i+len("OK1-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX-XXXX")])
	if err != nil {
		t.Fatalf("mail holds a malformed key: %v", err)
	}
	return k
}

// tokenIn takes the claim token out of a send-key mail.
func tokenIn(t *testing.T, m emulators.Email) string {
	t.Helper()
	prefix := apiOrigin + mail.ClaimPath + "#token="
	i := strings.Index(m.Text, prefix)
	if i < 0 {
		t.Fatalf("no claim link in mail:\n%s", m.Text)
	}
	rest := m.Text[i+len(prefix):]
	if end := strings.IndexAny(rest, " \n\r\t\"<&"); end >= 0 {
		rest = rest[:end]
	}
	if _, err := orgkey.ParseClaim(rest); err != nil {
		t.Fatalf("mailed token is malformed: %v", err)
	}
	capture.token(rest, m.To)
	return rest
}

// storedKey unwraps the organization's stored key with a clean client.
func (r *rig) storedKey(t *testing.T, tid string) (orgkey.Key, tenant.Org) {
	t.Helper()
	org, err := r.st.GetOrg(t.Context(), tid)
	if err != nil {
		t.Fatal(err)
	}
	k, err := r.unwrap.Unwrap(t.Context(), org.ID, org.KeyVersion, org.WrappedKey)
	if err != nil {
		t.Fatalf("the stored key of %s does not unwrap: %v", tid, err)
	}
	return k, org
}

// ------------------------------------------------------------------ capture

// syncBuffer is a log destination safe for concurrent writers; it also writes to tee.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	tee io.Writer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	if b.tee != nil {
		b.tee.Write(p)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// capture holds everything the run logged, answered and mailed, and every secret it
// saw, in the package's leak ledger (testenv.Ledger, checked by TestMain).
var capture = newCapture()

type captured struct {
	mu     sync.Mutex
	logs   *testenv.LogBuffer
	ledger *testenv.Ledger
	scans  int
}

func newCapture() *captured {
	l := testenv.NewLedger()
	return &captured{logs: l.Logs, ledger: l}
}

func (c *captured) key(k orgkey.Key) { c.ledger.Key(k) }

// mailed records a key that a flow is documented to mail to to.
func (c *captured) mailed(k orgkey.Key, to ...string) { c.ledger.Key(k, to...) }

func (c *captured) token(tok string, to []string) { c.ledger.Token(tok, to...) }

func (c *captured) jwt(s string) { c.ledger.JWT(s) }

// response records an answer; a key may be in reveal-key's 200 body and in the
// claim's 200 cookie only.
func (c *captured) response(entry string, r httpapi.Response) {
	ok := r.StatusCode == http.StatusOK
	c.ledger.Answer(testenv.Answer{
		Entry: entry, Status: r.StatusCode, Headers: r.Headers, Cookies: r.Cookies, Body: r.Body,
		KeyInBody:    ok && entry == "POST /org-key/reveal",
		KeyInCookies: ok && entry == "POST /org-key/claim",
	})
}

func (c *captured) text(what, s string) { c.ledger.Text(what, s) }

// tableScanned counts a snapshot; the ledger scans every table the run used once
// the run is over.
func (c *captured) tableScanned(t *testing.T, snap snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.scans++
}
