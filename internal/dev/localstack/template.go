package localstack

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"

	"github.com/mspvault/orgkey/internal/dev/samtemplate"
)

// Local stand-ins for what CloudFormation would supply.
const (
	Region    = "us-east-1"
	AccountID = "123456789012" // moto's default account
)

// Logical ids of the template resources the stack provisions itself.
const (
	tableID      = "OrgKeyTable"
	keyID        = "OrgKeyWrappingKey"
	userPoolID   = "UserPool"
	poolClientID = "UserPoolClient"
)

// resource is what a template resource resolves to locally.
type resource struct {
	Ref string // !Ref
	Arn string // !GetAtt X.Arn
}

// resolver resolves template values against the local resources and
// parameter values: what CloudFormation does at deploy time.
type resolver struct {
	tpl       *samtemplate.Template
	resources map[string]resource
	params    map[string]string // parameter values without a usable default locally
}

var pseudoParams = map[string]string{
	"AWS::Region":    Region,
	"AWS::AccountId": AccountID,
	"AWS::Partition": "aws",
	"AWS::URLSuffix": "amazonaws.com",
}

func (r resolver) resolve(v samtemplate.Value) (string, error) {
	if v.IsLiteral() {
		return v.Arg, nil
	}
	if name, ok := v.Ref(); ok {
		return r.ref(name)
	}
	if res, attr, ok := v.GetAtt(); ok {
		if attr == "Arn" {
			if x, ok := r.resources[res]; ok && x.Arn != "" {
				return x.Arn, nil
			}
		}
		return "", fmt.Errorf("no local value for !GetAtt %s.%s", res, attr)
	}
	if v.Fn == "Fn::Sub" && !strings.HasPrefix(v.Arg, "[") {
		return r.sub(v.Arg)
	}
	return "", fmt.Errorf("cannot resolve %s locally", v)
}

func (r resolver) ref(name string) (string, error) {
	if x, ok := r.resources[name]; ok {
		return x.Ref, nil
	}
	if val, ok := pseudoParams[name]; ok {
		return val, nil
	}
	if val, ok := r.params[name]; ok {
		return val, nil
	}
	if p, ok := r.tpl.Parameters[name]; ok && p.HasDefault {
		return p.Default, nil
	}
	return "", fmt.Errorf("no local value for %s", name)
}

var subVar = regexp.MustCompile(`\$\{([^}!][^}]*)\}`)

// sub resolves a one-argument !Sub: ${Name} is a Ref, ${Res.Attr} a GetAtt.
func (r resolver) sub(s string) (string, error) {
	var firstErr error
	out := subVar.ReplaceAllStringFunc(s, func(m string) string {
		name := m[2 : len(m)-1]
		var (
			val string
			err error
		)
		if res, attr, ok := strings.Cut(name, "."); ok {
			val, err = r.resolve(samtemplate.Value{Fn: "Fn::GetAtt", Arg: res + "." + attr})
		} else {
			val, err = r.ref(name)
		}
		if err != nil && firstErr == nil {
			firstErr = err
		}
		return val
	})
	return out, firstErr
}

// functionEnv resolves the function's Environment.Variables (Globals
// applied), so that the local run and the deployed function read exactly the
// variables the template declares.
func (r resolver) functionEnv(fn samtemplate.Function) ([]string, error) {
	var env []string
	for name, v := range fn.Env {
		val, err := r.resolve(v)
		if err != nil {
			return nil, fmt.Errorf("%s environment %s (%s): %w", fn.LogicalID, name, v, err)
		}
		env = append(env, name+"="+val)
	}
	if fn.LogFormat != "" {
		// What Lambda sets for LoggingConfig.LogFormat.
		env = append(env, "AWS_LAMBDA_LOG_FORMAT="+fn.LogFormat)
	}
	sort.Strings(env)
	return env, nil
}

// cognitoIssuerPrefix is how the template names the user pool's issuer
// (https://cognito-idp.<region>.amazonaws.com/<pool id>); locally the issuer
// is cognito-local's own URL.
var cognitoIssuerPrefix = "https://cognito-idp." + Region + ".amazonaws.com/"

// jwtAuthorizer resolves the JWT authorizer's issuer and audiences.
func (r resolver) jwtAuthorizer(a *samtemplate.Authorizer, cognitoURL string) (issuer string, audience []string, err error) {
	if a.Type != "JWT" {
		return "", nil, fmt.Errorf("authorizer %s: only JWT authorizers run locally, not %s", a.Name, a.Type)
	}
	issuer, err = r.resolve(a.Issuer)
	if err != nil {
		return "", nil, fmt.Errorf("authorizer %s issuer: %w", a.Name, err)
	}
	if rest, ok := strings.CutPrefix(issuer, cognitoIssuerPrefix); ok {
		issuer = strings.TrimRight(cognitoURL, "/") + "/" + rest
	}
	for _, v := range a.Audience {
		aud, err := r.resolve(v)
		if err != nil {
			return "", nil, fmt.Errorf("authorizer %s audience: %w", a.Name, err)
		}
		audience = append(audience, aud)
	}
	return issuer, audience, nil
}

