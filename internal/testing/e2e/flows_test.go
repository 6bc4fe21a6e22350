package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"

	"github.com/mspvault/orgkey/internal/dev/localstack"
	"github.com/mspvault/orgkey/internal/tenant"
)

type errorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

func reasonOf(t *testing.T, r *localstack.Response) string {
	t.Helper()
	var e errorBody
	if err := json.Unmarshal(r.Body, &e); err != nil {
		t.Fatalf("answer %s is not an error body: %s", r.Status, r.Body)
	}
	return e.Reason
}

func mustAPI(t *testing.T, c *localstack.Client, method, path, token string, body any) *localstack.Response {
	t.Helper()
	r, err := c.API(t.Context(), method, path, token, body)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestActivation: a sign-up confirmed in Cognito makes one organization, one
// org admin and one activation mail with the key, however often Cognito
// runs the trigger.
func TestActivation(t *testing.T) {
	c := client(t)
	o := newOrg(t, c)

	got, err := c.Store.GetOrg(t.Context(), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Name != o.Name || got.KeyVersion != 1 || got.CreatorID != o.Admin.User.ID || o.Admin.User.Role != tenant.OrgAdmin {
		t.Errorf("organization %+v, creator %+v", got, o.Admin.User)
	}
	mails, err := c.Emails(t.Context(), o.Admin.Email)
	if err != nil {
		t.Fatal(err)
	}
	if len(mails) != 1 || mails[0].Subject != "Account activation complete" || mails[0].From != "no-reply@orgkey.local" {
		t.Fatalf("activation mails: %+v", mails)
	}

	// Cognito retries a trigger: the same PostConfirmation event again,
	// through the Lambda endpoint, changes nothing.
	event := map[string]any{
		"version": "1", "region": "local", "userPoolId": shared.ep.UserPoolID, "userName": o.Admin.User.ID,
		"triggerSource": "PostConfirmation_ConfirmSignUp",
		"callerContext": map[string]any{"awsSdkVersion": "2", "clientId": shared.ep.ClientID},
		"request": map[string]any{"userAttributes": map[string]string{
			"sub": o.Admin.User.ID, "email": o.Admin.Email, "name": o.Admin.Name, "locale": "en",
			"custom:company_name": o.Name, "cognito:user_status": "CONFIRMED",
		}},
		"response": map[string]any{},
	}
	inv, err := c.Invoke(t.Context(), "ActivationEmailFunction", event)
	if err != nil || inv.FunctionError != "" {
		t.Fatalf("retried trigger: %v %s %s", err, inv.FunctionError, inv.Payload)
	}
	time.Sleep(300 * time.Millisecond)
	if mails, err := c.Emails(t.Context(), o.Admin.Email); err != nil || len(mails) != 1 {
		t.Errorf("after a retried trigger, %d activation mails, want 1 (%v)", len(mails), err)
	}
	if tid, err := c.Store.TenantOfUser(t.Context(), o.Admin.User.ID); err != nil || tid != o.ID {
		t.Errorf("after a retried trigger the creator belongs to %q, want %q (%v)", tid, o.ID, err)
	}
}

// TestReveal: org admins and site admins see the key (no-store); other roles,
// and callers without a valid token, do not.
func TestReveal(t *testing.T) {
	c := client(t)
	o := newOrg(t, c)
	siteAdmin := o.add(t, c, tenant.SiteAdmin, o.Site)
	proUser := o.add(t, c, tenant.ProUser)
	siteUser := o.add(t, c, tenant.SiteUser, o.Site)

	for _, m := range []member{o.Admin, siteAdmin} {
		r := mustAPI(t, c, http.MethodPost, "/org-key/reveal", m.Tokens.Access, nil)
		if r.StatusCode != http.StatusOK || r.Header.Get("Cache-Control") != "no-store" {
			t.Fatalf("%s reveal: %s %v %s", m.User.Role, r.Status, r.Header, r.Body)
		}
		var got struct {
			OrgKey     string `json:"orgKey"`
			KeyVersion int    `json:"keyVersion"`
		}
		json.Unmarshal(r.Body, &got)
		if got.OrgKey != o.Key || got.KeyVersion != 1 {
			t.Errorf("%s reveal = %+v, want the activation mail's key %s", m.User.Role, got, o.Key)
		}
	}
	// The ID token of the same sign-in (aud instead of client_id, no scope) opens
	// nothing: the routes take access tokens only.
	if r := mustAPI(t, c, http.MethodPost, "/org-key/reveal", o.Admin.Tokens.ID, nil); r.StatusCode != http.StatusUnauthorized || strings.Contains(string(r.Body), o.Key) {
		t.Errorf("reveal with the id token: %s %s", r.Status, r.Body)
	}
	for _, m := range []member{proUser, siteUser} {
		r := mustAPI(t, c, http.MethodPost, "/org-key/reveal", m.Tokens.Access, nil)
		if r.StatusCode != http.StatusForbidden || reasonOf(t, r) != "caller_not_admin" || strings.Contains(string(r.Body), o.Key) {
			t.Errorf("%s reveal: %s %s", m.User.Role, r.Status, r.Body)
		}
	}
	// A token whose sign-in is older than the step-up window: sign in again.
	stale := sign(t, o.Admin.User.ID, map[string]any{"auth_time": time.Now().Add(-time.Hour).Unix()})
	if r := mustAPI(t, c, http.MethodPost, "/org-key/reveal", stale, nil); r.StatusCode != http.StatusUnauthorized || reasonOf(t, r) != "reauthentication_required" {
		t.Errorf("reveal after an old sign-in: %s %s", r.Status, r.Body)
	}
}

// TestSendKey: the send rules over HTTP, each refusal with its reason, a
// user of another organization answered exactly like a missing one, and the
// mails that go out.
func TestSendKey(t *testing.T) {
	c := client(t)
	o := newOrg(t, c)
	other := newOrg(t, c)
	otherSite, err := c.AddSite(t.Context(), o.ID, unique("site_"), "Other site")
	if err != nil {
		t.Fatal(err)
	}
	siteAdmin := o.add(t, c, tenant.SiteAdmin, o.Site)
	proUser := o.add(t, c, tenant.ProUser)
	siteUser := o.add(t, c, tenant.SiteUser, o.Site)
	farSiteUser := o.add(t, c, tenant.SiteUser, otherSite.ID)
	strangerPro := other.add(t, c, tenant.ProUser)

	cases := []struct {
		name   string
		from   member
		body   map[string]string
		status int
		reason string
	}{
		{"org admin to pro user by email", o.Admin, map[string]string{"email": proUser.Email}, http.StatusAccepted, ""},
		{"org admin to pro user by id", o.Admin, map[string]string{"userId": proUser.User.ID}, http.StatusAccepted, ""},
		{"site admin to a user of their site", siteAdmin, map[string]string{"userId": siteUser.User.ID}, http.StatusAccepted, ""},
		{"org admin to site user", o.Admin, map[string]string{"email": siteUser.Email}, http.StatusForbidden, "target_not_pro_user"},
		{"site admin to pro user", siteAdmin, map[string]string{"email": proUser.Email}, http.StatusForbidden, "target_not_site_user"},
		{"site admin to a user of another site", siteAdmin, map[string]string{"email": farSiteUser.Email}, http.StatusForbidden, "no_shared_site"},
		{"pro user sends", proUser, map[string]string{"email": siteUser.Email}, http.StatusForbidden, "caller_not_admin"},
		{"site user sends", siteUser, map[string]string{"email": proUser.Email}, http.StatusForbidden, "caller_not_admin"},
		{"both id and email", o.Admin, map[string]string{"email": proUser.Email, "userId": proUser.User.ID}, http.StatusBadRequest, "userid_or_email_required"},
		{"malformed email", o.Admin, map[string]string{"email": "not an address"}, http.StatusBadRequest, "invalid_email"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := mustAPI(t, c, http.MethodPost, "/org-key/send", tc.from.Tokens.Access, tc.body)
			if r.StatusCode != tc.status {
				t.Fatalf("%s %s, want %d", r.Status, r.Body, tc.status)
			}
			if tc.reason != "" && reasonOf(t, r) != tc.reason {
				t.Errorf("reason %q, want %q", reasonOf(t, r), tc.reason)
			}
		})
	}

	// Another organization's user is answered byte for byte like nobody.
	missing := mustAPI(t, c, http.MethodPost, "/org-key/send", o.Admin.Tokens.Access, map[string]string{"email": unique("nobody-") + "@example.com"})
	stranger := mustAPI(t, c, http.MethodPost, "/org-key/send", o.Admin.Tokens.Access, map[string]string{"email": strangerPro.Email})
	strangerID := mustAPI(t, c, http.MethodPost, "/org-key/send", o.Admin.Tokens.Access, map[string]string{"userId": strangerPro.User.ID})
	if missing.StatusCode != http.StatusNotFound || string(stranger.Body) != string(missing.Body) ||
		stranger.StatusCode != missing.StatusCode || strangerID.StatusCode != http.StatusNotFound || string(strangerID.Body) != string(missing.Body) {
		t.Errorf("missing %s %s; other tenant's user %s %s / by id %s %s", missing.Status, missing.Body, stranger.Status, stranger.Body, strangerID.Status, strangerID.Body)
	}

	// Two links to the pro user, one to the site user; the mails carry links,
	// never the key.
	for who, n := range map[string]int{proUser.Email: 2, siteUser.Email: 1} {
		mails, err := c.WaitExactEmails(t.Context(), who, n)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range mails {
			if localstack.ClaimLink(m) == "" || strings.Contains(m.Text+m.HTML, o.Key) {
				t.Errorf("mail to %s: link %q, carries the key: %v", who, localstack.ClaimLink(m), strings.Contains(m.Text+m.HTML, o.Key))
			}
		}
	}
	for _, who := range []string{farSiteUser.Email, strangerPro.Email} {
		if mails, err := c.Emails(t.Context(), who); err != nil || len(mails) != 0 {
			t.Errorf("a refused send mailed %s (%d, %v)", who, len(mails), err)
		}
	}
}

// TestClaimLink: a claim link carries its token in the fragment. What mail scanners
// do with it — HEAD, GETs with their user agents, the page's button without a session,
// a token in the query — answers the page or a refusal, sets no cookie and leaves the
// link live; another signed-in user is refused (403). The addressee's POST with their
// access token sets the key as a __Host- cookie (Secure, HttpOnly, SameSite=Strict)
// once; again, or forged, it is 410.
func TestClaimLink(t *testing.T) {
	c := client(t)
	o, link := sendToNewProUser(t, c)
	if !strings.HasPrefix(link, shared.ep.API+"/org-key/claim#token=") {
		t.Fatalf("claim link %q does not point at this API (%s) with the token in its fragment", link, shared.ep.API)
	}
	page := localstack.LinkPage(link)
	token := localstack.LinkToken(link)
	for _, probe := range []struct{ method, agent string }{
		{http.MethodHead, "curl/8.5.0"},
		{http.MethodGet, localstack.SafeLinksAgent},
		{http.MethodGet, "Mozilla/5.0 (compatible; BarracudaCentral)"},
		{http.MethodGet, "Proofpoint URL Defense"},
	} {
		for _, u := range []string{page, page + "?token=" + token} {
			r, err := c.Fetch(t.Context(), probe.method, u, probe.agent)
			if err != nil {
				t.Fatal(err)
			}
			if r.StatusCode != http.StatusOK || len(r.Cookies()) != 0 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/html") ||
				strings.Contains(string(r.Body), o.Key) || strings.Contains(string(r.Body), token) {
				t.Errorf("%s %s as %q: %s, %d cookies", probe.method, u, probe.agent, r.Status, len(r.Cookies()))
			}
			for _, h := range []string{"Cache-Control", "Referrer-Policy", "Content-Security-Policy"} {
				if r.Header.Get(h) == "" {
					t.Errorf("claim page lacks %s", h)
				}
			}
			// The page signs in against the stack's Cognito, as it would against the
			// region's endpoint on AWS.
			if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "connect-src 'self' "+shared.ep.Cognito+";") {
				t.Errorf("the page may not reach cognito-local (%s): %s", shared.ep.Cognito, csp)
			}
		}
	}
	noSession, err := c.Claim(t.Context(), link, "")
	if err != nil {
		t.Fatal(err)
	}
	inQuery := mustAPI(t, c, http.MethodPost, "/org-key/claim?token="+token, o.Admin.Tokens.Access, map[string]string{})
	other, err := c.Claim(t.Context(), link, o.Admin.Tokens.Access)
	if err != nil {
		t.Fatal(err)
	}
	if noSession.StatusCode != http.StatusUnauthorized || inQuery.StatusCode != http.StatusBadRequest || other.StatusCode != http.StatusForbidden {
		t.Errorf("no session %s, token in the query %s, another user %s: want 401, 400, 403", noSession.Status, inQuery.Status, other.Status)
	}
	for _, r := range []*localstack.Response{noSession, inQuery, other} {
		if len(r.Cookies()) != 0 || strings.Contains(string(r.Body), o.Key) {
			t.Errorf("a refusal carries the key or a cookie: %s", r.Status)
		}
	}
	if st, err := c.LinkState(t.Context(), link); err != nil || !st.UsedAt.IsZero() || !st.RevokedAt.IsZero() {
		t.Fatalf("after the scanners the link is %+v, %v", st, err)
	}

	pro := o.members[len(o.members)-1]
	r, err := c.Claim(t.Context(), link, pro.Tokens.Access)
	if err != nil {
		t.Fatal(err)
	}
	if r.StatusCode != http.StatusOK || strings.Contains(string(r.Body), o.Key) {
		t.Fatalf("the addressee's claim: %s %s", r.Status, r.Body)
	}
	cookies := r.Cookies()
	if len(cookies) != 1 {
		t.Fatalf("claim set %d cookies: %v", len(cookies), r.Header.Values("Set-Cookie"))
	}
	ck := cookies[0]
	if ck.Name != "__Host-orgkey" || ck.Value != o.Key || !ck.Secure || !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode ||
		ck.Path != "/" || ck.Domain != "" || ck.MaxAge <= 0 {
		t.Errorf("cookie %+v", ck)
	}

	again, err := c.Claim(t.Context(), link, pro.Tokens.Access)
	if err != nil {
		t.Fatal(err)
	}
	forged, err := c.Claim(t.Context(), shared.ep.API+"/org-key/claim#token=okc1_"+strings.Repeat("A", 43), pro.Tokens.Access)
	if err != nil {
		t.Fatal(err)
	}
	for name, x := range map[string]*localstack.Response{"reused": again, "forged": forged} {
		if x.StatusCode != http.StatusGone || string(x.Body) != string(again.Body) || len(x.Cookies()) != 0 ||
			!strings.Contains(string(x.Body), "link_gone") {
			t.Errorf("%s link: %s %s cookies %v", name, x.Status, x.Body, x.Cookies())
		}
	}
}

