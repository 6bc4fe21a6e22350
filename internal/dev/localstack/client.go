package localstack

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	cip "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider"
	ciptypes "github.com/aws/aws-sdk-go-v2/service/cognitoidentityprovider/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/mspvault/orgkey/internal/dev/emulators"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
)

// Client drives a running stack from outside, as its users do: Cognito
// (sign-up, sign-in), the HTTP API, the Lambda endpoint, the mail the SES
// emulator received. Since the user administration UI is out of this
// service's scope, it also sets members' roles and sites in the table, as
// that UI would.
type Client struct {
	Endpoints
	HTTP    *http.Client
	Cognito *cip.Client
	Lambda  *lambda.Client
	Store   *store.Store
	ses     *emulators.Stack
}

// ReadEndpoints reads the state file a stack wrote (-state-file).
func ReadEndpoints(path string) (Endpoints, error) {
	var ep Endpoints
	b, err := os.ReadFile(path)
	if err != nil {
		return ep, err
	}
	if err := json.Unmarshal(b, &ep); err != nil {
		return ep, fmt.Errorf("read %s: %w", path, err)
	}
	return ep, nil
}

// NewClient returns a client of the stack at ep. It uses its own AWS
// configuration (dummy credentials, explicit endpoints), never the
// environment's.
func NewClient(ep Endpoints) *Client {
	cfg := aws.Config{
		Region:      ep.Region,
		Credentials: credentials.NewStaticCredentialsProvider("local", "local", ""),
	}
	return &Client{
		Endpoints: ep,
		// Claim links answer pages and cookies; never follow redirects, and
		// keep cookies out of a shared jar.
		HTTP: &http.Client{Timeout: 30 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		}},
		Cognito: cip.NewFromConfig(cfg, func(o *cip.Options) { o.BaseEndpoint = aws.String(ep.Cognito) }),
		Lambda: lambda.NewFromConfig(cfg, func(o *lambda.Options) {
			o.BaseEndpoint = aws.String(ep.Lambda)
			o.RetryMaxAttempts = 1
		}),
		Store: store.New(dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(ep.DynamoDB) }), ep.Table),
		ses:   &emulators.Stack{SES: ep.SES},
	}
}

// Person is someone with a Cognito account.
type Person struct {
	Email, Name, Locale, Company, Password string
	// Temporary makes Invite create the account with Password as its temporary
	// password (FORCE_CHANGE_PASSWORD: the first sign-in must choose a new one), as
	// an invitation does.
	Temporary bool
}

// SignUp signs a person up through the app client, as the sign-up page does.
func (c *Client) SignUp(ctx context.Context, p Person) (sub string, err error) {
	attrs := []ciptypes.AttributeType{
		{Name: aws.String("email"), Value: aws.String(p.Email)},
		{Name: aws.String("name"), Value: aws.String(p.Name)},
		{Name: aws.String("locale"), Value: aws.String(p.Locale)},
	}
	if p.Company != "" {
		attrs = append(attrs, ciptypes.AttributeType{Name: aws.String("custom:company_name"), Value: aws.String(p.Company)})
	}
	out, err := c.Cognito.SignUp(ctx, &cip.SignUpInput{
		ClientId: aws.String(c.ClientID), Username: aws.String(p.Email), Password: aws.String(p.Password),
		UserAttributes: attrs,
	})
	if err != nil {
		return "", fmt.Errorf("sign up %s: %w", p.Email, err)
	}
	return aws.ToString(out.UserSub), nil
}

