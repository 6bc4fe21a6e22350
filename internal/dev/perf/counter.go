// Package perf measures the service against floors built in the same run: how many
// AWS API calls each flow makes (a test holds the counts), and the fixtures the
// benchmark (cmd/orgkey-bench) drives: a seeded organization, each flow's events, the
// environment each function binary runs with, and the floor programs in testdata.
package perf

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Counter counts AWS API calls, one per operation invoked (an SDK retry of the same
// operation is not a new call: the middleware sits in the Initialize step, before the
// retry loop), and the time spent inside them.
type Counter struct {
	mu    sync.Mutex
	calls map[string]int // "Service.Operation"
	spent time.Duration  // summed over calls, from entering the SDK's stack to its answer
}

// Instrument returns a copy of cfg whose clients report every call to c.
func (c *Counter) Instrument(cfg aws.Config) aws.Config {
	return withInitialize(cfg, "OrgkeyCallCounter", middleware.After,
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			c.add(awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx))
			t0 := time.Now()
			defer func() { c.spend(time.Since(t0)) }()
			return next.HandleInitialize(ctx, in)
		})
}

// withInitialize returns a copy of cfg whose clients run fn in the Initialize step
// of every call, once per operation (before the SDK's retry loop).
func withInitialize(cfg aws.Config, id string, pos middleware.RelativePosition,
	fn func(context.Context, middleware.InitializeInput, middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error),
) aws.Config {
	cfg = cfg.Copy()
	cfg.APIOptions = append(slices.Clone(cfg.APIOptions), func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc(id, fn), pos)
	})
	return cfg
}

func (c *Counter) add(op string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.calls == nil {
		c.calls = map[string]int{}
	}
	c.calls[op]++
}

func (c *Counter) spend(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.spent += d
}

// Spent returns the time spent inside calls since the last Spent (or Take) and
// starts again from zero. For calls made one after the other, a request's time less
// Spent is the caller's own.
func (c *Counter) Spent() time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	d := c.spent
	c.spent = 0
	return d
}

// Take returns the calls counted since the last Take and starts again from zero.
func (c *Counter) Take() Calls {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := Calls(c.calls)
	c.calls, c.spent = nil, 0
	if out == nil {
		out = Calls{}
	}
	return out
}

// Calls maps "Service.Operation" (e.g. "DynamoDB.GetItem") to a number of calls.
type Calls map[string]int

// Total is the number of calls.
func (c Calls) Total() int {
	n := 0
	for _, v := range c {
		n += v
	}
	return n
}

// String lists the calls in a stable order: "DynamoDB.GetItem×2, KMS.Decrypt×1".
func (c Calls) String() string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, fmt.Sprintf("%s×%d", k, c[k]))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Recorder keeps the input of every AWS API call made through a config it
// instrumented, in order, so that the benchmark can make the same calls again bare
// (probe.Prober.Replay).
type Recorder struct {
	mu     sync.Mutex
	inputs []any // *dynamodb.GetItemInput, *kms.DecryptInput, ...
}

// Instrument returns a copy of cfg whose clients record every call's input in r.
func (r *Recorder) Instrument(cfg aws.Config) aws.Config {
	return withInitialize(cfg, "OrgkeyCallRecorder", middleware.Before,
		func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			r.mu.Lock()
			r.inputs = append(r.inputs, in.Parameters)
			r.mu.Unlock()
			return next.HandleInitialize(ctx, in)
		})
}

// Take returns the inputs recorded since the last Take.
func (r *Recorder) Take() []any {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.inputs
	r.inputs = nil
	return out
}
