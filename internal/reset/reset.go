// Package reset owns the support-reset flow (option 4 of the source article, N-able
// Passportal's "how to recover your Organization Key"; see docs/product.md): after support
// verified a caller by phone, it replaces an organization's key. The vault is
// encrypted under the old key, so the reset also deletes every password, every user
// but the verified admin who asked, every site and every pending claim link; it keeps
// the organization, the admin and the audit trail, and mails the admin the new key.
//
// Support can replace a key but never read one: the service holds only a key wrapper
// (kms:Encrypt), never an unwrapper. So a resumed reset whose mail did not go out
// cannot mail the key it stored (nobody has seen it); it replaces it once more.
//
// The reset is a state machine kept in the table (store.ResetRecord): recorded and
// locked, key replaced, data deleted (checkpointed per lane), mailed, completed. Every
// step is durable before the next starts, so an invocation that fails or runs out of
// time leaves a state that the next invocation with the same ticket finishes.
package reset

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/claimpage"
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"

	mailpkg "github.com/mspvault/orgkey/internal/mail"
)

// Config is the support-reset function's configuration, read once from the
// environment.
type Config struct {
	lambdamain.Common
	// SafetyMargin is how long before the Lambda deadline the reset stops taking new
	// work, so that it can checkpoint and answer in_progress rather than be killed.
	SafetyMarginSeconds int `env:"SAFETY_MARGIN_SECONDS" envDefault:"30"`
	// DeleteWorkers bounds the lanes deleting at once; 0 means all (one per shard).
	DeleteWorkers int `env:"DELETE_WORKERS" envDefault:"0"`
	// UserPoolID is the Cognito user pool whose accounts of removed users the
	// reset deletes. The deployed function always has it (template.yaml); a
	// Config built in a test without it deletes table items only.
	UserPoolID string `env:"USER_POOL_ID"`
	// ConfirmTTLHours is how long the kept admin has to confirm a scheduled reset;
	// an unconfirmed one expires, changing nothing.
	ConfirmTTLHours int `env:"RESET_CONFIRM_TTL_HOURS" envDefault:"72"`
	// CoolOffHours is how long after the kept admin's confirmation the reset starts,
	// at the earliest (0: at the schedule's next run).
	CoolOffHours int `env:"RESET_COOL_OFF_HOURS" envDefault:"24"`
	// ClaimBaseURL is the origin the confirmation links point at (the web app's,
	// which forwards /org-key/claim* to the API, as for send-key's claim links);
	// empty: APP_URL.
	ClaimBaseURL string `env:"CLAIM_BASE_URL"`
	// UserPoolClientID and CognitoEndpoint configure the confirmation page's
	// sign-in (the app client of USER_POOL_ID).
	UserPoolClientID string `env:"USER_POOL_CLIENT_ID"`
	Region           string `env:"AWS_REGION"`
	CognitoEndpoint  string `env:"AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"`
}

// PageConfig is the confirmation page's sign-in configuration.
func (c Config) PageConfig() claimpage.Config {
	return claimpage.Config{UserPoolID: c.UserPoolID, ClientID: c.UserPoolClientID,
		CognitoEndpoint: claimpage.Endpoint(c.CognitoEndpoint, c.Region)}
}

// Validate fails fast on values that parse but make no sense, naming the variable.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	switch {
	case c.SafetyMarginSeconds < 0 || c.SafetyMarginSeconds >= 15*60:
		return fmt.Errorf("SAFETY_MARGIN_SECONDS %d: want 0..899 (Lambda runs at most 15 minutes)", c.SafetyMarginSeconds)
	case c.DeleteWorkers < 0:
		return fmt.Errorf("DELETE_WORKERS %d: want 0 (one per shard) or more", c.DeleteWorkers)
	case c.ConfirmTTLHours < 0 || c.ConfirmTTLHours > 720:
		return fmt.Errorf("RESET_CONFIRM_TTL_HOURS %d: want 1..720 (0 in code: the default, 72)", c.ConfirmTTLHours)
	case c.CoolOffHours < 0 || c.CoolOffHours > 720:
		return fmt.Errorf("RESET_COOL_OFF_HOURS %d: want 0..720", c.CoolOffHours)
	case c.ClaimBaseURL != "" && !lambdamain.BaseURL(c.ClaimBaseURL):
		return fmt.Errorf("CLAIM_BASE_URL %q: want an absolute http(s) URL without query or fragment", c.ClaimBaseURL)
	}
	return nil
}

