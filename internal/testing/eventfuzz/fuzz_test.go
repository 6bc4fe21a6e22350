package eventfuzz_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mspvault/orgkey/internal/activation"
	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/httpapi"
	"github.com/mspvault/orgkey/internal/mail"
	"github.com/mspvault/orgkey/internal/orgkey"
	"github.com/mspvault/orgkey/internal/reset"
	"github.com/mspvault/orgkey/internal/sendkey"
	"github.com/mspvault/orgkey/internal/store"
	"github.com/mspvault/orgkey/internal/tenant"
)

func sample(f *testing.F, name string) []byte {
	f.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "..", "events", name))
	if err != nil {
		f.Fatal(err)
	}
	return b
}

var quiet = slog.New(slog.NewJSONHandler(io.Discard, nil))

// ------------------------------------------------------------------ activation

// signups is an in-memory activation store that counts writes.
type signups struct {
	mu     sync.Mutex
	writes int
	byID   map[string]tenant.Signup
}

func (s *signups) CreateSignup(_ context.Context, su tenant.Signup) (tenant.Signup, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if old, ok := s.byID[su.Sub]; ok {
		return old, nil
	}
	su.State = tenant.SignupPending
	s.byID[su.Sub] = su
	return su, nil
}
func (s *signups) CreateOrganization(context.Context, tenant.Org, tenant.User, string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return nil
}
func (s *signups) GetOrg(context.Context, string) (tenant.Org, error) {
	return tenant.Org{}, apperr.New(apperr.NotFound, "", "not found")
}
func (s *signups) AcquireSignupMail(context.Context, string, time.Time, time.Time) (bool, error) {
	return true, nil
}
func (s *signups) ReleaseSignupMail(context.Context, string) error       { return nil }
func (s *signups) FinishSignup(context.Context, string, time.Time) error { return nil }
func (s *signups) UnfinishedSignups(context.Context, time.Time, int) ([]tenant.Signup, error) {
	return nil, nil
}
func (s *signups) RefuseSignup(context.Context, string, string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return nil
}

// EmailHolder: one address holds a membership, for PreSignUp's refusal.
func (s *signups) EmailHolder(_ context.Context, email string) (string, string, bool, error) {
	if tenant.NormalizeEmail(email) == "taken@example.com" {
		return "sub-taken", "org_taken", true, nil
	}
	return "", "", false, nil
}

type wrapper struct{}

func (wrapper) Wrap(context.Context, string, int, orgkey.Key) ([]byte, error) {
	return []byte("blob"), nil
}
func (wrapper) Unwrap(context.Context, string, int, []byte) (orgkey.Key, error) {
	return orgkey.Key{}, apperr.New(apperr.Unavailable, "", "no KMS in a fuzz test")
}

type mailer struct{ sent int }

func (m *mailer) Send(context.Context, mail.Message) error { m.sent++; return nil }

