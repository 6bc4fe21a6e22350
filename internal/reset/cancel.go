package reset

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
)

// Where a ticket stands, and cancelling it: support's console actions
// ({"action": "status"|"cancel", ...}) and an org admin's POST
// /org-key/claim/reset-cancel. A reset can be cancelled until it starts; the cancel
// and the start are conditional writes on the record's state, so of the two exactly
// one wins.

// StatusCancelled: cancelled before it started; nothing was changed.
const StatusCancelled Status = "cancelled"

// Reasons of the actions' refusals.
const (
	ReasonResetNotFound       = "reset_not_found"
	ReasonResetNotCancellable = store.ReasonResetNotCancellable
	ReasonResetCancelled      = "reset_cancelled"
	ReasonCancelNotAdmin      = "cancel_not_org_admin"
)

// Action is a console event naming a recorded ticket: status, or cancel (with the
// agent and why).
type Action struct {
	Action, TicketID, Agent, Reason string
}

func (a Action) validate() error {
	for _, f := range []struct {
		name, v string
		limit   int
		need    bool
	}{
		{"ticketId", a.TicketID, maxID, true}, {"agent", a.Agent, maxText, a.Action == "cancel"}, {"reason", a.Reason, maxText, a.Action == "cancel"},
	} {
		switch {
		case !f.need:
		case strings.TrimSpace(f.v) == "":
			return apperr.New(apperr.Invalid, "missing_field", fmt.Sprintf("%s must not be empty", f.name))
		case utf8.RuneCountInString(f.v) > f.limit || !tenant.PlainText(f.v):
			return apperr.New(apperr.Invalid, "invalid_field", fmt.Sprintf("%s is too long or has control characters", f.name))
		}
	}
	return nil
}

// Status reports where ticket's reset stands; it changes nothing.
func (s *Service) Status(ctx context.Context, ticket string) (Report, error) {
	began := s.Now()
	rec, err := s.Store.GetReset(ctx, ticket)
	if apperr.CodeOf(err) == apperr.NotFound {
		return Report{}, apperr.New(apperr.Invalid, ReasonResetNotFound, "no reset has this ticketId")
	}
	if err != nil {
		return Report{}, err
	}
	switch rec.State {
	case store.ResetPending:
		r := s.pendingReport(rec, began)
		if !began.Before(rec.ConfirmBy) {
			r.Next = fmt.Sprintf("Expired: the kept admin did not confirm before %s; nothing was changed.", rec.ConfirmBy.Format(time.RFC3339))
		}
		return r, nil
	case store.ResetConfirmed:
		return s.confirmedReport(rec, began), nil
	case store.ResetCancelled:
		return s.cancelledReport(rec, began), nil
	case store.ResetCompleted:
		return s.report(rec, rec.Deleted, StatusCompleted, began), nil
	}
	counts, err := s.Store.ResetProgress(ctx, ticket)
	if err != nil {
		return Report{}, err
	}
	return s.report(rec, counts, StatusInProgress, began), nil
}

func (s *Service) cancelledReport(rec store.ResetRecord, began time.Time) Report {
	at := rec.CancelledAt
	return Report{
		Status: StatusCancelled, TenantID: rec.TenantID, TicketID: rec.TicketID, Agent: rec.Agent,
		KeptAdminEmail: rec.KeepAdminEmail, OldKeyVersion: rec.OldKeyVersion, FinishedAt: &at,
		Duration: "0s", RunDuration: s.Now().Sub(began).Round(time.Millisecond).String(),
		Next: fmt.Sprintf("Cancelled at %s by %s; nothing was changed. A new request needs a new ticket.", at.Format(time.RFC3339), rec.CancelledBy),
	}
}

// Cancel cancels ticket's reset by who ("support:<agent>", or an org admin's user
// id), if it has not started; audited either way under the reset's organization.
func (s *Service) Cancel(ctx context.Context, ticket, who string, audit store.AuditRecord) (Report, error) {
	began := storedTime(s.Now())
	rec, err := s.Store.GetReset(ctx, ticket)
	if apperr.CodeOf(err) == apperr.NotFound {
		return Report{}, apperr.New(apperr.Invalid, ReasonResetNotFound, "no reset has this ticketId")
	}
	if err != nil {
		return Report{}, err
	}
	audit.TenantID, audit.Action, audit.TargetID = rec.TenantID, store.ActionResetCancelled, rec.KeepAdminID
	if audit.Detail == nil {
		audit.Detail = map[string]string{}
	}
	audit.Detail["ticketId"] = rec.TicketID
	audit.Detail["state"] = string(rec.State)
	audit.Outcome = "ok"
	err = s.Store.CancelReset(ctx, rec, who, began, audit)
	if apperr.ReasonOf(err) == store.ReasonResetNotCancellable {
		audit.Outcome = string(apperr.Conflict)
		if aerr := s.Store.PutAudit(ctx, audit, began); aerr != nil {
			return Report{}, aerr
		}
		if rec, err = s.Store.GetReset(ctx, ticket); err != nil {
			return Report{}, err
		}
		return Report{}, apperr.New(apperr.Conflict, ReasonResetNotCancellable, fmt.Sprintf(
			"the reset is %s and can no longer be cancelled (a reset can be cancelled until it starts)", rec.State))
	}
	if err != nil {
		return Report{}, err
	}
	rec.State, rec.CancelledAt, rec.CancelledBy = store.ResetCancelled, began, who
	return s.cancelledReport(rec, began), nil
}

// CancelByAdmin is an org admin's cancel from their signed-in browser: the caller
// (userID, their access token's subject) must be an org admin of the reset's
// organization, the kept admin included. Refusals are audited.
func (s *Service) CancelByAdmin(ctx context.Context, ticket, userID string, meta Meta) (Report, error) {
	rec, err := s.Store.GetReset(ctx, ticket)
	if apperr.CodeOf(err) == apperr.NotFound {
		return Report{}, apperr.New(apperr.NotFound, ReasonResetNotFound, "no reset has this ticketId")
	}
	if err != nil {
		return Report{}, err
	}
	audit := store.AuditRecord{ActorID: userID, SourceIP: meta.SourceIP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
		Detail: map[string]string{"by": "org_admin"}}
	u, err := s.Store.GetUser(ctx, rec.TenantID, userID)
	if err != nil && apperr.CodeOf(err) != apperr.NotFound {
		return Report{}, err
	}
	if u.ID == "" || u.Role != tenant.OrgAdmin {
		audit.TenantID, audit.Action, audit.TargetID, audit.Outcome = rec.TenantID, store.ActionResetCancelled, rec.KeepAdminID, string(apperr.Forbidden)
		audit.Detail["ticketId"] = rec.TicketID
		if aerr := s.Store.PutAudit(ctx, audit, storedTime(s.Now())); aerr != nil {
			return Report{}, aerr
		}
		return Report{}, apperr.New(apperr.Forbidden, ReasonCancelNotAdmin, "only an org admin of the organization can cancel its reset")
	}
	return s.Cancel(ctx, ticket, userID, audit)
}
