// Package lambdarun runs a built Lambda `bootstrap` locally behind the Lambda
// Runtime API, the way the provided.al2023 runtime does: an HTTP server on a
// loopback port serves the endpoints the function's runtime client calls
// (invocation/next, response, error, init/error), and the process stays warm
// between invocations. It is the kernel of the local stack and of tests that
// exercise a function binary end to end.
package lambdarun

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mspvault/orgkey/internal/dev/procgroup"
)

// Config describes one function.
type Config struct {
	// Name is the function's name (AWS_LAMBDA_FUNCTION_NAME, the ARN).
	Name string
	// Bootstrap is the path of the built executable.
	Bootstrap string
	// Env holds the function's variables ("KEY=value"), as in its template's
	// Environment.Variables, plus the endpoints and credentials it should use.
	// The process inherits nothing else from this process but PATH.
	Env []string
	// MemoryMB is reported in AWS_LAMBDA_FUNCTION_MEMORY_SIZE. Default 128.
	MemoryMB int
	// Timeout is the function's timeout: the invocation's deadline, after
	// which the process is killed. Default 3s, as in Lambda.
	Timeout time.Duration
	// Region is AWS_REGION unless Env sets it. Default us-east-1.
	Region string
	// Logs receives the process's stdout and stderr (its JSON log lines).
	// Nil discards them.
	Logs io.Writer
}

// FunctionError is an invocation's failure: what the function reported
// through the Runtime API (errorType, errorMessage), or what the local
// runtime saw (a timeout, a crash).
type FunctionError struct {
	Type    string `json:"errorType"`
	Message string `json:"errorMessage"`
	// Raw is the error document the function posted, if any.
	Raw []byte `json:"-"`
}

func (e *FunctionError) Error() string {
	return fmt.Sprintf("function error %s: %s", e.Type, e.Message)
}

// Error types the local runtime reports itself, as Lambda names them.
const (
	ErrTypeTimeout   = "Sandbox.Timedout"
	ErrTypeExit      = "Runtime.ExitError"
	ErrTypeTooLarge  = "Function.ResponseSizeTooLarge"
	maxResponseBytes = 6 << 20
)

// Function is a function instance: while warm, a bootstrap process and the
// Runtime API server it talks to. Invocations are serialised, as Lambda does
// within one instance.
type Function struct {
	cfg Config
	arn string

	mu     sync.Mutex // serialises Invoke and Close; guards proc, closed
	proc   *instance
	closed bool
}

// instance is one bootstrap process with a Runtime API server of its own, so
// that nothing a dead process left behind (a pending GET .../next) can take
// an invocation meant for its successor.
type instance struct {
	fn      *Function
	cmd     *procgroup.Cmd
	srv     *http.Server
	addr    string
	next    chan *invocation    // handed to the runtime's GET .../next
	initErr chan *FunctionError // posted to .../init/error

	mu      sync.Mutex
	current *invocation // the invocation the runtime is working on

	started   time.Time     // when the process was started
	ready     chan struct{} // closed when the process first asks for an invocation
	readyOnce sync.Once
	readyAt   time.Time // set before ready is closed
}

type invocation struct {
	id       string
	payload  []byte
	deadline time.Time
	done     chan result // buffered: the poster never blocks
}

type result struct {
	payload []byte
	err     error
}

