package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

// TestMain starts the emulators for the store's integration tests.
func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestVaultShardSpreadsItems(t *testing.T) {
	const n = 32_000
	var per [store.VaultShards]int
	for i := range n {
		s := store.VaultShard(fmt.Sprintf("item-%d", i))
		if s < 0 || s >= store.VaultShards {
			t.Fatalf("shard %d out of range", s)
		}
		per[s]++
	}
	mean := n / store.VaultShards
	for s, c := range per {
		if c < mean*8/10 || c > mean*12/10 {
			t.Errorf("shard %d holds %d items, mean %d: uneven", s, c, mean)
		}
	}
	if first, again := store.VaultShard("abc"), store.VaultShard("abc"); first != again {
		t.Error("VaultShard is not deterministic")
	}
}

// stingy is a DynamoDB that leaves part of each BatchWriteItem unprocessed, as a
// throttled table does.
type stingy struct {
	store.DB
	calls, stingyCalls atomic.Int64
	limit              int64 // how many calls leave items unprocessed
}

func (s *stingy) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	s.calls.Add(1)
	for table, reqs := range in.RequestItems {
		if len(reqs) > 1 && s.stingyCalls.Add(1) <= s.limit {
			half := len(reqs) / 2
			out, err := s.DB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: map[string][]ddbtypes.WriteRequest{table: reqs[:half]}}, opts...)
			if err != nil {
				return nil, err
			}
			out.UnprocessedItems = map[string][]ddbtypes.WriteRequest{table: reqs[half:]}
			return out, nil
		}
	}
	return s.DB.BatchWriteItem(ctx, in, opts...)
}

func vaultItems(tid string, n int) []store.VaultItem {
	items := make([]store.VaultItem, n)
	for i := range items {
		items[i] = store.VaultItem{TenantID: tid, ID: fmt.Sprintf("pw-%05d", i), Data: []byte{1, 2, 3}}
	}
	return items
}

func TestPutAndCountVaultItemsRetriesUnprocessed(t *testing.T) {
	env := testenv.Get(t)
	db := &stingy{DB: dynamodb.NewFromConfig(env.AWSConfig), limit: 20}
	st := store.New(db, env.TableName)
	tid, other := testenv.UniqueName("org"), testenv.UniqueName("org")
	if err := st.PutVaultItems(t.Context(), vaultItems(tid, 1000)); err != nil {
		t.Fatal(err)
	}
	if err := st.PutVaultItems(t.Context(), vaultItems(other, 7)); err != nil {
		t.Fatal(err)
	}
	if db.calls.Load() <= 1000/25+2 {
		t.Errorf("%d calls: unprocessed items were not retried", db.calls.Load())
	}
	for _, c := range []struct {
		tid  string
		want int
	}{{tid, 1000}, {other, 7}, {"org-none", 0}} {
		got, err := st.CountVaultItems(t.Context(), c.tid)
		if err != nil || got != c.want {
			t.Errorf("CountVaultItems(%s) = %d, %v; want %d", c.tid, got, err, c.want)
		}
	}
}

// failing fails BatchWriteItem from the n-th call on, until healed.
type failing struct {
	store.DB
	calls  atomic.Int64
	failAt int64
	healed atomic.Bool
}

func (f *failing) BatchWriteItem(ctx context.Context, in *dynamodb.BatchWriteItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.BatchWriteItemOutput, error) {
	if f.calls.Add(1) >= f.failAt && !f.healed.Load() {
		return nil, errors.New("injected failure")
	}
	return f.DB.BatchWriteItem(ctx, in, opts...)
}

