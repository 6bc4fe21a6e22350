package sendkey

import (
	"context"
	"strconv"
	"time"

	"github.com/mspvault/orgkey/internal/apperr"
	mailpkg "github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
)

// Reasons a claim link is refused. They go to the audit record and the log line only:
// the person holding the link sees the same answer for all of them.
const (
	ReasonClaimMalformed      = "claim_malformed"
	ReasonClaimUnknown        = "claim_unknown" // never issued, or expired and purged by TTL
	ReasonClaimUsed           = store.ReasonClaimUsed
	ReasonClaimExpired        = "claim_expired"
	ReasonClaimSuperseded     = store.ReasonClaimSuperseded // the key was reset since the link was sent
	ReasonClaimReplaced       = store.ReasonClaimReplaced   // a newer link was sent to the same user
	ReasonClaimRevoked        = store.ReasonClaimRevoked    // too many other users tried to spend it
	ReasonClaimUserGone       = "claim_user_gone"
	ReasonClaimOrgUnavailable = "claim_org_unavailable" // deleted, or being reset
	// ReasonClaimWrongUser refuses a signed-in user who is not the link's addressee
	// (403): the link is left as it was, and the attempt counted.
	ReasonClaimWrongUser = "claim_wrong_user"
)

func gone(reason string) error {
	return apperr.New(apperr.NotFound, reason, "this link is no longer valid")
}

// IsGone reports whether err is a refused claim link (answered 410).
func IsGone(err error) bool {
	switch apperr.ReasonOf(err) {
	case ReasonClaimMalformed, ReasonClaimUnknown, ReasonClaimUsed, ReasonClaimExpired,
		ReasonClaimSuperseded, ReasonClaimReplaced, ReasonClaimRevoked, ReasonClaimUserGone, ReasonClaimOrgUnavailable:
		return true
	}
	return false
}

var errWrongUser = apperr.New(apperr.Forbidden, ReasonClaimWrongUser,
	"this link was sent to another user: sign in as the person it was sent to")

var errNoIdentity = apperr.New(apperr.Unauthorized, "missing_identity", "the request carries no signed-in user")

// UnknownAuditTTL is how long audit records of no known tenant are kept: anyone with
// an account can make them, so they expire.
const UnknownAuditTTL = 30 * 24 * time.Hour

// ClaimResult is a spent claim link: the key for the browser, and whose it is.
type ClaimResult struct {
	Key      orgkey.Key
	TenantID string
	UserID   string
}

// Claim spends a claim link for the signed-in user sub (the access token's subject,
// checked by the API's JWT authorizer). The link is spent only when sub is the link's
// target user, the link is live (unused, unrevoked, unexpired, the user's latest) and
// the organization is active at the link's key version; the key is unwrapped before
// the link is spent, so that a KMS outage leaves it usable, and the spend is one
// conditional transaction, so of any number of concurrent spends exactly one gets the
// key. Another user is refused (forbidden) and counted: the MaxClaimAttempts-th such
// attempt revokes the link and tells the admin who sent it. Every outcome is audited:
// under the link's organization when the link names one, otherwise under
// UnknownTenant with a TTL and at most UnknownClaimLimit records per source IP and
// hour (beyond it: rate_limited, nothing written).
func (s *Service) Claim(ctx context.Context, raw, sub string, meta Meta) (res ClaimResult, err error) {
	if sub == "" || len(sub) > maxID {
		return ClaimResult{}, errNoIdentity
	}
	rec := store.AuditRecord{TenantID: UnknownTenant, Action: store.ActionKeyClaimed, ActorID: sub,
		SourceIP: meta.SourceIP, UserAgent: meta.UserAgent, RequestID: meta.RequestID}
	skipAudit := false
	defer func() {
		if !skipAudit {
			s.audit(ctx, &rec, err)
		}
	}()
	now := s.Now()

	token, perr := orgkey.ParseClaim(raw)
	if perr != nil {
		return ClaimResult{}, s.refuseUnknown(ctx, &rec, &skipAudit, ReasonClaimMalformed, now)
	}
	hash := token.Hash()
	c, err := s.Store.GetClaim(ctx, hash)
	if apperr.CodeOf(err) == apperr.NotFound {
		return ClaimResult{}, s.refuseUnknown(ctx, &rec, &skipAudit, ReasonClaimUnknown, now)
	}
	if err != nil {
		return ClaimResult{}, err
	}
	rec.TenantID, rec.TargetID = c.TenantID, c.UserID
	rec.Detail = map[string]string{"keyVersion": strconv.Itoa(c.KeyVersion), "sentBy": c.SentBy}
	live := c.UsedAt.IsZero() && c.RevokedAt.IsZero() && now.Before(c.ExpiresAt)
	if sub != c.UserID {
		if live {
			s.countWrongUser(ctx, c, &rec, now)
		}
		return ClaimResult{}, errWrongUser
	}
	switch {
	case !c.UsedAt.IsZero():
		return ClaimResult{}, gone(ReasonClaimUsed)
	case !c.RevokedAt.IsZero():
		return ClaimResult{}, gone(ReasonClaimRevoked)
	case !now.Before(c.ExpiresAt):
		return ClaimResult{}, gone(ReasonClaimExpired)
	}
	// The organization, the user and the user's live link in one read; the
	// organization's refusals come first, so that a link of a deleted organization
	// reads as that, not as a user gone.
	user, org, liveHash, err := s.Store.GetClaimParties(ctx, c.TenantID, c.UserID)
	if err != nil && apperr.CodeOf(err) != apperr.NotFound {
		return ClaimResult{}, err
	}
	switch {
	case org.ID == "" || org.Status != tenant.Active:
		return ClaimResult{}, gone(ReasonClaimOrgUnavailable)
	case org.KeyVersion != c.KeyVersion:
		return ClaimResult{}, gone(ReasonClaimSuperseded)
	case user.ID == "":
		return ClaimResult{}, gone(ReasonClaimUserGone)
	case liveHash != "" && liveHash != hash:
		return ClaimResult{}, gone(ReasonClaimReplaced)
	}
	key, err := s.Unwrapper.Unwrap(ctx, org.ID, org.KeyVersion, org.WrappedKey)
	if err != nil {
		return ClaimResult{}, err
	}
	switch _, err := s.Store.SpendClaim(ctx, hash, org.ID, user.ID, org.KeyVersion, now); apperr.CodeOf(err) {
	case "":
	case apperr.Conflict:
		switch r := apperr.ReasonOf(err); r {
		case store.ReasonClaimSuperseded, store.ReasonClaimReplaced, store.ReasonClaimRevoked: // changed since the checks above
			return ClaimResult{}, gone(r)
		}
		return ClaimResult{}, gone(ReasonClaimUsed) // a concurrent spend came first
	case apperr.NotFound:
		return ClaimResult{}, gone(ReasonClaimUnknown)
	default:
		return ClaimResult{}, err
	}
	return ClaimResult{Key: key, TenantID: org.ID, UserID: user.ID}, nil
}

