package store_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

// A claim link is spent only while its organization is active at the link's key
// version, in the same transaction: a reset that starts (or replaces the key) between
// the claim's checks and its spend leaves the link unspent and the old key unsent.
func TestConsumeClaimChecksTheOrganization(t *testing.T) {
	env := testenv.Get(t)
	st := store.New(dynamodb.NewFromConfig(env.AWSConfig), env.NewTable(t))
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Second)
	org := tenant.Org{ID: testenv.UniqueName("org"), Name: "Acme", Status: tenant.Active, KeyVersion: 2, WrappedKey: []byte{1}, CreatedAt: now}
	if err := st.PutOrg(ctx, org); err != nil {
		t.Fatal(err)
	}
	claim := func(name string) string {
		c := store.Claim{Hash: testenv.UniqueName(name), TenantID: org.ID, UserID: "u1", SentBy: "a1", KeyVersion: 2, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
		if err := st.PutClaim(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c.Hash
	}

	// Another key version: superseded, and the link is not spent.
	old := claim("old")
	if _, err := st.ConsumeClaim(ctx, old, org.ID, 1, now); apperr.ReasonOf(err) != store.ReasonClaimSuperseded {
		t.Fatalf("older key version: %v, want claim_superseded", err)
	}
	if c, err := st.GetClaim(ctx, old); err != nil || !c.UsedAt.IsZero() {
		t.Fatalf("a refused spend marked the link used: %+v %v", c, err)
	}

	// Concurrent openings of one link, all in the same instant (a clock's resolution
	// is coarse; a retry must not take another caller's spend for its own): exactly
	// one spends it.
	h := claim("race")
	var won atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			_, err := st.ConsumeClaim(ctx, h, org.ID, 2, now)
			switch apperr.ReasonOf(err) {
			case "":
				if err == nil {
					won.Add(1)
				}
			case store.ReasonClaimUsed:
			default:
				t.Errorf("concurrent spend: %v", err)
			}
		})
	}
	wg.Wait()
	if won.Load() != 1 {
		t.Fatalf("%d openings spent the link, want 1", won.Load())
	}

	// The organization starts resetting: superseded.
	pending := claim("pending")
	if _, err := st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &st.Table,
		Key:                       store.OrgItemKey(org.ID),
		UpdateExpression:          aws.String("SET #s = :s"),
		ExpressionAttributeNames:  map[string]string{"#s": "status"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":s": &ddbtypes.AttributeValueMemberS{Value: string(tenant.Resetting)}},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.ConsumeClaim(ctx, pending, org.ID, 2, now); apperr.ReasonOf(err) != store.ReasonClaimSuperseded {
		t.Fatalf("organization resetting: %v, want claim_superseded", err)
	}
	// Unknown link.
	if _, err := st.ConsumeClaim(ctx, "no-such-hash", org.ID, 2, now); apperr.CodeOf(err) != apperr.NotFound {
		t.Fatalf("unknown link: %v, want not_found", err)
	}
}
