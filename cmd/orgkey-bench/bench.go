package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"log"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/mspvault/orgkey/internal/dev/emulators"
	"github.com/mspvault/orgkey/internal/dev/lambdarun"
	"github.com/mspvault/orgkey/internal/dev/perf"
	"github.com/mspvault/orgkey/internal/dev/perf/probe"
	"github.com/mspvault/orgkey/internal/dev/samtemplate"
)

type bench struct {
	ctx context.Context
	cfg aws.Config
	// The bare round trips, its clients made once like a warm function's.
	probe *probe.Prober
	// Handlers in this process whose calls' inputs are recorded, for Replay.
	recorder    perf.Recorder
	recHandlers map[string]lambda.Handler
	stack       *emulators.Stack
	world       *perf.World
	tmp         string
}

func goBuild(ctx context.Context, root, out, pkg string, flags []string) error {
	args := append([]string{"build", "-o", out}, flags...)
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// callRow is one flow's measured calls beside the table's.
type callRow struct {
	Flow string
	Got  perf.Calls
	Want perf.FlowCalls
}

func (b *bench) remoteCalls() ([]callRow, error) {
	var c perf.Counter
	hs, err := b.world.Handlers(c.Instrument(b.cfg), nil)
	if err != nil {
		return nil, err
	}
	var rows []callRow
	for _, f := range b.world.Flows() {
		ev, err := f.Event(b.ctx)
		if err != nil {
			return nil, err
		}
		c.Take()
		out, err := hs[f.Function].Invoke(b.ctx, ev)
		got := c.Take()
		if err == nil {
			err = perf.CheckAnswer(f, out)
		}
		if err != nil {
			return nil, err
		}
		rows = append(rows, callRow{Flow: f.Name, Got: got, Want: perf.RemoteCalls[f.Name]})
	}
	return rows, nil
}

// ownRow is a flow's own time: its requests made in this process one after the other,
// each request's time less the time spent inside its AWS calls (perf.Counter).
type ownRow struct {
	Flow       string
	Own, Total []time.Duration
}

func (b *bench) ownTime(n int) ([]ownRow, error) {
	var c perf.Counter
	hs, err := b.world.Handlers(c.Instrument(b.cfg), nil)
	if err != nil {
		return nil, err
	}
	var rows []ownRow
	for _, name := range warmFlows {
		f := b.world.Flow(name)
		row := ownRow{Flow: name}
		for i := range n + 1 {
			ev, err := f.Event(b.ctx)
			if err != nil {
				return nil, err
			}
			c.Take()
			t0 := time.Now()
			out, err := hs[f.Function].Invoke(b.ctx, ev)
			took := time.Since(t0)
			spent := c.Spent()
			if err == nil {
				err = perf.CheckAnswer(f, out)
			}
			if err != nil {
				return nil, err
			}
			if i > 0 { // the first warms the handler's clients
				row.Own, row.Total = append(row.Own, took-spent), append(row.Total, took)
			}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

func (b *bench) fnConfig(bin binary) lambdarun.Config {
	env := b.stack.Env()
	switch {
	case bin.Kind == roundtripsKind:
		env = append(env, b.world.ProbeEnv()...)
	case bin.Kind != "floor":
		env = append(env, b.world.Env(bin.Name)...)
	}
	return lambdarun.Config{Name: bin.Name, Bootstrap: bin.Path, Env: env, MemoryMB: 128, Timeout: 60 * time.Second}
}

// coldRow is one binary's cold starts.
type coldRow struct {
	Bin         binary
	Init, First []time.Duration // per start
}

func (b *bench) coldStarts(bins []binary, n int) ([]coldRow, error) {
	rows := make([]coldRow, len(bins))
	for i := range bins {
		rows[i].Bin = bins[i]
	}
	// Interleaved, one start of each binary per round, so that drift in the machine's
	// load spreads over all of them alike.
	for range n {
		for i, bin := range bins {
			ev := []byte(`{}`)
			if bin.Flow != "" {
				var err error
				if ev, err = b.world.Flow(bin.Flow).Event(b.ctx); err != nil {
					return nil, err
				}
			}
			fn, err := lambdarun.Start(b.fnConfig(bin))
			if err != nil {
				return nil, err
			}
			init, _, err := fn.Init(b.ctx)
			if err != nil {
				fn.Close()
				return nil, err
			}
			t0 := time.Now()
			out, err := fn.Invoke(b.ctx, ev)
			first := time.Since(t0)
			fn.Close()
			if err == nil && bin.Flow != "" {
				err = perf.CheckAnswer(b.world.Flow(bin.Flow), out)
			}
			if err != nil {
				return nil, fmt.Errorf("%s (%s): %w", bin.Name, bin.Kind, err)
			}
			rows[i].Init = append(rows[i].Init, init)
			rows[i].First = append(rows[i].First, first)
		}
	}
	return rows, nil
}

// warmRow is one flow at one concurrency: four series, measured interleaved by the
// same callers so that they share the machine's load alike.
type warmRow struct {
	Flow     string
	Callers  int
	Requests int
	// Lat is the function's requests. Floor is the flow's own calls, recorded from one
	// of its requests and made again bare from this process (probe.Prober.Replay).
	// Runtime and Probe are the same stand-in calls (probe.Prober.RoundTrips), made by
	// floor (c) (internal/dev/perf/testdata/roundtrips) behind the same Runtime API, one
	// process per caller, and bare from this process: their difference is what the
	// runtime's hop and a process of one's own cost.
	Lat, Floor, Runtime, Probe []time.Duration
	PeakRSSKB                  int // the largest peak RSS of the function's processes
}

// minWarmRequests is the fewest requests a warm row is measured on.
const minWarmRequests = 45

// warmFlows are measured under load; the reset is a console operation, measured by
// its scaling instead.
var warmFlows = []string{"send-key: send", "send-key: claim", "send-key: request", "reveal-key: reveal", "activation: sign-up confirmed"}

func (b *bench) warm(bins []binary, roundtrips binary, conc []int, perCaller int) ([]warmRow, error) {
	fnBin := map[string]binary{}
	for _, bin := range bins {
		if bin.Kind == "function" {
			fnBin[bin.Name] = bin
		}
	}
	var rows []warmRow
	for _, name := range warmFlows {
		flow := b.world.Flow(name)
		for _, c := range conc {
			// At least minWarmRequests at every concurrency, so that the p50s the
			// shares are taken from are not those of a handful.
			row, err := b.warmOne(fnBin[flow.Function], roundtrips, flow, c, max(perCaller, (minWarmRequests+c-1)/c))
			if err != nil {
				return nil, fmt.Errorf("%s at %d: %w", name, c, err)
			}
			log.Printf("  %-30s %2d callers: p50 %v (floor %v; runtime's hop %v)", name, c,
				pct(row.Lat, 50), pct(row.Floor, 50), row.hop())
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// warmOne starts one function instance and one floor (c) instance per caller (as
// Lambda scales out) and warms each; then every caller sends perCaller requests back
// to back, each request four times in turn: to the function; as the flow's own calls
// replayed bare; to floor (c); and as floor (c)'s calls bare.
func (b *bench) warmOne(bin, roundtrips binary, flow perf.Flow, callers, perCaller int) (warmRow, error) {
	row := warmRow{Flow: flow.Name, Callers: callers, Requests: callers * perCaller}
	ops := probe.Ops(perf.RemoteCalls[flow.Name].Calls)
	recorded, err := b.record(flow)
	if err != nil {
		return row, err
	}
	fns := make([]*lambdarun.Function, 2*callers) // the function's, then floor (c)'s
	pids := make([]int, 2*callers)
	defer func() {
		for _, f := range fns {
			if f != nil {
				f.Close()
			}
		}
	}()
	events := make([][][]byte, callers)
	probes := make([][]byte, callers)
	for i := range fns {
		cfg := b.fnConfig(bin)
		if i >= callers {
			cfg = b.fnConfig(roundtrips)
		}
		f, err := lambdarun.Start(cfg)
		if err != nil {
			return row, err
		}
		fns[i] = f
		if _, pids[i], err = f.Init(b.ctx); err != nil {
			return row, err
		}
	}
	for i := range callers {
		for range perCaller + 1 {
			ev, err := flow.Event(b.ctx)
			if err != nil {
				return row, err
			}
			events[i] = append(events[i], ev)
		}
		if probes[i], err = json.Marshal(map[string]any{"caller": strconv.Itoa(i), "ops": ops}); err != nil {
			return row, err
		}
	}
	steps := []func(i, j int) error{
		func(i, j int) error { // the function
			out, err := fns[i].Invoke(b.ctx, events[i][j+1])
			if err == nil {
				err = perf.CheckAnswer(flow, out)
			}
			return err
		},
		func(int, int) error { return b.probe.Replay(b.ctx, recorded) }, // the flow's calls, bare
		func(i, _ int) error { // floor (c)
			_, err := fns[callers+i].Invoke(b.ctx, probes[i])
			return err
		},
		func(i, _ int) error { return b.probe.RoundTrips(b.ctx, strconv.Itoa(i), ops) }, // floor (c)'s calls, bare
	}
	warmUp := slices.Clone(steps)
	warmUp[0] = func(i, _ int) error { _, err := fns[i].Invoke(b.ctx, events[i][0]); return err }
	if _, err := interleaved(callers, 1, warmUp); err != nil {
		return row, err
	}
	series, err := interleaved(callers, perCaller, steps)
	if err != nil {
		return row, err
	}
	row.Lat, row.Floor, row.Runtime, row.Probe = series[0], series[1], series[2], series[3]
	for _, pid := range pids[:callers] {
		row.PeakRSSKB = max(row.PeakRSSKB, peakRSS(pid))
	}
	return row, nil
}

// record makes one request of flow in this process, as the function would, and
// returns the inputs of the calls it made.
func (b *bench) record(flow perf.Flow) ([]any, error) {
	if b.recHandlers == nil {
		hs, err := b.world.Handlers(b.recorder.Instrument(b.cfg), nil)
		if err != nil {
			return nil, err
		}
		b.recHandlers = hs
	}
	ev, err := flow.Event(b.ctx)
	if err != nil {
		return nil, err
	}
	b.recorder.Take()
	out, err := b.recHandlers[flow.Function].Invoke(b.ctx, ev)
	if err == nil {
		err = perf.CheckAnswer(flow, out)
	}
	if err != nil {
		return nil, fmt.Errorf("record %s: %w", flow.Name, err)
	}
	return b.recorder.Take(), nil
}

// interleaved runs callers goroutines at once; each makes perCaller rounds of every
// step, one after the other, starting each round at the next step so that no step
// always follows the same one. It returns each step's latencies, indexed alike
// (caller*perCaller + round), so that the steps of one round can be paired.
func interleaved(callers, perCaller int, steps []func(caller, j int) error) ([][]time.Duration, error) {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		lat  = make([][]time.Duration, len(steps))
		errs []error
	)
	for s := range lat {
		lat[s] = make([]time.Duration, callers*perCaller)
	}
	start := make(chan struct{})
	for i := range callers {
		wg.Go(func() {
			<-start
			for j := range perCaller {
				for k := range steps {
					s := (i + j + k) % len(steps)
					t0 := time.Now()
					err := steps[s](i, j)
					d := time.Since(t0)
					lat[s][i*perCaller+j] = d
					mu.Lock()
					if err != nil {
						errs = append(errs, err)
					}
					mu.Unlock()
				}
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		return nil, errs[0]
	}
	return lat, nil
}

// peakRSS is a process's high-water resident set (VmHWM), in KiB.
func peakRSS(pid int) int {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			n, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")))
			return n
		}
	}
	return 0
}

func minMemory(root string) (int, error) {
	t, err := samtemplate.Load(root + "/template.yaml")
	if err != nil {
		return 0, err
	}
	fns, err := t.Functions()
	if err != nil {
		return 0, err
	}
	m := 0
	for _, f := range fns {
		if f.MemorySize > 0 && (m == 0 || f.MemorySize < m) {
			m = f.MemorySize
		}
	}
	if m == 0 {
		m = 128 // SAM's default
	}
	return m, nil
}

func machine() string {
	cpu := ""
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(l, "model name"); ok {
				cpu = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	mem := ""
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		f := strings.Fields(string(b))
		if len(f) > 1 {
			kb, _ := strconv.Atoi(f[1])
			mem = fmt.Sprintf(", %.0f GiB RAM", float64(kb)/(1<<20))
		}
	}
	load := ""
	if b, err := os.ReadFile("/proc/loadavg"); err == nil {
		// Other work on the machine skews absolute figures; the ratios are within one run.
		load = ", load average at start " + strings.Join(strings.Fields(string(b))[:3], " ")
	}
	return fmt.Sprintf("%s/%s, %d vCPU (%s)%s, %s%s", runtime.GOOS, runtime.GOARCH, runtime.NumCPU(), cpu, mem, runtime.Version(), load)
}
