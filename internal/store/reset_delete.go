package store

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
)

// The deletion engine of a support reset: the lanes of reset_lanes.go deleted in
// parallel, in checkpointed pages, resumable by the next run after any stop.

// DeleteOptions tunes DeleteTenantData.
type DeleteOptions struct {
	// Workers is how many lanes delete at once; 0 means all of them (VaultShards + 3).
	Workers int
	// PageSize is how many keys a lane reads, checkpoints and deletes at a time
	// (16 BatchWriteItem calls, sent together, at 400); 0 means 400. A page's
	// checkpoint holds its keys, so it stays far below DynamoDB's 400 KB item size.
	PageSize int
	// Batches bounds the BatchWriteItem calls in flight over all lanes; 0 means 32.
	Batches int
	// StopAt, when set, is when lanes stop taking new pages; the page in flight
	// finishes. Now is the clock it is compared with.
	StopAt time.Time
	Now    func() time.Time
	// DeleteAccounts, when set, deletes the sign-in accounts of a page of removed
	// users (their ids, the Cognito subs) before their items go, under the same
	// write-ahead record: a run that stops in between deletes the page's accounts
	// again, so it must count an account already gone as deleted. The users lane
	// then counts the page's accounts with its users.
	DeleteAccounts func(ctx context.Context, userIDs []string) error
}

type laneItem struct {
	SK       string   `dynamodbav:"sk"`
	Kind     string   `dynamodbav:"laneKind"`
	Deleted  int      `dynamodbav:"deleted"`
	Accounts int      `dynamodbav:"accounts"`
	Pending  []string `dynamodbav:"pending,omitempty"`
	Done     bool     `dynamodbav:"done"`
}

// DeleteTenantData deletes everything a reset removes (see CountTenantData), lanes in
// parallel, in pages that are checkpointed under the reset's ticket with a
// write-ahead scheme: a lane first records the keys of the page it is about to delete,
// then deletes them (BatchWriteItem), then adds their number to its count and clears
// the record. A run that stops anywhere in between leaves either a clean checkpoint
// or a recorded page, which the next run deletes again (deleting is idempotent) and
// counts once; so no item is missed and none is counted twice.
//
// It returns the counts so far, over every run of the ticket, and whether every lane
// finished. With o.StopAt set it returns unfinished, without error, once that time
// passes.
func (st *Store) DeleteTenantData(ctx context.Context, ticket, tenantID, keepUserID string, o DeleteOptions) (_ ResetCounts, done bool, err error) {
	defer apperr.Wrap(&err, "store.DeleteTenantData(tenant %q, ticket %q)", tenantID, ticket)
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.PageSize <= 0 {
		o.PageSize = defaultPageSize
	}
	if o.Batches <= 0 {
		o.Batches = defaultBatches
	}
	inflight := make(chan struct{}, o.Batches)
	lanes := resetLanes(tenantID, keepUserID)
	checkpoints, err := st.laneCheckpoints(ctx, ticket)
	if err != nil {
		return ResetCounts{}, false, err
	}
	if o.Workers <= 0 || o.Workers > len(lanes) {
		o.Workers = len(lanes)
	}
	// The first failure stops the others; a lane cut mid-page is safe (see above).
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	work := make(chan lane)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		finished int
		errs     []error
	)
	for range o.Workers {
		wg.Go(func() {
			for l := range work {
				ok, err := st.runLane(ctx, ticket, l, checkpoints[laneSK(l.name)], o, inflight)
				mu.Lock()
				if err != nil {
					errs = append(errs, err)
					cancel(err)
				} else if ok {
					finished++
				}
				mu.Unlock()
			}
		})
	}
	for _, l := range lanes {
		work <- l
	}
	close(work)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return ResetCounts{}, false, err
	}
	counts, err := st.resetProgress(context.WithoutCancel(ctx), ticket)
	if err != nil {
		return ResetCounts{}, false, err
	}
	return counts, finished == len(lanes), nil
}

