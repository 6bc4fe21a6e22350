package sendkey

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/claimpage"
	"github.com/mspvault/orgkey/internal/httpapi"
	"github.com/mspvault/orgkey/internal/keywrap"
	mailpkg "github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/store"
)

// Route keys of the HTTP API (payload 2.0 RouteKey), all served by one function.
const (
	RouteSend = "POST /org-key/send"
	// RouteClaimPage and RouteClaimHead serve the page a claim link opens; public, and
	// they change nothing.
	RouteClaimPage = "GET " + mailpkg.ClaimPath
	RouteClaimHead = "HEAD " + mailpkg.ClaimPath
	// RouteClaim spends a link: behind the JWT authorizer, the token in the body.
	RouteClaim   = "POST " + mailpkg.ClaimPath
	RouteRequest = "POST /org-key/request"
)

// CookieName holds the org key in the browser. The __Host- prefix makes the browser
// refuse the cookie unless it is Secure, has Path=/ and no Domain: it stays on the
// exact origin that set it.
const CookieName = "__Host-orgkey"

// CookieMaxAge is as long as browsers keep a cookie (Chrome caps Max-Age at 400 days).
const CookieMaxAge = 400 * 24 * time.Hour

// Handler is the Lambda edge for the routes: it resolves the caller, decodes bodies,
// calls the service and turns results and errors into answers and the one log line.
// It always answers; it never returns an error to the runtime.
type Handler struct {
	Service   *Service
	Directory httpapi.Directory
	Log       *slog.Logger
	// Page configures the claim page's sign-in (user pool, app client, Cognito).
	Page claimpage.Config

	entry lambda.Handler // Handle behind the runtime's JSON coding; set by New
}

// New builds the function's handler from its configuration, one aws.Config and the
// logger: the one wiring of the flow, used by functions/send-key, the benchmark and
// the tests alike. A test changes the clock or the limits through the returned
// Service's fields, and puts faults between the flow and AWS through awsCfg's
// middleware.
func New(cfg Config, awsCfg aws.Config, log *slog.Logger) (*Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	st := store.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName)
	svc := &Service{
		Store:        st,
		Unwrapper:    &keywrap.Unwrapper{KMS: kms.NewFromConfig(awsCfg), KeyID: cfg.KMSKeyID},
		Mailer:       &mailpkg.Sender{SES: sesv2.NewFromConfig(awsCfg), From: cfg.MailFrom},
		AppURL:       strings.TrimRight(cfg.AppURL, "/"),
		ClaimBaseURL: strings.TrimRight(cfg.ClaimBaseURL, "/"),
		ClaimTTL:     time.Duration(cfg.ClaimTTLHours) * time.Hour,
		SendLimit:    cfg.SendRateLimit,
		RequestLimit: cfg.RequestRateLimit,
		Now:          time.Now,
		Random:       rand.Reader,
		Log:          log,
	}
	h := &Handler{Service: svc, Directory: st, Log: log, Page: cfg.PageConfig()}
	h.entry = lambda.NewHandler(h.Handle)
	return h, nil
}

// Invoke is the Lambda entry point (lambda.Handler): the event decoded into Handle's
// request, its answer encoded, as lambda.Start does for a function.
func (h *Handler) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	return h.entry.Invoke(ctx, payload)
}

// Handle serves one request.
func (h *Handler) Handle(ctx context.Context, req httpapi.Request) (httpapi.Response, error) {
	var (
		resp  httpapi.Response
		err   error
		attrs []slog.Attr
		flow  = "send-key"
	)
	switch req.RouteKey {
	case RouteSend:
		resp, attrs, err = h.send(ctx, req)
	case RouteClaimPage, RouteClaimHead:
		flow = "claim-page"
		resp = h.page(req)
	case RouteClaim:
		flow = "claim-key"
		resp, attrs, err = h.claim(ctx, req)
	case RouteRequest:
		flow = "request-key"
		resp, attrs, err = h.request(ctx, req)
	default:
		err = apperr.New(apperr.NotFound, "route_not_found", "no such route")
		resp = httpapi.Error(err)
	}
	if resp.StatusCode == http.StatusTooManyRequests {
		resp.Headers["Retry-After"] = strconv.Itoa(retryAfter(h.Service.Now()))
	}
	httpapi.LogRequest(ctx, h.Log, flow, req, resp.StatusCode, err, attrs...)
	return resp, nil
}

// retryAfter is the seconds until the hourly rate windows (store.Allow) start again.
func retryAfter(now time.Time) int {
	return int(now.Truncate(time.Hour).Add(time.Hour).Sub(now).Seconds()) + 1
}

type sendResponse struct {
	Status    string `json:"status"`
	ExpiresAt string `json:"expiresAt"`
}

func (h *Handler) send(ctx context.Context, req httpapi.Request) (httpapi.Response, []slog.Attr, error) {
	caller, err := httpapi.ResolveCaller(ctx, h.Directory, req)
	if err != nil {
		return httpapi.Error(err), nil, err
	}
	attrs := callerAttrs(caller)
	var t Target
	if err := httpapi.Decode(req, &t); err != nil {
		return httpapi.Error(err), attrs, err
	}
	res, err := h.Service.Send(ctx, caller.User, caller.Org, t, meta(req))
	if res.TargetID != "" {
		attrs = append(attrs, slog.String("target", res.TargetID))
	}
	if err != nil {
		return httpapi.Error(err), attrs, err
	}
	return httpapi.JSON(http.StatusAccepted, sendResponse{Status: "sent", ExpiresAt: res.ExpiresAt.UTC().Format(time.RFC3339)}), attrs, nil
}

