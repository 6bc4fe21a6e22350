// Package awsconfig builds the one aws.Config a function uses for all its clients. The
// SDK reads the region, the credentials and the per-service endpoints
// (AWS_ENDPOINT_URL_<SERVICE>, which local runs point at the emulators) from the
// environment; there is no code path of our own for local runs.
package awsconfig

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Load returns the configuration from the environment.
func Load(ctx context.Context) (aws.Config, error) {
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("loading AWS configuration: %w", err)
	}
	return cfg, nil
}
