package adversarial_test

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mspvault/orgkey/internal/dev/emulators"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
)

// person is a user as the table holds them now, which is what the rules read (a token
// is only a sub; the table is the authority, so a deletion or a lowered role counts at
// once). It is written out by hand from newWorld, not read back from the table.
type person struct {
	label  string
	user   tenant.User // ID and Email as the token and the requests carry them
	exists bool
	tenant string // "a" or "b"
	role   string // "org admin", "pro user", "site admin", "site user"
	sites  []string
}

// The rules of docs/product.md and internal/sendkey's documented decisions, written plainly
// and independently of the code under test.

func isAdmin(p person) bool { return p.role == "org admin" || p.role == "site admin" }

// maySend: org admins send only to pro users (an org admin is a pro user with admin
// rights, so to org admins too, and to themselves); site admins only to site users (so
// to site admins too) who share at least one site they administer.
func maySend(sender, target person) bool {
	if !sender.exists || !target.exists || sender.tenant != target.tenant {
		return false
	}
	switch sender.role {
	case "org admin":
		return target.role == "pro user" || target.role == "org admin"
	case "site admin":
		if target.role != "site user" && target.role != "site admin" {
			return false
		}
		for _, s := range sender.sites {
			if slices.Contains(target.sites, s) {
				return true
			}
		}
	}
	return false
}

// expectSend is the answer to POST /org-key/send: who the caller is is checked first,
// then whether they may send at all, then whether the target is in their organization
// (another organization's user is answered exactly like a missing one), then the rule.
func expectSend(caller, target person) (int, string) {
	switch {
	case !caller.exists:
		return http.StatusForbidden, "unknown_user"
	case !isAdmin(caller):
		return http.StatusForbidden, "caller_not_admin"
	case !target.exists || target.tenant != caller.tenant:
		return http.StatusNotFound, "user_not_found"
	case maySend(caller, target):
		return http.StatusAccepted, ""
	case caller.role == "org admin":
		return http.StatusForbidden, "target_not_pro_user"
	case target.role != "site user" && target.role != "site admin":
		return http.StatusForbidden, "target_not_site_user"
	}
	return http.StatusForbidden, "no_shared_site"
}

// expectReveal: only org admins and site admins who can sign in see the key.
func expectReveal(caller person) (int, string) {
	switch {
	case !caller.exists:
		return http.StatusForbidden, "unknown_user"
	case !isAdmin(caller):
		return http.StatusForbidden, "caller_not_admin"
	}
	return http.StatusOK, ""
}

// expectRequest: a request goes to every other member who may send the caller the key.
func expectRequest(caller person, everyone []person) (int, string, []person) {
	if !caller.exists {
		return http.StatusForbidden, "unknown_user", nil
	}
	var to []person
	for _, p := range everyone {
		if p.user.ID != caller.user.ID && maySend(p, caller) {
			to = append(to, p)
		}
	}
	if len(to) == 0 {
		return http.StatusConflict, "no_admin_available", nil
	}
	return http.StatusAccepted, "", to
}

