package adversarial_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/httpapi"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/sendkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
)

// httpCase is one hostile request and the answer the route documents for it.
type httpCase struct {
	name   string
	req    httpapi.Request
	status int
	reason string  // the JSON error's reason
	fx     effects // what the flow documents writing on this refusal
}

type handlerFunc = func(context.Context, httpapi.Request) (httpapi.Response, error)

// runHTTP sends each case to the handler and checks the answer, that the table
// changed by exactly the documented effects, and that no mail went out.
func (r *rig) runHTTP(t *testing.T, entry string, h handlerFunc, cases []httpCase) {
	t.Helper()
	if len(cases) < 30 {
		t.Errorf("%s: only %d hostile inputs; the suite promises at least 30", entry, len(cases))
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer figures.input(t, entry)
			before := r.snapshot(t)
			mails := len(r.mails(t))
			resp := r.callHTTP(t, h, entry, tc.req)
			if resp.StatusCode != tc.status {
				t.Errorf("status %d (%s), want %d", resp.StatusCode, resp.Body, tc.status)
			}
			if resp.Headers["Cache-Control"] != "no-store" {
				t.Errorf("answer without Cache-Control: no-store: %v", resp.Headers)
			}
			if len(resp.Cookies) != 0 {
				t.Errorf("a refused request set cookies: %v", resp.Cookies)
			}
			if b := errorBody(resp); b.Reason != tc.reason || b.Error == "" {
				t.Errorf("error body %s, want reason %q", resp.Body, tc.reason)
			}
			r.assertOnly(t, before, tc.fx)
			if n := len(r.mails(t)) - mails; n != 0 {
				t.Errorf("%d mails went out", n)
			}
		})
	}
}

// hostileBodies are bodies no JSON route takes, with the reason httpapi.Decode gives.
func hostileBodies() []struct{ name, body, reason string } {
	big := `{"userId":"` + strings.Repeat("a", httpapi.MaxBody) + `"}`
	return []struct{ name, body, reason string }{
		{"whitespace only", " \n\t ", "empty_body"},
		{"null", "null", "malformed_body"},
		{"array", "[]", "malformed_body"},
		{"string", `"userId"`, "malformed_body"},
		{"number", "42", "malformed_body"},
		{"truncated object", `{"userId":"usr_`, "malformed_body"},
		{"only an opening brace", "{", "malformed_body"},
		{"trailing data", `{}{}`, "malformed_body"},
		{"trailing garbage", `{} x`, "malformed_body"},
		{"NUL byte outside strings", "{\x00}", "malformed_body"},
		{"invalid UTF-8 in a key", "{\"\xff\xfe\":1}", "malformed_body"},
		{"invalid UTF-8 in a value", "{\"userId\":\"\xc3\x28\"}", "malformed_body"},
		{"unknown field", `{"tenantId":"org_x"}`, "unknown_field"},
		{"field twice", `{"userId":"a","userId":"b"}`, "duplicate_field"},
		{"field twice in another case", `{"userId":"a","USERID":"b"}`, "duplicate_field"},
		{"over the body limit", big, "body_too_large"},
		{"a megabyte", strings.Repeat(" ", 1<<20) + "{}", "body_too_large"},
	}
}

// tokenUseCases are requests whose claims are not an access token's: an ID token
// as API Gateway would pass it on if its authorizer took one (aud is the app
// client, no scope, no client_id), and token_use variants of a forged access token.
// Every authenticated route answers them 401 access_token_required, before it reads
// anything.
func tokenUseCases(t *testing.T, mk func(t testing.TB, sub, body string) httpapi.Request, sub, body string) []httpCase {
	t.Helper()
	variant := func(name string, edit func(c map[string]string)) httpCase {
		req := mk(t, sub, body)
		edit(req.RequestContext.Authorizer.JWT.Claims)
		return httpCase{"token: " + name, req, 401, "access_token_required", effects{}}
	}
	set := func(v string) func(c map[string]string) { return func(c map[string]string) { c["token_use"] = v } }
	return []httpCase{
		variant("an ID token", func(c map[string]string) {
			c["token_use"], c["aud"], c["email"], c["cognito:username"] = "id", c["client_id"], "x@example.test", sub
			delete(c, "client_id")
			delete(c, "scope")
		}),
		variant("an ID token that kept the access scope", func(c map[string]string) { c["token_use"] = "id" }),
		variant("token_use missing", func(c map[string]string) { delete(c, "token_use") }),
		variant("token_use empty", set("")),
		variant("token_use Access", set("Access")),
		variant("token_use ACCESS", set("ACCESS")),
		variant("token_use with a trailing space", set("access ")),
		variant("token_use with a NUL", set("access\x00")),
		variant("token_use refresh", set("refresh")),
		variant("token_use a list", set("[access id]")),
	}
}

