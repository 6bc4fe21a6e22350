package sendkey_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/mspvault/orgkey/internal/dev/emulators"
	"github.com/mspvault/orgkey/internal/httpapi"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/orgkey"
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
	// The sample events' API domain: claim links point there when CLAIM_BASE_URL is empty.
	apiOrigin = "https://a1b2c3d4e5.execute-api.eu-west-3.amazonaws.com"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, ledger.Check(testenv.Need{Keys: true, Tokens: true, Answers: true})))
}

// ledger is the package's leak check (testenv.Ledger): every key and token the
// tests saw, every answer, and every log line (logSink), checked by TestMain.
var ledger = testenv.NewLedger()

// logSink collects every log line of the package's tests.
var logSink = ledger.Logs

// fixture is one service and handler wired to the emulators, through New, with a
// fault injector in its aws.Config (disarmed unless a test arms it).
type fixture struct {
	env     *testenv.Env
	store   *store.Store
	seeder  *fixtures.Seeder
	svc     *sendkey.Service
	handler *sendkey.Handler
	faults  *faultinject.Injector
	logs    *testenv.LogBuffer
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	env := testenv.Get(t)
	logs := testenv.NewLogBuffer(logSink)
	// The injector sits in the stack only; the retryer stays the SDK's, as in the function.
	faults := &faultinject.Injector{}
	cfg := env.AWSConfig.Copy()
	cfg.APIOptions = append(slices.Clip(cfg.APIOptions), faults.Register)
	h, err := sendkey.New(sendkey.Config{
		Common:        lambdamain.Common{TableName: env.TableName, KMSKeyID: env.KMSKeyID, MailFrom: mailFrom, AppURL: appURL},
		ClaimTTLHours: 72, SendRateLimit: 30, RequestRateLimit: 3,
		UserPoolID: "eu-west-3_Example01", ClientID: "exampleclient", Region: "eu-west-3",
	}, cfg, slog.New(slog.NewJSONHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	st := store.New(dynamodb.NewFromConfig(env.AWSConfig), env.TableName)
	return &fixture{
		env: env, store: st, seeder: fixtures.New(st, &keywrap.Wrapper{KMS: kms.NewFromConfig(env.AWSConfig), KeyID: env.KMSKeyID}),
		svc: h.Service, handler: h, faults: faults, logs: logs,
	}
}

// world is one organization with every role, and a second organization.
type world struct {
	org                                 tenant.Org
	key                                 orgkey.Key
	orgAdmin, orgAdmin2, pro, proFR     tenant.User
	siteAdmin                           tenant.User // sites s1, s2
	siteUser1, siteUser2, siteUser3     tenant.User // s1; s2 (fr); s3
	siteAdmin3                          tenant.User // s3
	siteUserOrphan                      tenant.User // s4: nobody administers it
	other                               tenant.Org
	otherKey                            orgkey.Key
	otherAdmin, otherPro, otherSiteUser tenant.User
}

func (f *fixture) newWorld(t *testing.T) *world {
	t.Helper()
	ctx := t.Context()
	w := &world{}
	mk := func(tid, name string, role tenant.Role, locale string, sites ...string) tenant.User {
		t.Helper()
		u, err := f.seeder.User(ctx, tid, tenant.User{
			Email: testenv.UniqueName(name) + "@example.test", Name: strings.ToUpper(name[:1]) + name[1:],
			Locale: locale, Role: role, Sites: sites,
		})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	var err error
	w.org, w.orgAdmin, w.key, err = f.seeder.Organization(ctx, "Infogérance Martin", tenant.User{
		Email: testenv.UniqueName("admin") + "@example.test", Name: "Camille", Locale: "en",
	})
	if err != nil {
		t.Fatal(err)
	}
	tid := w.org.ID
	var sites [4]string
	for i := range sites {
		s, err := f.seeder.Site(ctx, tid, fmt.Sprintf("Client %d", i+1))
		if err != nil {
			t.Fatal(err)
		}
		sites[i] = s.ID
	}
	w.orgAdmin2 = mk(tid, "admin2", tenant.OrgAdmin, "fr-FR")
	w.pro = mk(tid, "pro", tenant.ProUser, "en-US")
	w.proFR = mk(tid, "profr", tenant.ProUser, "fr")
	w.siteAdmin = mk(tid, "siteadmin", tenant.SiteAdmin, "en", sites[0], sites[1])
	w.siteUser1 = mk(tid, "siteuser1", tenant.SiteUser, "en", sites[0])
	w.siteUser2 = mk(tid, "siteuser2", tenant.SiteUser, "fr-CA", sites[1])
	w.siteUser3 = mk(tid, "siteuser3", tenant.SiteUser, "en", sites[2])
	w.siteAdmin3 = mk(tid, "siteadmin3", tenant.SiteAdmin, "en", sites[2])
	w.siteUserOrphan = mk(tid, "orphan", tenant.SiteUser, "en", sites[3])

	w.other, w.otherAdmin, w.otherKey, err = f.seeder.Organization(ctx, "Other MSP", tenant.User{
		Email: testenv.UniqueName("otheradmin") + "@example.test", Name: "Otto", Locale: "en",
	})
	if err != nil {
		t.Fatal(err)
	}
	w.otherPro = mk(w.other.ID, "otherpro", tenant.ProUser, "en")
	w.otherSiteUser = mk(w.other.ID, "othersite", tenant.SiteUser, "en")
	ledger.Key(w.key)
	ledger.Key(w.otherKey)
	return w
}

// ------------------------------------------------------------------ calls

func readEvent(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "events", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// event is events/<name> with the caller's sub (none when sub is "") and body.
func event(t *testing.T, name, sub, body string) httpapi.Request {
	t.Helper()
	var req httpapi.Request
	if err := json.Unmarshal(readEvent(t, name), &req); err != nil {
		t.Fatal(err)
	}
	req.Body = body
	if req.RequestContext.Authorizer != nil {
		if sub == "" {
			delete(req.RequestContext.Authorizer.JWT.Claims, "sub")
		} else {
			req.RequestContext.Authorizer.JWT.Claims["sub"] = sub
			req.RequestContext.Authorizer.JWT.Claims["username"] = sub
		}
	}
	return req
}

func (f *fixture) do(t *testing.T, req httpapi.Request) httpapi.Response {
	t.Helper()
	if a, ok := strings.CutPrefix(req.Headers["authorization"], "Bearer "); ok {
		ledger.JWT(a)
	}
	resp, err := f.handler.Handle(t.Context(), req)
	if err != nil {
		t.Fatalf("Handle returned an error to the runtime: %v", err)
	}
	if resp.StatusCode == http.StatusAccepted && req.RouteKey == sendkey.RouteSend {
		// A send's token goes to the mail's addressee; tests that do not read the
		// mail still leave it to the leak check (which refuses a CC or BCC).
		ledger.TokensAsDelivered(t)
	}
	// The claim's 200 carries the key in its cookie, and nowhere else.
	ledger.Answer(testenv.Answer{Entry: req.RouteKey, Status: resp.StatusCode, Headers: resp.Headers, Cookies: resp.Cookies, Body: resp.Body,
		KeyInCookies: resp.StatusCode == http.StatusOK && req.RouteKey == sendkey.RouteClaim})
	return resp
}

func (f *fixture) send(t *testing.T, sender tenant.User, body string) httpapi.Response {
	t.Helper()
	return f.do(t, event(t, "send-key.json", sender.ID, body))
}

func (f *fixture) sendTo(t *testing.T, sender, target tenant.User) httpapi.Response {
	t.Helper()
	return f.send(t, sender, fmt.Sprintf(`{"userId":%q}`, target.ID))
}

func (f *fixture) request(t *testing.T, requester tenant.User, body string) httpapi.Response {
	t.Helper()
	return f.do(t, event(t, "request-key.json", requester.ID, body))
}

// claim spends a link as the signed-in user (POST /org-key/claim, the token in the
// body).
func (f *fixture) claim(t *testing.T, as tenant.User, token string) httpapi.Response {
	t.Helper()
	body, _ := json.Marshal(map[string]string{"token": token})
	return f.do(t, event(t, "claim-key.json", as.ID, string(body)))
}

// page is GET (or HEAD) of a claim link's page.
func (f *fixture) page(t *testing.T, method, acceptLanguage string) httpapi.Response {
	t.Helper()
	req := event(t, "claim-page.json", "", "")
	req.RouteKey = method + " /org-key/claim"
	req.RequestContext.HTTP.Method = method
	req.Headers["accept-language"] = acceptLanguage
	return f.do(t, req)
}

// errorBody decodes a JSON error answer.
func errorBody(t *testing.T, resp httpapi.Response) httpapi.ErrorBody {
	t.Helper()
	var b httpapi.ErrorBody
	if err := json.Unmarshal([]byte(resp.Body), &b); err != nil {
		t.Fatalf("error body %q: %v", resp.Body, err)
	}
	return b
}

func wantError(t *testing.T, resp httpapi.Response, status int, reason string) {
	t.Helper()
	if resp.StatusCode != status {
		t.Fatalf("status %d body %s, want %d (%s)", resp.StatusCode, resp.Body, status, reason)
	}
	if b := errorBody(t, resp); b.Reason != reason || b.Error == "" {
		t.Fatalf("error body %+v, want reason %s", b, reason)
	}
	if resp.Headers["Content-Type"] != "application/json; charset=utf-8" || resp.Headers["Cache-Control"] != "no-store" {
		t.Errorf("error headers %v", resp.Headers)
	}
}

// mailsTo returns the mails the SES emulator holds for addr.
// claimToken takes the claim link out of a mail, checks the text and HTML agree, and
// returns its token.
func claimToken(t *testing.T, m emulators.Email) string {
	t.Helper()
	link := linkIn(t, m.Text, apiOrigin+mail.ClaimPath+"#token=")
	if !strings.Contains(m.HTML, link) && !strings.Contains(m.HTML, strings.ReplaceAll(link, "&", "&amp;")) {
		t.Fatalf("HTML does not carry the text's link %s", link)
	}
	u, err := url.Parse(link)
	if err != nil {
		t.Fatal(err)
	}
	if u.RawQuery != "" {
		t.Fatalf("the link has a query: %s", link)
	}
	frag, err := url.ParseQuery(u.Fragment)
	if err != nil {
		t.Fatal(err)
	}
	tok := frag.Get("token")
	if _, err := orgkey.ParseClaim(tok); err != nil {
		t.Fatalf("mailed token is malformed: %v", err)
	}
	ledger.Token(tok, m.To...)
	return tok
}

func linkIn(t *testing.T, body, prefix string) string {
	t.Helper()
	i := strings.Index(body, prefix)
	if i < 0 {
		t.Fatalf("no link %s... in mail:\n%s", prefix, body)
	}
	end := strings.IndexAny(body[i:], " \n\r\t\"<")
	if end < 0 {
		end = len(body) - i
	}
	return body[i : i+end]
}

// assertNoSecret fails if any form of a key appears in s.
func assertNoSecret(t *testing.T, what, s string, keys ...orgkey.Key) {
	t.Helper()
	for _, k := range keys {
		if strings.Contains(s, k.Reveal()) || strings.Contains(s, strings.ReplaceAll(k.Reveal(), "-", "")) {
			t.Fatalf("%s holds an org key", what)
		}
	}
}

// responseText is every byte of an answer that a client or a log could see.
func responseText(r httpapi.Response) string {
	b, _ := json.Marshal(r)
	return string(b)
}

// setOrg changes attributes of an organization item directly in the table.
func (f *fixture) setOrg(t *testing.T, tid string, attr string, v ddbtypes.AttributeValue) {
	t.Helper()
	_, err := dynamodb.NewFromConfig(f.env.AWSConfig).UpdateItem(t.Context(), &dynamodb.UpdateItemInput{
		TableName:                 &f.env.TableName,
		Key:                       store.OrgItemKey(tid),
		UpdateExpression:          aws.String("SET #a = :v"),
		ExpressionAttributeNames:  map[string]string{"#a": attr},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":v": v},
	})
	if err != nil {
		t.Fatal(err)
	}
}

func (f *fixture) audit(t *testing.T, tid string) []store.AuditRecord {
	t.Helper()
	recs, err := f.store.Audit(t.Context(), tid)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// findAudit returns the records of an action with this outcome and reason ("" : any).
func findAudit(recs []store.AuditRecord, action, outcome, reason string) []store.AuditRecord {
	var out []store.AuditRecord
	for _, r := range recs {
		if r.Action == action && (outcome == "" || r.Outcome == outcome) && (reason == "" || r.Detail["reason"] == reason) {
			out = append(out, r)
		}
	}
	return out
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// ------------------------------------------------------------------ tests

func TestSendRoleMatrix(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	missing := tenant.User{ID: "usr_doesnotexist0000000000000", Email: "nobody-" + testenv.UniqueName("x") + "@example.test"}
	cases := []struct {
		name           string
		sender, target tenant.User
		byEmail        bool
		status         int
		reason         string
		subject        string // for 202: the mail's subject (target's language)
	}{
		{"org admin to pro user", w.orgAdmin, w.pro, false, 202, "", "Your organization key for Infogérance Martin"},
		{"org admin to pro user by email", w.orgAdmin, w.proFR, true, 202, "", "Votre clé d'organisation pour Infogérance Martin"},
		{"org admin to another org admin", w.orgAdmin, w.orgAdmin2, false, 202, "", "Votre clé d'organisation pour Infogérance Martin"},
		{"org admin to self", w.orgAdmin, w.orgAdmin, false, 202, "", "Your organization key for Infogérance Martin"},
		{"org admin to site user", w.orgAdmin, w.siteUser1, false, 403, sendkey.ReasonTargetNotProUser, ""},
		{"org admin to site admin", w.orgAdmin, w.siteAdmin, false, 403, sendkey.ReasonTargetNotProUser, ""},
		{"site admin to site user of a shared site", w.siteAdmin, w.siteUser1, false, 202, "", "Your organization key for Infogérance Martin"},
		{"site admin to site user of a shared site by email", w.siteAdmin, w.siteUser2, true, 202, "", "Votre clé d'organisation pour Infogérance Martin"},
		{"site admin to site user of another site", w.siteAdmin, w.siteUser3, false, 403, sendkey.ReasonNoSharedSite, ""},
		{"site admin to site admin of another site", w.siteAdmin, w.siteAdmin3, false, 403, sendkey.ReasonNoSharedSite, ""},
		{"site admin to pro user", w.siteAdmin, w.pro, false, 403, sendkey.ReasonTargetNotSiteUser, ""},
		{"site admin to org admin", w.siteAdmin, w.orgAdmin, false, 403, sendkey.ReasonTargetNotSiteUser, ""},
		{"pro user as caller", w.pro, w.proFR, false, 403, sendkey.ReasonCallerNotAdmin, ""},
		{"site user as caller", w.siteUser1, w.siteUser1, false, 403, sendkey.ReasonCallerNotAdmin, ""},
		{"site user as caller to a pro user", w.siteUser2, w.pro, false, 403, sendkey.ReasonCallerNotAdmin, ""},
		{"missing user by id", w.orgAdmin, missing, false, 404, sendkey.ReasonUserNotFound, ""},
		{"missing user by email", w.orgAdmin, missing, true, 404, sendkey.ReasonUserNotFound, ""},
		{"other organization's pro user by id", w.orgAdmin, w.otherPro, false, 404, sendkey.ReasonUserNotFound, ""},
		{"other organization's pro user by email", w.orgAdmin, w.otherPro, true, 404, sendkey.ReasonUserNotFound, ""},
		{"other organization's site user, site admin caller", w.siteAdmin, w.otherSiteUser, false, 404, sendkey.ReasonUserNotFound, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			body := fmt.Sprintf(`{"userId":%q}`, tc.target.ID)
			if tc.byEmail {
				body = fmt.Sprintf(`{"email":%q}`, strings.ToUpper(tc.target.Email)) // emails compare case-blind
			}
			before := len(ledger.MailsTo(t, tc.target.Email))
			began := time.Now()
			resp := f.send(t, tc.sender, body)
			assertNoSecret(t, "the answer", responseText(resp), w.key, w.otherKey)
			if strings.Contains(resp.Body, w.other.ID) || (tc.target.TenantID == w.other.ID && strings.Contains(responseText(resp), tc.target.ID)) {
				t.Fatalf("answer names the other organization's ids: %s", resp.Body)
			}
			mails := ledger.MailsTo(t, tc.target.Email)[before:]
			if tc.status != http.StatusAccepted {
				wantError(t, resp, tc.status, tc.reason)
				if len(mails) != 0 {
					t.Fatalf("refused, yet %d mails went to the target", len(mails))
				}
				return
			}
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("status %d %s, want 202", resp.StatusCode, resp.Body)
			}
			var got struct {
				Status    string `json:"status"`
				ExpiresAt string `json:"expiresAt"`
			}
			dec := json.NewDecoder(strings.NewReader(resp.Body))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&got); err != nil || got.Status != "sent" {
				t.Fatalf("body %s: %v", resp.Body, err)
			}
			exp, err := time.Parse(time.RFC3339, got.ExpiresAt)
			if err != nil || exp.Before(began.Add(72*time.Hour-time.Second)) || exp.After(time.Now().Add(72*time.Hour+time.Second)) {
				t.Fatalf("expiresAt %q, want now + 72h", got.ExpiresAt)
			}
			if len(mails) != 1 {
				t.Fatalf("%d mails to the target, want 1", len(mails))
			}
			m := mails[0]
			if m.Subject != tc.subject || !strings.Contains(m.From, mailFrom) {
				t.Errorf("mail from %q subject %q, want subject %q", m.From, m.Subject, tc.subject)
			}
			assertNoSecret(t, "the mail", m.Text+m.HTML+m.Subject, w.key, w.otherKey)
			claimToken(t, m)
		})
	}

	// Every decision past the caller's identity is audited, refusals included.
	recs := f.audit(t, w.org.ID)
	if n := len(findAudit(recs, store.ActionKeySent, "ok", "")); n != 6 {
		t.Errorf("%d send records with outcome ok, want 6", n)
	}
	for _, reason := range []string{sendkey.ReasonTargetNotProUser, sendkey.ReasonNoSharedSite, sendkey.ReasonTargetNotSiteUser, sendkey.ReasonCallerNotAdmin, sendkey.ReasonUserNotFound} {
		if len(findAudit(recs, store.ActionKeySent, "forbidden", reason))+len(findAudit(recs, store.ActionKeySent, "not_found", reason)) == 0 {
			t.Errorf("no audit record for refusal %s", reason)
		}
	}
	for _, r := range recs {
		if r.TargetID == w.otherPro.ID || r.TargetID == w.otherSiteUser.ID {
			t.Errorf("audit record of this organization names another organization's user: %+v", r)
		}
	}
	if recs := f.audit(t, w.other.ID); len(recs) != 0 {
		t.Errorf("the other organization got %d audit records from this one's admins", len(recs))
	}
}

// A target in another organization is answered byte for byte like one that does not
// exist, by id and by email.
func TestCrossTenantTargetIsAnsweredLikeAMissingOne(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	for _, tc := range []struct{ name, missing, other string }{
		{"by id", `{"userId":"usr_0000000000000000000000000"}`, fmt.Sprintf(`{"userId":%q}`, w.otherPro.ID)},
		{"by id, other org's admin", `{"userId":"usr_1111111111111111111111111"}`, fmt.Sprintf(`{"userId":%q}`, w.otherAdmin.ID)},
		{"by email", `{"email":"nobody@example.test"}`, fmt.Sprintf(`{"email":%q}`, w.otherPro.Email)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := f.send(t, w.orgAdmin, tc.missing)
			b := f.send(t, w.orgAdmin, tc.other)
			if a.StatusCode != http.StatusNotFound || !reflect.DeepEqual(a, b) {
				t.Fatalf("missing and cross-tenant answers differ:\n%s\n%s", responseText(a), responseText(b))
			}
		})
	}
	if n := len(ledger.MailsTo(t, w.otherPro.Email)); n != 0 {
		t.Errorf("%d mails to the other organization's user", n)
	}
}

func TestClaimStoresKeyInCookieOnce(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	target := w.pro
	if resp := f.sendTo(t, w.orgAdmin, target); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("send: %d %s", resp.StatusCode, resp.Body)
	}
	token := claimToken(t, testenv.Get(t).MailsTo(t, target.Email)[0])

	// The table holds the token's hash only, bound to the user and key version.
	claims, err := f.store.TenantClaims(t.Context(), w.org.ID)
	if err != nil || len(claims) != 1 {
		t.Fatalf("claims %+v, %v", claims, err)
	}
	tok, _ := orgkey.ParseClaim(token)
	c := claims[0]
	if c.Hash != tok.Hash() || c.UserID != target.ID || c.SentBy != w.orgAdmin.ID || c.KeyVersion != 1 || !c.UsedAt.IsZero() {
		t.Fatalf("stored claim %+v", c)
	}
	if got := c.ExpiresAt.Sub(c.CreatedAt); got != 72*time.Hour {
		t.Errorf("claim lives %v, want 72h", got)
	}

	resp := f.claim(t, target, token)
	if resp.StatusCode != http.StatusOK || resp.Body != `{"status":"stored"}` {
		t.Fatalf("claim: %d %s", resp.StatusCode, resp.Body)
	}
	wantCookie := "__Host-orgkey=" + w.key.Reveal() + "; Max-Age=34560000; Path=/; Secure; HttpOnly; SameSite=Strict"
	if len(resp.Cookies) != 1 || resp.Cookies[0] != wantCookie {
		// Not printed: test keys are keys too.
		t.Fatalf("%d cookies, not the one wanted (__Host-orgkey=<key>; Max-Age=34560000; Path=/; Secure; HttpOnly; SameSite=Strict)", len(resp.Cookies))
	}
	if _, ok := resp.Headers["Set-Cookie"]; ok {
		t.Error("the cookie is also in Headers: one place only")
	}
	if resp.Headers["Cache-Control"] != "no-store" {
		t.Errorf("headers %v", resp.Headers)
	}
	resp.Cookies = nil
	assertNoSecret(t, "the claim answer", responseText(resp), w.key)

	// The link works once.
	wantGone(t, f.claim(t, target, token))

	recs := f.audit(t, w.org.ID)
	ok := findAudit(recs, store.ActionKeyClaimed, "ok", "")
	if len(ok) != 1 || ok[0].TargetID != target.ID || ok[0].ActorID != target.ID || ok[0].SourceIP != "203.0.113.10" || ok[0].UserAgent == "" || ok[0].RequestID == "" || ok[0].TTL != 0 {
		t.Fatalf("claim audit records %+v", ok)
	}
	if len(findAudit(recs, store.ActionKeyClaimed, "not_found", sendkey.ReasonClaimUsed)) != 1 {
		t.Errorf("no audit record for the replay: %+v", recs)
	}
	if !strings.Contains(f.logs.String(), `"outcome":"ok"`) || !strings.Contains(f.logs.String(), `"flow":"claim-key"`) {
		t.Errorf("no claim log line: %s", f.logs.String())
	}
	assertNoSecret(t, "the logs", f.logs.String(), w.key)
	if strings.Contains(f.logs.String(), token) {
		t.Fatal("the token is in the logs")
	}
}

