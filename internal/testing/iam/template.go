package iam

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
)

// The fake account the template is resolved in.
const (
	Account   = "123456789012"
	Region    = "us-east-1"
	Partition = "aws"
	StackName = "orgkey"
)

// transformScript runs SAM's own transform (samtranslator, installed with
// cfn-lint) offline on the template named by argv[1] and prints the CloudFormation
// template as JSON. CodeUri is replaced by an S3 location, as `sam package` does;
// the managed policies SAM attaches stay ARNs (ManagedPolicies expands them).
const transformScript = `
import json, sys
from cfnlint.decode import decode_str
from samtranslator.translator.translator import Translator
from samtranslator.parser import parser
tpl, matches = decode_str(open(sys.argv[1]).read())
if matches:
    sys.exit("decode: %s" % matches)
tpl = json.loads(json.dumps(tpl))
for r in tpl.get("Resources", {}).values():
    if r.get("Type") == "AWS::Serverless::Function":
        r["Properties"]["CodeUri"] = "s3://bucket/key"
t = Translator(managed_policy_map={}, sam_parser=parser.Parser())
out = t.translate(sam_template=tpl, parameter_values={}, get_managed_policy_map=lambda: {})
json.dump(out, sys.stdout)
`

// Transform returns template.yaml (at path) after the SAM transform, as JSON.
func Transform(path string) (map[string]any, error) {
	cmd := exec.Command("python3", "-c", transformScript, path)
	cmd.Env = append(os.Environ(), "AWS_DEFAULT_REGION="+Region)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("SAM transform of %s (python3 with samtranslator; install it with: pip install cfn-lint): %v\n%s", path, err, stderr.String())
	}
	var tpl map[string]any
	if err := json.Unmarshal(out, &tpl); err != nil {
		return nil, fmt.Errorf("SAM transform output: %w", err)
	}
	return tpl, nil
}

// Template is a transformed template resolved in the fake account.
type Template struct {
	Raw        map[string]any
	Params     map[string]string
	Conditions map[string]bool
}

// Resolve fills in the parameters (params over the template's defaults) and
// evaluates the conditions. A parameter without a default and without a value is
// an error.
func Resolve(raw map[string]any, params map[string]string) (*Template, error) {
	t := &Template{Raw: raw, Params: map[string]string{}, Conditions: map[string]bool{}}
	decl, _ := raw["Parameters"].(map[string]any)
	for name, d := range decl {
		if v, ok := params[name]; ok {
			t.Params[name] = v
			continue
		}
		def, ok := d.(map[string]any)["Default"]
		if !ok {
			return nil, fmt.Errorf("parameter %s has no default and no value", name)
		}
		t.Params[name] = fmt.Sprint(def)
	}
	for name := range params {
		if _, ok := decl[name]; !ok {
			return nil, fmt.Errorf("no parameter %s in the template", name)
		}
	}
	conds, _ := raw["Conditions"].(map[string]any)
	for name := range conds {
		if _, err := t.condition(name); err != nil {
			return nil, err
		}
	}
	return t, nil
}

func (t *Template) condition(name string) (bool, error) {
	if v, ok := t.Conditions[name]; ok {
		return v, nil
	}
	conds, _ := t.Raw["Conditions"].(map[string]any)
	c, ok := conds[name]
	if !ok {
		return false, fmt.Errorf("no condition %s", name)
	}
	v, err := t.truth(c)
	if err != nil {
		return false, fmt.Errorf("condition %s: %w", name, err)
	}
	t.Conditions[name] = v
	return v, nil
}

func (t *Template) truth(v any) (bool, error) {
	m, ok := v.(map[string]any)
	if !ok || len(m) != 1 {
		return false, fmt.Errorf("not a condition: %v", v)
	}
	for fn, arg := range m {
		args, _ := arg.([]any)
		switch fn {
		case "Fn::Equals":
			a, err := t.Eval(args[0])
			if err != nil {
				return false, err
			}
			b, err := t.Eval(args[1])
			if err != nil {
				return false, err
			}
			return fmt.Sprint(a) == fmt.Sprint(b), nil
		case "Fn::Not":
			x, err := t.truth(args[0])
			return !x, err
		case "Fn::And", "Fn::Or":
			all := fn == "Fn::And"
			for _, a := range args {
				x, err := t.truth(a)
				if err != nil {
					return false, err
				}
				if x != all {
					return x, nil
				}
			}
			return all, nil
		case "Condition":
			return t.condition(arg.(string))
		case "Fn::Contains":
			list, err := t.Eval(args[0])
			if err != nil {
				return false, err
			}
			v, err := t.Eval(args[1])
			if err != nil {
				return false, err
			}
			for _, e := range asList(list) {
				if fmt.Sprint(e) == fmt.Sprint(v) {
					return true, nil
				}
			}
			return false, nil
		}
		return false, fmt.Errorf("unsupported condition function %s", fn)
	}
	panic("unreachable")
}