// Store is what the flow needs from the table.
type Store interface {
	GetOrg(ctx context.Context, tenantID string) (tenant.Org, error)
	FindUserByEmail(ctx context.Context, tenantID, email string) (tenant.User, error)
	CountTenantData(ctx context.Context, tenantID, keepUserID string) (store.ResetCounts, error)
	GetReset(ctx context.Context, ticket string) (store.ResetRecord, error)
	ScheduleReset(ctx context.Context, rec store.ResetRecord, confirmHash string, now time.Time) (store.ResetRecord, bool, error)
	ReissueResetConfirmation(ctx context.Context, rec store.ResetRecord, hash string) error
	MarkResetConfirmMailed(ctx context.Context, ticket, hash string) error
	GetResetConfirmation(ctx context.Context, hash string) (store.ResetConfirmation, error)
	ConfirmReset(ctx context.Context, rec store.ResetRecord, hash, userID string, now, runAfter time.Time, audit store.AuditRecord) error
	DueResets(ctx context.Context, now time.Time, limit int) ([]string, error)
	CancelReset(ctx context.Context, rec store.ResetRecord, by string, now time.Time, audit store.AuditRecord) error
	GetUser(ctx context.Context, tenantID, userID string) (tenant.User, error)
	Members(ctx context.Context, tenantID string) ([]tenant.User, []tenant.Site, error)
	PutAudit(ctx context.Context, r store.AuditRecord, now time.Time) error
	StartReset(ctx context.Context, rec store.ResetRecord, owner string, now, leaseUntil time.Time) error
	AcquireResetRun(ctx context.Context, ticket, owner string, now, leaseUntil time.Time) (bool, error)
	RenewResetRun(ctx context.Context, ticket, owner string, leaseUntil time.Time) (bool, error)
	ReleaseResetRun(ctx context.Context, ticket, owner string) error
	ReplaceOrgKey(ctx context.Context, tenantID, ticket string, from, to int, wrapped []byte) error
	DeleteTenantData(ctx context.Context, ticket, tenantID, keepUserID string, o store.DeleteOptions) (store.ResetCounts, bool, error)
	ResetProgress(ctx context.Context, ticket string) (store.ResetCounts, error)
	MarkResetMailed(ctx context.Context, ticket string, version int) error
	FinishReset(ctx context.Context, rec store.ResetRecord, now time.Time) error
}

var _ Store = (*store.Store)(nil)

// KeyWrapper wraps a new key. There is deliberately no unwrapper in this package.
type KeyWrapper interface {
	Wrap(ctx context.Context, tenantID string, version int, k orgkey.Key) ([]byte, error)
}

// Mailer sends a rendered mail.
type Mailer interface {
	Send(ctx context.Context, m mailpkg.Message) error
}

// Service runs the flow.
type Service struct {
	Store   Store
	Wrapper KeyWrapper
	Mailer  Mailer
	AppURL  string
	// ConfirmBaseURL is the origin of the confirmation links (no trailing slash).
	ConfirmBaseURL string
	// ConfirmTTL is how long a scheduled reset waits for its confirmation.
	ConfirmTTL time.Duration
	// CoolOff is how long after its confirmation a reset starts at the earliest.
	CoolOff time.Duration
	// Accounts deletes the removed users' sign-in accounts; nil deletes none.
	Accounts AccountDeleter

	// SafetyMargin: stop taking new work this long before ctx's deadline.
	SafetyMargin time.Duration
	// Budget bounds a run when ctx has no deadline (a local call, a test).
	Budget time.Duration
	// Workers bounds the deletion lanes running at once; 0 means all.
	Workers int
	// LeaseTTL is how long a run's lease lasts unless renewed; a working run renews
	// it every third of it. A killed run's lease runs out within LeaseTTL, and the
	// next invocation takes over. 0 means DefaultLeaseTTL.
	LeaseTTL time.Duration

	Now    func() time.Time
	Random io.Reader
}

// DefaultLeaseTTL: a crashed run is picked up by an invocation about a minute later.
const DefaultLeaseTTL = 60 * time.Second

// errLeaseLost stops a run whose lease another invocation took.
var errLeaseLost = errors.New("the run lease was lost to another invocation")

