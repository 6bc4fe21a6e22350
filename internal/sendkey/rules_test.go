package sendkey_test

import (
	"slices"
	"testing"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/sendkey"
	"github.com/mspvault/orgkey/internal/tenant"
)

func user(id string, r tenant.Role, sites ...string) tenant.User {
	return tenant.User{ID: id, TenantID: "org_a", Role: r, Sites: sites}
}

func TestCheckSend(t *testing.T) {
	var (
		orgAdmin   = user("oa", tenant.OrgAdmin)
		orgAdmin2  = user("oa2", tenant.OrgAdmin)
		pro        = user("pu", tenant.ProUser)
		siteAdmin  = user("sa", tenant.SiteAdmin, "s1", "s2")
		siteAdmin3 = user("sa3", tenant.SiteAdmin, "s3")
		siteUser1  = user("su1", tenant.SiteUser, "s1")
		siteUser23 = user("su23", tenant.SiteUser, "s2", "s3")
		siteUser3  = user("su3", tenant.SiteUser, "s3")
		siteUserNo = user("su0", tenant.SiteUser)
		siteAdmNo  = user("sa0", tenant.SiteAdmin)
		emptySite  = user("sue", tenant.SiteUser, "")
		adminEmpty = user("sae", tenant.SiteAdmin, "")
		noRole     = user("x", "")
	)
	cases := []struct {
		name           string
		sender, target tenant.User
		reason         string // "" : allowed
	}{
		{"org admin to pro user", orgAdmin, pro, ""},
		{"org admin to another org admin (a pro user with admin rights)", orgAdmin, orgAdmin2, ""},
		{"org admin to self", orgAdmin, orgAdmin, ""},
		{"org admin to site user", orgAdmin, siteUser1, sendkey.ReasonTargetNotProUser},
		{"org admin to site admin", orgAdmin, siteAdmin, sendkey.ReasonTargetNotProUser},
		{"site admin to site user of an administered site", siteAdmin, siteUser1, ""},
		{"site admin to site user sharing one of several sites", siteAdmin, siteUser23, ""},
		{"site admin to site admin of a shared site", siteAdmin3, siteUser23, ""},
		{"site admin to self", siteAdmin, siteAdmin, ""},
		{"site admin to site user of another site", siteAdmin, siteUser3, sendkey.ReasonNoSharedSite},
		{"site admin to site admin of another site", siteAdmin, siteAdmin3, sendkey.ReasonNoSharedSite},
		{"site admin to site user of no site", siteAdmin, siteUserNo, sendkey.ReasonNoSharedSite},
		{"site admin of no site", siteAdmNo, siteUser1, sendkey.ReasonNoSharedSite},
		{"empty site ids never match", adminEmpty, emptySite, sendkey.ReasonNoSharedSite},
		{"site admin to pro user", siteAdmin, pro, sendkey.ReasonTargetNotSiteUser},
		{"site admin to org admin", siteAdmin, orgAdmin, sendkey.ReasonTargetNotSiteUser},
		{"pro user as sender", pro, pro, sendkey.ReasonCallerNotAdmin},
		{"pro user to site user", pro, siteUser1, sendkey.ReasonCallerNotAdmin},
		{"site user as sender", siteUser1, siteUser1, sendkey.ReasonCallerNotAdmin},
		{"no role as sender", noRole, pro, sendkey.ReasonCallerNotAdmin},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := sendkey.CheckSend(tc.sender, tc.target)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if !sendkey.MaySend(tc.sender, tc.target) {
					t.Fatal("MaySend disagrees with CheckSend")
				}
				return
			}
			if apperr.CodeOf(err) != apperr.Forbidden || apperr.ReasonOf(err) != tc.reason {
				t.Fatalf("err = %v, want forbidden (%s)", err, tc.reason)
			}
			if sendkey.MaySend(tc.sender, tc.target) {
				t.Fatal("MaySend disagrees with CheckSend")
			}
		})
	}
}

func TestSenders(t *testing.T) {
	members := []tenant.User{
		user("oa", tenant.OrgAdmin), user("oa2", tenant.OrgAdmin), user("pu", tenant.ProUser),
		user("sa", tenant.SiteAdmin, "s1"), user("sa2", tenant.SiteAdmin, "s2"),
		user("su1", tenant.SiteUser, "s1"), user("su9", tenant.SiteUser, "s9"),
	}
	ids := func(us []tenant.User) []string {
		var out []string
		for _, u := range us {
			out = append(out, u.ID)
		}
		return out
	}
	for _, tc := range []struct {
		target string
		want   []string
	}{
		{"pu", []string{"oa", "oa2"}},
		{"oa", []string{"oa2"}}, // never the requester
		{"su1", []string{"sa"}},
		{"sa", nil}, // no other admin of s1
		{"su9", nil},
	} {
		i := slices.IndexFunc(members, func(u tenant.User) bool { return u.ID == tc.target })
		if got := ids(sendkey.Senders(members, members[i])); !slices.Equal(got, tc.want) {
			t.Errorf("Senders(%s) = %v, want %v", tc.target, got, tc.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	ok := sendkey.Config{Common: lambdamain.Common{TableName: "t", KMSKeyID: "k", MailFrom: "a@b", AppURL: "https://vault.example.test"},
		ClaimTTLHours: 72, SendRateLimit: 30, RequestRateLimit: 3, UserPoolID: "eu-west-3_x", ClientID: "c", Region: "eu-west-3"}
	if got := ok.PageConfig().CognitoEndpoint; got != "https://cognito-idp.eu-west-3.amazonaws.com/" {
		t.Errorf("page endpoint %q", got)
	}
	if local := (sendkey.Config{CognitoEndpoint: "http://127.0.0.1:9229"}); local.PageConfig().CognitoEndpoint != "http://127.0.0.1:9229/" {
		t.Errorf("the SDK's endpoint setting is not the page's")
	}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config refused: %v", err)
	}
	for _, tc := range []struct {
		name, want string
		mutate     func(*sendkey.Config)
	}{
		{"relative app URL", "APP_URL", func(c *sendkey.Config) { c.AppURL = "/app" }},
		{"app URL with query", "APP_URL", func(c *sendkey.Config) { c.AppURL = "https://x.test/?a=b" }},
		{"claim base URL not http", "CLAIM_BASE_URL", func(c *sendkey.Config) { c.ClaimBaseURL = "javascript:alert(1)" }},
		{"ttl zero", "CLAIM_TTL_HOURS", func(c *sendkey.Config) { c.ClaimTTLHours = 0 }},
		{"ttl huge", "CLAIM_TTL_HOURS", func(c *sendkey.Config) { c.ClaimTTLHours = 10000 }},
		{"send limit zero", "SEND_RATE_LIMIT_PER_HOUR", func(c *sendkey.Config) { c.SendRateLimit = 0 }},
		{"request limit negative", "REQUEST_RATE_LIMIT_PER_HOUR", func(c *sendkey.Config) { c.RequestRateLimit = -1 }},
		{"no region for the page's Cognito", "AWS_REGION", func(c *sendkey.Config) { c.Region = "" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok
			tc.mutate(&c)
			err := c.Validate()
			if err == nil || !contains(err.Error(), tc.want) {
				t.Fatalf("Validate = %v, want an error naming %s", err, tc.want)
			}
		})
	}
}
