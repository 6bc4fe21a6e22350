// Command activation-email is the Cognito PostConfirmation trigger (and its scheduled
// catch-up sweep): it creates the organization and mails its key to the creator.
package main

import (
	"github.com/mspvault/orgkey/internal/activation"
	"github.com/mspvault/orgkey/internal/lambdamain"
)

func main() { lambdamain.Run(activation.New) }
