// Package sendkey owns the send-key flow (option 1 of the source article, N-able
// Passportal's "how to recover your Organization Key"; see docs/product.md): an admin has the
// service mail a user a one-time claim link; the link's page (GET, public, changes
// nothing) signs the user in, and its button (POST, the user's own JWT) stores the
// organization key in that user's browser as a cookie. It also owns the counterpart, a
// user asking the admins who may send them the key.
//
// The mail never carries the key, only the link, whose token sits in the URL's fragment.
// The token is 256 random bits of which the table keeps only the hash; it is bound to
// the target user and the key version, expires, is superseded by a newer link to the
// same user, and is spent atomically by that user only, so it works once, for them. The
// key is unwrapped only for such a spend, and leaves the service only in that answer's
// cookie.
package sendkey

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/claimpage"
	"github.com/mspvault/orgkey/internal/lambdamain"
	mailpkg "github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
)

// Config is the send-key function's configuration, read once from the environment.
type Config struct {
	lambdamain.Common
	// ClaimBaseURL is the origin claim links point at (the claim route must be served
	// there, and the cookie lands on it). Empty: the API's own domain, taken from the
	// send request's context.
	ClaimBaseURL  string `env:"CLAIM_BASE_URL"`
	ClaimTTLHours int    `env:"CLAIM_TTL_HOURS" envDefault:"72"`
	// Rate limits, per user and hour.
	SendRateLimit    int `env:"SEND_RATE_LIMIT_PER_HOUR" envDefault:"30"`
	RequestRateLimit int `env:"REQUEST_RATE_LIMIT_PER_HOUR" envDefault:"3"`
	// The claim page signs the link's addressee in against this pool and app client.
	UserPoolID string `env:"USER_POOL_ID,required,notEmpty"`
	ClientID   string `env:"USER_POOL_CLIENT_ID,required,notEmpty"`
	// The Cognito API the page calls: the SDK's own endpoint setting when present,
	// else the region's public endpoint.
	Region          string `env:"AWS_REGION"`
	CognitoEndpoint string `env:"AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"`
}

// PageConfig is the claim page's sign-in configuration.
func (c Config) PageConfig() claimpage.Config {
	return claimpage.Config{UserPoolID: c.UserPoolID, ClientID: c.ClientID,
		CognitoEndpoint: claimpage.Endpoint(c.CognitoEndpoint, c.Region)}
}

// Validate fails fast on values that parse but make no sense, naming the variable.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	switch {
	case c.ClaimBaseURL != "" && !lambdamain.BaseURL(c.ClaimBaseURL):
		return fmt.Errorf("CLAIM_BASE_URL %q: want an absolute http(s) URL without query or fragment", c.ClaimBaseURL)
	case c.ClaimTTLHours < 1 || c.ClaimTTLHours > 24*30:
		return fmt.Errorf("CLAIM_TTL_HOURS %d: want 1..720", c.ClaimTTLHours)
	case c.SendRateLimit < 1:
		return fmt.Errorf("SEND_RATE_LIMIT_PER_HOUR %d: want at least 1", c.SendRateLimit)
	case c.RequestRateLimit < 1:
		return fmt.Errorf("REQUEST_RATE_LIMIT_PER_HOUR %d: want at least 1", c.RequestRateLimit)
	case c.PageConfig().CognitoEndpoint == "":
		return fmt.Errorf("AWS_REGION is empty: the claim page needs the user pool's region")
	}
	return nil
}

