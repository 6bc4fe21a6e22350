package adversarial_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/mspvault/orgkey/internal/testing/testenv"
)

// noLeakAnywhere runs after every test (from TestMain): the package's ledger
// (testenv.Ledger) looks for every org key, claim token and JWT the run saw, in every
// form a parser reads, in everything the run logged, answered and mailed and in every
// table it used; in a full run it fails when the suite captured nothing.
func noLeakAnywhere(env *testenv.Env) error {
	leaks, checked, err := capture.ledger.Scan(context.Background(), env)
	if err != nil {
		return fmt.Errorf("leak scan: %w", err)
	}
	keys, tokens, jwts, answers := capture.ledger.Counts()
	if testenv.FullRun() && (keys == 0 || tokens == 0 || jwts == 0 || answers == 0) {
		return fmt.Errorf("leak scan: nothing to check (%d keys, %d tokens, %d JWTs, %d answers): the suite did not run", keys, tokens, jwts, answers)
	}
	var errs []error
	for _, l := range leaks {
		figures.leak()
		errs = append(errs, l)
	}
	figures.leakCheck(checked)
	return errors.Join(errs...)
}
