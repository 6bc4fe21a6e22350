package reset

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/claimpage"
	"github.com/mspvault/orgkey/internal/httpapi"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/lambdamain"
	mailpkg "github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/strictjson"
)

// Handler is the Lambda edge: support invokes it from the console ("Test") or with
// `aws lambda invoke`. It decodes the event strictly, runs the reset, logs one line
// and answers the report, or an error whose message says what to fix and never
// carries internal detail.
type Handler struct {
	Service *Service
	Log     *slog.Logger
	// Page configures the confirmation page's sign-in (user pool, app client, Cognito).
	Page claimpage.Config

	entry lambda.Handler // Handle behind the runtime's JSON coding; set by New
}

// New builds the function's handler from its configuration, one aws.Config and the
// logger: the one wiring of the flow, used by functions/support-reset, the benchmark
// and the tests alike. It builds a key wrapper only: this function never reads a key.
// A test changes the clock, the budget or the lanes through the returned Service's
// fields, and puts faults between the flow and AWS through awsCfg's middleware.
func New(cfg Config, awsCfg aws.Config, log *slog.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	svc := &Service{
		Store:        store.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName),
		Wrapper:      &keywrap.Wrapper{KMS: kms.NewFromConfig(awsCfg), KeyID: cfg.KMSKeyID},
		Mailer:       &mailpkg.Sender{SES: sesv2.NewFromConfig(awsCfg), From: cfg.MailFrom},
		AppURL:       cfg.AppURL,
		SafetyMargin: time.Duration(cfg.SafetyMarginSeconds) * time.Second,
		Budget:       14 * time.Minute,
		Workers:      cfg.DeleteWorkers,
		ConfirmTTL:   time.Duration(cfg.ConfirmTTLHours) * time.Hour,
		CoolOff:      time.Duration(cfg.CoolOffHours) * time.Hour,
		// The confirmation links point at the claim links' origin (the web app's,
		// forwarding /org-key/claim*); without one, at the web app.
		ConfirmBaseURL: strings.TrimRight(cfg.ClaimBaseURL, "/"),
		Now:            time.Now,
		Random:         rand.Reader,
	}
	if cfg.UserPoolID != "" {
		svc.Accounts = &CognitoAccounts{Cognito: cognitoidentityprovider.NewFromConfig(awsCfg), PoolID: cfg.UserPoolID}
	}
	if svc.ConfirmBaseURL == "" {
		svc.ConfirmBaseURL = strings.TrimRight(cfg.AppURL, "/")
	}
	h := &Handler{Service: svc, Log: log, Page: cfg.PageConfig()}
	h.entry = lambda.NewHandler(h.Dispatch)
	return h, nil
}

// Invoke is the Lambda entry point (lambda.Handler): the event handed to Handle, its
// report encoded, as lambda.Start does for a function. A refusal's *Error comes back
// unchanged, for the runtime to name its type.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return h.entry.Invoke(ctx, payload)
}

// Error is what the console shows for a refused or failed invocation: Lambda prints
// its message as errorMessage and its type name (Error) as errorType.
type Error struct {
	Code    apperr.Code `json:"code"`
	Reason  string      `json:"reason,omitempty"`
	Message string      `json:"message"`
}

func (e *Error) Error() string {
	if e.Reason != "" {
		return fmt.Sprintf("%s (%s): %s", e.Code, e.Reason, e.Message)
	}
	return fmt.Sprintf("%s: %s", e.Code, e.Message)
}

// The top-level fields that make an event an HTTP API request (payload 2.0) rather
// than a console event.
var httpFields = []string{"version", "routeKey", "rawPath", "rawQueryString", "cookies", "headers",
	"queryStringParameters", "requestContext", "body", "pathParameters", "isBase64Encoded", "stageVariables"}

