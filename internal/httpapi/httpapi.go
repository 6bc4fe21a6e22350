// Package httpapi is the HTTP edge shared by the functions behind API Gateway's HTTP
// API (payload format 2.0): it reads the caller from the JWT authorizer's claims and
// the table, decodes bodies strictly, and turns results and apperr codes into
// responses. Only here do codes become status codes; internal errors are answered with
// a generic message.
package httpapi

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/strictjson"
	"github.com/mspvault/orgkey/internal/tenant"
)

// Request and Response are API Gateway HTTP API (v2.0) events.
type (
	Request  = events.APIGatewayV2HTTPRequest
	Response = events.APIGatewayV2HTTPResponse
)

// MaxBody bounds request bodies; the API's bodies are a few dozen bytes.
const MaxBody = 4 << 10

// baseHeaders go on every JSON answer: nothing about a key may be cached or sniffed.
func baseHeaders() map[string]string {
	return map[string]string{
		"Content-Type":           "application/json; charset=utf-8",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
	}
}

// JSON answers status with v as the body.
func JSON(status int, v any) Response {
	body, err := json.Marshal(v)
	if err != nil {
		return Error(apperr.Wrapf(apperr.Internal, err, "encoding response"))
	}
	return Response{StatusCode: status, Headers: baseHeaders(), Body: string(body)}
}

// ErrorBody is the JSON shape of every error answer.
type ErrorBody struct {
	Error  string `json:"error"`
	Reason string `json:"reason,omitempty"`
}

