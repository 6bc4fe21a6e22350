package localstack

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/golang-jwt/jwt/v5"

	"github.com/mspvault/orgkey/internal/dev/lambdarun"
	"github.com/mspvault/orgkey/internal/dev/samtemplate"
)

func loadTemplate(t *testing.T) *samtemplate.Template {
	t.Helper()
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

// TestTemplate: what the stack reads from template.yaml.
func TestTemplate(t *testing.T) {
	tpl := loadTemplate(t)
	trig, err := triggers(tpl)
	if err != nil || trig["PostConfirmation"] != "ActivationEmailFunction" {
		t.Errorf("triggers = %v, %v", trig, err)
	}
	pool, err := userPoolInput(tpl, "p")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range pool.Schema {
		names = append(names, aws.ToString(a.Name))
	}
	if !slices.Contains(names, "company_name") || pool.Policies == nil || aws.ToInt32(pool.Policies.PasswordPolicy.MinimumLength) != 12 ||
		len(pool.UsernameAttributes) != 1 {
		t.Errorf("user pool input: schema %v, %+v", names, pool)
	}
	client, err := userPoolClientInput(tpl, "pool", "c")
	if err != nil || client.GenerateSecret || !slices.Contains(client.ExplicitAuthFlows, "ALLOW_USER_PASSWORD_AUTH") {
		t.Errorf("client input %+v, %v", client, err)
	}

	r := resolver{tpl: tpl, params: map[string]string{"MailFromAddress": "m@x", "SesIdentityName": "x", "AppBaseUrl": "http://a", "ClaimBaseUrl": "http://a"},
		resources: map[string]resource{tableID: {Ref: "tbl", Arn: "arn:tbl"}, keyID: {Ref: "k", Arn: "arn:key"},
			userPoolID: {Ref: "local_pool"}, poolClientID: {Ref: "client1"}}}
	fns, err := tpl.Functions()
	if err != nil {
		t.Fatal(err)
	}
	routes := 0
	for _, fn := range fns {
		env, err := r.functionEnv(fn)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Contains(env, "TABLE_NAME=tbl") || !slices.Contains(env, "KMS_KEY_ID=arn:key") {
			t.Errorf("%s environment %v", fn.LogicalID, env)
		}
		for _, ev := range fn.Events {
			if ev.Route == nil {
				continue
			}
			routes++
			page := ev.Route.Path == "/org-key/claim" || ev.Route.Path == "/org-key/claim/reset-confirm"
			wantOpen := page && (ev.Route.Method == "GET" || ev.Route.Method == "HEAD")
			if wantOpen != ev.Route.Open() {
				t.Errorf("%s %s: open=%v", ev.Route.Method, ev.Route.Path, ev.Route.Open())
			}
			if a := ev.Route.Auth; a != nil {
				iss, aud, err := r.jwtAuthorizer(a, "http://127.0.0.1:9229")
				if err != nil || iss != "http://127.0.0.1:9229/local_pool" || !slices.Equal(aud, []string{"client1"}) {
					t.Errorf("authorizer: %q %v %v", iss, aud, err)
				}
			}
		}
	}
	if routes != 10 {
		t.Errorf("%d routes, want 10", routes)
	}
}

// The scope check is what keeps Cognito's ID tokens (no scope claim) off the API.
func TestCheckScopes(t *testing.T) {
	want := []string{"aws.cognito.signin.user.admin"}
	for _, tc := range []struct {
		name   string
		claims map[string]string
		ok     bool
	}{
		{"access token", map[string]string{"scope": "aws.cognito.signin.user.admin", "token_use": "access"}, true},
		{"several scopes", map[string]string{"scope": "openid aws.cognito.signin.user.admin email"}, true},
		{"scp array", map[string]string{"scp": "[email aws.cognito.signin.user.admin]"}, true},
		{"ID token", map[string]string{"token_use": "id", "aud": "client1"}, false},
		{"another scope", map[string]string{"scope": "openid email"}, false},
		{"scope as a prefix", map[string]string{"scope": "aws.cognito.signin.user.admin.extra"}, false},
		{"empty scope", map[string]string{"scope": ""}, false},
	} {
		if err := checkScopes(tc.claims, want); (err == nil) != tc.ok {
			t.Errorf("%s: checkScopes = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
	if err := checkScopes(map[string]string{}, nil); err != nil {
		t.Errorf("a route without scopes refused a token: %v", err)
	}
}

func TestAuthorizer(t *testing.T) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := rsa.GenerateKey(rand.Reader, 2048)
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "kid": "k1", "use": "sig", "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(key.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(key.E)).Bytes()),
		}}})
	}))
	defer jwks.Close()
	a := &Authorizer{Issuer: "http://iss/pool", Audience: []string{"client1"}, JWKSURL: jwks.URL}
	now := time.Now()
	mk := func(k *rsa.PrivateKey, kid string, over jwt.MapClaims) string {
		c := jwt.MapClaims{"iss": "http://iss/pool", "client_id": "client1", "sub": "u1", "exp": now.Add(time.Hour).Unix(),
			"iat": now.Unix(), "auth_time": now.Unix(), "cognito:groups": []string{"a", "b"}, "email_verified": true}
		for k, v := range over {
			if v == nil {
				delete(c, k)
			} else {
				c[k] = v
			}
		}
		tok := jwt.NewWithClaims(jwt.SigningMethodRS256, c)
		tok.Header["kid"] = kid
		s, err := tok.SignedString(k)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	claims, err := a.Authorize(context.Background(), "Bearer "+mk(key, "k1", nil))
	if err != nil {
		t.Fatal(err)
	}
	if claims["sub"] != "u1" || claims["auth_time"] != itoa(now.Unix()) || claims["cognito:groups"] != "[a b]" || claims["email_verified"] != "true" {
		t.Errorf("claims %v", claims)
	}
	if _, err := a.Authorize(context.Background(), mk(key, "k1", jwt.MapClaims{"client_id": nil, "aud": "client1"})); err != nil {
		t.Errorf("id token with aud and no Bearer prefix: %v", err)
	}
	for name, tok := range map[string]string{
		"empty":         "",
		"wrong issuer":  mk(key, "k1", jwt.MapClaims{"iss": "http://other"}),
		"wrong client":  mk(key, "k1", jwt.MapClaims{"client_id": "x"}),
		"wrong aud":     mk(key, "k1", jwt.MapClaims{"client_id": nil, "aud": "x"}),
		"no audience":   mk(key, "k1", jwt.MapClaims{"client_id": nil}),
		"expired":       mk(key, "k1", jwt.MapClaims{"exp": now.Add(-time.Second).Unix()}),
		"no exp":        mk(key, "k1", jwt.MapClaims{"exp": nil}),
		"nbf in future": mk(key, "k1", jwt.MapClaims{"nbf": now.Add(time.Hour).Unix()}),
		"iat in future": mk(key, "k1", jwt.MapClaims{"iat": now.Add(time.Hour).Unix()}),
		"other key":     mk(other, "k1", nil),
		"unknown kid":   mk(key, "k2", nil),
	} {
		if _, err := a.Authorize(context.Background(), "Bearer "+tok); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func itoa(n int64) string { return big.NewInt(n).String() }

// fakeInvoker records the event and answers out (or err).
type fakeInvoker struct {
	got  []byte
	name string
	out  []byte
	err  error
}

func (f *fakeInvoker) Invoke(_ context.Context, name string, payload []byte) ([]byte, error) {
	f.name, f.got = name, payload
	return f.out, f.err
}

func TestGatewayEvent(t *testing.T) {
	resp := events.APIGatewayV2HTTPResponse{StatusCode: 201, Headers: map[string]string{"X-A": "1"},
		MultiValueHeaders: map[string][]string{"X-B": {"2", "3"}}, Cookies: []string{"a=1; Secure", "b=2"},
		Body: base64.StdEncoding.EncodeToString([]byte{0, 1, 2}), IsBase64Encoded: true}
	out, _ := json.Marshal(resp)
	inv := &fakeInvoker{out: out}
	gw := &Gateway{Invoker: inv, APIID: "local", Routes: []Route{
		{Method: "POST", Path: "/things/{id}", Function: "F"},
		{Method: "GET", Path: "/open", Function: "G"},
	}}
	srv := httptest.NewServer(gw)
	defer srv.Close()

	req, _ := http.NewRequest("POST", srv.URL+"/things/a%20b?x=1&x=2&y=3", strings.NewReader(`{"k":"v"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Mixed-Case", "v")
	req.Header.Add("Cookie", "c1=1; c2=2")
	r, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(inv.got, &ev); err != nil {
		t.Fatal(err)
	}
	if inv.name != "F" || ev.Version != "2.0" || ev.RouteKey != "POST /things/{id}" || ev.RawPath != "/things/a%20b" ||
		ev.RawQueryString != "x=1&x=2&y=3" || ev.QueryStringParameters["x"] != "1,2" || ev.PathParameters["id"] != "a b" ||
		ev.Headers["x-mixed-case"] != "v" || ev.Headers["content-type"] != "application/json" || !slices.Equal(ev.Cookies, []string{"c1=1", "c2=2"}) ||
		ev.Body != `{"k":"v"}` || ev.IsBase64Encoded || ev.RequestContext.HTTP.Method != "POST" || ev.RequestContext.HTTP.SourceIP != "127.0.0.1" ||
		ev.RequestContext.RequestID == "" || ev.RequestContext.Authorizer != nil || ev.RequestContext.RouteKey != ev.RouteKey {
		t.Errorf("event %+v", ev)
	}
	if r.StatusCode != 201 || r.Header.Get("X-A") != "1" || !slices.Equal(r.Header.Values("X-B"), []string{"2", "3"}) ||
		!slices.Equal(r.Header.Values("Set-Cookie"), []string{"a=1; Secure", "b=2"}) {
		t.Errorf("response %v %v", r.Status, r.Header)
	}

	// Binary bodies travel base64-encoded.
	req, _ = http.NewRequest("POST", srv.URL+"/things/1", strings.NewReader("\x00\xff"))
	req.Header.Set("Content-Type", "application/octet-stream")
	if r, err = http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	json.Unmarshal(inv.got, &ev)
	if !ev.IsBase64Encoded || ev.Body != base64.StdEncoding.EncodeToString([]byte("\x00\xff")) {
		t.Errorf("binary body: %q %v", ev.Body, ev.IsBase64Encoded)
	}

	for _, tc := range []struct {
		name   string
		out    []byte
		err    error
		path   string
		status int
		body   string
	}{
		{"no route", nil, nil, "/nowhere", 404, `{"message":"Not Found"}`},
		{"function error", nil, &lambdarun.FunctionError{Type: "Unhandled"}, "/open", 500, `{"message":"Internal Server Error"}`},
		{"timeout", nil, &lambdarun.FunctionError{Type: lambdarun.ErrTypeTimeout}, "/open", 503, `{"message":"Service Unavailable"}`},
		{"not JSON", []byte("nope"), nil, "/open", 500, `{"message":"Internal Server Error"}`},
		{"no statusCode", []byte(`{"a":1}`), nil, "/open", 200, `{"a":1}`},
	} {
		inv.out, inv.err = tc.out, tc.err
		r, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		var b strings.Builder
		buf := make([]byte, 512)
		n, _ := r.Body.Read(buf)
		b.Write(buf[:n])
		r.Body.Close()
		if r.StatusCode != tc.status || b.String() != tc.body {
			t.Errorf("%s: %d %s", tc.name, r.StatusCode, b.String())
		}
	}
}

func TestInvokeAPI(t *testing.T) {
	inv := &fakeInvoker{out: []byte(`{"ok":true}`)}
	api := &InvokeAPI{Functions: map[string]bool{"F": true}, Invoker: inv}
	srv := httptest.NewServer(api.Handler())
	defer srv.Close()
	post := func(name, body string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest("POST", srv.URL+"/2015-03-31/functions/"+name+"/invocations", strings.NewReader(body))
		for k, v := range hdr {
			req.Header.Set(k, v)
		}
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r
	}
	if r := post("F", `{"a":1}`, nil); r.StatusCode != 200 || r.Header.Get("X-Amz-Function-Error") != "" || string(inv.got) != `{"a":1}` {
		t.Errorf("invoke: %v", r.Status)
	}
	if r := post("arn:aws:lambda:us-east-1:123456789012:function:F", `{}`, nil); r.StatusCode != 200 || inv.name != "F" {
		t.Errorf("invoke by ARN: %v %s", r.Status, inv.name)
	}
	if r := post("G", `{}`, nil); r.StatusCode != 404 || r.Header.Get("X-Amzn-ErrorType") != "ResourceNotFoundException" {
		t.Errorf("unknown function: %v", r.Status)
	}
	if r := post("F", `not json`, nil); r.StatusCode != 400 {
		t.Errorf("bad payload: %v", r.Status)
	}
	if r := post("F", `{}`, map[string]string{"X-Amz-Invocation-Type": "DryRun"}); r.StatusCode != 204 {
		t.Errorf("dry run: %v", r.Status)
	}
	inv.err = &lambdarun.FunctionError{Type: "Error", Message: "boom", Raw: []byte(`{"errorMessage":"boom","errorType":"Error"}`)}
	if r := post("F", `{}`, nil); r.StatusCode != 200 || r.Header.Get("X-Amz-Function-Error") != "Unhandled" {
		t.Errorf("function error: %v %v", r.Status, r.Header)
	}
}