// At 100 keys a page, a lane spent most of its time on the page's serial round trips
// (query, record, four batches one after the other, commit, finish). Now a page is
// 400 keys, its batches go out together, the next page is read meanwhile and the
// last commit marks the lane done. In flight over all lanes, BatchWriteItem calls
// are bounded as the benchmark's ceiling bounds them (32): unbounded (35 lanes × 16
// batches) was slower than the old pages on DynamoDB Local.
const (
	defaultPageSize = 400
	defaultBatches  = 32
)

// queryResult is a page read ahead.
type queryResult struct {
	page *dynamodb.QueryOutput
	err  error
}

// runLane deletes one lane to its end, or until o.StopAt; it reports whether the lane
// is finished. It reads the next page while it deletes the current one: the next
// page starts after the current page's last key, which deleting does not move.
func (st *Store) runLane(ctx context.Context, ticket string, l lane, cp laneItem, o DeleteOptions, inflight chan struct{}) (bool, error) {
	switch {
	case cp.Done:
		return true, nil
	case len(cp.Pending) > 0:
		// The previous run recorded this page and may have deleted some of it.
		if err := st.deletePage(ctx, l, cp.Pending, o, inflight); err != nil {
			return false, err
		}
		if err := st.commitPage(ctx, ticket, l, len(cp.Pending), false, o); err != nil {
			return false, err
		}
	}
	in := l.query
	in.TableName = &st.Table
	in.Limit = aws.Int32(int32(o.PageSize))
	query := func(start map[string]ddbtypes.AttributeValue) <-chan queryResult {
		ch := make(chan queryResult, 1) // never blocks: an abandoned read ahead ends alone
		q := in
		q.ExclusiveStartKey = start
		go func() {
			page, err := st.DB.Query(ctx, &q)
			ch <- queryResult{page, err}
		}()
		return ch
	}
	next := query(nil)
	for {
		if !o.StopAt.IsZero() && !o.Now().Before(o.StopAt) {
			<-next // let the read ahead end rather than cut it when DeleteTenantData returns
			return false, nil
		}
		r := <-next
		if r.err != nil {
			return false, unavailable(r.err)
		}
		last := len(r.page.LastEvaluatedKey) == 0
		if !last {
			next = query(r.page.LastEvaluatedKey)
		}
		refs := make([]string, 0, len(r.page.Items))
		for _, item := range r.page.Items {
			if ref, ok := l.ref(item); ok {
				refs = append(refs, ref)
			}
		}
		if len(refs) > 0 {
			if err := st.recordPage(ctx, ticket, l, refs); err != nil {
				return false, err
			}
			if err := st.deletePage(ctx, l, refs, o, inflight); err != nil {
				return false, err
			}
			// The last page's commit also marks the lane done: one write fewer.
			if err := st.commitPage(ctx, ticket, l, len(refs), last, o); err != nil {
				return false, err
			}
		} else if last {
			if err := st.finishLane(ctx, ticket, l); err != nil {
				return false, err
			}
		}
		if last {
			return true, nil
		}
	}
}

// deletePage deletes a recorded page: for the users lane, the users' accounts
// first (o.DeleteAccounts), then the items.
func (st *Store) deletePage(ctx context.Context, l lane, refs []string, o DeleteOptions, inflight chan struct{}) error {
	if l.kind == "users" && o.DeleteAccounts != nil {
		ids := make([]string, len(refs))
		for i, ref := range refs {
			ids[i] = strings.TrimPrefix(ref, userPrefix)
		}
		if err := o.DeleteAccounts(ctx, ids); err != nil {
			return err
		}
	}
	return st.deleteRefs(ctx, l, refs, inflight)
}