// Verification methods support may record; see docs/runbook-support-reset.md.
var verificationMethods = map[string]bool{"phone_callback": true, "video_call": true, "in_person": true}

// Request is a reset as support typed it.
type Request struct {
	TenantID                string
	TicketID                string
	Agent                   string
	VerificationMethod      string
	VerificationReference   string
	ConfirmOrganizationName string
	KeepAdminEmail          string
	DryRun                  bool
}

// Status is where a reset stands after an invocation.
type Status string

const (
	StatusDryRun Status = "dry_run" // counted only; nothing changed
	// StatusPending: scheduled; nothing changed until the kept admin confirms.
	StatusPending    Status = "pending_confirmation"
	StatusConfirmed  Status = "confirmed"   // confirmed; starts at the next invocation
	StatusInProgress Status = "in_progress" // invoke again with the same event
	StatusCompleted  Status = "completed"
)

// Report is what an invocation answers: it reads as the record of the reset.
type Report struct {
	Status             Status             `json:"status"`
	TenantID           string             `json:"tenantId"`
	TicketID           string             `json:"ticketId"`
	Agent              string             `json:"agent"`
	KeptAdminEmail     string             `json:"keptAdminEmail"`
	OrganizationStatus string             `json:"organizationStatus,omitempty"` // dry run only
	OldKeyVersion      int                `json:"oldKeyVersion"`
	NewKeyVersion      int                `json:"newKeyVersion,omitempty"`
	WouldDelete        *store.ResetCounts `json:"wouldDelete,omitempty"` // dry run
	Deleted            *store.ResetCounts `json:"deleted,omitempty"`     // real run, so far
	MailSent           bool               `json:"mailSent"`
	ConfirmBy          *time.Time         `json:"confirmBy,omitempty"`          // scheduled: the kept admin confirms before then
	ConfirmationMailed bool               `json:"confirmationMailed,omitempty"` // scheduled: the link went out
	RunAfter           *time.Time         `json:"runAfter,omitempty"`           // confirmed: starts by itself no earlier
	Runs               int                `json:"runs,omitempty"`
	StartedAt          *time.Time         `json:"startedAt,omitempty"`
	FinishedAt         *time.Time         `json:"finishedAt,omitempty"`
	Duration           string             `json:"duration"`    // since the reset began
	RunDuration        string             `json:"runDuration"` // this invocation
	Next               string             `json:"next"`        // what support does now
	Busy               bool               `json:"-"`           // in progress in another invocation (it holds the run lease)
}

// Limits on request fields.
const (
	maxID    = 128
	maxText  = 200
	maxEmail = 254
)

// validate checks the request's fields before anything is read.
func (r Request) validate() error {
	field := func(name, v string, limit int) error {
		switch {
		case strings.TrimSpace(v) == "":
			return apperr.New(apperr.Invalid, "missing_field", fmt.Sprintf("%s must not be empty", name))
		case utf8.RuneCountInString(v) > limit || !tenant.PlainText(v):
			return apperr.New(apperr.Invalid, "invalid_field", fmt.Sprintf("%s is too long or has control characters", name))
		}
		return nil
	}
	for _, f := range []struct {
		name, v string
		limit   int
	}{
		{"tenantId", r.TenantID, maxID}, {"ticketId", r.TicketID, maxID}, {"agent", r.Agent, maxText},
		{"verification.method", r.VerificationMethod, maxID}, {"verification.reference", r.VerificationReference, maxText},
		{"confirmOrganizationName", r.ConfirmOrganizationName, maxText}, {"keepAdminEmail", r.KeepAdminEmail, maxEmail},
	} {
		if err := field(f.name, f.v, f.limit); err != nil {
			return err
		}
	}
	if r.TicketID != strings.TrimSpace(r.TicketID) || r.TenantID != strings.TrimSpace(r.TenantID) {
		return apperr.New(apperr.Invalid, "invalid_field", "tenantId and ticketId must not start or end with spaces")
	}
	if !verificationMethods[r.VerificationMethod] {
		return apperr.New(apperr.Invalid, "invalid_verification_method",
			"verification.method must be one of phone_callback, video_call, in_person")
	}
	if !tenant.PlainEmail(strings.TrimSpace(r.KeepAdminEmail)) {
		return apperr.New(apperr.Invalid, "invalid_keep_admin_email", "keepAdminEmail is not a plain email address")
	}
	return nil
}

