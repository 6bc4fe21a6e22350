package store

import (
	"context"
	"crypto/rand"
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/tenant"
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
	// Attempts counts spends tried by signed-in users other than UserID; at
	// MaxClaimAttempts the link is revoked.
	Attempts  int
	RevokedAt time.Time // zero while not revoked
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
	Attempts   int    `dynamodbav:"attempts,omitempty"`
	RevokedAt  string `dynamodbav:"revokedAt,omitempty"`
	// SpendID is the random id of the call that spent the link: a retried spend whose
	// first answer was lost knows its own spend by it. The time cannot tell: two
	// callers may spend in the same instant.
	SpendID string `dynamodbav:"spendId,omitempty"`
	TTL     int64  `dynamodbav:"ttl"`
}

func (it claimItem) claim(hash string) Claim {
	return Claim{
		Hash: hash, TenantID: it.TenantID, UserID: it.UserID, SentBy: it.SentBy, KeyVersion: it.KeyVersion,
		CreatedAt: parseTime(it.CreatedAt), ExpiresAt: parseTime(it.ExpiresAt), UsedAt: parseTime(it.UsedAt),
		Attempts: it.Attempts, RevokedAt: parseTime(it.RevokedAt),
	}
}

// claimAV is a new claim link's item: listed under its tenant by expiry, removed by
// DynamoDB's TTL some time after it expires.
func claimAV(c Claim) (map[string]ddbtypes.AttributeValue, error) {
	return attributevalue.MarshalMap(claimItem{
		PK: claimPK(c.Hash), SK: claimSK, Kind: "claim",
		GSI1PK: ClaimsIndexKey(c.TenantID), GSI1SK: formatTime(c.ExpiresAt),
		TenantID: c.TenantID, UserID: c.UserID, SentBy: c.SentBy, KeyVersion: c.KeyVersion,
		CreatedAt: formatTime(c.CreatedAt), ExpiresAt: formatTime(c.ExpiresAt), TTL: c.ExpiresAt.Unix(),
	})
}

// PutClaim stores a new claim link. DynamoDB's TTL removes it some time after it
// expires; until then ConsumeClaim checks the expiry itself.
func (st *Store) PutClaim(ctx context.Context, c Claim) (err error) {
	defer apperr.Wrap(&err, "store.PutClaim(tenant %q, user %q)", c.TenantID, c.UserID)
	av, err := claimAV(c)
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

// ConsumeClaim marks a claim link used, atomically and only while the link's
// organization is active at the link's key version: one transaction spends the link
// and checks the organization, so a link opened while a reset starts or replaces the
// key never hands out the old key. Of any number of concurrent callers, exactly one
// gets the claim. The others, and every later caller, get conflict (reason
// claim_used) with the claim as it is stored, so they can audit the replay under its
// tenant; a link whose organization moved on gets conflict (reason
// claim_superseded); an unknown hash is not_found. Expiry is the caller's to check.
func (st *Store) ConsumeClaim(ctx context.Context, hash, tenantID string, keyVersion int, now time.Time) (_ Claim, err error) {
	defer apperr.Wrap(&err, "store.ConsumeClaim")
	return st.consumeClaim(ctx, hash, tenantID, "", keyVersion, now)
}

// consumeClaim is ConsumeClaim; with a userID, the transaction also checks that the
// link is that user's live link (SpendClaim).
func (st *Store) consumeClaim(ctx context.Context, hash, tenantID, userID string, keyVersion int, now time.Time) (Claim, error) {
	spendID := rand.Text()
	items := []ddbtypes.TransactWriteItem{
		{Update: &ddbtypes.Update{
			TableName:                           &st.Table,
			Key:                                 key(claimPK(hash), claimSK),
			UpdateExpression:                    aws.String("SET usedAt = :now, spendId = :spend"),
			ConditionExpression:                 aws.String("attribute_exists(pk) AND attribute_not_exists(usedAt) AND attribute_not_exists(revokedAt)"),
			ExpressionAttributeValues:           map[string]ddbtypes.AttributeValue{":now": s(formatTime(now)), ":spend": s(spendID)},
			ReturnValuesOnConditionCheckFailure: ddbtypes.ReturnValuesOnConditionCheckFailureAllOld,
		}},
		{ConditionCheck: &ddbtypes.ConditionCheck{
			TableName:                &st.Table,
			Key:                      key(tenantPK(tenantID), orgSK),
			ConditionExpression:      aws.String("#status = :active AND keyVersion = :v"),
			ExpressionAttributeNames: map[string]string{"#status": "status"},
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
				":active": s(string(tenant.Active)),
				":v":      n(int64(keyVersion)),
			},
		}},
	}
	if userID != "" {
		items = append(items, liveClaimCheck(&st.Table, tenantID, userID, hash))
	}
	_, err := st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
	if err == nil {
		return Claim{Hash: hash, TenantID: tenantID, UserID: userID, KeyVersion: keyVersion, UsedAt: now}, nil
	}
	var canceled *ddbtypes.TransactionCanceledException
	if !errors.As(err, &canceled) || len(canceled.CancellationReasons) != len(items) {
		return Claim{}, unavailable(err)
	}
	spend, org := canceled.CancellationReasons[0], canceled.CancellationReasons[1]
	if aws.ToString(spend.Code) == "ConditionalCheckFailed" {
		if len(spend.Item) == 0 {
			return Claim{}, apperr.New(apperr.NotFound, "", "unknown claim")
		}
		var it claimItem
		if err := attributevalue.UnmarshalMap(spend.Item, &it); err != nil {
			return Claim{}, err
		}
		if it.SpendID == spendID {
			// This call's own spend: the SDK retried it after its answer was lost.
			return it.claim(hash), nil
		}
		if it.RevokedAt != "" {
			return it.claim(hash), apperr.New(apperr.Conflict, ReasonClaimRevoked, "claim revoked")
		}
		return it.claim(hash), apperr.New(apperr.Conflict, ReasonClaimUsed, "claim already used")
	}
	if aws.ToString(org.Code) == "ConditionalCheckFailed" {
		return Claim{}, apperr.New(apperr.Conflict, ReasonClaimSuperseded, "the organization's key changed or is being reset")
	}
	if len(items) > 2 && aws.ToString(canceled.CancellationReasons[2].Code) == "ConditionalCheckFailed" {
		return Claim{}, apperr.New(apperr.Conflict, ReasonClaimReplaced, "a newer link was sent to the user, or the user is gone")
	}
	return Claim{}, unavailable(err)
}

// TenantClaims lists a tenant's stored claim links (gsi1), used or not.
func (st *Store) TenantClaims(ctx context.Context, tenantID string) (_ []Claim, err error) {
	defer apperr.Wrap(&err, "store.TenantClaims(%q)", tenantID)
	var out []Claim
	err = queryEach(ctx, st, &dynamodb.QueryInput{
		IndexName:                 aws.String(GSI1),
		KeyConditionExpression:    aws.String("gsi1pk = :p"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(ClaimsIndexKey(tenantID))},
	}, func(it claimItem) bool {
		out = append(out, it.claim(claimHash(it.PK)))
		return true
	})
	return out, err
}
