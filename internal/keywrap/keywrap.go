// Package keywrap wraps and unwraps organization keys with AWS KMS. Every ciphertext is
// bound by its encryption context to one tenant and one key version, so a wrapped key
// copied onto another tenant, or onto another version of the same tenant, does not
// decrypt.
package keywrap

import (
	"context"
	"errors"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/orgkey"
)

// Purpose is the encryption context's purpose value; key policies may require it.
const Purpose = "org-key"

// Encrypter is the part of the KMS client that wraps.
type Encrypter interface {
	Encrypt(ctx context.Context, in *kms.EncryptInput, optFns ...func(*kms.Options)) (*kms.EncryptOutput, error)
}

// Decrypter is the part of the KMS client that unwraps.
type Decrypter interface {
	Decrypt(ctx context.Context, in *kms.DecryptInput, optFns ...func(*kms.Options)) (*kms.DecryptOutput, error)
}

var (
	_ Encrypter = (*kms.Client)(nil)
	_ Decrypter = (*kms.Client)(nil)
)

// Context returns the encryption context for a tenant's key version.
func Context(tenantID string, version int) map[string]string {
	return map[string]string{
		"tenantId":   tenantID,
		"keyVersion": strconv.Itoa(version),
		"purpose":    Purpose,
	}
}

// Wrapper wraps keys. support-reset holds only a Wrapper: it can replace a key, never
// read one.
type Wrapper struct {
	KMS   Encrypter
	KeyID string // key ARN, id or alias
}

// Wrap encrypts k for the tenant's key version.
func (w *Wrapper) Wrap(ctx context.Context, tenantID string, version int, k orgkey.Key) (_ []byte, err error) {
	defer apperr.Wrap(&err, "keywrap.Wrap(tenant %q, version %d)", tenantID, version)
	out, err := w.KMS.Encrypt(ctx, &kms.EncryptInput{
		KeyId:             &w.KeyID,
		Plaintext:         []byte(k.Reveal()),
		EncryptionContext: Context(tenantID, version),
	})
	if err != nil {
		return nil, apperr.Wrapf(apperr.Unavailable, err, "key service unavailable")
	}
	return out.CiphertextBlob, nil
}

// Unwrapper unwraps keys.
type Unwrapper struct {
	KMS   Decrypter
	KeyID string
}

// Unwrap decrypts a tenant's wrapped key of the given version. A blob that belongs to
// another tenant or version fails with an internal error (it means the table was
// tampered with or corrupted); a KMS outage is unavailable.
func (u *Unwrapper) Unwrap(ctx context.Context, tenantID string, version int, blob []byte) (_ orgkey.Key, err error) {
	defer apperr.Wrap(&err, "keywrap.Unwrap(tenant %q, version %d)", tenantID, version)
	out, err := u.KMS.Decrypt(ctx, &kms.DecryptInput{
		KeyId:             &u.KeyID,
		CiphertextBlob:    blob,
		EncryptionContext: Context(tenantID, version),
	})
	if err != nil {
		var bad *kmstypes.InvalidCiphertextException
		var denied *kmstypes.IncorrectKeyException
		if errors.As(err, &bad) || errors.As(err, &denied) {
			return orgkey.Key{}, apperr.Wrapf(apperr.Internal, err, "stored key does not match its organization")
		}
		return orgkey.Key{}, apperr.Wrapf(apperr.Unavailable, err, "key service unavailable")
	}
	k, err := orgkey.Parse(string(out.Plaintext))
	clear(out.Plaintext)
	if err != nil {
		return orgkey.Key{}, apperr.Wrapf(apperr.Internal, err, "stored key is malformed")
	}
	return k, nil
}