// Resource returns the resource's type and properties.
func (t *Template) Resource(logicalID string) (typ string, props map[string]any, ok bool) {
	res, _ := t.Raw["Resources"].(map[string]any)
	r, ok := res[logicalID].(map[string]any)
	if !ok {
		return "", nil, false
	}
	props, _ = r["Properties"].(map[string]any)
	return r["Type"].(string), props, true
}

// PhysicalID is what Ref returns for a resource in the fake stack.
func (t *Template) PhysicalID(logicalID string) (string, error) {
	typ, props, ok := t.Resource(logicalID)
	if !ok {
		return "", fmt.Errorf("ref to unknown resource %s", logicalID)
	}
	generated := StackName + "-" + logicalID + "-FAKE0123"
	switch typ {
	case "AWS::KMS::Key":
		return "fake-key-" + strings.ToLower(logicalID), nil
	case "AWS::Cognito::UserPool":
		return Region + "_Fake" + logicalID, nil
	case "AWS::Logs::LogGroup":
		if n, ok := props["LogGroupName"]; ok {
			s, err := t.Eval(n)
			return fmt.Sprint(s), err
		}
	case "AWS::SNS::Topic":
		return t.arn("sns", generated), nil
	case "AWS::SES::ConfigurationSet":
		if n, ok := props["Name"]; ok {
			s, err := t.Eval(n)
			return fmt.Sprint(s), err
		}
	}
	return generated, nil
}

func (t *Template) arn(service, rest string) string {
	return "arn:" + Partition + ":" + service + ":" + Region + ":" + Account + ":" + rest
}

// GetAtt resolves Fn::GetAtt for the attributes the policies use.
func (t *Template) GetAtt(logicalID, attr string) (string, error) {
	typ, _, ok := t.Resource(logicalID)
	if !ok {
		return "", fmt.Errorf("fn::GetAtt on unknown resource %s", logicalID)
	}
	id, err := t.PhysicalID(logicalID)
	if err != nil {
		return "", err
	}
	if attr != "Arn" {
		return "", fmt.Errorf("fn::GetAtt %s.%s: only Arn is modelled", logicalID, attr)
	}
	switch typ {
	case "AWS::DynamoDB::Table":
		return t.arn("dynamodb", "table/"+id), nil
	case "AWS::KMS::Key":
		return t.arn("kms", "key/"+id), nil
	case "AWS::IAM::Role":
		return "arn:" + Partition + ":iam::" + Account + ":role/" + id, nil
	case "AWS::Cognito::UserPool":
		return t.arn("cognito-idp", "userpool/"+id), nil
	case "AWS::Logs::LogGroup":
		return t.arn("logs", "log-group:"+id+":*"), nil
	case "AWS::Lambda::Function":
		return t.arn("lambda", "function:"+id), nil
	case "AWS::SNS::Topic":
		return id, nil
	}
	return "", fmt.Errorf("fn::GetAtt %s.Arn: type %s not modelled", logicalID, typ)
}

var subVar = regexp.MustCompile(`\$\{([^}!]+)\}`)

// Eval resolves the intrinsic functions in v (Ref, Fn::GetAtt, Fn::Sub, Fn::Join,
// Fn::If, Fn::Select, Fn::Split). AWS::NoValue removes a list element or map entry.
func (t *Template) Eval(v any) (any, error) {
	switch x := v.(type) {
	case []any:
		out := make([]any, 0, len(x))
		for _, e := range x {
			r, err := t.Eval(e)
			if err != nil {
				return nil, err
			}
			if r != noValue {
				out = append(out, r)
			}
		}
		return out, nil
	case map[string]any:
		if len(x) == 1 {
			for fn, arg := range x {
				if r, ok, err := t.intrinsic(fn, arg); ok || err != nil {
					return r, err
				}
			}
		}
		out := make(map[string]any, len(x))
		for _, k := range slices.Sorted(maps.Keys(x)) {
			r, err := t.Eval(x[k])
			if err != nil {
				return nil, err
			}
			if r != noValue {
				out[k] = r
			}
		}
		return out, nil
	}
	return v, nil
}

