package iam_test

import (
	"maps"
	"strings"
	"testing"

	"github.com/mspvault/orgkey/internal/testing/iam"
)

// realProd is a prod stage with real values.
var realProd = map[string]string{
	"Stage":           "prod",
	"MailFromAddress": "no-reply@mail.acme-msp.fr",
	"SesIdentityName": "mail.acme-msp.fr",
	"AppBaseUrl":      "https://vault.acme-msp.fr",
	"ClaimBaseUrl":    "https://vault.acme-msp.fr",
	"AlarmTopicArn":   "arn:aws:sns:eu-west-3:123456789012:orgkey-alarms",
}

// TestRulesRefuseExampleProd: CloudFormation's Rules refuse a prod stage with the
// examples' domains and addresses, deletion protection off or no alarm topic,
// and let a real prod stage and an example dev stage through.
func TestRulesRefuseExampleProd(t *testing.T) {
	failed := func(params map[string]string) []string {
		t.Helper()
		tpl, err := iam.Resolve(transformedTemplate(t), params)
		if err != nil {
			t.Fatal(err)
		}
		f, err := tpl.FailedRules()
		if err != nil {
			t.Fatal(err)
		}
		var own []string // the ClaimBaseUrl rule is another change's
		for _, x := range f {
			if strings.HasPrefix(x, "ProdNeedsRealDomains:") || strings.HasPrefix(x, "ProdNeedsAlarmTopic:") {
				own = append(own, x)
			}
		}
		return own
	}
	if f := failed(realProd); len(f) > 0 {
		t.Errorf("a real prod stage is refused: %v", f)
	}
	dev := maps.Clone(realProd)
	dev["Stage"], dev["SesIdentityName"], dev["MailFromAddress"], dev["AppBaseUrl"], dev["AlarmTopicArn"] =
		"dev", "example.com", "no-reply@example.com", "https://vault.example.com", ""
	if f := failed(dev); len(f) > 0 {
		t.Errorf("a dev stage with example values is refused: %v", f)
	}
	for name, change := range map[string]map[string]string{
		"example identity":       {"SesIdentityName": "example.com"},
		"example sender":         {"MailFromAddress": "no-reply@example.com"},
		"example app URL":        {"AppBaseUrl": "https://vault.example.com"},
		"no deletion protection": {"TableDeletionProtection": "false"},
		"no alarm topic":         {"AlarmTopicArn": ""},
	} {
		p := maps.Clone(realProd)
		maps.Copy(p, change)
		if f := failed(p); len(f) == 0 {
			t.Errorf("prod with %s (%v) passes the rules", name, change)
		}
	}
}