// GET and HEAD of a claim link serve the page in the browser's language, locked down,
// and write nothing: no audit record, no change to the link.
func TestClaimPageChangesNothing(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	if resp := f.sendTo(t, w.orgAdmin, w.pro); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("send: %d %s", resp.StatusCode, resp.Body)
	}
	token := claimToken(t, testenv.Get(t).MailsTo(t, w.pro.Email)[0])
	before := f.audit(t, w.org.ID)
	for _, tc := range []struct{ method, lang, want string }{
		{"GET", "fr-FR,fr;q=0.9", `<html lang="fr">`},
		{"GET", "en-GB", `<html lang="en">`},
		{"GET", "", `<html lang="en">`},
		{"HEAD", "fr", ""},
	} {
		resp := f.page(t, tc.method, tc.lang)
		if resp.StatusCode != http.StatusOK || len(resp.Cookies) != 0 {
			t.Fatalf("%s: %d, %d cookies", tc.method, resp.StatusCode, len(resp.Cookies))
		}
		if tc.want == "" && resp.Body != "" || tc.want != "" && !strings.Contains(resp.Body, tc.want) {
			t.Errorf("%s %q: body %.120q, want %q", tc.method, tc.lang, resp.Body, tc.want)
		}
		wantPageHeaders(t, resp)
	}
	// A token in the page's query (an old link, or a scanner's guess) is ignored.
	req := event(t, "claim-page.json", "", "")
	req.RawQueryString = "token=" + token
	req.QueryStringParameters = map[string]string{"token": token}
	if resp := f.do(t, req); resp.StatusCode != http.StatusOK || len(resp.Cookies) != 0 || strings.Contains(resp.Body, token) {
		t.Fatalf("page with a query token: %d", resp.StatusCode)
	}
	if after := f.audit(t, w.org.ID); len(after) != len(before) {
		t.Errorf("the page wrote %d audit records", len(after)-len(before))
	}
	claims, err := f.store.TenantClaims(t.Context(), w.org.ID)
	if err != nil || len(claims) != 1 || !claims[0].UsedAt.IsZero() || claims[0].Attempts != 0 {
		t.Fatalf("the link changed: %+v, %v", claims, err)
	}
	if r := f.claim(t, w.pro, token); r.StatusCode != http.StatusOK {
		t.Fatalf("the addressee's claim after the page: %d %s", r.StatusCode, r.Body)
	}
}

