package samtemplate

// Unit tests of the reader on small inline templates.

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

const inline = `
Transform: AWS::Serverless-2016-10-31
Parameters:
  Mail:
    Type: String
    Default: no-reply@example.com
  Level:
    Type: String
    AllowedValues: [INFO, DEBUG]
Globals:
  Function:
    Runtime: provided.al2023
    Handler: bootstrap
    Architectures: [arm64]
    Timeout: 10
    Environment:
      Variables:
        TABLE_NAME: !Ref Table
  HttpApi:
    Auth:
      DefaultAuthorizer: Jwt
      Authorizers:
        Jwt:
          IdentitySource: $request.header.Authorization
          JwtConfiguration:
            issuer: !Sub https://issuer/${Pool}
            audience: [!Ref Client]
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  SendKeyFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: makefile
    Properties:
      CodeUri: .
      Timeout: 5
      Environment:
        Variables:
          KEY: !GetAtt Key.Arn
          FROM: !Ref Mail
          N: "120"
          SUBBED: !Sub "${Table.Arn}/index/gsi1"
      Events:
        Send:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: post
            Path: /users/{userId}/send-key
        Claim:
          Type: HttpApi
          Properties:
            ApiId: !Ref Api
            Method: GET
            Path: /claim/{token}
            Auth:
              Authorizer: NONE
        Tick:
          Type: Schedule
          Properties:
            Schedule: rate(5 minutes)
      Policies:
        - Version: "2012-10-17"
          Statement:
            - Effect: Allow
              Action: [kms:Encrypt]
              Resource: !GetAtt Key.Arn
              Condition:
                StringEquals:
                  kms:EncryptionContext:purpose: org-key
            - Effect: Allow
              Action: dynamodb:*
              Resource:
                - !Sub "${Table.Arn}/index/*"
        - DynamoDBReadPolicy:
            TableName: !Ref Table
        - AWSLambdaExecute
  SESBounceHandlerFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: .
      Architectures: [x86_64]
      Policies:
        Statement:
          Effect: Allow
          NotAction: kms:Decrypt
          Resource: "*"
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      BillingMode: PAY_PER_REQUEST
      TimeToLiveSpecification: {AttributeName: expires, Enabled: true}
      AttributeDefinitions:
        - {AttributeName: sk, AttributeType: S}
        - {AttributeName: pk, AttributeType: S}
      KeySchema:
        - {AttributeName: pk, KeyType: HASH}
        - {AttributeName: sk, KeyType: RANGE}
`

