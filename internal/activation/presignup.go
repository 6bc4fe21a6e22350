package activation

import (
	"context"
	"strings"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/tenant"
)

// PreSignUp is the check Cognito runs before it keeps an account: what it refuses
// never becomes a Cognito user, so a sign-up the activation would refuse cannot leave
// a confirmed account without an organization behind it. The same function serves
// the trigger (its own trigger sources), and PostConfirmation checks the same rules
// again, since an account can be confirmed by other paths (an administrator).

// Limits on sign-up attributes. The template's custom:company_name allows at most 128
// characters; a person's name needs no more. Cognito allows 2048 per attribute.
const (
	maxName   = 128
	maxEmail  = 254
	maxLocale = 35
	maxSub    = 128
)

// signUpKind is which sign-up a request is.
type signUpKind int

const (
	selfSignUp signUpKind = iota // a company signs up: company name and name required
	invitation                   // an administrator creates the account (AdminCreateUser)
)

// refusal is the text a sign-up form shows for a reason, in English and French.
// Cognito hands the message of the trigger's error to the client
// (UserLambdaValidationException: "PreSignUp failed with error <message>."), so it
// starts with the reason, for a form to show its own text, then says it plainly.
var refusals = map[string]struct{ en, fr string }{
	"missing_sub":          {"The account has no identifier.", "Le compte n'a pas d'identifiant."},
	"missing_email":        {"Enter your email address.", "Indiquez votre adresse e-mail."},
	"invalid_email":        {"This email address is not valid.", "Cette adresse e-mail n'est pas valide."},
	"email_taken":          {"An account already exists for this email address: sign in, or reset your password.", "Un compte existe déjà pour cette adresse e-mail : connectez-vous, ou réinitialisez votre mot de passe."},
	"missing_company_name": {"Enter your company's name.", "Indiquez le nom de votre entreprise."},
	"company_name_too_long": {"The company name is too long (128 characters at most).",
		"Le nom de l'entreprise est trop long (128 caractères au plus)."},
	"invalid_company_name": {"The company name contains invisible, control or private-use characters: type it again.",
		"Le nom de l'entreprise contient des caractères invisibles, de contrôle ou à usage privé : saisissez-le à nouveau."},
	"missing_name":  {"Enter your name.", "Indiquez votre nom."},
	"name_too_long": {"Your name is too long (128 characters at most).", "Votre nom est trop long (128 caractères au plus)."},
	"invalid_name": {"Your name contains invisible, control or private-use characters: type it again.",
		"Votre nom contient des caractères invisibles, de contrôle ou à usage privé : saisissez-le à nouveau."},
	"invalid_locale": {"The language setting is not valid.", "Le réglage de langue n'est pas valide."},
}

// refuse is a sign-up refused for its attributes (code invalid, the reason), with
// the English text as its message.
func refuse(reason string) error {
	return apperr.New(apperr.Invalid, reason, refusals[reason].en)
}

// UserMessage is what the signing-up user sees for a refusal: the reason, then the
// text in the user's language (French for an fr locale, English for another), or in
// both when the sign-up carries no locale.
func UserMessage(err error, locale string) string {
	reason := apperr.ReasonOf(err)
	r, ok := refusals[reason]
	if !ok {
		return "sign_up_refused: The sign-up was refused. / L'inscription a été refusée."
	}
	switch l := strings.ToLower(locale); {
	case strings.HasPrefix(l, "fr"):
		return reason + ": " + r.fr
	case l != "" && tenant.PlainText(l) && len(l) <= maxLocale:
		return reason + ": " + r.en
	}
	return reason + ": " + r.en + " / " + r.fr
}

// checked validates a request's attributes and returns them as they are stored:
// names normalised (tenant.NormalizeName). It is the one set of rules of PreSignUp
// and PostConfirmation.
func (r Request) checked(kind signUpKind) (Request, error) {
	switch {
	case r.Sub == "" || len(r.Sub) > maxSub || !tenant.PlainID(r.Sub):
		return r, refuse("missing_sub")
	case strings.TrimSpace(r.Email) == "":
		return r, refuse("missing_email")
	case len(r.Email) > maxEmail || !tenant.PlainEmail(r.Email) || tenant.NameProblem(r.Email) != "":
		return r, refuse("invalid_email")
	case len(r.Locale) > maxLocale || !tenant.PlainID(r.Locale):
		return r, refuse("invalid_locale")
	}
	company, err := checkName(r.Company, kind == selfSignUp, "company_name")
	if err != nil {
		return r, err
	}
	name, err := checkName(r.Name, kind == selfSignUp, "name")
	if err != nil {
		return r, err
	}
	r.Company, r.Name = company, name
	return r, nil
}

// checkName validates one name attribute (what names the reasons: "name",
// "company_name") and returns it normalised.
func checkName(v string, required bool, what string) (string, error) {
	// Invisible and control characters are refused before normalising, which would
	// otherwise fold some of them (a no-break space) into what they imitate.
	if tenant.NameProblem(v) != "" {
		return "", refuse("invalid_" + what)
	}
	n := tenant.NormalizeName(v)
	switch {
	case n == "" && required:
		return "", refuse("missing_" + what)
	case tenant.NameLength(n) > maxName:
		return "", refuse(what + "_too_long")
	}
	return n, nil
}

// CheckSignUp is the PreSignUp trigger's check: the attributes, then whether the
// email already holds a membership of any organization, case-insensitively (one
// read). Cognito keeps no account when it fails.
func (s *Service) CheckSignUp(ctx context.Context, req Request, kind signUpKind) error {
	req, err := req.checked(kind)
	if err != nil {
		return err
	}
	_, _, taken, err := s.Store.EmailHolder(ctx, req.Email)
	if err != nil {
		return err
	}
	if taken {
		return refuse("email_taken")
	}
	return nil
}
