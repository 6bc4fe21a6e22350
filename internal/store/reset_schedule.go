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

// The first phase of a support reset: support schedules it (ScheduleReset), the kept
// admin confirms it from their own signed-in browser (ConfirmReset), and only then
// can a run start it (StartReset, reset.go). While it waits, the organization item
// carries resetTicket (so a second ticket is refused) and resetPendingUntil (its
// confirmation deadline: past it, the lock has lapsed and a new ticket may take it);
// its status stays active, so the key flows keep working.
//
// The confirmation link's token is kept only as its hash, under its own key
// (RESETCONFIRM#<hash>), which names the ticket: the page's POST carries the token
// and nothing else.

// resetConfirmItem maps a confirmation link's token hash to its reset.
type resetConfirmItem struct {
	PK       string `dynamodbav:"pk"`
	SK       string `dynamodbav:"sk"`
	Kind     string `dynamodbav:"kind"`
	TicketID string `dynamodbav:"ticketId"`
	TenantID string `dynamodbav:"tenantId"`
	TTL      int64  `dynamodbav:"ttl"`
}

const (
	resetConfirmPrefix = "RESETCONFIRM#"
	resetConfirmSK     = "RESETCONFIRM"
)

// resetConfirmKeep is how long a confirmation link's item outlives its deadline, so
// that a late confirmation is still told it expired rather than that it never existed.
const resetConfirmKeep = 30 * 24 * time.Hour

func resetConfirmAV(hash string, rec ResetRecord) (map[string]ddbtypes.AttributeValue, error) {
	return attributevalue.MarshalMap(resetConfirmItem{
		PK: resetConfirmPrefix + hash, SK: resetConfirmSK, Kind: "reset_confirm",
		TicketID: rec.TicketID, TenantID: rec.TenantID, TTL: rec.ConfirmBy.Add(resetConfirmKeep).Unix(),
	})
}

