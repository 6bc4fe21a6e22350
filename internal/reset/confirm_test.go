package reset_test

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/httpapi"
	mailpkg "github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/reset"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

// auditOf is the organization's audit records of action.
func (f *fixture) auditOf(t *testing.T, o *org, action string) []store.AuditRecord {
	t.Helper()
	recs, err := f.store.Audit(t.Context(), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	var out []store.AuditRecord
	for _, r := range recs {
		if r.Action == action {
			out = append(out, r)
		}
	}
	return out
}

// assertPending checks that o is as seeded (active, version 1, everything there) and
// its reset under ticket waits for the confirmation.
func (f *fixture) assertPending(t *testing.T, o *org, ticket string, want store.ResetCounts) {
	t.Helper()
	got, err := f.store.GetOrg(t.Context(), o.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != "active" || got.KeyVersion != 1 || string(got.WrappedKey) != string(o.oldBlob) {
		t.Errorf("organization changed before the confirmation: status %s version %d", got.Status, got.KeyVersion)
	}
	if c := f.counts(t, o); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	rec, err := f.store.GetReset(t.Context(), ticket)
	if err != nil || rec.State != store.ResetPending {
		t.Errorf("reset record %+v (%v), want pending_confirmation", rec, err)
	}
	if n := len(mailsTo(t, o.admin.Email, keyMailSubject)); n != 0 {
		t.Errorf("%d key mails before the confirmation", n)
	}
}

// TestScheduleChangesNothingUntilConfirmed: "dryRun": false records the reset and
// mails the kept admin the confirmation link with the dry run's counts; the key and
// every item stay until the kept admin confirms; invoking the event again changes
// nothing and mails nothing more; once confirmed, the event runs the reset.
func TestScheduleChangesNothingUntilConfirmed(t *testing.T) {
	f := newFixture(t, testenv.Get(t).NewTable(t))
	o := seedOrg(t, f, 2000)
	ticket := newTicket()
	raw := o.event(t, ticket, false)
	rep := f.schedule(t, raw)
	if !strings.Contains(rep.Next, o.admin.Email) || !strings.Contains(rep.Next, rep.ConfirmBy.Format(time.RFC3339)) {
		t.Errorf("the answer does not say who confirms and until when: %s", rep.Next)
	}
	if d := time.Until(*rep.ConfirmBy); d < 71*time.Hour || d > 72*time.Hour {
		t.Errorf("confirm by %v, want 72 h from now", rep.ConfirmBy)
	}
	f.assertPending(t, o, ticket, full)
	mails := mailsTo(t, o.admin.Email, confirmMailSubject)
	if len(mails) != 1 {
		t.Fatalf("%d confirmation mails, want 1", len(mails))
	}
	m := mails[0]
	for _, want := range []string{ticket, o.name, "2000 mots de passe", "4 utilisateurs", "3 sites", "3 liens",
		"https://vault.example.test" + mailpkg.ResetConfirmPath + "#token="} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("the confirmation mail lacks %q:\n%s", want, m.Text)
		}
	}
	// The other org admin is told, with the ticket, whom it keeps, the counts and how
	// to cancel; nobody else.
	for _, u := range o.others {
		all, got := ledger.MailsTo(t, u.Email), notices(t, u.Email)
		want := 0
		if u.Role == "org_admin" {
			want = 1
		}
		if len(all) != want || len(got) != want {
			t.Errorf("%s: %d mails, %d notices; want %d notice", u.Role, len(all), len(got), want)
			continue
		}
		if want == 1 {
			for _, s := range []string{ticket, o.admin.Email, "2000 passwords", "cancel the reset", "https://vault.example.test"} {
				if !strings.Contains(got[0].Text, s) {
					t.Errorf("the notice lacks %q:\n%s", s, got[0].Text)
				}
			}
			if strings.Contains(got[0].Text, "#token=") {
				t.Error("the notice holds a confirmation link")
			}
		}
	}
	if got := f.auditOf(t, o, store.ActionResetScheduled); len(got) != 1 || got[0].ActorID == "" || got[0].Detail["ticketId"] != ticket {
		t.Errorf("scheduled audit records %+v", got)
	}

	again, err := f.invoke(t, raw, time.Minute)
	if err != nil || again.Status != reset.StatusPending || !again.ConfirmBy.Equal(*rep.ConfirmBy) {
		t.Fatalf("the event again: %+v, %v; want the same pending reset", again, err)
	}
	if n := len(mailsTo(t, o.admin.Email, confirmMailSubject)); n != 1 {
		t.Errorf("the event again mailed another confirmation (%d)", n)
	}
	f.assertPending(t, o, ticket, full)

	f.confirm(t, o)
	if got := f.auditOf(t, o, store.ActionResetConfirmed); len(got) != 1 || got[0].Outcome != "ok" || got[0].ActorID != o.admin.ID ||
		got[0].SourceIP != "203.0.113.7" {
		t.Errorf("confirmed audit records %+v", got)
	}
	f.assertCompleted(t, o, f.mustComplete(t, raw), 2)
}

