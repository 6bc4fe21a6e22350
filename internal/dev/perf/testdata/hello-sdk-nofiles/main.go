// Command hello-sdk-nofiles is hello-sdk with the cut internal/lambdamain makes:
// LoadDefaultConfig told not to look for shared config and credentials files, which a
// Lambda sandbox does not have. It isolates that cut's effect from the functions' code.
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/mspvault/orgkey/internal/lambdamain"
)

func main() {
	cfg, err := lambdamain.LoadAWSConfig(context.Background())
	if err != nil {
		os.Exit(1)
	}
	clients := []any{dynamodb.NewFromConfig(cfg), kms.NewFromConfig(cfg), sesv2.NewFromConfig(cfg)}
	lambda.Start(func(context.Context) (int, error) { return len(clients), nil })
}