// Store is what the flow needs from the table (*store.Store).
type Store interface {
	GetUser(ctx context.Context, tenantID, userID string) (tenant.User, error)
	// GetUserAndOrg returns whichever of the two exists (the other as its zero
	// value) with a not_found error when one is missing.
	GetUserAndOrg(ctx context.Context, tenantID, userID string) (tenant.User, tenant.Org, error)
	FindUserByEmail(ctx context.Context, tenantID, email string) (tenant.User, error)
	Members(ctx context.Context, tenantID string) ([]tenant.User, []tenant.Site, error)
	// PutLiveClaim stores a link as its user's one live link (not_found: no such user).
	PutLiveClaim(ctx context.Context, c store.Claim) error
	GetClaim(ctx context.Context, hash string) (store.Claim, error)
	// GetClaimParties is GetUserAndOrg and the hash of the user's live link.
	GetClaimParties(ctx context.Context, tenantID, userID string) (tenant.User, tenant.Org, string, error)
	SpendClaim(ctx context.Context, hash, tenantID, userID string, keyVersion int, now time.Time) (store.Claim, error)
	AddClaimAttempt(ctx context.Context, hash string) (int, error)
	RevokeClaim(ctx context.Context, hash string, now time.Time) error
	Allow(ctx context.Context, flow, subject string, limit int, window time.Duration, now time.Time) (bool, error)
	PutAudit(ctx context.Context, r store.AuditRecord, now time.Time) error
}

var _ Store = (*store.Store)(nil)

// KeyUnwrapper reads an organization's key (keywrap.Unwrapper).
type KeyUnwrapper interface {
	Unwrap(ctx context.Context, tenantID string, version int, blob []byte) (orgkey.Key, error)
}

// Mailer sends a rendered mail (mail.Sender).
type Mailer interface {
	Send(ctx context.Context, m mailpkg.Message) error
}

// Rate-limit flows (the table's RATE#<flow>#<user> counters).
const (
	FlowSend    = "send-key"
	FlowRequest = "request-key"
	// FlowClaimUnknown counts, per source IP, claims of tokens that name no link.
	FlowClaimUnknown = "claim-unknown"
)

// DefaultUnknownClaimLimit is how many claims of unknown tokens one source IP may make
// per hour (each leaves an expiring audit record).
const DefaultUnknownClaimLimit = 20

// UnknownTenant is the audit partition of claim attempts whose token names no
// organization (malformed, unknown or purged tokens). Tenant ids start with "org_", so
// it names none.
const UnknownTenant = "_unknown"

// SendPagePath is the web app's page, under AppURL, that sends the key to a user
// (it calls POST /org-key/send); request mails link to it.
func SendPagePath(userID string) string {
	return "/users/" + url.PathEscape(userID) + "/send-org-key"
}

// Service runs the flow.
type Service struct {
	Store     Store
	Unwrapper KeyUnwrapper
	Mailer    Mailer

	AppURL       string
	ClaimBaseURL string // "" : the API's own origin, passed in by the edge
	ClaimTTL     time.Duration
	SendLimit    int // per sender and hour
	RequestLimit int // per requester and hour
	// UnknownClaimLimit bounds claims of unknown tokens per source IP and hour;
	// DefaultUnknownClaimLimit when 0.
	UnknownClaimLimit int

	Now    func() time.Time
	Random io.Reader
	Log    *slog.Logger // for audit write failures; slog.Default() when nil
}

// Meta is what audit records keep of the request.
type Meta struct {
	RequestID string
	SourceIP  string
	UserAgent string
	// Origin is the API's own origin (https://<domain>), used for claim links when
	// ClaimBaseURL is not configured.
	Origin string
}

// Target names the user a key is sent to: exactly one of the two.
type Target struct {
	UserID string `json:"userId,omitempty"`
	Email  string `json:"email,omitempty"`
}

const (
	maxID    = 128
	maxEmail = 254
)

func (t Target) validate() error {
	switch {
	case (t.UserID == "") == (t.Email == ""):
		return apperr.New(apperr.Invalid, "userid_or_email_required", "give exactly one of userId and email")
	case t.UserID != "" && (len(t.UserID) > maxID || !tenant.PlainID(t.UserID)):
		return apperr.New(apperr.Invalid, "invalid_user_id", "userId is not a valid user id")
	case t.Email != "" && (len(t.Email) > maxEmail || !tenant.PlainEmail(t.Email)):
		return apperr.New(apperr.Invalid, "invalid_email", "email is not a valid address")
	}
	return nil
}

// SendResult is the outcome of a successful send.
type SendResult struct {
	TargetID  string
	ExpiresAt time.Time
}

