package store_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

// One person, one organization, through PutUser: a second organization cannot take an
// address (in any case) or a sub that a first holds; the first may rewrite its own
// member; DeleteUser gives both back.
func TestPutUserOnePersonOneOrganization(t *testing.T) {
	env := testenv.Get(t)
	st := store.New(dynamodb.NewFromConfig(env.AWSConfig), env.TableName)
	ctx := t.Context()
	a, b := testenv.UniqueName("org_a"), testenv.UniqueName("org_b")
	email := testenv.UniqueName("Dana") + "@Example.test"
	u := tenant.User{ID: testenv.UniqueName("sub"), TenantID: a, Email: email, Name: "Dana", Role: tenant.ProUser}
	if err := st.PutUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	for name, other := range map[string]tenant.User{
		"the address in capitals, another sub": {ID: testenv.UniqueName("sub"), TenantID: b, Email: strings.ToUpper(email), Role: tenant.ProUser},
		"the same sub, another address":        {ID: u.ID, TenantID: b, Email: testenv.UniqueName("x") + "@example.test", Role: tenant.ProUser},
	} {
		if err := st.PutUser(ctx, other); apperr.CodeOf(err) != apperr.Conflict || apperr.ReasonOf(err) != store.ReasonIdentityTaken {
			t.Errorf("%s in another organization: %v, want conflict %s", name, err, store.ReasonIdentityTaken)
		}
		if _, err := st.GetUser(ctx, b, other.ID); apperr.CodeOf(err) != apperr.NotFound {
			t.Errorf("%s: the refused member was written (%v)", name, err)
		}
	}
	u.Role = tenant.OrgAdmin
	if err := st.PutUser(ctx, u); err != nil {
		t.Errorf("the organization rewriting its own member: %v", err)
	}
	if sub, tid, found, err := st.EmailHolder(ctx, strings.ToLower(email)); err != nil || !found || sub != u.ID || tid != a {
		t.Errorf("EmailHolder = %q %q %v %v", sub, tid, found, err)
	}
	if err := st.DeleteUser(ctx, a, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, found, err := st.EmailHolder(ctx, email); err != nil || found {
		t.Errorf("after DeleteUser the address is still held (%v, %v)", found, err)
	}
	if err := st.PutUser(ctx, tenant.User{ID: u.ID, TenantID: b, Email: email, Role: tenant.ProUser}); err != nil {
		t.Errorf("joining another organization after leaving: %v", err)
	}
}