// ConfirmationCode waits for the code cognito-local "delivered" to email
// (it shows codes on its console instead of mailing them; they are read
// from its database).
func (c *Client) ConfirmationCode(ctx context.Context, email string) (string, error) {
	for {
		codes, err := ConfirmationCodes(c.CognitoDir)
		if err == nil && codes[strings.ToLower(email)] != "" {
			return codes[strings.ToLower(email)], nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("no confirmation code for %s in %s: %w", email, c.CognitoDir, ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// ConfirmSignUp confirms a sign-up with its code; Cognito then runs the
// PostConfirmation trigger.
func (c *Client) ConfirmSignUp(ctx context.Context, email, code string) error {
	_, err := c.Cognito.ConfirmSignUp(ctx, &cip.ConfirmSignUpInput{
		ClientId: aws.String(c.ClientID), Username: aws.String(email), ConfirmationCode: aws.String(code),
	})
	if err != nil {
		return fmt.Errorf("confirm sign-up of %s: %w", email, err)
	}
	return nil
}

// Tokens are a sign-in's JWTs.
type Tokens struct {
	Access, ID, Refresh string
}

// SignIn signs in with a password (USER_PASSWORD_AUTH).
func (c *Client) SignIn(ctx context.Context, email, password string) (Tokens, error) {
	out, err := c.Cognito.InitiateAuth(ctx, &cip.InitiateAuthInput{
		ClientId: aws.String(c.ClientID), AuthFlow: ciptypes.AuthFlowTypeUserPasswordAuth,
		AuthParameters: map[string]string{"USERNAME": email, "PASSWORD": password},
	})
	if err != nil {
		return Tokens{}, fmt.Errorf("sign in %s: %w", email, err)
	}
	if out.AuthenticationResult == nil {
		return Tokens{}, fmt.Errorf("sign in %s: challenge %s instead of tokens", email, out.ChallengeName)
	}
	r := out.AuthenticationResult
	return Tokens{Access: aws.ToString(r.AccessToken), ID: aws.ToString(r.IdToken), Refresh: aws.ToString(r.RefreshToken)}, nil
}

// Invite creates a member of an organization the way the admin UI does: a
// Cognito account made by an administrator (AdminCreateUser, which does not
// run the PostConfirmation trigger, so no organization of their own), with
// a password set for the demo, and the member's role and sites in the
// table, keyed by the account's sub.
func (c *Client) Invite(ctx context.Context, tenantID string, p Person, role tenant.Role, sites ...string) (tenant.User, error) {
	var temporary *string
	if p.Temporary {
		temporary = aws.String(p.Password)
	}
	out, err := c.Cognito.AdminCreateUser(ctx, &cip.AdminCreateUserInput{
		UserPoolId: aws.String(c.UserPoolID), Username: aws.String(p.Email),
		MessageAction: ciptypes.MessageActionTypeSuppress, TemporaryPassword: temporary,
		UserAttributes: []ciptypes.AttributeType{
			{Name: aws.String("email"), Value: aws.String(p.Email)},
			{Name: aws.String("email_verified"), Value: aws.String("true")},
			{Name: aws.String("name"), Value: aws.String(p.Name)},
			{Name: aws.String("locale"), Value: aws.String(p.Locale)},
		},
	})
	if err != nil {
		return tenant.User{}, fmt.Errorf("create account %s: %w", p.Email, err)
	}
	sub := ""
	for _, a := range out.User.Attributes {
		if aws.ToString(a.Name) == "sub" {
			sub = aws.ToString(a.Value)
		}
	}
	if sub == "" {
		return tenant.User{}, fmt.Errorf("create account %s: no sub", p.Email)
	}
	if !p.Temporary {
		if _, err := c.Cognito.AdminSetUserPassword(ctx, &cip.AdminSetUserPasswordInput{
			UserPoolId: aws.String(c.UserPoolID), Username: out.User.Username,
			Password: aws.String(p.Password), Permanent: true,
		}); err != nil {
			return tenant.User{}, fmt.Errorf("set password of %s: %w", p.Email, err)
		}
	}
	locale := p.Locale
	if i := strings.IndexAny(locale, "-_"); i > 0 {
		locale = locale[:i]
	}
	u := tenant.User{ID: sub, TenantID: tenantID, Email: tenant.NormalizeEmail(p.Email), Name: p.Name,
		Locale: locale, Role: role, Sites: sites, CreatedAt: time.Now()}
	if err := c.Store.PutUser(ctx, u); err != nil {
		// A member of another organization (the table's uniqueness items): on AWS
		// the PreSignUp trigger refuses the account before it exists; cognito-local
		// runs no PreSignUp on AdminCreateUser, so the account it made goes again.
		if _, derr := c.Cognito.AdminDeleteUser(context.WithoutCancel(ctx), &cip.AdminDeleteUserInput{
			UserPoolId: aws.String(c.UserPoolID), Username: out.User.Username,
		}); derr != nil {
			err = errors.Join(err, fmt.Errorf("delete the account made for %s: %w", p.Email, derr))
		}
		return tenant.User{}, err
	}
	return u, nil
}

// AddSite creates a site of an organization (admin UI).
func (c *Client) AddSite(ctx context.Context, tenantID, id, name string) (tenant.Site, error) {
	s := tenant.Site{ID: id, TenantID: tenantID, Name: name}
	return s, c.Store.PutSite(ctx, s)
}

// TenantOf waits until the user with this sub belongs to an organization
// (the activation trigger creates it) and returns its id.
func (c *Client) TenantOf(ctx context.Context, sub string) (string, error) {
	for {
		tid, err := c.Store.TenantOfUser(ctx, sub)
		if err == nil {
			return tid, nil
		}
		select {
		case <-ctx.Done():
			return "", fmt.Errorf("user %s has no organization: %w", sub, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Response is an HTTP answer with its body read.
type Response struct {
	*http.Response
	Body []byte
}

// API calls the HTTP API; token is sent as a bearer token when not empty,
// body as JSON when not nil.
func (c *Client) API(ctx context.Context, method, path, token string, body any) (*Response, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	url := path
	if !strings.HasPrefix(path, "http") {
		url = c.Endpoints.API + path
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return c.do(req)
}

// do sends req and reads its answer (at most 1 MiB).
func (c *Client) do(req *http.Request) (*Response, error) {
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	return &Response{Response: resp, Body: b}, nil
}

// Invocation is a Lambda Invoke answer.
type Invocation struct {
	Payload       []byte
	FunctionError string // X-Amz-Function-Error: "Unhandled" on a function error
}

// Invoke calls a function through the Lambda endpoint with the AWS SDK, as
// `aws lambda invoke` does.
func (c *Client) Invoke(ctx context.Context, function string, payload any) (Invocation, error) {
	b, ok := payload.([]byte)
	if !ok {
		var err error
		if b, err = json.Marshal(payload); err != nil {
			return Invocation{}, err
		}
	}
	out, err := c.Lambda.Invoke(ctx, &lambda.InvokeInput{FunctionName: aws.String(function), Payload: b})
	if err != nil {
		return Invocation{}, fmt.Errorf("invoke %s: %w", function, err)
	}
	return Invocation{Payload: out.Payload, FunctionError: aws.ToString(out.FunctionError)}, nil
}

// Emails returns the mail the SES emulator holds for the address, oldest
// first.
func (c *Client) Emails(ctx context.Context, to string) ([]emulators.Email, error) {
	all, err := c.ses.Emails(ctx)
	if err != nil {
		return nil, err
	}
	var out []emulators.Email
	for _, m := range all {
		for _, x := range slices.Concat(m.To, m.CC, m.BCC) {
			if strings.EqualFold(x, to) || strings.HasSuffix(strings.ToLower(x), "<"+strings.ToLower(to)+">") {
				out = append(out, m)
				break
			}
		}
	}
	return out, nil
}

// WaitEmails waits until the address has received at least n mails (the
// walkthrough, which may run again on the same stack).
func (c *Client) WaitEmails(ctx context.Context, to string, n int) ([]emulators.Email, error) {
	return c.waitEmails(ctx, to, n, false)
}

// WaitExactEmails waits until the address has received n mails, and fails if it
// received more (the flows send their mails before they answer, so a mail more is
// one too many, not one early).
func (c *Client) WaitExactEmails(ctx context.Context, to string, n int) ([]emulators.Email, error) {
	return c.waitEmails(ctx, to, n, true)
}

func (c *Client) waitEmails(ctx context.Context, to string, n int, exact bool) ([]emulators.Email, error) {
	for {
		ms, err := c.Emails(ctx, to)
		if err == nil && exact && len(ms) > n {
			return ms, fmt.Errorf("want %d mail(s) to %s, have %d", n, to, len(ms))
		}
		if err == nil && len(ms) >= n {
			return ms, nil
		}
		select {
		case <-ctx.Done():
			return ms, errors.Join(fmt.Errorf("want %d mail(s) to %s, have %d: %w", n, to, len(ms), ctx.Err()), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}
