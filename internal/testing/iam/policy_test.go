package iam

import (
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/sesv2"
)

func TestWildcard(t *testing.T) {
	for _, c := range []struct {
		p, s string
		want bool
	}{
		{"dynamodb:*", "dynamodb:Query", true},
		{"arn:aws:dynamodb:r:a:table/t", "arn:aws:dynamodb:r:a:table/t/index/gsi1", false},
		{"arn:aws:dynamodb:r:a:table/t*", "arn:aws:dynamodb:r:a:table/t/index/gsi1", true}, // * crosses slashes
		{"arn:aws:iam::1:role/s-Fn-*", "arn:aws:iam::1:role/s-Fn-ABC", true},
		{"arn:aws:iam::1:role/s-Fn-*", "arn:aws:iam::1:role/other-s-Fn-ABC", false},
		{"kms:ReEncrypt*", "kms:ReEncryptFrom", true},
		{"a?c", "abc", true},
		{"a?c", "ac", false},
	} {
		if got := wildcard(c.p, c.s, false); got != c.want {
			t.Errorf("wildcard(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

func TestDecide(t *testing.T) {
	ctx := map[string][]string{"kms:EncryptionContext:purpose": {"org-key"}, "kms:EncryptionContextKeys": {"purpose", "tenantId"}}
	allow := Statement{Effect: "Allow", Action: []string{"kms:Decrypt"}, Resource: []string{"arn:k"},
		Condition: map[string]map[string][]string{
			"StringEquals":              {"kms:EncryptionContext:purpose": {"org-key"}},
			"ForAllValues:StringEquals": {"kms:EncryptionContextKeys": {"purpose", "tenantId", "keyVersion"}},
		}}
	if d, _ := Decide([]Statement{allow}, "p", "kms:Decrypt", "arn:k", ctx); d != Allowed {
		t.Errorf("org-key context: %v", d)
	}
	if d, _ := Decide([]Statement{allow}, "p", "KMS:decrypt", "arn:k", ctx); d != Allowed {
		t.Errorf("actions are case-insensitive: %v", d)
	}
	if d, _ := Decide([]Statement{allow}, "p", "kms:Decrypt", "arn:k", nil); d != ImplicitDeny {
		t.Errorf("no context: %v, want implicitly denied (StringEquals on a missing key fails)", d)
	}
	extra := map[string][]string{"kms:EncryptionContext:purpose": {"org-key"}, "kms:EncryptionContextKeys": {"purpose", "other"}}
	if d, _ := Decide([]Statement{allow}, "p", "kms:Decrypt", "arn:k", extra); d != ImplicitDeny {
		t.Errorf("an extra context key: %v", d)
	}
	deny := Statement{Effect: "Deny", Principal: []string{"*"}, Action: []string{"kms:*"}, Resource: []string{"*"},
		Condition: map[string]map[string][]string{"ArnNotLike": {"aws:PrincipalArn": {"arn:good-*"}}}}
	ctx["aws:PrincipalArn"] = []string{"arn:bad"}
	if d, _ := Decide([]Statement{allow, deny}, "arn:bad", "kms:Decrypt", "arn:k", ctx); d != ExplicitDeny {
		t.Errorf("explicit deny must win: %v", d)
	}
	ctx["aws:PrincipalArn"] = []string{"arn:good-1"}
	if d, _ := Decide([]Statement{allow, deny}, "arn:good-1", "kms:Decrypt", "arn:k", ctx); d != Allowed {
		t.Errorf("excepted principal: %v", d)
	}
	notAction := Statement{Effect: "Allow", NotAction: []string{"kms:Decrypt", "kms:ReEncrypt*"}, Resource: []string{"*"}}
	for a, want := range map[string]Decision{"kms:Encrypt": Allowed, "kms:Decrypt": ImplicitDeny, "kms:ReEncryptTo": ImplicitDeny} {
		if d, _ := Decide([]Statement{notAction}, "p", a, "arn:k", nil); d != want {
			t.Errorf("NotAction, %s: %v, want %v", a, d, want)
		}
	}
}

func TestRequests(t *testing.T) {
	tx := &dynamodb.TransactWriteItemsInput{TransactItems: []ddbtypes.TransactWriteItem{
		{Update: &ddbtypes.Update{TableName: aws.String("t")}},
		{ConditionCheck: &ddbtypes.ConditionCheck{TableName: aws.String("t")}},
		{Put: &ddbtypes.Put{TableName: aws.String("t")}},
		{Delete: &ddbtypes.Delete{TableName: aws.String("t")}},
	}}
	var actions []string
	for _, q := range Requests("f", "DynamoDB", "TransactWriteItems", tx) {
		actions = append(actions, q.Action)
	}
	if want := "dynamodb:UpdateItem dynamodb:ConditionCheckItem dynamodb:PutItem dynamodb:DeleteItem"; join(actions) != want {
		t.Errorf("transaction: %s, want %s", join(actions), want)
	}
	q := Requests("f", "DynamoDB", "Query", &dynamodb.QueryInput{TableName: aws.String("t"), IndexName: aws.String("gsi1")})[0]
	if q.Index != "gsi1" || q.Action != "dynamodb:Query" {
		t.Errorf("index query: %+v", q)
	}
	m := &Model{TableARN: "arn:aws:dynamodb:r:a:table/T", KeyARN: "arn:k"}
	if got := m.ARN(q); got != "arn:aws:dynamodb:r:a:table/T/index/gsi1" {
		t.Errorf("index ARN %s", got)
	}
	k := Requests("f", "KMS", "Decrypt", &kms.DecryptInput{KeyId: aws.String("id"), EncryptionContext: map[string]string{"purpose": "org-key", "tenantId": "x"}})[0]
	if k.Context["kms:EncryptionContext:purpose"][0] != "org-key" || join(k.Context["kms:EncryptionContextKeys"]) != "purpose tenantId" {
		t.Errorf("KMS context: %v", k.Context)
	}
	s := Requests("f", "SESv2", "SendEmail", &sesv2.SendEmailInput{FromEmailAddress: aws.String("Orgkey <no-reply@mail.acme.fr>"), ConfigurationSetName: aws.String("cs")})
	if len(s) != 2 || s[0].Name != "mail.acme.fr" || s[0].Context["ses:FromAddress"][0] != "no-reply@mail.acme.fr" || s[1].Kind != KindConfigSet {
		t.Errorf("SES: %+v", s)
	}
	if u := Requests("f", "Cognito Identity Provider", "AdminGetUser", &struct{ UserPoolId *string }{aws.String("pool")})[0]; u.Action != "cognito-idp:AdminGetUser" || u.Kind != KindUserPool {
		t.Errorf("Cognito: %+v", u)
	}
}

func join(s []string) string {
	out := ""
	for i, x := range s {
		if i > 0 {
			out += " "
		}
		out += x
	}
	return out
}

func TestPackageOf(t *testing.T) {
	for in, want := range map[string]string{
		"github.com/mspvault/orgkey/internal/reset.(*Service).Run.func1": "github.com/mspvault/orgkey/internal/reset",
		"github.com/mspvault/orgkey/internal/store.(*Store).Query":       "github.com/mspvault/orgkey/internal/store",
		"main.main": "main",
	} {
		if got := packageOf(in); got != want {
			t.Errorf("packageOf(%q) = %q, want %q", in, got, want)
		}
	}
}
