package localstack

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	"github.com/mspvault/orgkey/internal/dev/lambdarun"
)

// Invoker runs one invocation of a function by name (its logical id).
type Invoker interface {
	Invoke(ctx context.Context, function string, payload []byte) ([]byte, error)
}

// Route is one HTTP API route served locally.
type Route struct {
	Method   string // upper case, or ANY
	Path     string // /org-key/send; {name} segments are path parameters
	Function string // logical id
	Auth     *Authorizer
	// Scopes: a token must carry one of them in its scope claim (the route's
	// AuthorizationScopes, as API Gateway checks them); none means any token.
	Scopes []string
}

// Key is the route key API Gateway puts in the event.
func (r Route) Key() string { return r.Method + " " + r.Path }

// Gateway serves an HTTP API the way API Gateway's HTTP API does with
// payload format 2.0: it matches a route, runs the route's JWT authorizer,
// turns the request into an events.APIGatewayV2HTTPRequest, invokes the
// function, and turns its events.APIGatewayV2HTTPResponse into the answer.
type Gateway struct {
	Routes  []Route
	Invoker Invoker
	Log     *slog.Logger
	// APIID names the API in request contexts.
	APIID string
}

// maxPayload is API Gateway's request size limit.
const maxPayload = 10 << 20

func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	route, params, ok := g.match(r.Method, r.URL.EscapedPath())
	if !ok {
		gatewayError(w, http.StatusNotFound, "Not Found")
		return
	}
	var claims map[string]string
	if route.Auth != nil {
		c, err := route.Auth.Authorize(r.Context(), r.Header.Get("Authorization"))
		if err == nil {
			err = checkScopes(c, route.Scopes)
		}
		if err != nil {
			g.log().Info("authorizer refused", "route", route.Key(), "error", err.Error())
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			gatewayError(w, http.StatusUnauthorized, "Unauthorized")
			return
		}
		claims = c
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxPayload))
	if err != nil {
		gatewayError(w, http.StatusRequestEntityTooLarge, "Request Entity Too Large")
		return
	}
	ev := g.event(r, route, params, claims, body)
	payload, err := json.Marshal(ev)
	if err != nil {
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	out, err := g.Invoker.Invoke(r.Context(), route.Function, payload)
	if err != nil {
		g.log().Error("integration failed", "route", route.Key(), "function", route.Function, "error", err.Error())
		var fe *lambdarun.FunctionError
		if errors.As(err, &fe) && fe.Type == lambdarun.ErrTypeTimeout {
			gatewayError(w, http.StatusServiceUnavailable, "Service Unavailable")
			return
		}
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
		return
	}
	if err := writeResponse(w, out); err != nil {
		g.log().Error("malformed integration response", "route", route.Key(), "function", route.Function, "error", err.Error())
		gatewayError(w, http.StatusInternalServerError, "Internal Server Error")
	}
}

func (g *Gateway) log() *slog.Logger {
	if g.Log != nil {
		return g.Log
	}
	return slog.New(slog.DiscardHandler)
}

// match finds the route for a request: an exact path wins over one with
// parameters; ANY matches every method.
func (g *Gateway) match(method, path string) (Route, map[string]string, bool) {
	var (
		best   Route
		params map[string]string
		found  bool
	)
	for _, rt := range g.Routes {
		if rt.Method != method && rt.Method != "ANY" {
			continue
		}
		p, ok := matchPath(rt.Path, path)
		if !ok {
			continue
		}
		if !found || (len(p) < len(params)) || (best.Method == "ANY" && rt.Method != "ANY") {
			best, params, found = rt, p, true
		}
	}
	return best, params, found
}

func matchPath(pattern, path string) (map[string]string, bool) {
	ps := strings.Split(strings.Trim(pattern, "/"), "/")
	xs := strings.Split(strings.Trim(path, "/"), "/")
	params := map[string]string{}
	for i, p := range ps {
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "+}") {
			if i >= len(xs) {
				return nil, false
			}
			params[p[1:len(p)-2]] = strings.Join(xs[i:], "/")
			return params, true
		}
		if i >= len(xs) {
			return nil, false
		}
		if strings.HasPrefix(p, "{") && strings.HasSuffix(p, "}") {
			v, err := url.PathUnescape(xs[i])
			if err != nil || v == "" {
				return nil, false
			}
			params[p[1:len(p)-1]] = v
			continue
		}
		if p != xs[i] {
			return nil, false
		}
	}
	return params, len(ps) == len(xs)
}

