package store_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

// The store itself refuses a confirmation by anyone but the kept admin, whatever its
// caller checked before: the write's condition names the kept admin, so a flow that
// forgot its own check still cannot confirm for someone else. The kept admin's own
// confirmation then goes through.
func TestConfirmResetOnlyByTheKeptAdmin(t *testing.T) {
	env := testenv.Get(t)
	table := env.NewTable(t)
	st := store.New(dynamodb.NewFromConfig(env.AWSConfig), table)
	ctx := t.Context()
	now := time.Now().UTC()
	org := tenant.Org{ID: testenv.UniqueName("org"), Name: "Acme IT", Status: tenant.Active, KeyVersion: 1, WrappedKey: []byte("wrapped"), CreatedAt: now}
	if err := st.PutOrg(ctx, org); err != nil {
		t.Fatal(err)
	}
	rec := store.ResetRecord{TicketID: testenv.UniqueName("T"), TenantID: org.ID, Agent: "agent@support.test",
		KeepAdminID: "kept", KeepAdminEmail: "kept@example.test", OldKeyVersion: 1, ConfirmBy: now.Add(time.Hour)}
	rec, created, err := st.ScheduleReset(ctx, rec, "confirm-hash", now)
	if err != nil || !created {
		t.Fatalf("ScheduleReset: created %v, %v", created, err)
	}
	audit := store.AuditRecord{TenantID: org.ID, Action: store.ActionResetConfirmed, Outcome: "ok"}
	err = st.ConfirmReset(ctx, rec, "confirm-hash", "another-admin", now, now, audit)
	if apperr.CodeOf(err) != apperr.Conflict {
		t.Fatalf("confirmation by another user: %v; want a conflict", err)
	}
	if got, err := st.GetReset(ctx, rec.TicketID); err != nil || got.State != store.ResetPending {
		t.Fatalf("after another user's confirmation: state %q, %v; want still pending", got.State, err)
	}
	if err := st.ConfirmReset(ctx, rec, "confirm-hash", "kept", now, now, audit); err != nil {
		t.Fatalf("the kept admin's confirmation: %v", err)
	}
	if got, err := st.GetReset(ctx, rec.TicketID); err != nil || got.State != store.ResetConfirmed || got.ConfirmedBy != "kept" {
		t.Fatalf("after the kept admin's confirmation: %+v, %v", got, err)
	}
}