// NameMatches is how confirmOrganizationName is compared with the organization's
// name: exactly, case included, once both are in the form names are stored in
// (tenant.NormalizeName: NFC, every Unicode space a plain one, runs of spaces as one,
// trimmed), so that what the agent sees is what they can type. Typing the name back
// is the agent's proof of which organization they are about to empty; a folded
// comparison would accept a name read off the wrong screen just as well.
func NameMatches(typed, name string) bool {
	return tenant.NormalizeName(typed) == tenant.NormalizeName(name)
}

// Reset dry-runs, schedules, or runs (or resumes) a reset. Invalid requests are
// refused before anything is written. A new ticket with dryRun false only schedules
// the reset: it records it, waiting for the kept admin's confirmation, and mails them
// the confirmation link; nothing else changes. Once they have confirmed, the same
// event runs it. Another ticket holding the organization is refused with conflict.
func (s *Service) Reset(ctx context.Context, req Request) (Report, error) {
	began := s.Now()
	if err := req.validate(); err != nil {
		return Report{}, err
	}
	org, err := s.Store.GetOrg(ctx, req.TenantID)
	if apperr.CodeOf(err) == apperr.NotFound {
		return Report{}, apperr.New(apperr.Invalid, "organization_not_found", "no organization has this tenantId")
	}
	if err != nil {
		return Report{}, err
	}
	if !NameMatches(req.ConfirmOrganizationName, org.Name) {
		return Report{}, apperr.New(apperr.Invalid, "organization_name_mismatch",
			"confirmOrganizationName does not match the organization's name (compared exactly, case included)")
	}
	admin, err := s.Store.FindUserByEmail(ctx, org.ID, req.KeepAdminEmail)
	if apperr.CodeOf(err) == apperr.NotFound {
		return Report{}, apperr.New(apperr.Invalid, "keep_admin_not_found", "keepAdminEmail is not a user of this organization")
	}
	if err != nil {
		return Report{}, err
	}
	if admin.Role != tenant.OrgAdmin {
		return Report{}, apperr.New(apperr.Invalid, "keep_admin_not_org_admin", "keepAdminEmail is not an org admin of this organization")
	}
	if req.DryRun {
		counts, err := s.Store.CountTenantData(ctx, org.ID, admin.ID)
		if err != nil {
			return Report{}, err
		}
		next := "Nothing was changed. If the counts are what the customer expects, invoke again with \"dryRun\": false: " +
			"that schedules the reset, which runs by itself only once the kept admin confirms it from their own signed-in browser " +
			"and the cool-off after that is over."
		if org.Status == tenant.Resetting {
			next = "A reset is already running for this organization; invoke it again with its own event to finish it."
		}
		return Report{
			Status: StatusDryRun, TenantID: org.ID, TicketID: req.TicketID, Agent: req.Agent,
			KeptAdminEmail: admin.Email, OrganizationStatus: string(org.Status), OldKeyVersion: org.KeyVersion,
			WouldDelete: &counts, Duration: "0s", RunDuration: s.Now().Sub(began).Round(time.Millisecond).String(), Next: next,
		}, nil
	}
	rec, err := s.Store.GetReset(ctx, req.TicketID)
	switch {
	case apperr.CodeOf(err) == apperr.NotFound:
		return s.schedule(ctx, req, org, admin, began)
	case err != nil:
		return Report{}, err
	case rec.TenantID != org.ID:
		return Report{}, apperr.New(apperr.Conflict, "ticket_reused", "this ticketId was used for a reset of another organization; use the ticket of this request")
	case rec.KeepAdminID != admin.ID:
		return Report{}, apperr.New(apperr.Conflict, "ticket_reused", "this ticketId was used for a reset that keeps another admin; use the event of that reset")
	}
	return s.resume(ctx, rec, org, admin, began)
}

