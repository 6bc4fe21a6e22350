package procgroup_test

import (
	"bufio"
	"errors"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mspvault/orgkey/internal/dev/procgroup"
)

func TestStopEndsTheWholeGroup(t *testing.T) {
	// The shell starts a grandchild that ignores SIGTERM and prints its pid.
	cmd := exec.Command("sh", "-c", `sh -c 'trap "" TERM; while :; do sleep 1; done' & echo $!; wait`)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	c, err := procgroup.Start(cmd)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	grandchild, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil {
		t.Fatal(err)
	}

	if err := c.Stop(200 * time.Millisecond); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done not closed after Stop")
	}
	// The grandchild was reparented; give init a moment to reap it.
	deadline := time.Now().Add(2 * time.Second)
	for {
		err := syscall.Kill(grandchild, 0)
		if errors.Is(err, syscall.ESRCH) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("grandchild %d survived Stop (kill 0: %v)", grandchild, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