// Status maps an error code to its HTTP status.
func Status(code apperr.Code) int {
	switch code {
	case apperr.Invalid:
		return http.StatusBadRequest
	case apperr.Unauthorized:
		return http.StatusUnauthorized
	case apperr.Forbidden:
		return http.StatusForbidden
	case apperr.NotFound:
		return http.StatusNotFound
	case apperr.Conflict:
		return http.StatusConflict
	case apperr.RateLimited:
		return http.StatusTooManyRequests
	case apperr.Unavailable:
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

// Error answers an error: its code's status, and its caller-safe message and reason.
// Anything that is not an *apperr.Error is internal and answered generically.
func Error(err error) Response {
	e := apperr.As(err)
	if e == nil || e.Code == apperr.Internal {
		return JSONNoFail(http.StatusInternalServerError, ErrorBody{Error: "internal error", Reason: "internal"})
	}
	msg := e.Message
	if msg == "" {
		msg = string(e.Code)
	}
	reason := e.Reason
	if reason == "" {
		reason = string(e.Code)
	}
	return JSONNoFail(Status(e.Code), ErrorBody{Error: msg, Reason: reason})
}

// JSONNoFail is JSON for values that always encode.
func JSONNoFail(status int, v any) Response {
	body, _ := json.Marshal(v)
	return Response{StatusCode: status, Headers: baseHeaders(), Body: string(body)}
}

// Decode reads a JSON object body into v strictly: at most MaxBody bytes, valid
// UTF-8, no unknown or duplicated fields, nothing after the object.
func Decode(req Request, v any) error {
	body := []byte(req.Body)
	if req.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(req.Body)
		if err != nil {
			return apperr.New(apperr.Invalid, "malformed_body", "the body is not valid base64")
		}
		body = b
	}
	if len(body) > MaxBody {
		return apperr.New(apperr.Invalid, "body_too_large", "the body is larger than "+strconv.Itoa(MaxBody)+" bytes")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return apperr.New(apperr.Invalid, "empty_body", "the body is empty")
	}
	if ct := header(req, "content-type"); ct != "" && !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		return apperr.New(apperr.Invalid, "unsupported_media_type", "the body must be application/json")
	}
	// The strict reading every entry point shares: encoding/json alone would turn
	// invalid UTF-8 into U+FFFD and keep the last of a repeated key.
	switch err := strictjson.Check(body); strictjson.KindOf(err) {
	case "":
	case strictjson.InvalidUTF8:
		return apperr.New(apperr.Invalid, "malformed_body", "the body is not valid UTF-8")
	case strictjson.Duplicate:
		return apperr.New(apperr.Invalid, "duplicate_field", "the body repeats a field")
	default:
		return apperr.New(apperr.Invalid, "malformed_body", "the body must be one JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		if strings.HasPrefix(err.Error(), "json: unknown field") {
			return apperr.New(apperr.Invalid, "unknown_field", "the body has a field this endpoint does not take")
		}
		return apperr.New(apperr.Invalid, "malformed_body", "the body is not the expected JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apperr.New(apperr.Invalid, "malformed_body", "the body has data after the JSON object")
	}
	return nil
}

// Header is a request header, whatever the case of its name (API Gateway lower-cases
// them; a test event may not).
func Header(req Request, name string) string { return header(req, name) }

func header(req Request, name string) string {
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

// Claims gives the JWT authorizer's claims, or nil on a public route.
func Claims(req Request) map[string]string {
	if req.RequestContext.Authorizer == nil || req.RequestContext.Authorizer.JWT == nil {
		return nil
	}
	return req.RequestContext.Authorizer.JWT.Claims
}

// AccessTokenOnly refuses claims of anything but a Cognito access token. The
// authorizer already requires an access token's scope; this is the second layer,
// against an authorizer configured without it. An ID token carries the same sub and
// passes a JWT authorizer's signature, issuer and audience checks (its aud is the
// app client), but it is meant for the browser, is not revoked by a global sign-out
// and may be handed to third parties: it must not open the key.
func AccessTokenOnly(claims map[string]string) error {
	if claims["token_use"] != "access" {
		return apperr.New(apperr.Unauthorized, "access_token_required", "the API takes Cognito access tokens only")
	}
	return nil
}

// AuthTime is the token's auth_time claim: when the user last signed in.
func AuthTime(req Request) (time.Time, bool) {
	v := Claims(req)["auth_time"]
	secs, err := strconv.ParseInt(v, 10, 64)
	if err != nil || secs <= 0 {
		return time.Time{}, false
	}
	return time.Unix(secs, 0), true
}

// Directory is what caller resolution needs from the table.
type Directory interface {
	TenantOfUser(ctx context.Context, userID string) (string, error)
	GetUser(ctx context.Context, tenantID, userID string) (tenant.User, error)
	GetOrg(ctx context.Context, tenantID string) (tenant.Org, error)
}

// userOrgReader is a Directory that reads a user and their organization in one call
// (the store does, with one BatchGetItem instead of two GetItem). A missing user
// must be reported as not_found with a zero User.
type userOrgReader interface {
	GetUserAndOrg(ctx context.Context, tenantID, userID string) (tenant.User, tenant.Org, error)
}

// Caller is the signed-in user and their organization, as the table has them now.
type Caller struct {
	User tenant.User
	Org  tenant.Org
}

// ResolveCaller reads the caller from the token's sub and the table: role and tenant
// come from the table, never from client input or claims that could be stale. A user
// who was deleted after the token was issued is refused at once. While the
// organization is being reset, key flows answer conflict.
func ResolveCaller(ctx context.Context, dir Directory, req Request) (Caller, error) {
	claims := Claims(req)
	sub := claims["sub"]
	if sub == "" || len(sub) > 128 {
		return Caller{}, apperr.New(apperr.Unauthorized, "missing_identity", "the request carries no signed-in user")
	}
	if err := AccessTokenOnly(claims); err != nil {
		return Caller{}, err
	}
	tid, err := dir.TenantOfUser(ctx, sub)
	if apperr.CodeOf(err) == apperr.NotFound {
		return Caller{}, apperr.New(apperr.Forbidden, "unknown_user", "the signed-in user is not a member of an organization")
	}
	if err != nil {
		return Caller{}, err
	}
	var (
		u   tenant.User
		org tenant.Org
	)
	if both, ok := dir.(userOrgReader); ok {
		u, org, err = both.GetUserAndOrg(ctx, tid, sub)
	} else if u, err = dir.GetUser(ctx, tid, sub); err == nil {
		org, err = dir.GetOrg(ctx, tid)
	}
	if apperr.CodeOf(err) == apperr.NotFound && u.ID == "" {
		return Caller{}, apperr.New(apperr.Forbidden, "unknown_user", "the signed-in user is not a member of an organization")
	}
	if err != nil {
		return Caller{}, err
	}
	if org.Status == tenant.Resetting {
		return Caller{}, apperr.New(apperr.Conflict, "organization_resetting", "the organization's key is being reset; try again later")
	}
	return Caller{User: u, Org: org}, nil
}

// SourceIP and UserAgent are what audit records keep of the request.
func SourceIP(req Request) string  { return req.RequestContext.HTTP.SourceIP }
func UserAgent(req Request) string { return req.RequestContext.HTTP.UserAgent }

// LogRequest writes the one log line a request gets. It never logs bodies, headers
// or tokens. lambdamain.LogEvent is its counterpart for the functions' other
// invocations (the Cognito trigger, the sweep, the console's reset).
func LogRequest(ctx context.Context, log *slog.Logger, flow string, req Request, status int, err error, attrs ...slog.Attr) {
	level := slog.LevelInfo
	all := []slog.Attr{
		slog.String("flow", flow),
		slog.String("request_id", req.RequestContext.RequestID),
		slog.String("route", req.RouteKey),
		slog.Int("status", status),
	}
	outcome := "ok"
	if err != nil {
		outcome = string(apperr.CodeOf(err))
		all = append(all, slog.String("reason", apperr.ReasonOf(err)), slog.String("error", err.Error()))
		if status >= 500 {
			level = slog.LevelError
		} else {
			level = slog.LevelWarn
		}
	}
	all = append(all, slog.String("outcome", outcome))
	log.LogAttrs(ctx, level, flow, append(all, attrs...)...)
}
