package e2e

import (
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/dev/localstack"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
)

// accountsFor lists the pool's accounts whose email is addr, in any case.
func accountsFor(t *testing.T, c *localstack.Client, addr string) []string {
	t.Helper()
	var subs []string
	p := cip.NewListUsersPaginator(c.Cognito, &cip.ListUsersInput{UserPoolId: aws.String(shared.ep.UserPoolID)})
	for p.HasMorePages() {
		page, err := p.NextPage(t.Context())
		if err != nil {
			t.Fatalf("list users: %v", err)
		}
		for _, u := range page.Users {
			for _, a := range u.Attributes {
				if aws.ToString(a.Name) == "email" && strings.EqualFold(aws.ToString(a.Value), addr) {
					subs = append(subs, aws.ToString(u.Username))
				}
			}
		}
	}
	return subs
}

// TestSignUpRefusals signs up through cognito-local with the SDK, as a browser's
// sign-up form does (SignUp with the app client, no credentials): what the PreSignUp
// trigger refuses comes back as UserLambdaValidationException with the reason and the
// text for the form, and leaves no account in the pool and nothing in the table.
func TestSignUpRefusals(t *testing.T) {
	c := client(t)
	o := newOrg(t, c)
	fresh := func() string { return unique("signup-") + "@example.com" }
	attrs := func(email string, kv ...string) []ciptypes.AttributeType {
		base := map[string]string{"email": email, "name": "Ada Lovelace", "locale": "en", "custom:company_name": "Analytical Ltd"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "" {
				delete(base, kv[i])
			} else {
				base[kv[i]] = kv[i+1]
			}
		}
		var out []ciptypes.AttributeType
		for k, v := range base {
			out = append(out, ciptypes.AttributeType{Name: aws.String(k), Value: aws.String(v)})
		}
		return out
	}
	for _, tc := range []struct {
		name, email string
		attrs       []ciptypes.AttributeType
		reason      string
		text        string
	}{
		{"no company name", "", nil, "missing_company_name", "Enter your company's name."},
		{"a zero-width space in the company name", "", nil, "invalid_company_name", "invisible"},
		{"a right-to-left override in the name", "", nil, "invalid_name", "invisible"},
		{"the address of an organization's admin, in capitals", strings.ToUpper(o.Admin.Email), nil, "email_taken", "An account already exists"},
		{"the same, in French", strings.ToUpper(o.Admin.Email[:1]) + o.Admin.Email[1:], nil, "email_taken", "Un compte existe déjà"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			email := tc.email
			if email == "" {
				email = fresh()
			}
			var a []ciptypes.AttributeType
			switch tc.name {
			case "no company name":
				a = attrs(email, "custom:company_name", "")
			case "a zero-width space in the company name":
				a = attrs(email, "custom:company_name", "Acme\u200b IT")
			case "a right-to-left override in the name":
				a = attrs(email, "name", "Ada \u202eecalevoL")
			case "the same, in French":
				a = attrs(email, "locale", "fr-FR")
			default:
				a = attrs(email)
			}
			before := len(accountsFor(t, c, email))
			_, err := c.Cognito.SignUp(t.Context(), &cip.SignUpInput{
				ClientId: aws.String(shared.ep.ClientID), Username: aws.String(email),
				Password: aws.String(localstack.DemoPassword), UserAttributes: a,
			})
			var refused *ciptypes.UserLambdaValidationException
			if !errors.As(err, &refused) {
				t.Fatalf("sign-up: %v, want UserLambdaValidationException", err)
			}
			if msg := aws.ToString(refused.Message); !strings.Contains(msg, tc.reason+": ") || !strings.Contains(msg, tc.text) {
				t.Errorf("message %q, want %s and %q", msg, tc.reason, tc.text)
			}
			if after := accountsFor(t, c, email); len(after) != before {
				t.Errorf("the refused sign-up left an account: %d accounts for %s, %d before", len(after), email, before)
			}
			if _, _, found, err := c.Store.EmailHolder(t.Context(), email); err != nil || (found && tc.reason != "email_taken") {
				t.Errorf("the table holds the refused address (%v, %v)", found, err)
			}
		})
	}

	// Deleting the Cognito account and signing up again does not make a second
	// membership: the address still holds the first.
	t.Run("again after deleting the account", func(t *testing.T) {
		if _, err := c.Cognito.AdminDeleteUser(t.Context(), &cip.AdminDeleteUserInput{
			UserPoolId: aws.String(shared.ep.UserPoolID), Username: aws.String(o.Admin.Email),
		}); err != nil {
			t.Fatal(err)
		}
		_, err := c.SignUp(t.Context(), localstack.Person{Email: o.Admin.Email, Name: "Camille Martin", Locale: "en",
			Company: "Second Company", Password: localstack.DemoPassword})
		var refused *ciptypes.UserLambdaValidationException
		if !errors.As(err, &refused) || !strings.Contains(aws.ToString(refused.Message), "email_taken") {
			t.Fatalf("re-sign-up: %v", err)
		}
		if n := len(accountsFor(t, c, o.Admin.Email)); n != 0 {
			t.Errorf("%d accounts after the refused re-sign-up", n)
		}
	})

	// An invitation into another organization of someone who has one is refused by
	// the table (cognito-local runs no PreSignUp on AdminCreateUser; AWS does).
	t.Run("an invitation of a member of another organization", func(t *testing.T) {
		o2 := newOrg(t, c)
		member := o2.add(t, c, tenant.ProUser)
		_, err := c.Invite(t.Context(), o.ID, localstack.Person{Email: strings.ToUpper(member.Email), Name: "Twice",
			Locale: "en", Password: localstack.DemoPassword}, tenant.ProUser)
		if apperr.ReasonOf(err) != store.ReasonIdentityTaken {
			t.Fatalf("invitation: %v, want %s", err, store.ReasonIdentityTaken)
		}
		if n := len(accountsFor(t, c, member.Email)); n != 1 {
			t.Errorf("%d accounts for %s, want the member's one", n, member.Email)
		}
		if tid, err := c.TenantOf(t.Context(), member.User.ID); err != nil || tid != o2.ID {
			t.Errorf("the member belongs to %q (%v), want %q", tid, err, o2.ID)
		}
	})

	// A valid sign-up still goes through, and its names are stored normalised.
	t.Run("a valid sign-up", func(t *testing.T) {
		email := fresh()
		sub, err := c.SignUp(t.Context(), localstack.Person{Email: email, Name: "Ce\u0301line", Locale: "fr",
			Company: "  Infoge\u0301rance\u00a0Martin ", Password: localstack.DemoPassword})
		if err != nil {
			t.Fatal(err)
		}
		code, err := c.ConfirmationCode(t.Context(), email)
		if err != nil {
			t.Fatal(err)
		}
		if err := c.ConfirmSignUp(t.Context(), email, code); err != nil {
			t.Fatal(err)
		}
		tid, err := c.TenantOf(t.Context(), sub)
		if err != nil {
			t.Fatal(err)
		}
		org, err := c.Store.GetOrg(t.Context(), tid)
		if err != nil || org.Name != "Infogérance Martin" {
			t.Errorf("organization %q (%v), want the normalised name", org.Name, err)
		}
	})
}