func parseInline(t *testing.T, src string) *Template {
	t.Helper()
	tpl, err := Parse([]byte(src))
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func inlineFunction(t *testing.T, id string) Function {
	t.Helper()
	fns, err := parseInline(t, inline).Functions()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fns {
		if f.LogicalID == id {
			return f
		}
	}
	t.Fatalf("no function %s", id)
	return Function{}
}

func TestSourceDir(t *testing.T) {
	for _, tc := range []struct{ id, want string }{
		{"ActivationEmailFunction", "functions/activation-email"},
		{"SendKeyFunction", "functions/send-key"},
		{"RevealKeyFunction", "functions/reveal-key"},
		{"SupportResetFunction", "functions/support-reset"},
		{"SESBounceHandlerFunction", "functions/ses-bounce-handler"},
		{"Step2Function", "functions/step2"},
	} {
		if got := (Function{LogicalID: tc.id}).SourceDir(); got != tc.want {
			t.Errorf("SourceDir(%s) = %q, want %q", tc.id, got, tc.want)
		}
	}
	// The same mapping, through a parsed template.
	fns, err := parseInline(t, inline).Functions()
	if err != nil {
		t.Fatal(err)
	}
	var dirs []string
	for _, f := range fns {
		dirs = append(dirs, f.SourceDir())
	}
	if want := []string{"functions/ses-bounce-handler", "functions/send-key"}; !slices.Equal(dirs, want) {
		t.Errorf("SourceDirs = %v, want %v", dirs, want)
	}
}

func TestFunctionGlobals(t *testing.T) {
	f := inlineFunction(t, "SendKeyFunction")
	if f.Runtime != "provided.al2023" || f.Handler != "bootstrap" || f.CodeURI != "." || f.BuildMethod != "makefile" {
		t.Errorf("runtime/handler/codeuri/build = %q/%q/%q/%q", f.Runtime, f.Handler, f.CodeURI, f.BuildMethod)
	}
	if f.Timeout != 5 {
		t.Errorf("Timeout = %d, want the function's 5 over the global 10", f.Timeout)
	}
	if !slices.Equal(f.Architectures, []string{"arm64"}) {
		t.Errorf("Architectures = %v", f.Architectures)
	}
	// SAM concatenates lists from Globals and the resource.
	if g := inlineFunction(t, "SESBounceHandlerFunction"); !slices.Equal(g.Architectures, []string{"arm64", "x86_64"}) {
		t.Errorf("merged Architectures = %v", g.Architectures)
	}
}

func TestFunctionEnv(t *testing.T) {
	f := inlineFunction(t, "SendKeyFunction")
	want := map[string]string{
		"TABLE_NAME": "!Ref Table", // from Globals
		"KEY":        "!GetAtt Key.Arn",
		"FROM":       "!Ref Mail",
		"N":          "120",
		"SUBBED":     "!Sub ${Table.Arn}/index/gsi1",
	}
	got := map[string]string{}
	for k, v := range f.Env {
		got[k] = v.String()
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Env = %v, want %v", got, want)
	}
	if res, attr, ok := f.Env["KEY"].GetAtt(); !ok || res != "Key" || attr != "Arn" {
		t.Errorf("GetAtt() = %q, %q, %v", res, attr, ok)
	}
	if ref, ok := f.Env["FROM"].Ref(); !ok || ref != "Mail" {
		t.Errorf("Ref() = %q, %v", ref, ok)
	}
	if !f.Env["N"].IsLiteral() || f.Env["TABLE_NAME"].IsLiteral() {
		t.Error("IsLiteral wrong")
	}
}

func TestFunctionEvents(t *testing.T) {
	f := inlineFunction(t, "SendKeyFunction")
	var got []string
	for _, e := range f.Events {
		s := e.Name + " " + e.Type
		if e.Schedule != "" {
			s += " " + e.Schedule
		}
		if r := e.Route; r != nil {
			s += " " + r.API + " " + r.Method + " " + r.Path
			if r.Open() {
				s += " open"
			} else {
				s += " " + r.Auth.Type + ":" + r.Auth.Name + " " + r.Auth.IdentitySource + " " + r.Auth.Issuer.String()
				for _, a := range r.Auth.Audience {
					s += " " + a.String()
				}
			}
		}
		got = append(got, s)
	}
	want := []string{
		"Claim HttpApi Api GET /claim/{token} open",
		"Send HttpApi Api POST /users/{userId}/send-key JWT:Jwt $request.header.Authorization !Sub https://issuer/${Pool} !Ref Client",
		"Tick Schedule rate(5 minutes)",
	}
	if !slices.Equal(got, want) {
		t.Errorf("events:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestFunctionPolicies(t *testing.T) {
	f := inlineFunction(t, "SendKeyFunction")
	if !slices.Equal(f.PolicyTemplates, []string{"DynamoDBReadPolicy"}) || !slices.Equal(f.ManagedPolicies, []string{"AWSLambdaExecute"}) {
		t.Errorf("templates %v, managed %v", f.PolicyTemplates, f.ManagedPolicies)
	}
	want := []Statement{
		{
			Effect: "Allow", Actions: []string{"kms:Encrypt"}, Resources: []string{"!GetAtt Key.Arn"},
			Condition: map[string]map[string][]string{"StringEquals": {"kms:EncryptionContext:purpose": {"org-key"}}},
		},
		{Effect: "Allow", Actions: []string{"dynamodb:*"}, Resources: []string{"!Sub ${Table.Arn}/index/*"}},
	}
	if !reflect.DeepEqual(f.Statements, want) {
		t.Errorf("statements =\n%+v\nwant\n%+v", f.Statements, want)
	}
	for _, tc := range []struct {
		stmt   int
		action string
		want   bool
	}{
		{0, "kms:Encrypt", true},
		{0, "KMS:encrypt", true},
		{0, "kms:Decrypt", false},
		{1, "dynamodb:Query", true},
		{1, "kms:Encrypt", false},
	} {
		if got := f.Statements[tc.stmt].Allows(tc.action); got != tc.want {
			t.Errorf("statement %d Allows(%s) = %v", tc.stmt, tc.action, got)
		}
	}

	// A single policy document (not a list) with NotAction.
	g := inlineFunction(t, "SESBounceHandlerFunction")
	if len(g.Statements) != 1 {
		t.Fatalf("statements = %+v", g.Statements)
	}
	s := g.Statements[0]
	if !slices.Equal(s.NotActions, []string{"kms:Decrypt"}) || !slices.Equal(s.Resources, []string{"*"}) {
		t.Errorf("statement = %+v", s)
	}
	if s.Allows("kms:Decrypt") || !s.Allows("kms:Encrypt") {
		t.Error("NotAction not honoured")
	}
}

func TestParameters(t *testing.T) {
	tpl := parseInline(t, inline)
	if p := tpl.Parameters["Mail"]; !p.HasDefault || p.Default != "no-reply@example.com" {
		t.Errorf("Mail = %+v", p)
	}
	if p := tpl.Parameters["Level"]; p.HasDefault || !slices.Equal(p.AllowedValues, []string{"INFO", "DEBUG"}) {
		t.Errorf("Level = %+v", p)
	}
}

func TestTableInputInline(t *testing.T) {
	tpl := parseInline(t, inline)
	in, err := tpl.TableInput("Table", "t")
	if err != nil {
		t.Fatal(err)
	}
	if *in.AttributeDefinitions[0].AttributeName != "pk" || len(in.GlobalSecondaryIndexes) != 0 {
		t.Errorf("TableInput = %s", jsonString(in))
	}
	if ttl, err := tpl.TTLAttribute("Table"); err != nil || ttl != "expires" {
		t.Errorf("TTLAttribute = %q, %v", ttl, err)
	}
	for _, id := range []string{"Missing", "SendKeyFunction"} {
		if _, err := tpl.TableInput(id, "t"); err == nil {
			t.Errorf("TableInput(%s) did not fail", id)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for name, src := range map[string]string{
		"empty":        "",
		"not a map":    "- a\n- b\n",
		"no resources": "Parameters: {}\n",
		"no type":      "Resources:\n  A:\n    Properties: {}\n",
		"unknown tag":  "Resources:\n  A:\n    Type: X\n    Properties:\n      B: !Bogus c\n",
		"bad getatt":   "Resources:\n  A:\n    Type: X\n    Properties:\n      B: !GetAtt c\n",
	} {
		if _, err := Parse([]byte(src)); err == nil {
			t.Errorf("%s: Parse did not fail", name)
		}
	}
	// A Ref where a literal is required is reported, not guessed.
	_, err := parseInline(t, "Resources:\n  F:\n    Type: AWS::Serverless::Function\n    Properties:\n      Timeout: !Ref T\n").Functions()
	if err == nil || !strings.Contains(err.Error(), "Timeout") {
		t.Errorf("Functions() error = %v, want one naming Timeout", err)
	}
}

func TestShortAndLongForms(t *testing.T) {
	tpl := parseInline(t, `
Resources:
  A:
    Type: X
    Properties:
      Short: !GetAtt DB.Endpoint.Address
      List: !GetAtt [DB, Arn]
      Long: {"Fn::GetAtt": "DB.Arn"}
      If: !If [Cond, !Ref A, !Ref AWS::NoValue]
      Join: !Join ["", [a, !Ref B]]
`)
	p := tpl.Resources["A"].Properties
	for key, want := range map[string]string{
		"Short": "!GetAtt DB.Endpoint.Address",
		"List":  "!GetAtt DB.Arn",
		"Long":  "!GetAtt DB.Arn",
		"If":    `!If ["Cond",{"Ref":"A"},{"Ref":"AWS::NoValue"}]`,
		"Join":  `!Join ["",["a",{"Ref":"B"}]]`,
	} {
		if got := valueOf(p[key]).String(); got != want {
			t.Errorf("%s = %s, want %s", key, got, want)
		}
	}
}
