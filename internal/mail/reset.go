package mail

import (
	"strconv"

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
