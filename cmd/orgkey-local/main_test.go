package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mspvault/orgkey/internal/dev/samtemplate"
)

func TestDemoDefault(t *testing.T) {
	for v, want := range map[string]bool{"": true, "1": true, "yes": true, "0": false, "false": false, "NO": false, "off": false} {
		if got := demoDefault(v); got != want {
			t.Errorf("demoDefault(%q) = %v, want %v", v, got, want)
		}
	}
}

func TestRunWithoutBootstraps(t *testing.T) {
	root := t.TempDir()
	repo, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"template.yaml", "go.mod"} {
		b, err := os.ReadFile(filepath.Join(repo, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, f), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var stdout, stderr bytes.Buffer
	err = run(t.Context(), []string{"-wait=false", "-root", root}, &stdout, &stderr)
	if err == nil || !strings.Contains(err.Error(), "make build") || !strings.Contains(err.Error(), "bin/support-reset/bootstrap") {
		t.Errorf("run = %v, want an error naming each missing bootstrap and make build", err)
	}
}

// TestRunWalkthrough is what `make run` does, without waiting for Ctrl-C:
// the whole stack from the built bootstraps, and the walkthrough of every
// flow with real calls.
func TestRunWalkthrough(t *testing.T) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	// Into a temporary directory: tests never write into the repository's bin/.
	bin := t.TempDir()
	build := exec.Command("make", "--no-print-directory", "build", "BIN="+bin)
	build.Dir = root
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}

	var stdout, stderr bytes.Buffer
	err = run(t.Context(), []string{"-wait=false", "-demo=true", "-bin-dir", bin, "-api-port=0", "-lambda-port=0", "-cognito-port=0",
		"-dynamodb-port=0", "-ses-port=0", "-kms-port=0", "-schedule-every=2s"}, &stdout, &stderr)
	if err != nil {
		t.Fatalf("run: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{
		`mail "Activation du compte terminée" from no-reply@orgkey.local to camille.martin@example.com`,
		"-> 200 OK, Cache-Control: no-store",
		"the key in the activation mail is the same: true",
		`-> 401 Unauthorized {"message":"Unauthorized"}`,
		`-> 403 Forbidden {"error":"organization administrators can send the key only to pro users","reason":"target_not_pro_user"}`,
		"; Path=/; Secure; HttpOnly; SameSite=Strict",
		"HEAD -> 200 OK, Set-Cookie: 0",
		"GET (User-Agent: ...Safe Links) -> 200 OK",
		`POST /org-key/claim without a session (the scanner presses the button) -> 401 Unauthorized {"message":"Unauthorized"}`,
		`"reason":"claim_wrong_user"`,
		"the link after the scanner and the wrong user: live (unspent, 1 wrong-user attempts)",
		"the cookie holds the key: true",
		"the same link again -> 410 Gone",
		`"status": "dry_run"`,
		`"status": "pending_confirmation"`,
		"Confirmez ou refusez la réinitialisation de votre clé d'organisation",
		`/org-key/claim/reset-confirm (the page; changes nothing) -> 200 OK`,
		`"reason":"confirm_wrong_user"`,
		`(the kept admin) -> 200 OK {"status":"confirmed"`,
		"the reset runs by itself",
		"Votre clé d'organisation a été remplacée",
		`"status": "completed"`,
		"the user pool after the reset holds 1 account(s): camille.martin@example.com",
		"unused claim link after the reset, with the token he held -> 410 Gone",
		"signs in after the reset -> refused: the reset deleted his Cognito account",
		"X-Amz-Function-Error: Unhandled",
		"SES mail viewer:   http://127.0.0.1:",
		"schedule:          SupportResetFunction RunDue every 2s",
		"schedule:          ActivationEmailFunction CatchUp every 2s",
		"export AWS_ENDPOINT_URL_LAMBDA=http://127.0.0.1:",
		"stopped; nothing left running",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Count(out, "-> 202 Accepted") != 2 {
		t.Errorf("want two sends accepted")
	}
	if t.Failed() {
		t.Logf("stdout:\n%s", out)
	}
}
