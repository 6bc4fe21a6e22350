package revealkey_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/revealkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
	"github.com/mspvault/orgkey/internal/testing/faultinject"
	"github.com/mspvault/orgkey/internal/testing/fixtures"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.Main(m, ledger.Check(testenv.Need{Keys: true, Answers: true})))
}

// ledger is the package's leak check (testenv.Ledger): every key the tests saw,
// every answer and every log line, checked by TestMain.
var ledger = testenv.NewLedger()

const mailFrom = "no-reply@orgkey.test"

// world is one organization with every role, and a second organization.
type world struct {
	env                                     *testenv.Env
	st                                      *store.Store
	org, other                              tenant.Org
	key                                     orgkey.Key
	admin, admin2, pro, siteAdmin, siteUser tenant.User
	outsider                                tenant.User
	handler                                 *revealkey.Handler
	faults                                  *faultinject.Injector // in the handler's aws.Config; disarmed
	logs                                    *testenv.LogBuffer
	now                                     time.Time
}

func newWorld(t *testing.T, rate int) *world {
	t.Helper()
	env := testenv.Get(t)
	ctx := t.Context()
	st := store.New(dynamodb.NewFromConfig(env.AWSConfig), env.TableName)
	kc := kms.NewFromConfig(env.AWSConfig)
	sd := fixtures.New(st, &keywrap.Wrapper{KMS: kc, KeyID: env.KMSKeyID})
	w := &world{env: env, st: st, faults: &faultinject.Injector{}, logs: testenv.NewLogBuffer(ledger.Logs), now: time.Now()}
	mk := func(tid string, role tenant.Role, locale string, sites ...string) tenant.User {
		u, err := sd.User(ctx, tid, tenant.User{Email: testenv.UniqueName(string(role)) + "@example.test", Name: "N " + string(role), Locale: locale, Role: role, Sites: sites})
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	var err error
	w.org, w.admin, w.key, err = sd.Organization(ctx, "Acme IT", tenant.User{Email: testenv.UniqueName("admin") + "@example.test", Name: "Alice", Locale: "fr-FR"})
	if err != nil {
		t.Fatal(err)
	}
	site, err := sd.Site(ctx, w.org.ID, "Clinic")
	if err != nil {
		t.Fatal(err)
	}
	w.admin2 = mk(w.org.ID, tenant.OrgAdmin, "en")
	w.pro = mk(w.org.ID, tenant.ProUser, "en")
	w.siteAdmin = mk(w.org.ID, tenant.SiteAdmin, "en", site.ID)
	w.siteUser = mk(w.org.ID, tenant.SiteUser, "en", site.ID)
	var otherKey orgkey.Key
	w.other, w.outsider, otherKey, err = sd.Organization(ctx, "Other MSP", tenant.User{Email: testenv.UniqueName("x") + "@example.test", Name: "Xavier"})
	if err != nil {
		t.Fatal(err)
	}
	ledger.Key(w.key)
	ledger.Key(otherKey)
	// The injector sits in the stack only; the retryer stays the SDK's, as in the function.
	cfg := env.AWSConfig.Copy()
	cfg.APIOptions = append(slices.Clip(cfg.APIOptions), w.faults.Register)
	w.handler, err = revealkey.New(revealkey.Config{
		Common:        lambdamain.Common{TableName: env.TableName, KMSKeyID: env.KMSKeyID, MailFrom: mailFrom, AppURL: "https://vault.example.test"},
		StepUpSeconds: 300, RatePerHour: rate,
	}, cfg, slog.New(slog.NewJSONHandler(w.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	w.handler.Service.Now = func() time.Time { return w.now }
	return w
}

// event is events/reveal-key.json for a caller who signed in authAgo ago.
func (w *world) event(t *testing.T, sub string, authAgo time.Duration) events.APIGatewayV2HTTPRequest {
	t.Helper()
	raw, err := os.ReadFile("../../events/reveal-key.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	claims := ev.RequestContext.Authorizer.JWT.Claims
	claims["sub"] = sub
	claims["username"] = sub
	claims["auth_time"] = strconv.FormatInt(w.now.Add(-authAgo).Unix(), 10)
	return ev
}

func (w *world) call(t *testing.T, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	t.Helper()
	if a, ok := strings.CutPrefix(ev.Headers["authorization"], "Bearer "); ok {
		ledger.JWT(a)
	}
	resp, err := w.handler.Handle(t.Context(), ev)
	if err != nil {
		t.Fatalf("handler returned an error (it must answer every request): %v", err)
	}
	ledger.Answer(testenv.Answer{Entry: ev.RouteKey, Status: resp.StatusCode, Headers: resp.Headers, Cookies: resp.Cookies, Body: resp.Body,
		KeyInBody: resp.StatusCode == http.StatusOK})
	if strings.Contains(resp.Body, w.key.Reveal()) && resp.StatusCode != http.StatusOK {
		t.Fatalf("a %d answer holds the key", resp.StatusCode)
	}
	return resp
}

type errorBody struct{ Error, Reason string }

func reason(t *testing.T, resp events.APIGatewayV2HTTPResponse) string {
	t.Helper()
	var b errorBody
	if err := json.Unmarshal([]byte(resp.Body), &b); err != nil || b.Error == "" {
		t.Fatalf("error body %q is not {error, reason}", resp.Body)
	}
	return b.Reason
}

func TestRevealByAdmins(t *testing.T) {
	w := newWorld(t, 10)
	for _, tc := range []struct {
		name     string
		viewer   tenant.User
		notified []tenant.User
	}{
		{"org admin", w.admin, []tenant.User{w.admin2}},
		{"site admin", w.siteAdmin, []tenant.User{w.admin, w.admin2}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := w.event(t, tc.viewer.ID, time.Minute)
			resp := w.call(t, ev)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d %s", resp.StatusCode, resp.Body)
			}
			var body struct {
				OrgKey     string `json:"orgKey"`
				KeyVersion int    `json:"keyVersion"`
			}
			if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
				t.Fatal(err)
			}
			if body.OrgKey != w.key.Reveal() || body.KeyVersion != 1 {
				t.Fatalf("body = %+v", body)
			}
			if resp.Headers["Cache-Control"] != "no-store" {
				t.Errorf("Cache-Control = %q, want no-store", resp.Headers["Cache-Control"])
			}
			// Audited: who, when, from where.
			recs, err := w.st.Audit(t.Context(), w.org.ID)
			if err != nil {
				t.Fatal(err)
			}
			found := false
			for _, r := range recs {
				if r.Action == store.ActionKeyRevealed && r.ActorID == tc.viewer.ID && r.Outcome == "shown" &&
					r.SourceIP == "203.0.113.7" && strings.HasPrefix(r.UserAgent, "Mozilla/5.0") && r.At != "" {
					found = true
				}
			}
			if !found {
				t.Fatalf("no audit record for the reveal: %+v", recs)
			}
			// The other org admins are told, the viewer is not; no notice carries the key.
			for _, u := range []tenant.User{w.admin, w.admin2, w.pro, w.siteAdmin, w.siteUser} {
				mails, err := w.env.EmailsTo(t.Context(), u.Email)
				if err != nil {
					t.Fatal(err)
				}
				want := 0
				for _, n := range tc.notified {
					if n.ID == u.ID {
						want = 1
					}
				}
				got := 0
				for _, m := range mails {
					if strings.Contains(m.Text+m.HTML, w.key.Reveal()) {
						t.Fatal("a notice holds the key")
					}
					if strings.Contains(m.Text, tc.viewer.Email) {
						got++
					}
				}
				if got != want {
					t.Errorf("%s (%s): %d notices about %s, want %d", u.Name, u.Role, got, tc.viewer.Name, want)
				}
			}
		})
	}
	// The French-speaking admin got the notice in French.
	mails := w.env.MailsTo(t, w.admin.Email)
	if len(mails) == 0 || !strings.Contains(mails[0].Subject, "La clé d'organisation") {
		t.Errorf("French admin's notice: %+v", mails)
	}
	if strings.Contains(w.logs.String(), w.key.Reveal()) {
		t.Fatal("the key appears in the logs")
	}
}

func TestRevealRefusals(t *testing.T) {
	w := newWorld(t, 100)
	cases := []struct {
		name   string
		ev     func() events.APIGatewayV2HTTPRequest
		status int
		reason string
	}{
		{"pro user", func() events.APIGatewayV2HTTPRequest { return w.event(t, w.pro.ID, time.Minute) }, 403, "caller_not_admin"},
		{"site user", func() events.APIGatewayV2HTTPRequest { return w.event(t, w.siteUser.ID, time.Minute) }, 403, "caller_not_admin"},
		{"stale sign-in", func() events.APIGatewayV2HTTPRequest { return w.event(t, w.admin.ID, 6*time.Minute) }, 401, "reauthentication_required"},
		{"sign-in in the future", func() events.APIGatewayV2HTTPRequest { return w.event(t, w.admin.ID, -10*time.Minute) }, 401, "reauthentication_required"},
		{"no auth_time", func() events.APIGatewayV2HTTPRequest {
			ev := w.event(t, w.admin.ID, 0)
			delete(ev.RequestContext.Authorizer.JWT.Claims, "auth_time")
			return ev
		}, 401, "reauthentication_required"},
		{"no sub", func() events.APIGatewayV2HTTPRequest {
			ev := w.event(t, w.admin.ID, 0)
			delete(ev.RequestContext.Authorizer.JWT.Claims, "sub")
			return ev
		}, 401, "missing_identity"},
		{"unknown user", func() events.APIGatewayV2HTTPRequest { return w.event(t, "no-such-sub", time.Minute) }, 403, "unknown_user"},
		{"unknown field", func() events.APIGatewayV2HTTPRequest {
			ev := w.event(t, w.admin.ID, time.Minute)
			ev.Body = `{"tenantId":"` + w.other.ID + `"}`
			return ev
		}, 400, "unknown_field"},
		{"malformed body", func() events.APIGatewayV2HTTPRequest {
			ev := w.event(t, w.admin.ID, time.Minute)
			ev.Body = `{"`
			return ev
		}, 400, "malformed_body"},
		{"huge body", func() events.APIGatewayV2HTTPRequest {
			ev := w.event(t, w.admin.ID, time.Minute)
			ev.Body = `{"x":"` + strings.Repeat("a", 10000) + `"}`
			return ev
		}, 400, "body_too_large"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			before := w.audits(t)
			resp := w.call(t, tc.ev())
			if resp.StatusCode != tc.status || reason(t, resp) != tc.reason {
				t.Fatalf("got %d %s, want %d %s", resp.StatusCode, resp.Body, tc.status, tc.reason)
			}
			after := w.audits(t)
			if len(after) != len(before) {
				t.Errorf("a refused request wrote an audit record of a reveal")
			}
		})
	}
	// The other organization's admin sees their own key, never this one.
	resp := w.call(t, w.event(t, w.outsider.ID, time.Minute))
	if resp.StatusCode != 200 || strings.Contains(resp.Body, w.key.Reveal()) {
		t.Fatalf("outsider: %d", resp.StatusCode)
	}
}

// The table is the authority: a role lowered or a user deleted after the token was
// issued takes effect at once, and a reset in progress answers 409.
func TestRevealFollowsTheTable(t *testing.T) {
	w := newWorld(t, 100)
	ctx := t.Context()
	if resp := w.call(t, w.event(t, w.admin2.ID, time.Minute)); resp.StatusCode != 200 {
		t.Fatalf("before: %d", resp.StatusCode)
	}
	lowered := w.admin2
	lowered.Role = tenant.ProUser
	if err := w.st.PutUser(ctx, lowered); err != nil {
		t.Fatal(err)
	}
	if resp := w.call(t, w.event(t, w.admin2.ID, time.Minute)); resp.StatusCode != 403 {
		t.Fatalf("role lowered: %d, want 403", resp.StatusCode)
	}
	if err := w.st.DeleteUser(ctx, w.org.ID, w.siteAdmin.ID); err != nil {
		t.Fatal(err)
	}
	if resp := w.call(t, w.event(t, w.siteAdmin.ID, time.Minute)); resp.StatusCode != 403 || reason(t, resp) != "unknown_user" {
		t.Fatalf("deleted user: %d %s", resp.StatusCode, resp.Body)
	}
	setStatus(t, w, tenant.Resetting)
	if resp := w.call(t, w.event(t, w.admin.ID, time.Minute)); resp.StatusCode != 409 || reason(t, resp) != "organization_resetting" {
		t.Fatalf("resetting: %d %s", resp.StatusCode, resp.Body)
	}
}

func setStatus(t *testing.T, w *world, s tenant.Status) {
	t.Helper()
	db := dynamodb.NewFromConfig(w.env.AWSConfig)
	_, err := db.UpdateItem(t.Context(), &dynamodb.UpdateItemInput{
		TableName:                 aws.String(w.env.TableName),
		Key:                       store.OrgItemKey(w.org.ID),
		UpdateExpression:          aws.String("SET #s = :s"),
		ExpressionAttributeNames:  map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":s": &ddbtypes.AttributeValueMemberS{Value: string(s)}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Concurrent reveals never exceed the hourly limit: the count is atomic.
func TestRevealRateLimit(t *testing.T) {
	const limit = 3
	w := newWorld(t, limit)
	var ok, limited atomic.Int32
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			resp := w.call(t, w.event(t, w.admin.ID, time.Minute))
			switch resp.StatusCode {
			case 200:
				ok.Add(1)
			case 429:
				limited.Add(1)
			default:
				t.Errorf("status %d %s", resp.StatusCode, resp.Body)
			}
		})
	}
	wg.Wait()
	if ok.Load() != limit || limited.Load() != 12-limit {
		t.Fatalf("%d shown, %d limited; want %d and %d", ok.Load(), limited.Load(), limit, 12-limit)
	}
	// Another admin has a budget of their own; the next hour resets it.
	if resp := w.call(t, w.event(t, w.admin2.ID, time.Minute)); resp.StatusCode != 200 {
		t.Fatalf("other admin: %d", resp.StatusCode)
	}
	w.now = w.now.Add(time.Hour)
	if resp := w.call(t, w.event(t, w.admin.ID, time.Minute)); resp.StatusCode != 200 {
		t.Fatalf("next hour: %d", resp.StatusCode)
	}
}

// When KMS or SES fail, the caller gets 502 and no key: the reveal fails closed.
func TestRevealFailsClosed(t *testing.T) {
	w := newWorld(t, 100)
	w.faults.Add(faultinject.Rule{Service: faultinject.KMS, To: -1, Kind: faultinject.Unreachable})
	if resp := w.call(t, w.event(t, w.admin.ID, time.Minute)); resp.StatusCode != 502 {
		t.Fatalf("KMS down: %d %s", resp.StatusCode, resp.Body)
	}
	w.faults.Clear()
	w.faults.Add(faultinject.Rule{Service: faultinject.SES, To: -1, Kind: faultinject.Unreachable})
	resp := w.call(t, w.event(t, w.admin.ID, time.Minute))
	if resp.StatusCode != 502 || strings.Contains(resp.Body, "127.0.0.1") {
		t.Fatalf("SES down: %d %s", resp.StatusCode, resp.Body)
	}
	recs := w.audits(t)
	if len(recs) != 1 || recs[0].Outcome != "notify_failed" {
		t.Fatalf("audit after SES failure: %+v", recs)
	}
	if strings.Contains(w.logs.String(), w.key.Reveal()) {
		t.Fatal("the key appears in the logs")
	}
}

// The sample event decodes into aws-lambda-go's type, and what that type encodes
// decodes to the same value: it is usable by sam local invoke and by these tests.
func TestSampleEventRoundTrips(t *testing.T) {
	raw, err := os.ReadFile("../../events/reveal-key.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev, again events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &ev); err != nil {
		t.Fatal(err)
	}
	back, _ := json.Marshal(ev)
	if err := json.Unmarshal(back, &again); err != nil || !reflect.DeepEqual(ev, again) {
		t.Fatalf("round trip changed the event: %v", err)
	}
	if ev.RouteKey != "POST /org-key/reveal" || ev.RequestContext.Authorizer.JWT.Claims["sub"] == "" {
		t.Fatalf("sample event lacks its route or caller")
	}
}

// audits is the organization's audit trail; a read error fails the test.
func (w *world) audits(t *testing.T) []store.AuditRecord {
	t.Helper()
	recs, err := w.st.Audit(t.Context(), w.org.ID)
	if err != nil {
		t.Fatalf("reading the audit trail: %v", err)
	}
	return recs
}
