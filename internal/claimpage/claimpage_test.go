package claimpage

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestBundleReproducible rebuilds the script with the pinned esbuild and library
// (package.json, package-lock.json) and compares it with the committed bundle that
// the binary embeds: a change to src/claim.js or to the pins without `make claimpage`
// fails here.
func TestBundleReproducible(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "node_modules", ".bin", "esbuild")); err != nil {
		t.Fatalf("esbuild not installed (%v): run `make deps` (npm ci) first", err)
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		t.Fatal("npm not found: install Node.js 20 and npm (apt-get install -y nodejs npm)")
	}
	cmd := exec.CommandContext(t.Context(), npm, "run", "--silent", "claimpage")
	cmd.Dir = root
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("npm run claimpage: %v\n%s", err, stderr.String())
	}
	if string(out) != bundle {
		t.Fatalf("claim.bundle.js (%d bytes) differs from a rebuild (%d bytes): run `make claimpage` and commit the result", len(bundle), len(out))
	}
}

func TestPage(t *testing.T) {
	cfg := Config{UserPoolID: "eu-west-1_abc", ClientID: "client123", CognitoEndpoint: Endpoint("", "eu-west-1")}
	for _, lang := range []string{"en", "fr"} {
		p := Page(lang, cfg)
		if !strings.Contains(p, `<html lang="`+lang+`">`) {
			t.Errorf("%s: page does not declare its language", lang)
		}
		if !strings.Contains(p, `data-pool="eu-west-1_abc" data-client="client123" data-endpoint="https://cognito-idp.eu-west-1.amazonaws.com/"`) {
			t.Errorf("%s: page lacks its pool configuration", lang)
		}
		// Exactly one script and one style, both inline and both allowed by hash;
		// nothing loaded from anywhere.
		scripts := regexp.MustCompile(`(?s)<script>(.*?)</script>`).FindAllStringSubmatch(p, -1)
		if len(scripts) != 1 || hashOf(scripts[0][1]) != scriptHash {
			t.Errorf("%s: %d scripts, or the script does not match its CSP hash", lang, len(scripts))
		}
		if strings.Count(p, "<script") != 1 {
			t.Errorf("%s: a script tag inside the bundle would end the inline script early", lang)
		}
		styles := regexp.MustCompile(`(?s)<style>(.*?)</style>`).FindAllStringSubmatch(p, -1)
		if len(styles) != 1 || hashOf(styles[0][1]) != styleHash {
			t.Errorf("%s: the style does not match its CSP hash", lang)
		}
		for _, bad := range []string{"src=", "href=", "http://", "<link", "<img", "<iframe", "action="} {
			if strings.Contains(strings.ReplaceAll(p, bundle, ""), bad) {
				t.Errorf("%s: page markup holds %q", lang, bad)
			}
		}
	}
	if Page("de", cfg) != Page("en", cfg) {
		t.Error("an unknown language is not answered in English")
	}
	if p := Page("en", Config{UserPoolID: `"><script>x</script>`}); strings.Contains(p, `"><script>x`) {
		t.Error("configuration is not escaped")
	}
}

func TestHeaders(t *testing.T) {
	h := Headers(Config{CognitoEndpoint: "http://127.0.0.1:9229/"})
	csp := h["Content-Security-Policy"]
	for _, want := range []string{"default-src 'none'", "script-src " + scriptHash, "style-src " + styleHash,
		"connect-src 'self' http://127.0.0.1:9229;", "form-action 'none'", "frame-ancestors 'none'", "base-uri 'none'"} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
		t.Errorf("CSP %q allows unhashed code", csp)
	}
	if h["Referrer-Policy"] != "no-referrer" || h["Cache-Control"] != "no-store" || h["X-Frame-Options"] != "DENY" {
		t.Errorf("headers %v", h)
	}
	if c := Headers(Config{CognitoEndpoint: "https://x; script-src *"})["Content-Security-Policy"]; strings.Contains(c, "script-src *") {
		t.Errorf("a hostile endpoint reached the CSP: %q", c)
	}
}

func TestLanguage(t *testing.T) {
	for in, want := range map[string]string{
		"":                                "en",
		"fr-FR,fr;q=0.9,en-US;q=0.8":      "fr",
		"en-GB,en;q=0.9,fr;q=0.8":         "en",
		"de-DE,de;q=0.9,fr;q=0.7":         "fr",
		"de":                              "en",
		"en;q=0.2, fr;q=0.5":              "fr",
		"fr;q=0":                          "en",
		"FR-ca":                           "fr",
		strings.Repeat("de,", 100) + "fr": "en",
	} {
		if got := Language(in); got != want {
			t.Errorf("Language(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestResetConfirmPage: the confirmation page is the claim page's markup and script
// with its own kind and words, in both languages.
func TestResetConfirmPage(t *testing.T) {
	cfg := Config{UserPoolID: "eu-west-1_abc", ClientID: "client123"}
	for lang, act := range map[string]string{"en": "Confirm the reset", "fr": "Confirmer la réinitialisation"} {
		p := KindPage(KindResetConfirm, lang, cfg)
		if !strings.Contains(p, `data-kind="reset-confirm"`) || !strings.Contains(p, `<button id="store" type="button">`+act+`</button>`) {
			t.Errorf("%s: the confirmation page lacks its kind or its button", lang)
		}
		if strings.Contains(p, "Store the key") || strings.Contains(p, "Enregistrer la clé") {
			t.Errorf("%s: the confirmation page speaks of storing the key", lang)
		}
		if !strings.Contains(p, bundle) {
			t.Errorf("%s: the confirmation page does not run the shared script", lang)
		}
	}
	if KindPage("nonsense", "en", cfg) != Page("en", cfg) {
		t.Error("an unknown kind is not the claim page")
	}
	if !strings.Contains(Page("en", cfg), `data-kind="claim"`) {
		t.Error("the claim page does not say its kind")
	}
}
