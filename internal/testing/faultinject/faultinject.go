// Package faultinject puts faults between a function and AWS (or the local emulators):
// an SDK middleware, registered through aws.Config.APIOptions, that answers chosen
// calls with the service's own throttling, 5xx or conditional-check errors, refuses
// their connection as a service that is down, makes them hang past the caller's
// deadline, applies them but loses the answer, or stops every call after the n-th, as a
// killed process would. The fake answers are raw HTTP
// responses handed to the SDK's own deserializers, so the flows see exactly the typed
// errors a real service would give them, and the SDK's retryer treats them as it
// treats real ones.
//
// It is for tests: the functions never import it.
package faultinject

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Kind is a kind of fault.
type Kind string

const (
	// Throttle answers with the service's throttling error (retryable).
	Throttle Kind = "throttling"
	// ServerError answers HTTP 500 with the service's internal error (retryable).
	ServerError Kind = "5xx"
	// Conflict answers DynamoDB's conditional-check failure (TransactionCanceled with
	// a ConditionalCheckFailed reason for TransactWriteItems), as if another writer had
	// changed the item first. Only for DynamoDB.
	Conflict Kind = "conditional_conflict"
	// Timeout holds the call until the caller's context ends (at most Rule.Hang) and
	// fails it with the context's error: a deadline hit half way.
	Timeout Kind = "timeout"
	// LostResponse sends the call (the service applies it) and then fails it as a
	// dropped connection: the caller cannot tell whether it happened.
	LostResponse Kind = "lost_response"
	// Unreachable fails the call as a refused connection, before anything is sent:
	// the service is down, or its endpoint wrong (a port where nothing listens). The
	// error is the one the SDK's HTTP client gives for that, and is retried as such.
	Unreachable Kind = "unreachable"
)

// Service ids as the SDK names them (awsmiddleware.GetServiceID).
const (
	DynamoDB = "DynamoDB"
	KMS      = "KMS"
	SES      = "SESv2"
)

// Rule faults the matching calls numbered From..To (1-based, counted per rule, each
// SDK attempt is a call). To 0 means From only; To < 0 means every call from From on.
type Rule struct {
	Service   string // "" matches any
	Operation string // e.g. "PutItem"; "" matches any
	From, To  int
	Kind      Kind
	Hang      time.Duration // Timeout only; default 10s
}

func (r Rule) covers(n int) bool {
	from := max(r.From, 1)
	switch {
	case r.To < 0:
		return n >= from
	case r.To == 0:
		return n == from
	}
	return n >= from && n <= r.To
}

// Call is one SDK attempt the injector saw.
type Call struct {
	Service, Operation string
	Fault              Kind // "" when it went through untouched
	Killed             bool
}

// ErrKilled fails every call after the kill point.
var ErrKilled = errors.New("faultinject: the process was killed")

// Injector is the middleware and its plan. The zero value injects nothing; it is safe
// for concurrent use.
type Injector struct {
	mu        sync.Mutex
	rules     []Rule
	matched   []int // per rule: calls matched so far
	killAfter int   // > 0: calls after this many fail with ErrKilled
	onKill    func()
	calls     []Call
}

// Add arms a rule.
func (in *Injector) Add(r Rule) *Injector {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules = append(in.rules, r)
	in.matched = append(in.matched, 0)
	return in
}

// KillAfter lets n calls through and fails every later one with ErrKilled, as if the
// process had died right after its n-th call.
func (in *Injector) KillAfter(n int) *Injector {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.killAfter = n
	return in
}

// OnKill runs f once, at the first call the kill stops: a killed process does nothing
// more, so a test cancels the invocation's context there (retries and backoffs inside
// the function then end at once, as they would with the process).
func (in *Injector) OnKill(f func()) *Injector {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.onKill = f
	return in
}

// Clear disarms every rule and the kill, and forgets the calls seen.
func (in *Injector) Clear() {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.rules, in.matched, in.killAfter, in.onKill, in.calls = nil, nil, 0, nil, nil
}

// Calls returns the calls seen since the last Clear.
func (in *Injector) Calls() []Call {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Call(nil), in.calls...)
}

// Injected counts the calls that were faulted or killed since the last Clear.
func (in *Injector) Injected() int {
	n := 0
	for _, c := range in.Calls() {
		if c.Fault != "" || c.Killed {
			n++
		}
	}
	return n
}

// decide records the call and returns what to do with it.
func (in *Injector) decide(service, op string) (Rule, bool, bool) {
	in.mu.Lock()
	defer in.mu.Unlock()
	c := Call{Service: service, Operation: op}
	if in.killAfter > 0 && len(in.calls) >= in.killAfter {
		c.Killed = true
		in.calls = append(in.calls, c)
		if f := in.onKill; f != nil {
			in.onKill = nil
			go f()
		}
		return Rule{}, false, true
	}
	var hit Rule
	found := false
	for i, r := range in.rules {
		if (r.Service != "" && r.Service != service) || (r.Operation != "" && r.Operation != op) {
			continue
		}
		in.matched[i]++
		if !found && r.covers(in.matched[i]) {
			hit, found = r, true
		}
	}
	if found {
		c.Fault = hit.Kind
	}
	in.calls = append(in.calls, c)
	return hit, found, false
}

