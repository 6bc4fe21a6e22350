package lambdamain

// The JSON logger every function uses, and the one line of a non-HTTP invocation: one
// line per event, stable keys. Secrets never reach it: secret types redact themselves
// (LogValue).

import (
	"context"
	"io"
	"log/slog"
	"os"
	"strings"

	"github.com/aws/aws-lambda-go/lambdacontext"
)

// NewLogger returns a JSON logger writing to w at the level named by AWS_LAMBDA_LOG_LEVEL
// (set by Lambda's advanced logging controls) or LOG_LEVEL; INFO by default.
func NewLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level()}))
}

func level() slog.Level {
	name := os.Getenv("AWS_LAMBDA_LOG_LEVEL")
	if name == "" {
		name = os.Getenv("LOG_LEVEL")
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(name))); err != nil {
		return slog.LevelInfo
	}
	return l
}

// LogEvent writes the one line an invocation of a non-HTTP handler gets (a Cognito
// trigger, a scheduled sweep, a console event): flow, outcome and request_id (Lambda's
// request id) first, then attrs. httpapi.LogRequest is its counterpart for the API's
// requests. Like it, it is given ids and counts, never a body or a secret.
func LogEvent(ctx context.Context, log *slog.Logger, level slog.Level, flow, msg, outcome string, attrs ...slog.Attr) {
	all := make([]slog.Attr, 0, 3+len(attrs))
	all = append(all, slog.String("flow", flow), slog.String("outcome", outcome), slog.String("request_id", RequestID(ctx)))
	log.LogAttrs(ctx, level, msg, append(all, attrs...)...)
}

// RequestID is the invocation's Lambda request id; "" outside Lambda (a test, a local
// call without a runtime).
func RequestID(ctx context.Context) string {
	if lc, ok := lambdacontext.FromContext(ctx); ok {
		return lc.AwsRequestID
	}
	return ""
}
