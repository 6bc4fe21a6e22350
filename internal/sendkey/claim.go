package sendkey

import (
	"context"
	"strconv"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
)

// Reasons a claim link is refused. They go to the audit record and the log line only:
// the person holding the link sees the same page for all of them.
const (
	ReasonClaimMalformed      = "claim_malformed"
	ReasonClaimUnknown        = "claim_unknown" // never issued, or expired and purged by TTL
	ReasonClaimUsed           = store.ReasonClaimUsed
	ReasonClaimExpired        = "claim_expired"
	ReasonClaimSuperseded     = store.ReasonClaimSuperseded // the key was reset since the link was sent
	ReasonClaimUserGone       = "claim_user_gone"
	ReasonClaimOrgUnavailable = "claim_org_unavailable" // deleted, or being reset
)

func gone(reason string) error {
	return apperr.New(apperr.NotFound, reason, "this link is no longer valid")
}

// IsGone reports whether err is a refused claim link (answered 410).
func IsGone(err error) bool {
	switch apperr.ReasonOf(err) {
	case ReasonClaimMalformed, ReasonClaimUnknown, ReasonClaimUsed, ReasonClaimExpired,
		ReasonClaimSuperseded, ReasonClaimUserGone, ReasonClaimOrgUnavailable:
		return true
	}
	return false
}

// ClaimResult is a spent claim link: the key for the browser, and whose it is.
type ClaimResult struct {
	Key      orgkey.Key
	TenantID string
	UserID   string
	Locale   string // the target user's, for the page
}

// Claim spends a claim link and returns the key it stands for. The link is checked
// (unused, unexpired, same key version, user and organization still there and not
// being reset) and the key unwrapped before the link is spent, so that a KMS outage
// leaves the link usable; the spend itself is one conditional write, so of any number
// of concurrent openings exactly one gets the key. Every outcome is audited: under the
// link's organization when the link names one, under UnknownTenant otherwise.
func (s *Service) Claim(ctx context.Context, raw string, meta Meta) (res ClaimResult, err error) {
	rec := store.AuditRecord{TenantID: UnknownTenant, Action: store.ActionKeyClaimed,
		SourceIP: meta.SourceIP, UserAgent: meta.UserAgent, RequestID: meta.RequestID}
	defer func() { s.audit(ctx, &rec, err) }()

	token, perr := orgkey.ParseClaim(raw)
	if perr != nil {
		return ClaimResult{}, gone(ReasonClaimMalformed)
	}
	hash := token.Hash()
	now := s.Now()
	c, err := s.Store.GetClaim(ctx, hash)
	if apperr.CodeOf(err) == apperr.NotFound {
		return ClaimResult{}, gone(ReasonClaimUnknown)
	}
	if err != nil {
		return ClaimResult{}, err
	}
	rec.TenantID, rec.TargetID = c.TenantID, c.UserID
	rec.Detail = map[string]string{"keyVersion": strconv.Itoa(c.KeyVersion), "sentBy": c.SentBy}
	switch {
	case !c.UsedAt.IsZero():
		return ClaimResult{}, gone(ReasonClaimUsed)
	case !now.Before(c.ExpiresAt):
		return ClaimResult{}, gone(ReasonClaimExpired)
	}
	// The organization and the user in one read; the organization's refusals come
	// first, so that a link of a deleted organization reads as that, not as a user gone.
	user, org, err := s.Store.GetUserAndOrg(ctx, c.TenantID, c.UserID)
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
	}
	key, err := s.Unwrapper.Unwrap(ctx, org.ID, org.KeyVersion, org.WrappedKey)
	if err != nil {
		return ClaimResult{}, err
	}
	switch _, err := s.Store.ConsumeClaim(ctx, hash, org.ID, org.KeyVersion, now); apperr.CodeOf(err) {
	case "":
	case apperr.Conflict:
		if apperr.ReasonOf(err) == store.ReasonClaimSuperseded { // a reset began since the checks above
			return ClaimResult{}, gone(ReasonClaimSuperseded)
		}
		return ClaimResult{}, gone(ReasonClaimUsed) // a concurrent opening spent it first
	case apperr.NotFound:
		return ClaimResult{}, gone(ReasonClaimUnknown)
	default:
		return ClaimResult{}, err
	}
	return ClaimResult{Key: key, TenantID: org.ID, UserID: user.ID, Locale: user.Locale}, nil
}
