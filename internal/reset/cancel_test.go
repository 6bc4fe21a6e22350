package reset_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/httpapi"
	mailpkg "github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/reset"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

func actionEvent(t *testing.T, fields map[string]any) json.RawMessage {
	t.Helper()
	raw, err := json.Marshal(fields)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (f *fixture) status(t *testing.T, ticket string) *reset.Report {
	t.Helper()
	rep, err := f.invoke(t, actionEvent(t, map[string]any{"action": "status", "ticketId": ticket}), time.Minute)
	if err != nil {
		t.Fatalf("status: %v", err)
	}
	return rep
}

func (f *fixture) supportCancel(t *testing.T, ticket string) (*reset.Report, error) {
	t.Helper()
	return f.invoke(t, actionEvent(t, map[string]any{"action": "cancel", "ticketId": ticket,
		"agent": "jeanne.dupont@support.example", "reason": "the customer called back: not them"}), time.Minute)
}

// TestCancelBySupport: support's cancel event stops a pending reset; nothing changed,
// the organization is free again, the link and the event are refused afterwards, and
// the status says so.
func TestCancelBySupport(t *testing.T) {
	f := newFixture(t, testenv.Get(t).NewTable(t))
	o := seedOrg(t, f, 10)
	ticket := newTicket()
	raw := o.event(t, ticket, false)
	f.schedule(t, raw)
	if rep := f.status(t, ticket); rep.Status != reset.StatusPending {
		t.Errorf("status while pending: %+v", rep)
	}
	token := confirmToken(t, o.admin.Email)
	rep, err := f.supportCancel(t, ticket)
	if err != nil || rep.Status != reset.StatusCancelled || !strings.Contains(rep.Next, "support:jeanne.dupont@support.example") {
		t.Fatalf("cancel: %+v, %v", rep, err)
	}
	got := f.auditOf(t, o, store.ActionResetCancelled)
	if len(got) != 1 || got[0].Outcome != "ok" || got[0].Detail["by"] != "support" || got[0].Detail["reason"] == "" {
		t.Errorf("cancelled audit records %+v", got)
	}
	f.assertUnchanged(t, o, store.ResetCounts{Passwords: 10, Users: 4, Sites: 3, ClaimLinks: 3})
	if _, err := f.svc.Confirm(t.Context(), token, o.admin.ID, reset.Meta{}); apperr.ReasonOf(err) != reset.ReasonConfirmUsed {
		t.Errorf("confirming a cancelled reset: %v, want %s", err, reset.ReasonConfirmUsed)
	}
	var e *reset.Error
	if _, err := f.invoke(t, raw, time.Minute); !errors.As(err, &e) || e.Reason != reset.ReasonResetCancelled {
		t.Errorf("the event after the cancel: %v, want %s", err, reset.ReasonResetCancelled)
	}
	if _, err := f.supportCancel(t, ticket); !errors.As(err, &e) || e.Reason != reset.ReasonResetNotCancellable {
		t.Errorf("a second cancel: %v, want %s", err, reset.ReasonResetNotCancellable)
	}
	if rep := f.status(t, ticket); rep.Status != reset.StatusCancelled {
		t.Errorf("status after the cancel: %+v", rep)
	}
	// The organization is free: a new ticket schedules.
	f.schedule(t, o.event(t, newTicket(), false))
	if n := len(mailsTo(t, o.admin.Email, confirmMailSubject)); n != 2 {
		t.Errorf("%d confirmation mails, want 2", n)
	}
}

// TestCancelByOrgAdmin: during the cool-off any org admin of the organization cancels
// from their signed-in browser (POST with their access token); nobody else can, and
// the refusals are audited; the schedule then runs nothing.
func TestCancelByOrgAdmin(t *testing.T) {
	f := newFixture(t, testenv.Get(t).NewTable(t))
	o := seedOrg(t, f, 10)
	other := seedOrg(t, f, 1)
	ticket := newTicket()
	// Confirmed two hours ago with a cool-off of three: due in an hour.
	ago := time.Now().Add(-2 * time.Hour)
	f.svc.CoolOff = 3 * time.Hour
	f.svc.Now = func() time.Time { return ago }
	f.schedule(t, o.event(t, ticket, false))
	f.svc.Now = func() time.Time { return ago.Add(time.Minute) }
	f.confirm(t, o)
	f.svc.Now = time.Now
	if rep := f.status(t, ticket); rep.Status != reset.StatusConfirmed || rep.RunAfter == nil {
		t.Errorf("status during the cool-off: %+v", rep)
	}
	post := func(sub string) httpapi.Response {
		t.Helper()
		ev := httpEvent(t, "POST", sub, `{"ticketId":"`+ticket+`"}`, "")
		var req httpapi.Request
		json.Unmarshal(ev, &req)
		req.RouteKey, req.RawPath = "POST "+mailpkg.ResetCancelPath, mailpkg.ResetCancelPath
		raw, _ := json.Marshal(req)
		out, err := f.handler.Invoke(t.Context(), raw)
		if err != nil {
			t.Fatal(err)
		}
		var resp httpapi.Response
		json.Unmarshal(out, &resp)
		return resp
	}
	for _, tc := range []struct{ name, sub string }{
		{"a site user", o.others[3].ID}, {"a pro user", o.others[1].ID}, {"another tenant's admin", other.admin.ID},
	} {
		if r := post(tc.sub); r.StatusCode != http.StatusForbidden {
			t.Errorf("%s cancelling: %d %s, want 403", tc.name, r.StatusCode, r.Body)
		}
	}
	if r := post(""); r.StatusCode != http.StatusUnauthorized {
		t.Errorf("no session: %d", r.StatusCode)
	}
	if got := f.auditOf(t, o, store.ActionResetCancelled); len(got) != 3 || got[0].Outcome != string(apperr.Forbidden) {
		t.Errorf("refused cancels' audit: %+v", got)
	}
	if r := post(o.others[0].ID); r.StatusCode != http.StatusOK || !strings.Contains(r.Body, `"status":"cancelled"`) {
		t.Fatalf("another org admin's cancel: %d %s", r.StatusCode, r.Body)
	}
	// An hour and a half later (the cool-off over), the schedule finds nothing due.
	f.svc.Now = func() time.Time { return time.Now().Add(90 * time.Minute) }
	if res := f.sweep(t, time.Minute); res.Due != 0 {
		t.Errorf("a cancelled reset is due: %+v", res)
	}
	f.assertUnchanged(t, o, store.ResetCounts{Passwords: 10, Users: 4, Sites: 3, ClaimLinks: 3})
}

// TestCancelRacingStart: a cancel and the schedule's start at once: exactly one wins.
// Either the reset is cancelled and nothing is deleted, or it runs and the cancel is
// refused with that reason.
func TestCancelRacingStart(t *testing.T) {
	f := newFixture(t, testenv.Get(t).NewTable(t))
	for i := range 4 {
		o := seedOrg(t, f, 50)
		ticket := newTicket()
		f.confirmed(t, o, o.event(t, ticket, false))
		var wg sync.WaitGroup
		var cancelErr error
		var swept reset.SweepResult
		wg.Go(func() { _, cancelErr = f.supportCancel(t, ticket) })
		wg.Go(func() { swept = f.sweep(t, time.Minute) })
		wg.Wait()
		rec, err := f.store.GetReset(t.Context(), ticket)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case cancelErr == nil:
			if rec.State != store.ResetCancelled || f.counts(t, o) != (store.ResetCounts{Passwords: 50, Users: 4, Sites: 3, ClaimLinks: 3}) {
				t.Errorf("race %d: the cancel won but the reset is %s, counts %+v", i, rec.State, f.counts(t, o))
			}
		case strings.Contains(cancelErr.Error(), reset.ReasonResetNotCancellable):
			if rec.State == store.ResetCancelled {
				t.Errorf("race %d: the cancel lost but the reset is cancelled", i)
			}
			if rec.State != store.ResetCompleted {
				f.sweep(t, time.Minute) // a sweep that read the index before the start finishes it
			}
		default:
			t.Errorf("race %d: cancel %v, sweep %+v", i, cancelErr, swept)
		}
	}
}

