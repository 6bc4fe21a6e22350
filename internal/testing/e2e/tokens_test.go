package e2e

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/mspvault/orgkey/internal/dev/samtemplate"
)

// poolKey is cognito-local's signing key (it ships in the package): the
// tests forge tokens with it to probe each check of the authorizer.
func poolKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "node_modules", "cognito-local", "lib", "keys", "cognitoLocal.private.json"))
	if err != nil {
		t.Fatal(err)
	}
	var k struct {
		PEM string `json:"pem"`
	}
	if err := json.Unmarshal(b, &k); err != nil {
		t.Fatal(err)
	}
	key, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(k.PEM))
	if err != nil {
		t.Fatal(err)
	}
	return key
}

func strangerKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// claims are an access token's, as cognito-local issues them, with
// overrides (nil deletes a claim).
func claims(sub string, overrides map[string]any) jwt.MapClaims {
	now := time.Now()
	c := jwt.MapClaims{
		"sub": sub, "username": sub, "iss": shared.ep.Issuer, "client_id": shared.ep.ClientID,
		"token_use": "access", "scope": "aws.cognito.signin.user.admin",
		"auth_time": now.Unix(), "iat": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": unique("jti-"),
	}
	for k, v := range overrides {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	return c
}

func sign(t *testing.T, sub string, overrides map[string]any) string {
	t.Helper()
	return signWith(t, poolKey(t), sub, overrides)
}

func signWith(t *testing.T, key *rsa.PrivateKey, sub string, overrides map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims(sub, overrides))
	tok.Header["kid"] = "CognitoLocal"
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signHS256(t *testing.T, sub string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodHS256, claims(sub, nil))
	tok.Header["kid"] = "CognitoLocal"
	s, err := tok.SignedString([]byte("a shared secret"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func signNone(t *testing.T, sub string) string {
	t.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodNone, claims(sub, nil))
	tok.Header["kid"] = "CognitoLocal"
	s, err := tok.SignedString(jwt.UnsafeAllowNoneSignatureType)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
