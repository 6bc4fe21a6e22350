// Command orgkey-local runs the organization-key service's local stack (what
// `make run` starts): the emulators (DynamoDB Local, aws-ses-v2-local, moto's
// KMS, cognito-local), every function's built bootstrap, the HTTP API on
// 127.0.0.1:3000 and the Lambda endpoint on 127.0.0.1:3001, all from
// template.yaml (see internal/dev/localstack). In demo mode it walks through the
// product with real calls; then it keeps the stack up until interrupted, and
// stops every process it started.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/mspvault/orgkey/internal/dev/localstack"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "orgkey-local:", err)
		}
		os.Exit(1)
	}
}

type options struct {
	stack        localstack.Options
	demo         bool
	wait         bool
	stateFile    string
	functionLogs string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("orgkey-local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.stack.Root, "root", "", "repository root (default: the directory holding go.mod, found from the working directory)")
	fs.StringVar(&o.stack.BinDir, "bin-dir", "", "directory of the functions' bootstraps, <dir>/<function>/bootstrap, as `make build BIN=<dir>` writes them (default: bin under the root)")
	fs.BoolVar(&o.demo, "demo", demoDefault(os.Getenv("DEMO")),
		"walk through the product with real calls once the stack is up (default from DEMO: 0/false/no/off turns it off)")
	fs.BoolVar(&o.wait, "wait", true, "keep the stack running until interrupted (Ctrl-C)")
	fs.StringVar(&o.stack.Table, "table", "orgkey-local", "table name (also the KMS key's alias)")
	fs.IntVar(&o.stack.APIPort, "api-port", 3000, "HTTP API port (0: a free one)")
	fs.IntVar(&o.stack.LambdaPort, "lambda-port", 3001, "Lambda Invoke API port (0: a free one)")
	fs.IntVar(&o.stack.CognitoPort, "cognito-port", 9229, "cognito-local port (0: a free one)")
	fs.IntVar(&o.stack.Emulators.DynamoDBPort, "dynamodb-port", 8000, "DynamoDB Local port (0: a free one)")
	fs.IntVar(&o.stack.Emulators.SESPort, "ses-port", 8005, "aws-ses-v2-local port, also its mail viewer (0: a free one)")
	fs.IntVar(&o.stack.Emulators.KMSPort, "kms-port", 4599, "moto (KMS) port (0: a free one)")
	fs.StringVar(&o.stack.LogDir, "log-dir", "", "directory for the emulators' and functions' logs (default: a temporary one, removed on exit)")
	fs.StringVar(&o.functionLogs, "function-logs", "", "where the functions' JSON logs go: - for stderr (default: functions.log in the log directory)")
	fs.StringVar(&o.stateFile, "state-file", "", "write the endpoints as JSON to this file once the stack is up")
	fs.DurationVar(&o.stack.ScheduleEvery, "schedule-every", 0, "run every Schedule event of template.yaml at this interval instead of its rate (0: each at its rate, as EventBridge does)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	return o, nil
}

// demoDefault reads DEMO: anything but 0, false, no or off means on.
func demoDefault(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "0", "false", "no", "off":
		return false
	}
	return true
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) (err error) {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.functionLogs == "-" {
		o.stack.FunctionLogs = stderr
	}
	fmt.Fprintln(stdout, "starting the local stack (DynamoDB Local, aws-ses-v2-local, moto KMS, cognito-local, the functions)...")
	began := time.Now()
	stack, err := localstack.Start(ctx, o.stack)
	if err != nil {
		return err
	}
	defer func() {
		fmt.Fprintln(stdout, "stopping the local stack...")
		if serr := stack.Stop(); serr != nil {
			err = errors.Join(err, serr)
		} else {
			fmt.Fprintln(stdout, "stopped; nothing left running")
		}
	}()
	fmt.Fprintf(stdout, "ready in %v\n", time.Since(began).Round(100*time.Millisecond))
	if o.stateFile != "" {
		if err := stack.WriteState(o.stateFile); err != nil {
			return err
		}
		defer os.Remove(o.stateFile)
	}

	if o.demo {
		began := time.Now()
		if err := localstack.Walkthrough(ctx, stdout, localstack.NewClient(stack.Endpoints)); err != nil {
			return fmt.Errorf("walkthrough: %w", err)
		}
		fmt.Fprintf(stdout, "   (walkthrough took %v)\n", time.Since(began).Round(100*time.Millisecond))
	}
	printStack(stdout, stack)

	if !o.wait {
		return nil
	}
	fmt.Fprintln(stdout, "\nthe stack is running; press Ctrl-C to stop it")
	<-ctx.Done()
	fmt.Fprintln(stdout)
	return nil
}

func printStack(w io.Writer, s *localstack.Stack) {
	fmt.Fprintf(w, "\n== the local stack\n")
	fmt.Fprintf(w, "HTTP API:          %s\n", s.API)
	for _, k := range slices.Sorted(maps.Keys(s.Routes)) {
		fmt.Fprintf(w, "                     %-24s authorizer %s\n", k, s.Routes[k])
	}
	fmt.Fprintf(w, "Lambda endpoint:   %s (%s)\n", s.Lambda, strings.Join(s.Functions, ", "))
	for _, sc := range s.Schedules {
		fmt.Fprintf(w, "schedule:          %s\n", sc)
	}
	fmt.Fprintf(w, "SES mail viewer:   %s\n", s.SESViewer)
	fmt.Fprintf(w, "Cognito:           %s (user pool %s, app client %s)\n", s.Cognito, s.UserPoolID, s.ClientID)
	fmt.Fprintf(w, "  JWT issuer:      %s\n", s.Issuer)
	fmt.Fprintf(w, "DynamoDB Local:    %s (table %s)\n", s.DynamoDB, s.Table)
	fmt.Fprintf(w, "KMS (moto):        %s (key %s, alias/%s)\n", s.KMS, s.KMSKeyID, s.Table)
	fmt.Fprintf(w, "logs:              %s (functions.log, cognito.log, dynamodb.log, ses.log, kms.log)\n", s.LogDir)
	fmt.Fprintf(w, "\nthe AWS CLI against it, in another shell:\n")
	for _, kv := range s.CLIEnv() {
		fmt.Fprintf(w, "  export %s\n", kv)
	}
	fmt.Fprintf(w, "  TOKEN=$(aws cognito-idp initiate-auth --client-id %s --auth-flow USER_PASSWORD_AUTH \\\n", s.ClientID)
	fmt.Fprintf(w, "    --auth-parameters USERNAME=camille.martin@example.com,PASSWORD='%s' \\\n", localstack.DemoPassword)
	fmt.Fprintf(w, "    --query AuthenticationResult.AccessToken --output text)\n")
	fmt.Fprintf(w, "  curl -si -X POST -H \"Authorization: Bearer $TOKEN\" %s/org-key/reveal\n", s.API)
	fmt.Fprintf(w, "  aws lambda invoke --function-name SupportResetFunction \\\n")
	fmt.Fprintf(w, "    --payload file://events/support-reset-dry-run.json /dev/stdout   # CLI v2: add --cli-binary-format raw-in-base64-out\n")
	fmt.Fprintf(w, "  aws dynamodb scan --table-name %s --max-items 5\n", s.Table)
}
