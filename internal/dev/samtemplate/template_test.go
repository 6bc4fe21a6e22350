package samtemplate

// Invariants of the real template.yaml. Adding a function means adding its
// entry to functionChecks; adding an assertion is one line in a check list,
// e.g. for support-reset:
//
//	allows("kms:Encrypt"), lacks("kms:Decrypt"),

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// ARNs as the template writes them (Value.String form).
const (
	tableARN       = "!GetAtt OrgKeyTable.Arn"
	gsi1ARN        = "!Sub ${OrgKeyTable.Arn}/index/gsi1"
	wrappingKeyARN = "!GetAtt OrgKeyWrappingKey.Arn"
	sesIdentityARN = "!Sub arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SesIdentityName}"
	mailFromRef    = "!Ref MailFromAddress"
)

// everyFunction holds the invariants of every function.
var everyFunction = []check{
	codeURI("."),
	buildMethod("makefile"),
	runtime("provided.al2023"),
	architectures("arm64"),
	handler("bootstrap"),
	tracing("Active"),
	logFormat("JSON"),
	ownLogGroup(30),
	env("TABLE_NAME", "!Ref OrgKeyTable"),
	alarmOn("Errors"),
	alarmOn("Throttles"),
	// Every KMS permission is for org keys, under the encryption context.
	allowsOnlyWhen("kms:*", "StringEquals", "kms:EncryptionContext:purpose", "org-key"),
	allowsOnlyWhen("kms:*", "ForAllValues:StringEquals", "kms:EncryptionContextKeys", "tenantId", "keyVersion", "purpose"),
	allowsOnlyOn("kms:*", wrappingKeyARN),
	allowsOnlyWhen("ses:SendEmail", "StringEquals", "ses:FromAddress", mailFromRef),
	allowsOnlyOn("ses:SendEmail", sesIdentityARN),
	lacks("dynamodb:DeleteTable"),
	lacks("kms:ScheduleKeyDeletion"),
}