type noValueT struct{}

var noValue = noValueT{}

func (t *Template) ref(name string) (any, error) {
	switch name {
	case "AWS::AccountId":
		return Account, nil
	case "AWS::Region":
		return Region, nil
	case "AWS::Partition":
		return Partition, nil
	case "AWS::StackName":
		return StackName, nil
	case "AWS::URLSuffix":
		return "amazonaws.com", nil
	case "AWS::NoValue":
		return noValue, nil
	}
	if v, ok := t.Params[name]; ok {
		return v, nil
	}
	return t.PhysicalID(name)
}

func (t *Template) intrinsic(fn string, arg any) (any, bool, error) {
	switch fn {
	case "Ref":
		r, err := t.ref(arg.(string))
		return r, true, err
	case "Fn::GetAtt":
		var parts []string
		switch a := arg.(type) {
		case string:
			parts = strings.SplitN(a, ".", 2)
		case []any:
			for _, p := range a {
				parts = append(parts, fmt.Sprint(p))
			}
		}
		if len(parts) != 2 {
			return nil, true, fmt.Errorf("bad Fn::GetAtt %v", arg)
		}
		r, err := t.GetAtt(parts[0], parts[1])
		return r, true, err
	case "Fn::Sub":
		var s string
		vars := map[string]any{}
		switch a := arg.(type) {
		case string:
			s = a
		case []any:
			s = a[0].(string)
			m, _ := a[1].(map[string]any)
			for k, e := range m {
				r, err := t.Eval(e)
				if err != nil {
					return nil, true, err
				}
				vars[k] = r
			}
		}
		var ferr error
		out := subVar.ReplaceAllStringFunc(s, func(m string) string {
			name := m[2 : len(m)-1]
			if v, ok := vars[name]; ok {
				return fmt.Sprint(v)
			}
			var r any
			var err error
			if id, attr, ok := strings.Cut(name, "."); ok {
				r, err = t.GetAtt(id, attr)
			} else {
				r, err = t.ref(name)
			}
			if err != nil {
				ferr = err
			}
			return fmt.Sprint(r)
		})
		return out, true, ferr
	case "Fn::Join":
		a := arg.([]any)
		list, err := t.Eval(a[1])
		if err != nil {
			return nil, true, err
		}
		var parts []string
		for _, e := range list.([]any) {
			parts = append(parts, fmt.Sprint(e))
		}
		return strings.Join(parts, a[0].(string)), true, nil
	case "Fn::If":
		a := arg.([]any)
		c, err := t.condition(a[0].(string))
		if err != nil {
			return nil, true, err
		}
		if c {
			r, err := t.Eval(a[1])
			return r, true, err
		}
		r, err := t.Eval(a[2])
		return r, true, err
	case "Fn::Select":
		a := arg.([]any)
		list, err := t.Eval(a[1])
		if err != nil {
			return nil, true, err
		}
		var i int
		fmt.Sscan(fmt.Sprint(a[0]), &i)
		return list.([]any)[i], true, nil
	case "Fn::Split":
		a := arg.([]any)
		s, err := t.Eval(a[1])
		if err != nil {
			return nil, true, err
		}
		var out []any
		for _, p := range strings.Split(fmt.Sprint(s), a[0].(string)) {
			out = append(out, p)
		}
		return out, true, nil
	}
	return nil, false, nil
}

// FailedRules returns the description of every rule assertion CloudFormation
// would refuse the parameters for (Rules: RuleCondition and Assertions).
func (t *Template) FailedRules() ([]string, error) {
	rules, _ := t.Raw["Rules"].(map[string]any)
	var out []string
	for _, name := range slices.Sorted(maps.Keys(rules)) {
		r := rules[name].(map[string]any)
		if c, ok := r["RuleCondition"]; ok {
			applies, err := t.truth(c)
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", name, err)
			}
			if !applies {
				continue
			}
		}
		for _, a := range asList(r["Assertions"]) {
			am := a.(map[string]any)
			ok, err := t.truth(am["Assert"])
			if err != nil {
				return nil, fmt.Errorf("rule %s: %w", name, err)
			}
			if !ok {
				out = append(out, name+": "+fmt.Sprint(am["AssertDescription"]))
			}
		}
	}
	return out, nil
}