func TestHostileSend(t *testing.T) {
	r := newRig(t)
	w := r.newWorld(t)
	admin := w.orgAdmin.ID
	var cases []httpCase
	for _, b := range hostileBodies() {
		cases = append(cases, httpCase{name: "body: " + b.name, req: sendEvent(t, admin, b.body), status: 400, reason: b.reason})
	}
	body := func(s string) httpapi.Request { return sendEvent(t, admin, s) }
	b64 := sendEvent(t, admin, "{not base64")
	b64.IsBase64Encoded = true
	b64big := sendEvent(t, admin, base64.StdEncoding.EncodeToString([]byte(`{"userId":"`+strings.Repeat("x", 5000)+`"}`)))
	b64big.IsBase64Encoded = true
	textPlain := sendEvent(t, admin, fmt.Sprintf(`{"userId":%q}`, w.pro.ID))
	textPlain.Headers["content-type"] = "text/plain"
	noAuthorizer := sendEvent(t, admin, fmt.Sprintf(`{"userId":%q}`, w.pro.ID))
	noAuthorizer.RequestContext.Authorizer = nil
	forgedGroups := sendEvent(t, w.pro.ID, fmt.Sprintf(`{"userId":%q}`, w.pro.ID))
	forgedGroups.RequestContext.Authorizer.JWT.Claims["cognito:groups"] = "org_admin"
	forgedGroups.RequestContext.Authorizer.JWT.Claims["custom:role"] = "org_admin"
	wrongAudience := sendEvent(t, w.bAdmin.ID, fmt.Sprintf(`{"userId":%q}`, w.pro.ID))
	wrongAudience.RequestContext.Authorizer.JWT.Claims["client_id"] = "another-app"
	wrongAudience.RequestContext.Authorizer.JWT.Claims["aud"] = "another-app"
	expired := sendEvent(t, w.bAdmin.ID, fmt.Sprintf(`{"email":%q}`, w.pro.Email))
	expired.RequestContext.Authorizer.JWT.Claims["exp"] = "1000000000"
	target := func(u tenant.User) string { return fmt.Sprintf(`{"userId":%q}`, u.ID) }
	refused := func(reasons ...string) effects { return effects{audits: reasons, rate: sendkey.FlowSend} }

	cases = append(cases,
		httpCase{"body: empty", body(""), 400, "empty_body", effects{}},
		httpCase{"body: invalid base64", b64, 400, "malformed_body", effects{}},
		httpCase{"body: base64 over the limit", b64big, 400, "body_too_large", effects{}},
		httpCase{"body: text/plain", textPlain, 400, "unsupported_media_type", effects{}},
		httpCase{"userId a number", body(`{"userId":42}`), 400, "malformed_body", effects{}},
		httpCase{"userId an object", body(`{"userId":{"S":"x"}}`), 400, "malformed_body", effects{}},
		httpCase{"userId null", body(`{"userId":null}`), 400, "userid_or_email_required", effects{}},
		httpCase{"empty object", body(`{}`), 400, "userid_or_email_required", effects{}},
		httpCase{"both userId and email", body(fmt.Sprintf(`{"userId":%q,"email":%q}`, w.pro.ID, w.pro.Email)), 400, "userid_or_email_required", effects{}},
		httpCase{"userId with a NUL", body(`{"userId":"usr_a\u0000b"}`), 400, "invalid_user_id", effects{}},
		httpCase{"userId with a newline", body(`{"userId":"usr_a\nb"}`), 400, "invalid_user_id", effects{}},
		httpCase{"userId of 3000 characters", body(`{"userId":"` + strings.Repeat("u", 3000) + `"}`), 400, "invalid_user_id", effects{}},
		httpCase{"email not an address", body(`{"email":"not-an-address"}`), 400, "invalid_email", effects{}},
		httpCase{"email with a display name", body(fmt.Sprintf(`{"email":"Pro <%s>"}`, w.pro.Email)), 400, "invalid_email", effects{}},
		httpCase{"email with a header injection", body(fmt.Sprintf(`{"email":"%s\r\nBcc: eve@example.test"}`, w.pro.Email)), 400, "invalid_email", effects{}},
		httpCase{"email of 300 characters", body(`{"email":"` + strings.Repeat("e", 290) + `@example.test"}`), 400, "invalid_email", effects{}},
		httpCase{"userId of another tenant's user", body(target(w.bPro)), 404, sendkey.ReasonUserNotFound, refused(sendkey.ReasonUserNotFound)},
		httpCase{"email of another tenant's user", body(fmt.Sprintf(`{"email":%q}`, w.bPro.Email)), 404, sendkey.ReasonUserNotFound, refused(sendkey.ReasonUserNotFound)},
		httpCase{"userId that names a key of the table", body(`{"userId":"x#TENANT#` + w.b.ID + `"}`), 404, sendkey.ReasonUserNotFound, refused(sendkey.ReasonUserNotFound)},
		httpCase{"userId of a deleted user", body(target(w.deleted)), 404, sendkey.ReasonUserNotFound, refused(sendkey.ReasonUserNotFound)},
		httpCase{"userId of a site user (org admin caller)", body(target(w.siteUser)), 403, sendkey.ReasonTargetNotProUser, refused(sendkey.ReasonTargetNotProUser)},
		httpCase{"no authorizer (public-route shape)", noAuthorizer, 401, "missing_identity", effects{}},
		httpCase{"claims without sub", sendEvent(t, "", target(w.pro)), 401, "missing_identity", effects{}},
		httpCase{"sub of 200 characters", sendEvent(t, strings.Repeat("s", 200), target(w.pro)), 401, "missing_identity", effects{}},
		httpCase{"sub never issued", sendEvent(t, "7d3f4c2a-0000-0000-0000-000000000000", target(w.pro)), 403, "unknown_user", effects{}},
		httpCase{"sub naming a table key", sendEvent(t, w.orgAdmin.ID+"#TENANT#"+w.a.ID, target(w.pro)), 403, "unknown_user", effects{}},
		httpCase{"sub of a deleted user", sendEvent(t, w.deleted.ID, target(w.pro)), 403, "unknown_user", effects{}},
		httpCase{"sub of a lowered admin", sendEvent(t, w.loweredAdmin.ID, target(w.pro)), 403, sendkey.ReasonCallerNotAdmin, effects{audits: []string{sendkey.ReasonCallerNotAdmin}}},
		httpCase{"forged role claims", forgedGroups, 403, sendkey.ReasonCallerNotAdmin, effects{audits: []string{sendkey.ReasonCallerNotAdmin}}},
		httpCase{"other tenant's admin, another app's token", wrongAudience, 404, sendkey.ReasonUserNotFound, effects{audits: []string{sendkey.ReasonUserNotFound}, rate: sendkey.FlowSend}},
		httpCase{"other tenant's admin, expired token, target by email", expired, 404, sendkey.ReasonUserNotFound, effects{audits: []string{sendkey.ReasonUserNotFound}, rate: sendkey.FlowSend}},
	)
	cases = append(cases, tokenUseCases(t, sendEvent, admin, target(w.pro))...)
	r.runHTTP(t, sendkey.RouteSend, r.send.Handle, cases)
}

