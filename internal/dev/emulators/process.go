package emulators

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/mspvault/orgkey/internal/dev/procgroup"
)

// process is one running emulator.
type process struct {
	spec
	url     string
	logPath string
	log     *os.File
	cmd     *procgroup.Cmd
}

func startProcess(sp spec, port int, url, logPath string) (*process, error) {
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, fmt.Errorf("start %s emulator: %w", sp.name, err)
	}
	cmd := exec.Command(sp.path, sp.args(port)...)
	cmd.Dir = sp.dir
	cmd.Env = childEnv()
	cmd.Stdin = nil
	cmd.Stdout = logf
	cmd.Stderr = logf
	pc, err := procgroup.Start(cmd)
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("start %s emulator (%s): %w", sp.name, sp.path, err)
	}
	return &process{spec: sp, url: url, logPath: logPath, log: logf, cmd: pc}, nil
}

// childEnv is this process's environment without what could make an emulator
// reach outside the machine (aws-ses-v2-local relays mail to SMTP_TRANSPORT)
// or confuse it with real credentials.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "SMTP_TRANSPORT=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

// waitReady polls the emulator until it answers, it exits, or ctx ends.
func (p *process) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: 500 * time.Millisecond}
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		if answers(ctx, client, p.url) {
			return nil
		}
		select {
		case <-p.cmd.Done():
			return fmt.Errorf("%s emulator (%s) exited during start (%v); %s; log %s:\n%s",
				p.name, p.path, p.cmd.Err(), p.hint, p.logPath, tail(p.logPath, 15))
		case <-ctx.Done():
			return fmt.Errorf("%s emulator did not answer at %s: %w; log %s:\n%s",
				p.name, p.url, context.Cause(ctx), p.logPath, tail(p.logPath, 15))
		case <-tick.C:
		}
	}
}

func (p *process) stop() error {
	err := p.cmd.Stop(5 * time.Second)
	if cerr := p.log.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("stop %s emulator: %w", p.name, err)
	}
	return nil
}

// tail returns the last n lines of a log file, indented, for an error message.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "  (" + err.Error() + ")"
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	var sb strings.Builder
	for _, l := range lines {
		sb.WriteString("  | ")
		sb.Write(l)
		sb.WriteByte('\n')
	}
	return strings.TrimRight(sb.String(), "\n")
}
