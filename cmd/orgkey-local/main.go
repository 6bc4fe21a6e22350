// Command orgkey-local runs the organization-key service's local stack
// (what `make run` starts): the emulators (DynamoDB Local, aws-ses-v2-local,
// moto's KMS), a table and a KMS key provisioned from template.yaml, and the
// activation-email function's built bootstrap behind a local Lambda Runtime
// API. In demo mode it invokes the function once with
// events/activation-email.json and prints the result and the mail that
// arrived; then it keeps the stack up until interrupted.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/mspvault/orgkey/internal/emulators"
	"github.com/mspvault/orgkey/internal/lambdarun"
	"github.com/mspvault/orgkey/internal/samtemplate"
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

const activationFunction = "ActivationEmailFunction"

type options struct {
	root      string
	demo      bool
	wait      bool
	table     string
	bootstrap string
	event     string
	ports     emulators.Options
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("orgkey-local", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.root, "root", "", "repository root (default: the directory holding go.mod, found from the working directory)")
	fs.BoolVar(&o.demo, "demo", demoDefault(os.Getenv("DEMO")),
		"invoke activation-email once with its sample event and show the mail (default from DEMO: 0/false/no turns it off)")
	fs.BoolVar(&o.wait, "wait", true, "keep the stack running until interrupted (Ctrl-C)")
	fs.StringVar(&o.table, "table", "orgkey-local", "table name (also the KMS key's alias)")
	fs.StringVar(&o.bootstrap, "bootstrap", "bin/activation-email/bootstrap", "activation-email's built bootstrap (`make build`), relative to the root")
	fs.StringVar(&o.event, "event", "events/activation-email.json", "event for the demo invocation, relative to the root")
	fs.IntVar(&o.ports.DynamoDBPort, "dynamodb-port", 0, "DynamoDB Local port (0: a free one)")
	fs.IntVar(&o.ports.SESPort, "ses-port", 0, "aws-ses-v2-local port (0: a free one)")
	fs.IntVar(&o.ports.KMSPort, "kms-port", 0, "moto (KMS) port (0: a free one)")
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
	if o.root == "" {
		if o.root, err = samtemplate.FindRoot(); err != nil {
			return err
		}
	}
	bootstrap := under(o.root, o.bootstrap)
	if _, err := os.Stat(bootstrap); err != nil {
		return fmt.Errorf("%s not found: run `make build` first", bootstrap)
	}
	tpl, err := samtemplate.Load(filepath.Join(o.root, "template.yaml"))
	if err != nil {
		return err
	}
	fn, err := findFunction(tpl, activationFunction)
	if err != nil {
		return err
	}

	fmt.Fprintln(stdout, "starting the emulators (DynamoDB Local, aws-ses-v2-local, moto KMS)...")
	began := time.Now()
	opts := o.ports
	opts.Root = o.root
	stack, err := emulators.Start(ctx, opts)
	if err != nil {
		return err
	}
	defer func() {
		if serr := stack.Stop(); serr != nil {
			err = errors.Join(err, serr)
		}
	}()
	if err := stack.Setenv(); err != nil {
		return err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return fmt.Errorf("load AWS config: %w", err)
	}
	keyID, err := stack.Provision(ctx, awsCfg, o.table)
	if err != nil {
		return err
	}
	key, err := kms.NewFromConfig(awsCfg).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyID)})
	if err != nil {
		return fmt.Errorf("describe key %s: %w", keyID, err)
	}
	fmt.Fprintf(stdout, "ready in %v: table %s, KMS key %s\n", time.Since(began).Round(100*time.Millisecond), o.table, keyID)

	fnEnv, err := functionEnv(tpl, fn, map[string]localResource{
		emulators.TableLogicalID: {Ref: o.table, Arn: "arn:aws:dynamodb:us-east-1:123456789012:table/" + o.table},
		"OrgKeyWrappingKey":      {Ref: keyID, Arn: aws.ToString(key.KeyMetadata.Arn)},
	})
	if err != nil {
		return err
	}
	f, err := lambdarun.Start(lambdarun.Config{
		Name:      "orgkey-local-activation-email",
		Bootstrap: bootstrap,
		Env:       append(stack.Env(), fnEnv...),
		MemoryMB:  fn.MemorySize,
		Timeout:   time.Duration(fn.Timeout) * time.Second,
		Logs:      stderr,
	})
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
	}()

	if o.demo {
		if err := demo(ctx, stdout, stack, f, under(o.root, o.event)); err != nil {
			return err
		}
	}
	printStack(stdout, stack, o.table, keyID, fnEnv)

	if !o.wait {
		return nil
	}
	fmt.Fprintln(stdout, "\nthe stack is running; press Ctrl-C to stop it")
	<-ctx.Done()
	fmt.Fprintln(stdout, "\nstopping...")
	return nil
}

// demo invokes activation-email with its sample event and prints the
// function's answer and the mail the local SES received.
func demo(ctx context.Context, w io.Writer, stack *emulators.Stack, f *lambdarun.Function, eventPath string) error {
	event, err := os.ReadFile(eventPath)
	if err != nil {
		return fmt.Errorf("read the demo event: %w", err)
	}
	fmt.Fprintf(w, "\n== invoking activation-email with %s\n", eventPath)
	out, err := f.Invoke(ctx, event)
	if err != nil {
		return fmt.Errorf("invoke activation-email: %w", err)
	}
	fmt.Fprintf(w, "result:\n%s\n", indent(out))

	mails, err := stack.Emails(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "\n== %d mail(s) at the local SES\n", len(mails))
	for _, m := range mails {
		fmt.Fprintf(w, "\nSubject: %s\nFrom:    %s\nTo:      %s\n\n%s\n", m.Subject, m.From, strings.Join(m.To, ", "), strings.TrimRight(m.Text, "\n"))
	}
	return nil
}

func printStack(w io.Writer, stack *emulators.Stack, table, keyID string, fnEnv []string) {
	fmt.Fprintf(w, "\n== local stack\n")
	fmt.Fprintf(w, "SES mail viewer:  %s\n", stack.SESViewerURL())
	fmt.Fprintf(w, "DynamoDB Local:   %s (table %s)\n", stack.DynamoDB, table)
	fmt.Fprintf(w, "KMS (moto):       %s (key %s, alias/%s)\n", stack.KMS, keyID, table)
	fmt.Fprintf(w, "emulator logs:    %s\n", stack.LogDir)
	fmt.Fprintf(w, "activation-email environment: %s\n", strings.Join(fnEnv, " "))
	fmt.Fprintf(w, "\nto use the AWS CLI against it, in another shell:\n")
	for _, kv := range stack.Env() {
		fmt.Fprintf(w, "  export %s\n", kv)
	}
	fmt.Fprintf(w, "  aws dynamodb scan --table-name %s\n", table)
}

func findFunction(tpl *samtemplate.Template, logicalID string) (samtemplate.Function, error) {
	fns, err := tpl.Functions()
	if err != nil {
		return samtemplate.Function{}, err
	}
	for _, fn := range fns {
		if fn.LogicalID == logicalID {
			return fn, nil
		}
	}
	return samtemplate.Function{}, fmt.Errorf("template.yaml has no function %s", logicalID)
}

func indent(b []byte) string {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return string(b)
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return string(b)
	}
	return string(out)
}

// under resolves a relative path against the repository root.
func under(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}
