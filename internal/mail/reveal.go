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

// RevealNoticeMail renders the notice in the recipient's language.
func RevealNoticeMail(locale, to string, n RevealNotice) (Message, error) {
	return render("reveal", locale, to, fields{
		"RecipientName": n.RecipientName, "ViewerName": n.ViewerName, "ViewerEmail": n.ViewerEmail,
		"Company": n.Company, "When": n.At.UTC().Format("2006-01-02 15:04 MST"), "SourceIP": n.SourceIP, "AppURL": n.AppURL,
	})
}
