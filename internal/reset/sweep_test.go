package reset_test

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mspvault/orgkey/internal/reset"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

// sweep runs the schedule's event through the function's entry point with a
// Lambda-like deadline.
func (f *fixture) sweep(t *testing.T, timeout time.Duration) reset.SweepResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	out, err := f.handler.Invoke(ctx, readEvent(t, "support-reset-sweep.json"))
	if err != nil {
		t.Fatalf("sweep: %v", err)
	}
	var res reset.SweepResult
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("sweep answer %s: %v", out, err)
	}
	return res
}

// TestSweepStartsConfirmedResetAfterItsCoolOff: a confirmed reset waits out its
// cool-off (the console event says until when; the schedule leaves it), then the
// schedule's sweep runs it to completion with no further invocation.
func TestSweepStartsConfirmedResetAfterItsCoolOff(t *testing.T) {
	f := newFixture(t, testenv.Get(t).NewTable(t))
	o := seedOrg(t, f, 2000)
	ticket := newTicket()
	raw := o.event(t, ticket, false)
	// Scheduled and confirmed two hours ago with a cool-off of one hour and a half.
	confirmedAt := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Microsecond)
	f.svc.CoolOff = 90 * time.Minute
	f.svc.Now = func() time.Time { return confirmedAt.Add(-time.Minute) }
	f.schedule(t, raw)
	f.svc.Now = func() time.Time { return confirmedAt }
	f.confirm(t, o)

	f.svc.Now = func() time.Time { return confirmedAt.Add(89 * time.Minute) }
	if res := f.sweep(t, time.Minute); res.Due != 0 {
		t.Fatalf("a sweep during the cool-off: %+v, want nothing due", res)
	}
	rep, err := f.invoke(t, raw, time.Minute)
	if err != nil || rep.Status != reset.StatusConfirmed || !rep.RunAfter.Equal(confirmedAt.Add(90*time.Minute)) ||
		!strings.Contains(rep.Next, "starts by itself") {
		t.Fatalf("the event during the cool-off: %+v, %v; want confirmed, running at the cool-off's end", rep, err)
	}
	f.assertPendingOrConfirmed(t, o, ticket)

	f.svc.Now = time.Now
	if res := f.sweep(t, time.Minute); res.Due != 1 || res.Completed != 1 {
		t.Fatalf("the sweep after the cool-off: %+v, want the reset completed", res)
	}
	done := f.mustComplete(t, raw)
	if done.Runs != 1 {
		t.Errorf("runs %d, want 1", done.Runs)
	}
	f.assertCompleted(t, o, done, 2)
	if res := f.sweep(t, time.Minute); res.Due != 0 {
		t.Errorf("a completed reset is still due: %+v", res)
	}
	if !strings.Contains(f.logs.String(), `"outcome":"swept"`) {
		t.Error("no log line of the sweep")
	}
}

// assertPendingOrConfirmed: nothing of o changed yet.
func (f *fixture) assertPendingOrConfirmed(t *testing.T, o *org, ticket string) {
	t.Helper()
	got, err := f.store.GetOrg(t.Context(), o.ID)
	if err != nil || got.Status != "active" || got.KeyVersion != 1 {
		t.Errorf("organization changed before the run: %+v (%v)", got, err)
	}
	if c := f.counts(t, o); c != full {
		t.Errorf("counts %+v before the run", c)
	}
}

// TestSweepsHandOver: on a tiny time budget each sweep's run stops before its
// deadline with its progress saved, and the next sweep takes over, until done.
func TestSweepsHandOver(t *testing.T) {
	f := newFixture(t, testenv.Get(t).NewTable(t))
	o := seedOrg(t, f, 2000)
	raw := o.event(t, newTicket(), false)
	f.confirmed(t, o, raw)
	// As in TestShortDeadlineReturnsInProgressThenResumes: about 4 s of deletion in
	// sweeps of 3 s with a 1.5 s margin.
	f.faults.batchDelay = 250 * time.Millisecond
	f.svc.Workers = 2
	f.svc.SafetyMargin = 1500 * time.Millisecond
	handovers := 0
	for i := 0; ; i++ {
		if i == 100 {
			t.Fatal("no completion after 100 sweeps")
		}
		res := f.sweep(t, 3*time.Second)
		if res.Failed != 0 || res.Busy != 0 || res.Due != 1 {
			t.Fatalf("sweep %d: %+v", i, res)
		}
		if res.Completed == 1 {
			break
		}
		handovers++
	}
	if handovers < 3 {
		t.Fatalf("%d handovers: the budget did not cut the reset", handovers)
	}
	rep := f.mustComplete(t, raw)
	if rep.Runs != handovers+1 {
		t.Errorf("runs %d, want %d (one per sweep)", rep.Runs, handovers+1)
	}
	f.assertCompleted(t, o, rep, 3)
}

