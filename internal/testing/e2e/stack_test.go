// Package e2e holds the end-to-end tests: they build the functions and
// cmd/orgkey-local, start the local stack as a separate process, exactly as
// `make run DEMO=0` does, and drive it only from outside, as its users do:
// Cognito, the HTTP API, the Lambda endpoint, the mail in the SES emulator,
// and a real browser (Chromium). The admin UI that sets roles and sites is
// out of the service's scope; its writes to the table stand in for it.
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/mspvault/orgkey/internal/dev/localstack"
	"github.com/mspvault/orgkey/internal/dev/samtemplate"
	"github.com/mspvault/orgkey/internal/tenant"
)

// shared is the stack every test but the lifecycle test uses.
var shared *stackProc

// binary is the built orgkey-local; binDir holds the functions' bootstraps (a
// temporary directory: tests never write into the repository's bin/).
var binary, binDir string

func TestMain(m *testing.M) {
	os.Exit(mainExit(m))
}

func mainExit(m *testing.M) int {
	root, err := samtemplate.FindRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	dir, err := os.MkdirTemp("", "orgkey-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	if binary, err = build(root, dir); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	shared, err = startStack(root, dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	code := m.Run()
	if err := shared.stop(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		if code == 0 {
			code = 1
		}
	}
	return code
}

// build runs `make build` into dir/bin (the functions' bootstraps, as make run
// uses them) and builds orgkey-local into dir.
func build(root, dir string) (string, error) {
	binDir = filepath.Join(dir, "bin")
	cmd := exec.Command("make", "--no-print-directory", "build", "BIN="+binDir)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make build: %v\n%s", err, out)
	}
	bin := filepath.Join(dir, "orgkey-local")
	cmd = exec.Command("go", "build", "-o", bin, "./cmd/orgkey-local")
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build orgkey-local: %v\n%s", err, out)
	}
	return bin, nil
}

// stackProc is a running orgkey-local.
type stackProc struct {
	cmd    *exec.Cmd
	ep     localstack.Endpoints
	out    *lockedBuffer
	done   chan struct{}
	errRun error
}