// TestRequestKey: a user asks for the key; the admins who may send it to them
// are mailed.
func TestRequestKey(t *testing.T) {
	c := client(t)
	o := newOrg(t, c)
	siteAdmin := o.add(t, c, tenant.SiteAdmin, o.Site)
	siteUser := o.add(t, c, tenant.SiteUser, o.Site)
	r := mustAPI(t, c, http.MethodPost, "/org-key/request", siteUser.Tokens.Access, nil)
	if r.StatusCode != http.StatusAccepted {
		t.Fatalf("request: %s %s", r.Status, r.Body)
	}
	if _, err := c.WaitExactEmails(t.Context(), siteAdmin.Email, 1); err != nil {
		t.Fatal(err)
	}
	if r := mustAPI(t, c, http.MethodPost, "/org-key/request", siteUser.Tokens.Access, map[string]string{"note": "x"}); r.StatusCode != http.StatusBadRequest {
		t.Errorf("request with free text: %s %s", r.Status, r.Body)
	}
}

// TestSupportReset: through the Lambda endpoint, a dry run counts, the real event
// schedules the reset and changes nothing, the kept admin confirms it through the
// HTTP API with their own session (another member's is refused), and the stack's
// schedule then runs the reset by itself: it replaces the key, deletes the members and their links, keeps the admin and
// mails them the new key; the same ticket again answers the same; a wrong
// confirmation is a function error that changes nothing.
func TestSupportReset(t *testing.T) {
	c := client(t)
	o := newOrg(t, c)
	pro := o.add(t, c, tenant.ProUser)
	if r := mustAPI(t, c, http.MethodPost, "/org-key/send", o.Admin.Tokens.Access, map[string]string{"email": pro.Email}); r.StatusCode != http.StatusAccepted {
		t.Fatalf("send: %s %s", r.Status, r.Body)
	}
	mails, err := c.WaitExactEmails(t.Context(), pro.Email, 1)
	if err != nil {
		t.Fatal(err)
	}
	link := localstack.ClaimLink(mails[0])

	ticket := unique("SUP-")
	event := map[string]any{
		"tenantId": o.ID, "ticketId": ticket, "agent": "agent@support.example",
		"verification":            map[string]string{"method": "phone_callback", "reference": "called back the number on file"},
		"confirmOrganizationName": o.Name, "keepAdminEmail": o.Admin.Email, "dryRun": true,
	}
	type report struct {
		Status        string         `json:"status"`
		NewKeyVersion int            `json:"newKeyVersion"`
		WouldDelete   map[string]int `json:"wouldDelete"`
		Deleted       map[string]int `json:"deleted"`
		MailSent      bool           `json:"mailSent"`
	}
	invoke := func(ev map[string]any) (report, localstack.Invocation) {
		t.Helper()
		inv, err := c.Invoke(t.Context(), "SupportResetFunction", ev)
		if err != nil {
			t.Fatal(err)
		}
		var rep report
		json.Unmarshal(inv.Payload, &rep)
		return rep, inv
	}

	dry, inv := invoke(event)
	if inv.FunctionError != "" || dry.Status != "dry_run" || dry.WouldDelete["users"] != 1 || dry.WouldDelete["claimLinks"] != 1 {
		t.Fatalf("dry run: %s %s", inv.FunctionError, inv.Payload)
	}
	if r := mustAPI(t, c, http.MethodPost, "/org-key/reveal", o.Admin.Tokens.Access, nil); !strings.Contains(string(r.Body), o.Key) {
		t.Fatalf("the dry run changed the key: %s", r.Body)
	}

	bad := map[string]any{}
	for k, v := range event {
		bad[k] = v
	}
	bad["dryRun"], bad["confirmOrganizationName"], bad["ticketId"] = false, "Not "+o.Name, unique("SUP-")
	if _, inv := invoke(bad); inv.FunctionError != "Unhandled" || !strings.Contains(string(inv.Payload), "organization_name_mismatch") {
		t.Errorf("mismatched name: %s %s", inv.FunctionError, inv.Payload)
	}

	// The reset is scheduled: nothing changes until the kept admin confirms it from
	// their own signed-in browser, by the mailed link.
	event["dryRun"] = false
	pending, inv := invoke(event)
	if inv.FunctionError != "" || pending.Status != "pending_confirmation" {
		t.Fatalf("schedule: %s %s", inv.FunctionError, inv.Payload)
	}
	if r := mustAPI(t, c, http.MethodPost, "/org-key/reveal", o.Admin.Tokens.Access, nil); !strings.Contains(string(r.Body), o.Key) {
		t.Fatalf("the scheduling changed the key: %s", r.Body)
	}
	adminMails, err := c.WaitExactEmails(t.Context(), o.Admin.Email, 2)
	if err != nil {
		t.Fatal(err)
	}
	confirmLink := localstack.ResetConfirmLink(adminMails[1])
	if confirmLink == "" {
		t.Fatalf("no confirmation link in %q", adminMails[1].Subject)
	}
	if r, err := c.Fetch(t.Context(), http.MethodGet, localstack.LinkPage(confirmLink), "Mozilla/5.0"); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("the confirmation page: %v %v", r, err)
	}
	if r, err := c.Claim(t.Context(), confirmLink, ""); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Errorf("a confirmation without a session: %v %v", r, err)
	}
	if r, err := c.Claim(t.Context(), confirmLink, pro.Tokens.Access); err != nil || r.StatusCode != http.StatusForbidden {
		t.Errorf("a confirmation by another member's session: %v %v", r, err)
	}
	if again, inv := invoke(event); inv.FunctionError != "" || again.Status != "pending_confirmation" {
		t.Fatalf("the event before the confirmation: %s %s", inv.FunctionError, inv.Payload)
	}
	if r, err := c.Claim(t.Context(), confirmLink, o.Admin.Tokens.Access); err != nil || r.StatusCode != http.StatusOK {
		t.Fatalf("the kept admin's confirmation: %v %v", r, err)
	}
	// The stack runs the template's schedule: it starts the confirmed reset (no
	// cool-off locally) and runs it to completion without another invocation.
	if adminMails, err = c.WaitExactEmails(t.Context(), o.Admin.Email, 3); err != nil {
		t.Fatal(err)
	}
	done, inv := invoke(event)
	if inv.FunctionError != "" || done.Status != "completed" || done.NewKeyVersion != 2 || !done.MailSent || done.Deleted["users"] != 1 || done.Deleted["accounts"] != 1 {
		t.Fatalf("reset: %s %s", inv.FunctionError, inv.Payload)
	}
	again, inv := invoke(event)
	if inv.FunctionError != "" || again.Status != "completed" || again.NewKeyVersion != 2 {
		t.Errorf("the same ticket again: %s %s", inv.FunctionError, inv.Payload)
	}

	newKey := orgKeyRE.FindString(adminMails[len(adminMails)-1].Text)
	if newKey == "" || newKey == o.Key {
		t.Fatalf("reset mail key %q (old %q)", newKey, o.Key)
	}
	tokens, err := c.SignIn(t.Context(), o.Admin.Email, o.Admin.Password)
	if err != nil {
		t.Fatal(err)
	}
	if r := mustAPI(t, c, http.MethodPost, "/org-key/reveal", tokens.Access, nil); !strings.Contains(string(r.Body), newKey) {
		t.Errorf("after the reset reveal answers %s %s, want the new key", r.Status, r.Body)
	}
	// The link's addressee was removed by the reset; the access token it still holds
	// (a JWT stays valid until it expires) spends nothing.
	if r, err := c.Claim(t.Context(), link, pro.Tokens.Access); err != nil || r.StatusCode == http.StatusOK || len(r.Cookies()) != 0 {
		t.Errorf("a claim link from before the reset, by its removed addressee: %v, %v", r, err)
	}
	if r := mustAPI(t, c, http.MethodPost, "/org-key/send", pro.Tokens.Access, map[string]string{"email": o.Admin.Email}); r.StatusCode != http.StatusForbidden || reasonOf(t, r) != "unknown_user" {
		t.Errorf("a deleted member's token: %s %s", r.Status, r.Body)
	}

	// The pool (shared with the other tests) holds the kept admin's account and no
	// longer the removed member's; the member cannot sign in.
	for _, tc := range []struct {
		email string
		want  int
	}{{o.Admin.Email, 1}, {pro.Email, 0}} {
		out, err := c.Cognito.ListUsers(t.Context(), &cip.ListUsersInput{
			UserPoolId: aws.String(shared.ep.UserPoolID), Filter: aws.String(fmt.Sprintf("email = %q", tc.email)),
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Users) != tc.want {
			t.Errorf("the pool holds %d accounts of %s after the reset, want %d", len(out.Users), tc.email, tc.want)
		}
	}
	if _, err := c.SignIn(t.Context(), pro.Email, localstack.DemoPassword); err == nil {
		t.Error("a removed member still signs in after the reset")
	}
}

