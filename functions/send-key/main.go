// Command send-key serves the HTTP API routes of the send-key flow: an admin mails a
// user a one-time claim link (POST /org-key/send), the link stores the org key in the
// user's browser (GET /org-key/claim, public), and a user asks the admins for the key
// (POST /org-key/request).
package main

import (
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/sendkey"
	"github.com/mspvault/orgkey/internal/store"
)

func main() {
	lambdamain.Run(func(cfg sendkey.Config, awsCfg aws.Config, log *slog.Logger) any {
		st := store.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName)
		svc := sendkey.NewService(st,
			&keywrap.Unwrapper{KMS: kms.NewFromConfig(awsCfg), KeyID: cfg.KMSKeyID},
			&mail.Sender{SES: sesv2.NewFromConfig(awsCfg), From: cfg.MailFrom},
			cfg)
		svc.Log = log
		return (&sendkey.Handler{Service: svc, Directory: st, Log: log}).Handle
	})
}