// Another signed-in user is refused (403) and the link left live; the fifth such
// attempt revokes it and mails the admin who sent it. No session and a token in the
// query change nothing.
func TestClaimOnlyByItsAddressee(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	if resp := f.sendTo(t, w.orgAdmin, w.pro); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("send: %d %s", resp.StatusCode, resp.Body)
	}
	token := claimToken(t, testenv.Get(t).MailsTo(t, w.pro.Email)[0])
	body, _ := json.Marshal(map[string]string{"token": token})

	wantError(t, f.do(t, event(t, "claim-key.json", "", string(body))), http.StatusUnauthorized, "missing_identity")
	inQuery := event(t, "claim-key.json", w.pro.ID, "")
	inQuery.RawQueryString = "token=" + token
	inQuery.QueryStringParameters = map[string]string{"token": token}
	wantError(t, f.do(t, inQuery), http.StatusBadRequest, "query_not_allowed")

	intruders := []tenant.User{w.orgAdmin, w.proFR, w.otherAdmin, w.otherPro}
	for i, u := range intruders {
		wantError(t, f.claim(t, u, token), http.StatusForbidden, sendkey.ReasonClaimWrongUser)
		c := f.claimOf(t, w.org.ID)
		if !c.UsedAt.IsZero() || !c.RevokedAt.IsZero() || c.Attempts != i+1 {
			t.Fatalf("after %d wrong users the link is %+v", i+1, c)
		}
	}
	recs := findAudit(f.audit(t, w.org.ID), store.ActionKeyClaimed, "forbidden", sendkey.ReasonClaimWrongUser)
	if len(recs) != len(intruders) || recs[0].ActorID != w.orgAdmin.ID || recs[0].TargetID != w.pro.ID {
		t.Fatalf("wrong-user audit records %+v", recs)
	}
	// The addressee can still spend it... in another world; here the fifth intruder
	// revokes it and the sending admin is told.
	wantError(t, f.claim(t, w.siteAdmin, token), http.StatusForbidden, sendkey.ReasonClaimWrongUser)
	if c := f.claimOf(t, w.org.ID); c.RevokedAt.IsZero() || !c.UsedAt.IsZero() {
		t.Fatalf("after %d wrong users the link is %+v, want revoked", store.MaxClaimAttempts, c)
	}
	var revokedMail bool
	for _, m := range testenv.Get(t).MailsTo(t, w.orgAdmin.Email) {
		if strings.Contains(m.Subject, "revoked") && strings.Contains(m.Text, w.pro.Email) && strings.Contains(m.Text, "5 times") {
			revokedMail = true
			assertNoSecret(t, "the revoked mail", m.Text+m.HTML, w.key)
		}
	}
	if !revokedMail {
		t.Fatal("the sending admin was not told the link was revoked")
	}
	wantGone(t, f.claim(t, w.pro, token))
	wantError(t, f.claim(t, w.proFR, token), http.StatusForbidden, sendkey.ReasonClaimWrongUser)
	if n := len(testenv.Get(t).MailsTo(t, w.orgAdmin.Email)); n != 1 {
		t.Errorf("%d mails to the admin, want the one", n)
	}
}

