// Package procgroup runs child processes in a process group of their own, so
// that a process and everything it spawned can be ended together and waited
// for, leaving nothing running. It is shared by the local tooling (emulators,
// lambdarun); it only builds on Unix.
package procgroup

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
	"time"
)

// Cmd is a started child process with its own process group.
type Cmd struct {
	*exec.Cmd
	done    chan struct{}
	waitErr error
}

// Start starts cmd as the leader of a new process group. On Linux the child
// is also killed if this process dies first (a test binary killed on
// timeout), so emulators do not outlive their owner.
func Start(cmd *exec.Cmd) (*Cmd, error) {
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	c := &Cmd{Cmd: cmd, done: make(chan struct{})}
	go func() {
		c.waitErr = cmd.Wait()
		close(c.done)
	}()
	return c, nil
}

// Done is closed when the process has exited and been reaped.
func (c *Cmd) Done() <-chan struct{} { return c.done }

// Err is the process's exit error (see exec.Cmd.Wait); valid after Done.
func (c *Cmd) Err() error {
	<-c.done
	return c.waitErr
}

// Stop sends SIGTERM to the whole group, waits up to grace for the leader to
// exit, then sends SIGKILL to whatever is left of the group and waits again.
// It returns an error only if the process could not be ended.
func (c *Cmd) Stop(grace time.Duration) error {
	pgid := c.Process.Pid
	signalGroup(pgid, syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(grace):
	}
	// Children that ignored SIGTERM, or outlived the leader, end here.
	signalGroup(pgid, syscall.SIGKILL)
	select {
	case <-c.done:
		return nil
	case <-time.After(5 * time.Second):
		return fmt.Errorf("process %d (%s) did not exit after SIGKILL", pgid, c.Path)
	}
}

// Kill sends SIGKILL to the whole group and waits for the leader.
func (c *Cmd) Kill() error { return c.Stop(0) }

func signalGroup(pgid int, sig syscall.Signal) {
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		// The group is gone or not ours; signal the leader alone as a fallback.
		_ = syscall.Kill(pgid, sig)
	}
}
