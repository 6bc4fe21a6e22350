package store

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/tenant"
)

// A support reset is kept under its own partition key, RESET#<ticket>, outside the
// tenant's partition (so the reset never deletes its own record):
//
//	sk RESET          the record: who asked, why, how far it got, the final counts
//	sk LANE#<name>    one checkpoint per deletion lane (vault-00..31, users, sites, claims)
//
// While a reset runs, the organization item carries status "resetting" and
// resetTicket = <ticket>: that attribute is the lock that refuses a second ticket.

// ResetState is how far a reset got. Each state is reached only after the work before
// it is durable, so any invocation can pick up from the stored state.
type ResetState string

const (
	ResetStarted     ResetState = "started"      // recorded, organization locked
	ResetKeyReplaced ResetState = "key_replaced" // a new key is stored; deletion may be under way
	ResetMailed      ResetState = "mailed"       // the kept admin was mailed the current key
	ResetCompleted   ResetState = "completed"    // organization unlocked, final counts stored
)

// ResetCounts counts what a reset deleted (or a dry run would delete), per kind.
type ResetCounts struct {
	Passwords  int `json:"passwords"`
	Users      int `json:"users"`
	Sites      int `json:"sites"`
	ClaimLinks int `json:"claimLinks"`
}

// ResetRecord is the durable record of one support reset (one ticket).
type ResetRecord struct {
	TicketID              string
	TenantID              string
	Agent                 string
	VerificationMethod    string
	VerificationReference string
	KeepAdminID           string
	KeepAdminEmail        string
	State                 ResetState
	OldKeyVersion         int // before the reset
	NewKeyVersion         int // the latest key stored by the reset (0 until then)
	MailedKeyVersion      int // the key version mailed to the kept admin (0 until then)
	Runs                  int // invocations that worked on it
	StartedAt             time.Time
	FinishedAt            time.Time
	Deleted               ResetCounts // final counts, set when completed
}

type resetItem struct {
	PK                    string `dynamodbav:"pk"`
	SK                    string `dynamodbav:"sk"`
	Kind                  string `dynamodbav:"kind"`
	TicketID              string `dynamodbav:"ticketId"`
	TenantID              string `dynamodbav:"tenantId"`
	Agent                 string `dynamodbav:"agent"`
	VerificationMethod    string `dynamodbav:"verificationMethod"`
	VerificationReference string `dynamodbav:"verificationReference"`
	KeepAdminID           string `dynamodbav:"keepAdminId"`
	KeepAdminEmail        string `dynamodbav:"keepAdminEmail"`
	State                 string `dynamodbav:"state"`
	OldKeyVersion         int    `dynamodbav:"oldKeyVersion"`
	NewKeyVersion         int    `dynamodbav:"newKeyVersion"`
	MailedKeyVersion      int    `dynamodbav:"mailedKeyVersion"`
	Runs                  int    `dynamodbav:"runs"`
	StartedAt             string `dynamodbav:"startedAt"`
	FinishedAt            string `dynamodbav:"finishedAt,omitempty"`
	LeaseUntil            string `dynamodbav:"leaseUntil,omitempty"`
	DeletedPasswords      int    `dynamodbav:"deletedPasswords"`
	DeletedUsers          int    `dynamodbav:"deletedUsers"`
	DeletedSites          int    `dynamodbav:"deletedSites"`
	DeletedClaimLinks     int    `dynamodbav:"deletedClaimLinks"`
}

func (it resetItem) record() ResetRecord {
	return ResetRecord{
		TicketID: it.TicketID, TenantID: it.TenantID, Agent: it.Agent,
		VerificationMethod: it.VerificationMethod, VerificationReference: it.VerificationReference,
		KeepAdminID: it.KeepAdminID, KeepAdminEmail: it.KeepAdminEmail, State: ResetState(it.State),
		OldKeyVersion: it.OldKeyVersion, NewKeyVersion: it.NewKeyVersion, MailedKeyVersion: it.MailedKeyVersion,
		Runs: it.Runs, StartedAt: parseTime(it.StartedAt), FinishedAt: parseTime(it.FinishedAt),
		Deleted: ResetCounts{Passwords: it.DeletedPasswords, Users: it.DeletedUsers, Sites: it.DeletedSites, ClaimLinks: it.DeletedClaimLinks},
	}
}

// GetReset reads a reset record (strongly consistent); not_found if there is none.
func (st *Store) GetReset(ctx context.Context, ticket string) (_ ResetRecord, err error) {
	defer apperr.Wrap(&err, "store.GetReset(%q)", ticket)
	var it resetItem
	if err := st.getItem(ctx, resetPK(ticket), resetSK, &it); err != nil {
		return ResetRecord{}, err
	}
	return it.record(), nil
}