// errUserNotFound is the one answer for a target that is missing or in another
// organization: the same value, so the same bytes.
var errUserNotFound = apperr.New(apperr.NotFound, ReasonUserNotFound, "no such user in your organization")

// errRateLimited is the answer beyond a limit.
var errRateLimited = apperr.New(apperr.RateLimited, "rate_limited", "too many requests; try again later")

// Send mails target a one-time claim link for the key of sender's organization.
// sender and org come from httpapi.ResolveCaller (so the organization is not being
// reset). Every outcome past validation is audited.
func (s *Service) Send(ctx context.Context, sender tenant.User, org tenant.Org, t Target, meta Meta) (_ SendResult, err error) {
	if err := t.validate(); err != nil {
		return SendResult{}, err
	}
	rec := store.AuditRecord{TenantID: org.ID, Action: store.ActionKeySent, ActorID: sender.ID,
		SourceIP: meta.SourceIP, UserAgent: meta.UserAgent, RequestID: meta.RequestID}
	defer func() { s.audit(ctx, &rec, err) }()

	if !IsAdmin(sender.Role) {
		return SendResult{}, errCallerNotAdmin
	}
	now := s.Now()
	// Counted before the lookup, so that probing for users is bounded too.
	ok, err := s.Store.Allow(ctx, FlowSend, sender.ID, s.SendLimit, time.Hour, now)
	if err != nil {
		return SendResult{}, err
	}
	if !ok {
		return SendResult{}, errRateLimited
	}
	target, err := s.findTarget(ctx, org.ID, t)
	if err != nil {
		return SendResult{}, err
	}
	rec.TargetID = target.ID
	if err := CheckSend(sender, target); err != nil {
		return SendResult{}, err
	}

	token, err := orgkey.NewClaimToken(s.Random)
	if err != nil {
		return SendResult{}, err
	}
	expires := now.Add(s.ClaimTTL)
	// The new link supersedes the target's earlier unspent ones.
	switch err := s.Store.PutLiveClaim(ctx, store.Claim{
		Hash: token.Hash(), TenantID: org.ID, UserID: target.ID, SentBy: sender.ID,
		KeyVersion: org.KeyVersion, CreatedAt: now, ExpiresAt: expires,
	}); apperr.CodeOf(err) {
	case "":
	case apperr.NotFound: // deleted since the lookup
		return SendResult{}, errUserNotFound
	default:
		return SendResult{}, err
	}
	base := s.ClaimBaseURL
	if base == "" {
		base = meta.Origin
	}
	if base == "" {
		return SendResult{}, apperr.New(apperr.Internal, "", "no base URL for claim links")
	}
	msg, err := mailpkg.SendKeyMail(target.Locale, target.Email, mailpkg.SendKey{
		Name: oneLine(target.Name), SenderName: oneLine(sender.Name), OrgName: oneLine(org.Name),
		ClaimBaseURL: base, Token: token, ExpiresAt: expires,
	}, now)
	if err != nil {
		return SendResult{}, err
	}
	// An unsent link is harmless: nobody holds its token, and it expires.
	if err := s.Mailer.Send(ctx, msg); err != nil {
		return SendResult{}, err
	}
	rec.Detail = map[string]string{"keyVersion": fmt.Sprint(org.KeyVersion), "expiresAt": expires.UTC().Format(time.RFC3339)}
	return SendResult{TargetID: target.ID, ExpiresAt: expires}, nil
}

// findTarget looks the target up inside the organization only; anything else is the
// one not-found answer.
func (s *Service) findTarget(ctx context.Context, tenantID string, t Target) (tenant.User, error) {
	var u tenant.User
	var err error
	if t.UserID != "" {
		u, err = s.Store.GetUser(ctx, tenantID, t.UserID)
	} else {
		u, err = s.Store.FindUserByEmail(ctx, tenantID, t.Email)
	}
	switch {
	case apperr.CodeOf(err) == apperr.NotFound:
		return tenant.User{}, errUserNotFound
	case err != nil:
		return tenant.User{}, err
	case u.TenantID != tenantID: // the store scopes by tenant; this is a second lock
		return tenant.User{}, errUserNotFound
	}
	return u, nil
}

