package mail

import "github.com/mspvault/orgkey/internal/orgkey"

// Activation is what the "Account activation complete" mail says.
type Activation struct {
	Name    string // the creator's name; may be empty
	Company string
	Key     orgkey.Key
	AppURL  string
}

// activationView is the template's view: the key's text is taken out of the Key only
// here, for the one mail that must carry it.
type activationView struct {
	Name, Company, OrgKey, AppURL string
}

// ActivationMail renders the activation mail in the creator's language.
func ActivationMail(locale, to string, a Activation) (Message, error) {
	return render("activation", locale, to, activationView{
		Name: a.Name, Company: a.Company, OrgKey: a.Key.Reveal(), AppURL: a.AppURL,
	})
}
