// Command send-key serves the HTTP API routes of the send-key flow: an admin mails a
// user a one-time claim link (POST /org-key/send), the link stores the org key in the
// user's browser (GET /org-key/claim, public), and a user asks the admins for the key
// (POST /org-key/request).
package main

import (
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/sendkey"
)

func main() { lambdamain.Run(sendkey.New) }
