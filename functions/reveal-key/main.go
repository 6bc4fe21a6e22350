// Command reveal-key serves POST /org-key/reveal: an org admin or site admin who
// signed in recently sees the organization key.
package main

import (
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/revealkey"
)

func main() { lambdamain.Run(revealkey.New) }
