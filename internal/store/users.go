package store

import (
	"context"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/tenant"
)

type siteItem struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	Kind     string `dynamodbav:"kind"`
	ID       string `dynamodbav:"siteId"`
	TenantID string `dynamodbav:"tenantId"`
	Name     string `dynamodbav:"name"`
}

// PutUser creates or replaces a user of an existing organization, with the user's
// uniqueness items in the same transaction (identity.go): it fails with conflict
// ReasonIdentityTaken when the email or the sub is a member of another
// organization. The user administration UI (invitations) is out of scope; seeding,
// the local stack's invitations and tests use this. A user's email is not meant to
// change through it: the old address's item would stay.
func (st *Store) PutUser(ctx context.Context, u tenant.User) (err error) {
	defer apperr.Wrap(&err, "store.PutUser(%q, %q)", u.TenantID, u.ID)
	av, err := attributevalue.MarshalMap(toUserItem(u))
	if err != nil {
		return err
	}
	identity, err := st.identityPuts(u, true)
	if err != nil {
		return err
	}
	_, err = st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: append([]ddbtypes.TransactWriteItem{{Put: &ddbtypes.Put{TableName: &st.Table, Item: av}}}, identity...),
	})
	if identityConflict(err, 1) {
		return apperr.New(apperr.Conflict, ReasonIdentityTaken, "the email or the user is a member of another organization")
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// DeleteUser removes a user and gives back their uniqueness items (the email's only
// if it is still theirs), so that the person may join an organization again.
func (st *Store) DeleteUser(ctx context.Context, tenantID, userID string) (err error) {
	defer apperr.Wrap(&err, "store.DeleteUser(%q, %q)", tenantID, userID)
	u, err := st.GetUser(ctx, tenantID, userID)
	if apperr.CodeOf(err) == apperr.NotFound {
		return nil
	}
	if err != nil {
		return err
	}
	_, err = st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
		{Delete: &ddbtypes.Delete{TableName: &st.Table, Key: key(tenantPK(tenantID), userSK(userID))}},
		{Delete: &ddbtypes.Delete{TableName: &st.Table, Key: key(subIdentityPK(userID), identitySK)}},
	}})
	if err != nil {
		return unavailable(err)
	}
	_, err = st.DB.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName: &st.Table, Key: key(emailIdentityPK(u.Email), identitySK),
		ConditionExpression:       aws.String("userId = :sub"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":sub": s(userID)},
	})
	if err != nil {
		if err := unavailable(err); !isConditionFailed(err) {
			return err
		}
	}
	return nil
}

// PutSite creates or replaces a site.
func (st *Store) PutSite(ctx context.Context, s tenant.Site) (err error) {
	defer apperr.Wrap(&err, "store.PutSite(%q, %q)", s.TenantID, s.ID)
	return st.put(ctx, siteItem{PK: tenantPK(s.TenantID), SK: siteSK(s.ID), Kind: "site", ID: s.ID, TenantID: s.TenantID, Name: s.Name})
}

// TenantOfUser finds the organization a Cognito sub belongs to (gsi1, eventually
// consistent). The caller then reads the user item itself, strongly consistent, so
// that a role change or a deletion takes effect at once.
func (st *Store) TenantOfUser(ctx context.Context, userID string) (_ string, err error) {
	defer apperr.Wrap(&err, "store.TenantOfUser(%q)", userID)
	out, err := st.DB.Query(ctx, &dynamodb.QueryInput{
		TableName:              &st.Table,
		IndexName:              aws.String(GSI1),
		KeyConditionExpression: aws.String("gsi1pk = :p"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":p": s(subGSI(userID)),
		},
		Limit: aws.Int32(2),
	})
	if err != nil {
		return "", unavailable(err)
	}
	if len(out.Items) != 1 {
		return "", apperr.New(apperr.NotFound, "", "user not found")
	}
	var it userItem
	if err := attributevalue.UnmarshalMap(out.Items[0], &it); err != nil {
		return "", err
	}
	return it.TenantID, nil
}

// FindUserByEmail finds a user of one organization by email (gsi2), then reads the
// user item strongly consistent. A user of another organization is not found.
func (st *Store) FindUserByEmail(ctx context.Context, tenantID, email string) (_ tenant.User, err error) {
	defer apperr.Wrap(&err, "store.FindUserByEmail(%q)", tenantID)
	out, err := st.DB.Query(ctx, &dynamodb.QueryInput{
		TableName:              &st.Table,
		IndexName:              aws.String(GSI2),
		KeyConditionExpression: aws.String("gsi2pk = :p AND gsi2sk = :t"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":p": s(emailGSI(tenant.NormalizeEmail(email))),
			":t": s(tenantPK(tenantID)),
		},
		Limit: aws.Int32(1),
	})
	if err != nil {
		return tenant.User{}, unavailable(err)
	}
	if len(out.Items) == 0 {
		return tenant.User{}, apperr.New(apperr.NotFound, "", "user not found")
	}
	var it userItem
	if err := attributevalue.UnmarshalMap(out.Items[0], &it); err != nil {
		return tenant.User{}, err
	}
	return st.GetUser(ctx, tenantID, it.ID)
}

// Members returns an organization's users and sites (strongly consistent).
func (st *Store) Members(ctx context.Context, tenantID string) (users []tenant.User, sites []tenant.Site, err error) {
	defer apperr.Wrap(&err, "store.Members(%q)", tenantID)
	p := dynamodb.NewQueryPaginator(st.DB, &dynamodb.QueryInput{
		TableName:              &st.Table,
		KeyConditionExpression: aws.String("pk = :p"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":p": s(tenantPK(tenantID)),
		},
		ConsistentRead: aws.Bool(true),
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, nil, unavailable(err)
		}
		for _, item := range page.Items {
			sk, _ := item["sk"].(*ddbtypes.AttributeValueMemberS)
			switch {
			case sk == nil:
			case strings.HasPrefix(sk.Value, userPrefix):
				var it userItem
				if err := attributevalue.UnmarshalMap(item, &it); err != nil {
					return nil, nil, err
				}
				users = append(users, it.user())
			case strings.HasPrefix(sk.Value, sitePrefix):
				var it siteItem
				if err := attributevalue.UnmarshalMap(item, &it); err != nil {
					return nil, nil, err
				}
				sites = append(sites, tenant.Site{ID: it.ID, TenantID: it.TenantID, Name: it.Name})
			}
		}
	}
	return users, sites, nil
}

// PutOrg creates an organization that does not exist yet (seeding; sign-ups go
// through CreateOrganization).
func (st *Store) PutOrg(ctx context.Context, org tenant.Org) (err error) {
	defer apperr.Wrap(&err, "store.PutOrg(%q)", org.ID)
	av, err := attributevalue.MarshalMap(toOrgItem(org))
	if err != nil {
		return err
	}
	_, err = st.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.Table, Item: av, ConditionExpression: aws.String("attribute_not_exists(pk)")})
	if err != nil {
		return unavailable(err)
	}
	return nil
}