// resume carries a recorded reset on from its state: a pending one is reported (its
// confirmation mailed again if the first mail did not go out), a confirmed or
// unfinished one runs, a completed one is reported.
func (s *Service) resume(ctx context.Context, rec store.ResetRecord, org tenant.Org, admin tenant.User, began time.Time) (Report, error) {
	switch rec.State {
	case store.ResetPending:
		if !began.Before(rec.ConfirmBy) {
			return Report{}, apperr.New(apperr.Conflict, ReasonConfirmationExpired, fmt.Sprintf(
				"the kept admin did not confirm this reset before %s, so it expired and nothing was changed; "+
					"if the customer still wants it, verify them again and schedule it under a new ticket", rec.ConfirmBy.Format(time.RFC3339)))
		}
		if !rec.ConfirmMailed {
			if err := s.mailConfirmation(ctx, &rec, org, admin); err != nil {
				return Report{}, err
			}
		}
		return s.pendingReport(rec, began), nil
	case store.ResetCompleted:
		return s.report(rec, rec.Deleted, StatusCompleted, began), nil
	case store.ResetCancelled:
		return Report{}, apperr.New(apperr.Conflict, ReasonResetCancelled, fmt.Sprintf(
			"this reset was cancelled at %s by %s; nothing was changed. A new request needs a new ticket",
			rec.CancelledAt.Format(time.RFC3339), rec.CancelledBy))
	case store.ResetConfirmed:
		if began.Before(rec.RunAfter) {
			return s.confirmedReport(rec, began), nil
		}
	}
	return s.run(ctx, rec, org, admin, began)
}

// ReasonConfirmationExpired refuses a reset whose kept admin did not confirm in time.
const ReasonConfirmationExpired = "confirmation_expired"

// schedule records a new reset waiting for the kept admin's confirmation and mails
// them its link.
func (s *Service) schedule(ctx context.Context, req Request, org tenant.Org, admin tenant.User, began time.Time) (Report, error) {
	now := storedTime(began)
	token, err := orgkey.NewClaimToken(s.Random)
	if err != nil {
		return Report{}, err
	}
	rec, created, err := s.Store.ScheduleReset(ctx, store.ResetRecord{
		TicketID: req.TicketID, TenantID: org.ID, Agent: strings.TrimSpace(req.Agent),
		VerificationMethod: req.VerificationMethod, VerificationReference: strings.TrimSpace(req.VerificationReference),
		KeepAdminID: admin.ID, KeepAdminEmail: admin.Email, OldKeyVersion: org.KeyVersion,
		ConfirmBy: now.Add(s.confirmTTL()),
	}, token.Hash(), now)
	if err != nil {
		return Report{}, err
	}
	if !created {
		// Another invocation of the same event recorded it first.
		return s.resume(ctx, rec, org, admin, began)
	}
	if err := s.sendConfirmation(ctx, rec, org, admin, token); err != nil {
		return Report{}, err
	}
	rec.ConfirmMailed = true
	return s.pendingReport(rec, began), nil
}

// mailConfirmation mails a pending reset's kept admin a new confirmation link in
// place of one whose mail did not go out.
func (s *Service) mailConfirmation(ctx context.Context, rec *store.ResetRecord, org tenant.Org, admin tenant.User) error {
	token, err := orgkey.NewClaimToken(s.Random)
	if err != nil {
		return err
	}
	if err := s.Store.ReissueResetConfirmation(ctx, *rec, token.Hash()); err != nil {
		return err
	}
	if err := s.sendConfirmation(ctx, *rec, org, admin, token); err != nil {
		return err
	}
	rec.ConfirmMailed = true
	return nil
}

// sendConfirmation mails the kept admin the link, with what the reset would delete,
// and records that it went out.
func (s *Service) sendConfirmation(ctx context.Context, rec store.ResetRecord, org tenant.Org, admin tenant.User, token orgkey.ClaimToken) error {
	counts, err := s.Store.CountTenantData(ctx, org.ID, admin.ID)
	if err != nil {
		return err
	}
	msg, err := mailpkg.ResetConfirmMail(admin.Locale, admin.Email, mailpkg.ResetConfirm{
		Name: admin.Name, Company: org.Name, TicketID: rec.TicketID, BaseURL: s.ConfirmBaseURL, Token: token,
		ConfirmBy: rec.ConfirmBy, Passwords: counts.Passwords, Users: counts.Users, Sites: counts.Sites, ClaimLinks: counts.ClaimLinks,
	})
	if err != nil {
		return err
	}
	if err := s.Mailer.Send(ctx, msg); err != nil {
		return err
	}
	if err := s.notifyAdmins(ctx, rec, org, admin, counts); err != nil {
		return err
	}
	return s.Store.MarkResetConfirmMailed(ctx, rec.TicketID, token.Hash())
}

