package lambdarun_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mspvault/orgkey/internal/dev/lambdarun"
)

// bootstrap is the echo test function, built once by TestMain.
var bootstrap string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "lambdarun-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	bootstrap = filepath.Join(dir, "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bootstrap, "./testdata/echo")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build testdata/echo: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type echoResponse struct {
	Echo        string `json:"echo"`
	PID         int    `json:"pid"`
	RequestID   string `json:"requestId"`
	FunctionARN string `json:"functionArn"`
	Function    string `json:"function"`
	Memory      int    `json:"memory"`
	DeadlineIn  int64  `json:"deadlineInMs"`
	Env         string `json:"env"`
}

// lockedBuffer is a log sink safe to read while the function writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func start(t *testing.T, cfg lambdarun.Config) *lambdarun.Function {
	t.Helper()
	if cfg.Name == "" {
		cfg.Name = "echo"
	}
	cfg.Bootstrap = bootstrap
	f, err := lambdarun.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return f
}

func invoke(t *testing.T, f *lambdarun.Function, payload string) echoResponse {
	t.Helper()
	out, err := f.Invoke(t.Context(), []byte(payload))
	if err != nil {
		t.Fatalf("Invoke(%s): %v", payload, err)
	}
	var r echoResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatalf("Invoke(%s) = %s: %v", payload, out, err)
	}
	return r
}

func invokeError(t *testing.T, f *lambdarun.Function, payload string) *lambdarun.FunctionError {
	t.Helper()
	out, err := f.Invoke(t.Context(), []byte(payload))
	var fe *lambdarun.FunctionError
	if !errors.As(err, &fe) {
		t.Fatalf("Invoke(%s) = %s, %v; want a *FunctionError", payload, out, err)
	}
	return fe
}

func TestInvokeWarm(t *testing.T) {
	logs := &lockedBuffer{}
	f := start(t, lambdarun.Config{
		Name:     "activation-email",
		Env:      []string{"GREETING=bonjour", "AWS_REGION=eu-west-3"},
		MemoryMB: 256,
		Timeout:  5 * time.Second,
		Logs:     logs,
	})

	first := invoke(t, f, `{"echo":"hello","env":"GREETING"}`)
	if first.Echo != "hello" || first.Env != "bonjour" {
		t.Errorf("echo, env = %q, %q; want hello, bonjour", first.Echo, first.Env)
	}
	if first.Function != "activation-email" || first.Memory != 256 {
		t.Errorf("function, memory = %q, %d", first.Function, first.Memory)
	}
	if want := "arn:aws:lambda:eu-west-3:123456789012:function:activation-email"; first.FunctionARN != want {
		t.Errorf("ARN = %q, want %q", first.FunctionARN, want)
	}
	if first.DeadlineIn <= 0 || first.DeadlineIn > 5000 {
		t.Errorf("deadline in %dms, want within the 5s timeout", first.DeadlineIn)
	}
	if first.RequestID == "" {
		t.Error("no request id")
	}

	second := invoke(t, f, `{"echo":"again","env":"AWS_LAMBDA_RUNTIME_API"}`)
	if second.PID != first.PID {
		t.Errorf("second invocation ran in pid %d, want the warm %d", second.PID, first.PID)
	}
	if second.RequestID == first.RequestID {
		t.Error("request id reused")
	}
	if !strings.HasPrefix(second.Env, "127.0.0.1:") {
		t.Errorf("AWS_LAMBDA_RUNTIME_API = %q, want a loopback address", second.Env)
	}
	// Output reaches the writer asynchronously; Close waits for all of it.
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if got := strings.Count(logs.String(), `"msg":"invoked"`); got != 2 {
		t.Errorf("logs hold %d invocation lines, want 2:\n%s", got, logs)
	}
}

func TestInheritsNoEnvironment(t *testing.T) {
	t.Setenv("ORGKEY_SECRET_OF_THE_PARENT", "leak")
	f := start(t, lambdarun.Config{})
	if got := invoke(t, f, `{"env":"ORGKEY_SECRET_OF_THE_PARENT"}`).Env; got != "" {
		t.Errorf("function sees the parent's variable: %q", got)
	}
}

func TestFunctionErrors(t *testing.T) {
	f := start(t, lambdarun.Config{Timeout: 500 * time.Millisecond})
	warm := invoke(t, f, `{}`).PID

	tests := []struct {
		name, payload    string
		wantType, inMsg  string
		wantProcessAlive bool
	}{
		{"returned error", `{"fail":"boom"}`, "codedError", "boom", true},
		{"panic", `{"panic":true}`, "string", "asked to panic", false},
		{"exit", `{"exit":true}`, lambdarun.ErrTypeExit, "exit status 3", false},
		{"timeout", `{"sleepMs":5000}`, lambdarun.ErrTypeTimeout, "Task timed out after 0.50 seconds", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fe := invokeError(t, f, tt.payload)
			if fe.Type != tt.wantType || !strings.Contains(fe.Message, tt.inMsg) {
				t.Errorf("error = %q %q; want %q containing %q", fe.Type, fe.Message, tt.wantType, tt.inMsg)
			}
			// The function answers the next invocation either way.
			pid := invoke(t, f, `{"echo":"after"}`).PID
			if tt.wantProcessAlive && pid != warm {
				t.Errorf("process restarted (%d -> %d) after a returned error", warm, pid)
			}
			if !tt.wantProcessAlive && pid == warm {
				t.Errorf("process %d still serving after a fatal error", pid)
			}
			warm = pid
		})
	}
}

func TestContextCanceled(t *testing.T) {
	f := start(t, lambdarun.Config{Timeout: 10 * time.Second})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	_, err := f.Invoke(ctx, []byte(`{"sleepMs":5000}`))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Invoke = %v, want context.DeadlineExceeded", err)
	}
	if got := invoke(t, f, `{"echo":"next"}`).Echo; got != "next" {
		t.Errorf("echo = %q after an abandoned invocation", got)
	}
}

func TestCloseLeavesNothingRunning(t *testing.T) {
	f, err := lambdarun.Start(lambdarun.Config{Name: "echo", Bootstrap: bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	out, err := f.Invoke(t.Context(), []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	var r echoResponse
	if err := json.Unmarshal(out, &r); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := syscall.Kill(r.PID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists after Close (kill 0: %v)", r.PID, err)
	}
	if _, err := f.Invoke(t.Context(), []byte(`{}`)); err == nil {
		t.Error("Invoke after Close succeeded")
	}
	if err := f.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

func TestStartErrors(t *testing.T) {
	for _, cfg := range []lambdarun.Config{
		{Bootstrap: bootstrap},
		{Name: "x"},
		{Name: "x", Bootstrap: filepath.Join(t.TempDir(), "missing")},
	} {
		if f, err := lambdarun.Start(cfg); err == nil {
			f.Close()
			t.Errorf("Start(%+v) succeeded", cfg)
		}
	}
}
