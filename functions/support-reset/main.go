// Command support-reset replaces an organization's key after support verified the
// caller: it deletes the organization's passwords, users, sites and claim links, keeps
// the verified admin, and mails them the new key. Support invokes it from the console.
// Its role can wrap keys (kms:Encrypt) but never unwrap them.
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
	"github.com/mspvault/orgkey/internal/reset"
	"github.com/mspvault/orgkey/internal/store"
)

func main() {
	lambdamain.Run(func(cfg reset.Config, awsCfg aws.Config, log *slog.Logger) any {
		svc := reset.NewService(
			store.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName),
			&keywrap.Wrapper{KMS: kms.NewFromConfig(awsCfg), KeyID: cfg.KMSKeyID},
			&mail.Sender{SES: sesv2.NewFromConfig(awsCfg), From: cfg.MailFrom},
			cfg.AppURL,
			time.Duration(cfg.SafetyMarginSeconds)*time.Second,
			cfg.DeleteWorkers,
		)
		return (&reset.Handler{Service: svc, Log: log}).Handle
	})
}
