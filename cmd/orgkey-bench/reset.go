package main

import (
	"context"
	"fmt"
	"log"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/dev/perf"
	"github.com/mspvault/orgkey/internal/store"
)

// resetRow is one vault size.
type resetRow struct {
	Items                 int
	Reset, Naive, Ceiling time.Duration
}

func rate(n int, d time.Duration) float64 { return float64(n) / d.Seconds() }

// resetScaling deletes an organization of each size three ways, each on its own
// freshly seeded organization (seeding is not timed): the whole reset, in this
// process as the function runs it; the naive baseline (list, then one DeleteItem at a
// time); and the ceiling (BatchWriteItem of the keys, already known, 32 at once).
func (b *bench) resetScaling(sizes []int) ([]resetRow, error) {
	hs, err := b.world.Handlers(b.cfg, nil)
	if err != nil {
		return nil, err
	}
	h := hs[perf.FnReset]
	db := dynamodb.NewFromConfig(b.cfg)
	var rows []resetRow
	for _, n := range sizes {
		row := resetRow{Items: n}
		// The ceiling first and the naive run last: each leaves the table as big as
		// the others did, so the order biases against the reset, if at all.
		o, _, err := b.world.SeedResetOrg(b.ctx, n)
		if err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := ceiling(b.ctx, db, b.world.Table, o.ID, n); err != nil {
			return nil, err
		}
		row.Ceiling = time.Since(t0)

		o, admin, err := b.world.SeedResetOrg(b.ctx, n)
		if err != nil {
			return nil, err
		}
		ev, err := b.world.ConfirmedResetEvent(b.ctx, o, admin)
		if err != nil {
			return nil, err
		}
		ctx, cancel := context.WithTimeout(b.ctx, 15*time.Minute) // the function's timeout
		t0 = time.Now()
		out, err := h.Invoke(ctx, ev)
		row.Reset = time.Since(t0)
		cancel()
		if err == nil {
			err = perf.CheckAnswer(b.world.Flow("support-reset: run"), out)
		}
		if err != nil {
			return nil, err
		}

		if o, _, err = b.world.SeedResetOrg(b.ctx, n); err != nil {
			return nil, err
		}
		t0 = time.Now()
		if err := naive(b.ctx, db, b.world.Table, o.ID, n); err != nil {
			return nil, err
		}
		row.Naive = time.Since(t0)
		log.Printf("  %7d items: reset %v, naive %v, ceiling %v", n, row.Reset.Round(time.Millisecond), row.Naive.Round(time.Millisecond), row.Ceiling.Round(time.Millisecond))
		rows = append(rows, row)
	}
	return rows, nil
}

func vaultKey(tenantID string, i int) map[string]ddbtypes.AttributeValue {
	id := fmt.Sprintf("pw-%07d", i) // as perf.World.SeedResetOrg names them
	return store.VaultItemKey(tenantID, id)
}

func ceiling(ctx context.Context, db *dynamodb.Client, table, tenantID string, n int) error {
	work := make(chan []ddbtypes.WriteRequest)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for range store.VaultShards {
		wg.Go(func() {
			for batch := range work {
				for len(batch) > 0 {
					out, err := db.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{table: batch}})
					if err != nil {
						mu.Lock()
						errs = append(errs, err)
						mu.Unlock()
						break
					}
					batch = out.UnprocessedItems[table]
				}
			}
		})
	}
	for i := 0; i < n; i += 25 {
		batch := make([]ddbtypes.WriteRequest, 0, 25)
		for j := i; j < min(n, i+25); j++ {
			batch = append(batch, ddbtypes.WriteRequest{DeleteRequest: &ddbtypes.DeleteRequest{Key: vaultKey(tenantID, j)}})
		}
		work <- batch
	}
	close(work)
	wg.Wait()
	if len(errs) > 0 {
		return errs[0]
	}
	return nil
}

func naive(ctx context.Context, db *dynamodb.Client, table, tenantID string, n int) error {
	deleted := 0
	for shard := range store.VaultShards {
		p := dynamodb.NewQueryPaginator(db, &dynamodb.QueryInput{
			TableName:              &table,
			KeyConditionExpression: aws.String("pk = :p"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
				":p": &ddbtypes.AttributeValueMemberS{Value: store.VaultPK(tenantID, shard)}},
			ProjectionExpression: aws.String("pk, sk"),
		})
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				return err
			}
			for _, it := range page.Items {
				if _, err := db.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: &table,
					Key: map[string]ddbtypes.AttributeValue{"pk": it["pk"], "sk": it["sk"]}}); err != nil {
					return err
				}
				deleted++
			}
		}
	}
	if deleted != n {
		return fmt.Errorf("naive deleted %d, want %d", deleted, n)
	}
	return nil
}