// A new send supersedes the target's earlier unspent link.
func TestNewSendSupersedesEarlierLink(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	for range 2 {
		if resp := f.sendTo(t, w.orgAdmin, w.pro); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("send: %d %s", resp.StatusCode, resp.Body)
		}
	}
	mails := testenv.Get(t).MailsTo(t, w.pro.Email)
	if len(mails) != 2 {
		t.Fatalf("%d mails", len(mails))
	}
	first, second := claimToken(t, mails[0]), claimToken(t, mails[1])
	wantGone(t, f.claim(t, w.pro, first))
	if len(findAudit(f.audit(t, w.org.ID), store.ActionKeyClaimed, "not_found", sendkey.ReasonClaimReplaced)) != 1 {
		t.Error("no audit record for the superseded link")
	}
	if r := f.claim(t, w.pro, second); r.StatusCode != http.StatusOK {
		t.Fatalf("the newer link: %d %s", r.StatusCode, r.Body)
	}
}

// Claims of tokens that name no link leave expiring records, at most
// DefaultUnknownClaimLimit per source IP and hour; beyond, 429 with Retry-After and
// nothing written.
func TestUnknownClaimsAreBounded(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	ip := fmt.Sprintf("198.51.100.%d", time.Now().UnixNano()%250+1)
	claimFrom := func() httpapi.Response {
		req := event(t, "claim-key.json", w.pro.ID, `{"token":"not-a-token"}`)
		req.RequestContext.HTTP.SourceIP = ip
		return f.do(t, req)
	}
	for range sendkey.DefaultUnknownClaimLimit {
		wantGone(t, claimFrom())
	}
	over := claimFrom()
	wantError(t, over, http.StatusTooManyRequests, "rate_limited")
	if ra, err := strconv.Atoi(over.Headers["Retry-After"]); err != nil || ra < 1 || ra > 3601 {
		t.Errorf("Retry-After %q", over.Headers["Retry-After"])
	}
	var mine []store.AuditRecord
	for _, r := range f.audit(t, sendkey.UnknownTenant) {
		if r.SourceIP == ip {
			mine = append(mine, r)
		}
	}
	if len(mine) != sendkey.DefaultUnknownClaimLimit {
		t.Fatalf("%d records for %s, want %d", len(mine), ip, sendkey.DefaultUnknownClaimLimit)
	}
	for _, r := range mine {
		if r.TTL < time.Now().Unix() || r.TTL > time.Now().Add(sendkey.UnknownAuditTTL+time.Hour).Unix() {
			t.Fatalf("unknown-tenant record without a TTL: %+v", r)
		}
	}
}