// Start serves the Runtime API on a free loopback port and starts the
// bootstrap process, which then waits for its first invocation.
func Start(cfg Config) (_ *Function, err error) {
	defer wrap(&err, "lambdarun.Start(%q)", cfg.Name)
	if cfg.Name == "" {
		return nil, errors.New("config has no Name")
	}
	if cfg.Bootstrap == "" {
		return nil, errors.New("config has no Bootstrap")
	}
	if _, err := os.Stat(cfg.Bootstrap); err != nil {
		return nil, fmt.Errorf("bootstrap: %w", err)
	}
	if cfg.MemoryMB == 0 {
		cfg.MemoryMB = 128
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 3 * time.Second
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Logs == nil {
		cfg.Logs = io.Discard
	}
	for _, kv := range cfg.Env {
		if k, v, _ := strings.Cut(kv, "="); k == "AWS_REGION" {
			cfg.Region = v
		}
	}

	f := &Function{
		cfg: cfg,
		arn: fmt.Sprintf("arn:aws:lambda:%s:123456789012:function:%s", cfg.Region, cfg.Name),
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.startInstance(); err != nil {
		return nil, err
	}
	return f, nil
}

// Invoke runs one invocation with payload as the event and returns the
// function's response. A function error is a *FunctionError; so is a
// timeout (Sandbox.Timedout) or a crash (Runtime.ExitError), after which the
// next Invoke starts a new process (a cold start). ctx bounds the wait; if it
// ends first, the invocation is abandoned and the process, still busy with
// it, is restarted.
func (f *Function) Invoke(ctx context.Context, payload []byte) (_ []byte, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, fmt.Errorf("lambdarun.Invoke(%q): function is closed", f.cfg.Name)
	}
	inv := &invocation{
		id:       newRequestID(),
		payload:  payload,
		deadline: time.Now().Add(f.cfg.Timeout),
		done:     make(chan result, 1),
	}
	timer := time.NewTimer(time.Until(inv.deadline))
	defer timer.Stop()

	// Hand the invocation to the runtime's pending GET .../next. A process
	// that is exiting (it reported a panic, say) never asks again: the
	// invocation then goes to a fresh one, since none received it yet.
	var p *instance
	for attempt := 0; p == nil; attempt++ {
		if f.proc == nil || exited(f.proc) {
			if err := f.startInstance(); err != nil {
				return nil, fmt.Errorf("lambdarun.Invoke(%q): %w", f.cfg.Name, err)
			}
		}
		select {
		case f.proc.next <- inv:
			p = f.proc
		case e := <-f.proc.initErr:
			f.kill()
			return nil, e
		case <-f.proc.cmd.Done():
			if attempt > 0 {
				return nil, f.exitError(inv, f.proc)
			}
		case <-timer.C:
			f.kill()
			return nil, f.timeoutError()
		case <-ctx.Done():
			return nil, fmt.Errorf("lambdarun.Invoke(%q): %w", f.cfg.Name, ctx.Err())
		}
	}

	select {
	case r := <-inv.done:
		return r.payload, r.err
	case <-p.cmd.Done():
		select { // the runtime may have answered just before exiting
		case r := <-inv.done:
			return r.payload, r.err
		default:
		}
		return nil, f.exitError(inv, p)
	case <-timer.C:
		f.kill()
		return nil, f.timeoutError()
	case <-ctx.Done():
		f.kill()
		return nil, fmt.Errorf("lambdarun.Invoke(%q): %w", f.cfg.Name, ctx.Err())
	}
}

// Close stops the process (SIGTERM, then SIGKILL after a short grace, as
// Lambda does when it retires an instance) and the Runtime API server.
func (f *Function) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil
	}
	f.closed = true
	var err error
	if f.proc != nil {
		err = f.proc.stop(500 * time.Millisecond)
		f.proc = nil
	}
	if err != nil {
		return fmt.Errorf("lambdarun.Close(%q): %w", f.cfg.Name, err)
	}
	return nil
}

// startInstance starts a Runtime API server and a bootstrap process bound to
// it; f.mu is held.
func (f *Function) startInstance() error {
	if f.proc != nil {
		f.proc.stop(0) // reaps an exited process's group and closes its server
		f.proc = nil
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("runtime API: %w", err)
	}
	p := &instance{
		fn:      f,
		addr:    l.Addr().String(),
		next:    make(chan *invocation),
		initErr: make(chan *FunctionError, 1),
		ready:   make(chan struct{}),
	}
	p.srv = &http.Server{Handler: p.routes(), ReadHeaderTimeout: 10 * time.Second}
	go p.srv.Serve(l)

	cmd := exec.Command(f.cfg.Bootstrap)
	cmd.Dir = filepath.Dir(f.cfg.Bootstrap)
	cmd.Env = f.env(p.addr)
	cmd.Stdout = f.cfg.Logs
	cmd.Stderr = f.cfg.Logs
	// A grandchild holding the log pipe must not block Wait forever.
	cmd.WaitDelay = time.Second
	p.started = time.Now()
	if p.cmd, err = procgroup.Start(cmd); err != nil {
		p.srv.Close()
		return fmt.Errorf("start %s: %w", f.cfg.Bootstrap, err)
	}
	f.proc = p
	return nil
}

