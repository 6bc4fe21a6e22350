package localstack

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mspvault/orgkey/internal/procgroup"
)

const hintCognito = "run `npm ci` in the repository root (or `make deps`)"

// cognitoLocal is a running cognito-local.
type cognitoLocal struct {
	URL     string
	LogPath string
	cmd     *procgroup.Cmd
	log     *os.File
}

// cognitoConfig is cognito-local's .cognito/config.json.
type cognitoConfig struct {
	LambdaClient struct {
		Endpoint    string `json:"endpoint"`
		Region      string `json:"region"`
		Credentials struct {
			AccessKeyID     string `json:"accessKeyId"`
			SecretAccessKey string `json:"secretAccessKey"`
		} `json:"credentials"`
	}
	TriggerFunctions map[string]string
	TokenConfig      struct {
		IssuerDomain string
	}
}

// startCognito runs cognito-local in dir (which receives .cognito/, its
// config and database) on a loopback port, with the user pool triggers
// pointing at the Lambda endpoint, and waits until it answers.
func startCognito(ctx context.Context, root, dir string, port int, lambdaURL string, trig map[string]string, logPath string) (_ *cognitoLocal, err error) {
	node, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node not found on PATH: install Node.js 20 and npm (apt-get install -y nodejs npm)")
	}
	start := filepath.Join(root, "node_modules", "cognito-local", "lib", "bin", "start.js")
	if _, err := os.Stat(start); err != nil {
		return nil, fmt.Errorf("cognito-local (%s) not found: %s", start, hintCognito)
	}
	url := "http://127.0.0.1:" + strconv.Itoa(port)

	var cfg cognitoConfig
	cfg.LambdaClient.Endpoint = lambdaURL
	cfg.LambdaClient.Region = Region
	cfg.LambdaClient.Credentials.AccessKeyID = "local"
	cfg.LambdaClient.Credentials.SecretAccessKey = "local"
	cfg.TriggerFunctions = trig
	cfg.TokenConfig.IssuerDomain = url
	b, err := json.MarshalIndent(cfg, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(dir, ".cognito"), 0o755); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, ".cognito", "config.json"), b, 0o644); err != nil {
		return nil, err
	}

	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(node, start)
	cmd.Dir = dir
	cmd.Env = append(cleanEnv(), "HOST=127.0.0.1", "PORT="+strconv.Itoa(port))
	cmd.Stdout, cmd.Stderr = logf, logf
	pc, err := procgroup.Start(cmd)
	if err != nil {
		logf.Close()
		return nil, fmt.Errorf("start cognito-local: %w", err)
	}
	c := &cognitoLocal{URL: url, LogPath: logPath, cmd: pc, log: logf}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()

	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(wctx, http.MethodGet, url+"/health", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return c, nil
			}
		}
		select {
		case <-pc.Done():
			return nil, fmt.Errorf("cognito-local exited during start (%v): %s; log %s", pc.Err(), hintCognito, logPath)
		case <-wctx.Done():
			return nil, fmt.Errorf("cognito-local did not answer at %s: %w; log %s", url, wctx.Err(), logPath)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *cognitoLocal) stop() error {
	err := c.cmd.Stop(3 * time.Second)
	c.log.Close()
	if err != nil {
		return fmt.Errorf("stop cognito-local: %w", err)
	}
	return nil
}

// cleanEnv is this process's environment without AWS settings, which must
// not make an emulator reach anything but this machine.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "AWS_") || strings.HasPrefix(kv, "CODE=") ||
			strings.HasPrefix(kv, "HOST=") || strings.HasPrefix(kv, "PORT=") {
			continue
		}
		env = append(env, kv)
	}
	return env
}

var (
	ansi            = regexp.MustCompile(`\x1b\[[0-9;]*[A-Za-z]`)
	codeDestination = regexp.MustCompile(`Destination:\s+(\S+)`)
	codeValue       = regexp.MustCompile(`Code:\s+(\S+)`)
)

// ConfirmationCodes reads cognito-local's log, where it "delivers"
// confirmation codes instead of mailing them, and returns the latest code
// per destination (lower-case email).
func ConfirmationCodes(logPath string) (map[string]string, error) {
	f, err := os.Open(logPath)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	codes := map[string]string{}
	dest := ""
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := ansi.ReplaceAllString(sc.Text(), "")
		if m := codeDestination.FindStringSubmatch(line); m != nil {
			dest = strings.ToLower(m[1])
		}
		if m := codeValue.FindStringSubmatch(line); m != nil && dest != "" {
			codes[dest] = m[1]
			dest = ""
		}
	}
	return codes, sc.Err()
}