// Dispatch is the function's entry: an HTTP API request (the confirmation page and
// its POST) goes to HandleHTTP, anything else is a console event for Handle.
func (h *Handler) Dispatch(ctx context.Context, raw json.RawMessage) (any, error) {
	if len(raw) <= maxHTTPEvent && strictjson.Check(raw) == nil {
		if top, err := strictjson.Object(raw, scheduleFields, true); err == nil && top["tenantId"] == nil {
			source, _ := strictjson.String(top["source"])
			detailType, _ := strictjson.String(top["detail-type"])
			if source == "aws.events" && detailType == "Scheduled Event" {
				return h.HandleSweep(ctx)
			}
		}
		if top, err := strictjson.Object(raw, httpFields, true); err == nil && top["routeKey"] != nil && top["requestContext"] != nil {
			var req httpapi.Request
			if err := json.Unmarshal(raw, &req); err != nil {
				return nil, &Error{Code: apperr.Invalid, Reason: "invalid_input", Message: "the HTTP event is malformed"}
			}
			return h.HandleHTTP(ctx, req)
		}
	}
	rep, err := h.Handle(ctx, raw)
	if err != nil {
		return nil, err
	}
	return rep, nil
}

// scheduleFields are the top-level fields of EventBridge's Scheduled Event.
var scheduleFields = []string{"version", "id", "detail-type", "source", "account", "time", "region", "resources", "detail"}

// HandleSweep runs one sweep of the due resets (the schedule's event) and logs it.
func (h *Handler) HandleSweep(ctx context.Context) (*SweepResult, error) {
	res, err := h.Service.Sweep(ctx)
	level, outcome := slog.LevelInfo, "swept"
	attrs := []slog.Attr{slog.Int("due", res.Due), slog.Int("completed", res.Completed), slog.Int("in_progress", res.InProgress),
		slog.Int("busy", res.Busy), slog.Int("failed", res.Failed), slog.Int("skipped", res.Skipped)}
	if err != nil {
		level, outcome = slog.LevelError, "sweep_failed"
		attrs = append(attrs, slog.String("error", err.Error()))
	}
	lambdamain.LogEvent(ctx, h.Log, level, "support-reset", "due resets sweep", outcome, attrs...)
	if err != nil {
		return nil, fmt.Errorf("the due resets sweep stopped on an error (request %s); the next one retries", lambdamain.RequestID(ctx))
	}
	return &res, nil
}

// maxHTTPEvent bounds an HTTP API event (API Gateway's payloads are at most 10 MB;
// this API's bodies are at most httpapi.MaxBody).
const maxHTTPEvent = 256 << 10

// Handle runs one console invocation: a reset's event, or an action on a ticket.
func (h *Handler) Handle(ctx context.Context, raw json.RawMessage) (*Report, error) {
	if act, ok, err := DecodeAction(raw); ok {
		return h.action(ctx, act, err)
	}
	req, err := DecodeRequest(raw)
	if err != nil {
		e := apperr.As(err)
		h.logEvent(ctx, slog.LevelError, "reset refused", "rejected", req,
			slog.String("code", string(e.Code)), slog.String("reason", e.Reason), slog.String("error", e.Message))
		return nil, &Error{Code: e.Code, Reason: e.Reason, Message: e.Message + "; nothing was changed"}
	}
	rep, err := h.Service.Reset(ctx, req)
	if err != nil {
		code, reason := apperr.CodeOf(err), apperr.ReasonOf(err)
		attrs := []slog.Attr{slog.String("code", string(code)), slog.String("reason", reason), slog.String("error", err.Error())}
		switch code {
		case apperr.Invalid, apperr.Conflict:
			h.logEvent(ctx, slog.LevelError, "reset refused", "rejected", req, attrs...)
			return nil, &Error{Code: code, Reason: reason, Message: apperr.As(err).Message + "; nothing was changed"}
		}
		h.logEvent(ctx, slog.LevelError, "reset failed", "failed", req, attrs...)
		return nil, &Error{Code: code, Message: fmt.Sprintf(
			"the reset stopped on an internal error (request %s); what it did is saved: invoke again with the same event to resume", lambdamain.RequestID(ctx))}
	}
	attrs := []slog.Attr{
		slog.String("status", string(rep.Status)), slog.Int("old_key_version", rep.OldKeyVersion),
		slog.Int("new_key_version", rep.NewKeyVersion), slog.Bool("mail_sent", rep.MailSent),
		slog.Int("runs", rep.Runs), slog.String("duration", rep.Duration), slog.String("run_duration", rep.RunDuration),
	}
	if d := rep.Deleted; d != nil {
		attrs = append(attrs, slog.Group("deleted", slog.Int("passwords", d.Passwords), slog.Int("users", d.Users),
			slog.Int("accounts", d.Accounts), slog.Int("sites", d.Sites), slog.Int("claim_links", d.ClaimLinks)))
	}
	if d := rep.WouldDelete; d != nil {
		attrs = append(attrs, slog.Group("would_delete", slog.Int("passwords", d.Passwords), slog.Int("users", d.Users),
			slog.Int("sites", d.Sites), slog.Int("claim_links", d.ClaimLinks)))
	}
	h.logEvent(ctx, slog.LevelInfo, "support reset", string(rep.Status), req, attrs...)
	return &rep, nil
}