// ScheduleReset records a new reset waiting for the kept admin's confirmation until
// rec.ConfirmBy, with the hash of its confirmation link, and holds its organization
// (resetTicket) at its key version, in one transaction with the audit record. Nothing
// else changes. If the ticket is already recorded, it changes nothing and returns the
// stored record with created false. If another ticket holds the organization, it
// fails with conflict: reset_pending (waiting for its confirmation, until its
// deadline) or reset_running (confirmed or running), naming that ticket; if another
// ticket's reset completed within ResetQuietPeriod, reset_recently_completed.
func (st *Store) ScheduleReset(ctx context.Context, rec ResetRecord, confirmHash string, now time.Time) (_ ResetRecord, created bool, err error) {
	defer apperr.Wrap(&err, "store.ScheduleReset(tenant %q, ticket %q)", rec.TenantID, rec.TicketID)
	rec.State, rec.RequestedAt, rec.Runs, rec.ConfirmMailed = ResetPending, now, 0, false
	recAV, err := attributevalue.MarshalMap(resetItem{
		PK: resetPK(rec.TicketID), SK: resetSK, Kind: "reset", TicketID: rec.TicketID, TenantID: rec.TenantID,
		Agent: rec.Agent, VerificationMethod: rec.VerificationMethod, VerificationReference: rec.VerificationReference,
		KeepAdminID: rec.KeepAdminID, KeepAdminEmail: rec.KeepAdminEmail, State: string(rec.State),
		OldKeyVersion: rec.OldKeyVersion, RequestedAt: formatTime(now), ConfirmBy: formatTime(rec.ConfirmBy),
		ConfirmHash: confirmHash,
	})
	if err != nil {
		return ResetRecord{}, false, err
	}
	confirmAV, err := resetConfirmAV(confirmHash, rec)
	if err != nil {
		return ResetRecord{}, false, err
	}
	auditAV, err := resetAuditItem(rec, ActionResetScheduled, now, map[string]string{
		"confirmBy": formatTime(rec.ConfirmBy), "oldKeyVersion": fmt.Sprint(rec.OldKeyVersion),
	})
	if err != nil {
		return ResetRecord{}, false, err
	}
	_, err = st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []ddbtypes.TransactWriteItem{
			{Put: &ddbtypes.Put{TableName: &st.Table, Item: recAV, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
			{Update: &ddbtypes.Update{
				TableName:        &st.Table,
				Key:              key(tenantPK(rec.TenantID), orgSK),
				UpdateExpression: aws.String("SET resetTicket = :t, resetPendingUntil = :until"),
				ConditionExpression: aws.String("attribute_exists(pk) AND (attribute_not_exists(resetTicket) OR resetPendingUntil < :now) AND keyVersion = :v " +
					"AND (attribute_not_exists(lastResetAt) OR lastResetAt < :since)"),
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":t": s(rec.TicketID), ":until": s(formatTime(rec.ConfirmBy)), ":now": s(formatTime(now)),
					":v": n(int64(rec.OldKeyVersion)), ":since": s(formatTime(now.Add(-ResetQuietPeriod))),
				},
			}},
			{Put: &ddbtypes.Put{TableName: &st.Table, Item: confirmAV, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
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
		return ResetRecord{}, false, st.heldBy(ctx, rec.TenantID, now)
	}
	return ResetRecord{}, false, unavailable(err)
}

// heldBy says why an organization refused a new ticket's reset.
func (st *Store) heldBy(ctx context.Context, tenantID string, now time.Time) error {
	lock, err := st.orgResetLock(ctx, tenantID)
	if err != nil {
		return err
	}
	if lock.ResetTicket != "" {
		if until := parseTime(lock.ResetPendingUntil); !until.IsZero() {
			return apperr.New(apperr.Conflict, ReasonResetPending,
				fmt.Sprintf("another reset (ticket %q) is waiting for the kept admin's confirmation until %s; "+
					"close this ticket as a duplicate of that one", lock.ResetTicket, until.Format(time.RFC3339)))
		}
		return apperr.New(apperr.Conflict, ReasonResetRunning,
			fmt.Sprintf("another reset (ticket %q) is confirmed or running for this organization; it finishes by itself: "+
				"invoke its own event to see where it stands", lock.ResetTicket))
	}
	if last := parseTime(lock.LastResetAt); !last.IsZero() && !last.Before(now.Add(-ResetQuietPeriod)) {
		return apperr.New(apperr.Conflict, ReasonResetRecentlyCompleted,
			fmt.Sprintf("another reset (ticket %q) completed for this organization at %s, less than %s ago; its admin was mailed that key: "+
				"do not reset again, close this ticket as a duplicate of that one", lock.LastResetTicket, last.Format(time.RFC3339), ResetQuietPeriod))
	}
	return apperr.New(apperr.Conflict, ReasonOrganizationChanged,
		"the organization changed while the reset was being scheduled; invoke the reset again")
}

// ReissueResetConfirmation replaces a pending reset's confirmation link (its hash)
// whose mail did not go out: the old link's item stays but no longer matches the
// record. It fails with conflict (reset_not_pending) if the reset is no longer
// pending, or its link was mailed meanwhile.
func (st *Store) ReissueResetConfirmation(ctx context.Context, rec ResetRecord, hash string) (err error) {
	defer apperr.Wrap(&err, "store.ReissueResetConfirmation(%q)", rec.TicketID)
	confirmAV, err := resetConfirmAV(hash, rec)
	if err != nil {
		return err
	}
	_, err = st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []ddbtypes.TransactWriteItem{
			{Update: &ddbtypes.Update{
				TableName:                &st.Table,
				Key:                      key(resetPK(rec.TicketID), resetSK),
				UpdateExpression:         aws.String("SET confirmHash = :h"),
				ConditionExpression:      aws.String("#state = :pending AND confirmMailed = :no"),
				ExpressionAttributeNames: map[string]string{"#state": "state"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":h": s(hash), ":pending": s(string(ResetPending)), ":no": &ddbtypes.AttributeValueMemberBOOL{Value: false},
				},
			}},
			{Put: &ddbtypes.Put{TableName: &st.Table, Item: confirmAV, ConditionExpression: aws.String("attribute_not_exists(pk)")}},
		},
	})
	if err != nil {
		if isConditionFailed(unavailable(err)) {
			return apperr.New(apperr.Conflict, ReasonResetNotPending, "the reset's confirmation link changed meanwhile")
		}
		return unavailable(err)
	}
	return nil
}

// MarkResetConfirmMailed records that the kept admin was mailed the confirmation
// link whose hash is hash.
func (st *Store) MarkResetConfirmMailed(ctx context.Context, ticket, hash string) (err error) {
	defer apperr.Wrap(&err, "store.MarkResetConfirmMailed(%q)", ticket)
	_, err = st.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
		TableName:                 &st.Table,
		Key:                       key(resetPK(ticket), resetSK),
		UpdateExpression:          aws.String("SET confirmMailed = :yes"),
		ConditionExpression:       aws.String("confirmHash = :h"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{":yes": &ddbtypes.AttributeValueMemberBOOL{Value: true}, ":h": s(hash)},
	})
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// ResetConfirmation is what the table knows of a confirmation link by its hash: its
// reset, and whether it is that reset's current link.
type ResetConfirmation struct {
	Reset   ResetRecord
	Current bool // the record's confirmHash is this link's (a reissued link replaces it)
}

// GetResetConfirmation reads the reset a confirmation link belongs to; not_found when
// no link has this hash (never issued, or purged by its TTL).
func (st *Store) GetResetConfirmation(ctx context.Context, hash string) (_ ResetConfirmation, err error) {
	defer apperr.Wrap(&err, "store.GetResetConfirmation")
	var link resetConfirmItem
	if err := st.getItem(ctx, resetConfirmPrefix+hash, resetConfirmSK, &link); err != nil {
		return ResetConfirmation{}, err
	}
	var it resetItem
	if err := st.getItem(ctx, resetPK(link.TicketID), resetSK, &it); err != nil {
		return ResetConfirmation{}, err
	}
	return ResetConfirmation{Reset: it.record(), Current: it.ConfirmHash == hash}, nil
}

// ConfirmReset records the kept admin's confirmation of a pending reset by its
// current link (hash), before its deadline, by the kept admin (userID): the record
// becomes confirmed and the organization's hold permanent (resetPendingUntil goes),
// in one transaction with the audit record. Any of those conditions failing is a
// conflict (reset_not_pending): exactly one of concurrent confirmations wins.
//
// The confirmed reset is due at runAfter (the cool-off after the confirmation): the
// record enters the due index (gsi1 RESETS#DUE, sorted by that time), which the
// schedule's sweep reads (DueResets), and leaves it when it completes.
func (st *Store) ConfirmReset(ctx context.Context, rec ResetRecord, hash, userID string, now, runAfter time.Time, audit AuditRecord) (err error) {
	defer apperr.Wrap(&err, "store.ConfirmReset(tenant %q, ticket %q)", rec.TenantID, rec.TicketID)
	it, err := newAuditItem(audit, now)
	if err != nil {
		return err
	}
	auditAV, err := attributevalue.MarshalMap(it)
	if err != nil {
		return err
	}
	_, err = st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []ddbtypes.TransactWriteItem{
			{Update: &ddbtypes.Update{
				TableName: &st.Table,
				Key:       key(resetPK(rec.TicketID), resetSK),
				UpdateExpression: aws.String("SET #state = :confirmed, confirmedAt = :now, confirmedBy = :u, runAfter = :after, " +
					"gsi1pk = :due, gsi1sk = :after"),
				ConditionExpression: aws.String("#state = :pending AND confirmHash = :h AND keepAdminId = :u " +
					"AND confirmBy > :now"),
				ExpressionAttributeNames: map[string]string{"#state": "state"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":confirmed": s(string(ResetConfirmed)), ":pending": s(string(ResetPending)), ":now": s(formatTime(now)),
					":u": s(userID), ":h": s(hash), ":after": s(formatTime(runAfter)), ":due": s(resetsDue),
				},
			}},
			{Update: &ddbtypes.Update{
				TableName:                &st.Table,
				Key:                      key(tenantPK(rec.TenantID), orgSK),
				UpdateExpression:         aws.String("REMOVE resetPendingUntil"),
				ConditionExpression:      aws.String("resetTicket = :t AND #status = :active"),
				ExpressionAttributeNames: map[string]string{"#status": "status"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":t": s(rec.TicketID), ":active": s(string(tenant.Active)),
				},
			}},
			{Put: &ddbtypes.Put{TableName: &st.Table, Item: auditAV}},
		},
	})
	if err != nil {
		if isConditionFailed(unavailable(err)) {
			return apperr.New(apperr.Conflict, ReasonResetNotPending, "the reset is no longer waiting for this confirmation")
		}
		return unavailable(err)
	}
	return nil
}

