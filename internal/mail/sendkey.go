package mail

import (
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/mspvault/orgkey/internal/orgkey"
)

// ClaimPath is the HTTP API route a claim link opens.
const ClaimPath = "/org-key/claim"

// SendKey is what the "your organization key" mail says. It carries a one-time claim
// link, never the key.
type SendKey struct {
	Name         string // the recipient's name; may be empty
	SenderName   string // the admin who sent it; may be empty
	OrgName      string
	ClaimBaseURL string // scheme and host the claim route is served on, no trailing slash
	Token        orgkey.ClaimToken
	ExpiresAt    time.Time
}

// ClaimURL is the link a claim token travels in.
func ClaimURL(base string, t orgkey.ClaimToken) string {
	return strings.TrimRight(base, "/") + ClaimPath + "?token=" + url.QueryEscape(t.Reveal())
}

// SendKeyMail renders the claim-link mail in the recipient's language. The token's
// text leaves the ClaimToken only here.
func SendKeyMail(locale, to string, s SendKey, now time.Time) (Message, error) {
	return render("sendkey", locale, to, fields{
		"Name": s.Name, "SenderName": s.SenderName, "OrgName": s.OrgName,
		"ClaimURL": ClaimURL(s.ClaimBaseURL, s.Token),
		"Expires":  s.ExpiresAt.UTC().Format("2006-01-02 15:04 MST"),
		"Hours":    strconv.Itoa(int(s.ExpiresAt.Sub(now).Round(time.Hour) / time.Hour)),
	})
}

// KeyRequest is what the mail to an admin says when a user asks for the key.
type KeyRequest struct {
	AdminName      string // the recipient; may be empty
	RequesterName  string // may be empty
	RequesterEmail string
	OrgName        string
	SendURL        string // the web app's page that sends the key to the requester
}

// KeyRequestMail renders the request mail in the admin's language.
func KeyRequestMail(locale, to string, r KeyRequest) (Message, error) {
	return render("request", locale, to, fields{
		"AdminName": r.AdminName, "RequesterName": r.RequesterName, "RequesterEmail": r.RequesterEmail,
		"OrgName": r.OrgName, "SendURL": r.SendURL,
	})
}
