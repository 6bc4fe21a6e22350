// Package revealkey owns the reveal-key flow (option 3 of the source article, N-able
// Passportal's "how to recover your Organization Key", see docs/product.md: Settings >
// General > Advanced options > "Show organization key"): an org admin or site admin
// who can still sign in sees the key in clear. Because that is the most direct way to
// read a key, it asks for a recent sign-in (step-up), is rate-limited per user, is
// audited, and tells the organization's other org admins.
package revealkey

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/httpapi"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
)

// Config is the reveal-key function's configuration, read once from the environment.
type Config struct {
	lambdamain.Common
	StepUpSeconds int `env:"STEP_UP_MAX_AGE_SECONDS" envDefault:"300"`
	RatePerHour   int `env:"REVEAL_RATE_LIMIT_PER_HOUR" envDefault:"10"`
}

// Validate fails fast on values that parse but make no sense, naming the variable.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	switch {
	case c.StepUpSeconds < 1:
		return fmt.Errorf("STEP_UP_MAX_AGE_SECONDS %d: want at least 1", c.StepUpSeconds)
	case c.RatePerHour < 1:
		return fmt.Errorf("REVEAL_RATE_LIMIT_PER_HOUR %d: want at least 1", c.RatePerHour)
	}
	return nil
}

// Store is what the flow needs from the table.
type Store interface {
	httpapi.Directory
	Members(ctx context.Context, tenantID string) ([]tenant.User, []tenant.Site, error)
	Allow(ctx context.Context, flow, subject string, limit int, window time.Duration, now time.Time) (bool, error)
	PutAudit(ctx context.Context, r store.AuditRecord, now time.Time) error
}

// KeyUnwrapper reads the organization's key.
type KeyUnwrapper interface {
	Unwrap(ctx context.Context, tenantID string, version int, blob []byte) (orgkey.Key, error)
}

// Mailer sends the notices.
type Mailer interface {
	Send(ctx context.Context, m mail.Message) error
}

// Service runs the flow.
type Service struct {
	Store       Store
	Unwrapper   KeyUnwrapper
	Mailer      Mailer
	AppURL      string
	StepUp      time.Duration // how recent the sign-in must be
	RatePerHour int
	Now         func() time.Time
}

// clockSkew tolerates an auth_time slightly ahead of our clock.
const clockSkew = time.Minute

// Viewer is who asks, and from where (for the audit record and the notice).
type Viewer struct {
	Caller    httpapi.Caller
	AuthTime  time.Time // zero when the token has none
	SourceIP  string
	UserAgent string
	RequestID string
}

// Revealed is the answer to a successful reveal.
type Revealed struct {
	Key     orgkey.Key
	Version int
}

// Reveal checks the viewer's rights, the step-up and the rate, then decrypts the
// key, records the audit entry and notifies the other org admins. It fails closed: if
// the audit record or the notices cannot be written, the key is not shown.
func (s *Service) Reveal(ctx context.Context, v Viewer) (Revealed, error) {
	u, org := v.Caller.User, v.Caller.Org
	if u.Role != tenant.OrgAdmin && u.Role != tenant.SiteAdmin {
		return Revealed{}, apperr.New(apperr.Forbidden, "caller_not_admin", "only org admins and site admins can show the organization key")
	}
	now := s.Now()
	if v.AuthTime.IsZero() || now.Sub(v.AuthTime) > s.StepUp || v.AuthTime.Sub(now) > clockSkew {
		return Revealed{}, apperr.New(apperr.Unauthorized, "reauthentication_required", "sign in again to show the organization key")
	}
	ok, err := s.Store.Allow(ctx, "reveal", u.ID, s.RatePerHour, time.Hour, now)
	if err != nil {
		return Revealed{}, err
	}
	if !ok {
		return Revealed{}, apperr.New(apperr.RateLimited, "rate_limited", "too many requests to show the organization key; try again later")
	}
	key, err := s.Unwrapper.Unwrap(ctx, org.ID, org.KeyVersion, org.WrappedKey)
	if err != nil {
		return Revealed{}, err
	}
	if err := s.notify(ctx, v, now); err != nil {
		s.audit(ctx, v, "notify_failed", now)
		return Revealed{}, err
	}
	if err := s.audit(ctx, v, "shown", now); err != nil {
		return Revealed{}, err
	}
	return Revealed{Key: key, Version: org.KeyVersion}, nil
}

