package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mspvault/orgkey/internal/samtemplate"
)

func loadTemplate(t *testing.T) *samtemplate.Template {
	t.Helper()
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	tpl, err := samtemplate.Load(filepath.Join(root, "template.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func TestFunctionEnvFromTemplate(t *testing.T) {
	tpl := loadTemplate(t)
	fn, err := findFunction(tpl, activationFunction)
	if err != nil {
		t.Fatal(err)
	}
	env, err := functionEnv(tpl, fn, map[string]localResource{
		"OrgKeyTable":       {Ref: "tbl", Arn: "arn:table"},
		"OrgKeyWrappingKey": {Ref: "key-id", Arn: "arn:key"},
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"TABLE_NAME=tbl",     // from Globals
		"KMS_KEY_ID=arn:key", // !GetAtt OrgKeyWrappingKey.Arn
		"MAIL_FROM=no-reply@orgkey.local",
		"APP_URL=http://127.0.0.1:3000",
	} {
		if !slices.Contains(env, want) {
			t.Errorf("environment lacks %s: %v", want, env)
		}
	}
}

func TestFunctionEnvUnresolvable(t *testing.T) {
	tpl := loadTemplate(t)
	fn := samtemplate.Function{LogicalID: "F", Env: map[string]samtemplate.Value{
		"X": {Fn: "Fn::GetAtt", Arg: "Nowhere.Arn"},
	}}
	if _, err := functionEnv(tpl, fn, nil); err == nil || !strings.Contains(err.Error(), "Nowhere") {
		t.Errorf("functionEnv = %v, want an error naming Nowhere", err)
	}
}

func TestDemoDefault(t *testing.T) {
	for v, want := range map[string]bool{"": true, "1": true, "yes": true, "0": false, "false": false, "NO": false, "off": false} {
		if got := demoDefault(v); got != want {
			t.Errorf("demoDefault(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestRunDemo is what `make run` does, without waiting for Ctrl-C: the
// emulators, the provisioning, activation-email invoked with its sample
// event, and the mail at the local SES.
func TestRunDemo(t *testing.T) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	bootstrap := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.Command("go", "build", "-tags", "lambda.norpc", "-o", bootstrap, "./functions/activation-email")
	build.Dir = root
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build activation-email: %v\n%s", err, out)
	}

	var stdout, stderr bytes.Buffer
	err = run(t.Context(), []string{"-wait=false", "-demo=true", "-bootstrap", bootstrap}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{
		"== 1 mail(s) at the local SES",
		"From:    no-reply@orgkey.local",
		"To:      camille.martin@example.com",
		"SES mail viewer:  http://127.0.0.1:",
		"export AWS_ENDPOINT_URL_SESV2=http://127.0.0.1:",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(stderr.String(), `"msg":"activation"`) {
		t.Errorf("function logs not passed through:\n%s", &stderr)
	}
}

func TestRunWithoutBootstrap(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), []string{"-wait=false", "-bootstrap", filepath.Join(t.TempDir(), "nope")}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "make build") {
		t.Errorf("run = %v, want an error telling to run make build", err)
	}
}
