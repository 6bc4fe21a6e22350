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
	// ResetPending: support scheduled it; nothing is changed until the kept admin
	// confirms it (before ConfirmBy) from their own signed-in browser.
	ResetPending ResetState = "pending_confirmation"
	// ResetConfirmed: the kept admin confirmed; the next run starts it.
	ResetConfirmed   ResetState = "confirmed"
	ResetStarted     ResetState = "started"      // running, organization locked
	ResetKeyReplaced ResetState = "key_replaced" // a new key is stored; deletion may be under way
	ResetMailed      ResetState = "mailed"       // the kept admin was mailed the current key
	ResetCompleted   ResetState = "completed"    // organization unlocked, final counts stored
	// ResetCancelled: cancelled before it started (pending or confirmed); nothing was
	// changed, and the organization is free again.
	ResetCancelled ResetState = "cancelled"
)

// ResetCounts counts what a reset deleted (or a dry run would delete), per kind.
type ResetCounts struct {
	Passwords  int `json:"passwords"`
	Users      int `json:"users"`
	Sites      int `json:"sites"`
	ClaimLinks int `json:"claimLinks"`
	// Accounts counts the removed users' sign-in (Cognito) accounts deleted, an
	// account already gone included. A dry run leaves it 0: it equals users once done.
	Accounts int `json:"accounts"`
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
	OldKeyVersion         int       // before the reset
	NewKeyVersion         int       // the latest key stored by the reset (0 until then)
	MailedKeyVersion      int       // the key version mailed to the kept admin (0 until then)
	Runs                  int       // invocations that worked on it
	RequestedAt           time.Time // when support scheduled it
	ConfirmBy             time.Time // a pending reset not confirmed before then has expired
	ConfirmMailed         bool      // the kept admin was mailed the current confirmation link
	ConfirmedAt           time.Time
	ConfirmedBy           string    // the kept admin's user id, from their access token
	RunAfter              time.Time // a confirmed reset starts no earlier (the cool-off)
	CancelledAt           time.Time
	CancelledBy           string // a user id, or "support:<agent>"
	StartedAt             time.Time
	FinishedAt            time.Time
	Deleted               ResetCounts // final counts, set when completed
	LeaseUntil            time.Time   // when the run lease runs out unless renewed; zero when free
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
	RequestedAt           string `dynamodbav:"requestedAt,omitempty"`
	ConfirmBy             string `dynamodbav:"confirmBy,omitempty"`
	ConfirmHash           string `dynamodbav:"confirmHash,omitempty"`
	ConfirmMailed         bool   `dynamodbav:"confirmMailed"`
	ConfirmedAt           string `dynamodbav:"confirmedAt,omitempty"`
	ConfirmedBy           string `dynamodbav:"confirmedBy,omitempty"`
	RunAfter              string `dynamodbav:"runAfter,omitempty"`
	CancelledAt           string `dynamodbav:"cancelledAt,omitempty"`
	CancelledBy           string `dynamodbav:"cancelledBy,omitempty"`
	StartedAt             string `dynamodbav:"startedAt,omitempty"`
	FinishedAt            string `dynamodbav:"finishedAt,omitempty"`
	LeaseUntil            string `dynamodbav:"leaseUntil,omitempty"`
	LeaseOwner            string `dynamodbav:"leaseOwner,omitempty"`
	DeletedPasswords      int    `dynamodbav:"deletedPasswords"`
	DeletedUsers          int    `dynamodbav:"deletedUsers"`
	DeletedSites          int    `dynamodbav:"deletedSites"`
	DeletedClaimLinks     int    `dynamodbav:"deletedClaimLinks"`
	DeletedAccounts       int    `dynamodbav:"deletedAccounts"`
}

