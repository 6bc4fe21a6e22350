// Command hello-sdk is floor (b) of the cold-start benchmark: hello that builds the
// functions' SDK clients the usual way (config.LoadDefaultConfig + NewFromConfig).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
)

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		os.Exit(1)
	}
	clients := []any{dynamodb.NewFromConfig(cfg), kms.NewFromConfig(cfg), sesv2.NewFromConfig(cfg)}
	lambda.Start(func(context.Context) (int, error) { return len(clients), nil })
}