func TestHostileRequest(t *testing.T) {
	r := newRig(t)
	w := r.newWorld(t)
	ctx := t.Context()
	orphan, err := r.seeder.User(ctx, w.a.ID, tenant.User{Email: addr("orphan"), Name: "Orphan", Role: tenant.SiteUser})
	if err != nil {
		t.Fatal(err)
	}
	var cases []httpCase
	for _, b := range hostileBodies() {
		if strings.TrimSpace(b.body) == "" {
			continue // the route takes no input: a blank body is an empty one, and valid
		}
		cases = append(cases, httpCase{name: "body: " + b.name, req: requestEvent(t, w.pro.ID, b.body), status: 400, reason: b.reason})
	}
	noAuthorizer := requestEvent(t, w.pro.ID, "")
	noAuthorizer.RequestContext.Authorizer = nil
	b64 := requestEvent(t, w.pro.ID, "e30=!")
	b64.IsBase64Encoded = true
	textPlain := requestEvent(t, w.pro.ID, "{}")
	textPlain.Headers["content-type"] = "text/html"
	emptySub := requestEvent(t, w.pro.ID, "")
	emptySub.RequestContext.Authorizer.JWT.Claims["sub"] = ""
	body := func(s string) httpapi.Request { return requestEvent(t, w.pro.ID, s) }
	cases = append(cases,
		httpCase{"free text for the admins", body(`{"message":"<a href=https://evil.example>urgent</a>"}`), 400, "unknown_field", effects{}},
		httpCase{"another user to ask for", body(fmt.Sprintf(`{"userId":%q}`, w.siteUser.ID)), 400, "unknown_field", effects{}},
		httpCase{"another tenant to ask", body(fmt.Sprintf(`{"tenantId":%q}`, w.b.ID)), 400, "unknown_field", effects{}},
		httpCase{"message with a NUL", body("{\"message\":\"a\\u0000b\"}"), 400, "unknown_field", effects{}},
		httpCase{"JSON array body", body(`[{}]`), 400, "malformed_body", effects{}},
		httpCase{"invalid base64", b64, 400, "malformed_body", effects{}},
		httpCase{"text/html", textPlain, 400, "unsupported_media_type", effects{}},
		httpCase{"no authorizer", noAuthorizer, 401, "missing_identity", effects{}},
		httpCase{"empty sub", emptySub, 401, "missing_identity", effects{}},
		httpCase{"claims without sub", requestEvent(t, "", ""), 401, "missing_identity", effects{}},
		httpCase{"sub of 129 characters", requestEvent(t, strings.Repeat("x", 129), ""), 401, "missing_identity", effects{}},
		httpCase{"sub never issued", requestEvent(t, "usr_"+strings.Repeat("0", 26), ""), 403, "unknown_user", effects{}},
		httpCase{"sub of a deleted user", requestEvent(t, w.deleted.ID, ""), 403, "unknown_user", effects{}},
		httpCase{"sub with invalid UTF-8", requestEvent(t, "usr_\xff\xfe", ""), 403, "unknown_user", effects{}},
		httpCase{"a user no admin can serve", requestEvent(t, orphan.ID, ""), 409, "no_admin_available",
			effects{audits: []string{"no_admin_available"}, rate: sendkey.FlowRequest}},
	)
	cases = append(cases, tokenUseCases(t, requestEvent, w.pro.ID, "")...)
	r.runHTTP(t, sendkey.RouteRequest, r.send.Handle, cases)
}