// event builds the payload 2.0 request event.
func (g *Gateway) event(r *http.Request, route Route, params, claims map[string]string, body []byte) events.APIGatewayV2HTTPRequest {
	now := time.Now()
	headers := map[string]string{}
	var cookies []string
	for k, vs := range r.Header {
		name := strings.ToLower(k)
		if name == "cookie" {
			for _, v := range vs {
				for _, c := range strings.Split(v, ";") {
					if c = strings.TrimSpace(c); c != "" {
						cookies = append(cookies, c)
					}
				}
			}
			continue
		}
		headers[name] = strings.Join(vs, ",")
	}
	headers["host"] = r.Host
	headers["x-forwarded-for"] = sourceIP(r)
	headers["x-forwarded-proto"] = "http"
	if _, port, err := net.SplitHostPort(r.Host); err == nil {
		headers["x-forwarded-port"] = port
	}
	if len(body) > 0 || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
		headers["content-length"] = strconv.Itoa(len(body))
	}

	var query map[string]string
	if vals := r.URL.Query(); len(vals) > 0 {
		query = make(map[string]string, len(vals))
		for k, vs := range vals {
			query[k] = strings.Join(vs, ",")
		}
	}
	if len(params) == 0 {
		params = nil
	}

	ev := events.APIGatewayV2HTTPRequest{
		Version:               "2.0",
		RouteKey:              route.Key(),
		RawPath:               r.URL.EscapedPath(),
		RawQueryString:        r.URL.RawQuery,
		Cookies:               cookies,
		Headers:               headers,
		QueryStringParameters: query,
		PathParameters:        params,
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RouteKey:     route.Key(),
			AccountID:    AccountID,
			Stage:        "$default",
			RequestID:    newRequestID(),
			APIID:        g.APIID,
			DomainName:   hostOnly(r.Host),
			DomainPrefix: strings.SplitN(hostOnly(r.Host), ".", 2)[0],
			Time:         now.UTC().Format("02/Jan/2006:15:04:05 -0700"),
			TimeEpoch:    now.UnixMilli(),
			HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{
				Method:    r.Method,
				Path:      r.URL.Path,
				Protocol:  r.Proto,
				SourceIP:  sourceIP(r),
				UserAgent: r.UserAgent(),
			},
		},
	}
	if claims != nil {
		ev.RequestContext.Authorizer = &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
			JWT: &events.APIGatewayV2HTTPRequestContextAuthorizerJWTDescription{Claims: claims},
		}
	}
	if len(body) > 0 {
		if isText(r.Header.Get("Content-Type"), body) {
			ev.Body = string(body)
		} else {
			ev.Body = base64.StdEncoding.EncodeToString(body)
			ev.IsBase64Encoded = true
		}
	}
	return ev
}

// writeResponse turns the function's answer into the HTTP answer. As with
// API Gateway, an answer without statusCode is itself the JSON body of a 200.
func writeResponse(w http.ResponseWriter, out []byte) error {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(out, &probe); err != nil || probe["statusCode"] == nil {
		if !json.Valid(out) {
			return errors.New("the function's answer is not JSON")
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		w.Write(out)
		return nil
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		return err
	}
	if resp.StatusCode < 100 || resp.StatusCode > 599 {
		return errors.New("statusCode out of range")
	}
	body := []byte(resp.Body)
	if resp.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(resp.Body)
		if err != nil {
			return errors.New("body is not valid base64")
		}
		body = b
	}
	h := w.Header()
	for k, v := range resp.Headers {
		h.Set(k, v)
	}
	for k, vs := range resp.MultiValueHeaders {
		for _, v := range vs {
			h.Add(k, v)
		}
	}
	for _, c := range resp.Cookies {
		h.Add("Set-Cookie", c)
	}
	if h.Get("Content-Type") == "" && len(body) > 0 {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Apigw-Requestid", newRequestID())
	w.WriteHeader(resp.StatusCode)
	w.Write(body)
	return nil
}

func gatewayError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	b, _ := json.Marshal(map[string]string{"message": msg})
	w.Write(b)
}

// isText reports whether API Gateway would pass the body as text rather
// than base64.
func isText(contentType string, body []byte) bool {
	if !utf8.Valid(body) || bytes.IndexByte(body, 0) >= 0 {
		return false
	}
	if contentType == "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil {
		return false
	}
	return strings.HasPrefix(mt, "text/") || mt == "application/json" || strings.HasSuffix(mt, "+json") ||
		mt == "application/xml" || strings.HasSuffix(mt, "+xml") ||
		mt == "application/x-www-form-urlencoded" || mt == "application/javascript"
}

func sourceIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

func hostOnly(hostport string) string {
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		return h
	}
	return hostport
}

// newRequestID returns a request id shaped like API Gateway's (base64 of
// random bytes).
func newRequestID() string {
	b := make([]byte, 10)
	rand.Read(b)
	return strings.TrimRight(base64.StdEncoding.EncodeToString(b), "=")
}
