// Command echo is a test function for lambdarun: it answers with what it was
// sent and what it sees of its environment, and can fail, panic, sleep or
// exit on request.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-lambda-go/lambdacontext"
)

type request struct {
	Echo    string `json:"echo"`
	Fail    string `json:"fail"`
	Panic   bool   `json:"panic"`
	Exit    bool   `json:"exit"`
	SleepMS int    `json:"sleepMs"`
	Env     string `json:"env"`
}

type response struct {
	Echo        string `json:"echo"`
	PID         int    `json:"pid"`
	RequestID   string `json:"requestId"`
	FunctionARN string `json:"functionArn"`
	Function    string `json:"function"`
	Memory      int    `json:"memory"`
	DeadlineIn  int64  `json:"deadlineInMs"`
	Env         string `json:"env"`
}

type codedError struct{ msg string }

func (e codedError) Error() string { return e.msg }

var invocations int

func handle(ctx context.Context, req request) (response, error) {
	invocations++
	lc, _ := lambdacontext.FromContext(ctx)
	fmt.Fprintf(os.Stderr, `{"level":"INFO","msg":"invoked","n":%d}`+"\n", invocations)
	switch {
	case req.Fail != "":
		return response{}, codedError{req.Fail}
	case req.Panic:
		panic("asked to panic")
	case req.Exit:
		os.Exit(3)
	case req.SleepMS > 0:
		// Ignores the deadline on purpose: the runtime must enforce it.
		time.Sleep(time.Duration(req.SleepMS) * time.Millisecond)
	}
	deadline, _ := ctx.Deadline()
	return response{
		Echo:        req.Echo,
		PID:         os.Getpid(),
		RequestID:   lc.AwsRequestID,
		FunctionARN: lc.InvokedFunctionArn,
		Function:    lambdacontext.FunctionName,
		Memory:      lambdacontext.MemoryLimitInMB,
		DeadlineIn:  time.Until(deadline).Milliseconds(),
		Env:         os.Getenv(req.Env),
	}, nil
}

func main() { lambda.Start(handle) }