func TestHostileReveal(t *testing.T) {
	r := newRig(t)
	w := r.newWorld(t)
	var cases []httpCase
	for _, b := range hostileBodies() {
		cases = append(cases, httpCase{name: "body: " + b.name, req: revealEvent(t, w.orgAdmin.ID, b.body), status: 400, reason: b.reason})
	}
	auth := func(u tenant.User, authTime string) httpapi.Request {
		req := revealEvent(t, u.ID, "")
		if authTime == "" {
			delete(req.RequestContext.Authorizer.JWT.Claims, "auth_time")
		} else {
			req.RequestContext.Authorizer.JWT.Claims["auth_time"] = authTime
		}
		return req
	}
	now := time.Now()
	unix := func(d time.Duration) string { return fmt.Sprint(now.Add(d).Unix()) }
	noAuthorizer := revealEvent(t, w.orgAdmin.ID, "")
	noAuthorizer.RequestContext.Authorizer = nil
	forged := revealEvent(t, w.pro.ID, "")
	forged.RequestContext.Authorizer.JWT.Claims["cognito:groups"] = "org_admin"
	textPlain := revealEvent(t, w.orgAdmin.ID, "{}")
	textPlain.Headers["content-type"] = "application/x-www-form-urlencoded"
	stepUp := "reauthentication_required"
	cases = append(cases,
		httpCase{"another tenant named in the body", revealEvent(t, w.orgAdmin.ID, fmt.Sprintf(`{"tenantId":%q}`, w.b.ID)), 400, "unknown_field", effects{}},
		httpCase{"a key version asked for", revealEvent(t, w.orgAdmin.ID, `{"keyVersion":0}`), 400, "unknown_field", effects{}},
		httpCase{"form-encoded body", textPlain, 400, "unsupported_media_type", effects{}},
		httpCase{"no authorizer", noAuthorizer, 401, "missing_identity", effects{}},
		httpCase{"claims without sub", revealEvent(t, "", ""), 401, "missing_identity", effects{}},
		httpCase{"sub never issued", revealEvent(t, "usr_nobody", ""), 403, "unknown_user", effects{}},
		httpCase{"sub of a deleted org admin", revealEvent(t, w.deleted.ID, ""), 403, "unknown_user", effects{}},
		httpCase{"sub of a lowered org admin", revealEvent(t, w.loweredAdmin.ID, ""), 403, "caller_not_admin", effects{}},
		httpCase{"sub of a lowered site admin", revealEvent(t, w.loweredSiteAdmin.ID, ""), 403, "caller_not_admin", effects{}},
		httpCase{"pro user with forged role claims", forged, 403, "caller_not_admin", effects{}},
		httpCase{"site user", revealEvent(t, w.siteUser.ID, ""), 403, "caller_not_admin", effects{}},
		httpCase{"no auth_time", auth(w.orgAdmin, ""), 401, stepUp, effects{}},
		httpCase{"auth_time an hour ago", auth(w.orgAdmin, unix(-time.Hour)), 401, stepUp, effects{}},
		httpCase{"auth_time in the future", auth(w.siteAdmin, unix(10*time.Minute)), 401, stepUp, effects{}},
		httpCase{"auth_time not a number", auth(w.orgAdmin, "yesterday"), 401, stepUp, effects{}},
		httpCase{"auth_time negative", auth(w.orgAdmin, "-5"), 401, stepUp, effects{}},
		httpCase{"auth_time huge", auth(w.orgAdmin, "99999999999999999999"), 401, stepUp, effects{}},
	)
	cases = append(cases, tokenUseCases(t, revealEvent, w.orgAdmin.ID, "")...)
	r.runHTTP(t, "POST /org-key/reveal", r.reveal.Handle, cases)
}

