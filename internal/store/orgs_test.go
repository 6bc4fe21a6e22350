package store_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
	"github.com/mspvault/orgkey/internal/testing/fixtures"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

// slowReader is a DynamoDB whose first BatchGetItem answers nothing and leaves every
// key unprocessed, as a throttled table may.
type slowReader struct {
	store.DB
	calls atomic.Int64
}

func (s *slowReader) BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error) {
	if s.calls.Add(1) == 1 {
		return &dynamodb.BatchGetItemOutput{UnprocessedKeys: in.RequestItems, Responses: map[string][]map[string]ddbtypes.AttributeValue{}}, nil
	}
	return s.DB.BatchGetItem(ctx, in, opts...)
}

func TestGetUserAndOrg(t *testing.T) {
	env := testenv.Get(t)
	db := &slowReader{DB: dynamodb.NewFromConfig(env.AWSConfig)}
	st := store.New(db, env.TableName)
	sd := fixtures.New(st, &keywrap.Wrapper{KMS: kms.NewFromConfig(env.AWSConfig), KeyID: env.KMSKeyID})
	org, admin, _, err := sd.Organization(t.Context(), "Acme", tenant.User{Email: testenv.UniqueName("a") + "@example.test", Name: "A"})
	if err != nil {
		t.Fatal(err)
	}
	u, o, err := st.GetUserAndOrg(t.Context(), org.ID, admin.ID)
	if err != nil || u.ID != admin.ID || u.Email != admin.Email || o.ID != org.ID || o.Name != "Acme" || o.KeyVersion != org.KeyVersion {
		t.Fatalf("GetUserAndOrg = %+v, %+v, %v", u, o, err)
	}
	if db.calls.Load() != 2 {
		t.Errorf("%d calls: the unprocessed keys were not asked again", db.calls.Load())
	}
	gone, goneAdmin, _, err := sd.Organization(t.Context(), "Gone", tenant.User{Email: testenv.UniqueName("g") + "@example.test", Name: "G"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.DeleteItem(t.Context(), &dynamodb.DeleteItemInput{TableName: &env.TableName, Key: store.OrgItemKey(gone.ID)}); err != nil {
		t.Fatal(err)
	}
	// Whichever exists comes back beside the not_found, so that the claim flow can
	// tell an organization gone from a user gone in the one read.
	for _, tc := range []struct{ name, tid, uid, wantUser, wantOrg string }{
		{"no user", org.ID, "usr_nobody", "", org.ID},
		{"no organization", "org_none", "usr_nobody", "", ""},
		{"organization deleted, user left", gone.ID, goneAdmin.ID, goneAdmin.ID, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, o, err := st.GetUserAndOrg(t.Context(), tc.tid, tc.uid)
			if apperr.CodeOf(err) != apperr.NotFound || u.ID != tc.wantUser || o.ID != tc.wantOrg {
				t.Errorf("GetUserAndOrg = %+v, %+v, %v; want user %q, org %q, not_found", u, o, err, tc.wantUser, tc.wantOrg)
			}
		})
	}
}
