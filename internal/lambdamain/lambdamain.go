// Package lambdamain is the start-up every function shares: its configuration read
// once from the environment (the Common part every function has, and one validation),
// the one aws.Config its clients are built from, the JSON logger and the one log line
// of a non-HTTP invocation, then the Lambda runtime. A configuration error ends the
// process at init with one log line naming the variable, which Lambda reports as an
// init failure.
package lambdamain

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
)

// Run reads C from the environment (caarlos0/env struct tags) and validates it, loads
// the AWS configuration, builds the handler with build (a flow's New) and starts the
// runtime. It does not return.
func Run[C Validator, H lambda.Handler](build func(cfg C, awsCfg aws.Config, log *slog.Logger) (H, error)) {
	log := NewLogger(os.Stdout)
	fail := func(err error) {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	cfg, err := ParseEnv[C](os.Environ())
	if err != nil {
		fail(err)
	}
	awsCfg, err := LoadAWSConfig(context.Background())
	if err != nil {
		fail(err)
	}
	h, err := build(cfg, awsCfg, log)
	if err != nil {
		fail(err)
	}
	lambda.Start(h)
}
