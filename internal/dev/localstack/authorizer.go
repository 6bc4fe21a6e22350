package localstack

import (
	"context"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Authorizer checks bearer tokens the way API Gateway's JWT authorizer does:
// an RS256 signature by a key of the issuer's JWKS, the issuer, the audience
// (the aud claim, or client_id for access tokens, which carry no aud), and
// exp, nbf and iat. It hands on the claims as strings, as API Gateway does.
type Authorizer struct {
	Issuer   string
	Audience []string
	// JWKSURL is where the issuer publishes its keys.
	JWKSURL string
	Client  *http.Client
	Now     func() time.Time

	mu      sync.Mutex
	keys    map[string]*rsa.PublicKey
	fetched time.Time
}

// errUnauthorized is every refusal: the caller learns nothing more, as with
// API Gateway (which answers 401 {"message":"Unauthorized"}).
var errUnauthorized = errors.New("unauthorized")

// Authorize validates the Authorization header's token and returns its
// claims. The error says why, for the stack's log only.
func (a *Authorizer) Authorize(ctx context.Context, header string) (map[string]string, error) {
	raw := strings.TrimSpace(header)
	if len(raw) > 7 && strings.EqualFold(raw[:7], "bearer ") {
		raw = strings.TrimSpace(raw[7:])
	}
	if raw == "" {
		return nil, fmt.Errorf("%w: no token", errUnauthorized)
	}
	now := time.Now
	if a.Now != nil {
		now = a.Now
	}
	parser := jwt.NewParser(
		jwt.WithValidMethods([]string{"RS256"}),
		jwt.WithIssuer(a.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithTimeFunc(now),
		jwt.WithJSONNumber(),
	)
	claims := jwt.MapClaims{}
	_, err := parser.ParseWithClaims(raw, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		return a.key(ctx, kid)
	})
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errUnauthorized, err)
	}
	if !a.audienceMatches(claims) {
		return nil, fmt.Errorf("%w: audience does not match", errUnauthorized)
	}
	return stringClaims(claims), nil
}

func (a *Authorizer) audienceMatches(c jwt.MapClaims) bool {
	aud, _ := c.GetAudience()
	if len(aud) > 0 {
		for _, x := range aud {
			if slices.Contains(a.Audience, x) {
				return true
			}
		}
		return false
	}
	id, _ := c["client_id"].(string)
	return id != "" && slices.Contains(a.Audience, id)
}

// key returns the issuer's key with this id, fetching the JWKS on first use
// and again (at most every 10 s) when a token names an unknown key.
func (a *Authorizer) key(ctx context.Context, kid string) (*rsa.PublicKey, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if k, ok := a.keys[kid]; ok {
		return k, nil
	}
	if time.Since(a.fetched) < 10*time.Second && a.keys != nil {
		return nil, fmt.Errorf("no key %q in the issuer's JWKS", kid)
	}
	keys, err := fetchJWKS(ctx, a.client(), a.JWKSURL)
	if err != nil {
		return nil, err
	}
	a.keys, a.fetched = keys, time.Now()
	if k, ok := a.keys[kid]; ok {
		return k, nil
	}
	return nil, fmt.Errorf("no key %q in the issuer's JWKS", kid)
}

func (a *Authorizer) client() *http.Client {
	if a.Client != nil {
		return a.Client
	}
	return &http.Client{Timeout: 5 * time.Second}
}

// fetchJWKS reads the RSA signing keys of a JSON Web Key Set.
func fetchJWKS(ctx context.Context, c *http.Client, url string) (map[string]*rsa.PublicKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS %s: status %d %v", url, resp.StatusCode, err)
	}
	return parseJWKS(body)
}

func parseJWKS(body []byte) (map[string]*rsa.PublicKey, error) {
	var set struct {
		Keys []struct {
			Kty, Kid, Use, Alg, N, E string
		} `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	keys := map[string]*rsa.PublicKey{}
	for _, k := range set.Keys {
		if k.Kty != "RSA" || (k.Use != "" && k.Use != "sig") {
			continue
		}
		n, err1 := base64.RawURLEncoding.DecodeString(k.N)
		e, err2 := base64.RawURLEncoding.DecodeString(k.E)
		if err1 != nil || err2 != nil || len(e) > 4 {
			return nil, fmt.Errorf("parse JWKS: key %q is malformed", k.Kid)
		}
		exp := 0
		for _, b := range e {
			exp = exp<<8 | int(b)
		}
		keys[k.Kid] = &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: exp}
	}
	if len(keys) == 0 {
		return nil, errors.New("parse JWKS: no RSA signing key")
	}
	return keys, nil
}

// stringClaims renders claims the way API Gateway passes them to a payload
// 2.0 integration: strings as they are, numbers in plain decimal, booleans
// as true/false, arrays as "[a b]", objects as JSON.
func stringClaims(c jwt.MapClaims) map[string]string {
	out := make(map[string]string, len(c))
	for k, v := range c {
		out[k] = claimString(v)
	}
	return out
}

func claimString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return strconv.FormatInt(i, 10)
		}
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = claimString(e)
		}
		return "[" + strings.Join(parts, " ") + "]"
	case nil:
		return ""
	default:
		b, _ := json.Marshal(x)
		return string(b)
	}
}

// checkScopes is API Gateway's scope check of a JWT authorizer: with
// AuthorizationScopes on the route, the token's scope claim (space-separated;
// scp too) must hold at least one of them. Cognito's ID tokens carry no scope,
// so a route that asks for aws.cognito.signin.user.admin takes access tokens
// only.
func checkScopes(claims map[string]string, want []string) error {
	if len(want) == 0 {
		return nil
	}
	var have []string
	for _, c := range []string{"scope", "scp"} {
		v := strings.Trim(claims[c], "[]") // an array claim arrives as "[a b]"
		have = append(have, strings.Fields(v)...)
	}
	for _, w := range want {
		if slices.Contains(have, w) {
			return nil
		}
	}
	return fmt.Errorf("%w: the token has none of the route's scopes %v", errUnauthorized, want)
}
