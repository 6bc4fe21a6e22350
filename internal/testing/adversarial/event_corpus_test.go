package adversarial_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/mspvault/orgkey/internal/apperr"
	"github.com/mspvault/orgkey/internal/reset"
	"github.com/mspvault/orgkey/internal/tenant"
	"github.com/mspvault/orgkey/internal/testing/testenv"
)

// eventCase is one hostile event for a function that Lambda invokes directly.
type eventCase struct {
	name string
	raw  []byte
	// ignored: the function must answer success (hand the event back) without doing
	// anything; otherwise it must fail with an error whose text holds want.
	ignored bool
	want    string
}

// ------------------------------------------------------------------ activation

// signUp is events/activation-email.json for a fresh sign-up, as a map to edit.
func signUp(t *testing.T) (map[string]any, string, string) {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(readEvent(t, "activation-email.json"), &ev); err != nil {
		t.Fatal(err)
	}
	sub, email := testenv.UniqueName("sub"), addr("creator")
	ev["userName"] = sub
	attrs := ev["request"].(map[string]any)["userAttributes"].(map[string]any)
	attrs["sub"], attrs["email"], attrs["cognito:email_alias"] = sub, email, email
	return ev, sub, email
}

func marshal(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestHostileActivation(t *testing.T) {
	r := newRig(t)
	w := r.newWorld(t)

	// A sign-up that went through: its trigger replayed must do nothing again.
	done, _, doneEmail := signUp(t)
	if _, err := r.callActivation(t, marshal(t, done)); err != nil {
		t.Fatalf("valid sign-up: %v", err)
	}
	m := r.mailsTo(t, doneEmail)
	if len(m) != 1 {
		t.Fatalf("%d activation mails", len(m))
	}
	capture.mailed(keyIn(t, m[0].Text), doneEmail)

	edit := func(f func(ev, attrs map[string]any)) []byte {
		ev, _, _ := signUp(t)
		f(ev, ev["request"].(map[string]any)["userAttributes"].(map[string]any))
		return marshal(t, ev)
	}
	attr := func(k string, v any) []byte {
		return edit(func(_, a map[string]any) {
			if v == nil {
				delete(a, k)
			} else {
				a[k] = v
			}
		})
	}
	top := func(k string, v any) []byte {
		return edit(func(ev, _ map[string]any) { ev[k] = v })
	}
	valid := edit(func(_, _ map[string]any) {})
	bad, refused := "unsupported event", "account activation refused"
	replayed := func(f func(attrs map[string]any)) []byte {
		var ev map[string]any
		json.Unmarshal(marshal(t, done), &ev)
		f(ev["request"].(map[string]any)["userAttributes"].(map[string]any))
		return marshal(t, ev)
	}
	forgot := edit(func(ev, a map[string]any) {
		ev["triggerSource"] = "PostConfirmation_ConfirmForgotPassword"
		a["sub"] = w.orgAdmin.ID
		a["custom:company_name"] = "Hijack"
	})
	cases := []eventCase{
		{name: "empty", raw: []byte{}, want: bad},
		{name: "null", raw: []byte("null"), want: bad},
		{name: "array", raw: []byte("[]"), want: bad},
		{name: "string", raw: []byte(`"PostConfirmation_ConfirmSignUp"`), want: bad},
		{name: "truncated", raw: valid[:len(valid)/2], want: bad},
		{name: "empty object", raw: []byte("{}"), want: bad},
		{name: "unknown trigger source", raw: top("triggerSource", "PostConfirmation_Whatever"), want: bad},
		{name: "another trigger's source", raw: top("triggerSource", "PreAuthentication_Authentication"), want: bad},
		{name: "a sign-up relabelled PreSignUp (checked only, nothing written)", raw: top("triggerSource", "PreSignUp_SignUp"), ignored: true},
		{name: "trigger source a number", raw: top("triggerSource", 7), want: bad},
		{name: "schedule look-alike from another source", raw: []byte(`{"source":"evil.app","detail-type":"Scheduled Event"}`), want: bad},
		{name: "schedule look-alike of another type", raw: []byte(`{"source":"aws.events","detail-type":"Object Created"}`), want: bad},
		{name: "userAttributes an array", raw: edit(func(ev, _ map[string]any) { ev["request"] = map[string]any{"userAttributes": []any{}} }), want: bad},
		{name: "attribute a number", raw: attr("email", 5), want: bad},
		{name: "missing sub", raw: attr("sub", nil), want: refused},
		{name: "empty sub", raw: attr("sub", ""), want: refused},
		{name: "sub of 200 characters", raw: attr("sub", strings.Repeat("s", 200)), want: refused},
		{name: "sub with a NUL", raw: attr("sub", "sub\x00x"), want: refused},
		{name: "sub with invalid UTF-8", raw: []byte(strings.Replace(string(valid), `"sub":"`, "\"sub\":\"\xff", 1)), want: bad},
		{name: "missing email", raw: attr("email", nil), want: refused},
		{name: "email not an address", raw: attr("email", "camille"), want: refused},
		{name: "email with a display name", raw: attr("email", "Camille <camille@example.test>"), want: refused},
		{name: "email with a header injection", raw: attr("email", "camille@example.test\r\nBcc: eve@example.test"), want: refused},
		{name: "email of 300 characters", raw: attr("email", strings.Repeat("c", 290)+"@example.test"), want: refused},
		{name: "missing company name", raw: attr("custom:company_name", nil), want: refused},
		{name: "blank company name", raw: attr("custom:company_name", " \t "), want: refused},
		{name: "company name of 10,000 characters", raw: attr("custom:company_name", strings.Repeat("C", 10000)), want: refused},
		{name: "company name with a NUL", raw: attr("custom:company_name", "Acme\x00Evil"), want: refused},
		{name: "company name with a bell", raw: attr("custom:company_name", "Acme\aIT"), want: refused},
		{name: "name of 500 characters", raw: attr("name", strings.Repeat("n", 500)), want: refused},
		{name: "name with a newline (subject injection)", raw: attr("name", "Camille\nBcc: eve@example.test"), want: refused},
		{name: "locale of 100 characters", raw: attr("locale", strings.Repeat("f", 100)), want: refused},
		{name: "locale with a control character", raw: attr("locale", "fr\x1b[31m"), want: refused},
		{name: "a megabyte company name", raw: attr("custom:company_name", strings.Repeat("M", 1<<20)), want: bad},
		{name: "email repeated, last one bad", raw: func() []byte {
			ev, _, email := signUp(t)
			return []byte(strings.Replace(string(marshal(t, ev)), `"email":"`+email+`"`, `"email":"`+email+`","email":"x"`, 1))
		}(), want: bad},
		{name: "trigger source twice, a forgot-password first", raw: []byte(strings.Replace(string(forgot), `"triggerSource":"PostConfirmation_ConfirmForgotPassword"`,
			`"triggerSource":"PostConfirmation_ConfirmForgotPassword","triggerSource":"PostConfirmation_ConfirmSignUp"`, 1)), want: bad},
		{name: "trigger source twice in another case", raw: []byte(strings.Replace(string(valid), `"triggerSource":"PostConfirmation_ConfirmSignUp"`,
			`"TriggerSource":"PostConfirmation_ConfirmForgotPassword","triggerSource":"PostConfirmation_ConfirmSignUp"`, 1)), want: bad},
		{name: "replayed after it finished", raw: marshal(t, done), ignored: true},
		{name: "replayed with another company and address", raw: replayed(func(a map[string]any) {
			a["custom:company_name"], a["email"] = "Evil Corp", addr("eve")
		}), ignored: true},
		{name: "forgot-password trigger for an org admin's sub", raw: forgot, ignored: true},
	}
	if n := len(cases); n < 30 {
		t.Errorf("only %d hostile events", n)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer figures.input(t, "activation-email (Cognito trigger)")
			before := r.snapshot(t)
			mails := len(r.mails(t))
			out, err := r.callActivation(t, tc.raw)
			switch {
			case tc.ignored && err != nil:
				t.Errorf("want the event handed back, got %v", err)
			case tc.ignored && string(marshalAny(out)) != string(normalize(tc.raw)):
				t.Errorf("the event was not handed back unchanged: %s", marshalAny(out))
			case !tc.ignored && (err == nil || out != nil):
				t.Errorf("want a refusal, got %v, %v", jsonOf(out), err)
			case !tc.ignored && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "internal") {
				t.Errorf("the error shown to the user says something internal: %v", err)
			}
			r.assertOnly(t, before, effects{})
			if n := len(r.mails(t)) - mails; n != 0 {
				t.Errorf("%d mails went out", n)
			}
		})
	}
}