// userPoolInput is CreateUserPool's input from the template's user pool: the
// properties that shape sign-up and sign-in (attributes, schema, password
// policy). Properties that only CloudFormation can resolve (name, tags,
// deletion protection, the trigger ARNs) are set locally instead.
func userPoolInput(tpl *samtemplate.Template, name string) (*cip.CreateUserPoolInput, error) {
	in := &cip.CreateUserPoolInput{}
	if err := literalProps(tpl, userPoolID, "AWS::Cognito::UserPool", in,
		"UsernameAttributes", "AutoVerifiedAttributes", "UsernameConfiguration", "AdminCreateUserConfig",
		"Schema", "Policies", "MfaConfiguration", "AccountRecoverySetting"); err != nil {
		return nil, err
	}
	in.PoolName = aws.String(name)
	return in, nil
}

// userPoolClientInput is CreateUserPoolClient's input from the template's app
// client.
func userPoolClientInput(tpl *samtemplate.Template, poolID, name string) (*cip.CreateUserPoolClientInput, error) {
	in := &cip.CreateUserPoolClientInput{}
	if err := literalProps(tpl, poolClientID, "AWS::Cognito::UserPoolClient", in,
		"GenerateSecret", "ExplicitAuthFlows", "PreventUserExistenceErrors", "EnableTokenRevocation",
		"AccessTokenValidity", "IdTokenValidity", "RefreshTokenValidity", "TokenValidityUnits"); err != nil {
		return nil, err
	}
	in.UserPoolId = aws.String(poolID)
	in.ClientName = aws.String(name)
	return in, nil
}

// literalProps copies the named properties of a resource into an SDK input
// whose field names are the CloudFormation property names (true of the
// Cognito API). A property holding an intrinsic function is an error.
func literalProps(tpl *samtemplate.Template, logicalID, typ string, into any, names ...string) error {
	res, ok := tpl.Resources[logicalID]
	if !ok || res.Type != typ {
		return fmt.Errorf("template.yaml has no %s %s", typ, logicalID)
	}
	props := map[string]any{}
	for _, n := range names {
		if v, ok := res.Properties[n]; ok {
			v = paramDefaults(tpl, v)
			if hasIntrinsic(v) {
				return fmt.Errorf("%s.%s uses an intrinsic function; the local stack needs a literal", logicalID, n)
			}
			props[n] = v
		}
	}
	b, err := json.Marshal(props)
	if err != nil {
		return fmt.Errorf("%s: %w", logicalID, err)
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("%s properties do not fit the Cognito API: %w", logicalID, err)
	}
	return nil
}

// paramDefaults replaces each !Ref of a template parameter that has a default by
// the default: a deployer's choice (MFA, say) runs locally as its default.
func paramDefaults(tpl *samtemplate.Template, x any) any {
	switch v := x.(type) {
	case map[string]any:
		if name, ok := v["Ref"].(string); ok && len(v) == 1 {
			if p, ok := tpl.Parameters[name]; ok && p.HasDefault {
				return p.Default
			}
			return v
		}
		out := make(map[string]any, len(v))
		for k, e := range v {
			out[k] = paramDefaults(tpl, e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = paramDefaults(tpl, e)
		}
		return out
	}
	return x
}

func hasIntrinsic(x any) bool {
	switch v := x.(type) {
	case map[string]any:
		if len(v) == 1 {
			for k := range v {
				if k == "Ref" || strings.HasPrefix(k, "Fn::") {
					return true
				}
			}
		}
		for _, e := range v {
			if hasIntrinsic(e) {
				return true
			}
		}
	case []any:
		for _, e := range v {
			if hasIntrinsic(e) {
				return true
			}
		}
	}
	return false
}

// triggers maps each Cognito trigger the template's user pool configures
// (LambdaConfig: PostConfirmation: !GetAtt ActivationEmailFunction.Arn) to
// the function's logical id, which is its name locally.
func triggers(tpl *samtemplate.Template) (map[string]string, error) {
	res, ok := tpl.Resources[userPoolID]
	if !ok {
		return nil, fmt.Errorf("template.yaml has no %s", userPoolID)
	}
	lc, _ := res.Properties["LambdaConfig"].(map[string]any)
	out := map[string]string{}
	for trigger, raw := range lc {
		ga, _ := raw.(map[string]any)["Fn::GetAtt"].([]any)
		if len(ga) != 2 || fmt.Sprint(ga[1]) != "Arn" {
			return nil, fmt.Errorf("%s.LambdaConfig.%s: want !GetAtt <Function>.Arn", userPoolID, trigger)
		}
		out[trigger] = fmt.Sprint(ga[0])
	}
	return out, nil
}
