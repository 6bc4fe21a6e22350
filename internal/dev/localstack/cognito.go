package localstack

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mspvault/orgkey/internal/dev/procgroup"
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

// ConfirmationCodes reads cognito-local's user database in dir
// (.cognito/db/<pool id>.json, written before SignUp answers) and returns the
// pending confirmation code per email (lower case): cognito-local "delivers"
// codes to its console instead of mailing them, and its console output is
// buffered.
func ConfirmationCodes(dir string) (map[string]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, ".cognito", "db", "*.json"))
	if err != nil {
		return nil, err
	}
	codes := map[string]string{}
	for _, f := range files {
		if filepath.Base(f) == "clients.json" {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var db struct {
			Users map[string]struct {
				ConfirmationCode string
				Attributes       []struct{ Name, Value string }
			}
		}
		if err := json.Unmarshal(b, &db); err != nil {
			return nil, fmt.Errorf("read %s: %w", f, err)
		}
		for _, u := range db.Users {
			for _, a := range u.Attributes {
				if a.Name == "email" && u.ConfirmationCode != "" {
					codes[strings.ToLower(a.Value)] = u.ConfirmationCode
				}
			}
		}
	}
	return codes, nil
}
