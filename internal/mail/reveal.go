package mail

import "time"

// RevealNotice tells an org admin that someone was shown the organization key.
type RevealNotice struct {
	RecipientName string
	ViewerName    string
	ViewerEmail   string
	Company       string
	At            time.Time
	SourceIP      string
	AppURL        string
}

type revealView struct {
	RevealNotice
	When string
}

// RevealNoticeMail renders the notice in the recipient's language.
func RevealNoticeMail(locale, to string, n RevealNotice) (Message, error) {
	return render("reveal", locale, to, revealView{RevealNotice: n, When: n.At.UTC().Format("2006-01-02 15:04 MST")})
}
