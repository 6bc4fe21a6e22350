package store

import (
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
)

// VaultShards is the number of partition keys a tenant's vault items are spread over.
//
// One partition key takes about 1,000 writes a second, so a reset that deletes a whole
// vault under one key could not delete a million items inside one 15-minute Lambda
// invocation. With 32 shards a reset deletes from 32 partitions in parallel: a ceiling
// of about 32,000 deletes a second, near the default on-demand per-table limit (40,000
// write units), so more shards would buy nothing; fewer would halve the ceiling. A
// count or a listing costs one query per shard, which 32 keeps cheap. Changing it
// moves items to other partition keys: it needs a migration.
const VaultShards = 32

// VaultShard is the shard an item id lives in: FNV-1a of the id, modulo VaultShards.
// It is a pure function of the id, so an item is found by id with one GetItem.
func VaultShard(itemID string) int {
	h := fnv.New32a()
	h.Write([]byte(itemID))
	return int(h.Sum32() % VaultShards)
}

// VaultItem is one password of an organization's vault. Its fields are ciphertext
// made in the browser under the org key; this service never reads them.
type VaultItem struct {
	TenantID string
	ID       string
	Data     []byte // ciphertext
}

// PutVaultItems writes items in batches of 25 (BatchWriteItem), retrying what DynamoDB
// leaves unprocessed. Seeding, tests and benchmarks use it; the vault itself is written
// by the web application.
func (st *Store) PutVaultItems(ctx context.Context, items []VaultItem) (err error) {
	defer apperr.Wrap(&err, "store.PutVaultItems(%d items)", len(items))
	reqs := make([]ddbtypes.WriteRequest, 0, len(items))
	for _, it := range items {
		if it.TenantID == "" || it.ID == "" {
			return apperr.New(apperr.Invalid, "", "vault item without tenant or id")
		}
		av := VaultItemKey(it.TenantID, it.ID)
		av["kind"] = s("vault")
		av["tenantId"] = s(it.TenantID)
		av["itemId"] = s(it.ID)
		if len(it.Data) > 0 {
			av["data"] = &ddbtypes.AttributeValueMemberB{Value: it.Data}
		}
		reqs = append(reqs, ddbtypes.WriteRequest{PutRequest: &ddbtypes.PutRequest{Item: av}})
	}
	return st.batchWrite(ctx, reqs)
}

// CountVaultItems counts a tenant's vault items, querying the shards in parallel.
func (st *Store) CountVaultItems(ctx context.Context, tenantID string) (_ int, err error) {
	defer apperr.Wrap(&err, "store.CountVaultItems(%q)", tenantID)
	counts := make([]int, VaultShards)
	errs := make([]error, VaultShards)
	var wg sync.WaitGroup
	for shard := range VaultShards {
		wg.Go(func() {
			counts[shard], errs[shard] = st.countQuery(ctx, &dynamodb.QueryInput{
				KeyConditionExpression:    aws.String("pk = :p"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(VaultPK(tenantID, shard))},
				ConsistentRead:            aws.Bool(true),
			})
		})
	}
	wg.Wait()
	total := 0
	for i := range counts {
		if errs[i] != nil {
			return 0, errs[i]
		}
		total += counts[i]
	}
	return total, nil
}

// countQuery runs a query with Select COUNT over all its pages.
func (st *Store) countQuery(ctx context.Context, in *dynamodb.QueryInput) (int, error) {
	in.TableName = &st.Table
	in.Select = ddbtypes.SelectCount
	p := dynamodb.NewQueryPaginator(st.DB, in)
	total := 0
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return 0, unavailable(err)
		}
		total += int(page.Count)
	}
	return total, nil
}

// batchSize is BatchWriteItem's limit.
const batchSize = 25

// Backoff for unprocessed items: exponential with full jitter (AWS's advice), so that
// 32 shards throttled together do not retry in lockstep.
const (
	backoffBase     = 25 * time.Millisecond
	backoffCap      = 2 * time.Second
	maxBatchRetries = 12
)

// batchWrite sends requests in batches of 25 and retries unprocessed ones with backoff
// and jitter. Deleting an absent key succeeds, so a retried delete is harmless.
func (st *Store) batchWrite(ctx context.Context, reqs []ddbtypes.WriteRequest) error {
	for len(reqs) > 0 {
		n := min(batchSize, len(reqs))
		if err := st.writeBatch(ctx, reqs[:n]); err != nil {
			return err
		}
		reqs = reqs[n:]
	}
	return nil
}

func (st *Store) writeBatch(ctx context.Context, batch []ddbtypes.WriteRequest) error {
	pending := batch
	for attempt := 0; ; attempt++ {
		out, err := st.DB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{
			RequestItems: map[string][]ddbtypes.WriteRequest{st.Table: pending},
		})
		if err != nil {
			return unavailable(err)
		}
		pending = out.UnprocessedItems[st.Table]
		if len(pending) == 0 {
			return nil
		}
		if attempt == maxBatchRetries {
			return apperr.New(apperr.Unavailable, "", fmt.Sprintf("storage left %d writes unprocessed after %d retries", len(pending), maxBatchRetries))
		}
		if err := sleepBackoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// sleepBackoff waits before retry attempt+1 of unprocessed items.
func sleepBackoff(ctx context.Context, attempt int) error {
	wait := time.Duration(rand.Int64N(int64(min(backoffCap, backoffBase<<attempt)) + 1))
	select {
	case <-ctx.Done():
		return apperr.Wrapf(apperr.Unavailable, ctx.Err(), "storage calls interrupted")
	case <-time.After(wait):
		return nil
	}
}