// claimOf is the organization's one stored link.
func (f *fixture) claimOf(t *testing.T, tid string) store.Claim {
	t.Helper()
	claims, err := f.store.TenantClaims(t.Context(), tid)
	if err != nil || len(claims) != 1 {
		t.Fatalf("claims %+v, %v", claims, err)
	}
	return claims[0]
}

func wantPageHeaders(t *testing.T, resp httpapi.Response) {
	t.Helper()
	for k, v := range map[string]string{
		"Content-Type":           "text/html; charset=utf-8",
		"Cache-Control":          "no-store",
		"Referrer-Policy":        "no-referrer",
		"X-Content-Type-Options": "nosniff",
	} {
		if got := resp.Headers[k]; got != v {
			t.Errorf("header %s = %q, want %q", k, got, v)
		}
	}
	csp := resp.Headers["Content-Security-Policy"]
	for _, want := range []string{"default-src 'none'", "script-src 'sha256-", "form-action 'none'", "frame-ancestors 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
}

// wantGone: the one 410 answer, whatever the reason, and no cookie.
func wantGone(t *testing.T, resp httpapi.Response) {
	t.Helper()
	if len(resp.Cookies) != 0 {
		t.Fatalf("a refused claim set %d cookies", len(resp.Cookies))
	}
	wantError(t, resp, http.StatusGone, "link_gone")
}

func TestConcurrentClaimsGiveTheKeyOnce(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	if resp := f.sendTo(t, w.siteAdmin, w.siteUser1); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("send: %d %s", resp.StatusCode, resp.Body)
	}
	token := claimToken(t, ledger.MailsTo(t, w.siteUser1.Email)[0])
	const n = 16
	resps := make([]httpapi.Response, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			resps[i] = f.claim(t, w.siteUser1, token)
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, r := range resps {
		switch r.StatusCode {
		case http.StatusOK:
			won++
			if len(r.Cookies) != 1 || !strings.Contains(r.Cookies[0], w.key.Reveal()) {
				t.Errorf("winner without the key cookie (%d cookies)", len(r.Cookies))
			}
		case http.StatusGone:
			wantGone(t, r)
		default:
			t.Errorf("unexpected answer %d %s", r.StatusCode, r.Body)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent claims got the key, want exactly 1", won, n)
	}
	recs := f.audit(t, w.org.ID)
	if got := len(findAudit(recs, store.ActionKeyClaimed, "ok", "")); got != 1 {
		t.Errorf("%d successful claim records, want 1", got)
	}
	if got := len(findAudit(recs, store.ActionKeyClaimed, "not_found", sendkey.ReasonClaimUsed)); got != n-1 {
		t.Errorf("%d replay records, want %d", got, n-1)
	}
}

// Every refused link gets the same page and an audit record with its reason, under the
// organization when the link names one.
func TestClaimRefusals(t *testing.T) {
	cases := []struct {
		name   string
		reason string
		// prepare breaks a fresh, valid link (token) of w and returns the token to open.
		prepare func(t *testing.T, f *fixture, w *world, token string) string
		known   bool // the audit record lands under the organization
	}{
		{"expired", sendkey.ReasonClaimExpired, func(t *testing.T, f *fixture, w *world, tok string) string {
			later := time.Now().Add(72*time.Hour + time.Minute)
			f.svc.Now = func() time.Time { return later }
			return tok
		}, true},
		{"key version bumped (key reset since)", sendkey.ReasonClaimSuperseded, func(t *testing.T, f *fixture, w *world, tok string) string {
			f.setOrg(t, w.org.ID, "keyVersion", &ddbtypes.AttributeValueMemberN{Value: "2"})
			return tok
		}, true},
		{"organization being reset", sendkey.ReasonClaimOrgUnavailable, func(t *testing.T, f *fixture, w *world, tok string) string {
			f.setOrg(t, w.org.ID, "status", &ddbtypes.AttributeValueMemberS{Value: string(tenant.Resetting)})
			return tok
		}, true},
		{"user deleted after the link was sent", sendkey.ReasonClaimUserGone, func(t *testing.T, f *fixture, w *world, tok string) string {
			if err := f.store.DeleteUser(t.Context(), w.org.ID, w.pro.ID); err != nil {
				t.Fatal(err)
			}
			return tok
		}, true},
		{"already used", sendkey.ReasonClaimUsed, func(t *testing.T, f *fixture, w *world, tok string) string {
			if r := f.claim(t, w.pro, tok); r.StatusCode != http.StatusOK {
				t.Fatalf("first claim %d", r.StatusCode)
			}
			return tok
		}, true},
		{"unknown token", sendkey.ReasonClaimUnknown, func(t *testing.T, f *fixture, w *world, tok string) string {
			other, err := orgkey.NewClaimToken(strings.NewReader(strings.Repeat("x", 64)))
			if err != nil {
				t.Fatal(err)
			}
			return other.Reveal()
		}, false},
		{"malformed token", sendkey.ReasonClaimMalformed, func(*testing.T, *fixture, *world, string) string { return "not-a-token" }, false},
		{"empty token", sendkey.ReasonClaimMalformed, func(*testing.T, *fixture, *world, string) string { return "" }, false},
		{"truncated token", sendkey.ReasonClaimMalformed, func(_ *testing.T, _ *fixture, _ *world, tok string) string { return tok[:len(tok)-1] }, false},
		{"token with a character changed", sendkey.ReasonClaimUnknown, func(_ *testing.T, _ *fixture, _ *world, tok string) string {
			c := byte('A')
			if tok[10] == 'A' {
				c = 'B'
			}
			return tok[:10] + string(c) + tok[11:]
		}, false},
		{"two tokens joined (repeated query parameter)", sendkey.ReasonClaimMalformed, func(_ *testing.T, _ *fixture, _ *world, tok string) string { return tok + "," + tok }, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			w := f.newWorld(t)
			if resp := f.sendTo(t, w.orgAdmin, w.pro); resp.StatusCode != http.StatusAccepted {
				t.Fatalf("send: %d %s", resp.StatusCode, resp.Body)
			}
			token := claimToken(t, ledger.MailsTo(t, w.pro.Email)[0])
			open := tc.prepare(t, f, w, token)
			wantGone(t, f.claim(t, w.pro, open))

			tid := sendkey.UnknownTenant
			if tc.known {
				tid = w.org.ID
			}
			recs := findAudit(f.audit(t, tid), store.ActionKeyClaimed, "not_found", tc.reason)
			var mine []store.AuditRecord
			for _, r := range recs {
				if !tc.known || r.TargetID == w.pro.ID {
					mine = append(mine, r)
				}
			}
			if len(mine) == 0 {
				t.Fatalf("no audit record with reason %s under %s", tc.reason, tid)
			}
			if !strings.Contains(f.logs.String(), tc.reason) {
				t.Errorf("log line lacks the reason %s", tc.reason)
			}
			if strings.Contains(f.logs.String(), token) {
				t.Fatal("the token is in the logs")
			}
		})
	}
}

// While the organization is being reset, the JWT routes answer 409.
func TestResettingOrganizationConflicts(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	f.setOrg(t, w.org.ID, "status", &ddbtypes.AttributeValueMemberS{Value: string(tenant.Resetting)})
	wantError(t, f.sendTo(t, w.orgAdmin, w.pro), http.StatusConflict, "organization_resetting")
	wantError(t, f.request(t, w.pro, ""), http.StatusConflict, "organization_resetting")
	if n := len(ledger.MailsTo(t, w.pro.Email)) + len(testenv.Get(t).MailsTo(t, w.orgAdmin.Email)); n != 0 {
		t.Errorf("%d mails while resetting", n)
	}
}

func TestCallerIdentity(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	wantError(t, f.send(t, tenant.User{}, fmt.Sprintf(`{"userId":%q}`, w.pro.ID)), http.StatusUnauthorized, "missing_identity")
	wantError(t, f.send(t, tenant.User{ID: "sub-of-nobody"}, fmt.Sprintf(`{"userId":%q}`, w.pro.ID)), http.StatusForbidden, "unknown_user")
	// An admin deleted after the token was issued is refused at once.
	if err := f.store.DeleteUser(t.Context(), w.org.ID, w.orgAdmin2.ID); err != nil {
		t.Fatal(err)
	}
	wantError(t, f.sendTo(t, w.orgAdmin2, w.pro), http.StatusForbidden, "unknown_user")
	wantError(t, f.request(t, tenant.User{}, ""), http.StatusUnauthorized, "missing_identity")
	if n := len(ledger.MailsTo(t, w.pro.Email)); n != 0 {
		t.Errorf("%d mails", n)
	}
}

func TestSendBadBodies(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	cases := []struct{ name, body, reason string }{
		{"empty", "", "empty_body"},
		{"not JSON", `{"userId":`, "malformed_body"},
		{"array", `["x"]`, "malformed_body"},
		{"string", `"x"`, "malformed_body"},
		{"unknown field", fmt.Sprintf(`{"userId":%q,"role":"org_admin"}`, w.pro.ID), "unknown_field"},
		{"duplicated field", fmt.Sprintf(`{"userId":%q,"userId":%q}`, w.siteUser1.ID, w.pro.ID), "duplicate_field"},
		{"trailing data", fmt.Sprintf(`{"userId":%q} {}`, w.pro.ID), "malformed_body"},
		{"both userId and email", fmt.Sprintf(`{"userId":%q,"email":%q}`, w.pro.ID, w.pro.Email), "userid_or_email_required"},
		{"neither", `{}`, "userid_or_email_required"},
		{"null userId", `{"userId":null}`, "userid_or_email_required"},
		{"userId not a string", `{"userId":42}`, "malformed_body"},
		{"userId with a space", `{"userId":"usr_a b"}`, "invalid_user_id"},
		{"userId too long", fmt.Sprintf(`{"userId":%q}`, strings.Repeat("u", 200)), "invalid_user_id"},
		{"invalid email", `{"email":"not-an-address"}`, "invalid_email"},
		{"email with display name", fmt.Sprintf(`{"email":"Pro <%s>"}`, w.pro.Email), "invalid_email"},
		{"too large", fmt.Sprintf(`{"userId":%q}`, strings.Repeat("u", 5000)), "body_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, f.send(t, w.orgAdmin, tc.body), http.StatusBadRequest, tc.reason)
		})
	}
	t.Run("form content type", func(t *testing.T) {
		req := event(t, "send-key.json", w.orgAdmin.ID, fmt.Sprintf(`{"userId":%q}`, w.pro.ID))
		req.Headers["content-type"] = "application/x-www-form-urlencoded"
		wantError(t, f.do(t, req), http.StatusBadRequest, "unsupported_media_type")
	})
	if n := len(ledger.MailsTo(t, w.pro.Email)); n != 0 {
		t.Errorf("%d mails from bad bodies", n)
	}
	if claims, err := f.store.TenantClaims(t.Context(), w.org.ID); err != nil || len(claims) != 0 {
		t.Errorf("%d claim links stored from bad bodies (%v)", len(claims), err)
	}
}

