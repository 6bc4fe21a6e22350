package activation

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/lambdamain"
	mailpkg "github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/strictjson"
)

// Trigger sources this function handles.
const (
	TriggerConfirmSignUp         = "PostConfirmation_ConfirmSignUp"
	TriggerConfirmForgotPassword = "PostConfirmation_ConfirmForgotPassword"
	TriggerPreSignUp             = "PreSignUp_SignUp"
	TriggerPreSignUpAdmin        = "PreSignUp_AdminCreateUser"
	TriggerPreSignUpExternal     = "PreSignUp_ExternalProvider"
)

// Cognito user attributes the flow reads.
const (
	AttrSub         = "sub"
	AttrEmail       = "email"
	AttrName        = "name"
	AttrCompanyName = "custom:company_name"
	AttrLocale      = "locale"
)

// Handler is the Lambda edge: it takes a Cognito PreSignUp or PostConfirmation event,
// or the EventBridge schedule's event (the catch-up sweep), and turns results into the
// log line and the answer. Errors returned to Cognito are shown to the signing-up
// user, so they say nothing internal.
type Handler struct {
	Service *Service
	Log     *slog.Logger

	entry lambda.Handler // Handle behind the runtime's JSON coding; set by New
}

// New builds the function's handler from its configuration, one aws.Config and the
// logger: the one wiring of the flow, used by functions/activation-email, the
// benchmark and the tests alike. A test changes the clock through the returned
// Service's fields, and puts faults between the flow and AWS through awsCfg's
// middleware.
func New(cfg Config, awsCfg aws.Config, log *slog.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	kmsClient := kms.NewFromConfig(awsCfg)
	svc := &Service{
		Store:        store.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName),
		Wrapper:      &keywrap.Wrapper{KMS: kmsClient, KeyID: cfg.KMSKeyID},
		Unwrapper:    &keywrap.Unwrapper{KMS: kmsClient, KeyID: cfg.KMSKeyID},
		Mailer:       &mailpkg.Sender{SES: sesv2.NewFromConfig(awsCfg), From: cfg.MailFrom},
		AppURL:       cfg.AppURL,
		CatchUpAfter: time.Duration(cfg.CatchUpAfter) * time.Second,
		MailLease:    30 * time.Second,
		Now:          time.Now,
		Random:       rand.Reader,
	}
	h := &Handler{Service: svc, Log: log}
	h.entry = lambda.NewHandler(h.Handle)
	return h, nil
}

// Invoke is the Lambda entry point (lambda.Handler): the event handed to Handle, its
// answer encoded, as lambda.Start does for a function.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return h.entry.Invoke(ctx, payload)
}

// ErrBadEvent is returned for an event this function does not handle.
var ErrBadEvent = errors.New("activation: unsupported event")

// maxEvent bounds an event. A real trigger event is a few kilobytes (Cognito allows
// 2048 characters an attribute); the rest of Lambda's 6 MB is not read.
const maxEvent = 256 << 10

// The top-level fields of the events this function takes: Cognito's trigger events
// and EventBridge's. Both shapes are AWS's, which may add fields, so others are let
// through; a known field spelled in another case is not (strictjson.Object).
var eventFields = []string{
	"version", "triggerSource", "region", "userPoolId", "userName", "callerContext", "request", "response",
	"id", "detail-type", "source", "account", "time", "resources", "detail",
}

// Handle is the Lambda entry point. Every event goes through the strict reading the
// HTTP bodies get (internal/strictjson): one object, valid UTF-8, no field twice at
// any depth in any case variant, names read exactly as spelled.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	if len(raw) > maxEvent {
		h.logEvent(ctx, slog.LevelError, "malformed event", "rejected", slog.String("error", "event too large"), slog.Int("bytes", len(raw)))
		return nil, ErrBadEvent
	}
	top, err := strictjson.Object(raw, eventFields, true)
	if err != nil {
		h.logEvent(ctx, slog.LevelError, "malformed event", "rejected", slog.String("reason", string(strictjson.KindOf(err))), slog.String("error", err.Error()))
		return nil, ErrBadEvent
	}
	trigger, isTrigger := strictjson.String(top["triggerSource"])
	source, _ := strictjson.String(top["source"])
	detailType, _ := strictjson.String(top["detail-type"])
	switch {
	case isTrigger && top["source"] == nil:
		return h.trigger(ctx, raw, top, trigger)
	case top["triggerSource"] == nil && source == "aws.events" && detailType == "Scheduled Event":
		res, err := h.Service.CatchUp(ctx, h.Log)
		level, outcome := slog.LevelInfo, "swept"
		if err != nil || res.Failed > 0 {
			level, outcome = slog.LevelError, "sweep_failed"
		}
		attrs := []slog.Attr{slog.Int("found", res.Found), slog.Int("finished", res.Finished), slog.Int("skipped", res.Skipped),
			slog.Int("failed", res.Failed), slog.Int("refused", res.Refused)}
		if err != nil {
			attrs = append(attrs, slog.String("error", err.Error()))
		}
		h.logEvent(ctx, level, "catch-up sweep", outcome, attrs...)
		if err != nil {
			return nil, fmt.Errorf("catch-up sweep failed")
		}
		return res, nil
	default:
		h.logEvent(ctx, slog.LevelError, "unsupported event", "rejected")
		return nil, ErrBadEvent
	}
}

