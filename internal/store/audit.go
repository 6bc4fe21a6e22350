package store

import (
	"context"
	"crypto/rand"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/tenant"
)

// AuditRecord is one audited event. Records live under their own partition key
// (AUDIT#<tenant>), so a reset that deletes the tenant's users leaves them. They never
// hold a secret.
type AuditRecord struct {
	TenantID  string            `dynamodbav:"tenantId"`
	At        string            `dynamodbav:"at"` // set by PutAudit
	Action    string            `dynamodbav:"action"`
	Outcome   string            `dynamodbav:"outcome"`
	ActorID   string            `dynamodbav:"actorId,omitempty"`
	TargetID  string            `dynamodbav:"targetId,omitempty"`
	SourceIP  string            `dynamodbav:"sourceIp,omitempty"`
	UserAgent string            `dynamodbav:"userAgent,omitempty"`
	RequestID string            `dynamodbav:"requestId,omitempty"`
	Detail    map[string]string `dynamodbav:"detail,omitempty"`
	// TTL, when set, lets DynamoDB remove the record after that Unix time: records of
	// no known tenant (anyone can make them) do not stay forever.
	TTL int64 `dynamodbav:"ttl,omitempty"`
}

// Audit actions: what a record says happened, named <object>.<event in the past>, and
// declared here only; the flows write them, the tests and any export of the trail read
// them. A record's Outcome says how it ended (ok, or the refusal's code), so a refused
// send is still org_key.sent with its outcome.
const (
	ActionKeySent        = "org_key.sent"            // an admin had a claim link mailed (send-key)
	ActionKeyClaimed     = "org_key.claimed"         // a claim link was opened (send-key)
	ActionKeyRequested   = "org_key.requested"       // a user asked the admins for the key (send-key)
	ActionKeyRevealed    = "org_key.revealed"        // an admin showed the key (reveal-key)
	ActionResetScheduled = "org_key.reset.scheduled" // support asked; the kept admin must confirm
	ActionResetConfirmed = "org_key.reset.confirmed" // the kept admin confirmed (or was refused: outcome)
	ActionResetCancelled = "org_key.reset.cancelled" // by support or an org admin, before it started
	ActionResetStarted   = "org_key.reset.started"
	ActionResetCompleted = "org_key.reset.completed"
)

type auditItem struct {
	PK   string `dynamodbav:"pk"`
	SK   string `dynamodbav:"sk"`
	Kind string `dynamodbav:"kind"`
	AuditRecord
}

// maxUserAgent bounds what a caller can make us store.
const maxUserAgent = 512

// PutAudit appends an audit record for r.TenantID at the given time; records sort by
// time.
func (st *Store) PutAudit(ctx context.Context, r AuditRecord, now time.Time) (err error) {
	defer apperr.Wrap(&err, "store.PutAudit(%q, %q)", r.TenantID, r.Action)
	it, err := newAuditItem(r, now)
	if err != nil {
		return err
	}
	return st.put(ctx, it)
}

// newAuditItem is the item of record r at now, under an id of its own so that two
// records of the same instant never collide.
func newAuditItem(r AuditRecord, now time.Time) (auditItem, error) {
	id, err := tenant.NewID(rand.Reader, "")
	if err != nil {
		return auditItem{}, err
	}
	if len(r.UserAgent) > maxUserAgent {
		r.UserAgent = r.UserAgent[:maxUserAgent]
	}
	r.At = formatTime(now)
	return auditItem{PK: auditPK(r.TenantID), SK: auditSK(r.At, id), Kind: "audit", AuditRecord: r}, nil
}

// Audit returns a tenant's audit records, oldest first.
func (st *Store) Audit(ctx context.Context, tenantID string) (_ []AuditRecord, err error) {
	defer apperr.Wrap(&err, "store.Audit(%q)", tenantID)
	var out []AuditRecord
	err = queryEach(ctx, st, &dynamodb.QueryInput{
		KeyConditionExpression:    aws.String("pk = :p"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(auditPK(tenantID))},
		ConsistentRead:            aws.Bool(true),
	}, func(it auditItem) bool {
		out = append(out, it.AuditRecord)
		return true
	})
	return out, err
}
