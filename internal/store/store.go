// Package store is the DynamoDB adapter: it keeps organizations, users, sites, vault
// items, claim tokens, sign-ups, audit records and rate counters in one table whose
// layout docs/design.md describes and template.yaml defines.
package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
)

// DB is the part of the DynamoDB client the store uses.
type DB interface {
	GetItem(ctx context.Context, in *dynamodb.GetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.GetItemOutput, error)
	PutItem(ctx context.Context, in *dynamodb.PutItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.PutItemOutput, error)
	UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error)
	DeleteItem(ctx context.Context, in *dynamodb.DeleteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.DeleteItemOutput, error)
	Query(ctx context.Context, in *dynamodb.QueryInput, optFns ...func(*dynamodb.Options)) (*dynamodb.QueryOutput, error)
	TransactWriteItems(ctx context.Context, in *dynamodb.TransactWriteItemsInput, optFns ...func(*dynamodb.Options)) (*dynamodb.TransactWriteItemsOutput, error)
	BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error)
	BatchGetItem(ctx context.Context, in *dynamodb.BatchGetItemInput, optFns ...func(*dynamodb.Options)) (*dynamodb.BatchGetItemOutput, error)
}

var _ DB = (*dynamodb.Client)(nil)

// Store reads and writes the table.
type Store struct {
	DB    DB
	Table string
}

// New returns a store on a table.
func New(db DB, table string) *Store { return &Store{DB: db, Table: table} }

// Index names (template.yaml).
const (
	GSI1 = "gsi1"
	GSI2 = "gsi2"
)

// timeFormat is fixed-width so that times sort as strings in sort keys.
const timeFormat = "2006-01-02T15:04:05.000000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeFormat) }

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(timeFormat, s)
	if err != nil {
		return time.Time{}
	}
	return t
}

func s(v string) ddbtypes.AttributeValue { return &ddbtypes.AttributeValueMemberS{Value: v} }

func n(v int64) ddbtypes.AttributeValue {
	return &ddbtypes.AttributeValueMemberN{Value: fmt.Sprint(v)}
}

// getItem reads one item with a strongly consistent read into out; not_found if absent.
func (st *Store) getItem(ctx context.Context, pk, sk string, out any) error {
	res, err := st.DB.GetItem(ctx, &dynamodb.GetItemInput{
		TableName:      &st.Table,
		Key:            key(pk, sk),
		ConsistentRead: aws.Bool(true),
	})
	if err != nil {
		return unavailable(err)
	}
	if res.Item == nil {
		return apperr.New(apperr.NotFound, "", "not found")
	}
	if err := attributevalue.UnmarshalMap(res.Item, out); err != nil {
		return fmt.Errorf("decoding %s/%s: %w", pk, sk, err)
	}
	return nil
}

// put writes item (a struct with dynamodbav tags), replacing any item of its key.
func (st *Store) put(ctx context.Context, item any) error {
	av, err := attributevalue.MarshalMap(item)
	if err != nil {
		return err
	}
	if _, err := st.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &st.Table, Item: av}); err != nil {
		return unavailable(err)
	}
	return nil
}

// unavailable classifies a DynamoDB error: conditional failures are conflicts,
// everything else means the table could not be reached or refused the call.
func unavailable(err error) error {
	var cond *ddbtypes.ConditionalCheckFailedException
	if errors.As(err, &cond) {
		return apperr.Wrapf(apperr.Conflict, err, "conflicting update")
	}
	var canceled *ddbtypes.TransactionCanceledException
	if errors.As(err, &canceled) {
		for _, r := range canceled.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return apperr.Wrapf(apperr.Conflict, err, "conflicting update")
			}
		}
	}
	return apperr.Wrapf(apperr.Unavailable, err, "storage unavailable")
}

// queryEach runs a query over all its pages on the store's table, decodes each item
// into T and hands it to fn, until fn returns false or the items run out.
func queryEach[T any](ctx context.Context, st *Store, in *dynamodb.QueryInput, fn func(T) bool) error {
	in.TableName = &st.Table
	p := dynamodb.NewQueryPaginator(st.DB, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return unavailable(err)
		}
		for _, item := range page.Items {
			var it T
			if err := attributevalue.UnmarshalMap(item, &it); err != nil {
				return err
			}
			if !fn(it) {
				return nil
			}
		}
	}
	return nil
}

// updateIf applies an update whose condition may not hold, and reports whether it
// did: a failed condition is an answer (a lease held, a limit reached), not an error.
func (st *Store) updateIf(ctx context.Context, in *dynamodb.UpdateItemInput) (bool, error) {
	in.TableName = &st.Table
	_, err := st.DB.UpdateItem(ctx, in)
	if err == nil {
		return true, nil
	}
	if err := unavailable(err); !isConditionFailed(err) {
		return false, err
	}
	return false, nil
}

// removeAttr removes one attribute of an item: a lease given back.
func (st *Store) removeAttr(ctx context.Context, pk, sk, attr string) error {
	_, err := st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &st.Table,
		Key:                      key(pk, sk),
		UpdateExpression:         aws.String("REMOVE #a"),
		ExpressionAttributeNames: map[string]string{"#a": attr},
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

func asCond(err error, target **ddbtypes.ConditionalCheckFailedException) bool {
	return errors.As(err, target)
}

func isConditionFailed(err error) bool {
	return apperr.CodeOf(err) == apperr.Conflict
}