// functionChecks holds each function's own invariants, by logical id.
var functionChecks = map[string][]check{
	"ActivationEmailFunction": {
		timeoutAtMost(5), // Cognito gives a trigger 5 s
		event("CatchUp", "Schedule"),
		schedule("CatchUp", "rate(5 minutes)"),
		noRoutes(),
		env("KMS_KEY_ID", wrappingKeyARN),
		env("MAIL_FROM", mailFromRef),
		env("APP_URL", "!Ref AppBaseUrl"),
		env("CATCHUP_AFTER_SECONDS", "120"),
		allows("dynamodb:GetItem"), allows("dynamodb:PutItem"), allows("dynamodb:UpdateItem"),
		allowsOnlyOn("dynamodb:*", tableARN, gsi1ARN),
		allowsOnlyOn("dynamodb:Query", gsi1ARN),
		lacks("dynamodb:ConditionCheckItem"),
		lacks("dynamodb:DeleteItem"), lacks("dynamodb:Scan"), lacks("dynamodb:BatchWriteItem"),
		allows("kms:Encrypt"), allows("kms:Decrypt"),
		allows("ses:SendEmail"),
	},
	"RevealKeyFunction": {
		timeoutAtMost(10),
		route("POST", "/org-key/reveal", false),
		env("KMS_KEY_ID", wrappingKeyARN),
		env("MAIL_FROM", mailFromRef),
		env("APP_URL", "!Ref AppBaseUrl"),
		env("STEP_UP_MAX_AGE_SECONDS", "!Ref RevealStepUpSeconds"),
		env("REVEAL_RATE_LIMIT_PER_HOUR", "!Ref RevealRateLimitPerHour"),
		allows("dynamodb:BatchGetItem"), allows("dynamodb:Query"), allows("dynamodb:UpdateItem"), allows("dynamodb:PutItem"),
		allowsOnlyOn("dynamodb:*", tableARN, gsi1ARN),
		lacks("dynamodb:GetItem"),
		lacks("dynamodb:DeleteItem"), lacks("dynamodb:Scan"), lacks("dynamodb:BatchWriteItem"),
		allows("kms:Decrypt"), lacks("kms:Encrypt"),
		allows("ses:SendEmail"),
	},
	"SendKeyFunction": {
		timeoutAtMost(10),
		route("POST", "/org-key/send", false),
		route("GET", "/org-key/claim", true),
		route("HEAD", "/org-key/claim", true),
		route("POST", "/org-key/claim", false),
		route("POST", "/org-key/request", false),
		env("KMS_KEY_ID", wrappingKeyARN),
		env("MAIL_FROM", mailFromRef),
		env("APP_URL", "!Ref AppBaseUrl"),
		env("CLAIM_BASE_URL", "!Ref ClaimBaseUrl"),
		env("CLAIM_TTL_HOURS", "!Ref ClaimLinkTtlHours"),
		env("SEND_RATE_LIMIT_PER_HOUR", "!Ref SendKeyRateLimitPerHour"),
		env("REQUEST_RATE_LIMIT_PER_HOUR", "!Ref KeyRequestRateLimitPerHour"),
		env("USER_POOL_ID", "!Ref UserPool"),
		env("USER_POOL_CLIENT_ID", "!Ref UserPoolClient"),
		allows("dynamodb:ConditionCheckItem"), allows("dynamodb:GetItem"), allows("dynamodb:BatchGetItem"), allows("dynamodb:Query"), allows("dynamodb:UpdateItem"), allows("dynamodb:PutItem"),
		allowsOnlyOn("dynamodb:*", tableARN, gsi1ARN, "!Sub ${OrgKeyTable.Arn}/index/gsi2"),
		allowsOn("dynamodb:Query", gsi1ARN, "!Sub ${OrgKeyTable.Arn}/index/gsi2"),
		lacks("dynamodb:DeleteItem"), lacks("dynamodb:Scan"), lacks("dynamodb:BatchWriteItem"),
		allows("kms:Decrypt"), lacks("kms:Encrypt"),
		allows("ses:SendEmail"),
	},
	"SupportResetFunction": {
		timeoutAtMost(900),
		event("RunDue", "Schedule"),
		schedule("RunDue", "rate(1 minute)"),
		env("RESET_COOL_OFF_HOURS", "!Ref ResetCoolOffHours"),
		route("GET", "/org-key/claim/reset-confirm", true),
		route("HEAD", "/org-key/claim/reset-confirm", true),
		route("POST", "/org-key/claim/reset-confirm", false),
		route("POST", "/org-key/claim/reset-cancel", false),
		env("KMS_KEY_ID", wrappingKeyARN),
		env("MAIL_FROM", mailFromRef),
		env("APP_URL", "!Ref AppBaseUrl"),
		env("SAFETY_MARGIN_SECONDS", "30"),
		env("USER_POOL_CLIENT_ID", "!Ref UserPoolClient"),
		env("RESET_CONFIRM_TTL_HOURS", "!Ref ResetConfirmTtlHours"),
		env("CLAIM_BASE_URL", "!Ref ClaimBaseUrl"),
		allows("dynamodb:GetItem"), allows("dynamodb:Query"), allows("dynamodb:PutItem"),
		allows("dynamodb:UpdateItem"), allows("dynamodb:BatchWriteItem"),
		allowsOnlyOn("dynamodb:*", tableARN, gsi1ARN, "!Sub ${OrgKeyTable.Arn}/index/gsi2"),
		allowsOn("dynamodb:Query", gsi1ARN, "!Sub ${OrgKeyTable.Arn}/index/gsi2"),
		lacks("dynamodb:Scan"), lacks("dynamodb:DeleteTable"),
		// Support can replace a key, never read one.
		allows("kms:Encrypt"), lacks("kms:Decrypt"),
		allows("ses:SendEmail"),
		lacks("lambda:InvokeFunction"),
	},
}

// publicRoutes lists the HTTP routes that may be open ("METHOD path");
// every other route must carry the JWT authorizer.
var publicRoutes = map[string]bool{
	// send-key: the page a claim link opens; it changes nothing and holds no secret.
	// Spending the link (POST) needs the addressee's JWT.
	"GET /org-key/claim":  true,
	"HEAD /org-key/claim": true,
	// support-reset: the page a reset's confirmation link opens; likewise. The
	// confirmation (POST) needs the kept admin's JWT.
	"GET /org-key/claim/reset-confirm":  true,
	"HEAD /org-key/claim/reset-confirm": true,
}

// A check is one invariant of one function.
type check func(t *testing.T, tpl *Template, f Function)

func TestFunctionInvariants(t *testing.T) {
	tpl := repoTemplate(t)
	fns := repoFunctions(t)
	if len(fns) == 0 {
		t.Fatal("template.yaml has no AWS::Serverless::Function")
	}
	for _, f := range fns {
		t.Run(f.LogicalID, func(t *testing.T) {
			own, ok := functionChecks[f.LogicalID]
			if !ok {
				t.Errorf("no entry in functionChecks for %s: write down its invariants", f.LogicalID)
			}
			for _, c := range append(slices.Clone(everyFunction), own...) {
				c(t, tpl, f)
			}
		})
	}
	for id := range functionChecks {
		if !slices.ContainsFunc(fns, func(f Function) bool { return f.LogicalID == id }) {
			t.Errorf("functionChecks names %s, which template.yaml does not define", id)
		}
	}
}

