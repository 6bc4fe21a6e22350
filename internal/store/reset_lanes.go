package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
)

// What a support reset deletes, lane by lane: every vault item (one lane per shard),
// every user but the kept admin, every site and every claim link. The engine that
// deletes them is reset_delete.go; the reset's states are reset.go.

// CountTenantData counts what a reset of the tenant would delete: every vault item,
// every user but keepUserID, every site and every claim link.
func (st *Store) CountTenantData(ctx context.Context, tenantID, keepUserID string) (_ ResetCounts, err error) {
	defer apperr.Wrap(&err, "store.CountTenantData(%q)", tenantID)
	var c ResetCounts
	var wg sync.WaitGroup
	var errs [4]error
	wg.Go(func() { c.Passwords, errs[0] = st.CountVaultItems(ctx, tenantID) })
	wg.Go(func() {
		c.Users, errs[1] = st.countQuery(ctx, &dynamodb.QueryInput{
			KeyConditionExpression:    aws.String("pk = :p AND begins_with(sk, :u)"),
			FilterExpression:          aws.String("userId <> :keep"), // a key attribute cannot be filtered on
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(tenantPK(tenantID)), ":u": s(userPrefix), ":keep": s(keepUserID)},
			ConsistentRead:            aws.Bool(true),
		})
	})
	wg.Go(func() {
		c.Sites, errs[2] = st.countQuery(ctx, &dynamodb.QueryInput{
			KeyConditionExpression:    aws.String("pk = :p AND begins_with(sk, :s)"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(tenantPK(tenantID)), ":s": s(sitePrefix)},
			ConsistentRead:            aws.Bool(true),
		})
	})
	wg.Go(func() {
		c.ClaimLinks, errs[3] = st.countQuery(ctx, &dynamodb.QueryInput{
			IndexName:                 aws.String(GSI1),
			KeyConditionExpression:    aws.String("gsi1pk = :p"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(ClaimsIndexKey(tenantID))},
		})
	})
	wg.Wait()
	return c, errors.Join(errs[:]...)
}

// A lane is one stream of keys to delete with its own checkpoint: one per vault
// shard, plus users, sites and claim links. Lanes run in parallel.
type lane struct {
	name  string
	kind  string // "passwords", "users", "sites", "claimLinks"
	query dynamodb.QueryInput
	// ref turns a queried item into the compact reference the checkpoint stores
	// (ok false: keep the item); key turns a reference back into the item's key.
	ref func(item map[string]ddbtypes.AttributeValue) (string, bool)
	key func(ref string) map[string]ddbtypes.AttributeValue
}

func keysOnly(in dynamodb.QueryInput) dynamodb.QueryInput {
	in.ProjectionExpression = aws.String("#pk, #sk")
	in.ExpressionAttributeNames = map[string]string{"#pk": "pk", "#sk": "sk"}
	return in
}

func attrS(item map[string]ddbtypes.AttributeValue, name string) string {
	v, _ := item[name].(*ddbtypes.AttributeValueMemberS)
	if v == nil {
		return ""
	}
	return v.Value
}

// resetLanes lists the lanes of a tenant's reset. Within a fixed partition key a
// checkpoint stores only sort keys; claim links (one partition each) store both.
func resetLanes(tenantID, keepUserID string) []lane {
	var lanes []lane
	bySK := func(pk string) func(string) map[string]ddbtypes.AttributeValue {
		return func(ref string) map[string]ddbtypes.AttributeValue { return key(pk, ref) }
	}
	for shard := range VaultShards {
		pk := VaultPK(tenantID, shard)
		lanes = append(lanes, lane{
			name: fmt.Sprintf("vault-%02d", shard), kind: "passwords",
			query: keysOnly(dynamodb.QueryInput{
				KeyConditionExpression:    aws.String("#pk = :p"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(pk)},
				ConsistentRead:            aws.Bool(true),
			}),
			ref: func(item map[string]ddbtypes.AttributeValue) (string, bool) { return attrS(item, "sk"), true },
			key: bySK(pk),
		})
	}
	tpk := tenantPK(tenantID)
	keep := userSK(keepUserID)
	for _, l := range []struct{ name, kind, prefix string }{{"users", "users", userPrefix}, {"sites", "sites", sitePrefix}} {
		lanes = append(lanes, lane{
			name: l.name, kind: l.kind,
			query: keysOnly(dynamodb.QueryInput{
				KeyConditionExpression:    aws.String("#pk = :p AND begins_with(#sk, :prefix)"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(tpk), ":prefix": s(l.prefix)},
				ConsistentRead:            aws.Bool(true),
			}),
			ref: func(item map[string]ddbtypes.AttributeValue) (string, bool) {
				sk := attrS(item, "sk")
				return sk, sk != keep
			},
			key: bySK(tpk),
		})
	}
	lanes = append(lanes, lane{
		name: "claims", kind: "claimLinks",
		query: keysOnly(dynamodb.QueryInput{
			IndexName:                 aws.String(GSI1),
			KeyConditionExpression:    aws.String("gsi1pk = :p"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(ClaimsIndexKey(tenantID))},
		}),
		ref: func(item map[string]ddbtypes.AttributeValue) (string, bool) {
			return attrS(item, "pk") + "\n" + attrS(item, "sk"), true
		},
		key: func(ref string) map[string]ddbtypes.AttributeValue {
			pk, sk, _ := strings.Cut(ref, "\n")
			return key(pk, sk)
		},
	})
	return lanes
}
