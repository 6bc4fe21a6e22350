// Package emulators starts and stops the local AWS emulators the project uses:
// DynamoDB Local (in memory), aws-ses-v2-local (SES v2) and moto's server (KMS).
//
// Each emulator runs as a child process in its own process group, listens on a
// loopback port and writes its output to a log file; Stop ends the groups and
// waits for them, so nothing is left running. Code under test reaches the
// emulators only through the SDK's standard endpoint settings
// (AWS_ENDPOINT_URL_<SERVICE>), which Env and Setenv provide.
package emulators

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mspvault/orgkey/internal/dev/samtemplate"
)

// Install hints, named in the errors Start returns when something is missing.
const (
	hintNPM  = "run `npm ci` in the repository root (or `make deps`)"
	hintJava = "install Java with `apt-get install -y openjdk-17-jre-headless`"
	hintNode = "install Node.js 20 and npm (e.g. `apt-get install -y nodejs npm`)"
	hintMoto = "install it with `pip install \"moto[server]\"`"
)

var errAborted = errors.New("another emulator failed")

// Region is the region the emulators are addressed in.
const Region = "us-east-1"

// Options configure Start. The zero value is ready to use.
type Options struct {
	// Root is the repository root, which holds node_modules and template.yaml.
	// Empty means samtemplate.FindRoot().
	Root string
	// Ports to listen on; 0 picks a free loopback port.
	DynamoDBPort, SESPort, KMSPort int
	// LogDir receives dynamodb.log, ses.log and kms.log. Empty means a new
	// temporary directory, removed by a clean Stop.
	LogDir string
	// StartTimeout bounds the wait for all emulators to answer. Default 3m:
	// a cold start takes about 5s, but several test binaries may start their
	// emulators at once on a small, loaded machine, where a JVM has been seen to
	// need more than a minute.
	StartTimeout time.Duration
}

// Stack is a running set of emulators.
type Stack struct {
	// Endpoint URLs (http://127.0.0.1:port).
	DynamoDB, SES, KMS string
	// LogDir holds each emulator's output.
	LogDir string
	// Root is the repository root the stack was started from.
	Root string

	procs      []*process
	removeLogs bool
	stopOnce   sync.Once
	stopErr    error
}

// Start starts the three emulators and waits until each answers HTTP. On
// error, whatever had started is stopped again and the error names the
// missing tool's install command or the log file to read.
func Start(ctx context.Context, opts Options) (_ *Stack, err error) {
	defer wrap(&err, "emulators.Start")

	root := opts.Root
	if root == "" {
		if root, err = samtemplate.FindRoot(); err != nil {
			return nil, fmt.Errorf("find repository root: %w", err)
		}
	}
	specs, err := commands(root)
	if err != nil {
		return nil, err
	}

	s := &Stack{Root: root, LogDir: opts.LogDir}
	if s.LogDir == "" {
		if s.LogDir, err = os.MkdirTemp("", "orgkey-emulators-"); err != nil {
			return nil, err
		}
		s.removeLogs = true
	} else if err := os.MkdirAll(s.LogDir, 0o755); err != nil {
		return nil, err
	}

	ports := map[string]int{"dynamodb": opts.DynamoDBPort, "ses": opts.SESPort, "kms": opts.KMSPort}
	for _, sp := range specs {
		port := ports[sp.name]
		if port == 0 {
			if port, err = freePort(); err != nil {
				return nil, errors.Join(err, s.Stop())
			}
		}
		url := "http://127.0.0.1:" + strconv.Itoa(port)
		switch sp.name {
		case "dynamodb":
			s.DynamoDB = url
		case "ses":
			s.SES = url
		case "kms":
			s.KMS = url
		}
		p, err := startProcess(sp, port, url, filepath.Join(s.LogDir, sp.name+".log"))
		if err != nil {
			return nil, errors.Join(err, s.Stop())
		}
		s.procs = append(s.procs, p)
	}

	timeout := opts.StartTimeout
	if timeout <= 0 {
		timeout = 3 * time.Minute
	}
	wctx, cancelTimeout := context.WithTimeout(ctx, timeout)
	defer cancelTimeout()
	// One emulator failing ends the wait for the others.
	wctx, abort := context.WithCancelCause(wctx)
	defer abort(nil)
	errs := make(chan error, len(s.procs))
	for _, p := range s.procs {
		go func() { errs <- p.waitReady(wctx) }()
	}
	var readyErr error
	for range s.procs {
		if err := <-errs; err != nil && !errors.Is(err, errAborted) {
			abort(errAborted)
			readyErr = errors.Join(readyErr, err)
		}
	}
	if ctx.Err() != nil { // the caller gave up (Ctrl-C): no failure to diagnose
		return nil, errors.Join(context.Cause(ctx), s.Stop())
	}
	if readyErr != nil {
		s.removeLogs = false // the error names the logs
		return nil, errors.Join(readyErr, s.Stop())
	}
	return s, nil
}

// Stop ends every emulator's process group and waits for it. It is safe to
// call more than once; later calls return the first call's result.
func (s *Stack) Stop() error {
	s.stopOnce.Do(func() {
		var wg sync.WaitGroup
		errs := make([]error, len(s.procs))
		for i, p := range s.procs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[i] = p.stop()
			}()
		}
		wg.Wait()
		s.stopErr = errors.Join(errs...)
		if s.stopErr == nil && s.removeLogs {
			s.stopErr = os.RemoveAll(s.LogDir)
		}
		if s.stopErr != nil {
			s.stopErr = fmt.Errorf("emulators.Stop: %w", s.stopErr)
		}
	})
	return s.stopErr
}