// TestFunctionSources fails until each function's main package exists; the
// mapping itself is unit-tested in TestSourceDir.
func TestFunctionSources(t *testing.T) {
	root := repoRoot(t)
	for _, f := range repoFunctions(t) {
		main := filepath.Join(root, f.SourceDir(), "main.go")
		if _, err := os.Stat(main); err != nil {
			t.Errorf("%s: %s/main.go is missing (SAM runs make build-%s, which builds ./%s)",
				f.LogicalID, f.SourceDir(), f.LogicalID, f.SourceDir())
		}
	}
}

func TestLeastPrivilege(t *testing.T) {
	for _, f := range repoFunctions(t) {
		t.Run(f.LogicalID, func(t *testing.T) {
			if len(f.ManagedPolicies)+len(f.PolicyTemplates) > 0 {
				t.Errorf("managed policies %v / SAM policy templates %v: use inline statements on exact ARNs",
					f.ManagedPolicies, f.PolicyTemplates)
			}
			if len(f.Statements) == 0 {
				t.Errorf("no policy statements")
			}
			for _, s := range f.Statements {
				if s.Effect != "Allow" {
					t.Errorf("statement %q: effect %q", s.Sid, s.Effect)
				}
				if len(s.NotActions)+len(s.NotResources) > 0 {
					t.Errorf("statement %q uses NotAction/NotResource", s.Sid)
				}
				if len(s.Actions) == 0 || len(s.Resources) == 0 {
					t.Errorf("statement %q: no Action or no Resource", s.Sid)
				}
				for _, a := range s.Actions {
					if strings.ContainsAny(a, "*?") {
						t.Errorf("statement %q: wildcard action %q", s.Sid, a)
					}
				}
				for _, r := range s.Resources {
					if strings.ContainsAny(r, "*?") {
						t.Errorf("statement %q: wildcard resource %q", s.Sid, r)
					}
				}
			}
		})
	}
}

func TestTable(t *testing.T) {
	tpl := repoTemplate(t)
	table, err := tpl.resource("OrgKeyTable", "AWS::DynamoDB::Table")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want any
	}{
		{"BillingMode", "PAY_PER_REQUEST"},
		{"PointInTimeRecoverySpecification.PointInTimeRecoveryEnabled", true},
		{"SSESpecification.SSEEnabled", true},
		{"TimeToLiveSpecification.AttributeName", "ttl"},
		{"TimeToLiveSpecification.Enabled", true},
		{"DeletionProtectionEnabled", map[string]any{"Ref": "TableDeletionProtection"}},
	} {
		if got := lookup(table.Properties, strings.Split(tc.path, ".")...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("OrgKeyTable %s = %#v, want %#v", tc.path, got, tc.want)
		}
	}
	if table.DeletionPolicy != "Retain" || table.UpdateReplacePolicy != "Retain" {
		t.Errorf("OrgKeyTable DeletionPolicy/UpdateReplacePolicy = %q/%q, want Retain/Retain",
			table.DeletionPolicy, table.UpdateReplacePolicy)
	}
	p := tpl.Parameters["TableDeletionProtection"]
	if p.Default != "true" || !slices.Equal(p.AllowedValues, []string{"true", "false"}) {
		t.Errorf("TableDeletionProtection = %+v, want default true, allowed true/false", p)
	}

	ttl, err := tpl.TTLAttribute("OrgKeyTable")
	if err != nil || ttl != "ttl" {
		t.Errorf("TTLAttribute = %q, %v; want ttl", ttl, err)
	}
}