// BeginReset records a new reset and locks its organization (status resetting,
// resetTicket) in one transaction, with an audit record, and takes the run lease
// until leaseUntil. If the ticket is already recorded, it changes nothing and returns
// the stored record with created false. If the organization is locked by another
// ticket, it fails with conflict (reason reset_running) naming that ticket.
func (st *Store) BeginReset(ctx context.Context, rec ResetRecord, now, leaseUntil time.Time) (_ ResetRecord, created bool, err error) {
	defer apperr.Wrap(&err, "store.BeginReset(tenant %q, ticket %q)", rec.TenantID, rec.TicketID)
	rec.State, rec.Runs, rec.StartedAt = ResetStarted, 1, now
	recAV, err := attributevalue.MarshalMap(resetItem{
		PK: resetPK(rec.TicketID), SK: resetSK, Kind: "reset", TicketID: rec.TicketID, TenantID: rec.TenantID,
		Agent: rec.Agent, VerificationMethod: rec.VerificationMethod, VerificationReference: rec.VerificationReference,
		KeepAdminID: rec.KeepAdminID, KeepAdminEmail: rec.KeepAdminEmail, State: string(rec.State),
		OldKeyVersion: rec.OldKeyVersion, Runs: 1, StartedAt: formatTime(now), LeaseUntil: formatTime(leaseUntil),
	})
	if err != nil {
		return ResetRecord{}, false, err
	}
	auditAV, err := resetAuditItem(rec, ActionResetStarted, now, nil)
	if err != nil {
		return ResetRecord{}, false, err
	}
	_, err = st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []ddbtypes.TransactWriteItem{
			{Put: &ddbtypes.Put{TableName: &st.Table, Item: recAV, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
			{Update: &ddbtypes.Update{
				TableName:                &st.Table,
				Key:                      key(tenantPK(rec.TenantID), orgSK),
				UpdateExpression:         aws.String("SET #status = :resetting, resetTicket = :t"),
				ConditionExpression:      aws.String("attribute_exists(pk) AND attribute_not_exists(resetTicket) AND keyVersion = :v"),
				ExpressionAttributeNames: map[string]string{"#status": "status"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":resetting": s(string(tenant.Resetting)), ":t": s(rec.TicketID), ":v": n(int64(rec.OldKeyVersion)),
				},
			}},
			{Put: &ddbtypes.Put{TableName: &st.Table, Item: auditAV}},
		},
	})
	if err == nil {
		return rec, true, nil
	}
	var canceled *ddbtypes.TransactionCanceledException
	if !errors.As(err, &canceled) || len(canceled.CancellationReasons) < 2 {
		return ResetRecord{}, false, unavailable(err)
	}
	if aws.ToString(canceled.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		existing, err := st.GetReset(ctx, rec.TicketID)
		return existing, false, err
	}
	if aws.ToString(canceled.CancellationReasons[1].Code) == "ConditionalCheckFailed" {
		other, err := st.orgResetTicket(ctx, rec.TenantID)
		if err != nil {
			return ResetRecord{}, false, err
		}
		if other != "" {
			return ResetRecord{}, false, apperr.New(apperr.Conflict, ReasonResetRunning,
				fmt.Sprintf("another reset (ticket %q) is running for this organization; finish it by invoking it again with its own event", other))
		}
		return ResetRecord{}, false, apperr.New(apperr.Conflict, ReasonOrganizationChanged,
			"the organization changed while the reset started; invoke the reset again")
	}
	return ResetRecord{}, false, unavailable(err)
}

func (st *Store) orgResetTicket(ctx context.Context, tenantID string) (string, error) {
	var it struct {
		ResetTicket string `dynamodbav:"resetTicket"`
	}
	if err := st.getItem(ctx, tenantPK(tenantID), orgSK, &it); err != nil {
		return "", err
	}
	return it.ResetTicket, nil
}

// OrgResetTicket returns the ticket of the reset running on an organization, or "".
func (st *Store) OrgResetTicket(ctx context.Context, tenantID string) (_ string, err error) {
	defer apperr.Wrap(&err, "store.OrgResetTicket(%q)", tenantID)
	return st.orgResetTicket(ctx, tenantID)
}