// TestSweepResumesAKilledRun: a sweep's run killed mid-deletion leaves its lease; the
// sweeps until it runs out find the reset busy and delete nothing, the first after it
// finishes the reset. The clock is injected: the test asserts the stored lease.
func TestSweepResumesAKilledRun(t *testing.T) {
	table := testenv.Get(t).NewTable(t)
	f := newFixture(t, table)
	o := seedOrg(t, f, 2000)
	ticket := newTicket()
	raw := o.event(t, ticket, false)
	began := time.Now().Add(-10 * time.Minute).UTC().Truncate(time.Microsecond)
	f.svc.Now = func() time.Time { return began.Add(-time.Minute) }
	f.schedule(t, raw)
	f.svc.Now = func() time.Time { return began.Add(-30 * time.Second) }
	f.confirm(t, o)

	killed := newFixture(t, table)
	killed.svc.Now = func() time.Time { return began }
	killed.down.KillAfter(40) // the due query, the reads, the start, the key, and into the lanes
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	_, err := killed.handler.Invoke(ctx, readEvent(t, "support-reset-sweep.json"))
	cancel()
	if err == nil {
		t.Fatal("want the killed sweep to fail")
	}
	rec, err := f.store.GetReset(t.Context(), ticket)
	if err != nil || rec.State != store.ResetKeyReplaced {
		t.Fatalf("killed in state %s (%v), want key_replaced (mid-deletion)", rec.State, err)
	}
	if want := began.Add(reset.DefaultLeaseTTL); !rec.LeaseUntil.Equal(want) {
		t.Fatalf("the killed run's lease runs to %v, want %v", rec.LeaseUntil, want)
	}
	mid, err := f.store.ResetProgress(t.Context(), ticket)
	if err != nil {
		t.Fatal(err)
	}

	f.svc.Now = func() time.Time { return began.Add(reset.DefaultLeaseTTL - time.Second) }
	if res := f.sweep(t, time.Minute); res.Busy != 1 || res.Completed != 0 {
		t.Fatalf("a sweep while the lease is live: %+v, want the reset busy", res)
	}
	if now, err := f.store.ResetProgress(t.Context(), ticket); err != nil || now != mid {
		t.Errorf("a sweep without the lease deleted: %+v, then %+v (%v)", mid, now, err)
	}
	f.svc.Now = func() time.Time { return began.Add(reset.DefaultLeaseTTL + time.Second) }
	if res := f.sweep(t, time.Minute); res.Completed != 1 {
		t.Fatalf("the sweep after the lease ran out: %+v, want the reset completed", res)
	}
	done := f.mustComplete(t, raw)
	if done.Runs != 2 {
		t.Errorf("runs %d, want 2 (the killed one and the one that took over)", done.Runs)
	}
	f.assertCompleted(t, o, done, 3)
}

// TestConcurrentSweeps: the schedule firing twice at once runs the reset once.
func TestConcurrentSweeps(t *testing.T) {
	f := newFixture(t, testenv.Get(t).NewTable(t))
	o := seedOrg(t, f, 2000)
	raw := o.event(t, newTicket(), false)
	f.confirmed(t, o, raw)
	var wg sync.WaitGroup
	results := make([]reset.SweepResult, 3)
	for i := range results {
		wg.Go(func() { results[i] = f.sweep(t, time.Minute) })
	}
	wg.Wait()
	for i, r := range results {
		if r.Failed != 0 {
			t.Errorf("sweep %d: %+v", i, r)
		}
	}
	rep := f.mustComplete(t, raw)
	if rep.Runs != 1 {
		t.Errorf("runs %d, want 1: two sweeps worked on the reset", rep.Runs)
	}
	f.assertCompleted(t, o, rep, 2)
}
