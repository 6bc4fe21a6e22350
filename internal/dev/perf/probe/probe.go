// Package probe makes a flow's AWS calls bare: the same operations, on the same
// emulators, from clients built as the functions build theirs, with nothing in
// between. It is the floor of the warm benchmark (cmd/orgkey-bench), made both from
// the benchmark's own process and, behind the Lambda Runtime API, from a function of
// its own (internal/dev/perf/testdata/roundtrips), so that the runtime's share and the
// function's own share of a request can be told apart.
package probe

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/mspvault/orgkey/internal/store"
)

// Target is what the calls are made on: a table holding the organization OrgID (its
// ORG item is read) and the KMS key org keys are wrapped with.
type Target struct {
	Table, KMSKeyID, OrgID, MailFrom string
}

// Prober makes round trips.
type Prober struct {
	t    Target
	db   *dynamodb.Client
	kms  *kms.Client
	ses  *sesv2.Client
	blob []byte // a ciphertext under the probe's own encryption context
}

// New builds the clients from cfg, once, as a warm function holds them.
func New(cfg aws.Config, t Target) *Prober {
	return &Prober{t: t, db: dynamodb.NewFromConfig(cfg), kms: kms.NewFromConfig(cfg), ses: sesv2.NewFromConfig(cfg)}
}

// Ops lists calls ("Service.Operation" to how many) one by one, in a stable order.
func Ops(calls map[string]int) []string {
	var ops []string
	for _, op := range slices.Sorted(func(yield func(string) bool) {
		for k := range calls {
			if !yield(k) {
				return
			}
		}
	}) {
		for range calls[op] {
			ops = append(ops, op)
		}
	}
	return ops
}

var probeContext = map[string]string{"tenantId": "probe", "keyVersion": "1", "purpose": "org-key"}

// Prepare makes the ciphertext KMS.Decrypt probes decrypt.
func (p *Prober) Prepare(ctx context.Context) error {
	out, err := p.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: &p.t.KMSKeyID, Plaintext: make([]byte, 32), EncryptionContext: probeContext})
	if err != nil {
		return fmt.Errorf("probe: prepare: %w", err)
	}
	p.blob = out.CiphertextBlob
	return nil
}

// RoundTrips makes each of ops once, one after the other. Writes go to items of
// their own (store.ProbeKey), so that concurrent callers never conflict.
func (p *Prober) RoundTrips(ctx context.Context, caller string, ops []string) error {
	table := &p.t.Table
	s := func(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }
	org := store.OrgItemKey(p.t.OrgID)
	mine := strconv.FormatInt(time.Now().UnixNano(), 36)
	for _, op := range ops {
		var err error
		switch op {
		case "DynamoDB.GetItem":
			_, err = p.db.GetItem(ctx, &dynamodb.GetItemInput{TableName: table, Key: org, ConsistentRead: aws.Bool(true)})
		case "DynamoDB.BatchGetItem": // a user and the organization, as httpapi.ResolveCaller reads them
			_, err = p.db.BatchGetItem(ctx, &dynamodb.BatchGetItemInput{RequestItems: map[string]ddbtypes.KeysAndAttributes{p.t.Table: {
				Keys: []map[string]ddbtypes.AttributeValue{org, store.UserItemKey(p.t.OrgID, "probe")}, ConsistentRead: aws.Bool(true)}}})
		case "DynamoDB.Query":
			_, err = p.db.Query(ctx, &dynamodb.QueryInput{TableName: table, KeyConditionExpression: aws.String("pk = :p"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(store.TenantPK(p.t.OrgID))}})
		case "DynamoDB.PutItem":
			_, err = p.db.PutItem(ctx, &dynamodb.PutItemInput{TableName: table, Item: store.ProbeKey(caller, mine)})
		case "DynamoDB.UpdateItem":
			_, err = p.db.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: table, Key: store.ProbeKey(caller, ""),
				UpdateExpression: aws.String("ADD n :one"), ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":one": &ddbtypes.AttributeValueMemberN{Value: "1"}}})
		case "DynamoDB.TransactWriteItems":
			_, err = p.db.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
				{Put: &ddbtypes.Put{TableName: table, Item: store.ProbeKey(caller, mine+"#a")}}, {Put: &ddbtypes.Put{TableName: table, Item: store.ProbeKey(caller, mine+"#b")}},
				{Put: &ddbtypes.Put{TableName: table, Item: store.ProbeKey(caller, mine+"#c")}}}})
		case "KMS.Decrypt":
			_, err = p.kms.Decrypt(ctx, &kms.DecryptInput{KeyId: &p.t.KMSKeyID, CiphertextBlob: p.blob, EncryptionContext: probeContext})
		case "KMS.Encrypt":
			_, err = p.kms.Encrypt(ctx, &kms.EncryptInput{KeyId: &p.t.KMSKeyID, Plaintext: make([]byte, 32), EncryptionContext: probeContext})
		case "SESv2.SendEmail":
			_, err = p.ses.SendEmail(ctx, &sesv2.SendEmailInput{FromEmailAddress: aws.String(p.t.MailFrom),
				Destination: &sestypes.Destination{ToAddresses: []string{"probe@example.test"}},
				Content: &sestypes.EmailContent{Simple: &sestypes.Message{Subject: &sestypes.Content{Data: aws.String("probe")},
					Body: &sestypes.Body{Text: &sestypes.Content{Data: aws.String("probe")}}}}})
		default:
			err = fmt.Errorf("no probe for %s", op)
		}
		if err != nil {
			return fmt.Errorf("probe %s: %w", op, err)
		}
	}
	return nil
}

