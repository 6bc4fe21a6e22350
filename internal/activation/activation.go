// Package activation owns the activation-email flow (option 2 of the source article,
// N-able Passportal's "how to recover your Organization Key"; see docs/product.md): when a
// company's creator confirms the sign-up, it creates the organization, its first org
// admin and its org key, and mails the key ("Account activation complete").
//
// Cognito retries the PostConfirmation trigger and gives each try 5 seconds, and gives
// up for good after a few tries while the user stays confirmed. So the flow is a small
// state machine kept in the table: the sign-up is recorded first (durable), the
// organization is created in one transaction, and the mail is sent under a lease; any
// try, or the scheduled catch-up sweep, moves it forward from wherever it stopped. One
// sign-up makes one organization and one mail, however often and concurrently it runs.
package activation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/lambdamain"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"

	mailpkg "github.com/mspvault/orgkey/internal/mail"
)

// Config is the activation function's configuration, read once from the environment.
type Config struct {
	lambdamain.Common
	// CatchUpAfter is how old, in seconds, an unfinished sign-up must be before the
	// sweep takes it over.
	CatchUpAfter int `env:"CATCHUP_AFTER_SECONDS" envDefault:"120"`
}

// Validate fails fast on values that parse but make no sense, naming the variable.
func (c Config) Validate() error {
	if err := c.Common.Validate(); err != nil {
		return err
	}
	if c.CatchUpAfter < 0 {
		return fmt.Errorf("CATCHUP_AFTER_SECONDS %d: want 0 or more", c.CatchUpAfter)
	}
	return nil
}

// Store is what the flow needs from the table.
type Store interface {
	CreateSignup(ctx context.Context, su tenant.Signup) (tenant.Signup, error)
	CreateOrganization(ctx context.Context, org tenant.Org, admin tenant.User, signupSub string) error
	GetOrg(ctx context.Context, tenantID string) (tenant.Org, error)
	AcquireSignupMail(ctx context.Context, sub string, now, leaseUntil time.Time) (bool, error)
	ReleaseSignupMail(ctx context.Context, sub string) error
	FinishSignup(ctx context.Context, sub string, now time.Time) error
	UnfinishedSignups(ctx context.Context, cutoff time.Time, limit int) ([]tenant.Signup, error)
	RefuseSignup(ctx context.Context, sub, reason string) error
	EmailHolder(ctx context.Context, email string) (sub, tenantID string, found bool, err error)
}

var _ Store = (*store.Store)(nil)

// KeyWrapper wraps a new key; KeyUnwrapper reads one back when the try that sends the
// mail is not the one that made the key.
type KeyWrapper interface {
	Wrap(ctx context.Context, tenantID string, version int, k orgkey.Key) ([]byte, error)
}

type KeyUnwrapper interface {
	Unwrap(ctx context.Context, tenantID string, version int, blob []byte) (orgkey.Key, error)
}

// Mailer sends a rendered mail.
type Mailer interface {
	Send(ctx context.Context, m mailpkg.Message) error
}

// Service runs the flow.
type Service struct {
	Store     Store
	Wrapper   KeyWrapper
	Unwrapper KeyUnwrapper
	Mailer    Mailer
	AppURL    string

	// CatchUpAfter is how old an unfinished sign-up must be before the sweep takes it
	// over, so that the sweep does not race a try that is still running.
	CatchUpAfter time.Duration
	// MailLease is how long a try holds the right to send; longer than a try lives.
	MailLease time.Duration

	Now    func() time.Time
	Random io.Reader
}

// Request is a confirmed sign-up, from the user's Cognito attributes.
type Request struct {
	Sub     string
	Email   string
	Name    string
	Company string
	Locale  string
}

// Outcome says what one run did, for the log line.
type Outcome struct {
	TenantID   string
	OrgCreated bool // this run created the organization
	MailSent   bool // this run sent the mail
}

// Activate runs the flow for one confirmed sign-up. Invalid input is refused before
// anything is written. Any error leaves a state that a retry or the sweep finishes.
func (s *Service) Activate(ctx context.Context, req Request) (Outcome, error) {
	req, err := req.checked(selfSignUp)
	if err != nil {
		return Outcome{}, err
	}
	tid, err := tenant.NewID(s.Random, "org_")
	if err != nil {
		return Outcome{}, err
	}
	su, err := s.Store.CreateSignup(ctx, tenant.Signup{
		Sub: req.Sub, Email: req.Email, Name: req.Name,
		Company: req.Company, Locale: req.Locale,
		TenantID: tid, CreatedAt: s.Now(),
	})
	if err != nil {
		return Outcome{}, err
	}
	return s.advance(ctx, su)
}

// advance moves a recorded sign-up to done: organization, then mail.
func (s *Service) advance(ctx context.Context, su tenant.Signup) (Outcome, error) {
	out := Outcome{TenantID: su.TenantID}
	switch su.State {
	case tenant.SignupDone:
		return out, nil
	case tenant.SignupRefused:
		return out, refuse("email_taken")
	}
	var key orgkey.Key // known only to the run that made it
	if su.State == tenant.SignupPending {
		k, err := s.createOrganization(ctx, su)
		switch {
		case apperr.ReasonOf(err) == store.ReasonIdentityTaken:
			// Another sign-up of the same person (the same address in another case,
			// or a race that PreSignUp could not see) holds the membership. This one
			// never gets an organization; the sweep must not retry it.
			if rerr := s.Store.RefuseSignup(ctx, su.Sub, "email_taken"); rerr != nil && apperr.CodeOf(rerr) != apperr.Conflict {
				return out, rerr
			}
			return out, refuse("email_taken")
		case apperr.CodeOf(err) == apperr.Conflict:
			// A concurrent or earlier try created it; go on to the mail.
		case err != nil:
			return out, err
		default:
			key, out.OrgCreated = k, true
		}
	}
	sent, err := s.sendOnce(ctx, su, key)
	out.MailSent = sent
	return out, err
}