// TestTableInput holds docs/design.md's key design.
func TestTableInput(t *testing.T) {
	got, err := repoTemplate(t).TableInput("OrgKeyTable", "orgkey-test")
	if err != nil {
		t.Fatal(err)
	}
	key := func(hash, rng string) []ddbtypes.KeySchemaElement {
		return []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String(hash), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String(rng), KeyType: ddbtypes.KeyTypeRange},
		}
	}
	var attrs []ddbtypes.AttributeDefinition
	for _, n := range []string{"gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "pk", "sk"} {
		attrs = append(attrs, ddbtypes.AttributeDefinition{AttributeName: aws.String(n), AttributeType: ddbtypes.ScalarAttributeTypeS})
	}
	all := &ddbtypes.Projection{ProjectionType: ddbtypes.ProjectionTypeAll}
	want := &dynamodb.CreateTableInput{
		TableName:            aws.String("orgkey-test"),
		BillingMode:          ddbtypes.BillingModePayPerRequest,
		KeySchema:            key("pk", "sk"),
		AttributeDefinitions: attrs,
		GlobalSecondaryIndexes: []ddbtypes.GlobalSecondaryIndex{
			{IndexName: aws.String("gsi1"), KeySchema: key("gsi1pk", "gsi1sk"), Projection: all},
			{IndexName: aws.String("gsi2"), KeySchema: key("gsi2pk", "gsi2sk"), Projection: all},
		},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("TableInput =\n%s\nwant\n%s", jsonString(got), jsonString(want))
	}
}

