// Command orgkey-bench measures the service against floors built in the same run and
// writes a Markdown report with PNG plots (make bench). It builds every function's
// bootstrap and the floor programs (internal/dev/perf/testdata), starts the emulators, and
// measures: cold starts (init and first invocation) against the floors, remote calls
// per flow, warm latency at 1, 8 and 32 concurrent callers against the bare emulator
// round trips, peak memory, the reset's scaling against the naive deletion and the
// ceiling, and activation time against Cognito's 5 s budget.
package main

import (
	"context"
	"flag"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/mspvault/orgkey/internal/dev/emulators"
	"github.com/mspvault/orgkey/internal/dev/perf"
	"github.com/mspvault/orgkey/internal/dev/perf/probe"
	"github.com/mspvault/orgkey/internal/dev/samtemplate"
)

func main() {
	var (
		out        = flag.String("out", "docs/performance.md", "the report (plots go beside it, in <dir>/performance/)")
		starts     = flag.Int("starts", 20, "cold starts per binary")
		perCaller  = flag.Int("requests", 15, "warm requests per caller at each concurrency")
		sizes      = flag.String("reset-sizes", "10000,100000", "vault sizes of the reset scaling runs")
		concurrent = flag.String("concurrency", "1,8,32", "concurrent callers of the warm runs")
	)
	flag.Parse()
	log.SetFlags(log.Ltime)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *out, *starts, *perCaller, ints(*sizes), ints(*concurrent)); err != nil {
		log.Fatal(err)
	}
}

func ints(s string) []int {
	var v []int
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil {
			log.Fatalf("%q: %v", s, err)
		}
		v = append(v, n)
	}
	return v
}

func run(ctx context.Context, out string, starts, perCaller int, sizes, conc []int) error {
	began := time.Now()
	root, err := samtemplate.FindRoot()
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "orgkey-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	r := &report{Began: began, Machine: machine(), Starts: starts, Sizes: sizes, Concurrency: conc}
	log.Print("building the functions and the floors")
	if r.Binaries, err = buildAll(ctx, root, tmp); err != nil {
		return err
	}
	roundtrips, err := build(ctx, root, tmp, "roundtrips", roundtripsKind, "./internal/dev/perf/testdata/roundtrips", "")
	if err != nil {
		return err
	}

	log.Print("starting the emulators")
	stack, err := emulators.Start(ctx, emulators.Options{Root: root})
	if err != nil {
		return err
	}
	defer stack.Stop()
	if err := stack.Setenv(); err != nil {
		return err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return err
	}
	table := "orgkey-bench"
	keyID, err := stack.Provision(ctx, cfg, table)
	if err != nil {
		return err
	}
	w, err := perf.NewWorld(ctx, cfg, root, table, keyID)
	if err != nil {
		return err
	}
	b := &bench{ctx: ctx, cfg: cfg, stack: stack, world: w, tmp: tmp, probe: probe.New(cfg, w.ProbeTarget())}
	if err := b.probe.Prepare(ctx); err != nil {
		return err
	}

	log.Print("remote calls per flow")
	if r.Calls, err = b.remoteCalls(); err != nil {
		return err
	}
	log.Printf("cold starts (%d per binary)", starts)
	if r.Cold, err = b.coldStarts(r.Binaries, starts); err != nil {
		return err
	}
	log.Print("package initialisation by owner (GODEBUG=inittrace=1)")
	if r.Inits, err = b.initTraces(r.Binaries, 9); err != nil {
		return err
	}
	log.Print("the flows' own time, in process")
	if r.Own, err = b.ownTime(3 * perCaller); err != nil {
		return err
	}
	log.Printf("warm latency at %v callers", conc)
	if r.Warm, err = b.warm(r.Binaries, roundtrips, conc, perCaller); err != nil {
		return err
	}
	log.Printf("reset scaling at %v items", sizes)
	if r.Reset, err = b.resetScaling(sizes); err != nil {
		return err
	}
	r.MinMemoryMB, err = minMemory(root)
	if err != nil {
		return err
	}
	r.Took = time.Since(began)
	if err := r.write(out); err != nil {
		return err
	}
	log.Printf("wrote %s in %v", out, r.Took.Round(time.Second))
	return nil
}

// binary is one built executable.
type binary struct {
	Name  string // function name, or floor name
	Kind  string // "function", "function (no cut)", "floor"
	Path  string
	Bytes int64
	Flow  string // the flow of its first invocation (functions only)
}

var buildFlags = []string{"-tags", "lambda.norpc", "-trimpath", "-ldflags=-s -w"}

// floors are the programs of internal/dev/perf/testdata.
var floors = []struct{ name, doc string }{
	{"hello", "floor (a): aws-lambda-go hello"},
	{"hello-sdk", "floor (b): hello + config.LoadDefaultConfig + DynamoDB, KMS, SES v2 clients"},
	{"hello-sdk-nofiles", "floor (b) with the lambdamain cut (no shared config files)"},
}

// firstFlow is the flow each function's first invocation serves.
var firstFlow = map[string]string{
	perf.FnActivation: "activation: sign-up confirmed",
	perf.FnSendKey:    "send-key: send",
	perf.FnRevealKey:  "reveal-key: reveal",
	perf.FnReset:      "support-reset: run",
}

// roundtripsKind is floor (c) of the warm runs (internal/dev/perf/testdata/roundtrips).
const roundtripsKind = "floor (c)"

func build(ctx context.Context, root, tmp, name, kind, pkg, tags string) (binary, error) {
	dir := filepath.Join(tmp, strings.NewReplacer(" ", "_", "(", "", ")", "").Replace(kind), name)
	path := filepath.Join(dir, "bootstrap")
	flags := append([]string{}, buildFlags...)
	if tags != "" {
		flags[1] += "," + tags
	}
	if err := goBuild(ctx, root, path, pkg, flags); err != nil {
		return binary{}, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return binary{}, err
	}
	return binary{Name: name, Kind: kind, Path: path, Bytes: st.Size(), Flow: firstFlow[name]}, nil
}

func buildAll(ctx context.Context, root, tmp string) ([]binary, error) {
	var bins []binary
	add := func(name, kind, pkg, tags string) error {
		bin, err := build(ctx, root, tmp, name, kind, pkg, tags)
		bins = append(bins, bin)
		return err
	}
	for _, f := range floors {
		if err := add(f.name, "floor", "./internal/dev/perf/testdata/"+f.name, ""); err != nil {
			return nil, err
		}
	}
	for _, fn := range perf.Functions {
		if err := add(fn, "function", "./functions/"+fn, ""); err != nil {
			return nil, err
		}
		if err := add(fn, "function (no cut)", "./functions/"+fn, "orgkey_nocut"); err != nil {
			return nil, err
		}
	}
	return bins, nil
}