// logEvent writes the one line an invocation gets, with the stable keys and the
// request's ids.
func (h *Handler) logEvent(ctx context.Context, level slog.Level, msg, outcome string, req Request, attrs ...slog.Attr) {
	all := append([]slog.Attr{
		slog.String("tenant", truncate(req.TenantID, maxID)), slog.String("ticket", truncate(req.TicketID, maxID)),
		slog.String("agent", truncate(req.Agent, maxText)), slog.Bool("dry_run", req.DryRun),
	}, attrs...)
	lambdamain.LogEvent(ctx, h.Log, level, "support-reset", msg, outcome, all...)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// The event's fields, exactly as they must be spelled.
var (
	requestFields      = []string{"tenantId", "ticketId", "agent", "verification", "confirmOrganizationName", "keepAdminEmail", "dryRun"}
	verificationFields = []string{"method", "reference"}
)

// maxEvent bounds the event; a real one is a few hundred bytes.
const maxEvent = 16 << 10

// DecodeRequest reads the console event strictly: one JSON object with exactly the
// documented fields, spelled exactly (encoding/json would match "TenantID" too), none
// missing, none unknown, none twice, strings as strings and dryRun as a boolean.
// Whatever it refuses, it says which field and why.
func DecodeRequest(raw []byte) (Request, error) {
	var req Request
	if len(raw) > maxEvent {
		return req, invalidInput("the event is larger than %d bytes", maxEvent)
	}
	// The strict reading every entry point shares (internal/strictjson): one
	// object, valid UTF-8, no field twice at any depth in any case variant.
	// strictObject then holds the names to their exact spelling.
	switch err := strictjson.Check(raw); strictjson.KindOf(err) {
	case "":
	case strictjson.InvalidUTF8:
		return req, invalidInput("the event is not valid UTF-8")
	case strictjson.Duplicate:
		return req, invalidInput("the event has the field %q twice", err.(*strictjson.Error).Field)
	default:
		return req, invalidInput("the event must be a JSON object with the fields %s", strings.Join(requestFields, ", "))
	}
	top, err := strictObject(raw, "the event", requestFields)
	if err != nil {
		return req, err
	}
	for _, f := range []struct {
		name string
		dst  *string
	}{
		{"tenantId", &req.TenantID}, {"ticketId", &req.TicketID}, {"agent", &req.Agent},
		{"confirmOrganizationName", &req.ConfirmOrganizationName}, {"keepAdminEmail", &req.KeepAdminEmail},
	} {
		if err := decodeString(top[f.name], f.name, f.dst); err != nil {
			return req, err
		}
	}
	if err := decodeBool(top["dryRun"], "dryRun", &req.DryRun); err != nil {
		return req, err
	}
	ver, err := strictObject(top["verification"], `field "verification"`, verificationFields)
	if err != nil {
		return req, err
	}
	if err := decodeString(ver["method"], "verification.method", &req.VerificationMethod); err != nil {
		return req, err
	}
	if err := decodeString(ver["reference"], "verification.reference", &req.VerificationReference); err != nil {
		return req, err
	}
	return req, nil
}

// The action events' fields.
var actionFields = map[string][]string{
	"status": {"action", "ticketId"},
	"cancel": {"action", "ticketId", "agent", "reason"},
}

// DecodeAction reads an action event ({"action": "status"|"cancel", ...}), as
// strictly as DecodeRequest reads a reset's; ok is false when the event is not one
// (it has no "action").
func DecodeAction(raw []byte) (a Action, ok bool, err error) {
	if len(raw) > maxEvent || strictjson.Check(raw) != nil {
		return a, false, nil
	}
	top, err := strictjson.Object(raw, []string{"action"}, true)
	if err != nil || top["action"] == nil {
		return a, false, nil
	}
	if err := decodeString(top["action"], "action", &a.Action); err != nil {
		return a, true, err
	}
	want, known := actionFields[a.Action]
	if !known {
		return a, true, invalidInput("field \"action\" must be status or cancel")
	}
	members, err := strictObject(raw, "the "+a.Action+" event", want)
	if err != nil {
		return a, true, err
	}
	for name, dst := range map[string]*string{"ticketId": &a.TicketID, "agent": &a.Agent, "reason": &a.Reason} {
		if v, ok := members[name]; ok {
			if err := decodeString(v, name, dst); err != nil {
				return a, true, err
			}
		}
	}
	return a, true, nil
}

// action runs a status or cancel event.
func (h *Handler) action(ctx context.Context, act Action, err error) (*Report, error) {
	logReq := Request{TicketID: act.TicketID, Agent: act.Agent}
	if err == nil {
		err = act.validate()
	}
	var rep Report
	if err == nil {
		switch act.Action {
		case "status":
			rep, err = h.Service.Status(ctx, act.TicketID)
		case "cancel":
			rep, err = h.Service.Cancel(ctx, act.TicketID, "support:"+strings.TrimSpace(act.Agent), store.AuditRecord{
				ActorID: strings.TrimSpace(act.Agent), RequestID: lambdamain.RequestID(ctx),
				Detail: map[string]string{"by": "support", "reason": strings.TrimSpace(act.Reason)},
			})
		}
	}
	if err != nil {
		code, reason := apperr.CodeOf(err), apperr.ReasonOf(err)
		attrs := []slog.Attr{slog.String("action", act.Action), slog.String("code", string(code)), slog.String("reason", reason), slog.String("error", err.Error())}
		if code == apperr.Invalid || code == apperr.Conflict {
			h.logEvent(ctx, slog.LevelError, "reset action refused", "rejected", logReq, attrs...)
			return nil, &Error{Code: code, Reason: reason, Message: apperr.As(err).Message + "; nothing was changed"}
		}
		h.logEvent(ctx, slog.LevelError, "reset action failed", "failed", logReq, attrs...)
		return nil, &Error{Code: code, Message: fmt.Sprintf("the %s stopped on an internal error (request %s); invoke again", act.Action, lambdamain.RequestID(ctx))}
	}
	h.logEvent(ctx, slog.LevelInfo, "reset "+act.Action, string(rep.Status), logReq, slog.String("action", act.Action))
	return &rep, nil
}

func invalidInput(format string, args ...any) error {
	return apperr.New(apperr.Invalid, "invalid_input", fmt.Sprintf(format, args...))
}

// strictObject splits a JSON object into its members, refusing anything but an object
// with exactly the wanted keys, each once.
func strictObject(raw []byte, what string, want []string) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	tok, err := dec.Token()
	if err != nil || tok != json.Delim('{') {
		return nil, invalidInput("%s must be a JSON object with the fields %s", what, strings.Join(want, ", "))
	}
	out := make(map[string]json.RawMessage, len(want))
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, invalidInput("%s is not valid JSON", what)
		}
		name, _ := tok.(string)
		if !slices.Contains(want, name) {
			hint := ""
			for _, w := range want {
				if strings.EqualFold(w, name) {
					hint = fmt.Sprintf(" (did you mean %q? names are case-sensitive)", w)
				}
			}
			return nil, invalidInput("%s has an unknown field %q%s", what, truncate(name, 64), hint)
		}
		if _, dup := out[name]; dup {
			return nil, invalidInput("%s has the field %q twice", what, name)
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, invalidInput("%s is not valid JSON", what)
		}
		out[name] = v
	}
	if _, err := dec.Token(); err != nil {
		return nil, invalidInput("%s is not valid JSON", what)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, invalidInput("%s has data after its closing brace", what)
	}
	for _, w := range want {
		if _, ok := out[w]; !ok {
			return nil, invalidInput("%s lacks the required field %q", what, w)
		}
	}
	return out, nil
}

func decodeString(raw json.RawMessage, name string, dst *string) error {
	if len(raw) == 0 || raw[0] != '"' {
		return invalidInput("field %q must be a string", name)
	}
	if err := json.Unmarshal(raw, dst); err != nil {
		return invalidInput("field %q must be a string", name)
	}
	return nil
}

func decodeBool(raw json.RawMessage, name string, dst *bool) error {
	switch string(raw) {
	case "true":
		*dst = true
	case "false":
		*dst = false
	default:
		return invalidInput("field %q must be true (only count) or false (reset), without quotes", name)
	}
	return nil
}