// TestBadActionsRefused: the action events are read as strictly as the reset's.
func TestBadActionsRefused(t *testing.T) {
	f := newFixture(t, "")
	for name, ev := range map[string]string{
		"unknown action":         `{"action":"delete","ticketId":"SUP-1"}`,
		"action not a string":    `{"action":1,"ticketId":"SUP-1"}`,
		"status with agent":      `{"action":"status","ticketId":"SUP-1","agent":"x"}`,
		"cancel without reason":  `{"action":"cancel","ticketId":"SUP-1","agent":"x"}`,
		"cancel, empty reason":   `{"action":"cancel","ticketId":"SUP-1","agent":"x","reason":" "}`,
		"ticket in another case": `{"action":"status","TicketId":"SUP-1"}`,
		"field twice":            `{"action":"status","ticketId":"SUP-1","ticketId":"SUP-2"}`,
		"unknown ticket":         `{"action":"status","ticketId":"SUP-never"}`,
		"cancel unknown ticket":  `{"action":"cancel","ticketId":"SUP-never","agent":"x","reason":"y"}`,
	} {
		rep, err := f.invoke(t, json.RawMessage(ev), time.Minute)
		var e *reset.Error
		if rep != nil || !errors.As(err, &e) || e.Code != apperr.Invalid || !strings.Contains(e.Message, "nothing was changed") {
			t.Errorf("%s: %+v, %v; want an invalid refusal", name, rep, err)
		}
	}
}

// assertUnchanged: o is as seeded (active, version 1, everything there) and holds no
// reset: a new ticket could schedule one.
func (f *fixture) assertUnchanged(t *testing.T, o *org, want store.ResetCounts) {
	t.Helper()
	got, err := f.store.GetOrg(t.Context(), o.ID)
	if err != nil || got.Status != "active" || got.KeyVersion != 1 || string(got.WrappedKey) != string(o.oldBlob) {
		t.Errorf("organization changed: %+v (%v)", got, err)
	}
	if c := f.counts(t, o); c != want {
		t.Errorf("counts %+v, want %+v", c, want)
	}
	if ticket, err := f.store.OrgResetTicket(t.Context(), o.ID); err != nil || ticket != "" {
		t.Errorf("the organization is still held by %q (%v)", ticket, err)
	}
	if n := len(mailsTo(t, o.admin.Email, keyMailSubject)); n != 0 {
		t.Errorf("%d key mails", n)
	}
}
