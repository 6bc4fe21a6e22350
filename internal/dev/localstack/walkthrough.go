package localstack

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"

	"github.com/mspvault/orgkey/internal/dev/emulators"
	"github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
)

// DemoPassword satisfies the template's password policy.
const DemoPassword = "Demo-Passw0rd-2026!"

// The walkthrough's cast.
var (
	demoCreator   = Person{Email: "camille.martin@example.com", Name: "Camille Martin", Locale: "fr-FR", Company: "Infogérance Martin SARL", Password: DemoPassword}
	demoProUser   = Person{Email: "hugo.bernard@example.com", Name: "Hugo Bernard", Locale: "fr-FR", Password: DemoPassword}
	demoSiteAdmin = Person{Email: "lea.dubois@example.com", Name: "Léa Dubois", Locale: "fr-FR", Password: DemoPassword}
	demoSiteUser  = Person{Email: "noah.petit@example.com", Name: "Noah Petit", Locale: "en", Password: DemoPassword}
)

// claimLink finds a claim link in a mail.
var claimLink = regexp.MustCompile(`https?://[^\s"'<>?#]+/org-key/claim#token=[A-Za-z0-9_-]+`)

// resetConfirmLink finds a support reset's confirmation link in a mail.
var resetConfirmLink = regexp.MustCompile(`https?://[^\s"'<>?#]+` + regexp.QuoteMeta(mail.ResetConfirmPath) + `#token=[A-Za-z0-9_-]+`)

// ResetConfirmLink returns the reset confirmation link a mail carries, or "".
func ResetConfirmLink(m emulators.Email) string {
	if l := resetConfirmLink.FindString(m.Text); l != "" {
		return l
	}
	return strings.ReplaceAll(resetConfirmLink.FindString(m.HTML), "&amp;", "&")
}

// ClaimLink returns the claim link a mail carries, or "".
func ClaimLink(m emulators.Email) string {
	if l := claimLink.FindString(m.Text); l != "" {
		return l
	}
	return strings.ReplaceAll(claimLink.FindString(m.HTML), "&amp;", "&")
}

