package keywrap_test

import (
	"crypto/rand"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// Against moto's KMS: a wrapped key opens only under its own tenant and version.
func TestWrapUnwrapBindsTenantAndVersion(t *testing.T) {
	env := testenv.Get(t)
	c := kms.NewFromConfig(env.AWSConfig)
	w := &keywrap.Wrapper{KMS: c, KeyID: env.KMSKeyID}
	u := &keywrap.Unwrapper{KMS: c, KeyID: env.KMSKeyID}
	key, err := orgkey.Generate(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	blob, err := w.Wrap(t.Context(), "org_a", 3, key)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(blob), key.Reveal()) {
		t.Fatal("ciphertext holds the key in clear")
	}
	got, err := u.Unwrap(t.Context(), "org_a", 3, blob)
	if err != nil || !got.Equal(key) {
		t.Fatalf("Unwrap(own context) = %v", err)
	}
	for _, tc := range []struct {
		name    string
		tenant  string
		version int
	}{
		{"another tenant", "org_b", 3},
		{"an older version", "org_a", 2},
		{"a newer version", "org_a", 4},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := u.Unwrap(t.Context(), tc.tenant, tc.version, blob)
			if err == nil {
				t.Fatal("blob opened under a foreign encryption context")
			}
			if apperr.CodeOf(err) != apperr.Internal {
				t.Errorf("code = %s, want internal (tampering), error %v", apperr.CodeOf(err), err)
			}
			if strings.Contains(err.Error(), key.Reveal()) {
				t.Fatal("error leaks the key")
			}
		})
	}
	t.Run("corrupt blob", func(t *testing.T) {
		bad := append([]byte(nil), blob...)
		bad[len(bad)-1] ^= 0xff
		if _, err := u.Unwrap(t.Context(), "org_a", 3, bad); err == nil {
			t.Fatal("corrupt blob decrypted")
		}
	})
}

func TestContext(t *testing.T) {
	got := keywrap.Context("org_x", 12)
	if got["tenantId"] != "org_x" || got["keyVersion"] != "12" || got["purpose"] != keywrap.Purpose || len(got) != 3 {
		t.Fatalf("Context = %v", got)
	}
}
