package store

// Reasons (apperr) the store gives its conflicts, declared once: the flows compare
// them or hand them on (sendkey answers a claim by them; the reset shows them to
// support), and the tests assert them.
const (
	// ConsumeClaim: the link was spent already; the organization's key changed or a
	// reset began since the link was sent.
	ReasonClaimUsed       = "claim_used"
	ReasonClaimSuperseded = "claim_superseded"
	// SpendClaim, besides: the link was revoked (too many other users tried it); a
	// newer link was sent to its user, or the user is gone.
	ReasonClaimRevoked  = "claim_revoked"
	ReasonClaimReplaced = "claim_replaced"

	// ScheduleReset: another ticket's reset holds the organization (running or
	// confirmed; or waiting for its confirmation); the organization changed between
	// the reset's reads and its scheduling (or, StartReset, its start).
	ReasonResetRunning        = "reset_running"
	ReasonResetPending        = "reset_pending"
	ReasonOrganizationChanged = "organization_changed"
	// ScheduleReset: another ticket's reset completed within ResetQuietPeriod.
	ReasonResetRecentlyCompleted = "reset_recently_completed"
	// StartReset: the record is no longer confirmed (another run started it).
	ReasonResetNotConfirmed = "reset_not_confirmed"
	// ConfirmReset: the reset is no longer waiting for a confirmation (confirmed
	// already, or expired, or a newer link replaced this one).
	ReasonResetNotPending = "reset_not_pending"
	// CancelReset: the reset started, finished, or was cancelled already.
	ReasonResetNotCancellable = "reset_not_cancellable"

	// CreateOrganization, PutUser: the email or the sub of a new membership holds one
	// in another organization already (for a sign-up, in any); identity.go.
	ReasonIdentityTaken = "identity_taken"
)