func (it resetItem) record() ResetRecord {
	return ResetRecord{
		TicketID: it.TicketID, TenantID: it.TenantID, Agent: it.Agent,
		VerificationMethod: it.VerificationMethod, VerificationReference: it.VerificationReference,
		KeepAdminID: it.KeepAdminID, KeepAdminEmail: it.KeepAdminEmail, State: ResetState(it.State),
		OldKeyVersion: it.OldKeyVersion, NewKeyVersion: it.NewKeyVersion, MailedKeyVersion: it.MailedKeyVersion,
		RequestedAt: parseTime(it.RequestedAt), ConfirmBy: parseTime(it.ConfirmBy), ConfirmMailed: it.ConfirmMailed,
		ConfirmedAt: parseTime(it.ConfirmedAt), ConfirmedBy: it.ConfirmedBy, RunAfter: parseTime(it.RunAfter),
		CancelledAt: parseTime(it.CancelledAt), CancelledBy: it.CancelledBy,
		Runs: it.Runs, StartedAt: parseTime(it.StartedAt), FinishedAt: parseTime(it.FinishedAt), LeaseUntil: parseTime(it.LeaseUntil),
		Deleted: ResetCounts{Passwords: it.DeletedPasswords, Users: it.DeletedUsers, Sites: it.DeletedSites, ClaimLinks: it.DeletedClaimLinks, Accounts: it.DeletedAccounts},
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

// StartReset starts a confirmed reset: it locks its organization (status resetting)
// and moves the record to started with the run lease for owner until leaseUntil, in
// one transaction with the audit record. The organization must still be held by the
// ticket (ScheduleReset's lock) at the reset's old key version. It fails with
// conflict (reason reset_not_confirmed) when the record is no longer confirmed
// (another invocation started it first) or its cool-off (runAfter) is not over.
func (st *Store) StartReset(ctx context.Context, rec ResetRecord, owner string, now, leaseUntil time.Time) (err error) {
	defer apperr.Wrap(&err, "store.StartReset(tenant %q, ticket %q)", rec.TenantID, rec.TicketID)
	rec.State, rec.StartedAt = ResetStarted, now
	auditAV, err := resetAuditItem(rec, ActionResetStarted, now, nil)
	if err != nil {
		return err
	}
	_, err = st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []ddbtypes.TransactWriteItem{
			{Update: &ddbtypes.Update{
				TableName: &st.Table,
				Key:       key(resetPK(rec.TicketID), resetSK),
				UpdateExpression: aws.String("SET #state = :started, startedAt = :now, runs = :one, " +
					"leaseUntil = :until, leaseOwner = :o"),
				ConditionExpression:      aws.String("#state = :confirmed AND runAfter <= :now"),
				ExpressionAttributeNames: map[string]string{"#state": "state"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":started": s(string(ResetStarted)), ":confirmed": s(string(ResetConfirmed)), ":now": s(formatTime(now)),
					":one": n(1), ":until": s(formatTime(leaseUntil)), ":o": s(owner),
				},
			}},
			{Update: &ddbtypes.Update{
				TableName:                &st.Table,
				Key:                      key(tenantPK(rec.TenantID), orgSK),
				UpdateExpression:         aws.String("SET #status = :resetting"),
				ConditionExpression:      aws.String("resetTicket = :t AND keyVersion = :v AND attribute_not_exists(resetPendingUntil)"),
				ExpressionAttributeNames: map[string]string{"#status": "status"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":resetting": s(string(tenant.Resetting)), ":t": s(rec.TicketID), ":v": n(int64(rec.OldKeyVersion)),
				},
			}},
			{Put: &ddbtypes.Put{TableName: &st.Table, Item: auditAV}},
		},
	})
	if err == nil {
		return nil
	}
	var canceled *ddbtypes.TransactionCanceledException
	if !errors.As(err, &canceled) || len(canceled.CancellationReasons) < 2 {
		return unavailable(err)
	}
	if aws.ToString(canceled.CancellationReasons[0].Code) == "ConditionalCheckFailed" {
		return apperr.New(apperr.Conflict, ReasonResetNotConfirmed, "the reset is no longer waiting to start")
	}
	if aws.ToString(canceled.CancellationReasons[1].Code) == "ConditionalCheckFailed" {
		return apperr.New(apperr.Conflict, ReasonOrganizationChanged,
			"the organization's key changed since the reset was scheduled; schedule a new reset with a new ticket")
	}
	return unavailable(err)
}

// ResetQuietPeriod: after a reset completes, no other ticket resets the organization
// for this long (one reset per request: a duplicate ticket would replace the key the
// admin was just mailed).
const ResetQuietPeriod = 24 * time.Hour

// resetLock is what the organization item says of its resets.
type resetLock struct {
	ResetTicket       string `dynamodbav:"resetTicket"`
	ResetPendingUntil string `dynamodbav:"resetPendingUntil"`
	LastResetTicket   string `dynamodbav:"lastResetTicket"`
	LastResetAt       string `dynamodbav:"lastResetAt"`
}

func (st *Store) orgResetLock(ctx context.Context, tenantID string) (resetLock, error) {
	var it resetLock
	err := st.getItem(ctx, tenantPK(tenantID), orgSK, &it)
	return it, err
}

func (st *Store) orgResetTicket(ctx context.Context, tenantID string) (string, error) {
	lock, err := st.orgResetLock(ctx, tenantID)
	return lock.ResetTicket, err
}

// OrgResetTicket returns the ticket of the reset running on an organization, or "".
func (st *Store) OrgResetTicket(ctx context.Context, tenantID string) (_ string, err error) {
	defer apperr.Wrap(&err, "store.OrgResetTicket(%q)", tenantID)
	return st.orgResetTicket(ctx, tenantID)
}

