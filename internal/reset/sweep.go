package reset

import (
	"context"
	"fmt"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/store"
)

// The schedule's sweep (template.yaml's RunDue event, every minute): it starts every
// confirmed reset whose cool-off is over and resumes every unfinished one, so that a
// reset runs to completion after one support action and one confirmation. A run that
// nears its deadline stops with its progress saved and gives its lease back; a run
// that died leaves a lease that runs out within LeaseTTL. Either way the next sweep
// takes over. Sweeps that overlap (EventBridge may deliver twice) meet on the run
// lease: one of them works on a reset, the other finds it busy.

// SweepResult is what one sweep did.
type SweepResult struct {
	Due        int `json:"due"`        // due resets found
	Completed  int `json:"completed"`  // finished by this sweep
	InProgress int `json:"inProgress"` // stopped before the deadline, progress saved: the next sweep goes on
	Busy       int `json:"busy"`       // another invocation holds the run lease
	Failed     int `json:"failed"`     // stopped on an error; the next sweep retries
	Skipped    int `json:"skipped"`    // left for the next sweep: this one ran out of time
}

// sweepBatch bounds the due resets one sweep reads; the next sweep takes the rest.
const sweepBatch = 25

// Sweep runs the due resets one after another until they are done or the run's
// budget (the safety margin before ctx's deadline) is spent.
func (s *Service) Sweep(ctx context.Context) (SweepResult, error) {
	began := s.Now()
	stopAt := s.budget(ctx, began)
	tickets, err := s.Store.DueResets(ctx, storedTime(began), sweepBatch)
	if err != nil {
		return SweepResult{}, err
	}
	res := SweepResult{Due: len(tickets)}
	for i, ticket := range tickets {
		if !s.Now().Before(stopAt) {
			res.Skipped = len(tickets) - i
			break
		}
		rep, err := s.RunTicket(ctx, ticket)
		switch {
		case err != nil:
			res.Failed++
		case rep.Status == StatusCompleted:
			res.Completed++
		case rep.Status == StatusCancelled: // cancelled since the due index was read
		case rep.Status == StatusInProgress && rep.Busy:
			res.Busy++
		default:
			res.InProgress++
		}
	}
	if res.Failed > 0 {
		return res, fmt.Errorf("reset: %d of %d due resets stopped on an error; the next sweep retries them", res.Failed, res.Due)
	}
	return res, nil
}

// RunTicket starts or resumes the recorded reset of ticket, from its record alone
// (the organization and the kept admin are read back): what the sweep does for each
// due reset. A reset that is not due (pending, in its cool-off) or completed is
// reported as it stands.
func (s *Service) RunTicket(ctx context.Context, ticket string) (Report, error) {
	began := s.Now()
	rec, err := s.Store.GetReset(ctx, ticket)
	if err != nil {
		return Report{}, err
	}
	org, err := s.Store.GetOrg(ctx, rec.TenantID)
	if err != nil {
		return Report{}, err
	}
	admin, err := s.Store.GetUser(ctx, rec.TenantID, rec.KeepAdminID)
	if err != nil {
		return Report{}, apperr.Wrapf(apperr.CodeOf(err), err, "reset %q: the kept admin", ticket)
	}
	switch rec.State {
	case store.ResetPending:
		return s.pendingReport(rec, began), nil
	case store.ResetCompleted:
		return s.report(rec, rec.Deleted, StatusCompleted, began), nil
	case store.ResetCancelled:
		return s.cancelledReport(rec, began), nil
	case store.ResetConfirmed:
		if began.Before(rec.RunAfter) {
			return s.confirmedReport(rec, began), nil
		}
	}
	return s.run(ctx, rec, org, admin, began)
}
