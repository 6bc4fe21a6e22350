// Command reveal-key serves POST /org-key/reveal: an org admin or site admin who
// signed in recently sees the organization key.
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

	"github.com/mspvault/orgkey/internal/awsconfig"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/logging"
	"github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/revealkey"
	"github.com/mspvault/orgkey/internal/store"
)

func main() {
	log := logging.New(os.Stdout)
	cfg, err := env.ParseAs[revealkey.Config]()
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	awsCfg, err := awsconfig.Load(context.Background())
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	svc := &revealkey.Service{
		Store:       store.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName),
		Unwrapper:   &keywrap.Unwrapper{KMS: kms.NewFromConfig(awsCfg), KeyID: cfg.KMSKeyID},
		Mailer:      &mail.Sender{SES: sesv2.NewFromConfig(awsCfg), From: cfg.MailFrom},
		AppURL:      cfg.AppURL,
		StepUp:      time.Duration(cfg.StepUpSeconds) * time.Second,
		RatePerHour: cfg.RatePerHour,
		Now:         time.Now,
	}
	lambda.Start((&revealkey.Handler{Service: svc, Log: log}).Handle)
}