// notifyAdmins tells every other org admin of the organization, in their language,
// that a reset was scheduled and how to cancel it: a reset that one of them did not
// expect is stopped before it starts. (A retried scheduling tells them again.)
func (s *Service) notifyAdmins(ctx context.Context, rec store.ResetRecord, org tenant.Org, kept tenant.User, c store.ResetCounts) error {
	users, _, err := s.Store.Members(ctx, org.ID)
	if err != nil {
		return err
	}
	for _, u := range users {
		if u.Role != tenant.OrgAdmin || u.ID == kept.ID || u.Email == "" {
			continue
		}
		msg, err := mailpkg.ResetNoticeMail(u.Locale, u.Email, mailpkg.ResetNotice{
			Name: u.Name, Company: org.Name, TicketID: rec.TicketID, KeptAdmin: kept.Email, ConfirmBy: rec.ConfirmBy,
			CoolOff: s.CoolOff, Passwords: c.Passwords, Users: c.Users, Sites: c.Sites, ClaimLinks: c.ClaimLinks, AppURL: s.AppURL,
		})
		if err != nil {
			return err
		}
		if err := s.Mailer.Send(ctx, msg); err != nil {
			return err
		}
	}
	return nil
}

func (s *Service) confirmTTL() time.Duration {
	if s.ConfirmTTL <= 0 {
		return DefaultConfirmTTL
	}
	return s.ConfirmTTL
}

// DefaultConfirmTTL is how long a scheduled reset waits for its confirmation unless
// configured (template.yaml's ResetConfirmTtlHours).
const DefaultConfirmTTL = 72 * time.Hour

func (s *Service) pendingReport(rec store.ResetRecord, began time.Time) Report {
	by := rec.ConfirmBy
	r := Report{
		Status: StatusPending, TenantID: rec.TenantID, TicketID: rec.TicketID, Agent: rec.Agent,
		KeptAdminEmail: rec.KeepAdminEmail, OldKeyVersion: rec.OldKeyVersion, ConfirmBy: &by, ConfirmationMailed: rec.ConfirmMailed,
		Duration: "0s", RunDuration: s.Now().Sub(began).Round(time.Millisecond).String(),
	}
	r.Next = fmt.Sprintf("Scheduled; nothing was changed. %s was mailed a confirmation link: the reset runs only once they open it "+
		"in their own browser, sign in and confirm, before %s (unconfirmed, it expires and changes nothing). "+
		"Once confirmed it starts by itself after the cool-off (%s) and runs to completion; invoke this event to see where it stands.",
		rec.KeepAdminEmail, by.Format(time.RFC3339), s.CoolOff)
	return r
}

func (s *Service) confirmedReport(rec store.ResetRecord, began time.Time) Report {
	after := rec.RunAfter
	return Report{
		Status: StatusConfirmed, TenantID: rec.TenantID, TicketID: rec.TicketID, Agent: rec.Agent,
		KeptAdminEmail: rec.KeepAdminEmail, OldKeyVersion: rec.OldKeyVersion, RunAfter: &after,
		Duration: "0s", RunDuration: s.Now().Sub(began).Round(time.Millisecond).String(),
		Next: fmt.Sprintf("Confirmed by the kept admin; nothing was changed yet. The reset starts by itself at %s "+
			"(the cool-off) and runs to completion without another invocation; invoke this event to see where it stands.",
			after.Format(time.RFC3339)),
	}
}

