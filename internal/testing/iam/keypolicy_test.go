package iam_test

import (
	"testing"

	"github.com/mspvault/orgkey/internal/testing/iam"
)

// orgKeyContext is keywrap's encryption context for a tenant's key.
func orgKeyContext(principal string) map[string][]string {
	return map[string][]string{
		"aws:PrincipalArn":                 {principal},
		"kms:EncryptionContext:tenantId":   {"org_1"},
		"kms:EncryptionContext:keyVersion": {"1"},
		"kms:EncryptionContext:purpose":    {"org-key"},
		"kms:EncryptionContextKeys":        {"keyVersion", "purpose", "tenantId"},
		"kms:CallerAccount":                {iam.Account},
		"aws:PrincipalAccount":             {iam.Account},
	}
}

// administrator is an IAM policy granting everything (AdministratorAccess).
var administrator = []iam.Statement{{Source: "AdministratorAccess", Effect: "Allow", Action: []string{"*"}, Resource: []string{"*"}}}

// TestKeyPolicy: the key policy lets only the roles that unwrap keys decrypt, only
// under an org-key context, denies it to every other principal whatever their IAM
// policies say (an administrator, support-reset's role even if someone grants it
// kms:Decrypt), lets nobody re-encrypt, and leaves the key's administration and
// encryption to the account.
func TestKeyPolicy(t *testing.T) {
	m := model(t, Params)
	decide := func(principal string, identity []iam.Statement, action string, ctx map[string][]string) iam.Decision {
		id, by := iam.Decide(identity, principal, action, m.KeyARN, ctx)
		d, _ := m.DecideKey(principal, id, by, action, ctx)
		return d
	}
	unwrappers := map[string]bool{"activation-email": true, "reveal-key": true, "send-key": true, "support-reset": false}
	if len(m.Roles) != len(unwrappers) {
		t.Fatalf("the template has functions %v; say here which may decrypt", m.Roles)
	}
	for fn, may := range unwrappers {
		r := m.Roles[fn]
		if r == nil {
			t.Fatalf("no role for %s", fn)
		}
		ctx := orgKeyContext(r.ARN)
		got := decide(r.ARN, r.Statements(), "kms:Decrypt", ctx)
		if may && got != iam.Allowed {
			t.Errorf("%s: Decrypt of an org key is %v, want allowed", fn, got)
		}
		if !may && got != iam.ExplicitDeny {
			t.Errorf("%s: Decrypt is %v, want explicitly denied", fn, got)
		}
		// Even with its role granted everything, a non-unwrapping function cannot
		// decrypt; an unwrapping one still needs the org-key context.
		if d := decide(r.ARN, administrator, "kms:Decrypt", ctx); !may && d != iam.ExplicitDeny {
			t.Errorf("%s with AdministratorAccess: Decrypt is %v, want explicitly denied", fn, d)
		}
		other := orgKeyContext(r.ARN)
		other["kms:EncryptionContext:purpose"] = []string{"something-else"}
		if d := decide(r.ARN, administrator, "kms:Decrypt", other); d == iam.Allowed {
			t.Errorf("%s with AdministratorAccess: Decrypt outside the org-key context is allowed", fn)
		}
		for _, a := range []string{"kms:ReEncryptFrom", "kms:ReEncryptTo"} {
			if d := decide(r.ARN, administrator, a, ctx); d != iam.ExplicitDeny {
				t.Errorf("%s with AdministratorAccess: %s is %v, want explicitly denied", fn, a, d)
			}
		}
	}
	if d := decide(m.Roles["support-reset"].ARN, m.Roles["support-reset"].Statements(), "kms:Encrypt", orgKeyContext(m.Roles["support-reset"].ARN)); d != iam.Allowed {
		t.Errorf("support-reset: Encrypt is %v, want allowed", d)
	}

	// An administrator of the account, its root user and a look-alike role of
	// another stack.
	for _, p := range []string{
		"arn:aws:iam::" + iam.Account + ":role/Admin",
		"arn:aws:iam::" + iam.Account + ":root",
		"arn:aws:iam::" + iam.Account + ":role/other-RevealKeyFunctionRole-ABC",
	} {
		ctx := orgKeyContext(p)
		if d := decide(p, administrator, "kms:Decrypt", ctx); d != iam.ExplicitDeny {
			t.Errorf("%s with AdministratorAccess: Decrypt is %v, want explicitly denied", p, d)
		}
		for _, a := range []string{"kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey", "kms:ScheduleKeyDeletion", "kms:EnableKeyRotation", "kms:TagResource", "kms:Encrypt"} {
			if d := decide(p, administrator, a, ctx); d != iam.Allowed {
				t.Errorf("%s with AdministratorAccess: %s is %v, want allowed (the account administers the key)", p, a, d)
			}
		}
		// Without an IAM grant the account's delegation gives a role nothing.
		if d := decide(p, nil, "kms:PutKeyPolicy", ctx); p != "arn:aws:iam::"+iam.Account+":root" && d != iam.ImplicitDeny {
			t.Errorf("%s without IAM policies: PutKeyPolicy is %v, want implicitly denied", p, d)
		}
	}
}
