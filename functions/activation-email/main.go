// Command activation-email is the Cognito PostConfirmation trigger (and its scheduled
// catch-up sweep): it creates the organization and mails its key to the creator.
package main

import (
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"

	"github.com/mspvault/orgkey/internal/activation"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/store"
)

func main() {
	lambdamain.Run(func(cfg activation.Config, awsCfg aws.Config, log *slog.Logger) any {
		kmsClient := kms.NewFromConfig(awsCfg)
		svc := activation.NewService(
			store.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName),
			&keywrap.Wrapper{KMS: kmsClient, KeyID: cfg.KMSKeyID},
			&keywrap.Unwrapper{KMS: kmsClient, KeyID: cfg.KMSKeyID},
			&mail.Sender{SES: sesv2.NewFromConfig(awsCfg), From: cfg.MailFrom},
			cfg.AppURL,
			time.Duration(cfg.CatchUpAfter)*time.Second,
		)
		return (&activation.Handler{Service: svc, Log: log}).Handle
	})
}