// ------------------------------------------------------------------ PreSignUp

// TestHostilePreSignUp: what Cognito's PreSignUp trigger refuses never becomes an
// account. Every case is refused (with the reason the sign-up form shows) or, for a
// visible look-alike, accepted; none writes anything or sends a mail.
func TestHostilePreSignUp(t *testing.T) {
	r := newRig(t)
	w := r.newWorld(t)
	ctx := t.Context()
	kate, err := r.seeder.User(ctx, w.a.ID, tenant.User{Email: testenv.UniqueName("kate") + "@example.test", Name: "Kate", Role: tenant.ProUser})
	if err != nil {
		t.Fatal(err)
	}
	base := func() map[string]any {
		var ev map[string]any
		if err := json.Unmarshal(readEvent(t, "activation-presignup.json"), &ev); err != nil {
			t.Fatal(err)
		}
		ev["userName"] = testenv.UniqueName("sub")
		ev["request"].(map[string]any)["userAttributes"].(map[string]any)["email"] = addr("signup")
		return ev
	}
	attr := func(k string, v any) []byte {
		ev := base()
		a := ev["request"].(map[string]any)["userAttributes"].(map[string]any)
		if v == nil {
			delete(a, k)
		} else {
			a[k] = v
		}
		return marshal(t, ev)
	}
	company := func(v string) []byte { return attr("custom:company_name", v) }
	top := func(k string, v any) []byte {
		ev := base()
		ev[k] = v
		return marshal(t, ev)
	}
	valid := string(marshal(t, base()))
	replace := func(old, new string) []byte { return []byte(strings.Replace(valid, old, new, 1)) }
	bad := "unsupported event"
	mb := strings.Repeat("M", 1<<20)
	cases := []eventCase{
		// Missing and odd attributes.
		{name: "no company name", raw: company("\x00")[:0], want: bad}, // replaced below
		{name: "company name empty", raw: company(""), want: "missing_company_name"},
		{name: "company name of spaces", raw: company("   "), want: "missing_company_name"},
		{name: "company name of no-break spaces", raw: company("\u00a0\u202f\u3000"), want: "missing_company_name"},
		{name: "no name", raw: attr("name", nil), want: "missing_name"},
		{name: "blank name", raw: attr("name", " "), want: "missing_name"},
		{name: "no email", raw: attr("email", nil), want: "missing_email"},
		{name: "email not an address", raw: attr("email", "camille"), want: "invalid_email"},
		{name: "email with a display name", raw: attr("email", "Camille <camille@example.test>"), want: "invalid_email"},
		{name: "email with a header injection", raw: attr("email", "camille@example.test\r\nBcc: eve@example.test"), want: "invalid_email"},
		{name: "email of 300 characters", raw: attr("email", strings.Repeat("c", 290)+"@example.test"), want: "invalid_email"},
		{name: "email with a zero-width space", raw: attr("email", "cam\u200bille@example.test"), want: "invalid_email"},
		{name: "locale with an escape sequence", raw: attr("locale", "fr\x1b[31m"), want: "invalid_locale"},
		{name: "company name a number", raw: attr("custom:company_name", 5), want: bad},
		{name: "userAttributes an array", raw: top("request", map[string]any{"userAttributes": []any{}}), want: bad},
		{name: "no request", raw: top("request", nil), want: bad},
		// Every class of invisible character.
		{name: "zero-width space", raw: company("Acme\u200b IT"), want: "invalid_company_name"},
		{name: "zero-width non-joiner", raw: company("Acme\u200cIT"), want: "invalid_company_name"},
		{name: "zero-width joiner", raw: company("Acme\u200dIT"), want: "invalid_company_name"},
		{name: "left-to-right mark", raw: company("Acme\u200eIT"), want: "invalid_company_name"},
		{name: "right-to-left override", raw: company("Acme \u202eTI"), want: "invalid_company_name"},
		{name: "bidi isolates", raw: company("Acme \u2067IT\u2069"), want: "invalid_company_name"},
		{name: "byte order mark", raw: company("\ufeffAcme IT"), want: "invalid_company_name"},
		{name: "soft hyphen", raw: company("Ac\u00adme IT"), want: "invalid_company_name"},
		{name: "word joiner", raw: company("Acme\u2060IT"), want: "invalid_company_name"},
		{name: "Mongolian vowel separator", raw: company("Acme\u180eIT"), want: "invalid_company_name"},
		{name: "tag characters", raw: company("Acme IT\U000e0041\U000e0042"), want: "invalid_company_name"},
		{name: "Hangul filler alone", raw: company("\u3164"), want: "invalid_company_name"},
		{name: "combining grapheme joiner", raw: company("Acme\u034fIT"), want: "invalid_company_name"},
		{name: "variation selector", raw: company("Acme\ufe0fIT"), want: "invalid_company_name"},
		{name: "private use", raw: company("Acme \ue000"), want: "invalid_company_name"},
		{name: "private use, plane 15", raw: company("Acme \U000f0001"), want: "invalid_company_name"},
		{name: "noncharacter", raw: company("Acme \ufffe"), want: "invalid_company_name"},
		{name: "replacement character", raw: company("Acme \ufffd"), want: "invalid_company_name"},
		{name: "C1 control", raw: company("Acme\u0085IT"), want: "invalid_company_name"},
		{name: "line separator", raw: company("Acme\u2028IT"), want: "invalid_company_name"},
		{name: "NUL", raw: company("Acme\x00IT"), want: "invalid_company_name"},
		{name: "escape in the name", raw: attr("name", "Camille\x1b[2J"), want: "invalid_name"},
		{name: "zero-width space in the name", raw: attr("name", "Cam\u200bille"), want: "invalid_name"},
		{name: "invalid UTF-8", raw: replace(`"custom:company_name":"`, "\"custom:company_name\":\"\xff"), want: bad},
		// Look-alikes.
		{name: "a member's address", raw: attr("email", w.pro.Email), want: "email_taken"},
		{name: "a member's address in capitals", raw: attr("email", strings.ToUpper(w.orgAdmin.Email)), want: "email_taken"},
		{name: "another tenant's admin, mixed case", raw: attr("email", strings.ToUpper(w.bAdmin.Email[:3])+w.bAdmin.Email[3:]), want: "email_taken"},
		{name: "a member's address with the Kelvin sign for k", raw: attr("email", "\u212a"+kate.Email[1:]), want: "email_"},
		{name: "company name of 129 characters", raw: company(strings.Repeat("\u00e9", 129)), want: "company_name_too_long"},
		{name: "look-alike Cyrillic company name (visible: accepted, nothing written)", raw: company("\u0410\u0441\u043c\u0435 IT"), ignored: true},
		{name: "fullwidth company name (visible: accepted, nothing written)", raw: company("\uff21\uff43\uff4d\uff45 IT"), ignored: true},
		// A megabyte.
		{name: "a megabyte company name", raw: company(mb), want: bad},
		{name: "a megabyte name", raw: attr("name", mb), want: bad},
		{name: "a megabyte unknown attribute", raw: attr("custom:notes", mb), want: bad},
		// Repeated fields.
		{name: "email twice", raw: replace(`"email":"`, `"email":"x@example.test","email":"`), want: bad},
		{name: "email twice in another case", raw: replace(`"email":"`, `"Email":"x@example.test","email":"`), want: bad},
		{name: "trigger source twice", raw: replace(`"triggerSource":"PreSignUp_SignUp"`, `"triggerSource":"PreSignUp_SignUp","triggerSource":"PostConfirmation_ConfirmSignUp"`), want: bad},
		{name: "trigger source in another case only", raw: replace(`"triggerSource":`, `"TriggerSource":`), want: bad},
		{name: "userAttributes twice", raw: replace(`"userAttributes":{`, `"userAttributes":{},"userAttributes":{`), want: bad},
		// Wrong trigger sources.
		{name: "external provider", raw: top("triggerSource", "PreSignUp_ExternalProvider"), want: "sign_up_refused"},
		{name: "trigger source in lower case", raw: top("triggerSource", "presignup_signup"), want: bad},
		{name: "trigger source with a trailing space", raw: top("triggerSource", "PreSignUp_SignUp "), want: bad},
		{name: "another trigger", raw: top("triggerSource", "CustomMessage_SignUp"), want: bad},
		{name: "trigger source null", raw: top("triggerSource", nil), want: bad},
		{name: "trigger source and a schedule's source", raw: top("source", "aws.events"), want: bad},
	}
	cases[0].raw = company("\x00")
	cases[0] = eventCase{name: "no company name", raw: attr("custom:company_name", nil), want: "missing_company_name"}
	if n := len(cases); n < 30 {
		t.Errorf("only %d hostile events", n)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer figures.input(t, "activation-email (PreSignUp trigger)")
			before := r.snapshot(t)
			mails := len(r.mails(t))
			out, err := r.callActivation(t, tc.raw)
			switch {
			case tc.ignored && err != nil:
				t.Errorf("want the event handed back, got %v", err)
			case tc.ignored && string(marshalAny(out)) != string(normalize(tc.raw)):
				t.Errorf("the event was not handed back unchanged: %s", marshalAny(out))
			case !tc.ignored && (err == nil || out != nil):
				t.Errorf("want a refusal, got %v, %v", jsonOf(out), err)
			case !tc.ignored && !strings.Contains(err.Error(), tc.want):
				t.Errorf("error %q, want it to say %q", err, tc.want)
			}
			if err != nil && strings.Contains(err.Error(), "internal") {
				t.Errorf("the error shown to the user says something internal: %v", err)
			}
			r.assertOnly(t, before, effects{})
			if n := len(r.mails(t)) - mails; n != 0 {
				t.Errorf("%d mails went out", n)
			}
		})
	}
}

