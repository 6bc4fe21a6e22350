package main

import (
	"fmt"
	"sort"

	"github.com/mspvault/orgkey/internal/samtemplate"
)

// localResource is what a template resource resolves to locally.
type localResource struct {
	Ref string // !Ref
	Arn string // !GetAtt X.Arn
}

// localParams are the values of template parameters that have no default,
// chosen for the local stack (the deploy supplies them through samconfig).
var localParams = map[string]string{
	"MailFromAddress": "no-reply@orgkey.local",
	"SesIdentityName": "orgkey.local",
	"AppBaseUrl":      "http://127.0.0.1:3000",
}

// pseudoParams are CloudFormation's pseudo parameters, locally.
var pseudoParams = map[string]string{
	"AWS::Region":    "us-east-1",
	"AWS::AccountId": "123456789012", // moto's default account
	"AWS::Partition": "aws",
}

// functionEnv resolves the function's Environment.Variables (Globals
// applied) against the local resources, so that the local run and the
// deployed function read exactly the variables the template declares.
// Intrinsics other than Ref and GetAtt ...Arn are an error: the template
// should not need them in function environments.
func functionEnv(tpl *samtemplate.Template, fn samtemplate.Function, resources map[string]localResource) ([]string, error) {
	var env []string
	for name, v := range fn.Env {
		val, err := resolve(tpl, v, resources)
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

func resolve(tpl *samtemplate.Template, v samtemplate.Value, resources map[string]localResource) (string, error) {
	if v.IsLiteral() {
		return v.Arg, nil
	}
	if name, ok := v.Ref(); ok {
		if r, ok := resources[name]; ok {
			return r.Ref, nil
		}
		if val, ok := pseudoParams[name]; ok {
			return val, nil
		}
		if val, ok := localParams[name]; ok {
			return val, nil
		}
		if p, ok := tpl.Parameters[name]; ok && p.HasDefault {
			return p.Default, nil
		}
		return "", fmt.Errorf("no local value for %s", name)
	}
	if res, attr, ok := v.GetAtt(); ok && attr == "Arn" {
		if r, ok := resources[res]; ok && r.Arn != "" {
			return r.Arn, nil
		}
		return "", fmt.Errorf("no local resource %s", res)
	}
	return "", fmt.Errorf("cannot resolve %s locally", v.Fn)
}
