// Package testenv is the integration-test harness: the first test of a binary
// that asks for the environment starts the real local emulators (DynamoDB
// Local, aws-ses-v2-local, moto's KMS), points the process's AWS SDK
// environment at them, and provisions a table from template.yaml and a KMS
// key; the rest of the binary shares them. A binary whose tests never ask
// (the pure-logic tests, e.g. `go test -run TestCheckSend ./internal/sendkey/`)
// starts nothing and needs neither Java nor node_modules.
//
// A package with integration tests stops the emulators from TestMain, and runs
// there what must see every test's output (the leak scans):
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m, scanLogs)) }
//
// and in tests:
//
//	env := testenv.Get(t)
//	store := store.New(dynamodb.NewFromConfig(env.AWSConfig), env.TableName)
//
// A missing emulator fails the test that asked, with the command that
// installs it; integration tests are never skipped.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mspvault/orgkey/internal/dev/emulators"
	"github.com/mspvault/orgkey/internal/testing/iam"
)

// Env is a running, provisioned stack. Tests share it; they must not change
// its fields.
type Env struct {
	Stack *emulators.Stack
	// TableName is a table created from template.yaml's OrgKeyTable.
	TableName string
	// KMSKeyID is a symmetric key, also reachable as "alias/"+TableName.
	KMSKeyID string
	// AWSConfig reaches the emulators (through the AWS_ENDPOINT_URL_* variables
	// set in this process).
	AWSConfig aws.Config
}

// The environment starts at most once per test binary, on the first Get.
var (
	running bool // Main is running the tests
	once    sync.Once
	current *Env
	stop    func() error
	failed  error // why the start failed; every later Get fails with it too
)

// A Check runs after every test of the binary, when the emulators were
// started (a test used them), with the environment still up; an error fails
// the binary. The leak scans are checks: they must see every test's logs and
// mails, whatever order the tests ran in.
type Check func(*Env) error

// Main runs the tests, then, if a test started the emulators, runs the
// checks and stops the emulators, and returns the exit code for os.Exit.
func Main(m *testing.M, checks ...Check) int {
	running = true
	code := m.Run()
	running = false
	// A Get after this point (none should come) must not start anything.
	once.Do(func() { failed = errors.New("testenv: the tests have ended") })
	if current == nil {
		return code
	}
	fail := func(err error) {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		code = 1
	}
	for _, check := range checks {
		if err := check(current); err != nil {
			fail(err)
		}
	}
	if err := writeIAMRecording(); err != nil {
		fail(err)
	}
	current = nil
	if err := stop(); err != nil {
		fail(err)
	}
	return code
}

// Started reports whether a test of this binary started the emulators.
func Started() bool { return current != nil }

// FullRun reports whether every test of the binary ran: neither -test.run nor
// -test.skip narrowed them. A check that demands something was captured
// demands it only then.
func FullRun() bool {
	for _, name := range []string{"test.run", "test.skip"} {
		if f := flag.Lookup(name); f != nil && f.Value.String() != "" {
			return false
		}
	}
	return true
}

func start(ctx context.Context) (_ *Env, stop func() error, err error) {
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, 4*time.Minute)
	defer cancel()

	stack, err := emulators.Start(ctx, emulators.Options{})
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			stack.Stop()
		}
	}()
	if err := stack.Setenv(); err != nil {
		return nil, nil, err
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, nil, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg, err = recordIAM(cfg); err != nil {
		return nil, nil, err
	}
	table := UniqueName("orgkey-test")
	keyID, err := stack.Provision(ctx, cfg, table)
	if err != nil {
		return nil, nil, err
	}
	if testing.Verbose() {
		fmt.Fprintf(os.Stderr, "testenv: emulators ready in %v (dynamodb %s, ses %s, kms %s)\n",
			time.Since(began).Round(time.Millisecond), stack.DynamoDB, stack.SES, stack.KMS)
	}
	return &Env{Stack: stack, TableName: table, KMSKeyID: keyID, AWSConfig: cfg}, stack.Stop, nil
}

