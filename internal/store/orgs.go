package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/tenant"
)

type orgItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	Kind       string `dynamodbav:"kind"`
	ID         string `dynamodbav:"tenantId"`
	Name       string `dynamodbav:"name"`
	Status     string `dynamodbav:"status"`
	KeyVersion int    `dynamodbav:"keyVersion"`
	WrappedKey []byte `dynamodbav:"wrappedKey,omitempty"`
	CreatorID  string `dynamodbav:"creatorId,omitempty"`
	CreatedAt  string `dynamodbav:"createdAt"`
}

func toOrgItem(o tenant.Org) orgItem {
	return orgItem{
		PK: tenantPK(o.ID), SK: orgSK, Kind: "org", ID: o.ID, Name: o.Name,
		Status: string(o.Status), KeyVersion: o.KeyVersion, WrappedKey: o.WrappedKey,
		CreatorID: o.CreatorID, CreatedAt: formatTime(o.CreatedAt),
	}
}

func (it orgItem) org() tenant.Org {
	return tenant.Org{
		ID: it.ID, Name: it.Name, Status: tenant.Status(it.Status), KeyVersion: it.KeyVersion,
		WrappedKey: it.WrappedKey, CreatorID: it.CreatorID, CreatedAt: parseTime(it.CreatedAt),
	}
}

type userItem struct {
	PK        string   `dynamodbav:"pk"`
	SK        string   `dynamodbav:"sk"`
	Kind      string   `dynamodbav:"kind"`
	GSI1PK    string   `dynamodbav:"gsi1pk"`
	GSI1SK    string   `dynamodbav:"gsi1sk"`
	GSI2PK    string   `dynamodbav:"gsi2pk"`
	GSI2SK    string   `dynamodbav:"gsi2sk"`
	ID        string   `dynamodbav:"userId"`
	TenantID  string   `dynamodbav:"tenantId"`
	Email     string   `dynamodbav:"email"`
	Name      string   `dynamodbav:"name"`
	Locale    string   `dynamodbav:"locale"`
	Role      string   `dynamodbav:"role"`
	Sites     []string `dynamodbav:"sites,stringset,omitempty"`
	CreatedAt string   `dynamodbav:"createdAt"`
}

func toUserItem(u tenant.User) userItem {
	email := tenant.NormalizeEmail(u.Email)
	return userItem{
		PK: tenantPK(u.TenantID), SK: userSK(u.ID), Kind: "user",
		GSI1PK: subGSI(u.ID), GSI1SK: tenantPK(u.TenantID),
		GSI2PK: emailGSI(email), GSI2SK: tenantPK(u.TenantID),
		ID: u.ID, TenantID: u.TenantID, Email: email, Name: u.Name, Locale: u.Locale,
		Role: string(u.Role), Sites: u.Sites, CreatedAt: formatTime(u.CreatedAt),
	}
}

func (it userItem) user() tenant.User {
	return tenant.User{
		ID: it.ID, TenantID: it.TenantID, Email: it.Email, Name: it.Name, Locale: it.Locale,
		Role: tenant.Role(it.Role), Sites: it.Sites, CreatedAt: parseTime(it.CreatedAt),
	}
}

// CreateOrganization writes a new organization, its first admin, the admin's
// uniqueness items and the sign-up's progress in one transaction: all of it or
// nothing. It fails with conflict when the organization already exists or the
// sign-up is no longer pending (a concurrent or earlier try won), and with conflict
// ReasonIdentityTaken when only the admin's email or sub already holds a membership
// (another sign-up of the same person won).
func (st *Store) CreateOrganization(ctx context.Context, org tenant.Org, admin tenant.User, signupSub string) (err error) {
	defer apperr.Wrap(&err, "store.CreateOrganization(tenant %q)", org.ID)
	orgAV, err := attributevalue.MarshalMap(toOrgItem(org))
	if err != nil {
		return err
	}
	userAV, err := attributevalue.MarshalMap(toUserItem(admin))
	if err != nil {
		return err
	}
	// One person, one organization: the admin's email and sub must hold no
	// membership yet (identity.go). They come last, so that identityConflict can
	// tell them from the first three.
	identity, err := st.identityPuts(admin, false)
	if err != nil {
		return err
	}
	notExists := "attribute_not_exists(pk)"
	_, err = st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: append([]ddbtypes.TransactWriteItem{
			{Put: &ddbtypes.Put{TableName: &st.Table, Item: orgAV, ConditionExpression: &notExists}},
			{Put: &ddbtypes.Put{TableName: &st.Table, Item: userAV, ConditionExpression: &notExists}},
			{Update: &ddbtypes.Update{
				TableName:                 &st.Table,
				Key:                       key(signupPK(signupSub), signupSK),
				UpdateExpression:          strPtr("SET #state = :created, tenantId = :tid"),
				ConditionExpression:       strPtr("#state = :pending"),
				ExpressionAttributeNames:  map[string]string{"#state": "state"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":created": s(string(tenant.SignupOrgCreated)), ":pending": s(string(tenant.SignupPending)), ":tid": s(org.ID)},
			}},
		}, identity...),
	})
	if identityConflict(err, 3) {
		return apperr.New(apperr.Conflict, ReasonIdentityTaken, "the email or the user already holds a membership")
	}
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// GetOrg reads an organization (strongly consistent).
func (st *Store) GetOrg(ctx context.Context, tenantID string) (_ tenant.Org, err error) {
	defer apperr.Wrap(&err, "store.GetOrg(%q)", tenantID)
	var it orgItem
	if err := st.getItem(ctx, tenantPK(tenantID), orgSK, &it); err != nil {
		return tenant.Org{}, err
	}
	return it.org(), nil
}

