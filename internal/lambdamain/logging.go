package lambdamain

// The JSON logger every function uses: one line per event, stable keys. Secrets never
// reach it: secret types redact themselves (LogValue).

import (
	"io"
	"log/slog"
	"os"
	"strings"
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
