// Package lambdamain is the start-up every function shares: its configuration read
// once from the environment, the one aws.Config its clients are built from, the JSON
// logger, then the Lambda runtime. A configuration error ends the process at init with
// one log line naming the variable, which Lambda reports as an init failure.
package lambdamain

import (
	"context"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/caarlos0/env/v11"
)

// Validator is a configuration with checks beyond what its env tags say.
type Validator interface{ Validate() error }

// Run reads C from the environment (caarlos0/env struct tags), validates it when it
// can, loads the AWS configuration, asks build for the handler and starts the runtime.
// It does not return.
func Run[C any](build func(cfg C, awsCfg aws.Config, log *slog.Logger) any) {
	log := NewLogger(os.Stdout)
	cfg, err := env.ParseAs[C]()
	if v, ok := any(cfg).(Validator); ok && err == nil {
		err = v.Validate()
	}
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	awsCfg, err := LoadAWSConfig(context.Background())
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	lambda.Start(build(cfg, awsCfg, log))
}
