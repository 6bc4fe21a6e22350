package iam_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mspvault/orgkey/internal/testing/iam"
)

// CallsDirEnv names a directory of recordings the suites already wrote (make test
// runs them with ORGKEY_IAM_RECORD first); without it, the test runs them itself.
const CallsDirEnv = "ORGKEY_IAM_CALLS"

// suites are the test packages whose functions' calls are recorded: the flows'
// own tests, the flows driven as the benchmark drives them, and the hostile
// inputs and injected faults.
var suites = []string{
	"./internal/activation", "./internal/sendkey", "./internal/revealkey", "./internal/reset",
	"./internal/dev/perf", "./internal/testing/adversarial",
}

// Params are the template parameters the suites' functions run with (their
// MAIL_FROM is no-reply@orgkey.test).
var Params = map[string]string{
	"Stage":           "dev",
	"MailFromAddress": "no-reply@orgkey.test",
	"SesIdentityName": "orgkey.test",
	"AppBaseUrl":      "https://vault.example.test",
	"AlarmTopicArn":   "arn:aws:sns:us-east-1:123456789012:orgkey-alarms",
}

func repoRoot(tb testing.TB) string {
	root, err := filepath.Abs("../../..")
	if err != nil {
		tb.Fatal(err)
	}
	return root
}

var (
	transformOnce sync.Once
	transformed   map[string]any
	transformErr  error
)

// transformedTemplate is template.yaml after the SAM transform (once per run).
func transformedTemplate(tb testing.TB) map[string]any {
	tb.Helper()
	transformOnce.Do(func() { transformed, transformErr = iam.Transform(filepath.Join(repoRoot(tb), "template.yaml")) })
	if transformErr != nil {
		tb.Fatal(transformErr)
	}
	return transformed
}

func model(tb testing.TB, params map[string]string) *iam.Model {
	tb.Helper()
	tpl, err := iam.Resolve(transformedTemplate(tb), params)
	if err != nil {
		tb.Fatal(err)
	}
	m, err := iam.Load(tpl)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

var (
	recordOnce sync.Once
	recorded   []iam.Request
	recordErr  error
)

// recordings are the requests the suites' functions made.
func recordings(tb testing.TB) []iam.Request {
	tb.Helper()
	recordOnce.Do(func() {
		dir := os.Getenv(CallsDirEnv)
		if dir == "" {
			dir, recordErr = os.MkdirTemp("", "orgkey-iam-")
			if recordErr != nil {
				return
			}
			defer os.RemoveAll(dir)
			cmd := exec.Command("go", append([]string{"test", "-count=1"}, suites...)...)
			cmd.Dir = repoRoot(tb)
			cmd.Env = append(os.Environ(), iam.RecordDirEnv+"="+dir, "GODEBUG=tracebackancestors=100")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				recordErr = fmt.Errorf("recording the suites (go test %s): %v\n%s", strings.Join(suites, " "), err, out.String())
				return
			}
		}
		recorded, recordErr = iam.ReadDir(dir)
		if recordErr == nil && len(recorded) == 0 {
			recordErr = fmt.Errorf("no recording under %s: run the suites with %s=%s GODEBUG=tracebackancestors=100 (make test does)", dir, iam.RecordDirEnv, dir)
		}
	})
	if recordErr != nil {
		tb.Fatal(recordErr)
	}
	return recorded
}

// TestPoliciesMatchCalls: every call the functions make in the suites is allowed by
// its function's role (and, for KMS, the key policy), and every grant is used.
func TestPoliciesMatchCalls(t *testing.T) {
	m := model(t, Params)
	reqs := recordings(t)
	for _, f := range m.Check(reqs) {
		t.Error(f)
	}
	n := map[string]int{}
	for _, q := range reqs {
		n[q.Function]++
	}
	t.Logf("distinct requests recorded per function: %v", n)
}

// TestEveryStatementIsNeeded is the mutation test: without any one statement of
// any function's role (or one of its managed policies), the check fails.
func TestEveryStatementIsNeeded(t *testing.T) {
	m := model(t, Params)
	reqs := recordings(t)
	if f := m.Check(reqs); len(f) > 0 {
		t.Fatalf("the unmutated check fails (see TestPoliciesMatchCalls): %v", f)
	}
	mutants := 0
	for fn, r := range m.Roles {
		names := make([]string, 0, len(r.Inline)+len(r.Managed))
		for _, st := range r.Inline {
			names = append(names, st.Source)
		}
		for _, mp := range r.Managed {
			names = append(names, mp.ARN)
		}
		for i, name := range names {
			mutants++
			if f := m.Without(fn, i).Check(reqs); len(f) == 0 {
				t.Errorf("%s: without %s the check still passes: the statement is redundant", fn, name)
			} else {
				t.Logf("%s without %s: %s", fn, name, f[0])
			}
		}
	}
	// Finer: without any one action of a statement with several.
	for fn, r := range m.Roles {
		for i, st := range r.Inline {
			if len(st.Action) < 2 {
				continue
			}
			for _, a := range st.Action {
				mutants++
				if f := m.WithoutAction(fn, i, a).Check(reqs); len(f) == 0 {
					t.Errorf("%s: without %s in %s the check still passes", fn, a, st.Source)
				}
			}
		}
	}
	if mutants < 8 {
		t.Fatalf("only %d mutants: the roles were not read", mutants)
	}
}
