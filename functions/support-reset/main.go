// Command support-reset replaces an organization's key after support verified the
// caller: it deletes the organization's passwords, users, sites and claim links, keeps
// the verified admin, and mails them the new key. Support invokes it from the console.
// Its role can wrap keys (kms:Encrypt) but never unwrap them.
package main

import (
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/reset"
)

func main() { lambdamain.Run(reset.New) }
