// Package seed creates organizations, users and sites directly in the table, for
// tests and the local demo (the user administration UI is out of this service's
// scope). Organizations get a real org key, wrapped with KMS like a sign-up's.
package seed

import (
	"context"
	"crypto/rand"
	"io"
	"time"

	"github.com/mspvault/orgkey/internal/keywrap"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
)

// Seeder writes fixtures.
type Seeder struct {
	Store   *store.Store
	Wrapper *keywrap.Wrapper
	Random  io.Reader
	Now     func() time.Time
}

// New returns a seeder with crypto randomness and the real clock.
func New(st *store.Store, w *keywrap.Wrapper) *Seeder {
	return &Seeder{Store: st, Wrapper: w, Random: rand.Reader, Now: time.Now}
}

// Organization creates an active organization (key version 1) with its first org
// admin, and returns the key in clear for the test or demo to compare against.
func (s *Seeder) Organization(ctx context.Context, name string, admin tenant.User) (tenant.Org, tenant.User, orgkey.Key, error) {
	tid, err := tenant.NewID(s.Random, "org_")
	if err != nil {
		return tenant.Org{}, tenant.User{}, orgkey.Key{}, err
	}
	key, err := orgkey.Generate(s.Random)
	if err != nil {
		return tenant.Org{}, tenant.User{}, orgkey.Key{}, err
	}
	wrapped, err := s.Wrapper.Wrap(ctx, tid, 1, key)
	if err != nil {
		return tenant.Org{}, tenant.User{}, orgkey.Key{}, err
	}
	org := tenant.Org{ID: tid, Name: name, Status: tenant.Active, KeyVersion: 1, WrappedKey: wrapped, CreatedAt: s.Now()}
	admin.Role = tenant.OrgAdmin
	if admin, err = s.User(ctx, tid, admin); err != nil {
		return tenant.Org{}, tenant.User{}, orgkey.Key{}, err
	}
	org.CreatorID = admin.ID
	if err := s.Store.PutOrg(ctx, org); err != nil {
		return tenant.Org{}, tenant.User{}, orgkey.Key{}, err
	}
	return org, admin, key, nil
}

// User creates a user of an organization. An empty ID gets a random one (a real
// user's ID is their Cognito sub); an empty Locale is "en".
func (s *Seeder) User(ctx context.Context, tenantID string, u tenant.User) (tenant.User, error) {
	if u.ID == "" {
		id, err := tenant.NewID(s.Random, "usr_")
		if err != nil {
			return tenant.User{}, err
		}
		u.ID = id
	}
	if u.Locale == "" {
		u.Locale = "en"
	}
	u.TenantID = tenantID
	u.CreatedAt = s.Now()
	return u, s.Store.PutUser(ctx, u)
}

// Site creates a site of an organization.
func (s *Seeder) Site(ctx context.Context, tenantID, name string) (tenant.Site, error) {
	id, err := tenant.NewID(s.Random, "site_")
	if err != nil {
		return tenant.Site{}, err
	}
	site := tenant.Site{ID: id, TenantID: tenantID, Name: name}
	return site, s.Store.PutSite(ctx, site)
}
