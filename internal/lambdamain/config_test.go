package lambdamain_test

import (
	"strings"
	"testing"

	"github.com/mspvault/orgkey/internal/activation"
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/reset"
	"github.com/mspvault/orgkey/internal/revealkey"
	"github.com/mspvault/orgkey/internal/sendkey"
)

var commonEnv = []string{"TABLE_NAME=t", "KMS_KEY_ID=alias/k", "MAIL_FROM=no-reply@example.test", "APP_URL=https://vault.example.test"}

// sendKeyEnv is what send-key needs besides: the user pool its claim page signs in to.
var sendKeyEnv = []string{"USER_POOL_ID=eu-west-3_x", "USER_POOL_CLIENT_ID=c", "AWS_REGION=eu-west-3"}

// Every flow's Config reads the common variables under their template.yaml names,
// through the Common it embeds, and its own defaults.
func TestParseEnvReadsEveryFlow(t *testing.T) {
	want := lambdamain.Common{TableName: "t", KMSKeyID: "alias/k", MailFrom: "no-reply@example.test", AppURL: "https://vault.example.test"}
	a, err := lambdamain.ParseEnv[activation.Config](commonEnv)
	if err != nil || a.Common != want || a.CatchUpAfter != 120 {
		t.Errorf("activation: %+v, %v", a, err)
	}
	s, err := lambdamain.ParseEnv[sendkey.Config](append(append(commonEnv, sendKeyEnv...), "SEND_RATE_LIMIT_PER_HOUR=7"))
	if err != nil || s.Common != want || s.SendRateLimit != 7 || s.ClaimTTLHours != 72 || s.UserPoolID != "eu-west-3_x" || s.ClientID != "c" {
		t.Errorf("send-key: %+v, %v", s, err)
	}
	r, err := lambdamain.ParseEnv[revealkey.Config](commonEnv)
	if err != nil || r.Common != want || r.StepUpSeconds != 300 || r.RatePerHour != 10 {
		t.Errorf("reveal-key: %+v, %v", r, err)
	}
	x, err := lambdamain.ParseEnv[reset.Config](commonEnv)
	if err != nil || x.Common != want || x.SafetyMarginSeconds != 30 {
		t.Errorf("support-reset: %+v, %v", x, err)
	}
}

// A missing or senseless value fails, naming the variable, for every flow: the one
// validation of the common fields runs under each flow's own.
func TestParseEnvRefusesNamingTheVariable(t *testing.T) {
	without := func(name string) []string {
		var env []string
		for _, kv := range commonEnv {
			if !strings.HasPrefix(kv, name+"=") {
				env = append(env, kv)
			}
		}
		return env
	}
	for _, tc := range []struct {
		name, want string
		env        []string
	}{
		{"no table", "TABLE_NAME", without("TABLE_NAME")},
		{"no key", "KMS_KEY_ID", without("KMS_KEY_ID")},
		{"relative app URL", "APP_URL", append(without("APP_URL"), "APP_URL=/app")},
		{"app URL with a query", "APP_URL", append(without("APP_URL"), "APP_URL=https://x.test/?a=b")},
		{"sender with a display name", "MAIL_FROM", append(without("MAIL_FROM"), "MAIL_FROM=Vault <no-reply@example.test>")},
		{"sender without @", "MAIL_FROM", append(without("MAIL_FROM"), "MAIL_FROM=no-reply")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for flow, parse := range map[string]func([]string) error{
				"activation": func(e []string) error { _, err := lambdamain.ParseEnv[activation.Config](e); return err },
				"send-key": func(e []string) error {
					_, err := lambdamain.ParseEnv[sendkey.Config](append(append([]string(nil), e...), sendKeyEnv...))
					return err
				},
				"reveal-key":    func(e []string) error { _, err := lambdamain.ParseEnv[revealkey.Config](e); return err },
				"support-reset": func(e []string) error { _, err := lambdamain.ParseEnv[reset.Config](e); return err },
			} {
				if err := parse(tc.env); err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Errorf("%s: %v, want an error naming %s", flow, err, tc.want)
				}
			}
		})
	}
	for _, tc := range []struct{ env, want string }{
		{"STEP_UP_MAX_AGE_SECONDS=0", "STEP_UP_MAX_AGE_SECONDS"},
		{"REVEAL_RATE_LIMIT_PER_HOUR=0", "REVEAL_RATE_LIMIT_PER_HOUR"},
	} {
		if _, err := lambdamain.ParseEnv[revealkey.Config](append(commonEnv, tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("reveal-key with %s: %v", tc.env, err)
		}
	}
	for _, tc := range []struct{ env, want string }{
		{"SAFETY_MARGIN_SECONDS=900", "SAFETY_MARGIN_SECONDS"},
		{"DELETE_WORKERS=-1", "DELETE_WORKERS"},
	} {
		if _, err := lambdamain.ParseEnv[reset.Config](append(commonEnv, tc.env)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("support-reset with %s: %v", tc.env, err)
		}
	}
	if _, err := lambdamain.ParseEnv[activation.Config](append(commonEnv, "CATCHUP_AFTER_SECONDS=-1")); err == nil || !strings.Contains(err.Error(), "CATCHUP_AFTER_SECONDS") {
		t.Errorf("activation with a negative catch-up: %v", err)
	}
}