func TestWrappingKey(t *testing.T) {
	tpl := repoTemplate(t)
	key, err := tpl.resource("OrgKeyWrappingKey", "AWS::KMS::Key")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want any
	}{
		{"EnableKeyRotation", true},
		{"PendingWindowInDays", 30},
		{"KeySpec", "SYMMETRIC_DEFAULT"},
		{"KeyUsage", "ENCRYPT_DECRYPT"},
	} {
		if got := lookup(key.Properties, strings.Split(tc.path, ".")...); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("OrgKeyWrappingKey %s = %#v, want %#v", tc.path, got, tc.want)
		}
	}
	if key.DeletionPolicy != "Retain" {
		t.Errorf("OrgKeyWrappingKey DeletionPolicy = %q: the retained table's ciphertexts need the key", key.DeletionPolicy)
	}
	// Allow only to the account (its IAM policies then decide, and the
	// aws:PrincipalArn condition narrows Decrypt); Deny to everyone. The
	// semantics (who may decrypt, whatever their IAM policies) are evaluated by
	// internal/testing/iam's TestKeyPolicy.
	root := map[string]any{"AWS": map[string]any{"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}}
	var decryptDenied bool
	for _, s := range asList(lookup(key.Properties, "KeyPolicy", "Statement")) {
		p := lookup(s, "Principal")
		switch lookup(s, "Effect") {
		case "Allow":
			if !reflect.DeepEqual(p, root) {
				t.Errorf("key policy statement %v: principal %s, want only the account root", lookup(s, "Sid"), jsonString(p))
			}
		case "Deny":
			if p != "*" {
				t.Errorf("key policy statement %v denies %s, want every principal (\"*\")", lookup(s, "Sid"), jsonString(p))
			}
			if lookup(s, "Action") == "kms:Decrypt" {
				decryptDenied = true
				arns := jsonString(lookup(s, "Condition", "ArnNotLike", "aws:PrincipalArn"))
				for _, fn := range []string{"ActivationEmail", "RevealKey", "SendKey"} {
					if !strings.Contains(arns, "${AWS::StackName}-"+fn+"FunctionRole-*") {
						t.Errorf("the Decrypt deny does not except %sFunctionRole: %s", fn, arns)
					}
				}
				if strings.Contains(arns, "SupportReset") {
					t.Errorf("the Decrypt deny excepts support-reset's role: %s", arns)
				}
			}
		}
	}
	if !decryptDenied {
		t.Error("no key policy statement denies kms:Decrypt to the other principals")
	}
	alias, err := tpl.resource("OrgKeyWrappingKeyAlias", "AWS::KMS::Alias")
	if err != nil {
		t.Fatal(err)
	}
	if got := valueOf(alias.Properties["TargetKeyId"]).String(); got != "!Ref OrgKeyWrappingKey" {
		t.Errorf("alias target = %s", got)
	}
}

func TestUserPool(t *testing.T) {
	tpl := repoTemplate(t)
	pool, err := tpl.resource("UserPool", "AWS::Cognito::UserPool")
	if err != nil {
		t.Fatal(err)
	}
	// PreSignUp refuses before Cognito keeps an account; PostConfirmation creates
	// the organization: one function serves both.
	for _, name := range []string{"PreSignUp", "PostConfirmation"} {
		trigger := valueOf(lookup(pool.Properties, "LambdaConfig", name))
		fn, attr, ok := trigger.GetAtt()
		if !ok || fn != "ActivationEmailFunction" || attr != "Arn" {
			t.Fatalf("%s = %s, want !GetAtt ActivationEmailFunction.Arn", name, trigger)
		}
	}

	// One person, one account: usernames (email addresses) compare case-insensitively.
	if got := lookup(pool.Properties, "UsernameConfiguration", "CaseSensitive"); got != false {
		t.Errorf("UsernameConfiguration.CaseSensitive = %v, want false", got)
	}
	// Cognito mails through SES from the service's own identity and address, not
	// with its built-in sender's daily quota.
	for _, tc := range []struct{ path, want string }{
		{"EmailConfiguration.EmailSendingAccount", "DEVELOPER"},
		{"EmailConfiguration.SourceArn", "!Sub arn:${AWS::Partition}:ses:${AWS::Region}:${AWS::AccountId}:identity/${SesIdentityName}"},
		{"EmailConfiguration.From", "!Ref MailFromAddress"},
		{"MfaConfiguration", "!Ref UserPoolMfa"},
		{"VerificationMessageTemplate.DefaultEmailOption", "CONFIRM_WITH_CODE"},
	} {
		if got := valueOf(lookup(pool.Properties, strings.Split(tc.path, ".")...)).String(); got != tc.want {
			t.Errorf("UserPool %s = %s, want %s", tc.path, got, tc.want)
		}
	}
	msg := scalarString(lookup(pool.Properties, "VerificationMessageTemplate", "EmailMessage"))
	if strings.Count(msg, "{####}") != 2 || !strings.Contains(msg, "Votre code") || !strings.Contains(msg, "Your verification code") {
		t.Errorf("verification message is not the code in French and English: %q", msg)
	}
	// MFA and threat protection are the deployer's choice; the defaults are OPTIONAL
	// (never OFF) and OFF (threat protection needs the Plus plan).
	for _, tc := range []struct {
		name, def string
		allowed   []string
	}{
		{"UserPoolMfa", "OPTIONAL", []string{"OPTIONAL", "ON"}},
		{"ThreatProtection", "OFF", []string{"OFF", "AUDIT", "ENFORCED"}},
	} {
		p, ok := tpl.Parameters[tc.name]
		if !ok || !p.HasDefault || p.Default != tc.def {
			t.Errorf("parameter %s: %+v, want default %s", tc.name, p, tc.def)
			continue
		}
		if !slices.Equal(p.AllowedValues, tc.allowed) {
			t.Errorf("parameter %s allows %v, want %v", tc.name, p.AllowedValues, tc.allowed)
		}
	}

	var attrs []string
	for _, a := range asList(pool.Properties["Schema"]) {
		attrs = append(attrs, scalarString(lookup(a, "Name")))
	}
	for _, want := range []string{"email", "name", "locale", "company_name"} {
		if !slices.Contains(attrs, want) {
			t.Errorf("user pool schema lacks %s (have %v)", want, attrs)
		}
	}

	// Cognito may invoke every trigger, for this pool only.
	triggers, _ := pool.Properties["LambdaConfig"].(map[string]any)
	for name, target := range triggers {
		fn, _, _ := valueOf(target).GetAtt()
		found := false
		for _, id := range tpl.logicalIDs("AWS::Lambda::Permission") {
			p := tpl.Resources[id].Properties
			target := valueOf(p["FunctionName"])
			tfn, _, _ := target.GetAtt()
			if ref, ok := target.Ref(); ok {
				tfn = ref
			}
			if tfn == fn && scalarString(p["Principal"]) == "cognito-idp.amazonaws.com" &&
				valueOf(p["SourceArn"]).String() == "!GetAtt UserPool.Arn" {
				found = true
			}
		}
		if !found {
			t.Errorf("trigger %s: no AWS::Lambda::Permission lets cognito-idp.amazonaws.com invoke %s from UserPool", name, fn)
		}
		// The pool references the function, so the function must not
		// reference the pool: that would be a dependency cycle.
		if f, ok := tpl.Resources[fn]; ok {
			if refs := references(mergeGlobals(tpl.globals["Function"], f.Properties)); refs["UserPool"] || refs["UserPoolClient"] {
				t.Errorf("%s references the user pool it is a trigger of (circular dependency)", fn)
			}
		}
	}
}

// accessTokenScope is in every Cognito access token of a user-pool sign-in, and in
// no ID token.
const accessTokenScope = "aws.cognito.signin.user.admin"

func TestHttpAPI(t *testing.T) {
	tpl := repoTemplate(t)
	api, err := tpl.resource("HttpApi", "AWS::Serverless::HttpApi")
	if err != nil {
		t.Fatal(err)
	}
	if got := lookup(api.Properties, "Auth", "DefaultAuthorizer"); got != "CognitoJwt" {
		t.Errorf("DefaultAuthorizer = %v, want CognitoJwt", got)
	}
	jwt := lookup(api.Properties, "Auth", "Authorizers", "CognitoJwt")
	for _, tc := range []struct{ path, want string }{
		{"IdentitySource", "$request.header.Authorization"},
		{"JwtConfiguration.issuer", "!Sub https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"},
	} {
		if got := valueOf(lookup(jwt, strings.Split(tc.path, ".")...)).String(); got != tc.want {
			t.Errorf("CognitoJwt %s = %s, want %s", tc.path, got, tc.want)
		}
	}
	if aud := rendered(lookup(jwt, "JwtConfiguration", "audience")); !slices.Equal(aud, []string{"!Ref UserPoolClient"}) {
		t.Errorf("CognitoJwt audience = %v, want [!Ref UserPoolClient]", aud)
	}
	if lookup(api.Properties, "AccessLogSettings", "DestinationArn") == nil {
		t.Error("HttpApi has no access log destination")
	}

	for _, f := range repoFunctions(t) {
		for _, ev := range f.Events {
			if ev.Route == nil {
				continue
			}
			r := ev.Route
			name := r.Method + " " + r.Path
			switch {
			case r.API != "HttpApi":
				t.Errorf("%s %s: route on API %q, want HttpApi", f.LogicalID, name, r.API)
			case r.Open() && !publicRoutes[name]:
				t.Errorf("%s %s: open route not listed in publicRoutes", f.LogicalID, name)
			case !r.Open() && r.Auth.Name != "CognitoJwt":
				t.Errorf("%s %s: authorizer %s, want CognitoJwt", f.LogicalID, name, r.Auth.Name)
			case !r.Open() && !slices.Equal(r.Scopes, []string{accessTokenScope}):
				// Without a scope, Cognito's ID token (aud = the app client) passes
				// the authorizer.
				t.Errorf("%s %s: scopes %v, want [%s] (access tokens only)", f.LogicalID, name, r.Scopes, accessTokenScope)
			}
		}
	}
}

// TestSamconfig checks that samconfig.toml deploys no placeholder: the deploy
// section has no parameter values (sam deploy stops on the parameters without a
// default, --guided asks for them), and the local commands' sections supply every
// such parameter with reserved .test names only.
func TestSamconfig(t *testing.T) {
	tpl := repoTemplate(t)
	conf, err := os.Open(filepath.Join(repoRoot(t), "samconfig.toml"))
	if err != nil {
		t.Fatal(err)
	}
	defer conf.Close()
	var section string
	sections := map[string]map[string]string{"": {}}
	sc := bufio.NewScanner(conf)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#"):
		case strings.HasPrefix(line, "["):
			section = strings.Trim(line, "[]")
			sections[section] = map[string]string{}
		default:
			k, v, _ := strings.Cut(line, "=")
			sections[section][strings.TrimSpace(k)] = strings.Trim(strings.TrimSpace(v), `"`)
		}
	}
	if got := sections["default.global.parameters"]["stack_name"]; got != "orgkey" {
		t.Errorf("stack_name = %q", got)
	}
	for name, sec := range sections {
		if strings.HasSuffix(name, ".deploy.parameters") && sec["parameter_overrides"] != "" {
			t.Errorf("[%s] has parameter_overrides %q: a plain sam deploy would deploy them", name, sec["parameter_overrides"])
		}
	}
	for _, local := range []string{"default.local_invoke.parameters", "default.local_start_api.parameters"} {
		overrides := map[string]bool{}
		for _, kv := range strings.Fields(sections[local]["parameter_overrides"]) {
			k, v, _ := strings.Cut(kv, "=")
			overrides[k] = true
			if _, ok := tpl.Parameters[k]; !ok {
				t.Errorf("[%s] overrides %s, which template.yaml does not declare", local, k)
			}
			if strings.Contains(v, ".") && !strings.Contains(v, ".test") {
				t.Errorf("[%s] %s=%s: local values use reserved .test names, which reach nothing", local, k, v)
			}
		}
		for name, p := range tpl.Parameters {
			if !p.HasDefault && !overrides[name] {
				t.Errorf("parameter %s has no default and no value in [%s]", name, local)
			}
		}
	}
}

