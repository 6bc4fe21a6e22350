package testenv_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/mspvault/orgkey/internal/testing/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestTableFromTemplate(t *testing.T) {
	env := testenv.Get(t)
	db := dynamodb.NewFromConfig(env.AWSConfig)
	out, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(env.TableName)})
	if err != nil {
		t.Fatalf("DescribeTable: %v", err)
	}
	if got := keyNames(out.Table.KeySchema); !slices.Equal(got, []string{"pk", "sk"}) {
		t.Errorf("table key = %v, want [pk sk]", got)
	}
	want := map[string][]string{"gsi1": {"gsi1pk", "gsi1sk"}, "gsi2": {"gsi2pk", "gsi2sk"}}
	if len(out.Table.GlobalSecondaryIndexes) != len(want) {
		t.Errorf("got %d GSIs, want %d", len(out.Table.GlobalSecondaryIndexes), len(want))
	}
	for _, g := range out.Table.GlobalSecondaryIndexes {
		name := aws.ToString(g.IndexName)
		if got := keyNames(g.KeySchema); !slices.Equal(got, want[name]) {
			t.Errorf("GSI %s key = %v, want %v", name, got, want[name])
		}
		if g.Projection == nil || g.Projection.ProjectionType != ddbtypes.ProjectionTypeAll {
			t.Errorf("GSI %s projection = %+v, want ALL", name, g.Projection)
		}
	}

	ttl, err := db.DescribeTimeToLive(t.Context(), &dynamodb.DescribeTimeToLiveInput{TableName: aws.String(env.TableName)})
	if err != nil {
		t.Fatalf("DescribeTimeToLive: %v", err)
	}
	if d := ttl.TimeToLiveDescription; d == nil || aws.ToString(d.AttributeName) != "ttl" || d.TimeToLiveStatus != ddbtypes.TimeToLiveStatusEnabled {
		t.Errorf("TTL = %+v, want ttl enabled", d)
	}
}

func TestNewTable(t *testing.T) {
	env := testenv.Get(t)
	name := env.NewTable(t)
	if name == env.TableName {
		t.Fatalf("NewTable returned the shared table")
	}
	db := dynamodb.NewFromConfig(env.AWSConfig)
	if _, err := db.DescribeTable(t.Context(), &dynamodb.DescribeTableInput{TableName: aws.String(name)}); err != nil {
		t.Fatalf("DescribeTable(%q): %v", name, err)
	}
}

func TestKMSEncryptionContext(t *testing.T) {
	env := testenv.Get(t)
	c := kms.NewFromConfig(env.AWSConfig)
	ctx := t.Context()
	secret := []byte("not a real org key")
	ec := map[string]string{"tenantId": "t-1", "keyVersion": "1", "purpose": "org-key"}

	for _, keyID := range []string{env.KMSKeyID, "alias/" + env.TableName} {
		enc, err := c.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(keyID), Plaintext: secret, EncryptionContext: ec})
		if err != nil {
			t.Fatalf("Encrypt with %q: %v", keyID, err)
		}
		dec, err := c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: ec})
		if err != nil {
			t.Fatalf("Decrypt: %v", err)
		}
		if !bytes.Equal(dec.Plaintext, secret) {
			t.Fatalf("Decrypt = %q, want %q", dec.Plaintext, secret)
		}

		other := map[string]string{"tenantId": "t-2", "keyVersion": "1", "purpose": "org-key"}
		_, err = c.Decrypt(ctx, &kms.DecryptInput{CiphertextBlob: enc.CiphertextBlob, EncryptionContext: other})
		var invalid *kmstypes.InvalidCiphertextException
		if !errors.As(err, &invalid) {
			t.Errorf("Decrypt under another tenant's context: err = %v, want InvalidCiphertextException", err)
		}
	}
}

func TestSESMail(t *testing.T) {
	env := testenv.Get(t)
	ctx := context.Background()
	to := testenv.UniqueName("user") + "@example.test"
	out, err := sesv2.NewFromConfig(env.AWSConfig).SendEmail(ctx, &sesv2.SendEmailInput{
		FromEmailAddress: aws.String("no-reply@orgkey.local"),
		Destination:      &sestypes.Destination{ToAddresses: []string{to}},
		Content: &sestypes.EmailContent{Simple: &sestypes.Message{
			Subject: &sestypes.Content{Data: aws.String("Activation du compte terminée")},
			Body: &sestypes.Body{
				Text: &sestypes.Content{Data: aws.String("bonjour")},
				Html: &sestypes.Content{Data: aws.String("<p>bonjour</p>")},
			},
		}},
	})
	if err != nil {
		t.Fatalf("SendEmail: %v", err)
	}

	got, err := env.EmailsTo(ctx, to)
	if err != nil {
		t.Fatalf("EmailsTo: %v", err)
	}
	if len(got) != 1 {
		t.Fatalf("got %d mails to %s, want 1", len(got), to)
	}
	m := got[0]
	if m.MessageID != aws.ToString(out.MessageId) || m.From != "no-reply@orgkey.local" ||
		m.Subject != "Activation du compte terminée" || m.Text != "bonjour" || m.HTML != "<p>bonjour</p>" ||
		!slices.Equal(m.To, []string{to}) || m.At.IsZero() {
		t.Errorf("mail = %+v", m)
	}

	all, err := env.Emails(ctx)
	if err != nil || len(all) == 0 {
		t.Errorf("Emails = %d mails, %v", len(all), err)
	}
}

func keyNames(ks []ddbtypes.KeySchemaElement) []string {
	// Hash key first, then range key, whatever order the API returns.
	out := make([]string, 2)
	for _, k := range ks {
		if k.KeyType == ddbtypes.KeyTypeHash {
			out[0] = aws.ToString(k.AttributeName)
		} else {
			out[1] = aws.ToString(k.AttributeName)
		}
	}
	return out
}
