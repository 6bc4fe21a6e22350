package lambdamain

// The one aws.Config a function uses for all its clients. The SDK reads the region,
// the credentials and the per-service endpoints (AWS_ENDPOINT_URL_<SERVICE>, which
// local runs point at the emulators) from the environment; there is no code path of
// our own for local runs.

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// LoadAWSConfig returns the configuration from the environment.
//
// Inside Lambda (AWS_LAMBDA_FUNCTION_NAME is set) it tells the SDK not to look for the
// shared config and credentials files (~/.aws/config, ~/.aws/credentials): a sandbox
// has none, its region and credentials (session token included, fixed for the
// sandbox's life) come from the environment, and looking costs init time on every
// cold start. Everything else LoadDefaultConfig reads from the environment is kept,
// AWS_ENDPOINT_URL_<SERVICE> included. Outside Lambda (tools, tests) the files are
// read as usual.
func LoadAWSConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx, options()...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	return cfg, nil
}

func options() []func(*config.LoadOptions) error {
	if skipSharedFiles && os.Getenv("AWS_LAMBDA_FUNCTION_NAME") != "" {
		return []func(*config.LoadOptions) error{
			config.WithSharedConfigFiles([]string{}),
			config.WithSharedCredentialsFiles([]string{}),
		}
	}
	return nil
}