// GetUser reads a user of an organization (strongly consistent).
func (st *Store) GetUser(ctx context.Context, tenantID, userID string) (_ tenant.User, err error) {
	defer apperr.Wrap(&err, "store.GetUser(%q, %q)", tenantID, userID)
	var it userItem
	if err := st.getItem(ctx, tenantPK(tenantID), userSK(userID), &it); err != nil {
		return tenant.User{}, err
	}
	return it.user(), nil
}

// GetUserAndOrg reads a user and their organization in one strongly consistent
// BatchGetItem (keys it leaves unprocessed are asked again). A missing user is
// reported before a missing organization, as GetUser then GetOrg would; whichever is
// missing comes back as its zero value (empty ID) and the other is still returned, so
// that a caller can check both.
func (st *Store) GetUserAndOrg(ctx context.Context, tenantID, userID string) (_ tenant.User, _ tenant.Org, err error) {
	defer apperr.Wrap(&err, "store.GetUserAndOrg(%q, %q)", tenantID, userID)
	userAV, orgAV, err := st.batchUserAndOrg(ctx, tenantID, userID)
	if err != nil {
		return tenant.User{}, tenant.Org{}, err
	}
	return decodeUserAndOrg(tenantID, userID, userAV, orgAV)
}

// batchUserAndOrg reads the items of a user and their organization in one strongly
// consistent BatchGetItem, asking again for the keys it leaves unprocessed; a missing
// item is nil.
func (st *Store) batchUserAndOrg(ctx context.Context, tenantID, userID string) (userAV, orgAV map[string]ddbtypes.AttributeValue, err error) {
	pk, usk := tenantPK(tenantID), userSK(userID)
	keys := &ddbtypes.KeysAndAttributes{Keys: []map[string]ddbtypes.AttributeValue{key(pk, usk), key(pk, orgSK)}, ConsistentRead: aws.Bool(true)}
	for attempt := 0; keys != nil && len(keys.Keys) > 0; attempt++ {
		if attempt > 0 {
			if err := sleepBackoff(ctx, attempt-1); err != nil {
				return nil, nil, err
			}
		}
		if attempt > maxBatchRetries {
			return nil, nil, apperr.New(apperr.Unavailable, "", "storage left reads unprocessed")
		}
		out, err := st.DB.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]ddbtypes.KeysAndAttributes{st.Table: *keys}})
		if err != nil {
			return nil, nil, unavailable(err)
		}
		for _, item := range out.Responses[st.Table] {
			switch attrS(item, "sk") {
			case usk:
				userAV = item
			case orgSK:
				orgAV = item
			}
		}
		keys = nil
		if k, ok := out.UnprocessedKeys[st.Table]; ok {
			keys = &k
		}
	}
	return userAV, orgAV, nil
}

// decodeUserAndOrg decodes what batchUserAndOrg read, reporting a missing user before
// a missing organization.
func decodeUserAndOrg(tenantID, userID string, userAV, orgAV map[string]ddbtypes.AttributeValue) (tenant.User, tenant.Org, error) {
	pk, usk := tenantPK(tenantID), userSK(userID)
	var (
		u tenant.User
		o tenant.Org
	)
	if userAV != nil {
		var it userItem
		if err := attributevalue.UnmarshalMap(userAV, &it); err != nil {
			return tenant.User{}, tenant.Org{}, fmt.Errorf("decoding %s/%s: %w", pk, usk, err)
		}
		u = it.user()
	}
	if orgAV != nil {
		var it orgItem
		if err := attributevalue.UnmarshalMap(orgAV, &it); err != nil {
			return tenant.User{}, tenant.Org{}, fmt.Errorf("decoding %s/%s: %w", pk, orgSK, err)
		}
		o = it.org()
	}
	switch {
	case userAV == nil:
		return u, o, apperr.New(apperr.NotFound, "", "user not found")
	case orgAV == nil:
		return u, o, apperr.New(apperr.NotFound, "", "organization not found")
	}
	return u, o, nil
}

func strPtr(v string) *string { return &v }
