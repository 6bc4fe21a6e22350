// Package claimpage owns the pages a mailed link opens: a claim link's (GET and HEAD
// /org-key/claim) and a support reset's confirmation (/org-key/claim/reset-confirm):
// their HTML in French and English, their one script, and the headers that lock them
// down. A page changes nothing by itself: it signs the link's addressee in against the
// user pool when the browser has no session, and POSTs the link's token to its own
// path only when that person presses its button.
//
// The script is src/claim.js with amazon-cognito-identity-js, bundled by esbuild (both
// pinned in package.json) into claim.bundle.js, which is committed so that a fresh
// clone builds without npm; `make claimpage` regenerates it and a test checks that
// rebuilding reproduces the committed bytes. The bundle is inlined in the page and
// allowed by its hash in the Content-Security-Policy, so the page loads nothing from
// anywhere: no other route, no CDN.
package claimpage

import (
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"html"
	"net/url"
	"strings"
)

//go:embed claim.bundle.js
var bundle string

// style is the page's only style sheet, inline and allowed by its hash.
const style = `body{font-family:sans-serif;line-height:1.5;max-width:36em;margin:3em auto;padding:0 1em}` +
	`label{display:block;margin:.5em 0}input{font:inherit;width:100%;box-sizing:border-box}` +
	`button{font:inherit;margin:.5em .5em .5em 0}#status{font-weight:bold}`

var (
	scriptHash = hashOf(bundle)
	styleHash  = hashOf(style)
)