// Apply returns a copy of cfg whose clients pass through the injector, with the SDK's
// retry behaviour kept (which errors, how many attempts) but its backoff shortened so
// that tests do not sleep for seconds.
func (in *Injector) Apply(cfg aws.Config) aws.Config {
	cfg = cfg.Copy()
	cfg.APIOptions = append(append([]func(*middleware.Stack) error(nil), cfg.APIOptions...), in.Register)
	cfg.Retryer = func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.Backoff = retry.BackoffDelayerFunc(func(int, error) (time.Duration, error) { return 5 * time.Millisecond, nil })
			o.RateLimiter = ratelimit.None
		})
	}
	return cfg
}

// Register adds the injector to a stack (an aws.Config.APIOptions entry). It sits
// innermost in the Deserialize step, under the operation's deserializer and inside
// the retry loop, so each attempt is one call and a fake answer is decoded by the SDK.
func (in *Injector) Register(stack *middleware.Stack) error {
	return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("faultinject",
		func(ctx context.Context, input middleware.DeserializeInput, next middleware.DeserializeHandler) (middleware.DeserializeOutput, middleware.Metadata, error) {
			service, op := awsmiddleware.GetServiceID(ctx), awsmiddleware.GetOperationName(ctx)
			rule, fault, killed := in.decide(service, op)
			switch {
			case killed:
				return middleware.DeserializeOutput{}, middleware.Metadata{}, &smithyhttp.RequestSendError{Err: ErrKilled}
			case !fault:
				return next.HandleDeserialize(ctx, input)
			}
			switch rule.Kind {
			case Timeout:
				hang := rule.Hang
				if hang == 0 {
					hang = 10 * time.Second
				}
				t := time.NewTimer(hang)
				defer t.Stop()
				select {
				case <-ctx.Done():
					return middleware.DeserializeOutput{}, middleware.Metadata{}, ctx.Err()
				case <-t.C:
					return middleware.DeserializeOutput{}, middleware.Metadata{}, &smithyhttp.RequestSendError{Err: errors.New("faultinject: i/o timeout")}
				}
			case Unreachable:
				return middleware.DeserializeOutput{}, middleware.Metadata{}, &smithyhttp.RequestSendError{Err: refused}
			case LostResponse:
				out, md, err := next.HandleDeserialize(ctx, input)
				if err != nil {
					return out, md, err
				}
				if r, ok := out.RawResponse.(*smithyhttp.Response); ok && r.Body != nil {
					io.Copy(io.Discard, r.Body)
					r.Body.Close()
				}
				return middleware.DeserializeOutput{}, md, &smithyhttp.RequestSendError{Err: errors.New("faultinject: connection reset after the request was sent")}
			}
			status, code, body := answer(service, op, rule.Kind)
			resp := &http.Response{
				StatusCode: status, Status: fmt.Sprintf("%d %s", status, http.StatusText(status)),
				Header:        http.Header{"X-Amzn-Errortype": []string{code}, "Content-Type": []string{contentType(service)}},
				Body:          io.NopCloser(strings.NewReader(body)),
				ContentLength: int64(len(body)),
			}
			return middleware.DeserializeOutput{RawResponse: &smithyhttp.Response{Response: resp}}, middleware.Metadata{}, nil
		}), middleware.After)
}

// refused is what dialing a port where nothing listens returns.
var refused = &net.OpError{Op: "dial", Net: "tcp", Addr: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1},
	Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}

func contentType(service string) string {
	switch service {
	case DynamoDB:
		return "application/x-amz-json-1.0"
	case KMS:
		return "application/x-amz-json-1.1"
	}
	return "application/json"
}

// answer is the status, error code and body a service gives for a fault.
func answer(service, op string, k Kind) (int, string, string) {
	body := func(code, msg string) string { return fmt.Sprintf(`{"__type":%q,"message":%q}`, code, msg) }
	switch k {
	case Throttle:
		switch service {
		case DynamoDB:
			return 400, "ProvisionedThroughputExceededException", body("com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException", "injected: rate of requests exceeds the allowed throughput")
		case SES:
			return 429, "TooManyRequestsException", `{"message":"injected: too many requests"}`
		}
		return 400, "ThrottlingException", body("ThrottlingException", "injected: rate exceeded")
	case Conflict:
		if op == "TransactWriteItems" {
			return 400, "TransactionCanceledException", `{"__type":"com.amazonaws.dynamodb.v20120810#TransactionCanceledException","message":"injected: transaction cancelled","CancellationReasons":[{"Code":"ConditionalCheckFailed","Message":"injected"}]}`
		}
		return 400, "ConditionalCheckFailedException", body("com.amazonaws.dynamodb.v20120810#ConditionalCheckFailedException", "injected: the conditional request failed")
	}
	switch service {
	case DynamoDB:
		return 500, "InternalServerError", body("com.amazonaws.dynamodb.v20120810#InternalServerError", "injected: internal server error")
	case KMS:
		return 500, "KMSInternalException", body("KMSInternalException", "injected: internal error")
	}
	return 500, "InternalFailure", `{"message":"injected: internal failure"}`
}
