package localstack

import (
	"context"
	"fmt"
	"net/http"
	"net/url"

	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/store"
)

// SafeLinksAgent is the user agent of Microsoft Defender for Office 365's Safe Links
// scanner as it shows in access logs: the scanner every MSP on Microsoft 365 has.
const SafeLinksAgent = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) " +
	"Chrome/120.0.0.0 Safari/537.36 Edg/120.0.0.0 Microsoft Office/16.0 Safe Links"

// LinkToken is the token a claim link carries in its fragment, or "".
func LinkToken(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return ""
	}
	q, err := url.ParseQuery(u.Fragment)
	if err != nil {
		return ""
	}
	return q.Get("token")
}

// LinkPage is the URL a browser requests for a claim link: the link without its
// fragment, which browsers keep to themselves.
func LinkPage(link string) string {
	u, err := url.Parse(link)
	if err != nil {
		return link
	}
	u.Fragment = ""
	return u.String()
}

// Fetch requests a URL as a mail scanner does: method and user agent of its own, no
// session, no body.
func (c *Client) Fetch(ctx context.Context, method, rawURL, userAgent string) (*Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, rawURL, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("User-Agent", userAgent)
	return c.do(req)
}

// Claim spends a claim link as the page's button does: POST to the link's page with
// the token in the JSON body, and the signed-in user's access token ("" for none).
func (c *Client) Claim(ctx context.Context, link, accessToken string) (*Response, error) {
	return c.API(ctx, http.MethodPost, LinkPage(link), accessToken, map[string]string{"token": LinkToken(link)})
}

// LinkState reads a claim link's stored state (the table holds its hash only).
func (c *Client) LinkState(ctx context.Context, link string) (store.Claim, error) {
	tok, err := orgkey.ParseClaim(LinkToken(link))
	if err != nil {
		return store.Claim{}, fmt.Errorf("claim link: %w", err)
	}
	return c.Store.GetClaim(ctx, tok.Hash())
}

// describeLink says whether a stored link is live, for the walkthrough.
func describeLink(cl store.Claim) string {
	switch {
	case !cl.UsedAt.IsZero():
		return "spent at " + cl.UsedAt.UTC().Format("15:04:05")
	case !cl.RevokedAt.IsZero():
		return "revoked"
	}
	return fmt.Sprintf("live (unspent, %d wrong-user attempts)", cl.Attempts)
}