// FuzzActivationEvent: any event the trigger receives is either handed back unchanged
// (a sign-up it handled, a pass-through) or refused with an error; a refused event
// writes nothing; nothing panics.
func FuzzActivationEvent(f *testing.F) {
	for _, name := range []string{"activation-email.json", "activation-forgot-password.json", "activation-catchup.json", "activation-presignup.json"} {
		f.Add(sample(f, name))
	}
	f.Add([]byte(`{"triggerSource":"PostConfirmation_ConfirmSignUp","request":{"userAttributes":{"sub":"\u0000"}}}`))
	f.Add([]byte(`{"triggerSource":7}`))
	f.Add([]byte(`{"triggerSource":"PreSignUp_SignUp","userName":"u","request":{"userAttributes":{"email":"Taken@example.com","name":"N","custom:company_name":"C"}}}`))
	f.Add([]byte(`{"triggerSource":"PostConfirmation_ConfirmForgotPassword","TriggerSource":"PostConfirmation_ConfirmSignUp"}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		st := &signups{byID: map[string]tenant.Signup{}}
		m := &mailer{}
		// The flow's Service on in-memory fakes (activation.New builds it on AWS).
		h := &activation.Handler{Service: &activation.Service{
			Store: st, Wrapper: wrapper{}, Unwrapper: wrapper{}, Mailer: m, AppURL: "https://vault.example.test",
			CatchUpAfter: time.Minute, MailLease: 30 * time.Second, Now: time.Now, Random: rand.Reader,
		}, Log: quiet}
		out, err := h.Handle(context.Background(), raw)
		if err != nil {
			if out != nil {
				t.Fatalf("an error with an answer: %v", err)
			}
			if strings.Contains(err.Error(), "refused") && st.writes != 0 {
				t.Fatalf("a refused event wrote %d times", st.writes)
			}
			return
		}
		if res, ok := out.(activation.SweepResult); ok {
			_ = res
			return
		}
		if got, ok := out.(json.RawMessage); !ok || !bytes.Equal(got, raw) {
			t.Fatalf("the event was not handed back unchanged: %T", out)
		}
	})
}

// ------------------------------------------------------------------ support reset

// FuzzResetEvent: DecodeRequest never panics, refuses with invalid, and whatever it
// accepts it accepts again, identically, once re-encoded.
func FuzzResetEvent(f *testing.F) {
	f.Add(sample(f, "support-reset.json"))
	f.Add(sample(f, "support-reset-dry-run.json"))
	f.Add([]byte(`{"tenantId":1}`))
	f.Add([]byte(`{"verification":{"method":"phone_callback","method":"x"}}`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := reset.DecodeRequest(raw)
		if err != nil {
			if apperr.CodeOf(err) != apperr.Invalid || apperr.As(err).Message == "" {
				t.Fatalf("refusal %v is not an invalid with a message", err)
			}
			return
		}
		again, err := json.Marshal(map[string]any{
			"tenantId": req.TenantID, "ticketId": req.TicketID, "agent": req.Agent,
			"verification":            map[string]string{"method": req.VerificationMethod, "reference": req.VerificationReference},
			"confirmOrganizationName": req.ConfirmOrganizationName, "keepAdminEmail": req.KeepAdminEmail, "dryRun": req.DryRun,
		})
		if err != nil {
			t.Fatal(err)
		}
		back, err := reset.DecodeRequest(again)
		if err != nil || back != req {
			t.Fatalf("accepted event does not round-trip: %v", err)
		}
	})
}

// ------------------------------------------------------------------ claim query

// claims is a send-key store that knows no claim link and counts audit records.
type claims struct {
	mu     sync.Mutex
	audits []store.AuditRecord
}

func (c *claims) GetOrg(context.Context, string) (tenant.Org, error) {
	return tenant.Org{}, apperr.New(apperr.NotFound, "", "not found")
}
func (c *claims) GetUserAndOrg(context.Context, string, string) (tenant.User, tenant.Org, error) {
	return tenant.User{}, tenant.Org{}, apperr.New(apperr.NotFound, "", "not found")
}
func (c *claims) GetUser(context.Context, string, string) (tenant.User, error) {
	return tenant.User{}, apperr.New(apperr.NotFound, "", "not found")
}
func (c *claims) FindUserByEmail(context.Context, string, string) (tenant.User, error) {
	return tenant.User{}, apperr.New(apperr.NotFound, "", "not found")
}
func (c *claims) TenantOfUser(context.Context, string) (string, error) {
	return "", apperr.New(apperr.NotFound, "", "not found")
}
func (c *claims) Members(context.Context, string) ([]tenant.User, []tenant.Site, error) {
	return nil, nil, nil
}
func (c *claims) PutLiveClaim(context.Context, store.Claim) error { return nil }
func (c *claims) GetClaim(context.Context, string) (store.Claim, error) {
	return store.Claim{}, apperr.New(apperr.NotFound, "", "not found")
}
func (c *claims) GetClaimParties(context.Context, string, string) (tenant.User, tenant.Org, string, error) {
	return tenant.User{}, tenant.Org{}, "", apperr.New(apperr.NotFound, "", "not found")
}
func (c *claims) SpendClaim(context.Context, string, string, string, int, time.Time) (store.Claim, error) {
	return store.Claim{}, apperr.New(apperr.NotFound, "", "not found")
}
func (c *claims) AddClaimAttempt(context.Context, string) (int, error) {
	return 0, apperr.New(apperr.Conflict, "", "not live")
}
func (c *claims) RevokeClaim(context.Context, string, time.Time) error {
	return apperr.New(apperr.Conflict, "", "not live")
}
func (c *claims) Allow(context.Context, string, string, int, time.Duration, time.Time) (bool, error) {
	return true, nil
}
func (c *claims) PutAudit(_ context.Context, r store.AuditRecord, _ time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.audits = append(c.audits, r)
	return nil
}

// FuzzClaimRequest: whatever a claim's body and query hold, no link is known here, so
// the answer is a refusal with no cookie and no echo of the token: a query is refused
// before anything is read or written (400), a body that is not {"token": string} is
// refused (400) with nothing written, and any token gets the one gone answer (410)
// with one expiring audit record. Nothing panics.
func FuzzClaimRequest(f *testing.F) {
	var ev httpapi.Request
	if err := json.Unmarshal(sample(f, "claim-key.json"), &ev); err != nil {
		f.Fatal(err)
	}
	f.Add(ev.Body, ev.RawQueryString)
	f.Add("", "")
	f.Add(`{"token":"okc1_"}`, "token=okc1_")
	f.Add("{\"token\":\"okc1_\u0000\xff\"}", "")
	f.Add(`{"token":"a","token":"b"}`, "")
	f.Fuzz(func(t *testing.T, body, rawQuery string) {
		st := &claims{}
		// The flow's Service on in-memory fakes (sendkey.New builds it on AWS).
		h := &sendkey.Handler{Service: &sendkey.Service{
			Store: st, Unwrapper: wrapper{}, Mailer: &mailer{}, AppURL: "https://vault.example.test",
			ClaimTTL: 72 * time.Hour, SendLimit: 1, RequestLimit: 1, Now: time.Now, Random: rand.Reader, Log: quiet,
		}, Directory: st, Log: quiet}
		req := ev
		req.Body = body
		req.RawQueryString = rawQuery
		req.QueryStringParameters = nil
		resp, err := h.Handle(context.Background(), req)
		if err != nil {
			t.Fatalf("the handler returned an error: %v", err)
		}
		if len(resp.Cookies) != 0 {
			t.Fatalf("answer %d with %d cookies", resp.StatusCode, len(resp.Cookies))
		}
		switch resp.StatusCode {
		case http.StatusBadRequest:
			if len(st.audits) != 0 {
				t.Fatalf("a refused request wrote %d audit records", len(st.audits))
			}
		case http.StatusGone:
			if rawQuery != "" {
				t.Fatal("a query was not refused")
			}
			if len(st.audits) != 1 || st.audits[0].TenantID != sendkey.UnknownTenant || st.audits[0].TTL == 0 {
				t.Fatalf("audit records %+v, want one expiring record under the unknown tenant", st.audits)
			}
		default:
			t.Fatalf("answer %d %s", resp.StatusCode, resp.Body)
		}
		var in struct{ Token string }
		if json.Unmarshal([]byte(body), &in) == nil && len(in.Token) > 8 && strings.Contains(resp.Body, in.Token) {
			t.Fatal("the answer echoes the token")
		}
	})
}
