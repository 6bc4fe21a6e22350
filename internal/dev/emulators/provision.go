package emulators

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"

	"github.com/mspvault/orgkey/internal/dev/samtemplate"
)

// TableLogicalID is the table's logical id in template.yaml.
const TableLogicalID = "OrgKeyTable"

// Provision creates the table tableName from template.yaml's OrgKeyTable
// (keys, GSIs, TTL) and a symmetric KMS key with the alias
// "alias/<tableName>", and returns the key's id.
//
// cfg must reach this stack: the clients built from it resolve their
// endpoints from the process environment, so Provision refuses to run unless
// Setenv (or the same variables) put this stack's endpoints there. That also
// keeps it from ever creating resources in a real AWS account.
func (s *Stack) Provision(ctx context.Context, cfg aws.Config, tableName string) (keyID string, err error) {
	if err := s.CreateTable(ctx, cfg, tableName); err != nil {
		return "", err
	}
	return s.CreateKey(ctx, cfg, "alias/"+tableName)
}

// CreateTable creates tableName from template.yaml's OrgKeyTable, waits until
// it is active and enables its TTL attribute.
func (s *Stack) CreateTable(ctx context.Context, cfg aws.Config, tableName string) (err error) {
	defer wrap(&err, fmt.Sprintf("emulators.CreateTable(%q)", tableName))
	if err := s.checkEnv("AWS_ENDPOINT_URL_DYNAMODB", s.DynamoDB); err != nil {
		return err
	}
	tpl, err := samtemplate.Load(filepath.Join(s.Root, "template.yaml"))
	if err != nil {
		return err
	}
	in, err := tpl.TableInput(TableLogicalID, tableName)
	if err != nil {
		return err
	}
	ttl, err := tpl.TTLAttribute(TableLogicalID)
	if err != nil {
		return err
	}

	db := dynamodb.NewFromConfig(cfg)
	if _, err := db.CreateTable(ctx, in); err != nil {
		return fmt.Errorf("create table: %w", err)
	}
	if err := dynamodb.NewTableExistsWaiter(db).Wait(ctx,
		&dynamodb.DescribeTableInput{TableName: aws.String(tableName)}, 30*time.Second); err != nil {
		return fmt.Errorf("wait for table: %w", err)
	}
	if ttl != "" {
		if _, err := db.UpdateTimeToLive(ctx, &dynamodb.UpdateTimeToLiveInput{
			TableName: aws.String(tableName),
			TimeToLiveSpecification: &ddbtypes.TimeToLiveSpecification{
				AttributeName: aws.String(ttl),
				Enabled:       aws.Bool(true),
			},
		}); err != nil {
			return fmt.Errorf("enable TTL on %q: %w", ttl, err)
		}
	}
	return nil
}

// CreateKey creates a symmetric encryption key with the given alias
// ("alias/...") and returns its id.
func (s *Stack) CreateKey(ctx context.Context, cfg aws.Config, alias string) (keyID string, err error) {
	defer wrap(&err, fmt.Sprintf("emulators.CreateKey(%q)", alias))
	if err := s.checkEnv("AWS_ENDPOINT_URL_KMS", s.KMS); err != nil {
		return "", err
	}
	c := kms.NewFromConfig(cfg)
	out, err := c.CreateKey(ctx, &kms.CreateKeyInput{
		Description: aws.String("orgkey local key " + alias),
		KeySpec:     kmstypes.KeySpecSymmetricDefault,
		KeyUsage:    kmstypes.KeyUsageTypeEncryptDecrypt,
	})
	if err != nil {
		return "", fmt.Errorf("create key: %w", err)
	}
	keyID = aws.ToString(out.KeyMetadata.KeyId)
	if _, err := c.CreateAlias(ctx, &kms.CreateAliasInput{
		AliasName:   aws.String(alias),
		TargetKeyId: aws.String(keyID),
	}); err != nil {
		return "", fmt.Errorf("create alias: %w", err)
	}
	return keyID, nil
}

func (s *Stack) checkEnv(name, want string) error {
	if got := os.Getenv(name); got != want {
		return fmt.Errorf("%s is %q, not this stack's %q: call Stack.Setenv before loading the AWS config", name, got, want)
	}
	return nil
}