// A run that dies between recording a page and committing it, or that stops at its
// deadline, is finished by the next run with exact counts; the kept user stays.
func TestDeleteTenantDataResumesExactly(t *testing.T) {
	env := testenv.Get(t)
	table := env.NewTable(t)
	raw := dynamodb.NewFromConfig(env.AWSConfig)
	plain := store.New(raw, table)
	ctx := t.Context()
	tid := testenv.UniqueName("org")
	if err := plain.PutVaultItems(ctx, vaultItems(tid, 1500)); err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if err := plain.PutUser(ctx, tenant.User{ID: fmt.Sprintf("u%d", i), TenantID: tid, Email: fmt.Sprintf("u%d@example.test", i), Role: tenant.ProUser}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 2 {
		if err := plain.PutSite(ctx, tenant.Site{ID: fmt.Sprintf("s%d", i), TenantID: tid, Name: "site"}); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 3 {
		if err := plain.PutClaim(ctx, store.Claim{Hash: fmt.Sprintf("%s-%d", tid, i), TenantID: tid, KeyVersion: 1, ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	want := store.ResetCounts{Passwords: 1500, Users: 5, Sites: 2, ClaimLinks: 3}
	if got, err := plain.CountTenantData(ctx, tid, "u0"); err != nil || got != want {
		t.Fatalf("CountTenantData = %+v, %v; want %+v", got, err, want)
	}
	ticket := testenv.UniqueName("T")

	// Run 1 fails part-way: some lanes hold a recorded page, partly deleted.
	fl := &failing{DB: raw, failAt: 15}
	if _, _, err := store.New(fl, table).DeleteTenantData(ctx, ticket, tid, "u0", store.DeleteOptions{PageSize: 60}); err == nil {
		t.Fatal("want the injected failure")
	}
	// Run 2 stops at its deadline at once.
	_, done, err := plain.DeleteTenantData(ctx, ticket, tid, "u0", store.DeleteOptions{StopAt: time.Now().Add(-time.Second)})
	if err != nil || done {
		t.Fatalf("past deadline: done %v, err %v", done, err)
	}
	// Run 3 finishes.
	c, done, err := plain.DeleteTenantData(ctx, ticket, tid, "u0", store.DeleteOptions{Workers: 4})
	if err != nil || !done {
		t.Fatalf("resume: done %v, err %v", done, err)
	}
	if c != want {
		t.Errorf("counts %+v, want %+v (missed or counted twice)", c, want)
	}
	if left, err := plain.CountTenantData(ctx, tid, "u0"); err != nil || left != (store.ResetCounts{}) {
		t.Errorf("left: %+v (%v)", left, err)
	}
	if _, err := plain.GetUser(ctx, tid, "u0"); err != nil {
		t.Errorf("the kept user is gone: %v", err)
	}
	// A finished ticket deletes nothing more and counts the same.
	if err := plain.PutVaultItems(ctx, vaultItems(tid, 1)); err != nil {
		t.Fatal(err)
	}
	again, done, err := plain.DeleteTenantData(ctx, ticket, tid, "u0", store.DeleteOptions{})
	if err != nil || !done || again != want {
		t.Errorf("finished ticket again: %+v %v %v", again, done, err)
	}
}

// rival records a page of its own on the first lane this run is about to record,
// between the run's checkpoint read and its record: a second runner of the same
// ticket that got there first.
type rival struct {
	store.DB
	once    atomic.Bool
	laneKey map[string]ddbtypes.AttributeValue
}

func (r *rival) UpdateItem(ctx context.Context, in *dynamodb.UpdateItemInput, opts ...func(*dynamodb.Options)) (*dynamodb.UpdateItemOutput, error) {
	if strings.HasPrefix(aws.ToString(in.UpdateExpression), "SET pending") && r.once.CompareAndSwap(false, true) {
		r.laneKey = in.Key
		if _, err := r.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName:                 in.TableName,
			Key:                       in.Key,
			UpdateExpression:          aws.String("SET pending = :refs"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":refs": &ddbtypes.AttributeValueMemberL{Value: []ddbtypes.AttributeValue{&ddbtypes.AttributeValueMemberS{Value: "rival-page"}}}},
		}); err != nil {
			return nil, err
		}
	}
	return r.DB.UpdateItem(ctx, in, opts...)
}

// A lane's write-ahead record is never overwritten: a run that finds another
// runner's page recorded in its place stops with a conflict and leaves that page's
// record for the run that owns it (or the next one) to delete and count.
func TestDeleteTenantDataKeepsAnotherRunnersPage(t *testing.T) {
	env := testenv.Get(t)
	table := env.NewTable(t)
	raw := dynamodb.NewFromConfig(env.AWSConfig)
	ctx := t.Context()
	tid := testenv.UniqueName("org")
	if err := store.New(raw, table).PutVaultItems(ctx, vaultItems(tid, 50)); err != nil {
		t.Fatal(err)
	}
	rv := &rival{DB: raw}
	_, done, err := store.New(rv, table).DeleteTenantData(ctx, testenv.UniqueName("T"), tid, "u0", store.DeleteOptions{Workers: 1})
	if err == nil || done {
		t.Fatalf("run over another runner's page: done %v, err %v; want a conflict", done, err)
	}
	if apperr.CodeOf(err) != apperr.Conflict {
		t.Errorf("error %v; want a conflict", err)
	}
	if rv.laneKey == nil {
		t.Fatal("the run recorded no page")
	}
	out, err := raw.GetItem(ctx, &dynamodb.GetItemInput{TableName: &table, Key: rv.laneKey, ConsistentRead: aws.Bool(true)})
	if err != nil {
		t.Fatal(err)
	}
	l, ok := out.Item["pending"].(*ddbtypes.AttributeValueMemberL)
	if !ok || len(l.Value) != 1 {
		t.Fatalf("the other runner's record was overwritten: %v", out.Item["pending"])
	}
	if v, _ := l.Value[0].(*ddbtypes.AttributeValueMemberS); v == nil || v.Value != "rival-page" {
		t.Errorf("the other runner's record was overwritten: %v", l.Value[0])
	}
}