// The send limit is counted atomically in the table: concurrent sends by one admin
// never pass it, and other admins keep their own.
func TestSendRateLimit(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	f.svc.SendLimit = 5
	now := time.Now() // one fixed window for the whole test
	f.svc.Now = func() time.Time { return now }
	const n = 12
	resps := make([]httpapi.Response, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { resps[i] = f.sendTo(t, w.orgAdmin, w.pro) })
	}
	wg.Wait()
	counts := map[int]int{}
	for _, r := range resps {
		counts[r.StatusCode]++
		if r.StatusCode == http.StatusTooManyRequests {
			wantError(t, r, http.StatusTooManyRequests, "rate_limited")
		}
	}
	if counts[http.StatusAccepted] != 5 || counts[http.StatusTooManyRequests] != n-5 {
		t.Fatalf("answers %v, want 5 x 202 and %d x 429", counts, n-5)
	}
	if got := len(ledger.MailsTo(t, w.pro.Email)); got != 5 {
		t.Errorf("%d mails, want 5", got)
	}
	// Refused sends count too, so probing for users is bounded.
	wantError(t, f.send(t, w.orgAdmin, `{"userId":"usr_probe"}`), http.StatusTooManyRequests, "rate_limited")
	// Another admin has their own budget.
	if r := f.sendTo(t, w.orgAdmin2, w.pro); r.StatusCode != http.StatusAccepted {
		t.Fatalf("other admin: %d %s", r.StatusCode, r.Body)
	}
	// The next window starts afresh.
	later := now.Add(time.Hour)
	f.svc.Now = func() time.Time { return later }
	if r := f.sendTo(t, w.orgAdmin, w.pro); r.StatusCode != http.StatusAccepted {
		t.Fatalf("next hour: %d %s", r.StatusCode, r.Body)
	}
	if len(findAudit(f.audit(t, w.org.ID), store.ActionKeySent, "rate_limited", "rate_limited")) != n-5+1 {
		t.Errorf("rate-limited sends are not all audited")
	}
}