type requestResponse struct {
	Status string `json:"status"`
}

func (h *Handler) request(ctx context.Context, req httpapi.Request) (httpapi.Response, []slog.Attr, error) {
	caller, err := httpapi.ResolveCaller(ctx, h.Directory, req)
	if err != nil {
		return httpapi.Error(err), nil, err
	}
	attrs := callerAttrs(caller)
	// The request takes no input; an empty body or {} (anything else is refused, so
	// that no free text reaches the admins' mail).
	if strings.TrimSpace(req.Body) != "" {
		var none struct{}
		if err := httpapi.Decode(req, &none); err != nil {
			return httpapi.Error(err), attrs, err
		}
	}
	res, err := h.Service.Request(ctx, caller.User, caller.Org, meta(req))
	attrs = append(attrs, slog.Int("notified", res.Notified))
	if err != nil {
		return httpapi.Error(err), attrs, err
	}
	return httpapi.JSON(http.StatusAccepted, requestResponse{Status: "requested"}), attrs, nil
}

// page answers GET and HEAD of a claim link: the page, in the language the browser
// asks for. It reads nothing and writes nothing; whatever the query holds is ignored
// (the token travels in the fragment, which the browser does not send).
func (h *Handler) page(req httpapi.Request) httpapi.Response {
	body := claimpage.Page(claimpage.Language(headerValue(req, "accept-language")), h.Page)
	if req.RouteKey == RouteClaimHead {
		body = ""
	}
	return httpapi.Response{StatusCode: http.StatusOK, Headers: claimpage.Headers(h.Page), Body: body}
}

type claimRequest struct {
	Token string `json:"token"`
}

type claimResponse struct {
	Status string `json:"status"`
}

// errTokenInQuery refuses a spend whose URL has a query: the token belongs in the body,
// and a URL is logged and sent on as a Referer.
var errTokenInQuery = apperr.New(apperr.Invalid, "query_not_allowed", "send the link's token in the JSON body, never in the URL")

// errClaimGone is the one answer of every dead link, whatever the reason.
var errClaimGone = apperr.New(apperr.NotFound, "link_gone", "this link is no longer valid")

func (h *Handler) claim(ctx context.Context, req httpapi.Request) (httpapi.Response, []slog.Attr, error) {
	if req.RawQueryString != "" || len(req.QueryStringParameters) > 0 {
		return httpapi.Error(errTokenInQuery), nil, errTokenInQuery
	}
	claims := httpapi.Claims(req)
	sub := claims["sub"]
	if sub == "" {
		return httpapi.Error(errNoIdentity), nil, errNoIdentity
	}
	if err := httpapi.AccessTokenOnly(claims); err != nil {
		return httpapi.Error(err), nil, err
	}
	attrs := []slog.Attr{slog.String("user", sub)}
	var body claimRequest
	if err := httpapi.Decode(req, &body); err != nil {
		return httpapi.Error(err), attrs, err
	}
	res, err := h.Service.Claim(ctx, body.Token, sub, meta(req))
	if res.TenantID != "" {
		attrs = append(attrs, slog.String("tenant", res.TenantID))
	}
	switch {
	case err == nil:
		resp := httpapi.JSON(http.StatusOK, claimResponse{Status: "stored"})
		resp.Cookies = []string{CookieName + "=" + res.Key.Reveal() +
			"; Max-Age=" + strconv.Itoa(int(CookieMaxAge/time.Second)) + "; Path=/; Secure; HttpOnly; SameSite=Strict"}
		return resp, attrs, nil
	case IsGone(err):
		resp := httpapi.Error(errClaimGone)
		resp.StatusCode = http.StatusGone
		return resp, attrs, err
	default:
		return httpapi.Error(err), attrs, err
	}
}

// headerValue is a request header, whatever the case of its name (API Gateway
// lower-cases them; a test event may not).
func headerValue(req httpapi.Request, name string) string {
	if v, ok := req.Headers[name]; ok {
		return v
	}
	for k, v := range req.Headers {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return ""
}

func callerAttrs(c httpapi.Caller) []slog.Attr {
	return []slog.Attr{slog.String("tenant", c.Org.ID), slog.String("user", c.User.ID), slog.String("role", string(c.User.Role))}
}

func meta(req httpapi.Request) Meta {
	return Meta{
		RequestID: req.RequestContext.RequestID,
		SourceIP:  httpapi.SourceIP(req),
		UserAgent: httpapi.UserAgent(req),
		Origin:    apiOrigin(req),
	}
}

// apiOrigin is the API's own base URL as API Gateway saw the request: the domain
// (execute-api or custom) and, for a named stage, the stage. API Gateway routes by
// that domain, so the client cannot make it name another host.
func apiOrigin(req httpapi.Request) string {
	d := strings.ToLower(req.RequestContext.DomainName)
	if d == "" || len(d) > 253 || strings.Trim(d, "abcdefghijklmnopqrstuvwxyz0123456789.-") != "" {
		return ""
	}
	origin := "https://" + d
	if st := req.RequestContext.Stage; st != "" && st != "$default" {
		origin += "/" + st
	}
	return origin
}
