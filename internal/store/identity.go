package store

import (
	"context"
	"errors"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/tenant"
)

// One person, one organization. A membership is held by two uniqueness items, one
// per lower-cased email and one per Cognito sub, written in the transaction that
// writes the membership (CreateOrganization, PutUser). A second sign-up of the same
// address (in any case, or after deleting the Cognito account and signing up again)
// or a race of two sign-ups cannot make a second membership: the second transaction
// fails on the item the first wrote. The GSIs cannot do this: an index is eventually
// consistent and takes no conditions.
//
//	pk IDENTITY#EMAIL#<lower email>  sk IDENTITY   sub, tenantId, email
//	pk IDENTITY#SUB#<sub>            sk IDENTITY   sub, tenantId, email

type identityItem struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	Kind     string `dynamodbav:"kind"`
	Sub      string `dynamodbav:"userId"`
	TenantID string `dynamodbav:"tenantId"`
	Email    string `dynamodbav:"email"`
}

// identityPuts are the two uniqueness items of a membership. With sameTenant, an
// item the same organization holds may be replaced (a user rewritten, or invited
// again after a reset); otherwise neither may exist yet (a sign-up).
func (st *Store) identityPuts(u tenant.User, sameTenant bool) ([]ddbtypes.TransactWriteItem, error) {
	email := tenant.NormalizeEmail(u.Email)
	cond := "attribute_not_exists(pk)"
	var values map[string]ddbtypes.AttributeValue
	if sameTenant {
		cond = "attribute_not_exists(pk) OR tenantId = :tid"
		values = map[string]ddbtypes.AttributeValue{":tid": s(u.TenantID)}
	}
	var out []ddbtypes.TransactWriteItem
	for _, pk := range []string{emailIdentityPK(email), subIdentityPK(u.ID)} {
		av, err := attributevalue.MarshalMap(identityItem{PK: pk, SK: identitySK, Kind: "identity", Sub: u.ID, TenantID: u.TenantID, Email: email})
		if err != nil {
			return nil, err
		}
		out = append(out, ddbtypes.TransactWriteItem{Put: &ddbtypes.Put{
			TableName: &st.Table, Item: av, ConditionExpression: aws.String(cond), ExpressionAttributeValues: values,
		}})
	}
	return out, nil
}

// identityConflict reports whether a cancelled transaction failed only on its
// uniqueness items (from index first on), every other item's condition having held:
// the membership is taken, as opposed to an earlier try having written it.
func identityConflict(err error, first int) bool {
	var canceled *ddbtypes.TransactionCanceledException
	if !errors.As(err, &canceled) || len(canceled.CancellationReasons) <= first {
		return false
	}
	taken := false
	for i, r := range canceled.CancellationReasons {
		code := aws.ToString(r.Code)
		switch {
		case i < first && code != "" && code != "None":
			return false
		case i >= first && code == "ConditionalCheckFailed":
			taken = true
		}
	}
	return taken
}

// EmailHolder reads who holds a membership under an email (case-insensitively): one
// strongly consistent GetItem. found is false when nobody does.
func (st *Store) EmailHolder(ctx context.Context, email string) (sub, tenantID string, found bool, err error) {
	defer apperr.Wrap(&err, "store.EmailHolder")
	var it identityItem
	err = st.getItem(ctx, emailIdentityPK(email), identitySK, &it)
	if apperr.CodeOf(err) == apperr.NotFound {
		return "", "", false, nil
	}
	if err != nil {
		return "", "", false, err
	}
	return it.Sub, it.TenantID, true, nil
}

// RefuseSignup records that a confirmed sign-up will not get an organization (its
// email already holds a membership) and takes it off the catch-up index, so that the
// sweep does not retry it forever.
func (st *Store) RefuseSignup(ctx context.Context, sub, reason string) (err error) {
	defer apperr.Wrap(&err, "store.RefuseSignup(%q)", sub)
	_, err = st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &st.Table,
		Key:                      key(signupPK(sub), signupSK),
		UpdateExpression:         aws.String("SET #state = :refused, refusedReason = :reason REMOVE mailLease, gsi1pk, gsi1sk"),
		ConditionExpression:      aws.String("#state = :pending"),
		ExpressionAttributeNames: map[string]string{"#state": "state"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":refused": s(string(tenant.SignupRefused)),
			":pending": s(string(tenant.SignupPending)),
			":reason":  s(reason),
		},
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}
