package reset_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

// BenchmarkReset seeds an organization's vault on DynamoDB Local and deletes it two
// ways in the same run: the reset's sharded, parallel, checkpointed deletion (the
// whole run of a confirmed reset: lock, key replacement, deletion, mail, finish), and a naive baseline
// that lists the items and deletes them one DeleteItem at a time. Seeding is not
// timed. It reports items deleted per second (items/s) and seconds per run.
//
//	go test -run '^$' -bench BenchmarkReset -benchtime 1x ./internal/reset/
//	ORGKEY_BENCH_100K=1 go test -run '^$' -bench BenchmarkReset -benchtime 1x -timeout 60m ./internal/reset/
//
// The 100k case runs only with ORGKEY_BENCH_100K=1: the naive baseline alone takes
// minutes.
func BenchmarkReset(b *testing.B) {
	sizes := []int{10_000}
	if os.Getenv("ORGKEY_BENCH_100K") == "1" {
		sizes = append(sizes, 100_000)
	}
	for _, n := range sizes {
		b.Run(fmt.Sprintf("items=%d/sharded", n), func(b *testing.B) { benchSharded(b, n) })
		b.Run(fmt.Sprintf("items=%d/naive", n), func(b *testing.B) { benchNaive(b, n) })
	}
}

// seedBench seeds one organization with n passwords in a table of its own.
func seedBench(b *testing.B, n int) (*fixture, *org) {
	b.Helper()
	f := newFixture(b, testenv.Get(b).NewTable(b))
	return f, seedOrg(b, f, n)
}

func benchSharded(b *testing.B, n int) {
	b.StopTimer()
	var elapsed time.Duration
	for range b.N {
		f, o := seedBench(b, n)
		raw := o.event(b, newTicket(), false)
		f.confirmed(b, o, raw) // the two phases are not the deletion's time
		b.StartTimer()
		began := time.Now()
		rep, err := f.handler.Handle(context.Background(), raw)
		elapsed += time.Since(began)
		b.StopTimer()
		if err != nil || rep.Status != "completed" || rep.Deleted.Passwords != n {
			b.Fatalf("reset: %+v, %v", rep, err)
		}
	}
	report(b, n, elapsed)
}

func benchNaive(b *testing.B, n int) {
	b.StopTimer()
	var elapsed time.Duration
	for range b.N {
		f, o := seedBench(b, n)
		db := dynamodb.NewFromConfig(f.env.AWSConfig)
		b.StartTimer()
		began := time.Now()
		deleted := 0
		for shard := range store.VaultShards {
			p := dynamodb.NewQueryPaginator(db, &dynamodb.QueryInput{
				TableName:                 &f.table,
				KeyConditionExpression:    aws.String("pk = :p"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": &ddbtypes.AttributeValueMemberS{Value: store.VaultPK(o.ID, shard)}},
				ProjectionExpression:      aws.String("pk, sk"),
			})
			for p.HasMorePages() {
				page, err := p.NextPage(context.Background())
				if err != nil {
					b.Fatal(err)
				}
				for _, it := range page.Items {
					if _, err := db.DeleteItem(context.Background(), &dynamodb.DeleteItemInput{
						TableName: &f.table, Key: map[string]ddbtypes.AttributeValue{"pk": it["pk"], "sk": it["sk"]},
					}); err != nil {
						b.Fatal(err)
					}
					deleted++
				}
			}
		}
		elapsed += time.Since(began)
		b.StopTimer()
		if deleted != n {
			b.Fatalf("naive deleted %d, want %d", deleted, n)
		}
	}
	report(b, n, elapsed)
}

func report(b *testing.B, n int, elapsed time.Duration) {
	b.ReportMetric(float64(n*b.N)/elapsed.Seconds(), "items/s")
	b.ReportMetric(elapsed.Seconds()/float64(b.N), "s/run")
	b.ReportMetric(0, "ns/op") // the timer includes waits on the emulator; items/s is the figure
}