// AcquireResetRun takes the right to work on a recorded reset until leaseUntil, and
// counts the run. It reports false while another invocation holds it, so that two
// invocations of one ticket never delete side by side.
func (st *Store) AcquireResetRun(ctx context.Context, ticket string, now, leaseUntil time.Time) (_ bool, err error) {
	defer apperr.Wrap(&err, "store.AcquireResetRun(%q)", ticket)
	return st.updateIf(ctx, &dynamodb.UpdateItemInput{
		Key:                 key(resetPK(ticket), resetSK),
		UpdateExpression:    aws.String("SET leaseUntil = :until, runs = runs + :one"),
		ConditionExpression: aws.String("attribute_exists(pk) AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":until": s(formatTime(leaseUntil)), ":now": s(formatTime(now)), ":one": n(1),
		},
	})
}

// ReleaseResetRun gives the run lease back, so the next invocation starts at once.
func (st *Store) ReleaseResetRun(ctx context.Context, ticket string) (err error) {
	defer apperr.Wrap(&err, "store.ReleaseResetRun(%q)", ticket)
	return st.removeAttr(ctx, resetPK(ticket), resetSK, "leaseUntil")
}

// ReplaceOrgKey stores a new wrapped key, version to, in place of version from, on an
// organization locked by ticket, and records the version on the reset; both or
// neither. The old ciphertext is overwritten: from now on the old key, and everything
// encrypted under it, is unreadable (crypto-shredding), and every claim link bound to
// the old version is dead.
func (st *Store) ReplaceOrgKey(ctx context.Context, tenantID, ticket string, from, to int, wrapped []byte) (err error) {
	defer apperr.Wrap(&err, "store.ReplaceOrgKey(tenant %q, ticket %q, version %d)", tenantID, ticket, to)
	_, err = st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []ddbtypes.TransactWriteItem{
			{Update: &ddbtypes.Update{
				TableName:           &st.Table,
				Key:                 key(tenantPK(tenantID), orgSK),
				UpdateExpression:    aws.String("SET wrappedKey = :w, keyVersion = :to"),
				ConditionExpression: aws.String("resetTicket = :t AND keyVersion = :from"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":w": &ddbtypes.AttributeValueMemberB{Value: wrapped}, ":to": n(int64(to)),
					":t": s(ticket), ":from": n(int64(from)),
				},
			}},
			{Update: &ddbtypes.Update{
				TableName:                &st.Table,
				Key:                      key(resetPK(ticket), resetSK),
				UpdateExpression:         aws.String("SET newKeyVersion = :to, #state = :replaced"),
				ConditionExpression:      aws.String("#state IN (:started, :replaced)"),
				ExpressionAttributeNames: map[string]string{"#state": "state"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":to": n(int64(to)), ":started": s(string(ResetStarted)), ":replaced": s(string(ResetKeyReplaced)),
				},
			}},
		},
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// MarkResetMailed records that the kept admin was mailed key version version.
func (st *Store) MarkResetMailed(ctx context.Context, ticket string, version int) (err error) {
	defer apperr.Wrap(&err, "store.MarkResetMailed(%q)", ticket)
	_, err = st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                &st.Table,
		Key:                      key(resetPK(ticket), resetSK),
		UpdateExpression:         aws.String("SET #state = :mailed, mailedKeyVersion = :v"),
		ConditionExpression:      aws.String("#state = :replaced AND newKeyVersion = :v"),
		ExpressionAttributeNames: map[string]string{"#state": "state"},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":mailed": s(string(ResetMailed)), ":replaced": s(string(ResetKeyReplaced)), ":v": n(int64(version)),
		},
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// FinishReset unlocks the organization (status active), stores the final counts on the
// record and appends the audit record, in one transaction.
func (st *Store) FinishReset(ctx context.Context, rec ResetRecord, now time.Time) (err error) {
	defer apperr.Wrap(&err, "store.FinishReset(tenant %q, ticket %q)", rec.TenantID, rec.TicketID)
	d := rec.Deleted
	auditAV, err := resetAuditItem(rec, ActionResetCompleted, now, map[string]string{
		"oldKeyVersion": fmt.Sprint(rec.OldKeyVersion), "newKeyVersion": fmt.Sprint(rec.MailedKeyVersion),
		"deletedPasswords": fmt.Sprint(d.Passwords), "deletedUsers": fmt.Sprint(d.Users),
		"deletedSites": fmt.Sprint(d.Sites), "deletedClaimLinks": fmt.Sprint(d.ClaimLinks),
		"runs": fmt.Sprint(rec.Runs),
	})
	if err != nil {
		return err
	}
	_, err = st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []ddbtypes.TransactWriteItem{
			{Update: &ddbtypes.Update{
				TableName:                &st.Table,
				Key:                      key(tenantPK(rec.TenantID), orgSK),
				UpdateExpression:         aws.String("SET #status = :active REMOVE resetTicket"),
				ConditionExpression:      aws.String("resetTicket = :t"),
				ExpressionAttributeNames: map[string]string{"#status": "status"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":active": s(string(tenant.Active)), ":t": s(rec.TicketID),
				},
			}},
			{Update: &ddbtypes.Update{
				TableName: &st.Table,
				Key:       key(resetPK(rec.TicketID), resetSK),
				UpdateExpression: aws.String("SET #state = :done, finishedAt = :now, deletedPasswords = :p, " +
					"deletedUsers = :u, deletedSites = :s, deletedClaimLinks = :c REMOVE leaseUntil"),
				ConditionExpression:      aws.String("#state = :mailed"),
				ExpressionAttributeNames: map[string]string{"#state": "state"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":done": s(string(ResetCompleted)), ":mailed": s(string(ResetMailed)), ":now": s(formatTime(now)),
					":p": n(int64(d.Passwords)), ":u": n(int64(d.Users)), ":s": n(int64(d.Sites)), ":c": n(int64(d.ClaimLinks)),
				},
			}},
			{Put: &ddbtypes.Put{TableName: &st.Table, Item: auditAV}},
		},
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// resetAuditItem is an audit record (audit.go's layout) of a reset event, written in
// the same transaction as the step it records, so it exists exactly once.
func resetAuditItem(rec ResetRecord, action string, now time.Time, extra map[string]string) (map[string]ddbtypes.AttributeValue, error) {
	id, err := tenant.NewID(rand.Reader, "")
	if err != nil {
		return nil, err
	}
	detail := map[string]string{
		"ticketId": rec.TicketID, "verificationMethod": rec.VerificationMethod,
		"verificationReference": rec.VerificationReference, "keepAdminEmail": rec.KeepAdminEmail,
	}
	for k, v := range extra {
		detail[k] = v
	}
	at := formatTime(now)
	return attributevalue.MarshalMap(auditItem{
		PK: auditPK(rec.TenantID), SK: auditSK(at, id), Kind: "audit",
		AuditRecord: AuditRecord{
			TenantID: rec.TenantID, At: at, Action: action, Outcome: "ok",
			ActorID: rec.Agent, TargetID: rec.KeepAdminID, Detail: detail,
		},
	})
}

// CountTenantData counts what a reset of the tenant would delete: every vault item,
// every user but keepUserID, every site and every claim link.
func (st *Store) CountTenantData(ctx context.Context, tenantID, keepUserID string) (_ ResetCounts, err error) {
	defer apperr.Wrap(&err, "store.CountTenantData(%q)", tenantID)
	var c ResetCounts
	var wg sync.WaitGroup
	var errs [4]error
	wg.Go(func() { c.Passwords, errs[0] = st.CountVaultItems(ctx, tenantID) })
	wg.Go(func() {
		c.Users, errs[1] = st.countQuery(ctx, &dynamodb.QueryInput{
			KeyConditionExpression:    aws.String("pk = :p AND begins_with(sk, :u)"),
			FilterExpression:          aws.String("userId <> :keep"), // a key attribute cannot be filtered on
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(tenantPK(tenantID)), ":u": s(userPrefix), ":keep": s(keepUserID)},
			ConsistentRead:            aws.Bool(true),
		})
	})
	wg.Go(func() {
		c.Sites, errs[2] = st.countQuery(ctx, &dynamodb.QueryInput{
			KeyConditionExpression:    aws.String("pk = :p AND begins_with(sk, :s)"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(tenantPK(tenantID)), ":s": s(sitePrefix)},
			ConsistentRead:            aws.Bool(true),
		})
	})
	wg.Go(func() {
		c.ClaimLinks, errs[3] = st.countQuery(ctx, &dynamodb.QueryInput{
			IndexName:                 aws.String(GSI1),
			KeyConditionExpression:    aws.String("gsi1pk = :p"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(ClaimsIndexKey(tenantID))},
		})
	})
	wg.Wait()
	return c, errors.Join(errs[:]...)
}

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
}