// TestScheduleMailRetried: with SES down the scheduling fails after recording the
// reset; the next invocation mails a new link (the unsent one is dead), once.
func TestScheduleMailRetried(t *testing.T) {
	table := testenv.Get(t).NewTable(t)
	broken := newFixture(t, table, deadSES)
	o := seedOrg(t, broken, 20)
	ticket := newTicket()
	raw := o.event(t, ticket, false)
	if _, err := broken.invoke(t, raw, time.Minute); err == nil {
		t.Fatal("want the scheduling to fail with SES down")
	}
	rec, err := broken.store.GetReset(t.Context(), ticket)
	if err != nil || rec.State != store.ResetPending || rec.ConfirmMailed {
		t.Fatalf("after the failed mail: %+v (%v), want pending, not mailed", rec, err)
	}
	f := newFixture(t, table)
	f.schedule(t, raw)
	if n := len(mailsTo(t, o.admin.Email, confirmMailSubject)); n != 1 {
		t.Fatalf("%d confirmation mails, want 1", n)
	}
	f.confirm(t, o)
}

// TestConfirmRefusals: only the kept admin's own session confirms, only by the
// reset's current link, only before its deadline, only once. Every refusal of a
// known link is audited and changes nothing.
func TestConfirmRefusals(t *testing.T) {
	table := testenv.Get(t).NewTable(t)
	f := newFixture(t, table)
	o := seedOrg(t, f, 10)
	other := seedOrg(t, f, 1) // another tenant
	want := store.ResetCounts{Passwords: 10, Users: 4, Sites: 3, ClaimLinks: 3}
	ticket := newTicket()
	raw := o.event(t, ticket, false)
	f.schedule(t, raw)
	token := confirmToken(t, o.admin.Email)

	refused := func(name, tok, sub string, code apperr.Code, reason string) {
		t.Helper()
		before := len(f.auditOf(t, o, store.ActionResetConfirmed))
		_, err := f.svc.Confirm(t.Context(), tok, sub, reset.Meta{})
		if apperr.CodeOf(err) != code || apperr.ReasonOf(err) != reason {
			t.Errorf("%s: %v, want %s (%s)", name, err, code, reason)
		}
		recs := f.auditOf(t, o, store.ActionResetConfirmed)
		known := reason != reset.ReasonConfirmMalformed && reason != reset.ReasonConfirmUnknown && reason != reset.ReasonConfirmNoIdentity
		switch {
		case known && (len(recs) != before+1 || recs[len(recs)-1].Outcome != string(code) || recs[len(recs)-1].ActorID != sub):
			t.Errorf("%s: not audited (%d records, then %d)", name, before, len(recs))
		case !known && len(recs) != before:
			t.Errorf("%s: an unknown link was audited under the organization", name)
		}
	}
	refused("another org admin of the organization", token, o.others[0].ID, apperr.Forbidden, reset.ReasonConfirmWrongUser)
	refused("a site user of the organization", token, o.others[3].ID, apperr.Forbidden, reset.ReasonConfirmWrongUser)
	refused("another tenant's admin", token, other.admin.ID, apperr.Forbidden, reset.ReasonConfirmWrongUser)
	refused("no session", token, "", apperr.Unauthorized, reset.ReasonConfirmNoIdentity)
	refused("a malformed token", "not-a-token", o.admin.ID, apperr.NotFound, reset.ReasonConfirmMalformed)
	unknown, err := orgkey.NewClaimToken(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	refused("a token of no link", unknown.Reveal(), o.admin.ID, apperr.NotFound, reset.ReasonConfirmUnknown)
	f.assertPending(t, o, ticket, want)
	// The other tenant's admin's own reset link does not confirm this one either.
	otherRaw := other.event(t, newTicket(), false)
	f.schedule(t, otherRaw)
	if _, err := f.svc.Confirm(t.Context(), confirmToken(t, other.admin.Email), o.admin.ID, reset.Meta{}); apperr.ReasonOf(err) != reset.ReasonConfirmWrongUser {
		t.Errorf("the kept admin confirming another tenant's reset: %v", err)
	}

	f.confirm(t, o)
	refused("a replayed confirmation", token, o.admin.ID, apperr.NotFound, reset.ReasonConfirmUsed)
	if rec, err := f.store.GetReset(t.Context(), ticket); err != nil || rec.State != store.ResetConfirmed || rec.ConfirmedBy != o.admin.ID {
		t.Errorf("after the replay: %+v (%v), want confirmed by the kept admin", rec, err)
	}
}

// TestUnconfirmedResetExpires: past its deadline a pending reset cannot be confirmed,
// its event is refused with its own reason, nothing changed, and the organization is
// free for a new ticket.
func TestUnconfirmedResetExpires(t *testing.T) {
	f := newFixture(t, testenv.Get(t).NewTable(t))
	o := seedOrg(t, f, 10)
	want := store.ResetCounts{Passwords: 10, Users: 4, Sites: 3, ClaimLinks: 3}
	ticket := newTicket()
	raw := o.event(t, ticket, false)
	rep := f.schedule(t, raw)
	token := confirmToken(t, o.admin.Email)
	later := rep.ConfirmBy.Add(time.Second)
	f.svc.Now = func() time.Time { return later }

	if _, err := f.svc.Confirm(t.Context(), token, o.admin.ID, reset.Meta{}); apperr.ReasonOf(err) != reset.ReasonConfirmExpired {
		t.Fatalf("a confirmation after the deadline: %v, want %s", err, reset.ReasonConfirmExpired)
	}
	var e *reset.Error
	if _, err := f.invoke(t, raw, time.Minute); !errors.As(err, &e) || e.Reason != reset.ReasonConfirmationExpired {
		t.Fatalf("the event after the deadline: %v, want %s", err, reset.ReasonConfirmationExpired)
	}
	f.assertPending(t, o, ticket, want)
	if got := f.auditOf(t, o, store.ActionResetConfirmed); len(got) != 1 || got[0].Outcome != string(apperr.NotFound) {
		t.Errorf("the late confirmation's audit: %+v", got)
	}
	// A new ticket may schedule again: the expired one's hold lapsed.
	f.schedule(t, o.event(t, newTicket(), false))
	if n := len(mailsTo(t, o.admin.Email, confirmMailSubject)); n != 2 {
		t.Errorf("%d confirmation mails, want the expired one's and the new one's", n)
	}
}

// TestConcurrentConfirmations: of confirmations at once, exactly one wins.
func TestConcurrentConfirmations(t *testing.T) {
	f := newFixture(t, "")
	o := seedOrg(t, f, 5)
	f.schedule(t, o.event(t, newTicket(), false))
	token := confirmToken(t, o.admin.Email)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() { _, errs[i] = f.svc.Confirm(t.Context(), token, o.admin.ID, reset.Meta{}) })
	}
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case apperr.ReasonOf(err) != reset.ReasonConfirmUsed:
			t.Errorf("a losing confirmation: %v, want %s", err, reset.ReasonConfirmUsed)
		}
	}
	if won != 1 {
		t.Errorf("%d confirmations won, want exactly 1", won)
	}
}