// Env returns the environment ("KEY=value") under which the AWS SDK (and the
// AWS CLI) reaches this stack: the per-service endpoint URLs, the region and
// dummy credentials. Shared config files are pointed at os.DevNull so that a
// developer's ~/.aws profile cannot redirect a client to a real account.
func (s *Stack) Env() []string {
	return []string{
		"AWS_ENDPOINT_URL_DYNAMODB=" + s.DynamoDB,
		"AWS_ENDPOINT_URL_KMS=" + s.KMS,
		// The SDK builds the variable name from the service id "SESv2".
		"AWS_ENDPOINT_URL_SESV2=" + s.SES,
		"AWS_REGION=" + Region,
		"AWS_DEFAULT_REGION=" + Region,
		"AWS_ACCESS_KEY_ID=local",
		"AWS_SECRET_ACCESS_KEY=local",
		"AWS_CONFIG_FILE=" + os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull,
		"AWS_EC2_METADATA_DISABLED=true",
	}
}

// unsetEnv lists variables that would compete with Env: a profile, a session
// token that belongs to other credentials, a global endpoint.
var unsetEnv = []string{"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL"}

// Setenv applies Env to the current process (and unsets variables that would
// compete with it), so that config.LoadDefaultConfig and every client built
// afterwards reach the emulators. It is for test and dev tooling, which owns
// its process; the environment is process-wide state.
func (s *Stack) Setenv() error {
	for _, k := range unsetEnv {
		if err := os.Unsetenv(k); err != nil {
			return fmt.Errorf("emulators.Setenv: unset %s: %w", k, err)
		}
	}
	for _, kv := range s.Env() {
		k, v, _ := strings.Cut(kv, "=")
		if err := os.Setenv(k, v); err != nil {
			return fmt.Errorf("emulators.Setenv: %s: %w", k, err)
		}
	}
	return nil
}

// SESViewerURL is aws-ses-v2-local's web page listing the mail it received.
func (s *Stack) SESViewerURL() string { return s.SES + "/" }

// spec describes how to run one emulator.
type spec struct {
	name string // dynamodb, ses, kms: also the log file's name
	path string // executable
	args func(port int) []string
	dir  string
	hint string // what to do when the process dies during start
}

// commands checks that every emulator is installed and says how to run it.
func commands(root string) ([]spec, error) {
	var missing []error

	emulator := filepath.Join(root, "node_modules", "amplify-dynamodb-simulator", "emulator")
	jar := filepath.Join(emulator, "DynamoDBLocal.jar")
	if _, err := os.Stat(jar); err != nil {
		missing = append(missing, fmt.Errorf("DynamoDB Local (%s) not found: %s", jar, hintNPM))
	}
	java, err := exec.LookPath("java")
	if err != nil {
		missing = append(missing, fmt.Errorf("java not found on PATH: %s", hintJava))
	}

	sesCLI := filepath.Join(root, "node_modules", "aws-ses-v2-local", "dist", "cli.js")
	if _, err := os.Stat(sesCLI); err != nil {
		missing = append(missing, fmt.Errorf("aws-ses-v2-local (%s) not found: %s", sesCLI, hintNPM))
	}
	node, err := exec.LookPath("node")
	if err != nil {
		missing = append(missing, fmt.Errorf("node not found on PATH: %s", hintNode))
	}

	moto, err := exec.LookPath("moto_server")
	if err != nil {
		missing = append(missing, fmt.Errorf("moto_server not found on PATH: %s", hintMoto))
	}
	if len(missing) > 0 {
		return nil, errors.Join(missing...)
	}

	return []spec{
		{
			name: "dynamodb",
			path: java,
			args: func(port int) []string {
				// -sharedDb: one database whatever the credentials and region,
				// so the AWS CLI with any profile sees the same tables.
				return []string{"-Djava.library.path=" + filepath.Join(emulator, "DynamoDBLocal_lib"),
					"-jar", jar, "-inMemory", "-sharedDb", "-port", strconv.Itoa(port)}
			},
			dir:  emulator,
			hint: "is Java 17 installed? " + hintJava,
		},
		{
			name: "ses",
			path: node,
			args: func(port int) []string {
				return []string{sesCLI, "--host", "127.0.0.1", "--port", strconv.Itoa(port)}
			},
			dir:  root,
			hint: "is node_modules complete? " + hintNPM,
		},
		{
			name: "kms",
			path: moto,
			args: func(port int) []string { return []string{"-H", "127.0.0.1", "-p", strconv.Itoa(port)} },
			dir:  root,
			hint: "is moto installed for this Python? " + hintMoto,
		},
	}, nil
}

// freePort asks the kernel for a free loopback port. Another process could
// take it before the emulator binds it; the emulator then exits and Start
// reports it with its log.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// answers reports whether an HTTP server answers at url (any status counts).
func answers(ctx context.Context, client *http.Client, url string) bool {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return false
	}
	resp, err := client.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return true
}

func wrap(errp *error, op string) {
	if *errp != nil {
		*errp = fmt.Errorf("%s: %w", op, *errp)
	}
}