// TestCfnLint lints template.yaml with the SAM transform applied.
func TestCfnLint(t *testing.T) {
	bin, err := exec.LookPath("cfn-lint")
	if err != nil {
		t.Fatal("cfn-lint is not on PATH: install it with `pip install cfn-lint`")
	}
	cmd := exec.Command(bin, "--format", "parseable", filepath.Join(repoRoot(t), "template.yaml"))
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		// cfn-lint's exit code is a bit set: 2 errors, 4 warnings,
		// 8 informational; anything else means it could not run.
		code := exit.ExitCode()
		if code&2 != 0 || code&^(2|4|8) != 0 {
			t.Fatalf("cfn-lint template.yaml: exit %d\n%s", code, out)
		}
		t.Logf("cfn-lint warnings/informational:\n%s", out)
	default:
		t.Fatalf("cfn-lint: %v\n%s", err, out)
	}
}

// ------------------------------------------------------------- checks

func codeURI(want string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		if f.CodeURI != want {
			t.Errorf("CodeUri = %q, want %q", f.CodeURI, want)
		}
	}
}

func buildMethod(want string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		if f.BuildMethod != want {
			t.Errorf("Metadata.BuildMethod = %q, want %q", f.BuildMethod, want)
		}
	}
}

func runtime(want string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		if f.Runtime != want {
			t.Errorf("Runtime = %q, want %q", f.Runtime, want)
		}
	}
}