// TestLambdaEndpoint: the Invoke API as the AWS SDK sees it.
func TestLambdaEndpoint(t *testing.T) {
	c := client(t)
	_, err := c.Lambda.Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("NoSuchFunction"), Payload: []byte("{}")})
	var nf *lambdatypes.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("unknown function: %v, want ResourceNotFoundException", err)
	}
	// By ARN, and a function error from a malformed event.
	out, err := c.Lambda.Invoke(t.Context(), &lambda.InvokeInput{
		FunctionName: aws.String("arn:aws:lambda:us-east-1:123456789012:function:SupportResetFunction"),
		Payload:      []byte(`{"tenantId":1}`),
	})
	if err != nil || aws.ToString(out.FunctionError) != "Unhandled" || !strings.Contains(string(out.Payload), "errorMessage") {
		t.Errorf("malformed reset event: %v %+v", err, out)
	}
	out, err = c.Lambda.Invoke(t.Context(), &lambda.InvokeInput{FunctionName: aws.String("SupportResetFunction"),
		InvocationType: lambdatypes.InvocationTypeDryRun})
	if err != nil || out.StatusCode != http.StatusNoContent {
		t.Errorf("dry-run invocation: %v %+v", err, out)
	}
}

// TestHTTPAPIEdges: unknown routes and methods, and the JWT authorizer's
// refusals, answered as API Gateway answers them.
func TestHTTPAPIEdges(t *testing.T) {
	c := client(t)
	o := newOrg(t, c)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/org-key/reveal"}, {http.MethodPost, "/nowhere"}, {http.MethodDelete, "/org-key/send"},
	} {
		r := mustAPI(t, c, tc.method, tc.path, o.Admin.Tokens.Access, nil)
		if r.StatusCode != http.StatusNotFound || string(r.Body) != `{"message":"Not Found"}` {
			t.Errorf("%s %s: %s %s", tc.method, tc.path, r.Status, r.Body)
		}
	}

	sub := o.Admin.User.ID
	tokens := map[string]string{
		"no token":       "",
		"garbage":        "not-a-jwt",
		"expired":        sign(t, sub, map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}),
		"not yet valid":  sign(t, sub, map[string]any{"nbf": time.Now().Add(time.Hour).Unix()}),
		"wrong issuer":   sign(t, sub, map[string]any{"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_other"}),
		"wrong client":   sign(t, sub, map[string]any{"client_id": "another-client"}),
		"wrong audience": sign(t, sub, map[string]any{"client_id": nil, "aud": "another-client", "token_use": "id"}),
		// cognito-local's own ID token of this sign-in: the right issuer, the app
		// client as its aud, a good signature; no access-token scope.
		"the ID token of the sign-in": o.Admin.Tokens.ID,
		"forged ID token, right aud":  sign(t, sub, map[string]any{"client_id": nil, "aud": shared.ep.ClientID, "token_use": "id", "scope": nil}),
		"access token without scope":  sign(t, sub, map[string]any{"scope": nil}),
		"access token, other scope":   sign(t, sub, map[string]any{"scope": "openid email"}),
		"no expiry":                   sign(t, sub, map[string]any{"exp": nil}),
		"signed by stranger":          signWith(t, strangerKey(t), sub, nil),
		"HS256 with the kid":          signHS256(t, sub),
		"unsigned (alg none)":         signNone(t, sub),
	}
	for name, tok := range tokens {
		for _, path := range []string{"/org-key/reveal", "/org-key/send", "/org-key/request"} {
			r := mustAPI(t, c, http.MethodPost, path, tok, map[string]string{"email": "x@example.com"})
			if r.StatusCode != http.StatusUnauthorized || string(r.Body) != `{"message":"Unauthorized"}` {
				t.Errorf("%s on %s: %s %s", name, path, r.Status, r.Body)
			}
		}
	}
	// Past the authorizer's scope check, the function refuses anything but an
	// access token on its own (token_use), as the second layer.
	for _, path := range []string{"/org-key/reveal", "/org-key/send", "/org-key/request"} {
		var body any // reveal and request take no body (and read it first)
		if path == "/org-key/send" {
			body = map[string]string{"email": "x@example.com"}
		}
		r := mustAPI(t, c, http.MethodPost, path, sign(t, sub, map[string]any{"token_use": "id"}), body)
		if r.StatusCode != http.StatusUnauthorized || !strings.Contains(string(r.Body), "access_token_required") {
			t.Errorf("token_use id with the access scope on %s: %s %s", path, r.Status, r.Body)
		}
	}
	// A token the stack did not issue but signed with the pool's key and the
	// right claims passes: the authorizer checks what API Gateway checks.
	if r := mustAPI(t, c, http.MethodPost, "/org-key/reveal", sign(t, sub, nil), nil); r.StatusCode != http.StatusOK {
		t.Errorf("a well-formed token: %s %s", r.Status, r.Body)
	}
}

// sendToNewProUser makes an organization with a pro user, has its admin send the
// user the key, and returns the organization and the claim link from the mail.
// The pro user is o's last member.
func sendToNewProUser(t *testing.T, c *localstack.Client) (*org, string) {
	t.Helper()
	o := newOrg(t, c)
	pro := o.add(t, c, tenant.ProUser)
	return o, sendLink(t, c, o, pro)
}

// sendLink has o's creator send the key to m and returns the mailed link.
func sendLink(t *testing.T, c *localstack.Client, o *org, pro member) string {
	t.Helper()
	if r := mustAPI(t, c, http.MethodPost, "/org-key/send", o.Admin.Tokens.Access, map[string]string{"email": pro.Email}); r.StatusCode != http.StatusAccepted {
		t.Fatalf("send: %s %s", r.Status, r.Body)
	}
	mails, err := c.WaitExactEmails(t.Context(), pro.Email, 1)
	if err != nil {
		t.Fatal(err)
	}
	link := localstack.ClaimLink(mails[0])
	if link == "" {
		t.Fatalf("no claim link in:\n%s", mails[0].Text)
	}
	return link
}
