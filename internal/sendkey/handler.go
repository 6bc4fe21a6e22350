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
	"github.com/mspvault/orgkey/internal/httpapi"
	"github.com/mspvault/orgkey/internal/keywrap"
	mailpkg "github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/store"
)

// Route keys of the HTTP API (payload 2.0 RouteKey), all served by one function.
const (
	RouteSend    = "POST /org-key/send"
	RouteClaim   = "GET " + mailpkg.ClaimPath
	RouteRequest = "POST /org-key/request"
)

// CookieName holds the org key in the browser. The __Host- prefix makes the browser
// refuse the cookie unless it is Secure, has Path=/ and no Domain: it stays on the
// exact origin that set it.
const CookieName = "__Host-orgkey"

// CookieMaxAge is as long as browsers keep a cookie (Chrome caps Max-Age at 400 days).
const CookieMaxAge = 400 * 24 * time.Hour

// Handler is the Lambda edge for the three routes: it resolves the caller, decodes
// bodies, calls the service and turns results and errors into answers and the one log
// line. It always answers; it never returns an error to the runtime.
type Handler struct {
	Service   *Service
	Directory httpapi.Directory
	Log       *slog.Logger

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
	h := &Handler{Service: svc, Directory: st, Log: log}
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
	httpapi.LogRequest(ctx, h.Log, flow, req, resp.StatusCode, err, attrs...)
	return resp, nil
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

func (h *Handler) claim(ctx context.Context, req httpapi.Request) (httpapi.Response, []slog.Attr, error) {
	res, err := h.Service.Claim(ctx, req.QueryStringParameters["token"], meta(req))
	var attrs []slog.Attr
	if res.TenantID != "" {
		attrs = append(attrs, slog.String("tenant", res.TenantID), slog.String("user", res.UserID))
	}
	switch {
	case err == nil:
		resp := page(http.StatusOK, claimedPage(res.Locale))
		resp.Cookies = []string{CookieName + "=" + res.Key.Reveal() +
			"; Max-Age=" + strconv.Itoa(int(CookieMaxAge/time.Second)) + "; Path=/; Secure; HttpOnly; SameSite=Strict"}
		return resp, attrs, nil
	case IsGone(err):
		return page(http.StatusGone, GonePage), attrs, err
	case apperr.CodeOf(err) == apperr.Unavailable:
		return page(http.StatusBadGateway, unavailablePage), attrs, err
	default:
		return page(http.StatusInternalServerError, unavailablePage), attrs, err
	}
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

// pageHeaders go on every claim page: nothing cached, no referrer (the URL holds a
// token), nothing but inline style.
func pageHeaders() map[string]string {
	return map[string]string{
		"Content-Type":            "text/html; charset=utf-8",
		"Cache-Control":           "no-store",
		"Pragma":                  "no-cache",
		"Referrer-Policy":         "no-referrer",
		"Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
	}
}

func page(status int, body string) httpapi.Response {
	return httpapi.Response{StatusCode: status, Headers: pageHeaders(), Body: body}
}

func claimedPage(locale string) string {
	if mailpkg.Language(locale) == "fr" {
		return claimedPageFR
	}
	return claimedPageEN
}

const pageStyle = `<style>body{font-family:sans-serif;line-height:1.5;max-width:36em;margin:3em auto;padding:0 1em}</style>`

const claimedPageEN = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Organization key stored</title>` + pageStyle + `</head>
<body>
<h1>Organization key stored</h1>
<p>This browser now holds your organization's key and can open the password vault. You can close this page and sign in.</p>
<p>The link you opened has been used and no longer works.</p>
</body></html>
`

const claimedPageFR = `<!doctype html>
<html lang="fr"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Clé d'organisation enregistrée</title>` + pageStyle + `</head>
<body>
<h1>Clé d'organisation enregistrée</h1>
<p>Ce navigateur détient maintenant la clé de votre organisation et peut ouvrir le coffre de mots de passe. Vous pouvez fermer cette page et vous connecter.</p>
<p>Le lien que vous avez ouvert a été utilisé et ne fonctionne plus.</p>
</body></html>
`

// GonePage answers every refused claim link, whatever the reason: used, expired,
// unknown, superseded by a key reset, or its user or organization gone.
const GonePage = `<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Link no longer valid / Lien expiré</title>` + pageStyle + `</head>
<body>
<div lang="en">
<h1>This link is no longer valid</h1>
<p>Organization key links work once and expire. Ask an administrator of your organization to send the key again.</p>
</div>
<hr>
<div lang="fr">
<h1>Ce lien n'est plus valide</h1>
<p>Les liens de clé d'organisation ne fonctionnent qu'une fois et expirent. Demandez à un administrateur de votre organisation de vous renvoyer la clé.</p>
</div>
</body></html>
`

const unavailablePage = `<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>Try again later / Réessayez plus tard</title>` + pageStyle + `</head>
<body>
<div lang="en">
<h1>Temporarily unavailable</h1>
<p>The organization key could not be stored right now. Open the link again in a few minutes.</p>
</div>
<hr>
<div lang="fr">
<h1>Service momentanément indisponible</h1>
<p>La clé d'organisation n'a pas pu être enregistrée pour le moment. Rouvrez le lien dans quelques minutes.</p>
</div>
</body></html>
`
