package adversarial_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

// keyShape finds anything that looks like an org key, known to the run or not.
var keyShape = regexp.MustCompile(orgkey.Prefix + `-[0-9A-Z]{4}(-[0-9A-Z]{4}){6}`)

// noLeakAnywhere runs after every test (from TestMain): every org key, claim token and
// JWT the run saw, against everything the run logged, answered and mailed.
//   - logs: none of them, ever;
//   - answers: a key only in reveal-key's 200 body and the claim page's 200 cookie, of
//     the caller's own organization (checked where they were made); never a token or
//     a JWT;
//   - mails: a key only in the mails a flow documents (activation, reset) to the
//     admin it was meant for; a token only in its target's mail; never a JWT.
//
// In a full run it fails when the suite captured nothing, since it would then have
// checked nothing.
func noLeakAnywhere(env *testenv.Env) error {
	c := capture
	c.mu.Lock()
	keys := slicesOf(c.keys)
	tokens := map[string][]string{}
	for k, v := range c.tokens {
		tokens[k] = v
	}
	mailedKey := c.mailedKey
	jwts := slices.Clone(c.jwts)
	responses := slices.Clone(c.responses)
	texts := slices.Clone(c.texts)
	scans := c.scans
	c.mu.Unlock()
	if testenv.FullRun() && (len(keys) == 0 || len(tokens) == 0 || len(jwts) == 0 || len(responses) == 0) {
		return fmt.Errorf("leak scan: nothing to check (%d keys, %d tokens, %d JWTs, %d answers): the suite did not run", len(keys), len(tokens), len(jwts), len(responses))
	}
	secrets := append(append(slices.Clone(keys), jwts...), slicesOf(tokensSet(tokens))...)
	var leaks []error
	leak := func(where string) {
		figures.leak()
		leaks = append(leaks, errors.New("leak: "+where))
	}
	checked := scans

	for i, line := range strings.Split(c.logs.String(), "\n") {
		checked++
		for _, s := range secrets {
			if strings.Contains(line, s) {
				leak(fmt.Sprintf("log line %d holds a secret: %s", i+1, redact(line, s)))
			}
		}
		if keyShape.MatchString(line) {
			leak("a log line holds something shaped like an org key")
		}
	}
	for _, txt := range texts {
		checked++
		for _, s := range secrets {
			if strings.Contains(txt, s) {
				leak("an event answer holds a secret: " + redact(txt, s))
			}
		}
	}
	for _, cr := range responses {
		checked++
		raw, _ := json.Marshal(cr.resp)
		all := string(raw)
		for _, s := range append(slices.Clone(jwts), slicesOf(tokensSet(tokens))...) {
			if strings.Contains(all, s) {
				leak(cr.entry + " answer holds a token or JWT")
			}
		}
		keyAllowed := cr.resp.StatusCode == http.StatusOK && (cr.entry == "POST /org-key/reveal" || cr.entry == "POST /org-key/claim")
		if !keyAllowed && keyShape.MatchString(all) {
			leak(cr.entry + " " + http.StatusText(cr.resp.StatusCode) + " answer holds an org key")
		}
		if strings.HasSuffix(cr.entry, "/org-key/claim") && keyShape.MatchString(cr.resp.Body) {
			leak("a claim answer's body holds the key (it belongs in the cookie only)")
		}
	}

	mails, err := env.Emails(context.Background())
	if err != nil {
		return fmt.Errorf("leak scan: %w", err)
	}
	for _, m := range mails {
		checked++
		body := m.Subject + "\n" + m.Text + "\n" + m.HTML
		for _, j := range jwts {
			if strings.Contains(body, j) {
				leak("a mail holds a JWT")
			}
		}
		for tok, to := range tokens {
			if strings.Contains(body, tok) && !overlaps(m.To, to) {
				leak("a claim token was mailed to someone else than its target")
			}
		}
		for _, found := range keyShape.FindAllString(body, -1) {
			if !overlaps(m.To, mailedKey[found]) {
				leak("a mail to " + strings.Join(m.To, ",") + " holds an org key no flow documents mailing them")
			}
		}
	}
	figures.leakCheck(checked)
	return errors.Join(leaks...)
}

func slicesOf(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func tokensSet(m map[string][]string) map[string]bool {
	out := map[string]bool{}
	for k := range m {
		out[k] = true
	}
	return out
}

func overlaps(a, b []string) bool {
	for _, x := range a {
		for _, y := range b {
			if strings.EqualFold(x, y) || strings.HasSuffix(strings.ToLower(x), "<"+strings.ToLower(y)+">") {
				return true
			}
		}
	}
	return false
}

// redact shows where a secret was found without printing it.
func redact(s, secret string) string {
	s = strings.ReplaceAll(s, secret, "[SECRET]")
	if len(s) > 300 {
		s = s[:300]
	}
	return s
}