// httpEvent is an HTTP API (payload 2.0) event of the confirmation routes, with the
// JWT authorizer's claims of sub's access token when sub is set.
func httpEvent(t *testing.T, method, sub, body, query string) []byte {
	t.Helper()
	req := httpapi.Request{
		Version: "2.0", RouteKey: method + " " + mailpkg.ResetConfirmPath, RawPath: mailpkg.ResetConfirmPath, RawQueryString: query,
		Headers: map[string]string{"content-type": "application/json", "accept-language": "fr-FR,fr;q=0.9"}, Body: body,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: "req-1", HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, SourceIP: "198.51.100.4"},
		},
	}
	if sub != "" {
		req.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: map[string]string{"sub": sub, "token_use": "access"}},
		}
	}
	raw, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestConfirmRoutes: the function answers the HTTP API's confirmation routes through
// its one entry point: the page (changes nothing), and the POST with the kept admin's
// access token and the link's token in the body.
func TestConfirmRoutes(t *testing.T) {
	f := newFixture(t, "")
	o := seedOrg(t, f, 5)
	ticket := newTicket()
	f.schedule(t, o.event(t, ticket, false))
	token := confirmToken(t, o.admin.Email)
	call := func(raw []byte) httpapi.Response {
		t.Helper()
		out, err := f.handler.Invoke(t.Context(), raw)
		if err != nil {
			t.Fatalf("invoke: %v", err)
		}
		var resp httpapi.Response
		if err := json.Unmarshal(out, &resp); err != nil {
			t.Fatalf("answer %s: %v", out, err)
		}
		ledger.Text("answer", resp.Body)
		return resp
	}
	page := call(httpEvent(t, "GET", "", "", ""))
	if page.StatusCode != http.StatusOK || !strings.Contains(page.Body, `data-kind="reset-confirm"`) || !strings.Contains(page.Body, `lang="fr"`) ||
		page.Headers["Cache-Control"] != "no-store" || !strings.Contains(page.Headers["Content-Security-Policy"], "form-action 'none'") {
		t.Errorf("the page: %d %v", page.StatusCode, page.Headers)
	}
	if head := call(httpEvent(t, "HEAD", "", "", "")); head.StatusCode != http.StatusOK || head.Body != "" {
		t.Errorf("HEAD: %d, %d bytes", head.StatusCode, len(head.Body))
	}
	body := `{"token":"` + token + `"}`
	for _, tc := range []struct {
		name, sub, body, query string
		status                 int
	}{
		{"no session", "", body, "", http.StatusUnauthorized},
		{"the token in the query", o.admin.ID, body, "token=" + token[:8], http.StatusBadRequest},
		{"another user's session", o.others[0].ID, body, "", http.StatusForbidden},
		{"an unknown field", o.admin.ID, `{"token":"` + token + `","ticketId":"x"}`, "", http.StatusBadRequest},
		{"a dead token", o.admin.ID, `{"token":"orgkey-claim-nope"}`, "", http.StatusGone},
	} {
		if r := call(httpEvent(t, "POST", tc.sub, tc.body, tc.query)); r.StatusCode != tc.status {
			t.Errorf("%s: %d %s, want %d", tc.name, r.StatusCode, r.Body, tc.status)
		}
	}
	f.assertPending(t, o, ticket, store.ResetCounts{Passwords: 5, Users: 4, Sites: 3, ClaimLinks: 3})
	if r := call(httpEvent(t, "POST", o.admin.ID, body, "")); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, `"status":"confirmed"`) {
		t.Fatalf("the kept admin's confirmation: %d %s", r.StatusCode, r.Body)
	}
	if r := call(httpEvent(t, "POST", o.admin.ID, body, "")); r.StatusCode != http.StatusGone {
		t.Errorf("the replay: %d %s, want 410", r.StatusCode, r.Body)
	}
	if !strings.Contains(f.logs.String(), `"flow":"reset-confirm"`) {
		t.Errorf("no log line of the confirmation: %s", f.logs.String())
	}
}