func architectures(want ...string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		if !slices.Equal(f.Architectures, want) {
			t.Errorf("Architectures = %v, want %v", f.Architectures, want)
		}
	}
}

func handler(want string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		if f.Handler != want {
			t.Errorf("Handler = %q, want %q", f.Handler, want)
		}
	}
}

func tracing(want string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		if f.Tracing != want {
			t.Errorf("Tracing = %q, want %q", f.Tracing, want)
		}
	}
}

func logFormat(want string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		if f.LogFormat != want {
			t.Errorf("LoggingConfig.LogFormat = %q, want %q", f.LogFormat, want)
		}
	}
}

// ownLogGroup: the function logs to a log group of the template with this
// retention.
func ownLogGroup(days int) check {
	return func(t *testing.T, tpl *Template, f Function) {
		t.Helper()
		id, ok := f.LogGroup.Ref()
		if !ok {
			t.Errorf("LoggingConfig.LogGroup = %q, want a !Ref to an AWS::Logs::LogGroup", f.LogGroup)
			return
		}
		lg, err := tpl.resource(id, "AWS::Logs::LogGroup")
		if err != nil {
			t.Error(err)
			return
		}
		if got := lg.Properties["RetentionInDays"]; got != days {
			t.Errorf("log group %s RetentionInDays = %v, want %d", id, got, days)
		}
	}
}

func timeoutAtMost(seconds int) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		if f.Timeout == 0 || f.Timeout > seconds {
			t.Errorf("Timeout = %d, want 1..%d", f.Timeout, seconds)
		}
	}
}

func env(name, want string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		got, ok := f.Env[name]
		if !ok {
			t.Errorf("no env var %s", name)
		} else if got.String() != want {
			t.Errorf("env %s = %s, want %s", name, got, want)
		}
	}
}

func event(name, typ string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		if !slices.ContainsFunc(f.Events, func(e Event) bool { return e.Name == name && e.Type == typ }) {
			t.Errorf("no %s event %s (events %+v)", typ, name, f.Events)
		}
	}
}

func schedule(name, expr string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		if !slices.ContainsFunc(f.Events, func(e Event) bool { return e.Name == name && e.Schedule == expr }) {
			t.Errorf("event %s is not scheduled %s", name, expr)
		}
	}
}

// route: the function serves METHOD path on the HTTP API, behind the JWT
// authorizer unless open (then it must also be listed in publicRoutes).
func route(method, path string, open bool) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		if !slices.ContainsFunc(f.Events, func(e Event) bool {
			return e.Route != nil && e.Route.Method == method && e.Route.Path == path && e.Route.Open() == open
		}) {
			t.Errorf("no route %s %s (open=%v) in events %+v", method, path, open, f.Events)
		}
	}
}

func noRoutes() check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		for _, e := range f.Events {
			if e.Route != nil {
				t.Errorf("unexpected HTTP route %s %s", e.Route.Method, e.Route.Path)
			}
		}
	}
}

