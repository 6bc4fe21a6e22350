package testenv

import (
	"bytes"
	"io"
	"sync"
	"testing"

	"github.com/mspvault/orgkey/internal/emulators"
)

// LogBuffer is a log destination that concurrent handlers may share; what is written
// to it is also written to each tee (e.g. a package-wide sink that a final test scans
// for leaked secrets).
type LogBuffer struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	tees []io.Writer
}

// NewLogBuffer returns a buffer that also writes to tees.
func NewLogBuffer(tees ...io.Writer) *LogBuffer { return &LogBuffer{tees: tees} }

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, t := range b.tees {
		t.Write(p)
	}
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// MailsTo returns the mails the SES emulator received for addr, failing the test if
// the emulator cannot be read.
func (e *Env) MailsTo(tb testing.TB, addr string) []emulators.Email {
	tb.Helper()
	got, err := e.EmailsTo(tb.Context(), addr)
	if err != nil {
		tb.Fatalf("testenv: reading the SES store: %v", err)
	}
	return got
}
