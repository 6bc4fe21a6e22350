package perf

// FlowCalls is what one successful request of a flow calls.
type FlowCalls struct {
	Calls Calls // what the flow makes, exactly (TestRemoteCalls holds it to this)
	// Min is the least a correct implementation of the same design makes: every
	// independent read of known keys in one BatchGetItem, nothing read twice.
	Min Calls
	Why string // why Calls is above Min
}

// ResetVaultItems is the size of the organizations the reset rows are counted on:
// the reset's calls grow with it (one BatchWriteItem per 25 items).
const ResetVaultItems = 100

// RemoteCalls is the table of AWS API calls per flow, held by TestRemoteCalls and
// printed by the benchmark's report.
var RemoteCalls = map[string]FlowCalls{
	"activation: pre sign-up": {
		Calls: Calls{"DynamoDB.GetItem": 1},
		Min:   Calls{"DynamoDB.GetItem": 1},
		Why:   "at the minimum: the one read of the address's uniqueness item (does it hold a membership already?)",
	},
	"activation: sign-up confirmed": {
		Calls: Calls{"DynamoDB.PutItem": 1, "DynamoDB.TransactWriteItems": 1, "DynamoDB.UpdateItem": 2, "KMS.Encrypt": 1, "SESv2.SendEmail": 1},
		Min:   Calls{"DynamoDB.PutItem": 1, "DynamoDB.TransactWriteItems": 1, "DynamoDB.UpdateItem": 1, "KMS.Encrypt": 1, "SESv2.SendEmail": 1},
		Why: "the mail lease is its own UpdateItem, not part of the organization's transaction, so that a retried trigger " +
			"(which finds the organization made) takes it the same way; folding it in would save one call on first tries only",
	},
	"send-key: send": {
		Calls: Calls{"DynamoDB.Query": 1, "DynamoDB.BatchGetItem": 1, "DynamoDB.GetItem": 1, "DynamoDB.UpdateItem": 1, "DynamoDB.TransactWriteItems": 1, "DynamoDB.PutItem": 1, "SESv2.SendEmail": 1},
		Min:   Calls{"DynamoDB.Query": 1, "DynamoDB.BatchGetItem": 1, "DynamoDB.UpdateItem": 1, "DynamoDB.TransactWriteItems": 1, "DynamoDB.PutItem": 1, "SESv2.SendEmail": 1},
		Why: "the target is its own GetItem after the caller and organization's BatchGetItem (httpapi.ResolveCaller): " +
			"it is read after the rate limit, so that probing for users is counted; reading it with them would save 1 call. " +
			"The link and its user's live-link mark (which supersedes earlier links) are one transaction",
	},
	"send-key: claim": {
		Calls: Calls{"DynamoDB.GetItem": 1, "DynamoDB.BatchGetItem": 1, "KMS.Decrypt": 1, "DynamoDB.TransactWriteItems": 1, "DynamoDB.PutItem": 1},
		Min:   Calls{"DynamoDB.GetItem": 1, "DynamoDB.BatchGetItem": 1, "KMS.Decrypt": 1, "DynamoDB.TransactWriteItems": 1, "DynamoDB.PutItem": 1},
		Why: "at the minimum (POST /org-key/claim by the link's addressee): the claim link, then its organization and " +
			"user (with the user's live link) in one BatchGetItem; the spend is one transaction that also checks the " +
			"organization's key version and that the link is still the user's live one, so that a reset or a newer " +
			"send meanwhile never lets the key out; the caller is the token's sub, compared with the link's user, " +
			"so no lookup of the caller",
	},
	"send-key: request": {
		Calls: Calls{"DynamoDB.Query": 2, "DynamoDB.BatchGetItem": 1, "DynamoDB.UpdateItem": 1, "SESv2.SendEmail": 2, "DynamoDB.PutItem": 1},
		Min:   Calls{"DynamoDB.Query": 2, "DynamoDB.BatchGetItem": 1, "DynamoDB.UpdateItem": 1, "SESv2.SendEmail": 2, "DynamoDB.PutItem": 1},
		Why: "at the minimum; one mail per admin who may send (two here), each in its reader's language without " +
			"disclosing the other addresses, is the design",
	},
	"reveal-key: reveal": {
		Calls: Calls{"DynamoDB.Query": 2, "DynamoDB.BatchGetItem": 1, "DynamoDB.UpdateItem": 1, "KMS.Decrypt": 1, "DynamoDB.PutItem": 1, "SESv2.SendEmail": 1},
		Min:   Calls{"DynamoDB.Query": 2, "DynamoDB.BatchGetItem": 1, "DynamoDB.UpdateItem": 1, "KMS.Decrypt": 1, "DynamoDB.PutItem": 1, "SESv2.SendEmail": 1},
		Why:   "at the minimum; the notice goes to each other org admin (one here)",
	},
	"support-reset: dry run": {
		Calls: Calls{"DynamoDB.GetItem": 2, "DynamoDB.Query": 36},
		Min:   Calls{"DynamoDB.GetItem": 2, "DynamoDB.Query": 36},
		Why:   "one COUNT query per lane: 32 vault shards, users, sites, claim links, and the admin's lookup by email",
	},
	"support-reset: schedule": {
		Calls: Calls{"DynamoDB.GetItem": 3, "DynamoDB.Query": 37, "DynamoDB.TransactWriteItems": 1, "DynamoDB.UpdateItem": 1, "SESv2.SendEmail": 1},
		Min:   Calls{"DynamoDB.GetItem": 3, "DynamoDB.Query": 37, "DynamoDB.TransactWriteItems": 1, "DynamoDB.UpdateItem": 1, "SESv2.SendEmail": 1},
		Why: "at the minimum: the organization, the kept admin's membership and the ticket's record (is it new?), the organization's members (each other org admin gets a notice: none here), the dry run's counts for the kept " +
			"admin's mail (a COUNT query per lane, and the admin by email); the record, the organization's hold and the " +
			"link's hash in one transaction; the mail, then its mark (a mail that did not go out is sent again)",
	},
	"support-reset: confirm": {
		Calls: Calls{"DynamoDB.GetItem": 2, "DynamoDB.TransactWriteItems": 1},
		Min:   Calls{"DynamoDB.GetItem": 2, "DynamoDB.TransactWriteItems": 1},
		Why: "at the minimum: the link's hash names the ticket, whose record is read next; the confirmation, the " +
			"organization's hold made permanent and the audit record in one conditional transaction",
	},
	"support-reset: run": {
		Calls: Calls{"DynamoDB.BatchWriteItem": 34, "DynamoDB.GetItem": 4, "DynamoDB.Query": 38, "DynamoDB.TransactWriteItems": 3, "DynamoDB.UpdateItem": 71, "KMS.Encrypt": 1, "SESv2.SendEmail": 1},
		Min:   Calls{"DynamoDB.BatchWriteItem": 5, "DynamoDB.GetItem": 3, "DynamoDB.Query": 36, "DynamoDB.TransactWriteItems": 3, "KMS.Encrypt": 1, "SESv2.SendEmail": 1},
		Why: "a confirmed reset run by support's event again (the organization, the record, and the organization " +
			"once more before the key is replaced: 1 GetItem over the minimum); the deletion's checkpoints: one Query reads every lane's; per lane (35) a write-ahead record and a commit " +
			"per page (the last commit marks the lane done; an empty lane gets a finish mark), so that a run cut by its " +
			"deadline resumes exactly; and one BatchWriteItem per lane's page even when the 100 passwords spread 3 to a " +
			"shard (5 would carry them all)",
	},
	"support-reset: sweep": {
		Calls: Calls{"DynamoDB.BatchWriteItem": 34, "DynamoDB.GetItem": 4, "DynamoDB.Query": 38, "DynamoDB.TransactWriteItems": 3, "DynamoDB.UpdateItem": 71, "KMS.Encrypt": 1, "SESv2.SendEmail": 1},
		Min:   Calls{"DynamoDB.BatchWriteItem": 5, "DynamoDB.GetItem": 3, "DynamoDB.Query": 36, "DynamoDB.TransactWriteItems": 3, "KMS.Encrypt": 1, "SESv2.SendEmail": 1},
		Why: "the schedule's event with one reset due: the due index's Query, then the run of support-reset: run from the " +
			"record alone (the record, the organization, the kept admin by id, the organization again before the key is " +
			"replaced: 1 GetItem over the minimum), with the same deletion checkpoints",
	},
}
