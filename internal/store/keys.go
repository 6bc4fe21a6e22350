package store

import (
	"fmt"
	"strings"

	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/mspvault/orgkey/internal/tenant"
)

// The table's key layout, spelled out here and nowhere else: every partition and
// sort key the service (and the benchmark's probe) writes is built by a function of
// this file. Code outside the package that must name an item (a test that edits the
// table directly, the benchmark) uses the exported builders.
//
//	pk                        sk                  item
//	TENANT#<tenant>           ORG                 organization (its wrapped key)
//	TENANT#<tenant>           USER#<user>         user (gsi1 SUB#<user>, gsi2 EMAIL#<email>)
//	TENANT#<tenant>           SITE#<site>         site
//	SIGNUP#<sub>              SIGNUP              sign-up (gsi1 SIGNUP#PENDING while unfinished)
//	CLAIM#<hash>              CLAIM               claim link (gsi1 CLAIMS#<tenant>)
//	AUDIT#<tenant>            <time>#<id>         audit record
//	RATE#<flow>#<subject>     <window start>      rate counter
//	RESET#<ticket>            RESET | LANE#<name> support reset, its lanes' checkpoints
//	VAULT#<tenant>#<shard>    ITEM#<item>         vault password
//	PROBE#<caller>[#<id>]     PROBE               the benchmark's probe (never the service)
//	IDENTITY#EMAIL#<lower>    IDENTITY            an address's one membership (identity.go)
//	IDENTITY#SUB#<sub>        IDENTITY            a sub's one membership
const (
	tenantPrefix = "TENANT#"
	userPrefix   = "USER#"
	sitePrefix   = "SITE#"
	signupPrefix = "SIGNUP#"
	claimPrefix  = "CLAIM#"
	claimsPrefix = "CLAIMS#"
	auditPrefix  = "AUDIT#"
	ratePrefix   = "RATE#"
	resetPrefix  = "RESET#"
	lanePrefix   = "LANE#"
	vaultPrefix  = "VAULT#"
	itemPrefix   = "ITEM#"
	subPrefix    = "SUB#"
	emailPrefix  = "EMAIL#"
	probePrefix  = "PROBE#"

	emailIdentityPrefix = "IDENTITY#EMAIL#"
	subIdentityPrefix   = "IDENTITY#SUB#"

	orgSK          = "ORG"
	signupSK       = "SIGNUP"
	signupsPending = signupPrefix + "PENDING"
	claimSK        = "CLAIM"
	resetSK        = "RESET"
	probeSK        = "PROBE"
	identitySK     = "IDENTITY"
)

func tenantPK(tid string) string          { return tenantPrefix + tid }
func userSK(uid string) string            { return userPrefix + uid }
func siteSK(sid string) string            { return sitePrefix + sid }
func signupPK(sub string) string          { return signupPrefix + sub }
func subGSI(uid string) string            { return subPrefix + uid }
func emailGSI(email string) string        { return emailPrefix + email }
func claimPK(hash string) string          { return claimPrefix + hash }
func claimHash(pk string) string          { return strings.TrimPrefix(pk, claimPrefix) }
func auditPK(tenantID string) string      { return auditPrefix + tenantID }
func auditSK(at, id string) string        { return at + "#" + id }
func ratePK(flow, subject string) string  { return RateFlowPrefix(flow) + subject }
func resetPK(ticket string) string        { return resetPrefix + ticket }
func laneSK(name string) string           { return lanePrefix + name }
func vaultSK(itemID string) string        { return itemPrefix + itemID }
func emailIdentityPK(email string) string { return emailIdentityPrefix + tenant.NormalizeEmail(email) }
func subIdentityPK(sub string) string     { return subIdentityPrefix + sub }

func key(pk, sk string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{
		"pk": &ddbtypes.AttributeValueMemberS{Value: pk},
		"sk": &ddbtypes.AttributeValueMemberS{Value: sk},
	}
}

// TenantPK is the partition of an organization's own items (the organization, its
// users and sites).
func TenantPK(tenantID string) string { return tenantPK(tenantID) }

// OrgItemKey is the key of an organization's item.
func OrgItemKey(tenantID string) map[string]ddbtypes.AttributeValue {
	return key(tenantPK(tenantID), orgSK)
}

// UserItemKey is the key of a user's item.
func UserItemKey(tenantID, userID string) map[string]ddbtypes.AttributeValue {
	return key(tenantPK(tenantID), userSK(userID))
}

// ClaimPK is the partition key of the claim link whose token hashes to hash.
func ClaimPK(hash string) string { return claimPK(hash) }

// ClaimsIndexKey is the gsi1 partition that lists a tenant's claim links.
func ClaimsIndexKey(tenantID string) string { return claimsPrefix + tenantID }

// IsAuditKey reports whether a partition key (or a string that starts with one) is
// an audit record's.
func IsAuditKey(pk string) bool { return strings.HasPrefix(pk, auditPrefix) }

// RateFlowPrefix starts the partition key of every rate counter of flow.
func RateFlowPrefix(flow string) string { return ratePrefix + flow + "#" }

// VaultPK is the partition of one shard of an organization's vault.
func VaultPK(tenantID string, shard int) string {
	return fmt.Sprintf("%s%s#%02d", vaultPrefix, tenantID, shard)
}

// VaultItemKey is the key of a vault password (in the shard VaultShard picks).
func VaultItemKey(tenantID, itemID string) map[string]ddbtypes.AttributeValue {
	return key(VaultPK(tenantID, VaultShard(itemID)), vaultSK(itemID))
}

// ProbeKey is the key of an item of the benchmark's probe, which writes items of its
// own so that it never touches the service's: id "" is the caller's counter, any
// other id a fresh item.
func ProbeKey(caller, id string) map[string]ddbtypes.AttributeValue {
	pk := probePrefix + caller
	if id != "" {
		pk += "#" + id
	}
	return key(pk, probeSK)
}