func TestRequestKey(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	type want struct {
		admins    []tenant.User
		notAdmins []tenant.User
	}
	cases := []struct {
		name      string
		requester tenant.User
		want      want
	}{
		{"pro user asks the org admins", w.pro, want{
			admins: []tenant.User{w.orgAdmin, w.orgAdmin2}, notAdmins: []tenant.User{w.siteAdmin, w.siteAdmin3}}},
		{"site user asks the site admins of their sites", w.siteUser2, want{
			admins: []tenant.User{w.siteAdmin}, notAdmins: []tenant.User{w.siteAdmin3, w.orgAdmin, w.orgAdmin2}}},
		{"org admin asks the other org admins", w.orgAdmin, want{
			admins: []tenant.User{w.orgAdmin2}, notAdmins: []tenant.User{w.siteAdmin}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := map[string]int{}
			for _, a := range append(append([]tenant.User{}, tc.want.admins...), tc.want.notAdmins...) {
				before[a.Email] = len(ledger.MailsTo(t, a.Email))
			}
			resp := f.request(t, tc.requester, "")
			if resp.StatusCode != http.StatusAccepted || resp.Body != `{"status":"requested"}` {
				t.Fatalf("request: %d %s", resp.StatusCode, resp.Body)
			}
			for _, a := range tc.want.admins {
				mails := ledger.MailsTo(t, a.Email)[before[a.Email]:]
				if len(mails) != 1 {
					t.Fatalf("%d mails to admin %s, want 1", len(mails), a.Name)
				}
				m := mails[0]
				subject := "asks for the organization key"
				if mail.Language(a.Locale) == "fr" {
					subject = "demande la clé d'organisation"
				}
				if !strings.Contains(m.Subject, tc.requester.Name) || !strings.Contains(m.Subject, subject) {
					t.Errorf("subject %q, want %q in the admin's language", m.Subject, subject)
				}
				link := appURL + "/users/" + tc.requester.ID + "/send-org-key"
				if !strings.Contains(m.Text, link) || !strings.Contains(m.HTML, link) {
					t.Errorf("mail lacks the one-click link %s", link)
				}
				assertNoSecret(t, "the request mail", m.Text+m.HTML, w.key)
				if strings.Contains(m.Text, "/org-key/claim") {
					t.Error("a request mail carries a claim link")
				}
			}
			for _, a := range tc.want.notAdmins {
				if got := len(ledger.MailsTo(t, a.Email)) - before[a.Email]; got != 0 {
					t.Errorf("%d mails to %s, who may not send to the requester", got, a.Name)
				}
			}
		})
	}

	t.Run("nobody can send", func(t *testing.T) {
		wantError(t, f.request(t, w.siteUserOrphan, ""), http.StatusConflict, "no_admin_available")
	})
	t.Run("empty object body", func(t *testing.T) {
		if r := f.request(t, w.siteUser1, "{}"); r.StatusCode != http.StatusAccepted {
			t.Fatalf("%d %s", r.StatusCode, r.Body)
		}
	})
	t.Run("free text is refused", func(t *testing.T) {
		wantError(t, f.request(t, w.siteUser1, `{"message":"urgent, click here"}`), http.StatusBadRequest, "unknown_field")
	})
	t.Run("rate limit", func(t *testing.T) {
		for i := range 3 {
			if r := f.request(t, w.proFR, ""); r.StatusCode != http.StatusAccepted {
				t.Fatalf("request %d: %d %s", i+1, r.StatusCode, r.Body)
			}
		}
		wantError(t, f.request(t, w.proFR, ""), http.StatusTooManyRequests, "rate_limited")
	})
	recs := f.audit(t, w.org.ID)
	if got := len(findAudit(recs, store.ActionKeyRequested, "ok", "")); got != 3+1+3 {
		t.Errorf("%d successful request records, want 7", got)
	}
	if len(findAudit(recs, store.ActionKeyRequested, "conflict", "no_admin_available")) != 1 ||
		len(findAudit(recs, store.ActionKeyRequested, "rate_limited", "rate_limited")) != 1 {
		t.Errorf("refused requests are not audited: %+v", recs)
	}
}