func (s *Service) createOrganization(ctx context.Context, su tenant.Signup) (orgkey.Key, error) {
	const version = 1
	key, err := orgkey.Generate(s.Random)
	if err != nil {
		return orgkey.Key{}, err
	}
	wrapped, err := s.Wrapper.Wrap(ctx, su.TenantID, version, key)
	if err != nil {
		return orgkey.Key{}, err
	}
	now := s.Now()
	org := tenant.Org{
		ID: su.TenantID, Name: su.Company, Status: tenant.Active, KeyVersion: version,
		WrappedKey: wrapped, CreatorID: su.Sub, CreatedAt: now,
	}
	admin := tenant.User{
		ID: su.Sub, TenantID: su.TenantID, Email: su.Email, Name: su.Name,
		Locale: su.Locale, Role: tenant.OrgAdmin, CreatedAt: now,
	}
	if err := s.Store.CreateOrganization(ctx, org, admin, su.Sub); err != nil {
		return orgkey.Key{}, err
	}
	return key, nil
}

// sendOnce sends the activation mail unless it was sent or another try is sending it.
// key is the org key when this run made it; otherwise it is read back from KMS.
func (s *Service) sendOnce(ctx context.Context, su tenant.Signup, key orgkey.Key) (bool, error) {
	now := s.Now()
	ok, err := s.Store.AcquireSignupMail(ctx, su.Sub, now, now.Add(s.MailLease))
	if err != nil || !ok {
		return false, err
	}
	if err := s.send(ctx, su, key); err != nil {
		// Give the lease back so the next try sends at once; if that fails too, the
		// lease expires and the sweep sends.
		if rerr := s.Store.ReleaseSignupMail(context.WithoutCancel(ctx), su.Sub); rerr != nil {
			err = errors.Join(err, rerr)
		}
		return false, err
	}
	if err := s.Store.FinishSignup(ctx, su.Sub, s.Now()); err != nil {
		// The mail went out; only the bookkeeping failed. A later run would send it
		// again after the lease, which is the lesser harm than never sending it.
		return true, err
	}
	return true, nil
}

func (s *Service) send(ctx context.Context, su tenant.Signup, key orgkey.Key) error {
	if key.IsZero() {
		org, err := s.Store.GetOrg(ctx, su.TenantID)
		if err != nil {
			return err
		}
		if key, err = s.Unwrapper.Unwrap(ctx, org.ID, org.KeyVersion, org.WrappedKey); err != nil {
			return err
		}
	}
	msg, err := mailpkg.ActivationMail(su.Locale, su.Email, mailpkg.Activation{
		Name: su.Name, Company: su.Company, Key: key, AppURL: s.AppURL,
	})
	if err != nil {
		return err
	}
	return s.Mailer.Send(ctx, msg)
}

// SweepResult counts what a catch-up sweep did.
type SweepResult struct {
	Found    int `json:"found"`
	Finished int `json:"finished"`
	Skipped  int `json:"skipped"` // another try holds the mail lease; a later sweep retries
	Failed   int `json:"failed"`
	Refused  int `json:"refused"` // its email holds a membership already: it never gets an organization
}

// sweepBatch bounds one sweep; the next scheduled run takes the rest.
const sweepBatch = 100

// CatchUp finishes sign-ups that Cognito's tries left unfinished: recorded but without
// an organization, or with an organization but no mail. It stops early when ctx ends.
func (s *Service) CatchUp(ctx context.Context, log *slog.Logger) (SweepResult, error) {
	var res SweepResult
	pending, err := s.Store.UnfinishedSignups(ctx, s.Now().Add(-s.CatchUpAfter), sweepBatch)
	if err != nil {
		return res, err
	}
	res.Found = len(pending)
	for _, su := range pending {
		if ctx.Err() != nil {
			break
		}
		out, err := s.advance(ctx, su)
		if apperr.CodeOf(err) == apperr.Invalid {
			res.Refused++
			log.LogAttrs(ctx, slog.LevelWarn, "catch-up refused a sign-up", slog.String("user", su.Sub),
				slog.String("reason", apperr.ReasonOf(err)))
			continue
		}
		if err != nil {
			res.Failed++
			log.LogAttrs(ctx, slog.LevelError, "catch-up failed", slog.String("tenant", su.TenantID),
				slog.String("user", su.Sub), slog.String("error", err.Error()))
			continue
		}
		if !out.MailSent {
			res.Skipped++
			continue
		}
		res.Finished++
		log.LogAttrs(ctx, slog.LevelInfo, "catch-up finished a sign-up", slog.String("tenant", out.TenantID),
			slog.String("user", su.Sub), slog.Bool("org_created", out.OrgCreated), slog.Bool("mail_sent", out.MailSent))
	}
	return res, nil
}