// run is a real run of a confirmed (or started) reset: from wherever its record
// stands to completed, or to the safety margin before the deadline.
func (s *Service) run(ctx context.Context, rec store.ResetRecord, org tenant.Org, admin tenant.User, began time.Time) (Report, error) {
	began = storedTime(began)
	stopAt := s.budget(ctx, began)
	owner, err := s.leaseOwner()
	if err != nil {
		return Report{}, err
	}
	leaseUntil := began.Add(s.leaseTTL())
	started := false
	if rec.State == store.ResetConfirmed {
		switch err := s.Store.StartReset(ctx, rec, owner, began, leaseUntil); apperr.ReasonOf(err) {
		case "":
			if err != nil {
				return Report{}, err
			}
			rec.State, rec.StartedAt, rec.Runs, started = store.ResetStarted, began, 1, true
		case store.ReasonResetNotConfirmed: // another invocation started it first
			if rec, err = s.Store.GetReset(ctx, rec.TicketID); err != nil {
				return Report{}, err
			}
			switch rec.State {
			case store.ResetCompleted:
				return s.report(rec, rec.Deleted, StatusCompleted, began), nil
			case store.ResetCancelled: // the cancel won the race with this start
				return s.cancelledReport(rec, began), nil
			case store.ResetConfirmed, store.ResetPending:
				return Report{}, apperr.New(apperr.Conflict, store.ReasonResetNotConfirmed, "the reset is not due yet")
			}
		default:
			return Report{}, err
		}
	}
	if !started {
		ok, err := s.Store.AcquireResetRun(ctx, rec.TicketID, owner, began, leaseUntil)
		if err != nil {
			return Report{}, err
		}
		if !ok {
			counts, err := s.Store.ResetProgress(ctx, rec.TicketID)
			if err != nil {
				return Report{}, err
			}
			r := s.report(rec, counts, StatusInProgress, began)
			r.Busy = true
			r.Next = fmt.Sprintf("Another invocation is working on this ticket right now: it holds the run lease until %s and renews it while it works "+
				"(if it died, the lease runs out then). Wait a minute, then invoke again with the same event to see its progress or continue.",
				rec.LeaseUntil.Format(time.RFC3339))
			return r, nil
		}
		rec.Runs++
	}
	defer s.Store.ReleaseResetRun(context.WithoutCancel(ctx), rec.TicketID, owner)
	ctx, stop := s.heartbeat(ctx, rec.TicketID, owner, leaseUntil)
	defer stop()
	rep, err := s.work(ctx, rec, org, admin, stopAt, began)
	if err != nil && errors.Is(context.Cause(ctx), errLeaseLost) {
		return Report{}, apperr.New(apperr.Conflict, "reset_lease_lost",
			"this invocation lost its lease to another invocation of the ticket and stopped; invoke again with the same event to see its progress")
	}
	return rep, err
}

// work carries a reset holding its lease from its stored state to completed, or to
// stopAt.
func (s *Service) work(ctx context.Context, rec store.ResetRecord, org tenant.Org, admin tenant.User, stopAt, began time.Time) (Report, error) {
	var err error

	// The key only this run knows; zero when an earlier run made the stored one.
	var key orgkey.Key
	if rec.State == store.ResetStarted {
		if key, err = s.replaceKey(ctx, &rec); err != nil {
			return Report{}, err
		}
	}

	var counts store.ResetCounts
	if rec.State == store.ResetKeyReplaced {
		var done bool
		counts, done, err = s.Store.DeleteTenantData(ctx, rec.TicketID, rec.TenantID, rec.KeepAdminID, store.DeleteOptions{
			Workers: s.Workers, StopAt: stopAt, Now: s.Now, DeleteAccounts: s.deleteAccounts(),
		})
		if err != nil {
			return Report{}, err
		}
		if !done || !s.Now().Before(stopAt) {
			return s.report(rec, counts, StatusInProgress, began), nil
		}
		if key.IsZero() {
			// Nobody has seen the key an earlier run stored, and this run cannot read
			// it: replace it once more, and mail that one.
			if key, err = s.replaceKey(ctx, &rec); err != nil {
				return Report{}, err
			}
		}
		if err := s.mail(ctx, rec, org, admin, key, counts); err != nil {
			return Report{}, err
		}
		if err := s.Store.MarkResetMailed(ctx, rec.TicketID, rec.NewKeyVersion); err != nil {
			return Report{}, err
		}
		rec.State, rec.MailedKeyVersion = store.ResetMailed, rec.NewKeyVersion
	} else if counts, err = s.Store.ResetProgress(ctx, rec.TicketID); err != nil {
		return Report{}, err
	}

	// rec.State is mailed here.
	rec.Deleted, rec.FinishedAt = counts, storedTime(s.Now())
	if err := s.Store.FinishReset(ctx, rec, rec.FinishedAt); err != nil {
		return Report{}, err
	}
	rec.State = store.ResetCompleted
	return s.report(rec, counts, StatusCompleted, began), nil
}

// deleteAccounts is the deletion engine's account hook, nil without Accounts.
func (s *Service) deleteAccounts() func(context.Context, []string) error {
	if s.Accounts == nil {
		return nil
	}
	return s.Accounts.DeleteAccounts
}

