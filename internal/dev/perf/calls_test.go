package perf_test

import (
	"maps"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/mspvault/orgkey/internal/dev/perf"
	"github.com/mspvault/orgkey/internal/dev/perf/probe"
	"github.com/mspvault/orgkey/internal/dev/samtemplate"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// newWorld seeds a perf.World on the test table.
func newWorld(t *testing.T) (*testenv.Env, *perf.World) {
	t.Helper()
	env := testenv.Get(t)
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	w, err := perf.NewWorld(t.Context(), env.AWSConfig, root, env.TableName, env.KMSKeyID)
	if err != nil {
		t.Fatal(err)
	}
	return env, w
}

// TestRemoteCalls runs every flow in this process on the emulators, with an SDK
// middleware counting each AWS API call, and holds each flow to perf.RemoteCalls: a
// new call (or a dropped one) fails here until the table, and its explanation, say so.
func TestRemoteCalls(t *testing.T) {
	env, w := newWorld(t)
	var c perf.Counter
	handlers, err := w.Handlers(c.Instrument(env.AWSConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, flow := range w.Flows() {
		t.Run(flow.Name, func(t *testing.T) {
			want, ok := perf.RemoteCalls[flow.Name]
			if !ok {
				t.Fatalf("perf.RemoteCalls has no row for %q", flow.Name)
			}
			seen[flow.Name] = true
			// Twice: the first call of a client may differ from the next (it must not).
			for i := range 2 {
				ev, err := flow.Event(t.Context())
				if err != nil {
					t.Fatal(err)
				}
				c.Take()
				t0 := time.Now()
				out, err := handlers[flow.Function].Invoke(t.Context(), ev)
				took := time.Since(t0)
				spent := c.Spent()
				got := c.Take()
				if err != nil {
					t.Fatalf("invoke: %v", err)
				}
				if err := perf.CheckAnswer(flow, out); err != nil {
					t.Fatal(err)
				}
				if !maps.Equal(got, want.Calls) {
					t.Errorf("call %d: %s makes %d calls (%v); perf.RemoteCalls says %d (%v)",
						i+1, flow.Name, got.Total(), got, want.Calls.Total(), want.Calls)
				}
				// The time inside the calls (which the benchmark subtracts to find the
				// flow's own time) is some of the request's, never more, for the flows
				// that make their calls one after the other (the reset's run at once).
				if spent <= 0 || (flow.Function != perf.FnReset && spent > took) {
					t.Errorf("time inside the calls %v, of a request of %v", spent, took)
				}
				if min := want.Min.Total(); got.Total() < min {
					t.Errorf("%s makes %d calls, fewer than its minimum %d: update the table", flow.Name, got.Total(), min)
				}
			}
		})
	}
	for _, name := range slices.Sorted(maps.Keys(perf.RemoteCalls)) {
		if !seen[name] {
			t.Errorf("perf.RemoteCalls has a row for %q, which is no flow", name)
		}
	}
}

// TestReplay records one request of every flow the warm benchmark runs and makes its
// calls again bare (probe.Prober.Replay), twice: the benchmark's floor must be the
// flow's own calls, each answered without an error.
func TestReplay(t *testing.T) {
	env, w := newWorld(t)
	var rec perf.Recorder
	var c perf.Counter
	handlers, err := w.Handlers(rec.Instrument(env.AWSConfig), nil)
	if err != nil {
		t.Fatal(err)
	}
	p := probe.New(c.Instrument(env.AWSConfig), w.ProbeTarget())
	for _, flow := range w.Flows() {
		if flow.Function == perf.FnReset {
			continue // a console operation, measured by its scaling
		}
		t.Run(flow.Name, func(t *testing.T) {
			ev, err := flow.Event(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			rec.Take()
			out, err := handlers[flow.Function].Invoke(t.Context(), ev)
			if err == nil {
				err = perf.CheckAnswer(flow, out)
			}
			if err != nil {
				t.Fatal(err)
			}
			inputs := rec.Take()
			if len(inputs) != perf.RemoteCalls[flow.Name].Calls.Total() {
				t.Fatalf("recorded %d calls, the flow makes %d", len(inputs), perf.RemoteCalls[flow.Name].Calls.Total())
			}
			for i := range 2 {
				c.Take()
				if err := p.Replay(t.Context(), inputs); err != nil {
					t.Fatalf("replay %d: %v", i+1, err)
				}
				if got := c.Take(); !maps.Equal(got, perf.RemoteCalls[flow.Name].Calls) {
					t.Errorf("replay %d made %v; the flow makes %v", i+1, got, perf.RemoteCalls[flow.Name].Calls)
				}
			}
		})
	}
}