// A lane is one stream of keys to delete with its own checkpoint: one per vault
// shard, plus users, sites and claim links. Lanes run in parallel.
type lane struct {
	name  string
	kind  string // "passwords", "users", "sites", "claimLinks"
	query dynamodb.QueryInput
	// ref turns a queried item into the compact reference the checkpoint stores
	// (ok false: keep the item); key turns a reference back into the item's key.
	ref func(item map[string]ddbtypes.AttributeValue) (string, bool)
	key func(ref string) map[string]ddbtypes.AttributeValue
}

func keysOnly(in dynamodb.QueryInput) dynamodb.QueryInput {
	in.ProjectionExpression = aws.String("#pk, #sk")
	in.ExpressionAttributeNames = map[string]string{"#pk": "pk", "#sk": "sk"}
	return in
}

func attrS(item map[string]ddbtypes.AttributeValue, name string) string {
	v, _ := item[name].(*ddbtypes.AttributeValueMemberS)
	if v == nil {
		return ""
	}
	return v.Value
}

// resetLanes lists the lanes of a tenant's reset. Within a fixed partition key a
// checkpoint stores only sort keys; claim links (one partition each) store both.
func resetLanes(tenantID, keepUserID string) []lane {
	var lanes []lane
	bySK := func(pk string) func(string) map[string]ddbtypes.AttributeValue {
		return func(ref string) map[string]ddbtypes.AttributeValue { return key(pk, ref) }
	}
	for shard := range VaultShards {
		pk := VaultPK(tenantID, shard)
		lanes = append(lanes, lane{
			name: fmt.Sprintf("vault-%02d", shard), kind: "passwords",
			query: keysOnly(dynamodb.QueryInput{
				KeyConditionExpression:    aws.String("#pk = :p"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(pk)},
				ConsistentRead:            aws.Bool(true),
			}),
			ref: func(item map[string]ddbtypes.AttributeValue) (string, bool) { return attrS(item, "sk"), true },
			key: bySK(pk),
		})
	}
	tpk := tenantPK(tenantID)
	keep := userSK(keepUserID)
	for _, l := range []struct{ name, kind, prefix string }{{"users", "users", userPrefix}, {"sites", "sites", sitePrefix}} {
		lanes = append(lanes, lane{
			name: l.name, kind: l.kind,
			query: keysOnly(dynamodb.QueryInput{
				KeyConditionExpression:    aws.String("#pk = :p AND begins_with(#sk, :prefix)"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(tpk), ":prefix": s(l.prefix)},
				ConsistentRead:            aws.Bool(true),
			}),
			ref: func(item map[string]ddbtypes.AttributeValue) (string, bool) {
				sk := attrS(item, "sk")
				return sk, sk != keep
			},
			key: bySK(tpk),
		})
	}
	lanes = append(lanes, lane{
		name: "claims", kind: "claimLinks",
		query: keysOnly(dynamodb.QueryInput{
			IndexName:                 aws.String(GSI1),
			KeyConditionExpression:    aws.String("gsi1pk = :p"),
			ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":p": s(ClaimsIndexKey(tenantID))},
		}),
		ref: func(item map[string]ddbtypes.AttributeValue) (string, bool) {
			return attrS(item, "pk") + "\n" + attrS(item, "sk"), true
		},
		key: func(ref string) map[string]ddbtypes.AttributeValue {
			pk, sk, _ := strings.Cut(ref, "\n")
			return key(pk, sk)
		},
	})
	return lanes
}

