// Package testenv is the integration-test harness: it starts the real local
// emulators (DynamoDB Local, aws-ses-v2-local, moto's KMS) once per test
// binary, points the process's AWS SDK environment at them, and provisions a
// table from template.yaml and a KMS key.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }
//
// and in tests:
//
//	env := testenv.Get(t)
//	store := store.New(dynamodb.NewFromConfig(env.AWSConfig), env.TableName)
//
// A missing emulator fails the test binary with the command that installs
// it; integration tests are never skipped.
package testenv

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mspvault/orgkey/internal/dev/emulators"
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

// current is set once by Main before any test runs and cleared after.
var current *Env

// Main starts and provisions the emulators, runs the tests, stops the
// emulators and returns the exit code for os.Exit. If the emulators cannot
// start, it prints why (with the install command) and returns 1.
func Main(m *testing.M) int {
	if !flag.Parsed() {
		flag.Parse() // for testing.Verbose and -test.short
	}
	env, stop, err := start(context.Background())
	if err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		return 1
	}
	current = env
	code := m.Run()
	current = nil
	if err := stop(); err != nil {
		fmt.Fprintf(os.Stderr, "testenv: %v\n", err)
		if code == 0 {
			code = 1
		}
	}
	return code
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

// Get returns the shared environment. It fails the test if the package's
// TestMain does not call Main.
func Get(tb testing.TB) *Env {
	tb.Helper()
	if current == nil {
		tb.Fatal("testenv: not started: add `func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }` to the package")
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