// Init waits until the current process has finished its init phase (it asked the
// Runtime API for its first invocation) and returns how long that took from exec,
// as Lambda's Init Duration does. It also returns the process id, for reading its
// resource use. Call it between invocations, as a benchmark does after Start.
func (f *Function) Init(ctx context.Context) (time.Duration, int, error) {
	f.mu.Lock()
	p := f.proc
	f.mu.Unlock()
	if p == nil {
		return 0, 0, fmt.Errorf("lambdarun.Init(%q): no process", f.cfg.Name)
	}
	select {
	case <-p.ready:
		return p.readyAt.Sub(p.started), p.cmd.Process.Pid, nil
	case e := <-p.initErr:
		p.initErr <- e // Invoke reports it too
		return 0, 0, e
	case <-p.cmd.Done():
		return 0, 0, fmt.Errorf("lambdarun.Init(%q): process exited: %v", f.cfg.Name, p.cmd.Err())
	case <-ctx.Done():
		return 0, 0, fmt.Errorf("lambdarun.Init(%q): %w", f.cfg.Name, ctx.Err())
	}
}

// stop ends the process and closes its server.
func (p *instance) stop(grace time.Duration) error {
	err := p.cmd.Stop(grace)
	p.srv.Close()
	return err
}

// env is the process environment: what the provided.al2023 runtime sets, the
// function's variables, then the variables only the runtime may set.
func (f *Function) env(runtimeAPI string) []string {
	dir := filepath.Dir(f.cfg.Bootstrap)
	env := []string{
		"PATH=" + os.Getenv("PATH"),
		"LANG=en_US.UTF-8",
		"TZ=:UTC",
		"LAMBDA_TASK_ROOT=" + dir,
		"LAMBDA_RUNTIME_DIR=" + dir,
		"AWS_REGION=" + f.cfg.Region,
		"AWS_DEFAULT_REGION=" + f.cfg.Region,
		"AWS_LAMBDA_LOG_GROUP_NAME=/aws/lambda/" + f.cfg.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME=" + time.Now().UTC().Format("2006/01/02") + "/[$LATEST]" + newRequestID(),
		"AWS_LAMBDA_INITIALIZATION_TYPE=on-demand",
	}
	env = append(env, f.cfg.Env...)
	return append(env,
		"AWS_LAMBDA_RUNTIME_API="+runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME="+f.cfg.Name,
		"AWS_LAMBDA_FUNCTION_VERSION=$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE="+strconv.Itoa(f.cfg.MemoryMB),
		"_HANDLER=bootstrap",
	)
}

// kill ends the current process so that the next Invoke starts a fresh one;
// f.mu is held.
func (f *Function) kill() {
	if f.proc != nil {
		f.proc.stop(0)
	}
}

func (f *Function) timeoutError() error {
	return &FunctionError{
		Type:    ErrTypeTimeout,
		Message: fmt.Sprintf("Task timed out after %.2f seconds", f.cfg.Timeout.Seconds()),
	}
}

func (f *Function) exitError(inv *invocation, p *instance) error {
	select {
	case e := <-p.initErr:
		return e
	default:
	}
	p.srv.Close()
	return &FunctionError{
		Type:    ErrTypeExit,
		Message: fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %v", inv.id, p.cmd.Err()),
	}
}

func exited(p *instance) bool {
	select {
	case <-p.cmd.Done():
		return true
	default:
		return false
	}
}

func newRequestID() string {
	b := make([]byte, 16)
	rand.Read(b)
	b[6] = b[6]&0x0f | 0x40 // a version 4 UUID, as Lambda's request ids are
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func newTraceID() string {
	b := make([]byte, 12)
	rand.Read(b)
	p := make([]byte, 8)
	rand.Read(p)
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), hex.EncodeToString(b), hex.EncodeToString(p))
}

func wrap(errp *error, format string, args ...any) {
	if *errp != nil {
		*errp = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), *errp)
	}
}