func TestHostileClaim(t *testing.T) {
	r := newRig(t)
	w := r.newWorld(t)
	ctx := t.Context()

	// A link spent once (then replayed), a live one to alter, and links the table
	// refuses for what happened to them since they were sent.
	sentBy := func(admin, u tenant.User) string {
		t.Helper()
		before := len(r.mailsTo(t, u.Email))
		resp := r.callSend(t, sendEvent(t, admin.ID, fmt.Sprintf(`{"userId":%q}`, u.ID)))
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("send: %d %s", resp.StatusCode, resp.Body)
		}
		m := r.mailsTo(t, u.Email)
		if len(m) != before+1 {
			t.Fatalf("%d mails", len(m)-before)
		}
		return tokenIn(t, m[len(m)-1])
	}
	sent := func(u tenant.User) string { return sentBy(w.orgAdmin, u) }
	used := sent(w.pro)
	if resp := r.callSend(t, claimEvent(t, w.pro.ID, used)); resp.StatusCode != http.StatusOK {
		t.Fatalf("first spend: %d", resp.StatusCode)
	}
	replaced := sent(w.loweredAdmin)
	newer := sent(w.loweredAdmin) // supersedes replaced
	live := sent(w.orgAdmin2)
	revoked := sentBy(w.siteAdmin, w.siteUser)
	for i := range store.MaxClaimAttempts {
		intruder := []tenant.User{w.orgAdmin, w.pro, w.siteAdmin, w.bAdmin, w.bPro}[i]
		if resp := r.callSend(t, claimEvent(t, intruder.ID, revoked)); resp.StatusCode != http.StatusForbidden {
			t.Fatalf("wrong user %d: %d", i, resp.StatusCode)
		}
	}
	direct := func(tid, uid string, version int, expires time.Time) string {
		t.Helper()
		tok, err := orgkey.NewClaimToken(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.st.PutClaim(ctx, store.Claim{Hash: tok.Hash(), TenantID: tid, UserID: uid, SentBy: w.orgAdmin.ID,
			KeyVersion: version, CreatedAt: expires.Add(-72 * time.Hour), ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
		capture.token(tok.Reveal(), nil)
		return tok.Reveal()
	}
	expired := direct(w.a.ID, w.pro.ID, 1, time.Now().Add(-time.Minute))
	superseded := direct(w.a.ID, w.pro.ID, 2, time.Now().Add(time.Hour))
	userGone := direct(w.a.ID, w.deleted.ID, 1, time.Now().Add(time.Hour))
	orgGone := direct("org_gone0000000000000000000", w.pro.ID, 1, time.Now().Add(time.Hour))
	resetting := direct(w.b.ID, w.bPro.ID, 1, time.Now().Add(time.Hour))
	if _, err := r.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName: &r.table, Key: store.OrgItemKey(w.b.ID),
		UpdateExpression:          aws.String("SET #s = :r"),
		ExpressionAttributeNames:  map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":r": &ddbtypes.AttributeValueMemberS{Value: string(tenant.Resetting)}},
	}); err != nil {
		t.Fatal(err)
	}

	alter := func(tok string, i int) string {
		b := []byte(tok)
		if b[i] == 'A' {
			b[i] = 'B'
		} else {
			b[i] = 'A'
		}
		return string(b)
	}
	jwt := newJWT(w.pro.ID)
	// Every dead link gets the one answer (410, link_gone); the audit record keeps
	// the reason. Tokens that name no link are also counted per source IP.
	as := func(u tenant.User, name, token, reason string) httpCase {
		fx := effects{audits: []string{reason}}
		if reason == sendkey.ReasonClaimMalformed || reason == sendkey.ReasonClaimUnknown {
			fx.rate = sendkey.FlowClaimUnknown
		}
		return httpCase{name, claimEvent(t, u.ID, token), http.StatusGone, "link_gone", fx}
	}
	gone := func(name, token, reason string) httpCase { return as(w.orgAdmin2, name, token, reason) }
	malformed := func(name, token string) httpCase { return gone(name, token, sendkey.ReasonClaimMalformed) }
	body := func(name, raw, reason string) httpCase {
		return httpCase{"body: " + name, httpEvent(t, "claim-key.json", w.orgAdmin2.ID, raw), http.StatusBadRequest, reason, effects{}}
	}
	inQuery := claimEvent(t, w.orgAdmin2.ID, live)
	inQuery.Body, inQuery.RawQueryString, inQuery.QueryStringParameters = "", "token="+live, map[string]string{"token": live}
	inQueryAndBody := claimEvent(t, w.orgAdmin2.ID, live)
	inQueryAndBody.RawQueryString, inQueryAndBody.QueryStringParameters = "token="+live, map[string]string{"token": live}
	noSession := claimEvent(t, "", live)
	noAuthorizer := claimEvent(t, w.orgAdmin2.ID, live)
	noAuthorizer.RequestContext.Authorizer = nil
	wrongMethod := claimEvent(t, w.orgAdmin2.ID, live)
	wrongMethod.RouteKey = "PUT /org-key/claim"
	wrongPath := claimEvent(t, w.orgAdmin2.ID, live)
	wrongPath.RouteKey = "POST /org-key/claim/"
	liveKey := store.ClaimPK(mustParseClaim(t, live).Hash())
	wrongUser := func(u tenant.User) httpCase {
		return httpCase{"another user's session: " + u.Email, claimEvent(t, u.ID, live), http.StatusForbidden,
			sendkey.ReasonClaimWrongUser, effects{audits: []string{sendkey.ReasonClaimWrongUser}, attempt: liveKey}}
	}
	cases := []httpCase{
		{"token in the query instead of the body", inQuery, http.StatusBadRequest, "query_not_allowed", effects{}},
		{"token in the query and the body", inQueryAndBody, http.StatusBadRequest, "query_not_allowed", effects{}},
		{"no session", noSession, http.StatusUnauthorized, "missing_identity", effects{}},
		{"no authorizer context", noAuthorizer, http.StatusUnauthorized, "missing_identity", effects{}},
		wrongUser(w.orgAdmin),
		wrongUser(w.bAdmin),
		wrongUser(w.deleted),
		body("empty", "", "empty_body"),
		body("token twice", fmt.Sprintf(`{"token":%q,"token":%q}`, live, used), "duplicate_field"),
		body("token as a number", `{"token":42}`, "malformed_body"),
		body("another field", fmt.Sprintf(`{"token":%q,"userId":%q}`, live, w.orgAdmin2.ID), "unknown_field"),
		body("an array", fmt.Sprintf(`[%q]`, live), "malformed_body"),
		{"no token field", httpEvent(t, "claim-key.json", w.orgAdmin2.ID, `{}`), http.StatusGone, "link_gone",
			effects{audits: []string{sendkey.ReasonClaimMalformed}, rate: sendkey.FlowClaimUnknown}},
		malformed("empty token", ""),
		malformed("prefix only", orgkey.ClaimPrefix),
		malformed("another version's prefix", "okc2_"+strings.TrimPrefix(live, orgkey.ClaimPrefix)),
		malformed("no prefix", strings.TrimPrefix(live, orgkey.ClaimPrefix)),
		malformed("one character short", live[:len(live)-1]),
		malformed("one character more", live+"A"),
		malformed("padded", live+"="),
		malformed("trailing space", live+" "),
		malformed("trailing newline", live+"\n"),
		malformed("NUL inside", live[:10]+"\x00"+live[11:]),
		malformed("standard base64 alphabet", orgkey.ClaimPrefix+strings.Repeat("+/", 21)+"A"),
		malformed("percent-encoded", strings.Replace(live, "_", "%5F", 1)),
		malformed("two tokens joined", live+","+used),
		malformed("the stored hash instead", mustParseClaim(t, live).Hash()),
		malformed("a JWT instead", jwt),
		malformed("the org key instead", w.aKey.Reveal()),
		malformed("a table key", store.ClaimPK(mustParseClaim(t, live).Hash())),
		malformed("fullwidth characters", "ｏｋｃ１＿"+strings.TrimPrefix(live, orgkey.ClaimPrefix)),
		malformed("upper-cased", strings.ToUpper(live)),
		gone("one character changed", alter(live, 12), sendkey.ReasonClaimUnknown),
		gone("another character changed", alter(live, 30), sendkey.ReasonClaimUnknown),
		gone("never issued", mustNewClaim(t), sendkey.ReasonClaimUnknown),
		as(w.pro, "replayed after use", used, sendkey.ReasonClaimUsed),
		as(w.loweredAdmin, "superseded by a newer send", replaced, sendkey.ReasonClaimReplaced),
		as(w.siteUser, "revoked after five other users", revoked, sendkey.ReasonClaimRevoked),
		as(w.pro, "expired", expired, sendkey.ReasonClaimExpired),
		as(w.pro, "key reset since", superseded, sendkey.ReasonClaimSuperseded),
		as(w.deleted, "user deleted since", userGone, sendkey.ReasonClaimUserGone),
		as(w.pro, "organization gone", orgGone, sendkey.ReasonClaimOrgUnavailable),
		as(w.bPro, "organization being reset", resetting, sendkey.ReasonClaimOrgUnavailable),
		{"PUT to the claim path", wrongMethod, http.StatusNotFound, "route_not_found", effects{}},
		{"claim path with a trailing slash", wrongPath, http.StatusNotFound, "route_not_found", effects{}},
	}
	// The addressee's own sub, but not an access token: refused before the link is read.
	cases = append(cases, tokenUseCases(t, claimEvent, w.orgAdmin2.ID, live)...)
	r.runHTTP(t, sendkey.RouteClaim, r.send.Handle, cases)

	// The live link, refused in altered forms and to three other users, still works
	// once for its addressee; the newer link too.
	if resp := r.callSend(t, claimEvent(t, w.orgAdmin2.ID, live)); resp.StatusCode != http.StatusOK {
		t.Errorf("the untouched link no longer works: %d", resp.StatusCode)
	}
	if resp := r.callSend(t, claimEvent(t, w.loweredAdmin.ID, newer)); resp.StatusCode != http.StatusOK {
		t.Errorf("the newer link does not work: %d", resp.StatusCode)
	}
	// The admin who sent the revoked link was told, once.
	var told int
	for _, m := range r.mailsTo(t, w.siteAdmin.Email) {
		if strings.Contains(m.Subject, "revoked") || strings.Contains(m.Subject, "révoqué") {
			told++
		}
	}
	if told != 1 {
		t.Errorf("%d revoked-link mails to the sending admin, want 1", told)
	}
}

