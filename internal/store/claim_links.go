package store

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/tenant"
)

// One live link per user: the target user's item names the hash of the last link sent
// to them (liveClaim). A new send overwrites it, so every earlier unspent link of that
// user stops being spendable; SpendClaim checks it in the spending transaction, and a
// user deleted since the send fails the same check.

// liveClaimAttr is the user item's attribute naming the user's live link.
const liveClaimAttr = "liveClaim"

// MaxClaimAttempts is how many spends by signed-in users other than the link's target a
// link survives; the one that reaches it revokes the link.
const MaxClaimAttempts = 5

// PutLiveClaim stores a new claim link and makes it its user's one live link, in one
// transaction: the user must still exist. The transaction's client token is derived
// from the hash, so the SDK's retry of a write whose answer was lost is a no-op, not a
// collision.
func (st *Store) PutLiveClaim(ctx context.Context, c Claim) (err error) {
	defer apperr.Wrap(&err, "store.PutLiveClaim(tenant %q, user %q)", c.TenantID, c.UserID)
	av, err := claimAV(c)
	if err != nil {
		return err
	}
	_, err = st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		ClientRequestToken: aws.String(c.Hash[:min(len(c.Hash), 36)]),
		TransactItems: []ddbtypes.TransactWriteItem{
			{Put: &ddbtypes.Put{TableName: &st.Table, Item: av, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
			{Update: &ddbtypes.Update{
				TableName:                 &st.Table,
				Key:                       key(tenantPK(c.TenantID), userSK(c.UserID)),
				UpdateExpression:          aws.String("SET #live = :h"),
				ConditionExpression:       aws.String("attribute_exists(pk)"),
				ExpressionAttributeNames:  map[string]string{"#live": liveClaimAttr},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":h": s(c.Hash)},
			}},
		},
	})
	var canceled *ddbtypes.TransactionCanceledException
	if errors.As(err, &canceled) && len(canceled.CancellationReasons) == 2 &&
		aws.ToString(canceled.CancellationReasons[1].Code) == "ConditionalCheckFailed" {
		return apperr.New(apperr.NotFound, "", "user not found")
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// liveClaimCheck is the spending transaction's check that hash is the user's live
// link. A user item without liveClaim (links sent before it existed) accepts any.
func liveClaimCheck(table *string, tenantID, userID, hash string) ddbtypes.TransactWriteItem {
	return ddbtypes.TransactWriteItem{ConditionCheck: &ddbtypes.ConditionCheck{
		TableName:                 table,
		Key:                       key(tenantPK(tenantID), userSK(userID)),
		ConditionExpression:       aws.String("attribute_exists(pk) AND (attribute_not_exists(#live) OR #live = :h)"),
		ExpressionAttributeNames:  map[string]string{"#live": liveClaimAttr},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":h": s(hash)},
	}}
}

// GetClaimParties reads a link's target user and organization in one BatchGetItem,
// as GetUserAndOrg, and the hash of the user's live link ("" when none is recorded).
func (st *Store) GetClaimParties(ctx context.Context, tenantID, userID string) (_ tenant.User, _ tenant.Org, live string, err error) {
	defer apperr.Wrap(&err, "store.GetClaimParties(%q, %q)", tenantID, userID)
	userAV, orgAV, err := st.batchUserAndOrg(ctx, tenantID, userID)
	if err != nil {
		return tenant.User{}, tenant.Org{}, "", err
	}
	u, o, err := decodeUserAndOrg(tenantID, userID, userAV, orgAV)
	return u, o, attrS(userAV, liveClaimAttr), err
}

// SpendClaim is ConsumeClaim for a link's own user: the same transaction also checks
// that the link is still the user's live link (no newer link was sent) and that the
// user still exists; otherwise conflict, reason claim_replaced.
func (st *Store) SpendClaim(ctx context.Context, hash, tenantID, userID string, keyVersion int, now time.Time) (_ Claim, err error) {
	defer apperr.Wrap(&err, "store.SpendClaim(%q, %q)", tenantID, userID)
	if userID == "" {
		return Claim{}, apperr.New(apperr.Invalid, "", "no user")
	}
	return st.consumeClaim(ctx, hash, tenantID, userID, keyVersion, now)
}

// AddClaimAttempt counts one spend tried by a user other than the link's target, on a
// live link only, and returns the count. A link that is spent, revoked or gone is not
// counted: conflict.
func (st *Store) AddClaimAttempt(ctx context.Context, hash string) (_ int, err error) {
	defer apperr.Wrap(&err, "store.AddClaimAttempt")
	out, err := st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &st.Table,
		Key:                       key(claimPK(hash), claimSK),
		UpdateExpression:          aws.String("ADD attempts :one"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND attribute_not_exists(usedAt) AND attribute_not_exists(revokedAt)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":one": n(1)},
		ReturnValues:              ddbtypes.ReturnValueUpdatedNew,
	})
	if err != nil {
		if err := unavailable(err); !isConditionFailed(err) {
			return 0, err
		}
		return 0, apperr.New(apperr.Conflict, "", "claim not live")
	}
	v, _ := out.Attributes["attempts"].(*ddbtypes.AttributeValueMemberN)
	if v == nil {
		return 0, apperr.New(apperr.Internal, "", "attempts missing from the update's answer")
	}
	return strconv.Atoi(v.Value)
}

// RevokeClaim kills a live link for good. Of concurrent callers exactly one succeeds;
// the others, and any call on a spent or revoked link, get conflict.
func (st *Store) RevokeClaim(ctx context.Context, hash string, now time.Time) (err error) {
	defer apperr.Wrap(&err, "store.RevokeClaim")
	ok, err := st.updateIf(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(claimPK(hash), claimSK),
		UpdateExpression:          aws.String("SET revokedAt = :now"),
		ConditionExpression:       aws.String("attribute_exists(pk) AND attribute_not_exists(usedAt) AND attribute_not_exists(revokedAt)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":now": s(formatTime(now))},
	})
	if err != nil {
		return err
	}
	if !ok {
		return apperr.New(apperr.Conflict, "", "claim not live")
	}
	return nil
}
