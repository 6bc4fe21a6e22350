package samtemplate

import (
	"fmt"
	"testing"
)

// evalCondition evaluates the intrinsics a Rules section uses (Fn::Equals, Fn::Not,
// Fn::And, Fn::Or, Ref of a parameter) against parameter values.
func evalCondition(t *testing.T, x any, params map[string]string) any {
	t.Helper()
	switch v := x.(type) {
	case string:
		return v
	case map[string]any:
		if len(v) != 1 {
			t.Fatalf("not one intrinsic: %v", v)
		}
		for fn, arg := range v {
			args, _ := arg.([]any)
			switch fn {
			case "Ref":
				val, ok := params[fmt.Sprint(arg)]
				if !ok {
					t.Fatalf("Ref of unknown parameter %v", arg)
				}
				return val
			case "Fn::Equals":
				return fmt.Sprint(evalCondition(t, args[0], params)) == fmt.Sprint(evalCondition(t, args[1], params))
			case "Fn::Not":
				return !evalCondition(t, args[0], params).(bool)
			case "Fn::Contains":
				list, _ := args[0].([]any)
				val := fmt.Sprint(evalCondition(t, args[1], params))
				for _, item := range list {
					if fmt.Sprint(evalCondition(t, item, params)) == val {
						return true
					}
				}
				return false
			case "Fn::And", "Fn::Or":
				all, anyTrue := true, false
				for _, a := range args {
					b := evalCondition(t, a, params).(bool)
					all, anyTrue = all && b, anyTrue || b
				}
				if fn == "Fn::And" {
					return all
				}
				return anyTrue
			}
			t.Fatalf("intrinsic %s not handled", fn)
		}
	}
	t.Fatalf("cannot evaluate %#v", x)
	return nil
}

// rulesPass reports whether every applicable rule's assertions hold.
func rulesPass(t *testing.T, tpl *Template, params map[string]string) bool {
	t.Helper()
	for name, raw := range tpl.Rules {
		rule, _ := raw.(map[string]any)
		if c, ok := rule["RuleCondition"]; ok && !evalCondition(t, c, params).(bool) {
			continue
		}
		asserts, _ := rule["Assertions"].([]any)
		if len(asserts) == 0 {
			t.Fatalf("rule %s has no assertions", name)
		}
		for _, a := range asserts {
			m, _ := a.(map[string]any)
			if !evalCondition(t, m["Assert"], params).(bool) {
				return false
			}
		}
	}
	return true
}

// TestProdNeedsClaimBaseURL: CloudFormation refuses a prod stack whose claim links
// would land on the execute-api host (the cookie there is useless to the vault).
func TestProdNeedsClaimBaseURL(t *testing.T) {
	tpl := repoTemplate(t)
	for _, tc := range []struct {
		stage, base string
		want        bool
	}{
		{"prod", "", false},
		{"prod", "https://vault.acme-msp.fr", true},
		{"dev", "", true},
		{"staging", "", true},
	} {
		// The other prod rules (real domains, an alarm topic) are met, so that
		// ClaimBaseUrl alone decides.
		params := map[string]string{"Stage": tc.stage, "ClaimBaseUrl": tc.base,
			"SesIdentityName": "mail.acme-msp.fr", "MailFromAddress": "no-reply@mail.acme-msp.fr",
			"AppBaseUrl": "https://vault.acme-msp.fr", "TableDeletionProtection": "true",
			"AlarmTopicArn": "arn:aws:sns:eu-west-3:111122223333:orgkey-alarms"}
		if got := rulesPass(t, tpl, params); got != tc.want {
			t.Errorf("Stage=%s ClaimBaseUrl=%q: rules pass = %v, want %v", tc.stage, tc.base, got, tc.want)
		}
	}
}
