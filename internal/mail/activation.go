package mail

import "github.com/mspvault/orgkey/internal/orgkey"

// Activation is what the "Account activation complete" mail says.
type Activation struct {
	Name    string // the creator's name; may be empty
	Company string
	Key     orgkey.Key
	AppURL  string
}

// ActivationMail renders the activation mail in the creator's language. The key's text
// is taken out of the Key only here, for the one mail that must carry it.
func ActivationMail(locale, to string, a Activation) (Message, error) {
	return render("activation", locale, to, fields{
		"Name": a.Name, "Company": a.Company, "OrgKey": a.Key.Reveal(), "AppURL": a.AppURL,
	})
}
