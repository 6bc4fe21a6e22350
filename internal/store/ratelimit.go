package store

import (
	"context"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
)

// Allow counts one event of a flow for a subject (a user id, a tenant id) in the
// fixed window of the given length that holds now, and reports whether the count
// stays within limit. The count is one atomic conditional update, so concurrent
// callers never get more than limit between them. Counters expire with the table's TTL.
func (st *Store) Allow(ctx context.Context, flow, subject string, limit int, window time.Duration, now time.Time) (_ bool, err error) {
	defer apperr.Wrap(&err, "store.Allow(%q, %q)", flow, subject)
	start := now.Truncate(window)
	return st.updateIf(ctx, &dynamodb.UpdateItemInput{
		Key:                 key(ratePK(flow, subject), formatTime(start)),
		UpdateExpression:    aws.String("ADD #c :one SET #ttl = if_not_exists(#ttl, :ttl), kind = if_not_exists(kind, :kind)"),
		ConditionExpression: aws.String("attribute_not_exists(#c) OR #c < :limit"),
		ExpressionAttributeNames: map[string]string{
			"#c": "count", "#ttl": "ttl",
		},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":one":   n(1),
			":limit": &ddbtypes.AttributeValueMemberN{Value: strconv.Itoa(limit)},
			":ttl":   n(start.Add(window + time.Hour).Unix()),
			":kind":  s("rate"),
		},
	})
}