// Replay makes the calls whose inputs a flow's request made (perf.Recorder), one
// after the other, through this prober's clients. Made again, a request's
// conditional writes would fail their conditions (the claim is spent, the sign-up
// recorded) and skip the write, so they are made without their conditions: the same
// items written, in the same calls. Condition checks of transactions on items that
// do not change (an organization's key version) are kept.
func (p *Prober) Replay(ctx context.Context, inputs []any) error {
	for _, in := range inputs {
		var err error
		switch v := in.(type) {
		case *dynamodb.GetItemInput:
			_, err = p.db.GetItem(ctx, v)
		case *dynamodb.BatchGetItemInput:
			_, err = p.db.BatchGetItem(ctx, v)
		case *dynamodb.QueryInput:
			_, err = p.db.Query(ctx, v)
		case *dynamodb.PutItemInput:
			c := *v
			unconditioned(nil, &c.ConditionExpression, &c.ExpressionAttributeNames, &c.ExpressionAttributeValues)
			_, err = p.db.PutItem(ctx, &c)
		case *dynamodb.UpdateItemInput:
			c := *v
			unconditioned(c.UpdateExpression, &c.ConditionExpression, &c.ExpressionAttributeNames, &c.ExpressionAttributeValues)
			_, err = p.db.UpdateItem(ctx, &c)
		case *dynamodb.TransactWriteItemsInput:
			c := *v
			c.ClientRequestToken = nil // a token seen before would make the call a no-op
			c.TransactItems = make([]ddbtypes.TransactWriteItem, len(v.TransactItems))
			for i, it := range v.TransactItems {
				switch {
				case it.Put != nil:
					put := *it.Put
					unconditioned(nil, &put.ConditionExpression, &put.ExpressionAttributeNames, &put.ExpressionAttributeValues)
					it.Put = &put
				case it.Update != nil:
					up := *it.Update
					unconditioned(up.UpdateExpression, &up.ConditionExpression, &up.ExpressionAttributeNames, &up.ExpressionAttributeValues)
					it.Update = &up
				case it.Delete != nil:
					del := *it.Delete
					unconditioned(nil, &del.ConditionExpression, &del.ExpressionAttributeNames, &del.ExpressionAttributeValues)
					it.Delete = &del
				}
				c.TransactItems[i] = it
			}
			_, err = p.db.TransactWriteItems(ctx, &c)
		case *kms.DecryptInput:
			_, err = p.kms.Decrypt(ctx, v)
		case *kms.EncryptInput:
			_, err = p.kms.Encrypt(ctx, v)
		case *sesv2.SendEmailInput:
			_, err = p.ses.SendEmail(ctx, v)
		default:
			err = fmt.Errorf("no replay for %T", in)
		}
		if err != nil {
			return fmt.Errorf("replay %T: %w", in, err)
		}
	}
	return nil
}

// unconditioned drops a write's condition, and the expression names and values only
// the condition used (DynamoDB refuses unused ones): an update keeps those its update
// expression refers to, a put or a delete (update nil) none.
func unconditioned(update *string, cond **string, names *map[string]string, values *map[string]ddbtypes.AttributeValue) {
	*cond = nil
	*names, *values = used(update, *names, *values)
}

// used keeps the expression names and values expr refers to.
func used(expr *string, names map[string]string, values map[string]ddbtypes.AttributeValue) (map[string]string, map[string]ddbtypes.AttributeValue) {
	if expr == nil {
		return nil, nil
	}
	return keep(*expr, names), keep(*expr, values)
}

func keep[V any](expr string, m map[string]V) map[string]V {
	var out map[string]V
	for k, v := range m {
		if mentions(expr, k) {
			if out == nil {
				out = map[string]V{}
			}
			out[k] = v
		}
	}
	return out
}

// mentions reports whether expr holds the placeholder p as a whole token (":v" is
// not in ":v2").
func mentions(expr, p string) bool {
	for i := 0; ; {
		j := strings.Index(expr[i:], p)
		if j < 0 {
			return false
		}
		end := i + j + len(p)
		if end == len(expr) || !isNameByte(expr[end]) {
			return true
		}
		i = end
	}
}

func isNameByte(b byte) bool {
	return b == '_' || '0' <= b && b <= '9' || 'a' <= b && b <= 'z' || 'A' <= b && b <= 'Z'
}
