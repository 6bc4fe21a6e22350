// Package mail renders the service's mails (French and English) and sends them with
// SES v2. A rendered Message holds secrets (an org key, a claim link) in its bodies, so
// it logs only its envelope.
package mail

import (
	"context"
	"log/slog"
	"strings"

	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	sestypes "github.com/aws/aws-sdk-go-v2/service/sesv2/types"

	"github.com/mspvault/orgkey/internal/apperr"
)

// Message is one mail to one recipient.
type Message struct {
	To      string
	Subject string
	Text    string
	HTML    string
}

// LogValue keeps the bodies out of logs.
func (m Message) LogValue() slog.Value {
	return slog.GroupValue(slog.String("subject", m.Subject))
}

// Language picks the mail language for a Cognito/BCP 47 locale: French for fr, fr-FR,
// fr_CA...; English otherwise.
func Language(locale string) string {
	l := strings.ToLower(strings.TrimSpace(locale))
	if l == "fr" || strings.HasPrefix(l, "fr-") || strings.HasPrefix(l, "fr_") {
		return "fr"
	}
	return "en"
}

// SES is the part of the SES v2 client the sender uses.
type SES interface {
	SendEmail(ctx context.Context, in *sesv2.SendEmailInput, optFns ...func(*sesv2.Options)) (*sesv2.SendEmailOutput, error)
}

var _ SES = (*sesv2.Client)(nil)

// Sender sends mail from one address (the no-reply sender).
type Sender struct {
	SES  SES
	From string
}

// Send sends m. A failure is unavailable: the caller may retry.
func (s *Sender) Send(ctx context.Context, m Message) (err error) {
	defer apperr.Wrap(&err, "mail.Send(%q)", m.Subject)
	utf8 := "UTF-8"
	_, err = s.SES.SendEmail(ctx, &sesv2.SendEmailInput{
		FromEmailAddress: &s.From,
		Destination:      &sestypes.Destination{ToAddresses: []string{m.To}},
		Content: &sestypes.EmailContent{Simple: &sestypes.Message{
			Subject: &sestypes.Content{Data: &m.Subject, Charset: &utf8},
			Body: &sestypes.Body{
				Text: &sestypes.Content{Data: &m.Text, Charset: &utf8},
				Html: &sestypes.Content{Data: &m.HTML, Charset: &utf8},
			},
		}},
	})
	if err != nil {
		return apperr.Wrapf(apperr.Unavailable, err, "mail service unavailable")
	}
	return nil
}