// AcquireResetRun takes the right to work on a recorded reset for owner until
// leaseUntil, and counts the run. It reports false while another invocation holds a
// live lease (one whose leaseUntil is not past), so that two invocations of one
// ticket never delete side by side; a lease left by a dead invocation runs out.
func (st *Store) AcquireResetRun(ctx context.Context, ticket, owner string, now, leaseUntil time.Time) (_ bool, err error) {
	defer apperr.Wrap(&err, "store.AcquireResetRun(%q)", ticket)
	return st.updateIf(ctx, &dynamodb.UpdateItemInput{
		Key:                 key(resetPK(ticket), resetSK),
		UpdateExpression:    aws.String("SET leaseUntil = :until, leaseOwner = :o, runs = runs + :one"),
		ConditionExpression: aws.String("attribute_exists(pk) AND (attribute_not_exists(leaseUntil) OR leaseUntil < :now)"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":until": s(formatTime(leaseUntil)), ":now": s(formatTime(now)), ":one": n(1), ":o": s(owner),
		},
	})
}

// RenewResetRun extends owner's run lease to leaseUntil (the heartbeat of a working
// run). It reports false if owner no longer holds it: the lease ran out and another
// invocation took it, and this one must stop deleting.
func (st *Store) RenewResetRun(ctx context.Context, ticket, owner string, leaseUntil time.Time) (_ bool, err error) {
	defer apperr.Wrap(&err, "store.RenewResetRun(%q)", ticket)
	return st.updateIf(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(resetPK(ticket), resetSK),
		UpdateExpression:          aws.String("SET leaseUntil = :until"),
		ConditionExpression:       aws.String("leaseOwner = :o"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":until": s(formatTime(leaseUntil)), ":o": s(owner)},
	})
}

// ReleaseResetRun gives owner's run lease back, so the next invocation starts at
// once; a lease another invocation took meanwhile stays.
func (st *Store) ReleaseResetRun(ctx context.Context, ticket, owner string) (err error) {
	defer apperr.Wrap(&err, "store.ReleaseResetRun(%q)", ticket)
	_, err = st.updateIf(ctx, &dynamodb.UpdateItemInput{
		Key:                       key(resetPK(ticket), resetSK),
		UpdateExpression:          aws.String("REMOVE leaseUntil, leaseOwner"),
		ConditionExpression:       aws.String("leaseOwner = :o"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":o": s(owner)},
	})
	return err
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
		"deletedAccounts": fmt.Sprint(d.Accounts),
		"runs":            fmt.Sprint(rec.Runs),
	})
	if err != nil {
		return err
	}
	_, err = st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []ddbtypes.TransactWriteItem{
			{Update: &ddbtypes.Update{
				TableName:                &st.Table,
				Key:                      key(tenantPK(rec.TenantID), orgSK),
				UpdateExpression:         aws.String("SET #status = :active, lastResetTicket = :t, lastResetAt = :now REMOVE resetTicket"),
				ConditionExpression:      aws.String("resetTicket = :t"),
				ExpressionAttributeNames: map[string]string{"#status": "status"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":active": s(string(tenant.Active)), ":t": s(rec.TicketID), ":now": s(formatTime(now)),
				},
			}},
			{Update: &ddbtypes.Update{
				TableName: &st.Table,
				Key:       key(resetPK(rec.TicketID), resetSK),
				UpdateExpression: aws.String("SET #state = :done, finishedAt = :now, deletedPasswords = :p, " +
					"deletedUsers = :u, deletedSites = :s, deletedClaimLinks = :c, deletedAccounts = :a REMOVE leaseUntil, leaseOwner, gsi1pk, gsi1sk"),
				ConditionExpression:      aws.String("#state = :mailed"),
				ExpressionAttributeNames: map[string]string{"#state": "state"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":done": s(string(ResetCompleted)), ":mailed": s(string(ResetMailed)), ":now": s(formatTime(now)),
					":p": n(int64(d.Passwords)), ":u": n(int64(d.Users)), ":s": n(int64(d.Sites)), ":c": n(int64(d.ClaimLinks)),
					":a": n(int64(d.Accounts)),
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
	detail := map[string]string{
		"ticketId": rec.TicketID, "verificationMethod": rec.VerificationMethod,
		"verificationReference": rec.VerificationReference, "keepAdminEmail": rec.KeepAdminEmail,
	}
	for k, v := range extra {
		detail[k] = v
	}
	it, err := newAuditItem(AuditRecord{
		TenantID: rec.TenantID, Action: action, Outcome: "ok",
		ActorID: rec.Agent, TargetID: rec.KeepAdminID, Detail: detail,
	}, now)
	if err != nil {
		return nil, err
	}
	return attributevalue.MarshalMap(it)
}
