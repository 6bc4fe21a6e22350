// Command hello is floor (a) of the cold-start benchmark: the least an aws-lambda-go
// function does.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

func main() {
	lambda.Start(func(context.Context) (string, error) { return "hello", nil })
}
