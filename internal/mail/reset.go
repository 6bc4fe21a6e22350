package mail

import (
	"strconv"
	"strings"
	"time"

	"github.com/mspvault/orgkey/internal/orgkey"
)

// Reset is what the "organization key replaced" mail says to the admin a support reset
// kept: the new key and what the reset deleted.
type Reset struct {
	Name       string // the admin's name; may be empty
	Company    string
	Key        orgkey.Key
	KeyVersion int
	TicketID   string
	Passwords  int
	Users      int
	Accounts   int // the users' sign-in accounts deleted
	Sites      int
	ClaimLinks int
	AppURL     string
}

// ResetMail renders the reset mail in the admin's language.
func ResetMail(locale, to string, r Reset) (Message, error) {
	return render("reset", locale, to, fields{
		"Name": r.Name, "Company": r.Company, "OrgKey": r.Key.Reveal(), "TicketID": r.TicketID, "AppURL": r.AppURL,
		"KeyVersion": strconv.Itoa(r.KeyVersion), "Passwords": strconv.Itoa(r.Passwords), "Users": strconv.Itoa(r.Users),
		"Accounts": strconv.Itoa(r.Accounts),
		"Sites":    strconv.Itoa(r.Sites), "Links": strconv.Itoa(r.ClaimLinks),
	})
}

// ResetConfirmPath is the route of a reset's confirmation link: GET, the page; POST,
// the kept admin's confirmation (their access token, the link's token in the body).
// It sits under ClaimPath's prefix, which the web app's origin forwards to the API.
const ResetConfirmPath = ClaimPath + "/reset-confirm"

// ResetCancelPath is the route an org admin's signed-in browser cancels a scheduled
// reset at (POST, their access token, the ticket in the body).
const ResetCancelPath = ClaimPath + "/reset-cancel"

// ResetConfirm is what the mail asking the kept admin to confirm a scheduled reset
// says: who asked (the ticket), what it would delete, until when, and the link. It
// carries the link's token, never a key.
type ResetConfirm struct {
	Name       string // the admin's name; may be empty
	Company    string
	TicketID   string
	BaseURL    string // scheme and host the confirmation route is served on
	Token      orgkey.ClaimToken
	ConfirmBy  time.Time
	Passwords  int
	Users      int
	Sites      int
	ClaimLinks int
}

// ResetConfirmURL is the confirmation link: the token in the fragment, as in a claim
// link (ClaimURL), so that no request line or log carries it.
func ResetConfirmURL(base string, t orgkey.ClaimToken) string {
	return strings.TrimRight(base, "/") + ResetConfirmPath + "#token=" + t.Reveal()
}

// ResetConfirmMail renders the confirmation mail in the admin's language.
func ResetConfirmMail(locale, to string, r ResetConfirm) (Message, error) {
	return render("resetconfirm", locale, to, fields{
		"Name": r.Name, "Company": r.Company, "TicketID": r.TicketID, "ConfirmURL": ResetConfirmURL(r.BaseURL, r.Token),
		"ConfirmBy": r.ConfirmBy.UTC().Format("2006-01-02 15:04 MST"),
		"Passwords": strconv.Itoa(r.Passwords), "Users": strconv.Itoa(r.Users), "Sites": strconv.Itoa(r.Sites),
		"Links": strconv.Itoa(r.ClaimLinks),
	})
}

// ResetNotice is what every other org admin of the organization is told when support
// schedules a reset: the ticket, whom it keeps, what it would delete, until when it
// waits for the confirmation and the cool-off after it, and how to cancel. No link
// token, no key.
type ResetNotice struct {
	Name       string // the recipient's name; may be empty
	Company    string
	TicketID   string
	KeptAdmin  string // the kept admin's email
	ConfirmBy  time.Time
	CoolOff    time.Duration
	Passwords  int
	Users      int
	Sites      int
	ClaimLinks int
	AppURL     string
}

// ResetNoticeMail renders the notice in the recipient's language.
func ResetNoticeMail(locale, to string, r ResetNotice) (Message, error) {
	return render("resetnotice", locale, to, fields{
		"Name": r.Name, "Company": r.Company, "TicketID": r.TicketID, "KeptAdmin": r.KeptAdmin,
		"ConfirmBy": r.ConfirmBy.UTC().Format("2006-01-02 15:04 MST"),
		"CoolOff":   strconv.Itoa(int(r.CoolOff/time.Hour)) + " h",
		"Passwords": strconv.Itoa(r.Passwords), "Users": strconv.Itoa(r.Users), "Sites": strconv.Itoa(r.Sites),
		"Links": strconv.Itoa(r.ClaimLinks), "AppURL": r.AppURL,
	})
}
