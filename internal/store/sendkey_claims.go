package store

import (
	"context"

	"github.com/mspvault/orgkey/internal/apperr"
)

// GetClaim reads a claim link by its token's hash (strongly consistent) without
// consuming it: send-key checks a link and unwraps the key before it spends the link,
// so that a KMS outage does not burn a link the user can no longer replace. An unknown
// hash is not_found.
func (st *Store) GetClaim(ctx context.Context, hash string) (_ Claim, err error) {
	defer apperr.Wrap(&err, "store.GetClaim")
	var it claimItem
	if err := st.getItem(ctx, claimPK(hash), claimSK, &it); err != nil {
		return Claim{}, err
	}
	return it.claim(hash), nil
}