// startStack starts orgkey-local on free ports and waits until it wrote its
// state file.
func startStack(root, dir string) (*stackProc, error) {
	sdir, err := os.MkdirTemp(dir, "stack-")
	if err != nil {
		return nil, err
	}
	state := filepath.Join(sdir, "state.json")
	cmd := exec.Command(binary, "-demo=false", "-root", root, "-bin-dir", binDir, "-state-file", state, "-log-dir", filepath.Join(sdir, "logs"),
		"-api-port=0", "-lambda-port=0", "-cognito-port=0", "-dynamodb-port=0", "-ses-port=0", "-kms-port=0",
		// The template's schedules (the reset's sweep, the sign-ups' catch-up) faster
		// than their rates, so that a confirmed reset completes within seconds.
		"-schedule-every=1s")
	cmd.Dir = root
	p := &stackProc{cmd: cmd, out: &lockedBuffer{}, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	// Its own process group, so that a test's Ctrl-C is not the stack's.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() { p.errRun = cmd.Wait(); close(p.done) }()

	deadline := time.After(3 * time.Minute)
	for {
		if ep, err := localstack.ReadEndpoints(state); err == nil {
			p.ep = ep
			return p, nil
		}
		select {
		case <-p.done:
			return nil, fmt.Errorf("orgkey-local exited during start (%v):\n%s", p.errRun, p.out)
		case <-deadline:
			p.cmd.Process.Kill()
			<-p.done
			return nil, fmt.Errorf("orgkey-local did not start in time:\n%s", p.out)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// stop interrupts the stack (Ctrl-C) and waits for it to exit 0.
func (p *stackProc) stop() error {
	p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
		return fmt.Errorf("orgkey-local did not stop within 60 s of Ctrl-C:\n%s", p.out)
	}
	if p.errRun != nil {
		return fmt.Errorf("orgkey-local exited with %v after Ctrl-C:\n%s", p.errRun, p.out)
	}
	return nil
}

// lockedBuffer collects the stack's output.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ---------------------------------------------------------------- fixtures

// client returns a client of the shared stack.
func client(t *testing.T) *localstack.Client {
	t.Helper()
	return localstack.NewClient(shared.ep)
}

// unique makes addresses and names that no other test uses.
func unique(prefix string) string {
	b := make([]byte, 5)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// member is a signed-in user of an organization.
type member struct {
	localstack.Person
	User   tenant.User
	Tokens localstack.Tokens
}

// org is an organization created by a real sign-up.
type org struct {
	ID    string
	Name  string
	Key   string // from the activation mail
	Admin member // the creator, its first org admin
	Site  string // a site, created with the organization
	// members are the members add made, in order.
	members []member
}

var orgKeyRE = regexp.MustCompile(`OK1(?:-[0-9A-Z]{4}){7}`)

// newOrg signs a company up (SignUp, ConfirmSignUp with cognito-local's code,
// which runs the activation trigger), reads the key from the activation mail
// and signs the creator in.
func newOrg(t *testing.T, c *localstack.Client) *org {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	p := localstack.Person{Email: unique("creator-") + "@example.com", Name: "Camille Martin", Locale: "en",
		Company: unique("Company "), Password: localstack.DemoPassword}
	sub, err := c.SignUp(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	code, err := c.ConfirmationCode(ctx, p.Email)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.ConfirmSignUp(ctx, p.Email, code); err != nil {
		t.Fatal(err)
	}
	tid, err := c.TenantOf(ctx, sub)
	if err != nil {
		t.Fatal(err)
	}
	mails, err := c.WaitExactEmails(ctx, p.Email, 1)
	if err != nil {
		t.Fatal(err)
	}
	key := orgKeyRE.FindString(mails[0].Text)
	if key == "" {
		t.Fatalf("no org key in the activation mail:\n%s", mails[0].Text)
	}
	admin, err := c.Store.GetUser(ctx, tid, sub)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := c.SignIn(ctx, p.Email, p.Password)
	if err != nil {
		t.Fatal(err)
	}
	site, err := c.AddSite(ctx, tid, unique("site_"), "Main site")
	if err != nil {
		t.Fatal(err)
	}
	return &org{ID: tid, Name: p.Company, Key: key, Admin: member{Person: p, User: admin, Tokens: tokens}, Site: site.ID}
}

// add creates a signed-in member of the organization (admin UI).
func (o *org) add(t *testing.T, c *localstack.Client, role tenant.Role, sites ...string) member {
	t.Helper()
	p := localstack.Person{Email: unique(string(role)+"-") + "@example.com", Name: "Member " + string(role), Locale: "en", Password: localstack.DemoPassword}
	u, err := c.Invite(t.Context(), o.ID, p, role, sites...)
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := c.SignIn(t.Context(), p.Email, p.Password)
	if err != nil {
		t.Fatal(err)
	}
	m := member{Person: p, User: u, Tokens: tokens}
	o.members = append(o.members, m)
	return m
}

// invite creates a member with a temporary password, not signed in: their first
// sign-in must choose a new password (NEW_PASSWORD_REQUIRED).
func (o *org) invite(t *testing.T, c *localstack.Client, role tenant.Role) member {
	t.Helper()
	p := localstack.Person{Email: unique("invited-") + "@example.com", Name: "Invited " + string(role), Locale: "fr",
		Password: "Temp-Passw0rd-" + unique(""), Temporary: true}
	u, err := c.Invite(t.Context(), o.ID, p, role)
	if err != nil {
		t.Fatal(err)
	}
	m := member{Person: p, User: u}
	o.members = append(o.members, m)
	return m
}

// processTree returns pid and every descendant of it, read from /proc.
func processTree(pid int) (map[int]string, error) {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	children := map[int][]int{}
	names := map[int]string{}
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		ppid, name, _, err := procStat(p)
		if err != nil {
			continue
		}
		children[ppid] = append(children[ppid], p)
		names[p] = name
	}
	tree := map[int]string{pid: names[pid]}
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			tree[c] = names[c]
			queue = append(queue, c)
		}
	}
	return tree, nil
}

// procStat reads a process's parent, name and state.
func procStat(pid int) (ppid int, name, state string, err error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, "", "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, "", "", err
	}
	open, close := strings.IndexByte(line, '('), strings.LastIndexByte(line, ')')
	if open < 0 || close < open {
		return 0, "", "", fmt.Errorf("malformed stat of %d", pid)
	}
	fields := strings.Fields(line[close+1:])
	if len(fields) < 2 {
		return 0, "", "", fmt.Errorf("malformed stat of %d", pid)
	}
	ppid, err = strconv.Atoi(fields[1])
	return ppid, line[open+1 : close], fields[0], err
}

// alive reports whether a process exists and is not a zombie.
func alive(pid int) bool {
	_, _, state, err := procStat(pid)
	return err == nil && state != "Z" && state != "X"
}