// Get returns the shared environment, starting and provisioning the emulators
// on the first call. It fails the test if they cannot start (naming the
// install command of what is missing), and if the package's TestMain does not
// call Main (which stops them).
func Get(tb testing.TB) *Env {
	tb.Helper()
	if !running {
		tb.Fatal("testenv: no TestMain stops the emulators: add `func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }` to the package")
	}
	once.Do(func() {
		if !flag.Parsed() {
			flag.Parse() // for testing.Verbose
		}
		current, stop, failed = start(context.Background())
	})
	if failed != nil {
		tb.Fatalf("testenv: %v", failed)
	}
	return current
}

// Emails returns every message the SES emulator has received, oldest first.
// Tests share the emulator: filter by recipient rather than count.
func (e *Env) Emails(ctx context.Context) ([]emulators.Email, error) {
	return e.Stack.Emails(ctx)
}

// EmailsTo returns the messages received for the address (To, CC or BCC).
func (e *Env) EmailsTo(ctx context.Context, addr string) ([]emulators.Email, error) {
	all, err := e.Stack.Emails(ctx)
	if err != nil {
		return nil, err
	}
	var out []emulators.Email
	for _, m := range all {
		if containsFold(m.To, addr) || containsFold(m.CC, addr) || containsFold(m.BCC, addr) {
			out = append(out, m)
		}
	}
	return out, nil
}

// NewTable creates a fresh table from template.yaml for a test that needs
// one to itself, and deletes it when the test ends.
func (e *Env) NewTable(tb testing.TB) string {
	tb.Helper()
	name := UniqueName("orgkey-test")
	if err := e.Stack.CreateTable(tb.Context(), e.AWSConfig, name); err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	tb.Cleanup(func() {
		// The leak check scans every table the run used; this one is gone by then.
		items, err := e.dump(context.Background(), name)
		dumps.mu.Lock()
		dumps.list = append(dumps.list, tableDump{name, items, err})
		dumps.mu.Unlock()
		db := dynamodb.NewFromConfig(e.AWSConfig)
		if _, err := db.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)}); err != nil {
			tb.Errorf("testenv: delete table %q: %v", name, err)
		}
	})
	return name
}

// UniqueName returns prefix followed by a random suffix, for tables, users and
// addresses that must not collide between tests.
func UniqueName(prefix string) string {
	b := make([]byte, 6)
	rand.Read(b)
	return prefix + "-" + hex.EncodeToString(b)
}

func containsFold(list []string, s string) bool {
	for _, x := range list {
		// The emulator may keep a display name: "Name <addr>".
		if strings.EqualFold(x, s) || strings.HasSuffix(strings.ToLower(x), "<"+strings.ToLower(s)+">") {
			return true
		}
	}
	return false
}

// iamRecorder records the functions' calls for the IAM test (internal/testing/iam)
// when ORGKEY_IAM_RECORD names a directory.
var iamRecorder *iam.Recorder

func recordIAM(cfg aws.Config) (aws.Config, error) {
	if os.Getenv(iam.RecordDirEnv) == "" {
		return cfg, nil
	}
	// The store fans reads and deletions out to goroutines; only the runtime's
	// record of who created them ties their calls to a function.
	if !strings.Contains(os.Getenv("GODEBUG"), "tracebackancestors=") {
		return cfg, fmt.Errorf("%s is set without GODEBUG=tracebackancestors=100: calls made on the store's goroutines could not be attributed", iam.RecordDirEnv)
	}
	iamRecorder = &iam.Recorder{}
	return iamRecorder.Instrument(cfg), nil
}

// writeIAMRecording writes the recorded requests to <dir>/<package>.jsonl; go test
// runs a test binary in its package's directory.
func writeIAMRecording() error {
	if iamRecorder == nil {
		return nil
	}
	wd, err := os.Getwd()
	if err != nil {
		return err
	}
	pkg := wd
	if i := strings.LastIndex(wd, "/internal/"); i >= 0 {
		pkg = wd[i+1:]
	}
	return iamRecorder.WriteFile(os.Getenv(iam.RecordDirEnv), pkg)
}
