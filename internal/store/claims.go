package store

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
)

// Claim is a pending one-time claim link. Only the token's hash is stored.
type Claim struct {
	Hash       string
	TenantID   string
	UserID     string // the user the link was sent to
	SentBy     string // the admin who sent it
	KeyVersion int
	CreatedAt  time.Time
	ExpiresAt  time.Time
	UsedAt     time.Time // zero while unused
}

type claimItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	Kind       string `dynamodbav:"kind"`
	GSI1PK     string `dynamodbav:"gsi1pk"`
	GSI1SK     string `dynamodbav:"gsi1sk"`
	TenantID   string `dynamodbav:"tenantId"`
	UserID     string `dynamodbav:"userId"`
	SentBy     string `dynamodbav:"sentBy"`
	KeyVersion int    `dynamodbav:"keyVersion"`
	CreatedAt  string `dynamodbav:"createdAt"`
	ExpiresAt  string `dynamodbav:"expiresAt"`
	UsedAt     string `dynamodbav:"usedAt,omitempty"`
	TTL        int64  `dynamodbav:"ttl"`
}

const claimSK = "CLAIM"

func claimPK(hash string) string { return "CLAIM#" + hash }

// ClaimsIndexKey is the gsi1 partition that lists a tenant's claim links.
func ClaimsIndexKey(tenantID string) string { return "CLAIMS#" + tenantID }

func (it claimItem) claim(hash string) Claim {
	return Claim{
		Hash: hash, TenantID: it.TenantID, UserID: it.UserID, SentBy: it.SentBy, KeyVersion: it.KeyVersion,
		CreatedAt: parseTime(it.CreatedAt), ExpiresAt: parseTime(it.ExpiresAt), UsedAt: parseTime(it.UsedAt),
	}
}

// PutClaim stores a new claim link. DynamoDB's TTL removes it some time after it
// expires; until then ConsumeClaim checks the expiry itself.
func (st *Store) PutClaim(ctx context.Context, c Claim) (err error) {
	defer apperr.Wrap(&err, "store.PutClaim(tenant %q, user %q)", c.TenantID, c.UserID)
	av, err := attributevalue.MarshalMap(claimItem{
		PK: claimPK(c.Hash), SK: claimSK, Kind: "claim",
		GSI1PK: ClaimsIndexKey(c.TenantID), GSI1SK: formatTime(c.ExpiresAt),
		TenantID: c.TenantID, UserID: c.UserID, SentBy: c.SentBy, KeyVersion: c.KeyVersion,
		CreatedAt: formatTime(c.CreatedAt), ExpiresAt: formatTime(c.ExpiresAt), TTL: c.ExpiresAt.Unix(),
	})
	if err != nil {
		return err
	}
	_, err = st.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName: &st.Table, Item: av, ConditionExpression: aws.String("attribute_not_exists(pk)"),
		ReturnValuesOnConditionCheckFailure: ddbtypes.ReturnValuesOnConditionCheckFailureAllOld,
	})
	var cond *ddbtypes.ConditionalCheckFailedException
	if asCond(err, &cond) {
		// The SDK retries a write whose answer was lost; the retry then finds the item
		// the first attempt wrote. That is this claim, not a collision.
		var it claimItem
		if attributevalue.UnmarshalMap(cond.Item, &it) == nil && it.TenantID == c.TenantID &&
			it.UserID == c.UserID && it.CreatedAt == formatTime(c.CreatedAt) {
			return nil
		}
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// ConsumeClaim marks a claim link used, atomically: of any number of concurrent
// callers, exactly one gets the claim. The others, and every later caller, get
// conflict with the claim as it is stored (so they can audit the replay under its
// tenant); an unknown hash is not_found. Expiry and key version are the caller's to
// check on the returned claim.
func (st *Store) ConsumeClaim(ctx context.Context, hash string, now time.Time) (_ Claim, err error) {
	defer apperr.Wrap(&err, "store.ConsumeClaim")
	out, err := st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                           &st.Table,
		Key:                                 key(claimPK(hash), claimSK),
		UpdateExpression:                    aws.String("SET usedAt = :now"),
		ConditionExpression:                 aws.String("attribute_exists(pk) AND attribute_not_exists(usedAt)"),
		ExpressionAttributeValues:           map[string]ddbtypes.AttributeValue{":now": s(formatTime(now))},
		ReturnValues:                        ddbtypes.ReturnValueAllNew,
		ReturnValuesOnConditionCheckFailure: ddbtypes.ReturnValuesOnConditionCheckFailureAllOld,
	})
	if err == nil {
		var it claimItem
		if err := attributevalue.UnmarshalMap(out.Attributes, &it); err != nil {
			return Claim{}, err
		}
		return it.claim(hash), nil
	}
	var cond *ddbtypes.ConditionalCheckFailedException
	if asCond(err, &cond) {
		if len(cond.Item) == 0 {
			return Claim{}, apperr.New(apperr.NotFound, "", "unknown claim")
		}
		var it claimItem
		if err := attributevalue.UnmarshalMap(cond.Item, &it); err != nil {
			return Claim{}, err
		}
		if it.UsedAt == formatTime(now) {
			// This call's own spend: the SDK retried it after its answer was lost.
			return it.claim(hash), nil
		}
		return it.claim(hash), apperr.New(apperr.Conflict, "claim_used", "claim already used")
	}
	return Claim{}, unavailable(err)
}

// TenantClaims lists a tenant's stored claim links (gsi1), used or not.
func (st *Store) TenantClaims(ctx context.Context, tenantID string) (_ []Claim, err error) {
	defer apperr.Wrap(&err, "store.TenantClaims(%q)", tenantID)
	var out []Claim
	p := dynamodb.NewQueryPaginator(st.DB, &dynamodb.QueryInput{
		TableName:                 &st.Table,
		IndexName:                 aws.String(GSI1),
		KeyConditionExpression:    aws.String("gsi1pk = :p"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(ClaimsIndexKey(tenantID))},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, unavailable(err)
		}
		for _, item := range page.Items {
			var it claimItem
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return nil, err
			}
			pk, _ := item["pk"].(*ddbtypes.AttributeValueMemberS)
			hash := ""
			if pk != nil {
				hash = pk.Value[len("CLAIM#"):]
			}
			out = append(out, it.claim(hash))
		}
	}
	return out, nil
}
