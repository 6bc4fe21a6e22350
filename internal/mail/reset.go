package mail

import "github.com/mspvault/orgkey/internal/orgkey"

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
	Sites      int
	ClaimLinks int
	AppURL     string
}

type resetView struct {
	Name, Company, OrgKey, TicketID, AppURL    string
	KeyVersion, Passwords, Users, Sites, Links int
}

// ResetMail renders the reset mail in the admin's language.
func ResetMail(locale, to string, r Reset) (Message, error) {
	return render("reset", locale, to, resetView{
		Name: r.Name, Company: r.Company, OrgKey: r.Key.Reveal(), TicketID: r.TicketID, AppURL: r.AppURL,
		KeyVersion: r.KeyVersion, Passwords: r.Passwords, Users: r.Users, Sites: r.Sites, Links: r.ClaimLinks,
	})
}
