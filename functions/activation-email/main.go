// Command activation-email is the Cognito PostConfirmation trigger (and its scheduled
// catch-up sweep): it creates the organization and mails its key to the creator.
package main

import (
	"context"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/caarlos0/env/v11"

	"github.com/mspvault/orgkey/internal/activation"
	"github.com/mspvault/orgkey/internal/awsconfig"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/logging"
	"github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/store"
)

func main() {
	log := logging.New(os.Stdout)
	cfg, err := env.ParseAs[activation.Config]()
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	awsCfg, err := awsconfig.Load(context.Background())
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	kmsClient := kms.NewFromConfig(awsCfg)
	svc := activation.NewService(
		store.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName),
		&keywrap.Wrapper{KMS: kmsClient, KeyID: cfg.KMSKeyID},
		&keywrap.Unwrapper{KMS: kmsClient, KeyID: cfg.KMSKeyID},
		&mail.Sender{SES: sesv2.NewFromConfig(awsCfg), From: cfg.MailFrom},
		cfg.AppURL,
		time.Duration(cfg.CatchUpAfter)*time.Second,
	)
	lambda.Start((&activation.Handler{Service: svc, Log: log}).Handle)
}