func TestUnknownRoute(t *testing.T) {
	f := newFixture(t)
	req := event(t, "send-key.json", "x", "{}")
	req.RouteKey = "DELETE /org-key/send"
	wantError(t, f.do(t, req), http.StatusNotFound, "route_not_found")
}

// SES down: the send answers 502, and the stored link is harmless (nobody holds its
// token). KMS down: the claim answers 502 and the link stays usable.
func TestDependencyFailures(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	f.faults.Add(faultinject.Rule{Service: faultinject.SES, To: -1, Kind: faultinject.Unreachable})
	resp := f.sendTo(t, w.orgAdmin, w.pro)
	wantError(t, resp, http.StatusBadGateway, "unavailable")
	if strings.Contains(resp.Body, "127.0.0.1") || strings.Contains(resp.Body, "dial") {
		t.Errorf("answer leaks internals: %s", resp.Body)
	}
	f.faults.Clear()

	if r := f.sendTo(t, w.orgAdmin, w.pro); r.StatusCode != http.StatusAccepted {
		t.Fatalf("send: %d %s", r.StatusCode, r.Body)
	}
	token := claimToken(t, ledger.MailsTo(t, w.pro.Email)[0])
	f.faults.Add(faultinject.Rule{Service: faultinject.KMS, To: -1, Kind: faultinject.Unreachable})
	r := f.claim(t, w.pro, token)
	if len(r.Cookies) != 0 || strings.Contains(r.Body, "127.0.0.1") {
		t.Fatalf("KMS down: %d, %d cookies, %.100s", r.StatusCode, len(r.Cookies), r.Body)
	}
	wantError(t, r, http.StatusBadGateway, "unavailable")
	f.faults.Clear()
	if r := f.claim(t, w.pro, token); r.StatusCode != http.StatusOK {
		t.Fatalf("after KMS recovered: %d, want the link still usable", r.StatusCode)
	}
}

// CLAIM_BASE_URL, when set, is where the links point (the web app's origin that
// forwards /org-key/claim to the API, so that the cookie lands on the app).
func TestClaimBaseURL(t *testing.T) {
	f := newFixture(t)
	w := f.newWorld(t)
	f.svc.ClaimBaseURL = "https://vault.example.test"
	if r := f.sendTo(t, w.orgAdmin, w.pro); r.StatusCode != http.StatusAccepted {
		t.Fatalf("send: %d %s", r.StatusCode, r.Body)
	}
	m := ledger.MailsTo(t, w.pro.Email)[0]
	link := linkIn(t, m.Text, "https://vault.example.test/org-key/claim#token=")
	ledger.Token(strings.TrimPrefix(link, "https://vault.example.test/org-key/claim#token="), m.To...)
	if strings.Contains(m.Text, "execute-api") {
		t.Error("link still points at the API domain")
	}
}

// The sample events decode strictly into aws-lambda-go's type and survive a round
// trip; they carry the route keys the handler dispatches on.
func TestSampleEventsRoundTrip(t *testing.T) {
	for _, tc := range []struct{ file, route string }{
		{"send-key.json", sendkey.RouteSend},
		{"send-key-by-email.json", sendkey.RouteSend},
		{"claim-key.json", sendkey.RouteClaim},
		{"claim-page.json", sendkey.RouteClaimPage},
		{"request-key.json", sendkey.RouteRequest},
	} {
		t.Run(tc.file, func(t *testing.T) {
			raw := readEvent(t, tc.file)
			var ev events.APIGatewayV2HTTPRequest
			dec := json.NewDecoder(bytes.NewReader(raw))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&ev); err != nil {
				t.Fatalf("%s: %v", tc.file, err)
			}
			back, err := json.Marshal(ev)
			if err != nil {
				t.Fatal(err)
			}
			var again events.APIGatewayV2HTTPRequest
			if err := json.Unmarshal(back, &again); err != nil || !reflect.DeepEqual(ev, again) {
				t.Fatalf("round trip changed the event: %v", err)
			}
			if ev.RouteKey != tc.route || ev.RequestContext.RouteKey != tc.route || ev.Version != "2.0" {
				t.Errorf("route %q / %q, want %q", ev.RouteKey, ev.RequestContext.RouteKey, tc.route)
			}
			jwt := ev.RequestContext.Authorizer != nil && ev.RequestContext.Authorizer.JWT != nil
			if wantJWT := tc.route != sendkey.RouteClaimPage; jwt != wantJWT || (jwt && ev.RequestContext.Authorizer.JWT.Claims["sub"] == "") {
				t.Errorf("JWT claims present = %v, want %v (with a sub)", jwt, wantJWT)
			}
		})
	}
}
