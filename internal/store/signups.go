package store

import (
	"context"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/tenant"
)

type signupItem struct {
	PK         string `dynamodbav:"pk"`
	SK         string `dynamodbav:"sk"`
	Kind       string `dynamodbav:"kind"`
	GSI1PK     string `dynamodbav:"gsi1pk,omitempty"` // only while unfinished (sparse index)
	GSI1SK     string `dynamodbav:"gsi1sk,omitempty"`
	Sub        string `dynamodbav:"sub"`
	Email      string `dynamodbav:"email"`
	Name       string `dynamodbav:"name"`
	Company    string `dynamodbav:"company"`
	Locale     string `dynamodbav:"locale"`
	TenantID   string `dynamodbav:"tenantId"`
	State      string `dynamodbav:"state"`
	CreatedAt  string `dynamodbav:"createdAt"`
	MailSentAt string `dynamodbav:"mailSentAt,omitempty"`
}

func (it signupItem) signup() tenant.Signup {
	return tenant.Signup{
		Sub: it.Sub, Email: it.Email, Name: it.Name, Company: it.Company, Locale: it.Locale,
		TenantID: it.TenantID, State: tenant.SignupState(it.State),
		CreatedAt: parseTime(it.CreatedAt), MailSentAt: parseTime(it.MailSentAt),
	}
}

// CreateSignup records a confirmed sign-up unless one exists for the same sub, and
// returns the record that is stored: the new one, or the one an earlier or concurrent
// try wrote (whose tenant id every try then uses).
func (st *Store) CreateSignup(ctx context.Context, su tenant.Signup) (_ tenant.Signup, err error) {
	defer apperr.Wrap(&err, "store.CreateSignup(%q)", su.Sub)
	created := formatTime(su.CreatedAt)
	it := signupItem{
		PK: signupPK(su.Sub), SK: signupSK, Kind: "signup",
		GSI1PK: signupsPending, GSI1SK: created + "#" + su.Sub,
		Sub: su.Sub, Email: su.Email, Name: su.Name, Company: su.Company, Locale: su.Locale,
		TenantID: su.TenantID, State: string(tenant.SignupPending), CreatedAt: created,
	}
	av, err := attributevalue.MarshalMap(it)
	if err != nil {
		return tenant.Signup{}, err
	}
	_, err = st.DB.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:           &st.Table,
		Item:                av,
		ConditionExpression: aws.String("attribute_not_exists(pk)"),
	})
	if err == nil {
		return it.signup(), nil
	}
	if err := unavailable(err); !isConditionFailed(err) {
		return tenant.Signup{}, err
	}
	return st.GetSignup(ctx, su.Sub)
}

// GetSignup reads a sign-up (strongly consistent).
func (st *Store) GetSignup(ctx context.Context, sub string) (_ tenant.Signup, err error) {
	defer apperr.Wrap(&err, "store.GetSignup(%q)", sub)
	var it signupItem
	if err := st.getItem(ctx, signupPK(sub), signupSK, &it); err != nil {
		return tenant.Signup{}, err
	}
	return it.signup(), nil
}

// AcquireSignupMail takes the right to send a sign-up's activation mail until
// leaseUntil. It reports false when the mail was sent, or another try holds the right.
// The lease outlives a try (Cognito gives each 5 s), so a try that dies mid-send only
// delays the mail to the catch-up sweep; it never causes a second mail while alive.
func (st *Store) AcquireSignupMail(ctx context.Context, sub string, now, leaseUntil time.Time) (_ bool, err error) {
	defer apperr.Wrap(&err, "store.AcquireSignupMail(%q)", sub)
	return st.updateIf(ctx, &dynamodb.UpdateItemInput{
		Key:                      key(signupPK(sub), signupSK),
		UpdateExpression:         aws.String("SET mailLease = :until"),
		ConditionExpression:      aws.String("#state = :created AND (attribute_not_exists(mailLease) OR mailLease < :now)"),
		ExpressionAttributeNames: map[string]string{"#state": "state"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":until":   s(formatTime(leaseUntil)),
			":now":     s(formatTime(now)),
			":created": s(string(tenant.SignupOrgCreated)),
		},
	})
}

// ReleaseSignupMail gives the right back after a failed send, so that the next try
// sends at once.
func (st *Store) ReleaseSignupMail(ctx context.Context, sub string) (err error) {
	defer apperr.Wrap(&err, "store.ReleaseSignupMail(%q)", sub)
	return st.removeAttr(ctx, signupPK(sub), signupSK, "mailLease")
}

// FinishSignup records that the activation mail went out and takes the sign-up off
// the catch-up index.
func (st *Store) FinishSignup(ctx context.Context, sub string, now time.Time) (err error) {
	defer apperr.Wrap(&err, "store.FinishSignup(%q)", sub)
	_, err = st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &st.Table,
		Key:                      key(signupPK(sub), signupSK),
		UpdateExpression:         aws.String("SET #state = :done, mailSentAt = :now REMOVE mailLease, gsi1pk, gsi1sk"),
		ExpressionAttributeNames: map[string]string{"#state": "state"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":done": s(string(tenant.SignupDone)),
			":now":  s(formatTime(now)),
		},
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// UnfinishedSignups lists sign-ups recorded before cutoff whose activation did not
// finish, oldest first, at most limit.
func (st *Store) UnfinishedSignups(ctx context.Context, cutoff time.Time, limit int) (_ []tenant.Signup, err error) {
	defer apperr.Wrap(&err, "store.UnfinishedSignups")
	var out []tenant.Signup
	err = queryEach(ctx, st, &dynamodb.QueryInput{
		IndexName:              aws.String(GSI1),
		KeyConditionExpression: aws.String("gsi1pk = :p AND gsi1sk < :cut"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":p":   s(signupsPending),
			":cut": s(formatTime(cutoff)),
		},
	}, func(it signupItem) bool {
		out = append(out, it.signup())
		return len(out) < limit
	})
	return out, err
}
