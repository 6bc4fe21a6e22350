package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

type report struct {
	Began       time.Time
	Took        time.Duration
	Machine     string
	Starts      int
	Sizes       []int
	Concurrency []int
	Binaries    []binary
	Calls       []callRow
	Cold        []coldRow
	Warm        []warmRow
	Own         []ownRow
	Inits       []initRow
	Reset       []resetRow
	MinMemoryMB int
}

// pct is the p-th percentile (nearest rank) of ds.
func pct(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(float64(len(s))*p/100+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

func ms(d time.Duration) string  { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
func ms2(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d.Microseconds())/1000) }

func x(a, b time.Duration) string {
	if b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", float64(a)/float64(b))
}

// hop is what the Lambda runtime's hop and a process of one's own add to a request:
// the median, over rounds, of floor (c) less the same calls made bare in the same
// round by the same caller (pairs taken in one round cancel the load's drift).
func (w warmRow) hop() time.Duration {
	d := make([]time.Duration, min(len(w.Runtime), len(w.Probe)))
	for k := range d {
		d[k] = w.Runtime[k] - w.Probe[k]
	}
	return pct(d, 50)
}

// share is the part of the function's p50 latency that its own calls made bare do not
// account for; ownShare also leaves out the runtime's hop (negative if the function
// was faster).
func (w warmRow) share() float64 {
	return 1 - float64(pct(w.Floor, 50))/float64(max(pct(w.Lat, 50), 1))
}
func (w warmRow) ownShare() float64 {
	return 1 - float64(pct(w.Floor, 50)+w.hop())/float64(max(pct(w.Lat, 50), 1))
}

func (r *report) cold(name, kind string) coldRow {
	for _, c := range r.Cold {
		if c.Bin.Name == name && c.Bin.Kind == kind {
			return c
		}
	}
	return coldRow{}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

// worstFunctionInit is the function with the slowest init p50.
func (r *report) worstFunctionInit() coldRow {
	var w coldRow
	for _, c := range r.Cold {
		if c.Bin.Kind == "function" && pct(c.Init, 50) > pct(w.Init, 50) {
			w = c
		}
	}
	return w
}

func (r *report) initOf(name, kind string) initRow {
	for _, in := range r.Inits {
		if in.Bin.Name == name && in.Bin.Kind == kind {
			return in
		}
	}
	return initRow{}
}
func (r *report) write(out string) error {
	plotDir := filepath.Join(filepath.Dir(out), "performance")
	if err := os.MkdirAll(plotDir, 0o755); err != nil {
		return err
	}
	plots, err := r.plots(plotDir)
	if err != nil {
		return err
	}
	rel := func(p string) string { r, _ := filepath.Rel(filepath.Dir(out), p); return filepath.ToSlash(r) }

	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Performance")
	p("")
	p("Written by `make bench` (`go run ./cmd/orgkey-bench`) on %s; the run took %v. Every figure is", r.Began.UTC().Format("2006-01-02 15:04 UTC"), r.Took.Round(time.Second))
	p("set against a floor measured in the same run, on the same machine, since these machines are noisy.")
	p("")
	p("- Machine: %s.", r.Machine)
	p("- Emulators (same machine): DynamoDB Local (in memory), moto KMS, aws-ses-v2-local.")
	p("- Commands: `make bench` (all of it); `go test -run TestRemoteCalls ./internal/dev/perf/` (the call counts, also in `make test`);")
	p("  `go run ./cmd/orgkey-bench -starts 5 -requests 5 -reset-sizes 1000` (a quick run).")
	p("- Functions are built as `make build` builds them (`-tags lambda.norpc -trimpath -ldflags='-s -w'`, `CGO_ENABLED=0`); floors are")
	p("  the tiny programs in `internal/dev/perf/testdata`, built the same way in the same run.")
	p("")

	p("## Remote calls per flow")
	p("")
	p("Every AWS API call a successful request makes, counted by an SDK middleware (`perf.Counter`), against the least the")
	p("flow's design needs (independent reads of known keys batched). `TestRemoteCalls` (in `make test`) fails when a count")
	p("changes. The reset rows are for an organization of 4 users, a site, a claim link and %d passwords.", 100)
	p("")
	p("| flow | calls | minimum | ratio | calls made | why above the minimum |")
	p("| --- | ---: | ---: | ---: | --- | --- |")
	for _, c := range r.Calls {
		mark := ""
		if c.Got.Total() != c.Want.Calls.Total() {
			mark = " (table says " + fmt.Sprint(c.Want.Calls.Total()) + ")"
		}
		p("| %s | %d%s | %d | %.2f× | %s | %s |", c.Flow, c.Got.Total(), mark, c.Want.Min.Total(),
			float64(c.Got.Total())/float64(c.Want.Min.Total()), c.Got, c.Want.Why)
	}
	p("")

	p("## Cold start")
	p("")
	p("Each binary started %d times behind `internal/dev/lambdarun` (a local Lambda Runtime API), interleaved. *Init* is exec", r.Starts)
	p("until the process first asks for an invocation (Lambda's Init Duration); *first* is the first invocation (a real")
	p("request of its flow against the emulators for the functions, `{}` for the floors). Median / p95.")
	p("")
	a, bb := r.cold("hello", "floor"), r.cold("hello-sdk", "floor")
	p("| binary | size | init p50 | init p95 | vs floor (a) | vs floor (b) | first p50 | first p95 |")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, c := range r.Cold {
		p("| %s (%s) | %.1f MB | %s | %s | %s | %s | %s | %s |", c.Bin.Name, c.Bin.Kind, float64(c.Bin.Bytes)/1e6,
			ms(pct(c.Init, 50)), ms(pct(c.Init, 95)), x(pct(c.Init, 50), pct(a.Init, 50)), x(pct(c.Init, 50), pct(bb.Init, 50)),
			ms(pct(c.First, 50)), ms(pct(c.First, 95)))
	}
	p("")
	p("Floor (a) is `hello`, floor (b) `hello-sdk`; `hello-sdk-nofiles` is floor (b) with the cut `internal/lambdamain` makes,")
	p("and each function's *(no cut)* row is the same function built with `-tags orgkey_nocut` (plain `config.LoadDefaultConfig`).")
	p("")
	p("![init by binary](%s)", rel(plots["cold"]))
	p("")
	if len(r.Inits) > 0 {
		p("Where package initialisation goes, before `main` runs: each binary run 9 times with `GODEBUG=inittrace=1`, the")
		p("init clock Go reports per package summed by owner (median of the runs). The rest of *init* above is the process")
		p("start (exec, loading the binary, the Go runtime), `main` (configuration, clients) and the first request for an")
		p("invocation.")
		p("")
		head, sep := "| binary | package inits |", "| --- | ---: |"
		for _, g := range initGroups {
			head += " " + g + " |"
			sep += " ---: |"
		}
		p("%s", head)
		p("%s", sep)
		for _, in := range r.Inits {
			line := fmt.Sprintf("| %s (%s) | %s |", in.Bin.Name, in.Bin.Kind, ms2(in.Total))
			for _, g := range initGroups {
				line += " " + ms2(in.ByGroup[g]) + " |"
			}
			p("%s", line)
		}
		p("")
		if a, fn := pct(r.cold("hello", "floor").Init, 50), r.worstFunctionInit(); a > 0 && fn.Bin.Name != "" {
			target := a * 3 / 2
			p("The stretch goal, 1.5× floor (a), is %s of init here; the slowest function (%s) takes %s, %s over it.",
				ms(target), fn.Bin.Name, ms(pct(fn.Init, 50)), ms(pct(fn.Init, 50)-target))
			if in := r.initOf(fn.Bin.Name, "function"); in.Total > 0 {
				sdk := in.ByGroup[initGroups[2]] + in.ByGroup[initGroups[3]] + in.ByGroup[initGroups[4]]
				p("Of its package inits (%s), the SDK's are %s: its service schemas %s, the credential chain that",
					ms2(in.Total), ms2(sdk), ms2(in.ByGroup[initGroups[2]]))
				p("`config.LoadDefaultConfig` links (STS, SSO, SSO OIDC, sign-in) %s, and its endpoint rule sets and the rest %s;",
					ms2(in.ByGroup[initGroups[3]]), ms2(in.ByGroup[initGroups[4]]))
				p("this service's own packages %s. These are generated package variables of the SDK, built whether or not a", ms2(in.ByGroup[initGroups[5]]))
				p("client is used; the functions cannot cut them and still reach the emulators through the SDK's own")
				p("`AWS_ENDPOINT_URL_<SERVICE>` handling, which lives in the `config` package that links the credential chain.")
			}
			p("")
		}
	}

	p("## Activation against Cognito's 5 s budget")
	p("")
	act := r.cold("activation-email", "function")
	coldAct := pct(act.Init, 50) + pct(act.First, 50)
	coldAct95 := pct(act.Init, 95) + pct(act.First, 95)
	var warmAct []time.Duration
	for _, w := range r.Warm {
		if w.Flow == "activation: sign-up confirmed" && w.Callers == 1 {
			warmAct = w.Lat
		}
	}
	p("| activation | p50 | p95 | share of 5 s (p95) | margin (p95) |")
	p("| --- | ---: | ---: | ---: | ---: |")
	p("| cold (init + first invocation) | %s | %s | %.1f%% | %.0f× |", ms(coldAct), ms(coldAct95), 100*coldAct95.Seconds()/5, 5/coldAct95.Seconds())
	if len(warmAct) > 0 {
		p("| warm (1 caller) | %s | %s | %.1f%% | %.0f× |", ms(pct(warmAct, 50)), ms(pct(warmAct, 95)), 100*pct(warmAct, 95).Seconds()/5, 5/pct(warmAct, 95).Seconds())
	}
	p("")

	p("## Warm latency and memory")
	p("")
	p("One function process per caller (as Lambda scales out), each warmed by one request, then every caller sends its")
	p("requests back to back, invoked through `internal/dev/lambdarun`. Each request is made four times in turn by the same")
	p("caller, so that all four see the same load:")
	p("")
	p("1. by the function (*latency*);")
	p("2. as the flow's own AWS calls made bare from this process (*floor*): the inputs of one of its requests, recorded")
	p("   by an SDK middleware (`perf.Recorder`) and made again one after the other (`probe.Prober.Replay`; conditions of")
	p("   writes dropped, since a second spend of the same claim would fail its condition and skip the write);")
	p("3. by floor (c), a function of its own (`internal/dev/perf/testdata/roundtrips`, one process per caller too, behind the")
	p("   same Runtime API) making stand-in calls of the same operations (`probe.Prober.RoundTrips`);")
	p("4. as those stand-in calls made bare from this process.")
	p("")
	p("(3) − (4), paired by round, is the *runtime's hop*: what the Lambda Runtime API and a process of one's own add (the")
	p("median of the pairs' differences). *Function share* is")
	p("1 − floor/latency at p50, the part of a request its calls do not account for; *own share* also leaves out the")
	p("runtime's hop, and is the functions' own work. Peak RSS is the largest VmHWM of the flow's processes, against the")
	p("smallest MemorySize in template.yaml (%d MB).", r.MinMemoryMB)
	p("")
	p("| flow | callers | requests | p50 | p99 | floor p50 | floor p99 | ratio p50 | runtime's hop | function share | own share | peak RSS |")
	p("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, w := range r.Warm {
		p("| %s | %d | %d | %s | %s | %s | %s | %s | %s | %.0f%% | %.0f%% | %.1f MB (%.0f%% of %d) |", w.Flow, w.Callers, w.Requests,
			ms(pct(w.Lat, 50)), ms(pct(w.Lat, 99)), ms(pct(w.Floor, 50)), ms(pct(w.Floor, 99)), x(pct(w.Lat, 50), pct(w.Floor, 50)),
			ms(w.hop()), 100*w.share(), 100*w.ownShare(),
			float64(w.PeakRSSKB)/1024, 100*float64(w.PeakRSSKB)/1024/float64(r.MinMemoryMB), r.MinMemoryMB)
	}
	p("")
	for _, c := range r.Concurrency {
		var shares, owns, stand []float64
		for _, w := range r.Warm {
			if w.Callers == c {
				shares, owns = append(shares, w.share()), append(owns, w.ownShare())
				stand = append(stand, float64(pct(w.Probe, 50))/float64(max(pct(w.Floor, 50), 1)))
			}
		}
		if len(shares) > 0 {
			p("- %d %s: function share %.0f%% to %.0f%% across the flows; own share %.0f%% to %.0f%%; floor (c)'s stand-in calls, made bare, take %.0f%% to %.0f%% of the time of the flow's own.",
				c, plural(c, "caller", "callers"), 100*slices.Min(shares), 100*slices.Max(shares), 100*slices.Min(owns), 100*slices.Max(owns),
				100*slices.Min(stand), 100*slices.Max(stand))
		}
	}
	p("")
	if len(r.Own) > 0 {
		p("The functions' own time measured directly: each flow's handler in this process (as its `main.go` wires it), %d", len(r.Own[0].Own))
		p("requests one after the other, each request's time less the time inside its AWS calls (`perf.Counter`, an SDK")
		p("middleware): decoding the event, the checks, building the calls' inputs and reading their answers, rendering mail,")
		p("logging, encoding the answer.")
		p("")
		p("| flow | request p50 | own time p50 | own time p95 | own share (p50) |")
		p("| --- | ---: | ---: | ---: | ---: |")
		for _, o := range r.Own {
			p("| %s | %s | %s | %s | %.1f%% |", o.Flow, ms(pct(o.Total, 50)), ms(pct(o.Own, 50)), ms(pct(o.Own, 95)),
				100*float64(pct(o.Own, 50))/float64(pct(o.Total, 50)))
		}
		p("")
	}
	p("![latency by concurrency](%s)", rel(plots["warm"]))
	p("")

	p("## Reset scaling")
	p("")
	p("Each size on a freshly seeded organization (seeding not timed), three ways: the whole reset (lock, key replacement,")
	p("checkpointed deletion of 32 vault lanes plus users, sites and claim links, mail, finish), in this process as the")
	p("function runs it; the naive baseline (list each shard, one `DeleteItem` at a time); and the ceiling (`BatchWriteItem`")
	p("of the already known keys, 32 at once, no reads). Goal: the reset at 70%% of the ceiling or better, linear in N.")
	p("See also [performance-reset.md](performance-reset.md).")
	p("")
	p("| items | reset | naive | ceiling | reset items/s | naive items/s | ceiling items/s | reset / ceiling | reset / naive |")
	p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, rr := range r.Reset {
		p("| %d | %.2f s | %.2f s | %.2f s | %.0f | %.0f | %.0f | %.0f%% | %.1f× |", rr.Items, rr.Reset.Seconds(), rr.Naive.Seconds(), rr.Ceiling.Seconds(),
			rate(rr.Items, rr.Reset), rate(rr.Items, rr.Naive), rate(rr.Items, rr.Ceiling),
			100*rate(rr.Items, rr.Reset)/rate(rr.Items, rr.Ceiling), rate(rr.Items, rr.Reset)/rate(rr.Items, rr.Naive))
	}
	if n := len(r.Reset); n > 1 {
		f, l := r.Reset[0], r.Reset[n-1]
		p("")
		p("From %d to %d items (%.0f×), the reset's time grows %.1f×, the naive one's %.1f×, the ceiling's %.1f×.",
			f.Items, l.Items, float64(l.Items)/float64(f.Items), l.Reset.Seconds()/f.Reset.Seconds(),
			l.Naive.Seconds()/f.Naive.Seconds(), l.Ceiling.Seconds()/f.Ceiling.Seconds())
	}
	p("")
	p("![reset time by N](%s)", rel(plots["reset"]))
	p("")
	return os.WriteFile(out, []byte(b.String()), 0o644)
}