// deleteRefs deletes a page's keys, its batches at once as far as inflight allows.
func (st *Store) deleteRefs(ctx context.Context, l lane, refs []string, inflight chan struct{}) error {
	reqs := make([]ddbtypes.WriteRequest, len(refs))
	for i, ref := range refs {
		reqs[i] = ddbtypes.WriteRequest{DeleteRequest: &ddbtypes.DeleteRequest{Key: l.key(ref)}}
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for len(reqs) > 0 {
		batch := reqs[:min(batchSize, len(reqs))]
		reqs = reqs[len(batch):]
		inflight <- struct{}{}
		wg.Go(func() {
			defer func() { <-inflight }()
			if err := st.writeBatch(ctx, batch); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// recordPage is the write-ahead step. The condition catches a second runner of the
// same ticket (the run lease should already have stopped it).
func (st *Store) recordPage(ctx context.Context, ticket string, l lane, refs []string) error {
	_, err := st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:           &st.Table,
		Key:                 key(resetPK(ticket), laneSK(l.name)),
		UpdateExpression:    aws.String("SET pending = :refs, laneKind = :kind"),
		ConditionExpression: aws.String("attribute_not_exists(pending)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":refs": stringList(refs), ":kind": s(l.kind),
		},
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// commitPage counts a deleted page and clears its record; with done, it also marks
// the lane finished.
func (st *Store) commitPage(ctx context.Context, ticket string, l lane, count int, done bool, o DeleteOptions) error {
	set := "SET deleted = if_not_exists(deleted, :zero) + :n, laneKind = :kind"
	values := map[string]ddbtypes.AttributeValue{":zero": n(0), ":n": n(int64(count)), ":kind": s(l.kind)}
	if l.kind == "users" && o.DeleteAccounts != nil {
		set += ", accounts = if_not_exists(accounts, :zero) + :n"
	}
	if done {
		set += ", done = :t"
		values[":t"] = &ddbtypes.AttributeValueMemberBOOL{Value: true}
	}
	update := set + " REMOVE pending"
	_, err := st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &st.Table,
		Key:                       key(resetPK(ticket), laneSK(l.name)),
		UpdateExpression:          aws.String(update),
		ExpressionAttributeValues: values,
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

func (st *Store) finishLane(ctx context.Context, ticket string, l lane) error {
	_, err := st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:        &st.Table,
		Key:              key(resetPK(ticket), laneSK(l.name)),
		UpdateExpression: aws.String("SET done = :t, laneKind = :kind, deleted = if_not_exists(deleted, :zero)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":t": &ddbtypes.AttributeValueMemberBOOL{Value: true}, ":kind": s(l.kind), ":zero": n(0),
		},
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// laneCheckpoints reads the checkpoints of every lane of a reset at once, by sort key
// (one Query rather than a GetItem per lane).
func (st *Store) laneCheckpoints(ctx context.Context, ticket string) (map[string]laneItem, error) {
	cps := map[string]laneItem{}
	err := queryEach(ctx, st, &dynamodb.QueryInput{
		KeyConditionExpression: aws.String("pk = :p AND begins_with(sk, :lane)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":p": s(resetPK(ticket)), ":lane": s(lanePrefix),
		},
		ConsistentRead: aws.Bool(true),
	}, func(it laneItem) bool {
		cps[it.SK] = it
		return true
	})
	if err != nil {
		return nil, err
	}
	return cps, nil
}

// ResetProgress sums the lanes' checkpoints of a reset: what it deleted so far.
func (st *Store) ResetProgress(ctx context.Context, ticket string) (_ ResetCounts, err error) {
	defer apperr.Wrap(&err, "store.ResetProgress(%q)", ticket)
	return st.resetProgress(ctx, ticket)
}

// resetProgress sums the lanes' checkpoints.
func (st *Store) resetProgress(ctx context.Context, ticket string) (ResetCounts, error) {
	cps, err := st.laneCheckpoints(ctx, ticket)
	if err != nil {
		return ResetCounts{}, err
	}
	var c ResetCounts
	for _, it := range cps {
		switch it.Kind {
		case "passwords":
			c.Passwords += it.Deleted
		case "users":
			c.Users += it.Deleted
			c.Accounts += it.Accounts
		case "sites":
			c.Sites += it.Deleted
		case "claimLinks":
			c.ClaimLinks += it.Deleted
		}
	}
	return c, nil
}

func stringList(v []string) ddbtypes.AttributeValue {
	l := make([]ddbtypes.AttributeValue, len(v))
	for i, x := range v {
		l[i] = s(x)
	}
	return &ddbtypes.AttributeValueMemberL{Value: l}
}
