package reset

import (
	"context"
	"time"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/store"
)

// The kept admin's confirmation: the second of a reset's two phases. Support's
// scheduling mailed the kept admin a link (its token in the URL fragment); the page
// it opens (internal/claimpage, the claim link's page) signs them in and, when they
// press its button, POSTs the token with their access token. Only the kept admin's
// own session confirms, only before the deadline, only once.

// Reasons a confirmation is refused. The person holding the link sees one answer for
// every dead link (410); the reasons go to the audit record and the log line.
const (
	ReasonConfirmMalformed  = "confirm_malformed"
	ReasonConfirmUnknown    = "confirm_unknown"  // never issued, or purged by its TTL
	ReasonConfirmReplaced   = "confirm_replaced" // a newer link was mailed for the reset
	ReasonConfirmUsed       = "confirm_used"     // the reset is no longer pending: confirmed (a replay) or cancelled
	ReasonConfirmExpired    = "confirm_expired"
	ReasonConfirmWrongUser  = "confirm_wrong_user" // a signed-in user other than the kept admin (403)
	ReasonConfirmNoIdentity = "missing_identity"
)

// IsGoneConfirmation reports whether err is a refused confirmation link (410).
func IsGoneConfirmation(err error) bool {
	switch apperr.ReasonOf(err) {
	case ReasonConfirmMalformed, ReasonConfirmUnknown, ReasonConfirmReplaced, ReasonConfirmUsed, ReasonConfirmExpired:
		return true
	}
	return false
}

func goneConfirmation(reason string) error {
	return apperr.New(apperr.NotFound, reason, "this link is no longer valid")
}

// Meta is what the edge knows of a request, for the audit record.
type Meta struct {
	RequestID, SourceIP, UserAgent string
}

// Confirmed is a confirmed reset: its ticket and organization.
type Confirmed struct {
	TicketID, TenantID string
}

// Confirm records the kept admin's confirmation of a scheduled reset by the link's
// token (raw) for the signed-in user sub (the access token's subject, checked by the
// API's JWT authorizer). Every outcome on a known link is audited under its
// organization (org_key.reset.confirmed, with the refusal's code as outcome); a token
// that names no link is logged only, so that no caller can grow the table. The
// confirmation is one conditional transaction: of concurrent ones exactly one wins,
// and a replay is refused.
func (s *Service) Confirm(ctx context.Context, raw, sub string, meta Meta) (res Confirmed, err error) {
	if sub == "" || len(sub) > maxID {
		return Confirmed{}, apperr.New(apperr.Unauthorized, ReasonConfirmNoIdentity, "the request carries no signed-in user")
	}
	token, perr := orgkey.ParseClaim(raw)
	if perr != nil {
		return Confirmed{}, goneConfirmation(ReasonConfirmMalformed)
	}
	hash := token.Hash()
	link, err := s.Store.GetResetConfirmation(ctx, hash)
	if apperr.CodeOf(err) == apperr.NotFound {
		return Confirmed{}, goneConfirmation(ReasonConfirmUnknown)
	}
	if err != nil {
		return Confirmed{}, err
	}
	rec := link.Reset
	res = Confirmed{TicketID: rec.TicketID, TenantID: rec.TenantID}
	now := storedTime(s.Now())
	audit := store.AuditRecord{
		TenantID: rec.TenantID, Action: store.ActionResetConfirmed, ActorID: sub, TargetID: rec.KeepAdminID,
		SourceIP: meta.SourceIP, UserAgent: meta.UserAgent, RequestID: meta.RequestID,
		Detail: map[string]string{"ticketId": rec.TicketID, "agent": rec.Agent},
	}
	refuse := func(err error) (Confirmed, error) {
		audit.Outcome = string(apperr.CodeOf(err))
		audit.Detail["reason"] = apperr.ReasonOf(err)
		if aerr := s.Store.PutAudit(ctx, audit, now); aerr != nil {
			return res, aerr
		}
		return res, err
	}
	switch {
	case sub != rec.KeepAdminID:
		return refuse(apperr.New(apperr.Forbidden, ReasonConfirmWrongUser,
			"this confirmation was sent to another administrator: sign in as the person it was sent to"))
	case !link.Current:
		return refuse(goneConfirmation(ReasonConfirmReplaced))
	case rec.State != store.ResetPending:
		return refuse(goneConfirmation(ReasonConfirmUsed))
	case !now.Before(rec.ConfirmBy):
		return refuse(goneConfirmation(ReasonConfirmExpired))
	}
	audit.Outcome = "ok"
	audit.Detail["runAfter"] = now.Add(s.CoolOff).Format(time.RFC3339)
	switch err := s.Store.ConfirmReset(ctx, rec, hash, sub, now, now.Add(s.CoolOff), audit); apperr.CodeOf(err) {
	case "":
		return res, nil
	case apperr.Conflict: // a concurrent confirmation came first, or the hold lapsed
		return refuse(goneConfirmation(ReasonConfirmUsed))
	default:
		return res, err
	}
}