// TestClaimPageIsInert: GET and HEAD of the claim page, whatever a scanner sends with
// them (a token in the query, scanner user agents, hostile headers), answer the page
// and change nothing in the table.
func TestClaimPageIsInert(t *testing.T) {
	r := newRig(t)
	w := r.newWorld(t)
	resp := r.callSend(t, sendEvent(t, w.orgAdmin.ID, fmt.Sprintf(`{"userId":%q}`, w.pro.ID)))
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("send: %d", resp.StatusCode)
	}
	live := tokenIn(t, r.mailsTo(t, w.pro.Email)[0])
	agents := []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36 Microsoft Office/16.0 Safe Links",
		"Microsoft Office Existence Discovery", "BarracudaCentral", "Proofpoint URL Defense", "curl/8.5.0", "", strings.Repeat("A", 10000),
	}
	var reqs []httpapi.Request
	for _, m := range []string{"GET", "HEAD"} {
		for _, ua := range agents {
			req := pageEvent(t, m)
			req.Headers["user-agent"], req.RequestContext.HTTP.UserAgent = ua, ua
			reqs = append(reqs, req)
		}
		q := pageEvent(t, m)
		q.RawQueryString, q.QueryStringParameters = "token="+live, map[string]string{"token": live}
		h := pageEvent(t, m)
		h.Headers["accept-language"] = strings.Repeat("fr;q=0.5,", 5000)
		h.Headers["authorization"] = "Bearer " + newJWT(w.pro.ID)
		reqs = append(reqs, q, h)
	}
	for i, req := range reqs {
		before := r.snapshot(t)
		resp := r.callSend(t, req)
		if resp.StatusCode != http.StatusOK || len(resp.Cookies) != 0 || resp.Headers["Cache-Control"] != "no-store" ||
			!strings.Contains(resp.Headers["Content-Security-Policy"], "frame-ancestors 'none'") {
			t.Errorf("request %d (%s): %d, %d cookies, headers %v", i, req.RouteKey, resp.StatusCode, len(resp.Cookies), resp.Headers)
		}
		if (req.RouteKey == sendkey.RouteClaimHead) != (resp.Body == "") || strings.Contains(resp.Body, live) {
			t.Errorf("request %d (%s): body of %d bytes", i, req.RouteKey, len(resp.Body))
		}
		r.assertOnly(t, before, effects{})
	}
	if resp := r.callSend(t, claimEvent(t, w.pro.ID, live)); resp.StatusCode != http.StatusOK {
		t.Errorf("after the scanners the link does not work: %d", resp.StatusCode)
	}
}

