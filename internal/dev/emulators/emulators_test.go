package emulators_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mspvault/orgkey/internal/dev/emulators"
)

func TestStartStop(t *testing.T) {
	began := time.Now()
	s, err := emulators.Start(t.Context(), emulators.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("emulators answered after %v", time.Since(began).Round(time.Millisecond))
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			s.Stop()
		}
	})

	for _, u := range []string{s.DynamoDB, s.SES, s.KMS} {
		if !strings.HasPrefix(u, "http://127.0.0.1:") {
			t.Errorf("endpoint %q is not on loopback", u)
		}
	}
	env := strings.Join(s.Env(), "\n")
	for _, want := range []string{
		"AWS_ENDPOINT_URL_DYNAMODB=" + s.DynamoDB,
		"AWS_ENDPOINT_URL_SESV2=" + s.SES,
		"AWS_ENDPOINT_URL_KMS=" + s.KMS,
		"AWS_REGION=us-east-1",
	} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("Env() lacks %s", want)
		}
	}
	mails, err := s.Emails(t.Context())
	if err != nil || len(mails) != 0 {
		t.Errorf("Emails() = %v, %v; want none", mails, err)
	}
	if err := s.ClearEmails(t.Context()); err != nil {
		t.Errorf("ClearEmails: %v", err)
	}

	pgids := groupsOf(t)
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	stopped = true
	for _, pgid := range pgids {
		if err := syscall.Kill(-pgid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still exists after Stop (kill 0: %v)", pgid, err)
		}
	}
	if _, err := os.Stat(s.LogDir); !os.IsNotExist(err) {
		t.Errorf("log dir %s not removed: %v", s.LogDir, err)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
}

// groupsOf returns the process groups led by children of this test process:
// the emulators (Start puts each in its own group).
func groupsOf(t *testing.T) []int {
	t.Helper()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Fatalf("this test reads /proc to find the emulators' processes (Linux only): %v", err)
	}
	out := groupsOfNoFail()
	if len(out) != 3 {
		t.Fatalf("found %d emulator process groups, want 3", len(out))
	}
	return out
}

func groupsOfNoFail() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// "pid (comm) state ppid pgrp ..."; comm may contain spaces.
		f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
		if len(f) < 3 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		pgrp, _ := strconv.Atoi(f[2])
		if ppid == os.Getpid() && pgrp == pid {
			out = append(out, pgrp)
		}
	}
	return out
}

func TestMissingTools(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := emulators.Start(context.Background(), emulators.Options{Root: t.TempDir()})
	if err == nil {
		t.Fatal("Start succeeded without any emulator installed")
	}
	for _, want := range []string{
		"npm ci",
		"apt-get install -y openjdk-17-jre-headless",
		`pip install "moto[server]"`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not name %q:\n%v", want, err)
		}
	}
}

func TestEmulatorExitsDuringStart(t *testing.T) {
	bin := t.TempDir()
	script := "#!/bin/sh\necho 'pyenv: moto_server: command not found' >&2\nexit 127\n"
	if err := os.WriteFile(filepath.Join(bin, "moto_server"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+string(os.PathListSeparator)+os.Getenv("PATH"))
	logs := t.TempDir()
	// A start timeout far beyond the test's: had Start waited for it rather than
	// reporting the exit it saw, the error would say the emulator did not answer.
	_, err := emulators.Start(t.Context(), emulators.Options{LogDir: logs, StartTimeout: time.Hour})
	if err == nil {
		t.Fatal("Start succeeded with a broken moto_server")
	}
	msg := err.Error()
	for _, want := range []string{"kms emulator", `pip install "moto[server]"`, filepath.Join(logs, "kms.log"), "command not found"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error does not contain %q:\n%s", want, msg)
		}
	}
	if strings.Contains(msg, "dynamodb emulator") || strings.Contains(msg, "ses emulator") {
		t.Errorf("error blames the healthy emulators:\n%s", msg)
	}
	if strings.Contains(msg, "did not answer") {
		t.Errorf("Start waited for its timeout instead of reporting the exit:\n%s", msg)
	}
	if len(groupsOfNoFail()) != 0 {
		t.Errorf("emulators left running after a failed Start")
	}
}