func marshalAny(v any) []byte {
	b, _ := json.Marshal(v)
	return normalize(b)
}

func normalize(b []byte) []byte {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return b
	}
	out, _ := json.Marshal(v)
	return out
}

// ------------------------------------------------------------------ support reset

func TestHostileSupportReset(t *testing.T) {
	r := newRig(t)
	w := r.newWorld(t)
	ctx := t.Context()

	// Another organization, reset for real under a ticket that the hostile events
	// below then reuse for w.a.
	cName := "Cible " + testenv.UniqueName("SARL")
	c, cAdmin, _, err := r.seeder.Organization(ctx, cName, tenant.User{Email: addr("cadmin"), Name: "Claire"})
	if err != nil {
		t.Fatal(err)
	}
	usedTicket := testenv.UniqueName("SUP")
	cRaw := resetEvent(t, c.ID, usedTicket, cName, cAdmin.Email, false)
	r.confirmedReset(t, cRaw, cAdmin)
	rep, err := r.callReset(t, cRaw, time.Minute)
	if err != nil || rep.Status != reset.StatusCompleted {
		t.Fatalf("reset of the other organization: %+v %v", rep, err)
	}
	m := r.keyMails(t, cAdmin.Email)
	if len(m) != 1 {
		t.Fatalf("%d reset mails", len(m))
	}
	capture.mailed(keyIn(t, m[0].Text), cAdmin.Email)

	base := func() map[string]any {
		var ev map[string]any
		json.Unmarshal(resetEvent(t, w.a.ID, testenv.UniqueName("SUP"), w.aName, w.orgAdmin.Email, false), &ev)
		return ev
	}
	set := func(k string, v any) []byte {
		ev := base()
		if v == nil {
			delete(ev, k)
		} else {
			ev[k] = v
		}
		return marshal(t, ev)
	}
	setVer := func(k string, v any) []byte {
		ev := base()
		ev["verification"].(map[string]any)[k] = v
		return marshal(t, ev)
	}
	valid := marshal(t, base())
	inv := "invalid_input"
	cases := []struct {
		name   string
		raw    []byte
		code   apperr.Code
		reason string
	}{
		{"empty", []byte{}, apperr.Invalid, inv},
		{"null", []byte("null"), apperr.Invalid, inv},
		{"array", []byte("[]"), apperr.Invalid, inv},
		{"the event as a JSON string", marshal(t, string(valid)), apperr.Invalid, inv},
		{"truncated", valid[:len(valid)-20], apperr.Invalid, inv},
		{"byte order mark", append([]byte("\ufeff"), valid...), apperr.Invalid, inv},
		{"trailing data", append(append([]byte{}, valid...), " {}"...), apperr.Invalid, inv},
		{"over 16 KiB", set("agent", strings.Repeat("a", 17<<10)), apperr.Invalid, inv},
		{"unknown field", set("force", true), apperr.Invalid, inv},
		{"field in another case", []byte(strings.Replace(string(valid), `"ticketId"`, `"TicketId"`, 1)), apperr.Invalid, inv},
		{"field twice", []byte(strings.Replace(string(valid), `"dryRun":false`, `"dryRun":true,"dryRun":false`, 1)), apperr.Invalid, inv},
		{"dryRun as a string", set("dryRun", "false"), apperr.Invalid, inv},
		{"dryRun as a number", set("dryRun", 0), apperr.Invalid, inv},
		{"missing dryRun", set("dryRun", nil), apperr.Invalid, inv},
		{"verification a string", set("verification", "phone"), apperr.Invalid, inv},
		{"verification null", set("verification", nil), apperr.Invalid, inv},
		{"tenantId an array", set("tenantId", []string{w.a.ID}), apperr.Invalid, inv},
		{"ticketId a number", set("ticketId", 4217), apperr.Invalid, inv},
		{"ticketId with a NUL", set("ticketId", "SUP-1\x00"), apperr.Invalid, "invalid_field"},
		{"ticketId with a newline", set("ticketId", "SUP-1\nSUP-2"), apperr.Invalid, "invalid_field"},
		{"ticketId of 200 characters", set("ticketId", strings.Repeat("T", 200)), apperr.Invalid, "invalid_field"},
		{"tenantId with a leading space", set("tenantId", " "+w.a.ID), apperr.Invalid, "invalid_field"},
		{"agent with invalid UTF-8", []byte(strings.Replace(string(valid), `"agent":"`, "\"agent\":\"\xff", 1)), apperr.Invalid, inv},
		{"field twice, the second in another case", []byte(strings.Replace(string(valid), `"dryRun":false`, `"dryRun":false,"DryRun":true`, 1)), apperr.Invalid, inv},
		{"verification field twice", []byte(strings.Replace(string(valid), `"method":"`, `"method":"in_person","Method":"`, 1)), apperr.Invalid, inv},
		{"empty verification reference", setVer("reference", ""), apperr.Invalid, "missing_field"},
		{"verification reference of 5,000 characters", setVer("reference", strings.Repeat("r", 5000)), apperr.Invalid, "invalid_field"},
		{"verification method made up", setVer("method", "trust_me"), apperr.Invalid, "invalid_verification_method"},
		{"organization name with a NUL", set("confirmOrganizationName", w.aName+"\x00"), apperr.Invalid, "invalid_field"},
		{"organization name in capitals", set("confirmOrganizationName", strings.ToUpper(w.aName)), apperr.Invalid, "organization_name_mismatch"},
		{"other tenant with this organization's name", set("tenantId", w.b.ID), apperr.Invalid, "organization_name_mismatch"},
		{"tenant that does not exist", set("tenantId", "org_"+strings.Repeat("0", 26)), apperr.Invalid, "organization_not_found"},
		{"tenantId naming a table key", set("tenantId", w.a.ID+"#USER#"+w.orgAdmin.ID), apperr.Invalid, "organization_not_found"},
		{"keep another tenant's admin", set("keepAdminEmail", w.bAdmin.Email), apperr.Invalid, "keep_admin_not_found"},
		{"keep a deleted admin", set("keepAdminEmail", w.deleted.Email), apperr.Invalid, "keep_admin_not_found"},
		{"keep a lowered admin", set("keepAdminEmail", w.loweredAdmin.Email), apperr.Invalid, "keep_admin_not_org_admin"},
		{"keep a site admin", set("keepAdminEmail", w.siteAdmin.Email), apperr.Invalid, "keep_admin_not_org_admin"},
		{"keep address with a display name", set("keepAdminEmail", "Camille <"+w.orgAdmin.Email+">"), apperr.Invalid, "invalid_keep_admin_email"},
		{"keep address with a header injection", set("keepAdminEmail", w.orgAdmin.Email+"\r\nBcc: eve@example.test"), apperr.Invalid, "invalid_field"},
		{"ticket already used for another organization", set("ticketId", usedTicket), apperr.Conflict, "ticket_reused"},
	}
	if n := len(cases); n < 30 {
		t.Errorf("only %d hostile events", n)
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			defer figures.input(t, "support-reset (console event)")
			before := r.snapshot(t)
			mails := len(r.mails(t))
			rep, err := r.callReset(t, tc.raw, time.Minute)
			var e *reset.Error
			switch {
			case rep != nil || !errors.As(err, &e):
				t.Errorf("want a refusal, got %s, %v", jsonOf(rep), err)
			case e.Code != tc.code || e.Reason != tc.reason:
				t.Errorf("refusal %v, want %s (%s)", e, tc.code, tc.reason)
			case !strings.Contains(e.Message, "nothing was changed"):
				t.Errorf("refusal does not say nothing changed: %v", e)
			}
			r.assertOnly(t, before, effects{})
			if n := len(r.mails(t)) - mails; n != 0 {
				t.Errorf("%d mails went out", n)
			}
		})
	}
}

// resetEvent is events/support-reset.json aimed at an organization.
func resetEvent(t *testing.T, tid, ticket, name, keep string, dryRun bool) []byte {
	t.Helper()
	var ev map[string]any
	if err := json.Unmarshal(readEvent(t, "support-reset.json"), &ev); err != nil {
		t.Fatal(err)
	}
	ev["tenantId"], ev["ticketId"], ev["confirmOrganizationName"], ev["keepAdminEmail"], ev["dryRun"] = tid, ticket, name, keep, dryRun
	return marshal(t, ev)
}