// TestConcurrentClaimsByTheAddressee: the addressee's browser (or several) posts the
// same link many times at once: exactly one spends it.
func TestConcurrentClaimsByTheAddressee(t *testing.T) {
	r := newRig(t)
	w := r.newWorld(t)
	if resp := r.callSend(t, sendEvent(t, w.orgAdmin.ID, fmt.Sprintf(`{"userId":%q}`, w.pro.ID))); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("send: %d", resp.StatusCode)
	}
	tok := tokenIn(t, r.mailsTo(t, w.pro.Email)[0])
	const n = 16
	codes := make([]int, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			resp := r.callSend(t, claimEvent(t, w.pro.ID, tok))
			codes[i] = resp.StatusCode
			if resp.StatusCode == http.StatusOK && (len(resp.Cookies) != 1 || !strings.HasPrefix(resp.Cookies[0], "__Host-orgkey="+w.aKey.Reveal()+";")) {
				t.Errorf("the winner lacks the key cookie")
			}
		})
	}
	close(start)
	wg.Wait()
	won := 0
	for _, c := range codes {
		switch c {
		case http.StatusOK:
			won++
		case http.StatusGone:
		default:
			t.Errorf("answer %d", c)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent spends got the key, want exactly 1", won, n)
	}
}

func mustParseClaim(t *testing.T, s string) orgkey.ClaimToken {
	t.Helper()
	tok, err := orgkey.ParseClaim(s)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func mustNewClaim(t *testing.T) string {
	t.Helper()
	tok, err := orgkey.NewClaimToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Reveal()
}