// userAttributes reads request.userAttributes: an object of strings, by exact name.
func userAttributes(top map[string]json.RawMessage) (map[string]string, bool) {
	req, err := strictjson.Object(top["request"], []string{"userAttributes", "validationData", "clientMetadata"}, true)
	if err != nil {
		return nil, false
	}
	members, err := strictjson.Object(req["userAttributes"], nil, true)
	if err != nil {
		return nil, false
	}
	attrs := make(map[string]string, len(members))
	for k, v := range members {
		s, ok := strictjson.String(v)
		if !ok {
			return nil, false
		}
		attrs[k] = s
	}
	return attrs, true
}

func (h *Handler) trigger(ctx context.Context, raw json.RawMessage, top map[string]json.RawMessage, trigger string) (any, error) {
	switch trigger {
	case TriggerConfirmForgotPassword:
		h.logEvent(ctx, slog.LevelInfo, "password reset confirmation passed through", "ignored")
		return raw, nil
	case TriggerConfirmSignUp, TriggerPreSignUp, TriggerPreSignUpAdmin:
	case TriggerPreSignUpExternal:
		// The pool has no external identity provider; an account from one would
		// bypass every check of a sign-up.
		h.logEvent(ctx, slog.LevelError, "sign-up refused", "rejected", slog.String("trigger", trigger), slog.String("reason", "external_provider"))
		return nil, formMessage("sign_up_refused: Sign-up through an external provider is not offered. / L'inscription par un fournisseur externe n'est pas proposée.")
	default:
		h.logEvent(ctx, slog.LevelError, "unknown trigger source", "rejected", slog.String("trigger", truncate(trigger, 64)))
		return nil, ErrBadEvent
	}
	attrs, ok := userAttributes(top)
	if !ok {
		h.logEvent(ctx, slog.LevelError, "malformed event", "rejected", slog.String("trigger", trigger),
			slog.String("error", "request.userAttributes is not an object of strings"))
		return nil, ErrBadEvent
	}
	req := Request{
		Sub: attrs[AttrSub], Email: attrs[AttrEmail], Name: attrs[AttrName],
		Company: attrs[AttrCompanyName], Locale: attrs[AttrLocale],
	}
	if trigger != TriggerConfirmSignUp {
		// Cognito assigns the sub when it keeps the account: a PreSignUp event
		// carries it only as the user name (a UUID, in a pool whose usernames are
		// email addresses).
		if _, ok := attrs[AttrSub]; !ok {
			req.Sub, _ = strictjson.String(top["userName"])
		}
		return h.preSignUp(ctx, raw, trigger, req)
	}
	out, err := h.Service.Activate(ctx, req)
	base := []slog.Attr{slog.String("trigger", trigger), slog.String("tenant", out.TenantID), slog.String("user", truncate(req.Sub, maxSub)),
		slog.Bool("org_created", out.OrgCreated), slog.Bool("mail_sent", out.MailSent)}
	if err != nil {
		code := apperr.CodeOf(err)
		base = append(base, slog.String("code", string(code)), slog.String("reason", apperr.ReasonOf(err)), slog.String("error", err.Error()))
		if code == apperr.Invalid {
			h.logEvent(ctx, slog.LevelError, "sign-up refused", "rejected", base...)
			return nil, fmt.Errorf("account activation refused: %s", UserMessage(err, req.Locale))
		}
		h.logEvent(ctx, slog.LevelError, "activation failed", "failed", base...)
		return nil, fmt.Errorf("account activation could not complete; it will be retried (request %s)", lambdamain.RequestID(ctx))
	}
	h.logEvent(ctx, slog.LevelInfo, "activation", "ok", base...)
	// Cognito requires the event back, unchanged.
	return raw, nil
}

// formMessage is an error whose text the sign-up form shows as it is: the reason,
// then whole sentences.
type formMessage string

func (m formMessage) Error() string { return string(m) }

// preSignUp answers Cognito's PreSignUp trigger: the event back unchanged (no
// automatic confirmation or verification) when the sign-up may go on, or an error
// whose message the sign-up form shows.
func (h *Handler) preSignUp(ctx context.Context, raw json.RawMessage, trigger string, req Request) (any, error) {
	kind := selfSignUp
	if trigger == TriggerPreSignUpAdmin {
		kind = invitation
	}
	err := h.Service.CheckSignUp(ctx, req, kind)
	base := []slog.Attr{slog.String("trigger", trigger), slog.String("user", truncate(req.Sub, maxSub))}
	if err != nil {
		code := apperr.CodeOf(err)
		base = append(base, slog.String("code", string(code)), slog.String("reason", apperr.ReasonOf(err)), slog.String("error", err.Error()))
		if code == apperr.Invalid {
			h.logEvent(ctx, slog.LevelWarn, "sign-up refused", "rejected", base...)
			return nil, formMessage(UserMessage(err, req.Locale))
		}
		h.logEvent(ctx, slog.LevelError, "sign-up check failed", "failed", base...)
		return nil, formMessage(fmt.Sprintf("sign_up_unavailable: The sign-up could not be checked; try again in a moment (request %s). / L'inscription n'a pas pu être vérifiée ; réessayez dans un instant.", lambdamain.RequestID(ctx)))
	}
	h.logEvent(ctx, slog.LevelInfo, "sign-up accepted", "ok", base...)
	return raw, nil
}

// logEvent writes the one line an event gets, with the stable keys.
func (h *Handler) logEvent(ctx context.Context, level slog.Level, msg, outcome string, attrs ...slog.Attr) {
	lambdamain.LogEvent(ctx, h.Log, level, "activation", msg, outcome, attrs...)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}
