package sendkey

import (
	"slices"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/tenant"
)

// Refusal reasons of POST /org-key/send, machine-readable (the web app shows its own
// text for each).
const (
	ReasonCallerNotAdmin    = "caller_not_admin"
	ReasonTargetNotProUser  = "target_not_pro_user"
	ReasonTargetNotSiteUser = "target_not_site_user"
	ReasonNoSharedSite      = "no_shared_site"
	ReasonUserNotFound      = "user_not_found"
)

// CheckSend applies the source article's rule to two members of the same organization: org
// admins may send the key only to pro users, site admins only to site users who share
// at least one of the sites they administer. It says nothing about tenancy; the caller
// has already found target inside the sender's organization.
//
// An org admin is a pro user with admin rights and a site admin a site user with admin
// rights, so an org admin may send to another org admin (or to themselves) and a site
// admin to another site admin of a shared site (or to themselves). That is no wider than
// what they can already see: both may show the key in clear (reveal-key).
func CheckSend(sender, target tenant.User) error {
	switch sender.Role {
	case tenant.OrgAdmin:
		if !isProUser(target) {
			return apperr.New(apperr.Forbidden, ReasonTargetNotProUser, "organization administrators can send the key only to pro users")
		}
		return nil
	case tenant.SiteAdmin:
		if !isSiteUser(target) {
			return apperr.New(apperr.Forbidden, ReasonTargetNotSiteUser, "site administrators can send the key only to site users")
		}
		if !sharesSite(sender.Sites, target.Sites) {
			return apperr.New(apperr.Forbidden, ReasonNoSharedSite, "the user belongs to none of the sites you administer")
		}
		return nil
	default:
		return errCallerNotAdmin
	}
}

// MaySend reports whether sender may send the key to target (CheckSend without the
// reason).
func MaySend(sender, target tenant.User) bool { return CheckSend(sender, target) == nil }

// IsAdmin reports whether a role may send the key to anyone at all.
func IsAdmin(r tenant.Role) bool { return r == tenant.OrgAdmin || r == tenant.SiteAdmin }

var errCallerNotAdmin = apperr.New(apperr.Forbidden, ReasonCallerNotAdmin, "only organization and site administrators can send the organization key")

func isProUser(u tenant.User) bool  { return u.Role == tenant.ProUser || u.Role == tenant.OrgAdmin }
func isSiteUser(u tenant.User) bool { return u.Role == tenant.SiteUser || u.Role == tenant.SiteAdmin }

func sharesSite(a, b []string) bool {
	for _, s := range a {
		if s != "" && slices.Contains(b, s) {
			return true
		}
	}
	return false
}

// Senders returns the members who may send the key to target, target excluded: the
// admins a key request goes to.
func Senders(members []tenant.User, target tenant.User) []tenant.User {
	var out []tenant.User
	for _, m := range members {
		if m.ID != target.ID && MaySend(m, target) {
			out = append(out, m)
		}
	}
	return out
}
