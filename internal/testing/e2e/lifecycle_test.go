package e2e

import (
	"net"
	"net/url"
	"testing"
	"time"

	"github.com/mspvault/orgkey/internal/dev/samtemplate"
)

// TestStopLeavesNothingRunning starts a stack of its own, records every
// process it started (the emulators, cognito-local, each function's
// bootstrap, and whatever they spawned), interrupts it as Ctrl-C does, and
// checks that it exits 0 with none of them left and its ports closed.
func TestStopLeavesNothingRunning(t *testing.T) {
	root, err := samtemplate.FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	p, err := startStack(root, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tree, err := processTree(p.cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]int{}
	for _, n := range tree {
		names[n]++
	}
	// orgkey-local, java (DynamoDB Local), node (aws-ses-v2-local and
	// cognito-local), moto_server, and four bootstraps.
	if names["bootstrap"] != 4 || names["node"] < 2 || names["java"] < 1 || len(tree) < 9 {
		t.Errorf("the running stack's processes: %v", tree)
	}

	if err := p.stop(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for pid, name := range tree {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Errorf("process %d (%s) is still running after the stack stopped", pid, name)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	for _, u := range []string{p.ep.API, p.ep.Lambda, p.ep.Cognito, p.ep.DynamoDB, p.ep.SES, p.ep.KMS} {
		pu, err := url.Parse(u)
		if err != nil {
			t.Fatal(err)
		}
		if c, err := net.DialTimeout("tcp", pu.Host, time.Second); err == nil {
			c.Close()
			t.Errorf("%s still accepts connections after the stack stopped", u)
		}
	}
}