func hashOf(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// Config is what the page's script needs to sign a user in.
type Config struct {
	UserPoolID string
	ClientID   string
	// CognitoEndpoint is the user pool's API, e.g. https://cognito-idp.eu-west-1.amazonaws.com/
	// (the only origin the page may connect to besides its own).
	CognitoEndpoint string
}

// Endpoint is the Cognito API the page calls: override when set (the SDK's
// AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER, which the functions also honour), else
// the region's public endpoint.
func Endpoint(override, region string) string {
	if override != "" {
		return strings.TrimRight(override, "/") + "/"
	}
	if region == "" {
		return ""
	}
	return "https://cognito-idp." + region + ".amazonaws.com/"
}

// origin is scheme://host of an endpoint, for connect-src; "" when it is not one.
func origin(endpoint string) string {
	u, err := url.Parse(endpoint)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" ||
		strings.ContainsAny(u.Host, " ;,'\"") {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Headers are the page's headers: nothing cached or sent as a referrer, no framing,
// only the inline script and style of this page, connections only to this origin
// and the user pool, and no form may navigate anywhere (a scanner that submits a
// form natively goes nowhere; the script handles them).
func Headers(cfg Config) map[string]string {
	connect := "'self'"
	if o := origin(cfg.CognitoEndpoint); o != "" {
		connect += " " + o
	}
	return map[string]string{
		"Content-Type":  "text/html; charset=utf-8",
		"Cache-Control": "no-store",
		"Pragma":        "no-cache",
		"Content-Security-Policy": "default-src 'none'; script-src " + scriptHash + "; style-src " + styleHash +
			"; connect-src " + connect + "; img-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
		"Referrer-Policy":        "no-referrer",
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
	}
}

// Language picks fr or en from an Accept-Language header: the first of the two by
// the header's order and weights; en when it names neither.
func Language(acceptLanguage string) string {
	best, bestQ := "en", -1.0
	for i, part := range strings.Split(acceptLanguage, ",") {
		if i >= 32 { // a header is a few tags; do not walk a hostile one
			break
		}
		tag, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		q := 1.0
		if v, ok := strings.CutPrefix(strings.TrimSpace(params), "q="); ok {
			q = parseQ(v)
		}
		primary, _, _ := strings.Cut(strings.ToLower(strings.TrimSpace(tag)), "-")
		if (primary == "fr" || primary == "en") && q > 0 && q > bestQ {
			best, bestQ = primary, q
		}
	}
	return best
}

// parseQ reads a quality value (0, 1, 0.x up to three decimals); anything else is 0.
func parseQ(s string) float64 {
	switch {
	case s == "1" || strings.HasPrefix(s, "1."):
		return 1
	case s == "0":
		return 0
	case strings.HasPrefix(s, "0.") && len(s) <= 5:
		q, scale := 0.0, 0.1
		for _, r := range s[2:] {
			if r < '0' || r > '9' {
				return 0
			}
			q += float64(r-'0') * scale
			scale /= 10
		}
		return q
	}
	return 0
}

// Kinds of page: a claim link's, and a support reset's confirmation. The script
// reads the kind from the body's data-kind.
const (
	KindClaim        = "claim"
	KindResetConfirm = "reset-confirm"
)

// texts are a page's words: the sign-in's, shared, and each kind's own.
type texts struct {
	email, password, signIn, newPassword, setPassword, code, verify, signOut, noScript string
}

type kindTexts struct {
	title, heading, intro, act string
}

var byLang = map[string]texts{
	"en": {
		email: "Email", password: "Password", signIn: "Sign in",
		newPassword: "New password", setPassword: "Set the password",
		code: "Code", verify: "Verify", signOut: "Sign out",
		noScript: "This page needs JavaScript to sign you in.",
	},
	"fr": {
		email: "Adresse e-mail", password: "Mot de passe", signIn: "Se connecter",
		newPassword: "Nouveau mot de passe", setPassword: "Enregistrer le mot de passe",
		code: "Code", verify: "Vérifier", signOut: "Se déconnecter",
		noScript: "Cette page a besoin de JavaScript pour vous connecter.",
	},
}

var byKind = map[string]map[string]kindTexts{
	KindClaim: {
		"en": {
			title:   "Store the organization key",
			heading: "Store the organization key in this browser",
			intro: "Use this page in the browser you use for the password vault. Sign in as the person this link was sent to, " +
				"then press “Store the key in this browser”. Nothing happens until you do.",
			act: "Store the key in this browser",
		},
		"fr": {
			title:   "Enregistrer la clé d'organisation",
			heading: "Enregistrer la clé d'organisation dans ce navigateur",
			intro: "Utilisez cette page dans le navigateur de votre coffre de mots de passe. Connectez-vous en tant que destinataire " +
				"de ce lien, puis appuyez sur « Enregistrer la clé dans ce navigateur ». Rien ne se passe avant.",
			act: "Enregistrer la clé dans ce navigateur",
		},
	},
	KindResetConfirm: {
		"en": {
			title:   "Confirm the reset of the organization key",
			heading: "Confirm the reset of the organization key",
			intro: "Support was asked to reset your organization's key; the mail that brought you here says what it deletes. " +
				"Sign in as the administrator it was sent to, then press “Confirm the reset”. Nothing happens until you do; " +
				"if you did not ask for it, close this page and contact support.",
			act: "Confirm the reset",
		},
		"fr": {
			title:   "Confirmer la réinitialisation de la clé d'organisation",
			heading: "Confirmer la réinitialisation de la clé d'organisation",
			intro: "Le support a été sollicité pour réinitialiser la clé de votre organisation ; le courriel qui vous a mené ici " +
				"indique ce qu'elle supprime. Connectez-vous en tant que l'administrateur à qui il a été envoyé, puis appuyez sur " +
				"« Confirmer la réinitialisation ». Rien ne se passe avant ; si vous ne l'avez pas demandée, fermez cette page " +
				"et contactez le support.",
			act: "Confirmer la réinitialisation",
		},
	},
}

// Page is the claim page in lang (fr or en; anything else is en). It holds no secret:
// the link's token stays in the browser's URL fragment.
func Page(lang string, cfg Config) string { return KindPage(KindClaim, lang, cfg) }

// KindPage is the page of a kind of mailed link (KindClaim, KindResetConfirm; any
// other is KindClaim) in lang: the same markup, script and headers, its own words.
func KindPage(kind, lang string, cfg Config) string {
	t, ok := byLang[lang]
	if !ok {
		lang, t = "en", byLang["en"]
	}
	words, ok := byKind[kind]
	if !ok {
		kind, words = KindClaim, byKind[KindClaim]
	}
	k := words[lang]
	e := html.EscapeString
	var b strings.Builder
	b.Grow(len(bundle) + 4096)
	b.WriteString(`<!doctype html>
<html lang="` + lang + `"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer"><meta name="robots" content="noindex, nofollow">
<title>` + e(k.title) + `</title><style>` + style + `</style></head>
<body data-kind="` + e(kind) + `" data-pool="` + e(cfg.UserPoolID) + `" data-client="` + e(cfg.ClientID) + `" data-endpoint="` + e(cfg.CognitoEndpoint) + `">
<main>
<h1>` + e(k.heading) + `</h1>
<p>` + e(k.intro) + `</p>
<p id="status" role="status"></p>
<noscript><p>` + e(t.noScript) + `</p></noscript>
<form id="signin" hidden>
<label>` + e(t.email) + ` <input id="email" type="email" autocomplete="username" required></label>
<label>` + e(t.password) + ` <input id="password" type="password" autocomplete="current-password" required></label>
<button type="submit">` + e(t.signIn) + `</button>
</form>
<form id="newpassword" hidden>
<label>` + e(t.newPassword) + ` <input id="new-password" type="password" autocomplete="new-password" required></label>
<button type="submit">` + e(t.setPassword) + `</button>
</form>
<form id="totp" hidden>
<label>` + e(t.code) + ` <input id="code" inputmode="numeric" autocomplete="one-time-code" required></label>
<button type="submit">` + e(t.verify) + `</button>
</form>
<div id="claim" hidden>
<button id="store" type="button">` + e(k.act) + `</button>
<button id="signout" type="button">` + e(t.signOut) + `</button>
</div>
</main>
<script>`)
	b.WriteString(bundle)
	b.WriteString("</script>\n</body></html>\n")
	return b.String()
}
