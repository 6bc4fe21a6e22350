package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/dev/emulators"
	"github.com/mspvault/orgkey/internal/orgkey"
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

// Scan returns every item of a table, failing the test if it cannot be read.
func (e *Env) Scan(tb testing.TB, table string) []map[string]ddbtypes.AttributeValue {
	tb.Helper()
	var out []map[string]ddbtypes.AttributeValue
	p := dynamodb.NewScanPaginator(dynamodb.NewFromConfig(e.AWSConfig), &dynamodb.ScanInput{TableName: &table})
	for p.HasMorePages() {
		page, err := p.NextPage(tb.Context())
		if err != nil {
			tb.Fatalf("testenv: scanning %q: %v", table, err)
		}
		out = append(out, page.Items...)
	}
	return out
}

// AssertKeyNotLogged fails the test when key appears in logs, in its printed form or
// without its dashes, or when logs is empty (nothing was captured to check).
func AssertKeyNotLogged(tb testing.TB, logs string, key orgkey.Key) {
	tb.Helper()
	if err := keyLogged(logs, key); err != nil {
		tb.Fatal(err)
	}
}

func keyLogged(logs string, key orgkey.Key) error {
	if logs == "" {
		return errors.New("no log lines captured")
	}
	if strings.Contains(logs, key.Reveal()) || strings.Contains(logs, strings.ReplaceAll(key.Reveal(), "-", "")) {
		return errors.New("an org key appears in a log line")
	}
	return nil
}

// MailedKeysNotLogged is a Check: no org key that a mail of the run carries appears
// in logs (a package-wide sink). In a full run it fails when no mail carried a key,
// since it would then have checked nothing.
func MailedKeysNotLogged(logs *LogBuffer) Check {
	return func(e *Env) error {
		all, err := e.Emails(context.Background())
		if err != nil {
			return fmt.Errorf("leak scan: %w", err)
		}
		text := logs.String()
		checked := 0
		for _, m := range all {
			if !strings.Contains(m.Text, orgkey.Prefix+"-") {
				continue
			}
			k, ok := orgkey.Find(m.Text)
			if !ok {
				return fmt.Errorf("leak scan: no well-formed org key in mail %q", m.Subject)
			}
			if err := keyLogged(text, k); err != nil {
				return fmt.Errorf("leak scan: %w", err)
			}
			checked++
		}
		if checked == 0 && FullRun() {
			return errors.New("leak scan: no mail with a key was seen; the check checked nothing")
		}
		return nil
	}
}