type laneItem struct {
	SK      string   `dynamodbav:"sk"`
	Kind    string   `dynamodbav:"laneKind"`
	Deleted int      `dynamodbav:"deleted"`
	Pending []string `dynamodbav:"pending,omitempty"`
	Done    bool     `dynamodbav:"done"`
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
		if err := st.deleteRefs(ctx, l, cp.Pending, inflight); err != nil {
			return false, err
		}
		if err := st.commitPage(ctx, ticket, l, len(cp.Pending), false); err != nil {
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
			if err := st.deleteRefs(ctx, l, refs, inflight); err != nil {
				return false, err
			}
			// The last page's commit also marks the lane done: one write fewer.
			if err := st.commitPage(ctx, ticket, l, len(refs), last); err != nil {
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
func (st *Store) commitPage(ctx context.Context, ticket string, l lane, count int, done bool) error {
	update := "SET deleted = if_not_exists(deleted, :zero) + :n, laneKind = :kind REMOVE pending"
	values := map[string]ddbtypes.AttributeValue{":zero": n(0), ":n": n(int64(count)), ":kind": s(l.kind)}
	if done {
		update = "SET deleted = if_not_exists(deleted, :zero) + :n, laneKind = :kind, done = :t REMOVE pending"
		values[":t"] = &ddbtypes.AttributeValueMemberBOOL{Value: true}
	}
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
