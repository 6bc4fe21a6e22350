// Command roundtrips is floor (c) of the warm benchmark: a function that makes a
// flow's AWS calls bare (internal/dev/perf/probe), started and invoked like the real
// functions, so that what it adds to the bare calls is the Lambda runtime's hop and a
// process of its own, and what a function adds beyond it is the function's own work.
// Its event names the calls: {"caller": "3", "ops": ["DynamoDB.GetItem", ...]}.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/mspvault/orgkey/internal/dev/perf/probe"
	"github.com/mspvault/orgkey/internal/lambdamain"
)

type event struct {
	Caller string   `json:"caller"`
	Ops    []string `json:"ops"`
}

func main() {
	ctx := context.Background()
	cfg, err := lambdamain.LoadAWSConfig(ctx)
	if err != nil {
		os.Exit(1)
	}
	p := probe.New(cfg, probe.Target{Table: os.Getenv("TABLE_NAME"), KMSKeyID: os.Getenv("KMS_KEY_ID"),
		OrgID: os.Getenv("PROBE_ORG_ID"), MailFrom: os.Getenv("MAIL_FROM")})
	if err := p.Prepare(ctx); err != nil {
		os.Exit(1)
	}
	lambda.Start(func(ctx context.Context, ev event) (int, error) {
		return len(ev.Ops), p.RoundTrips(ctx, ev.Caller, ev.Ops)
	})
}
