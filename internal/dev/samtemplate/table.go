package samtemplate

import (
	"encoding/json"
	"fmt"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// tableProps is the part of AWS::DynamoDB::Table properties that shapes the
// data. Decoding fails when one of these holds an intrinsic function, which
// is what we want: a key schema must be literal to be reproduced locally.
type tableProps struct {
	BillingMode          string
	AttributeDefinitions []struct {
		AttributeName string
		AttributeType string
	}
	KeySchema              []keyElement
	GlobalSecondaryIndexes []struct {
		IndexName  string
		KeySchema  []keyElement
		Projection struct {
			ProjectionType   string
			NonKeyAttributes []string
		}
	}
	LocalSecondaryIndexes   []any
	TimeToLiveSpecification *struct {
		AttributeName string
		Enabled       bool
	}
}

type keyElement struct {
	AttributeName string
	KeyType       string
}

func (t *Template) table(logicalID string) (tableProps, error) {
	var p tableProps
	r, err := t.resource(logicalID, "AWS::DynamoDB::Table")
	if err != nil {
		return p, err
	}
	b, err := json.Marshal(r.Properties)
	if err != nil {
		return p, err
	}
	if err := json.Unmarshal(b, &p); err != nil {
		return p, fmt.Errorf("table %s: %w", logicalID, err)
	}
	return p, nil
}

// TableInput returns the CreateTable input for the table with this logical
// id, named tableName, with exactly the key schema, attribute definitions,
// GSIs (key schema + projection) and PAY_PER_REQUEST billing of the
// template. The caller uses it to create the local DynamoDB Local table.
// Attribute definitions and indexes are sorted by name.
func (t *Template) TableInput(logicalID, tableName string) (_ *dynamodb.CreateTableInput, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("samtemplate.TableInput(%q): %w", logicalID, err)
		}
	}()
	p, err := t.table(logicalID)
	if err != nil {
		return nil, err
	}
	if p.BillingMode != string(ddbtypes.BillingModePayPerRequest) {
		return nil, fmt.Errorf("billing mode %q: only PAY_PER_REQUEST is supported", p.BillingMode)
	}
	if len(p.LocalSecondaryIndexes) > 0 {
		return nil, fmt.Errorf("local secondary indexes are not supported")
	}
	if len(p.KeySchema) == 0 {
		return nil, fmt.Errorf("no KeySchema")
	}

	in := &dynamodb.CreateTableInput{
		TableName:   aws.String(tableName),
		BillingMode: ddbtypes.BillingModePayPerRequest,
		KeySchema:   keySchema(p.KeySchema),
	}
	for _, a := range p.AttributeDefinitions {
		in.AttributeDefinitions = append(in.AttributeDefinitions, ddbtypes.AttributeDefinition{
			AttributeName: aws.String(a.AttributeName),
			AttributeType: ddbtypes.ScalarAttributeType(a.AttributeType),
		})
	}
	sort.Slice(in.AttributeDefinitions, func(i, j int) bool {
		return *in.AttributeDefinitions[i].AttributeName < *in.AttributeDefinitions[j].AttributeName
	})
	for _, g := range p.GlobalSecondaryIndexes {
		gsi := ddbtypes.GlobalSecondaryIndex{
			IndexName: aws.String(g.IndexName),
			KeySchema: keySchema(g.KeySchema),
			Projection: &ddbtypes.Projection{
				ProjectionType:   ddbtypes.ProjectionType(g.Projection.ProjectionType),
				NonKeyAttributes: g.Projection.NonKeyAttributes,
			},
		}
		in.GlobalSecondaryIndexes = append(in.GlobalSecondaryIndexes, gsi)
	}
	sort.Slice(in.GlobalSecondaryIndexes, func(i, j int) bool {
		return *in.GlobalSecondaryIndexes[i].IndexName < *in.GlobalSecondaryIndexes[j].IndexName
	})
	return in, nil
}

func keySchema(ks []keyElement) []ddbtypes.KeySchemaElement {
	out := make([]ddbtypes.KeySchemaElement, 0, len(ks))
	for _, k := range ks {
		out = append(out, ddbtypes.KeySchemaElement{
			AttributeName: aws.String(k.AttributeName),
			KeyType:       ddbtypes.KeyType(k.KeyType),
		})
	}
	return out
}

// TTLAttribute returns the table's TTL attribute name ("ttl"). It fails when
// the table has no enabled TimeToLiveSpecification.
func (t *Template) TTLAttribute(logicalID string) (string, error) {
	p, err := t.table(logicalID)
	if err != nil {
		return "", fmt.Errorf("samtemplate.TTLAttribute(%q): %w", logicalID, err)
	}
	ttl := p.TimeToLiveSpecification
	if ttl == nil || !ttl.Enabled || ttl.AttributeName == "" {
		return "", fmt.Errorf("samtemplate.TTLAttribute(%q): TTL not enabled", logicalID)
	}
	return ttl.AttributeName, nil
}
