package mail

import (
	"strconv"
	"strings"
	"time"

	"github.com/mspvault/orgkey/internal/orgkey"
)

// ClaimPath is the HTTP API route a claim link opens (GET: the page) and the page
// spends it at (POST).
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

// ClaimURL is the link a claim token travels in. The token is in the fragment, which
// a browser keeps to itself: the GET that loads the page does not carry it, so neither
// API Gateway's access log nor a proxy nor a Referer ever sees it. (A token is
// base64url: nothing in it needs escaping.)
func ClaimURL(base string, t orgkey.ClaimToken) string {
	return strings.TrimRight(base, "/") + ClaimPath + "#token=" + t.Reveal()
}

// ClaimRevoked is what the mail to the admin who sent a link says when other users'
// attempts to spend it revoked it.
type ClaimRevoked struct {
	AdminName   string // the recipient; may be empty
	TargetName  string // may be empty
	TargetEmail string // may be empty
	Attempts    int
	SendURL     string // the web app's page that sends the key again
}

// ClaimRevokedMail renders that mail in the admin's language.
func ClaimRevokedMail(locale, to string, r ClaimRevoked) (Message, error) {
	return render("claimrevoked", locale, to, fields{
		"AdminName": r.AdminName, "TargetName": r.TargetName, "TargetEmail": r.TargetEmail,
		"Attempts": strconv.Itoa(r.Attempts), "SendURL": r.SendURL,
	})
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
