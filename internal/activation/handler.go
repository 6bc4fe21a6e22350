package activation

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-lambda-go/events"
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
)

// Trigger sources this function handles.
const (
	TriggerConfirmSignUp         = "PostConfirmation_ConfirmSignUp"
	TriggerConfirmForgotPassword = "PostConfirmation_ConfirmForgotPassword"
)

// Cognito user attributes the flow reads.
const (
	AttrSub         = "sub"
	AttrEmail       = "email"
	AttrName        = "name"
	AttrCompanyName = "custom:company_name"
	AttrLocale      = "locale"
)

// Handler is the Lambda edge: it takes either a Cognito PostConfirmation event or the
// EventBridge schedule's event (the catch-up sweep), and turns results into the log
// line and the answer. Errors returned to Cognito are shown to the signing-up user, so
// they say nothing internal.
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

// envelope is just enough of an event to tell the two kinds apart.
type envelope struct {
	TriggerSource string `json:"triggerSource"`
	Source        string `json:"source"`
	DetailType    string `json:"detail-type"`
}

// ErrBadEvent is returned for an event this function does not handle.
var ErrBadEvent = errors.New("activation: unsupported event")

// Handle handles one event.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (any, error) {
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		h.logEvent(ctx, slog.LevelError, "malformed event", "rejected", slog.String("error", "event is not a JSON object"))
		return nil, ErrBadEvent
	}
	switch {
	case env.TriggerSource != "":
		return h.postConfirmation(ctx, raw, env.TriggerSource)
	case env.Source == "aws.events" && env.DetailType == "Scheduled Event":
		res, err := h.Service.CatchUp(ctx, h.Log)
		level, outcome := slog.LevelInfo, "swept"
		if err != nil || res.Failed > 0 {
			level, outcome = slog.LevelError, "sweep_failed"
		}
		attrs := []slog.Attr{slog.Int("found", res.Found), slog.Int("finished", res.Finished), slog.Int("skipped", res.Skipped), slog.Int("failed", res.Failed)}
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

func (h *Handler) postConfirmation(ctx context.Context, raw json.RawMessage, trigger string) (any, error) {
	switch trigger {
	case TriggerConfirmForgotPassword:
		h.logEvent(ctx, slog.LevelInfo, "password reset confirmation passed through", "ignored")
		return raw, nil
	case TriggerConfirmSignUp:
	default:
		h.logEvent(ctx, slog.LevelError, "unknown trigger source", "rejected", slog.String("trigger", truncate(trigger, 64)))
		return nil, ErrBadEvent
	}
	var ev events.CognitoEventUserPoolsPostConfirmation
	if err := json.Unmarshal(raw, &ev); err != nil {
		h.logEvent(ctx, slog.LevelError, "malformed event", "rejected", slog.String("error", "event does not match the PostConfirmation shape"))
		return nil, ErrBadEvent
	}
	attrs := ev.Request.UserAttributes
	req := Request{
		Sub: attrs[AttrSub], Email: attrs[AttrEmail], Name: attrs[AttrName],
		Company: attrs[AttrCompanyName], Locale: attrs[AttrLocale],
	}
	out, err := h.Service.Activate(ctx, req)
	base := []slog.Attr{slog.String("tenant", out.TenantID), slog.String("user", truncate(req.Sub, maxSub)),
		slog.Bool("org_created", out.OrgCreated), slog.Bool("mail_sent", out.MailSent)}
	if err != nil {
		code := apperr.CodeOf(err)
		base = append(base, slog.String("code", string(code)), slog.String("reason", apperr.ReasonOf(err)), slog.String("error", err.Error()))
		if code == apperr.Invalid {
			h.logEvent(ctx, slog.LevelError, "sign-up refused", "rejected", base...)
			return nil, fmt.Errorf("account activation refused: %s", apperr.As(err).Message)
		}
		h.logEvent(ctx, slog.LevelError, "activation failed", "failed", base...)
		return nil, fmt.Errorf("account activation could not complete; it will be retried (request %s)", lambdamain.RequestID(ctx))
	}
	h.logEvent(ctx, slog.LevelInfo, "activation", "ok", base...)
	// Cognito requires the event back, unchanged.
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
