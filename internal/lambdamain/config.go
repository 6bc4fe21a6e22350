package lambdamain

import (
	"fmt"
	"net/mail"
	"net/url"

	"github.com/caarlos0/env/v11"
)

// Common is the configuration every function reads: the table, the KMS key, the mail
// sender and the web app. Each flow's Config embeds it and adds its own settings; the
// variable names are the ones template.yaml sets.
type Common struct {
	TableName string `env:"TABLE_NAME,required,notEmpty"`
	KMSKeyID  string `env:"KMS_KEY_ID,required,notEmpty"`
	MailFrom  string `env:"MAIL_FROM,required,notEmpty"`
	// AppURL is the web app's base URL, for the links in mails.
	AppURL string `env:"APP_URL,required,notEmpty"`
}

// Validate fails fast on values that parse but make no sense, naming the variable. The
// env tags already refuse missing variables; this also holds for a configuration built
// in code (the benchmark, the tests), which no tag checks.
func (c Common) Validate() error {
	switch {
	case c.TableName == "":
		return fmt.Errorf("TABLE_NAME: want the table's name")
	case c.KMSKeyID == "":
		return fmt.Errorf("KMS_KEY_ID: want the key's id, ARN or alias")
	case !plainAddress(c.MailFrom):
		return fmt.Errorf("MAIL_FROM %q: want a plain address such as no-reply@example.com", c.MailFrom)
	case !BaseURL(c.AppURL):
		return fmt.Errorf("APP_URL %q: want an absolute http(s) URL without query or fragment", c.AppURL)
	}
	return nil
}

// BaseURL reports whether s can prefix links: an absolute http(s) URL with a host and
// no user, query or fragment.
func BaseURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "https" || u.Scheme == "http") && u.Host != "" &&
		u.RawQuery == "" && u.Fragment == "" && u.User == nil
}

// plainAddress is template.yaml's pattern for MailFromAddress (one @, no spaces), and
// no display name: SES gets it as the From address as it is.
func plainAddress(s string) bool {
	a, err := mail.ParseAddress(s)
	return err == nil && a.Name == "" && a.Address == s
}

// Validator is a configuration that checks itself: every flow's Config, through the
// Common it embeds.
type Validator interface{ Validate() error }

// ParseEnv reads C from environ (KEY=value entries, as os.Environ returns them) by its
// env tags and validates it: what Run does at init, for a caller that runs a
// function's handler in its own process with the function's environment (the
// benchmark).
func ParseEnv[C Validator](environ []string) (C, error) {
	cfg, err := env.ParseAsWithOptions[C](env.Options{Environment: env.ToMap(environ)})
	if err == nil {
		err = cfg.Validate()
	}
	return cfg, err
}
