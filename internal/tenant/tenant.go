// Package tenant holds the domain model: organizations (tenants), their users and
// roles, sites, and the sign-ups that create organizations. It has no I/O.
package tenant

import (
	"encoding/base32"
	"fmt"
	"io"
	"strings"
	"time"
)

// Role is a user's role in an organization (see docs/product.md).
type Role string

const (
	OrgAdmin  Role = "org_admin"  // pro user with admin rights, the whole organization
	ProUser   Role = "pro_user"   // MSP staff, the whole organization
	SiteAdmin Role = "site_admin" // a client's user with admin rights on some sites
	SiteUser  Role = "site_user"  // a client's user on some sites
)

// Valid reports whether r is one of the four roles.
func (r Role) Valid() bool {
	switch r {
	case OrgAdmin, ProUser, SiteAdmin, SiteUser:
		return true
	}
	return false
}

// Status is an organization's life-cycle state.
type Status string

const (
	Active    Status = "active"
	Resetting Status = "resetting" // a support reset is running: key flows answer conflict
)

// Org is an organization. Its key exists only wrapped (WrappedKey, KMS ciphertext).
type Org struct {
	ID         string
	Name       string
	Status     Status
	KeyVersion int
	WrappedKey []byte
	CreatorID  string
	CreatedAt  time.Time
}

// User is a member of an organization. ID is the user's Cognito sub.
type User struct {
	ID        string
	TenantID  string
	Email     string
	Name      string
	Locale    string
	Role      Role
	Sites     []string // site ids: administered (site admin) or belonged to (site user)
	CreatedAt time.Time
}

// Site is a client site of an organization.
type Site struct {
	ID       string
	TenantID string
	Name     string
}

// SignupState is how far a sign-up's activation got.
type SignupState string

const (
	SignupPending    SignupState = "pending"     // recorded; organization not yet created
	SignupOrgCreated SignupState = "org_created" // organization exists; mail not yet sent
	SignupDone       SignupState = "done"        // activation mail sent
	SignupRefused    SignupState = "refused"     // never gets an organization: its email holds a membership already
)

// Signup is the durable record of a confirmed sign-up: what the activation needs to
// finish, even when Cognito no longer retries.
type Signup struct {
	Sub        string
	Email      string
	Name       string
	Company    string
	Locale     string
	TenantID   string
	State      SignupState
	CreatedAt  time.Time
	MailSentAt time.Time
}

// NormalizeEmail is the form emails are compared and indexed in.
func NormalizeEmail(email string) string {
	return strings.ToLower(strings.TrimSpace(email))
}

// NewID returns a random identifier: prefix, then 26 lower-case base32 characters
// (128 bits) from random (crypto/rand.Reader in production).
func NewID(random io.Reader, prefix string) (string, error) {
	var buf [16]byte
	if _, err := io.ReadFull(random, buf[:]); err != nil {
		return "", fmt.Errorf("tenant.NewID: %w", err)
	}
	return prefix + strings.ToLower(idEncoding.EncodeToString(buf[:])), nil
}

var idEncoding = base32.NewEncoding("0123456789abcdefghjkmnpqrstvwxyz").WithPadding(base32.NoPadding)
