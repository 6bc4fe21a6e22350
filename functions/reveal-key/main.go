// Command reveal-key serves POST /org-key/reveal: an org admin or site admin who
// signed in recently sees the organization key.
package main

import (
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/revealkey"
	"github.com/mspvault/orgkey/internal/store"
)

func main() {
	lambdamain.Run(func(cfg revealkey.Config, awsCfg aws.Config, log *slog.Logger) any {
		svc := &revealkey.Service{
			Store:       store.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName),
			Unwrapper:   &keywrap.Unwrapper{KMS: kms.NewFromConfig(awsCfg), KeyID: cfg.KMSKeyID},
			Mailer:      &mail.Sender{SES: sesv2.NewFromConfig(awsCfg), From: cfg.MailFrom},
			AppURL:      cfg.AppURL,
			StepUp:      time.Duration(cfg.StepUpSeconds) * time.Second,
			RatePerHour: cfg.RatePerHour,
			Now:         time.Now,
		}
		return (&revealkey.Handler{Service: svc, Log: log}).Handle
	})
}