// alarmOn: an AWS/Lambda alarm on this metric of the function exists.
func alarmOn(metric string) check {
	return func(t *testing.T, tpl *Template, f Function) {
		t.Helper()
		for _, id := range tpl.logicalIDs("AWS::CloudWatch::Alarm") {
			p := tpl.Resources[id].Properties
			if p["Namespace"] != "AWS/Lambda" || p["MetricName"] != metric {
				continue
			}
			for _, d := range asList(p["Dimensions"]) {
				if lookup(d, "Name") == "FunctionName" && valueOf(lookup(d, "Value")).String() == "!Ref "+f.LogicalID {
					return
				}
			}
		}
		t.Errorf("no CloudWatch alarm on %s of %s", metric, f.LogicalID)
	}
}

func allows(action string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		if len(granting(f, action)) == 0 {
			t.Errorf("no statement allows %s", action)
		}
	}
}

func lacks(action string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		for _, s := range granting(f, action) {
			t.Errorf("statement %q allows %s", s.Sid, action)
		}
	}
}

// allowsOn: some statement allows the action on each of these resources.
func allowsOn(action string, resources ...string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		for _, r := range resources {
			if !slices.ContainsFunc(granting(f, action), func(s Statement) bool { return slices.Contains(s.Resources, r) }) {
				t.Errorf("no statement allows %s on %s", action, r)
			}
		}
	}
}

// allowsOnlyOn: every statement touching actions matched by pattern (which
// may hold IAM wildcards, "kms:*") names only these resources.
func allowsOnlyOn(pattern string, resources ...string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		for _, s := range touching(f, pattern) {
			for _, r := range s.Resources {
				if !slices.Contains(resources, r) {
					t.Errorf("statement %q grants %v on %s, want only %v", s.Sid, s.Actions, r, resources)
				}
			}
		}
	}
}

// allowsOnlyWhen: every statement touching actions matched by pattern holds
// this condition with exactly these values.
func allowsOnlyWhen(pattern, operator, key string, values ...string) check {
	return func(t *testing.T, _ *Template, f Function) {
		t.Helper()
		for _, s := range touching(f, pattern) {
			got := s.Condition[operator][key]
			if !slices.Equal(got, values) {
				t.Errorf("statement %q (%v): condition %s %s = %v, want %v", s.Sid, s.Actions, operator, key, got, values)
			}
		}
	}
}

// granting returns the statements allowing this exact action.
func granting(f Function, action string) []Statement {
	var out []Statement
	for _, s := range f.Statements {
		if s.Allows(action) {
			out = append(out, s)
		}
	}
	return out
}

// touching returns the Allow statements with an action matched by pattern.
func touching(f Function, pattern string) []Statement {
	var out []Statement
	for _, s := range f.Statements {
		if s.Effect == "Allow" && slices.ContainsFunc(s.Actions, func(a string) bool {
			return wildcardMatch(strings.ToLower(pattern), strings.ToLower(a))
		}) {
			out = append(out, s)
		}
	}
	return out
}

// references returns the logical ids x refers to through Ref, Fn::GetAtt
// or Fn::Sub.
func references(x any) map[string]bool {
	refs := map[string]bool{}
	var walk func(any)
	walk = func(x any) {
		if fn, arg, ok := intrinsic(x); ok {
			v := valueOf(x)
			switch fn {
			case "Ref":
				refs[v.Arg] = true
			case "Fn::GetAtt":
				res, _, _ := v.GetAtt()
				refs[res] = true
			case "Fn::Sub":
				s := v.Arg
				if l, ok := arg.([]any); ok && len(l) > 0 {
					s = scalarString(l[0])
				}
				for _, part := range strings.Split(s, "${")[1:] {
					name, _, _ := strings.Cut(part, "}")
					name, _, _ = strings.Cut(name, ".")
					refs[name] = true
				}
			}
			walk(arg)
			return
		}
		switch v := x.(type) {
		case map[string]any:
			for _, e := range v {
				walk(e)
			}
		case []any:
			for _, e := range v {
				walk(e)
			}
		}
	}
	walk(x)
	return refs
}

// ------------------------------------------------------------ loading

var loadRepo = sync.OnceValues(func() (*Template, error) {
	root, err := FindRoot()
	if err != nil {
		return nil, err
	}
	return Load(filepath.Join(root, "template.yaml"))
})

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := FindRoot()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func repoTemplate(t *testing.T) *Template {
	t.Helper()
	tpl, err := loadRepo()
	if err != nil {
		t.Fatal(err)
	}
	return tpl
}

func repoFunctions(t *testing.T) []Function {
	t.Helper()
	fns, err := repoTemplate(t).Functions()
	if err != nil {
		t.Fatal(err)
	}
	return fns
}