// storedTime is t as the table keeps it (UTC, microseconds), so that a report read
// back from the record equals the one first returned.
func storedTime(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// budget returns when this run stops taking new work.
func (s *Service) budget(ctx context.Context, began time.Time) (stopAt time.Time) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = began.Add(s.Budget + s.SafetyMargin)
	}
	return deadline.Add(-s.SafetyMargin)
}

func (s *Service) leaseTTL() time.Duration {
	if s.LeaseTTL <= 0 {
		return DefaultLeaseTTL
	}
	return s.LeaseTTL
}

// leaseOwner is a token naming this invocation on the lease it takes.
func (s *Service) leaseOwner() (string, error) {
	b := make([]byte, 12)
	if _, err := io.ReadFull(s.Random, b); err != nil {
		return "", fmt.Errorf("reset: lease owner token: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// heartbeat renews the run's lease every third of LeaseTTL while the run works. If
// the lease is lost (another invocation took it after it ran out), or cannot be
// renewed before it runs out, it cancels the returned context with errLeaseLost: the
// run stops deleting, and the store's write-ahead pages leave nothing half done.
func (s *Service) heartbeat(ctx context.Context, ticket, owner string, until time.Time) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		tick := time.NewTicker(s.leaseTTL() / 3)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			next := s.Now().Add(s.leaseTTL())
			ok, err := s.Store.RenewResetRun(ctx, ticket, owner, next)
			switch {
			case err == nil && ok:
				until = next
			case err == nil || !s.Now().Before(until):
				cancel(errLeaseLost)
				return
			}
		}
	}()
	return ctx, func() {
		close(done)
		<-stopped
		cancel(nil)
	}
}

// replaceKey generates a key, wraps it for the next version and stores it in place
// of the current one.
func (s *Service) replaceKey(ctx context.Context, rec *store.ResetRecord) (orgkey.Key, error) {
	org, err := s.Store.GetOrg(ctx, rec.TenantID)
	if err != nil {
		return orgkey.Key{}, err
	}
	key, err := orgkey.Generate(s.Random)
	if err != nil {
		return orgkey.Key{}, err
	}
	next := org.KeyVersion + 1
	wrapped, err := s.Wrapper.Wrap(ctx, org.ID, next, key)
	if err != nil {
		return orgkey.Key{}, err
	}
	if err := s.Store.ReplaceOrgKey(ctx, org.ID, rec.TicketID, org.KeyVersion, next, wrapped); err != nil {
		return orgkey.Key{}, err
	}
	rec.State, rec.NewKeyVersion = store.ResetKeyReplaced, next
	return key, nil
}

func (s *Service) mail(ctx context.Context, rec store.ResetRecord, org tenant.Org, admin tenant.User, key orgkey.Key, c store.ResetCounts) error {
	msg, err := mailpkg.ResetMail(admin.Locale, admin.Email, mailpkg.Reset{
		Name: admin.Name, Company: org.Name, Key: key, KeyVersion: rec.NewKeyVersion, TicketID: rec.TicketID,
		Passwords: c.Passwords, Users: c.Users, Accounts: c.Accounts, Sites: c.Sites, ClaimLinks: c.ClaimLinks, AppURL: s.AppURL,
	})
	if err != nil {
		return err
	}
	return s.Mailer.Send(ctx, msg)
}

func (s *Service) report(rec store.ResetRecord, c store.ResetCounts, status Status, began time.Time) Report {
	now := s.Now()
	started := rec.StartedAt
	r := Report{
		Status: status, TenantID: rec.TenantID, TicketID: rec.TicketID, Agent: rec.Agent,
		KeptAdminEmail: rec.KeepAdminEmail, OldKeyVersion: rec.OldKeyVersion, NewKeyVersion: rec.NewKeyVersion,
		Deleted: &c, MailSent: rec.MailedKeyVersion != 0, Runs: rec.Runs, StartedAt: &started,
		Duration: now.Sub(started).Round(time.Millisecond).String(), RunDuration: now.Sub(began).Round(time.Millisecond).String(),
	}
	switch status {
	case StatusCompleted:
		finished := rec.FinishedAt
		r.FinishedAt = &finished
		r.Duration = finished.Sub(started).Round(time.Millisecond).String()
		r.Next = "Done. The kept admin was mailed the new key; tell the customer to look for it (and in spam)."
	case StatusInProgress:
		r.Next = "Not finished yet: the schedule's next run (within a minute) continues it by itself; invoking the same event " +
			"continues it too. Nothing is deleted or counted twice."
	}
	return r
}