func (s *Service) audit(ctx context.Context, v Viewer, outcome string, now time.Time) error {
	return s.Store.PutAudit(context.WithoutCancel(ctx), store.AuditRecord{
		TenantID: v.Caller.Org.ID, Action: store.ActionKeyRevealed, Outcome: outcome,
		ActorID: v.Caller.User.ID, SourceIP: v.SourceIP, UserAgent: v.UserAgent, RequestID: v.RequestID,
		Detail: map[string]string{"keyVersion": strconv.Itoa(v.Caller.Org.KeyVersion), "role": string(v.Caller.User.Role)},
	}, now)
}

// notify mails every other org admin of the organization.
func (s *Service) notify(ctx context.Context, v Viewer, now time.Time) error {
	users, _, err := s.Store.Members(ctx, v.Caller.Org.ID)
	if err != nil {
		return err
	}
	var errs []error
	for _, admin := range users {
		if admin.Role != tenant.OrgAdmin || admin.ID == v.Caller.User.ID {
			continue
		}
		msg, err := mail.RevealNoticeMail(admin.Locale, admin.Email, mail.RevealNotice{
			RecipientName: admin.Name, ViewerName: v.Caller.User.Name, ViewerEmail: v.Caller.User.Email,
			Company: v.Caller.Org.Name, At: now, SourceIP: v.SourceIP, AppURL: s.AppURL,
		})
		if err != nil {
			return err
		}
		if err := s.Mailer.Send(ctx, msg); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Handler is the Lambda edge for POST /org-key/reveal.
type Handler struct {
	Service *Service
	Log     *slog.Logger

	entry lambda.Handler // Handle behind the runtime's JSON coding; set by New
}

// New builds the function's handler from its configuration, one aws.Config and the
// logger: the one wiring of the flow, used by functions/reveal-key, the benchmark and
// the tests alike. A test changes the clock or the limit through the returned
// Service's fields, and puts faults between the flow and AWS through awsCfg's
// middleware.
func New(cfg Config, awsCfg aws.Config, log *slog.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	svc := &Service{
		Store:       store.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName),
		Unwrapper:   &keywrap.Unwrapper{KMS: kms.NewFromConfig(awsCfg), KeyID: cfg.KMSKeyID},
		Mailer:      &mail.Sender{SES: sesv2.NewFromConfig(awsCfg), From: cfg.MailFrom},
		AppURL:      cfg.AppURL,
		StepUp:      time.Duration(cfg.StepUpSeconds) * time.Second,
		RatePerHour: cfg.RatePerHour,
		Now:         time.Now,
	}
	h := &Handler{Service: svc, Log: log}
	h.entry = lambda.NewHandler(h.Handle)
	return h, nil
}

// Invoke is the Lambda entry point (lambda.Handler): the event decoded into Handle's
// request, its answer encoded, as lambda.Start does for a function.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return h.entry.Invoke(ctx, payload)
}

// request is the optional body: the endpoint takes no parameters.
type request struct{}

// response is the 200 body. It is the one place the key leaves the service in clear
// over HTTP.
type response struct {
	OrgKey     string `json:"orgKey"`
	KeyVersion int    `json:"keyVersion"`
}

// Handle serves one request.
func (h *Handler) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error) {
	res, caller, err := h.reveal(ctx, req)
	var resp events.APIGatewayV2HTTPResponse
	attrs := []slog.Attr{slog.String("tenant", caller.Org.ID), slog.String("user", caller.User.ID)}
	if err != nil {
		resp = httpapi.Error(err)
	} else {
		resp = httpapi.JSON(http.StatusOK, response{OrgKey: res.Key.Reveal(), KeyVersion: res.Version})
		attrs = append(attrs, slog.Int("key_version", res.Version))
	}
	resp.Headers["Pragma"] = "no-cache"
	httpapi.LogRequest(ctx, h.Log, "reveal-key", req, resp.StatusCode, err, attrs...)
	return resp, nil
}

func (h *Handler) reveal(ctx context.Context, req events.APIGatewayV2HTTPRequest) (Revealed, httpapi.Caller, error) {
	if req.Body != "" {
		var body request
		if err := httpapi.Decode(req, &body); err != nil {
			return Revealed{}, httpapi.Caller{}, err
		}
	}
	caller, err := httpapi.ResolveCaller(ctx, h.Service.Store, req)
	if err != nil {
		return Revealed{}, httpapi.Caller{}, err
	}
	authTime, _ := httpapi.AuthTime(req)
	res, err := h.Service.Reveal(ctx, Viewer{
		Caller: caller, AuthTime: authTime,
		SourceIP: httpapi.SourceIP(req), UserAgent: httpapi.UserAgent(req), RequestID: req.RequestContext.RequestID,
	})
	return res, caller, err
}