func TestAuthorizationMatrix(t *testing.T) {
	r := newRig(t)
	w := r.newWorld(t)
	r.sendSvc.SendLimit = 1000 // the matrix sends more than a person would; limits are tested elsewhere
	s0, s1, s2 := w.sites[0], w.sites[1], w.sites[2]
	b0 := w.bSites[0]
	ghost := tenant.User{ID: "usr_" + strings.Repeat("z", 26), Email: addr("ghost")}

	// Everyone, as the table holds them now.
	people := []person{
		{"org admin", w.orgAdmin, true, "a", "org admin", nil},
		{"second org admin", w.orgAdmin2, true, "a", "org admin", nil},
		{"pro user", w.pro, true, "a", "pro user", nil},
		{"site admin of s0 s1", w.siteAdmin, true, "a", "site admin", []string{s0, s1}},
		{"site admin of s2", w.siteAdmin2, true, "a", "site admin", []string{s2}},
		{"site user of s0", w.siteUser, true, "a", "site user", []string{s0}},
		{"site user of s1 s2", w.siteUser2, true, "a", "site user", []string{s1, s2}},
		{"site user of s2", w.siteUserLone, true, "a", "site user", []string{s2}},
		{"deleted org admin", w.deleted, false, "a", "", nil},
		{"org admin lowered to pro user", w.loweredAdmin, true, "a", "pro user", nil},
		{"site admin lowered to site user", w.loweredSiteAdmin, true, "a", "site user", []string{s0}},
		{"other tenant's org admin", w.bAdmin, true, "b", "org admin", nil},
		{"other tenant's pro user", w.bPro, true, "b", "pro user", nil},
		{"other tenant's site admin", w.bSiteAdmin, true, "b", "site admin", []string{b0}},
		{"other tenant's site user", w.bSiteUser, true, "b", "site user", []string{b0}},
		{"never existed", ghost, false, "a", "", nil},
	}
	get := func(label string) person {
		for _, p := range people {
			if p.label == label {
				return p
			}
		}
		t.Fatalf("no %s", label)
		return person{}
	}
	callers := []string{"org admin", "pro user", "site admin of s0 s1", "site user of s0", "deleted org admin",
		"org admin lowered to pro user", "site admin lowered to site user", "other tenant's org admin", "other tenant's site admin", "never existed"}
	targets := []string{"second org admin", "pro user", "site admin of s0 s1", "site admin of s2", "site user of s0", "site user of s1 s2",
		"site user of s2", "deleted org admin", "org admin lowered to pro user", "site admin lowered to site user",
		"other tenant's pro user", "other tenant's site user", "never existed", "self"}
	keys := map[string]string{"a": w.aKey.Reveal(), "b": w.bKey.Reveal()}

	for _, cl := range callers {
		caller := get(cl)
		for _, tl := range targets {
			target := caller
			if tl != "self" {
				target = get(tl)
			}
			for _, byEmail := range []bool{false, true} {
				how := "by id"
				body := fmt.Sprintf(`{"userId":%q}`, target.user.ID)
				if byEmail {
					how, body = "by email", fmt.Sprintf(`{"email":%q}`, target.user.Email)
				}
				t.Run(fmt.Sprintf("send/%s/to %s %s", cl, tl, how), func(t *testing.T) {
					defer figures.cell(t, "send-key")
					status, reason := expectSend(caller, target)
					before := r.mails(t)
					resp := r.callSend(t, sendEvent(t, caller.user.ID, body))
					after := r.mails(t)[len(before):]
					checkAnswer(t, resp.StatusCode, resp.Body, status, reason)
					if status != http.StatusAccepted {
						if len(after) != 0 {
							t.Errorf("refused, yet %d mails went out", len(after))
						}
						return
					}
					if len(after) != 1 || !slices.Contains(after[0].To, target.user.Email) {
						t.Fatalf("want one mail to the target, got %v", recipients(after))
					}
					// The link gives the target's organization's key, once.
					tok := tokenIn(t, after[0])
					claim := r.callSend(t, claimEvent(t, target.user.ID, tok))
					if claim.StatusCode != http.StatusOK || len(claim.Cookies) != 1 ||
						!strings.HasPrefix(claim.Cookies[0], "__Host-orgkey="+keys[target.tenant]+";") {
						t.Errorf("claim: %d %v", claim.StatusCode, len(claim.Cookies))
					}
					if again := r.callSend(t, claimEvent(t, target.user.ID, tok)); again.StatusCode != http.StatusGone {
						t.Errorf("second opening: %d", again.StatusCode)
					}
				})
			}
		}
	}

	// The claim: every caller against a live link of every existing user. Only the
	// link's own user gets the key (of the link's organization), once; anyone else is
	// refused (403), the link left live for its user.
	for _, tl := range targets {
		if tl == "self" || !get(tl).exists {
			continue
		}
		target := get(tl)
		for _, cl := range append(slices.Clone(callers), tl) {
			caller := get(cl)
			t.Run(fmt.Sprintf("claim/%s/link of %s", cl, tl), func(t *testing.T) {
				defer figures.cell(t, "claim")
				tok, err := orgkey.NewClaimToken(rand.Reader)
				if err != nil {
					t.Fatal(err)
				}
				capture.token(tok.Reveal(), []string{target.user.Email})
				tid := w.a.ID
				if target.tenant == "b" {
					tid = w.b.ID
				}
				now := time.Now()
				if err := r.st.PutLiveClaim(t.Context(), store.Claim{Hash: tok.Hash(), TenantID: tid, UserID: target.user.ID,
					SentBy: w.orgAdmin.ID, KeyVersion: 1, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
					t.Fatal(err)
				}
				resp := r.callSend(t, claimEvent(t, caller.user.ID, tok.Reveal()))
				if caller.user.ID == target.user.ID {
					if resp.StatusCode != http.StatusOK || len(resp.Cookies) != 1 ||
						!strings.HasPrefix(resp.Cookies[0], "__Host-orgkey="+keys[target.tenant]+";") {
						t.Errorf("the addressee's claim: %d, %d cookies", resp.StatusCode, len(resp.Cookies))
					}
					return
				}
				checkAnswer(t, resp.StatusCode, resp.Body, http.StatusForbidden, "claim_wrong_user")
				if len(resp.Cookies) != 0 {
					t.Errorf("another user got %d cookies", len(resp.Cookies))
				}
				if own := r.callSend(t, claimEvent(t, target.user.ID, tok.Reveal())); own.StatusCode != http.StatusOK {
					t.Errorf("after another user's attempt the addressee's claim: %d", own.StatusCode)
				}
			})
		}
	}

	for _, cl := range callers {
		caller := get(cl)
		t.Run("reveal/"+cl, func(t *testing.T) {
			defer figures.cell(t, "reveal-key")
			status, reason := expectReveal(caller)
			resp := r.callReveal(t, revealEvent(t, caller.user.ID, ""))
			checkAnswer(t, resp.StatusCode, resp.Body, status, reason)
			var got struct {
				OrgKey string `json:"orgKey"`
			}
			json.Unmarshal([]byte(resp.Body), &got)
			if (status == http.StatusOK) != (got.OrgKey == keys[caller.tenant]) || (status != http.StatusOK && got.OrgKey != "") {
				t.Errorf("answer %d carries key %v", resp.StatusCode, got.OrgKey != "")
			}
		})
	}

	for _, cl := range callers {
		caller := get(cl)
		t.Run("request/"+cl, func(t *testing.T) {
			defer figures.cell(t, "request-key")
			status, reason, to := expectRequest(caller, people)
			before := r.mails(t)
			resp := r.callSend(t, requestEvent(t, caller.user.ID, ""))
			after := r.mails(t)[len(before):]
			checkAnswer(t, resp.StatusCode, resp.Body, status, reason)
			var want []string
			for _, p := range to {
				want = append(want, p.user.Email)
			}
			if got := recipients(after); !slices.Equal(got, slices.Sorted(slices.Values(want))) {
				t.Errorf("request mailed %v, want %v", got, want)
			}
		})
	}
}

func checkAnswer(t *testing.T, status int, body string, wantStatus int, wantReason string) {
	t.Helper()
	var b struct{ Reason string }
	json.Unmarshal([]byte(body), &b)
	if status != wantStatus || b.Reason != wantReason {
		t.Errorf("got %d %q, the rules say %d %q", status, b.Reason, wantStatus, wantReason)
	}
}

func recipients(ms []emulators.Email) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.To...)
	}
	slices.Sort(out)
	return out
}