// refuseUnknown answers a token that names no link. Its audit record goes under
// UnknownTenant with a TTL, and at most UnknownClaimLimit of them per source IP and
// hour: beyond that the answer is rate_limited and nothing is written, so that no
// caller can grow the table.
func (s *Service) refuseUnknown(ctx context.Context, rec *store.AuditRecord, skip *bool, reason string, now time.Time) error {
	rec.TTL = now.Add(UnknownAuditTTL).Unix()
	ip := rec.SourceIP
	if ip == "" {
		ip = "unknown"
	}
	ok, err := s.Store.Allow(ctx, FlowClaimUnknown, ip, s.unknownLimit(), time.Hour, now)
	if err != nil {
		return err
	}
	if !ok {
		*skip = true
		return errRateLimited
	}
	return gone(reason)
}

func (s *Service) unknownLimit() int {
	if s.UnknownClaimLimit > 0 {
		return s.UnknownClaimLimit
	}
	return DefaultUnknownClaimLimit
}

// countWrongUser counts a spend tried by a user other than the link's target. The
// attempt that reaches store.MaxClaimAttempts revokes the link and mails the admin
// who sent it; failures here change nothing about the answer (forbidden) and are
// recorded in the audit detail.
func (s *Service) countWrongUser(ctx context.Context, c store.Claim, rec *store.AuditRecord, now time.Time) {
	n, err := s.Store.AddClaimAttempt(ctx, c.Hash)
	if err != nil {
		rec.Detail["attempts"] = "not_counted"
		return
	}
	rec.Detail["attempts"] = strconv.Itoa(n)
	if n < store.MaxClaimAttempts {
		return
	}
	if err := s.Store.RevokeClaim(ctx, c.Hash, now); err != nil {
		return // another attempt revoked it, or the addressee spent it, first
	}
	rec.Detail["revoked"] = "true"
	rec.Detail["adminNotified"] = "false"
	admin, aerr := s.Store.GetUser(ctx, c.TenantID, c.SentBy)
	target, terr := s.Store.GetUser(ctx, c.TenantID, c.UserID)
	if aerr != nil || admin.Email == "" {
		return
	}
	if terr != nil {
		target = tenant.User{ID: c.UserID}
	}
	msg, err := mailpkg.ClaimRevokedMail(admin.Locale, admin.Email, mailpkg.ClaimRevoked{
		AdminName: oneLine(admin.Name), TargetName: oneLine(target.Name), TargetEmail: target.Email,
		Attempts: n, SendURL: s.AppURL + SendPagePath(c.UserID),
	})
	if err == nil && s.Mailer.Send(ctx, msg) == nil {
		rec.Detail["adminNotified"] = "true"
	}
}