// Walkthrough shows the product with real calls against a running stack,
// printing each step: a company signs up, its creator signs in and reveals
// the key, members are added, the key is sent to each allowed target (and
// refused once), a claim link sets the cookie, and support resets the key: the
// reset scheduled, its kept admin's confirmation by its POST, the run the template's
// schedule starts, the new key's mail and the pool left with one account.
func Walkthrough(ctx context.Context, w io.Writer, c *Client) error {
	p := &printer{w: w}

	p.step("1. A company signs up (Cognito SignUp, then ConfirmSignUp: the PostConfirmation trigger runs ActivationEmailFunction)")
	sub, err := c.SignUp(ctx, demoCreator)
	if err != nil {
		return err
	}
	p.say("SignUp %s (%s, %s, custom:company_name=%q) -> sub %s", demoCreator.Email, demoCreator.Name, demoCreator.Locale, demoCreator.Company, sub)
	code, err := c.ConfirmationCode(ctx, demoCreator.Email)
	if err != nil {
		return err
	}
	p.say("confirmation code cognito-local \"delivered\" (on its console, %s): %s", c.CognitoLog, code)
	if err := c.ConfirmSignUp(ctx, demoCreator.Email, code); err != nil {
		return err
	}
	tid, err := c.TenantOf(ctx, sub)
	if err != nil {
		return err
	}
	org, err := c.Store.GetOrg(ctx, tid)
	if err != nil {
		return err
	}
	p.say("ConfirmSignUp -> organization %s %q created, key version %d, %s is its org admin", org.ID, org.Name, org.KeyVersion, demoCreator.Email)
	mails, err := c.WaitEmails(ctx, demoCreator.Email, 1)
	if err != nil {
		return err
	}
	p.mail(mails[0])

	p.step("2. " + demoCreator.Name + " signs in (InitiateAuth USER_PASSWORD_AUTH on cognito-local)")
	camille, err := c.SignIn(ctx, demoCreator.Email, demoCreator.Password)
	if err != nil {
		return err
	}
	p.say("access token %s... (%d bytes); claims: %s", camille.Access[:24], len(camille.Access), tokenSummary(camille.Access))

	p.step("3. She shows the organization key: POST /org-key/reveal (JWT authorizer, step-up on auth_time)")
	resp, err := c.API(ctx, http.MethodPost, "/org-key/reveal", camille.Access, nil)
	if err != nil {
		return err
	}
	p.response(resp, "Cache-Control")
	var revealed struct {
		OrgKey     string `json:"orgKey"`
		KeyVersion int    `json:"keyVersion"`
	}
	json.Unmarshal(resp.Body, &revealed)
	p.say("the key in the activation mail is the same: %v", revealed.OrgKey != "" && strings.Contains(mails[0].Text, revealed.OrgKey))
	resp, err = c.API(ctx, http.MethodPost, "/org-key/reveal", "", nil)
	if err != nil {
		return err
	}
	p.say("without a token:")
	p.response(resp)

	p.step("4. The admin UI adds a site and three members (AdminCreateUser, no PostConfirmation; role and sites in the table)")
	site, err := c.AddSite(ctx, tid, "site_lyon", "Cabinet Dupont (Lyon)")
	if err != nil {
		return err
	}
	p.say("site %s %q", site.ID, site.Name)
	hugo, err := c.Invite(ctx, tid, demoProUser, tenant.ProUser)
	if err != nil {
		return err
	}
	lea, err := c.Invite(ctx, tid, demoSiteAdmin, tenant.SiteAdmin, site.ID)
	if err != nil {
		return err
	}
	noah, err := c.Invite(ctx, tid, demoSiteUser, tenant.SiteUser, site.ID)
	if err != nil {
		return err
	}
	for _, u := range []tenant.User{hugo, lea, noah} {
		p.say("%-10s %-26s %s sites=%v", u.Role, u.Email, u.ID, u.Sites)
	}
	items := make([]store.VaultItem, 12)
	for i := range items {
		items[i] = store.VaultItem{TenantID: tid, ID: fmt.Sprintf("item_%02d", i), Data: []byte("ciphertext under the org key")}
	}
	if err := c.Store.PutVaultItems(ctx, items); err != nil {
		return err
	}
	p.say("and %d vault items (passwords) encrypted under the key", len(items))

	p.step("5. Sending the key: POST /org-key/send")
	p.say("%s (org admin) -> %s (pro user):", demoCreator.Name, demoProUser.Name)
	if resp, err = c.API(ctx, http.MethodPost, "/org-key/send", camille.Access, map[string]string{"email": demoProUser.Email}); err != nil {
		return err
	}
	p.response(resp)
	leaTokens, err := c.SignIn(ctx, demoSiteAdmin.Email, demoSiteAdmin.Password)
	if err != nil {
		return err
	}
	p.say("%s (site admin of %s) signs in -> %s (site user of %s):", demoSiteAdmin.Name, site.ID, demoSiteUser.Name, site.ID)
	if resp, err = c.API(ctx, http.MethodPost, "/org-key/send", leaTokens.Access, map[string]string{"userId": noah.ID}); err != nil {
		return err
	}
	p.response(resp)
	p.say("refused: %s (org admin) -> %s (site user; org admins send only to pro users):", demoCreator.Name, demoSiteUser.Name)
	if resp, err = c.API(ctx, http.MethodPost, "/org-key/send", camille.Access, map[string]string{"email": demoSiteUser.Email}); err != nil {
		return err
	}
	p.response(resp)

	p.step("6. A mail scanner opens " + demoProUser.Name + "'s claim link before he does (HEAD, GET as Safe Links, the page's button without a session)")
	hugoMails, err := c.WaitEmails(ctx, demoProUser.Email, 1)
	if err != nil {
		return err
	}
	p.mail(hugoMails[0])
	link := ClaimLink(hugoMails[0])
	if link == "" {
		return fmt.Errorf("no claim link in the mail to %s", demoProUser.Email)
	}
	page := LinkPage(link)
	p.say("the token is in the link's fragment: the requests below are for %s", page)
	if resp, err = c.Fetch(ctx, http.MethodHead, page, "curl/8.5.0"); err != nil {
		return err
	}
	p.say("HEAD -> %s, Set-Cookie: %d", resp.Status, len(resp.Header.Values("Set-Cookie")))
	if resp, err = c.Fetch(ctx, http.MethodGet, page, SafeLinksAgent); err != nil {
		return err
	}
	p.say("GET (User-Agent: ...Safe Links) -> %s, %s, %d bytes, Set-Cookie: %d", resp.Status, pageTitle(resp.Body), len(resp.Body), len(resp.Header.Values("Set-Cookie")))
	p.say("Content-Security-Policy: %s", cspWithoutHashes(resp.Header.Get("Content-Security-Policy")))
	p.say("Referrer-Policy: %s, Cache-Control: %s", resp.Header.Get("Referrer-Policy"), resp.Header.Get("Cache-Control"))
	if resp, err = c.Claim(ctx, link, ""); err != nil {
		return err
	}
	p.say("POST /org-key/claim without a session (the scanner presses the button) -> %s %s", resp.Status, strings.TrimSpace(string(resp.Body)))
	p.say("%s (signed in, not the addressee) presses it:", demoSiteAdmin.Name)
	if resp, err = c.Claim(ctx, link, leaTokens.Access); err != nil {
		return err
	}
	p.say("POST /org-key/claim -> %s %s, Set-Cookie: %d", resp.Status, strings.TrimSpace(string(resp.Body)), len(resp.Header.Values("Set-Cookie")))
	state, err := c.LinkState(ctx, link)
	if err != nil {
		return err
	}
	p.say("the link after the scanner and the wrong user: %s", describeLink(state))

	p.step("7. " + demoProUser.Name + " opens the link in his browser, signs in on the page (USER_PASSWORD_AUTH) and presses the button")
	hugoTokens, err := c.SignIn(ctx, demoProUser.Email, demoProUser.Password)
	if err != nil {
		return err
	}
	p.say("InitiateAuth USER_PASSWORD_AUTH %s -> access token (%s)", demoProUser.Email, tokenSummary(hugoTokens.Access))
	if resp, err = c.Claim(ctx, link, hugoTokens.Access); err != nil {
		return err
	}
	p.say("POST /org-key/claim {\"token\":...} with his access token -> %s %s", resp.Status, strings.TrimSpace(string(resp.Body)))
	for _, sc := range resp.Header.Values("Set-Cookie") {
		p.say("Set-Cookie: %s", sc)
	}
	p.say("the cookie holds the key: %v", strings.Contains(strings.Join(resp.Header.Values("Set-Cookie"), ""), "="+revealed.OrgKey+";"))
	if resp, err = c.Claim(ctx, link, hugoTokens.Access); err != nil {
		return err
	}
	p.say("the same link again -> %s %s", resp.Status, strings.TrimSpace(string(resp.Body)))

	p.step("8. Support resets the key (aws lambda invoke --function-name SupportResetFunction on " + c.Endpoints.Lambda + ")")
	event := map[string]any{
		"tenantId": tid, "ticketId": "SUP-LOCAL-0001", "agent": "jeanne.dupont@support.mspvault.example",
		"verification": map[string]string{"method": "phone_callback",
			"reference": "Called back the number on file; caller answered the account security questions"},
		"confirmOrganizationName": org.Name, "keepAdminEmail": demoCreator.Email, "dryRun": true,
	}
	p.say("dry run (only counts):")
	inv, err := c.Invoke(ctx, "SupportResetFunction", event)
	if err != nil {
		return err
	}
	p.invocation(inv)
	// Noah is signed in before the reset: the reset deletes his account, and the
	// access token he holds stays a valid JWT until it expires.
	noahTokens, err := c.SignIn(ctx, demoSiteUser.Email, demoSiteUser.Password)
	if err != nil {
		return err
	}
	before, err := c.Emails(ctx, demoCreator.Email)
	if err != nil {
		return err
	}
	event["dryRun"] = false
	p.say("the reset, scheduled (nothing changes until the kept admin confirms):")
	if inv, err = c.Invoke(ctx, "SupportResetFunction", event); err != nil {
		return err
	}
	p.invocation(inv)
	if mails, err = c.WaitEmails(ctx, demoCreator.Email, len(before)+1); err != nil {
		return err
	}
	confirmMail := mails[len(mails)-1]
	p.mail(confirmMail)
	confirmLink := ResetConfirmLink(confirmMail)
	if confirmLink == "" {
		return fmt.Errorf("walkthrough: the reset's mail to %s holds no confirmation link", demoCreator.Email)
	}
	if resp, err = c.Fetch(ctx, http.MethodGet, LinkPage(confirmLink), "Mozilla/5.0"); err != nil {
		return err
	}
	p.say("GET %s (the page; changes nothing) -> %s", LinkPage(confirmLink), resp.Status)
	if resp, err = c.Claim(ctx, confirmLink, hugoTokens.Access); err != nil {
		return err
	}
	p.say("POST %s {\"token\":...} with %s's access token -> %s %s", mail.ResetConfirmPath, demoProUser.Name, resp.Status, strings.TrimSpace(string(resp.Body)))
	if resp, err = c.Claim(ctx, confirmLink, camille.Access); err != nil {
		return err
	}
	p.say("POST %s {\"token\":...} with %s's access token (the kept admin) -> %s %s", mail.ResetConfirmPath, demoCreator.Name, resp.Status, strings.TrimSpace(string(resp.Body)))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("walkthrough: the kept admin's confirmation answered %s", resp.Status)
	}
	p.say("the reset runs by itself: the template's schedule (SupportResetFunction RunDue) starts it once the cool-off " +
		"(ResetCoolOffHours, 0 here) is over, and resumes it until it completes; waiting for the new key's mail...")
	if mails, err = c.WaitEmails(ctx, demoCreator.Email, len(before)+2); err != nil {
		return err
	}
	p.mail(mails[len(mails)-1])
	p.say("support's event again shows where the ticket stands:")
	if inv, err = c.Invoke(ctx, "SupportResetFunction", event); err != nil {
		return err
	}
	p.invocation(inv)
	noahMails, err := c.Emails(ctx, demoSiteUser.Email)
	if err == nil && len(noahMails) > 0 {
		if l := ClaimLink(noahMails[0]); l != "" {
			if resp, err = c.Claim(ctx, l, noahTokens.Access); err != nil {
				return err
			}
			p.say("%s's unused claim link after the reset, with the token he held -> %s", demoSiteUser.Name, resp.Status)
		}
	}
	if _, err := c.SignIn(ctx, demoSiteUser.Email, demoSiteUser.Password); err != nil {
		p.say("%s signs in after the reset -> refused: the reset deleted his Cognito account", demoSiteUser.Name)
	} else {
		return fmt.Errorf("walkthrough: %s still signs in after the reset", demoSiteUser.Email)
	}
	pool, err := c.Cognito.ListUsers(ctx, &cip.ListUsersInput{UserPoolId: aws.String(c.Endpoints.UserPoolID)})
	if err != nil {
		return err
	}
	var left []string
	for _, u := range pool.Users {
		for _, a := range u.Attributes {
			if aws.ToString(a.Name) == "email" {
				left = append(left, aws.ToString(a.Value))
			}
		}
	}
	p.say("the user pool after the reset holds %d account(s): %s", len(left), strings.Join(left, ", "))
	p.say("a reset without the organization's name typed back:")
	event["confirmOrganizationName"] = "wrong name"
	event["ticketId"] = "SUP-LOCAL-0002"
	if inv, err = c.Invoke(ctx, "SupportResetFunction", event); err != nil {
		return err
	}
	p.invocation(inv)

	p.step("done: every mail is in the SES viewer at " + c.SESViewer)
	return nil
}

