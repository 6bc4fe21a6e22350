// Command send-key serves the HTTP API routes of the send-key flow: an admin mails a
// user a one-time claim link (POST /org-key/send), the link stores the org key in the
// user's browser (GET /org-key/claim, public), and a user asks the admins for the key
// (POST /org-key/request).
package main

import (
	"context"
	"os"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
	"github.com/caarlos0/env/v11"

	"github.com/mspvault/orgkey/internal/awsconfig"
	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/logging"
	"github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/sendkey"
	"github.com/mspvault/orgkey/internal/store"
)

func main() {
	log := logging.New(os.Stdout)
	cfg, err := env.ParseAs[sendkey.Config]()
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	awsCfg, err := awsconfig.Load(context.Background())
	if err != nil {
		log.Error("configuration", "error", err.Error())
		os.Exit(1)
	}
	st := store.New(dynamodb.NewFromConfig(awsCfg), cfg.TableName)
	svc := sendkey.NewService(st,
		&keywrap.Unwrapper{KMS: kms.NewFromConfig(awsCfg), KeyID: cfg.KMSKeyID},
		&mail.Sender{SES: sesv2.NewFromConfig(awsCfg), From: cfg.MailFrom},
		cfg)
	svc.Log = log
	lambda.Start((&sendkey.Handler{Service: svc, Directory: st, Log: log}).Handle)
}