// resetsDue is the due index's key (gsi1pk) of every confirmed, unfinished reset.
const resetsDue = "RESETS#DUE"

// DueResets returns the tickets of confirmed, unfinished resets due at now (their
// cool-off over), the longest waiting first, at most limit of them: what the
// schedule's sweep starts or resumes.
func (st *Store) DueResets(ctx context.Context, now time.Time, limit int) (_ []string, err error) {
	defer apperr.Wrap(&err, "store.DueResets")
	var out []string
	err = queryEach(ctx, st, &dynamodb.QueryInput{
		IndexName:              aws.String(GSI1),
		KeyConditionExpression: aws.String("gsi1pk = :p AND gsi1sk <= :now"),
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":p": s(resetsDue), ":now": s(formatTime(now)),
		},
		Limit: aws.Int32(int32(limit)),
	}, func(it resetItem) bool {
		out = append(out, it.TicketID)
		return len(out) < limit
	})
	return out, err
}

// CancelReset cancels a reset that has not started (pending or confirmed): the record
// becomes cancelled and leaves the due index, and the organization's hold goes, in
// one transaction with the audit record. It races StartReset on the record's state:
// of a cancel and a start at once exactly one wins; the loser fails with conflict
// (reset_not_cancellable) and changes nothing.
func (st *Store) CancelReset(ctx context.Context, rec ResetRecord, by string, now time.Time, audit AuditRecord) (err error) {
	defer apperr.Wrap(&err, "store.CancelReset(tenant %q, ticket %q)", rec.TenantID, rec.TicketID)
	it, err := newAuditItem(audit, now)
	if err != nil {
		return err
	}
	auditAV, err := attributevalue.MarshalMap(it)
	if err != nil {
		return err
	}
	_, err = st.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{
		TransactItems: []ddbtypes.TransactWriteItem{
			{Update: &ddbtypes.Update{
				TableName:                &st.Table,
				Key:                      key(resetPK(rec.TicketID), resetSK),
				UpdateExpression:         aws.String("SET #state = :cancelled, cancelledAt = :now, cancelledBy = :by REMOVE gsi1pk, gsi1sk"),
				ConditionExpression:      aws.String("#state IN (:pending, :confirmed)"),
				ExpressionAttributeNames: map[string]string{"#state": "state"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":cancelled": s(string(ResetCancelled)), ":now": s(formatTime(now)), ":by": s(by),
					":pending": s(string(ResetPending)), ":confirmed": s(string(ResetConfirmed)),
				},
			}},
			{Update: &ddbtypes.Update{
				TableName:                &st.Table,
				Key:                      key(tenantPK(rec.TenantID), orgSK),
				UpdateExpression:         aws.String("REMOVE resetTicket, resetPendingUntil"),
				ConditionExpression:      aws.String("resetTicket = :t AND #status = :active"),
				ExpressionAttributeNames: map[string]string{"#status": "status"},
				ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
					":t": s(rec.TicketID), ":active": s(string(tenant.Active)),
				},
			}},
			{Put: &ddbtypes.Put{TableName: &st.Table, Item: auditAV}},
		},
	})
	if err == nil {
		return nil
	}
	var canceled *ddbtypes.TransactionCanceledException
	if errors.As(err, &canceled) && len(canceled.CancellationReasons) >= 2 {
		if aws.ToString(canceled.CancellationReasons[0].Code) == "ConditionalCheckFailed" ||
			aws.ToString(canceled.CancellationReasons[1].Code) == "ConditionalCheckFailed" {
			return apperr.New(apperr.Conflict, ReasonResetNotCancellable, "the reset has started, finished or was cancelled already")
		}
	}
	return unavailable(err)
}