type printer struct{ w io.Writer }

func (p *printer) step(s string) { fmt.Fprintf(p.w, "\n== %s\n", s) }

func (p *printer) say(format string, args ...any) {
	fmt.Fprintf(p.w, "   "+format+"\n", args...)
}

func (p *printer) mail(m emulators.Email) {
	p.say("mail %q from %s to %s:", m.Subject, m.From, strings.Join(m.To, ", "))
	for _, l := range strings.Split(strings.TrimRight(m.Text, "\n"), "\n") {
		p.say("  | %s", l)
	}
}

func (p *printer) response(r *Response, headers ...string) {
	line := r.Status
	for _, h := range headers {
		line += ", " + h + ": " + r.Header.Get(h)
	}
	p.say("-> %s %s", line, compact(r.Body))
}

func (p *printer) invocation(inv Invocation) {
	if inv.FunctionError != "" {
		p.say("-> X-Amz-Function-Error: %s %s", inv.FunctionError, compact(inv.Payload))
		return
	}
	var out bytes.Buffer
	if json.Indent(&out, inv.Payload, "      ", "  ") != nil {
		p.say("-> %s", inv.Payload)
		return
	}
	p.say("-> %s", out.String())
}

func compact(b []byte) string {
	var out bytes.Buffer
	if json.Compact(&out, b) == nil {
		return out.String()
	}
	if t := pageTitle(b); t != "" {
		return "(page: " + t + ")"
	}
	return string(b)
}

var titleRE = regexp.MustCompile(`<title>([^<]*)</title>`)

func pageTitle(b []byte) string {
	if m := titleRE.FindSubmatch(b); m != nil {
		return string(m[1])
	}
	return ""
}

// tokenSummary shows the claims that matter to the API's authorizer.
func tokenSummary(jwt string) string {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return "?"
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return "?"
	}
	var c map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if dec.Decode(&c) != nil {
		return "?"
	}
	return fmt.Sprintf("iss=%v client_id=%v token_use=%v auth_time=%v", c["iss"], c["client_id"], c["token_use"], c["auth_time"])
}

// cspWithoutHashes shortens the script and style hashes of a CSP for display.
func cspWithoutHashes(csp string) string {
	return regexp.MustCompile(`'sha256-[A-Za-z0-9+/=]+'`).ReplaceAllString(csp, "'sha256-…'")
}