// RequestResult is the outcome of a key request.
type RequestResult struct {
	Notified int // admins mailed
}

// errNoAdmin answers a request that no admin could act on.
var errNoAdmin = apperr.New(apperr.Conflict, "no_admin_available",
	"no administrator of your organization can send you the key; an administrator can show it in Settings, or contact support")

// Request mails every admin who may send the key to requester (org admins for a pro
// user, site admins of a shared site for a site user) a link to the web app's page
// that sends it. An admin asking is treated like anyone else: the other admins who may
// send to them are asked (an admin can also show the key in Settings).
func (s *Service) Request(ctx context.Context, requester tenant.User, org tenant.Org, meta Meta) (_ RequestResult, err error) {
	rec := store.AuditRecord{TenantID: org.ID, Action: store.ActionKeyRequested, ActorID: requester.ID,
		SourceIP: meta.SourceIP, UserAgent: meta.UserAgent, RequestID: meta.RequestID}
	defer func() { s.audit(ctx, &rec, err) }()

	now := s.Now()
	ok, err := s.Store.Allow(ctx, FlowRequest, requester.ID, s.RequestLimit, time.Hour, now)
	if err != nil {
		return RequestResult{}, err
	}
	if !ok {
		return RequestResult{}, errRateLimited
	}
	members, _, err := s.Store.Members(ctx, org.ID)
	if err != nil {
		return RequestResult{}, err
	}
	admins := Senders(members, requester)
	if len(admins) == 0 {
		return RequestResult{}, errNoAdmin
	}
	var res RequestResult
	var errs []error
	for _, a := range admins {
		msg, err := mailpkg.KeyRequestMail(a.Locale, a.Email, mailpkg.KeyRequest{
			AdminName: oneLine(a.Name), RequesterName: oneLine(requester.Name), RequesterEmail: requester.Email,
			OrgName: oneLine(org.Name), SendURL: s.AppURL + SendPagePath(requester.ID),
		})
		if err == nil {
			err = s.Mailer.Send(ctx, msg)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		res.Notified++
	}
	rec.Detail = map[string]string{"notified": fmt.Sprint(res.Notified), "failed": fmt.Sprint(len(errs))}
	// One admin reached is enough for the request to be useful; none is a failure the
	// user may retry.
	if res.Notified == 0 {
		return res, errs[0]
	}
	return res, nil
}

// audit writes the record of one outcome. A failed write does not change the answer:
// it is logged at ERROR, with the outcome, so the log still holds the trail.
func (s *Service) audit(ctx context.Context, rec *store.AuditRecord, err error) {
	rec.Outcome = "ok"
	if err != nil {
		rec.Outcome = string(apperr.CodeOf(err))
		if rec.Detail == nil {
			rec.Detail = map[string]string{}
		}
		rec.Detail["reason"] = reasonOf(err)
	}
	if aerr := s.Store.PutAudit(context.WithoutCancel(ctx), *rec, s.Now()); aerr != nil {
		s.log().LogAttrs(ctx, slog.LevelError, "audit record not written",
			slog.String("flow", "send-key"), slog.String("tenant", rec.TenantID), slog.String("action", rec.Action),
			slog.String("outcome", rec.Outcome), slog.String("actor", rec.ActorID), slog.String("target", rec.TargetID),
			slog.String("request_id", rec.RequestID), slog.String("error", aerr.Error()))
	}
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}

// reasonOf is the error's reason, or its code when it has none.
func reasonOf(err error) string {
	if r := apperr.ReasonOf(err); r != "" {
		return r
	}
	return string(apperr.CodeOf(err))
}

// oneLine makes a display name safe for a subject line and short: control characters
// become spaces, invalid UTF-8 is dropped, at most 100 runes.
func oneLine(s string) string {
	var b strings.Builder
	n := 0
	for _, r := range s {
		if n == 100 {
			break
		}
		if r == utf8.RuneError {
			continue
		}
		if unicode.IsControl(r) {
			r = ' '
		}
		b.WriteRune(r)
		n++
	}
	return strings.TrimSpace(b.String())
}
