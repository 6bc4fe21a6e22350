package emulators

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"time"
)

// Email is one message aws-ses-v2-local received.
type Email struct {
	MessageID string
	From      string
	ReplyTo   []string
	To        []string
	CC        []string
	BCC       []string
	Subject   string
	Text      string
	HTML      string
	Headers   map[string]string
	// At is when the emulator received it (second precision).
	At time.Time
}

// storeEmail is aws-ses-v2-local's JSON shape (dist/store.d.ts).
type storeEmail struct {
	MessageID   string   `json:"messageId"`
	From        string   `json:"from"`
	ReplyTo     []string `json:"replyTo"`
	Destination struct {
		To  []string `json:"to"`
		CC  []string `json:"cc"`
		BCC []string `json:"bcc"`
	} `json:"destination"`
	Subject string `json:"subject"`
	Body    struct {
		HTML string `json:"html"`
		Text string `json:"text"`
	} `json:"body"`
	Headers []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"headers"`
	At int64 `json:"at"`
}

// Emails returns every message the SES emulator received since it started or
// since ClearEmails, oldest first.
func (s *Stack) Emails(ctx context.Context) (_ []Email, err error) {
	defer wrap(&err, "emulators.Emails")
	body, err := s.sesCall(ctx, http.MethodGet, "/store")
	if err != nil {
		return nil, err
	}
	var store struct {
		Emails []storeEmail `json:"emails"`
	}
	if err := json.Unmarshal(body, &store); err != nil {
		return nil, fmt.Errorf("decode store: %w", err)
	}
	out := make([]Email, 0, len(store.Emails))
	for _, e := range store.Emails {
		m := Email{
			MessageID: e.MessageID,
			From:      e.From,
			ReplyTo:   e.ReplyTo,
			To:        e.Destination.To,
			CC:        e.Destination.CC,
			BCC:       e.Destination.BCC,
			Subject:   e.Subject,
			Text:      e.Body.Text,
			HTML:      e.Body.HTML,
			At:        time.Unix(e.At, 0),
		}
		if len(e.Headers) > 0 {
			m.Headers = make(map[string]string, len(e.Headers))
			for _, h := range e.Headers {
				m.Headers[h.Name] = h.Value
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// ClearEmails empties the SES emulator's store (mail and templates).
func (s *Stack) ClearEmails(ctx context.Context) (err error) {
	defer wrap(&err, "emulators.ClearEmails")
	_, err = s.sesCall(ctx, http.MethodPost, "/clear-store")
	return err
}

func (s *Stack) sesCall(ctx context.Context, method, path string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, s.SES+path, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s %s: status %d: %.200s", method, path, resp.StatusCode, body)
	}
	return body, nil
}
