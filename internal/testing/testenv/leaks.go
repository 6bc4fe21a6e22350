package testenv

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"

	"github.com/mspvault/orgkey/internal/dev/emulators"
	"github.com/mspvault/orgkey/internal/orgkey"
)

// Ledger is a test binary's one leak check. Tests tell it every secret they saw
// (org keys, claim tokens, JWTs) with whom a flow is documented to mail it, and every
// answer and event result the flows gave; the handlers log to Logs. Its Check, run
// from TestMain after every test, then looks for every secret, in every form a parser
// accepts, and for anything shaped like one, in every log line, answer (headers and
// body), event result, mail (recipients, subject, text, HTML) and in a full scan of
// every table the run used (the shared one, and each NewTable's, scanned before it is
// deleted). A secret is allowed only where the product documents it: a key in an
// answer the test marks as carrying it (reveal-key's 200 body, the claim cookie), a
// key or token in a mail whose every recipient is one of its documented addressees.
// No mail of the product has a CC or BCC recipient.
type Ledger struct {
	// Logs is where the tests' handlers log (directly or as a tee).
	Logs *LogBuffer

	mu      sync.Mutex
	keys    map[string][]string // canonical key -> its documented mail recipients
	tokens  map[string][]string // claim token -> its addressees
	jwts    map[string]bool
	answers []Answer
	texts   []string
}

// Answer is one answer of an HTTP entry point, with where it may carry an org key.
type Answer struct {
	Entry   string // e.g. "POST /org-key/reveal"
	Status  int
	Headers map[string]string
	Cookies []string
	Body    string
	// KeyInBody and KeyInCookies mark the documented places of a key (of the
	// caller's own organization, which the test checks where it made the call).
	KeyInBody, KeyInCookies bool
}

// NewLedger returns an empty ledger with its log sink.
func NewLedger() *Ledger {
	return &Ledger{Logs: NewLogBuffer(), keys: map[string][]string{}, tokens: map[string][]string{}, jwts: map[string]bool{}}
}

// Key records an org key the run produced; mailTo are the addresses a flow is
// documented to mail it to (the creator's activation mail, the kept admin's reset
// mail), none if no mail may carry it.
func (l *Ledger) Key(k orgkey.Key, mailTo ...string) {
	if k.IsZero() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.keys[k.Reveal()] = addNew(l.keys[k.Reveal()], mailTo)
}

// addNew appends the addresses list does not hold yet.
func addNew(list, more []string) []string {
	for _, a := range more {
		if !slices.Contains(list, a) {
			list = append(list, a)
		}
	}
	return list
}

// Token records a claim token and its addressees.
func (l *Ledger) Token(tok string, mailTo ...string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.tokens[tok] = addNew(l.tokens[tok], mailTo)
}

// JWT records a token a caller presented.
func (l *Ledger) JWT(s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.jwts[s] = true
}

// Answer records an HTTP answer; a key in a documented place joins the secrets
// (a key no mail may carry).
func (l *Ledger) Answer(a Answer) {
	var shown []orgkey.Key
	if a.KeyInBody {
		if k, ok := orgkey.Find(a.Body); ok {
			shown = append(shown, k)
		}
	}
	if a.KeyInCookies {
		if k, ok := orgkey.Find(strings.Join(a.Cookies, "\n")); ok {
			shown = append(shown, k)
		}
	}
	for _, k := range shown {
		l.Key(k)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.answers = append(l.answers, a)
}

// Text records an event result (what it answered, the error it returned).
func (l *Ledger) Text(what, s string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.texts = append(l.texts, what+": "+s)
}

// Counts reports how many secrets and answers the ledger holds.
func (l *Ledger) Counts() (keys, tokens, jwts, answers int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.keys), len(l.tokens), len(l.jwts), len(l.answers)
}

// Leak is one place where a secret was found.
type Leak struct{ Where, What string }

func (k Leak) Error() string { return "leak: " + k.Where + ": " + k.What }

// Check is the ledger's Check for Main. need says what a full run must have seen
// (e.g. Need{Keys: true, Mails: true}), so that a check that checked nothing fails.
func (l *Ledger) Check(need Need) Check {
	return func(e *Env) error {
		leaks, checked, err := l.Scan(context.Background(), e)
		if err != nil {
			return fmt.Errorf("leak scan: %w", err)
		}
		var errs []error
		if FullRun() {
			k, tk, j, a := l.Counts()
			if (need.Keys && k == 0) || (need.Tokens && tk == 0) || (need.JWTs && j == 0) || (need.Answers && a == 0) || l.Logs.String() == "" {
				errs = append(errs, fmt.Errorf("leak scan: nothing to check (%d keys, %d tokens, %d JWTs, %d answers, %d bytes of logs)", k, tk, j, a, len(l.Logs.String())))
			}
		}
		_ = checked
		for _, lk := range leaks {
			errs = append(errs, lk)
		}
		return errors.Join(errs...)
	}
}

// Need names what a full run must have given the ledger.
type Need struct{ Keys, Tokens, JWTs, Answers bool }

// fold maps a text as orgkey.Parse reads a key: upper case, no dashes, spaces or
// tabs, the look-alikes O, I and L as 0, 1 and 1. A key in any form Parse accepts
// folds to the key's own folded form.
func fold(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '-' || c == ' ' || c == '\t':
			continue
		case c >= 'a' && c <= 'z':
			c -= 'a' - 'A'
		}
		switch c {
		case 'O':
			c = '0'
		case 'I', 'L':
			c = '1'
		}
		b.WriteByte(c)
	}
	return b.String()
}

var (
	// foldedKeyShape is any key once folded; a candidate is a key if Parse takes it.
	foldedKeyShape = regexp.MustCompile(`0K1[0-9A-HJKMNP-TV-Z]{28}`)
	tokenShape     = regexp.MustCompile(regexp.QuoteMeta(orgkey.ClaimPrefix) + `[A-Za-z0-9_-]{43}`)
	jwtShape       = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}`)
)

// secretsIn reports the known secrets and the secret-shaped strings in s: keys in
// any form Parse accepts, tokens whole or without their prefix, JWTs whole or by
// their signature.
type found struct {
	keys, tokens []string // canonical
	jwt          bool
	unknownKey   bool // a well-formed key not in the ledger
	shape        bool // a token or JWT shape not in the ledger
}

type secretSet struct {
	keys         map[string]string // folded -> canonical
	tokens       map[string]string // token body -> token
	jwts, jwtSig map[string]bool
}

func (s *secretSet) find(text string) found {
	var f found
	folded := fold(text)
	for _, cand := range foldedKeyShape.FindAllString(folded, -1) {
		if c, ok := s.keys[cand]; ok {
			if !slices.Contains(f.keys, c) {
				f.keys = append(f.keys, c)
			}
		} else if _, err := orgkey.Parse(cand); err == nil {
			f.unknownKey = true
		}
	}
	for fk, c := range s.keys {
		if strings.Contains(folded, fk) && !slices.Contains(f.keys, c) {
			f.keys = append(f.keys, c)
		}
	}
	for body, tok := range s.tokens {
		if strings.Contains(text, body) {
			f.tokens = append(f.tokens, tok)
		}
	}
	for _, cand := range tokenShape.FindAllString(text, -1) {
		if _, ok := s.tokens[strings.TrimPrefix(cand, orgkey.ClaimPrefix)]; !ok {
			f.shape = true
		}
	}
	for j := range s.jwts {
		if strings.Contains(text, j) {
			f.jwt = true
		}
	}
	for sig := range s.jwtSig {
		if strings.Contains(text, sig) {
			f.jwt = true
		}
	}
	if jwtShape.MatchString(text) {
		f.jwt = true
	}
	return f
}

func (l *Ledger) secrets() secretSet {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := secretSet{keys: map[string]string{}, tokens: map[string]string{}, jwts: map[string]bool{}, jwtSig: map[string]bool{}}
	for k := range l.keys {
		s.keys[fold(k)] = k
	}
	for t := range l.tokens {
		s.tokens[strings.TrimPrefix(t, orgkey.ClaimPrefix)] = t
	}
	for j := range l.jwts {
		s.jwts[j] = true
		if i := strings.LastIndexByte(j, '.'); i >= 0 && len(j)-i > 16 {
			s.jwtSig[j[i+1:]] = true
		}
	}
	return s
}

// Scan runs the check and returns what it found and how many places it looked at.
func (l *Ledger) Scan(ctx context.Context, e *Env) (leaks []Leak, checked int, err error) {
	s := l.secrets()
	l.mu.Lock()
	answers := slices.Clone(l.answers)
	texts := slices.Clone(l.texts)
	mailTo := maps.Clone(l.keys)
	tokenTo := maps.Clone(l.tokens)
	l.mu.Unlock()
	add := func(where, what string) { leaks = append(leaks, Leak{where, what}) }
	// nowhere reports every secret or secret shape in text: a place none may be.
	nowhere := func(where, text string) {
		checked++
		f := s.find(text)
		switch {
		case len(f.keys) > 0:
			add(where, "holds an org key")
		case f.unknownKey:
			add(where, "holds something Parse reads as an org key")
		}
		if len(f.tokens) > 0 || f.shape {
			add(where, "holds a claim token")
		}
		if f.jwt {
			add(where, "holds a JWT")
		}
	}

	for i, line := range strings.Split(l.Logs.String(), "\n") {
		nowhere(fmt.Sprintf("log line %d", i+1), line)
	}
	for i, t := range texts {
		nowhere(fmt.Sprintf("event result %d (%.40s)", i+1, t), t)
	}
	for i, a := range answers {
		where := fmt.Sprintf("answer %d of %s (%d)", i+1, a.Entry, a.Status)
		hdr, _ := json.Marshal(a.Headers)
		nowhere(where+" headers", string(hdr))
		cookies := strings.Join(a.Cookies, "\n")
		if a.KeyInCookies {
			strictKeyAllowed(&leaks, s, where+" cookies", cookies)
		} else {
			nowhere(where+" cookies", cookies)
		}
		if a.KeyInBody {
			strictKeyAllowed(&leaks, s, where+" body", a.Body)
		} else {
			nowhere(where+" body", a.Body)
		}
		checked += 2
	}

	mails, err := e.Emails(ctx)
	if err != nil {
		return nil, checked, err
	}
	for i, m := range mails {
		checked++
		where := fmt.Sprintf("mail %d (%q to %v)", i+1, m.Subject, m.To)
		if len(m.CC) > 0 || len(m.BCC) > 0 {
			add(where, fmt.Sprintf("has CC %v or BCC %v recipients; no mail of the product has any", m.CC, m.BCC))
		}
		recipients := slices.Concat(m.To, m.CC, m.BCC)
		nowhere(where+" recipients", strings.Join(recipients, ","))
		f := s.find(m.Subject + "\n" + m.Text + "\n" + m.HTML)
		if f.jwt {
			add(where, "holds a JWT")
		}
		if f.unknownKey {
			add(where, "holds an org key the run never recorded")
		}
		if f.shape {
			add(where, "holds a claim token the run never recorded")
		}
		for _, k := range f.keys {
			if !allIn(recipients, mailTo[k]) {
				add(where, fmt.Sprintf("holds an org key; its documented recipients are %v", mailTo[k]))
			}
		}
		for _, t := range f.tokens {
			if !allIn(recipients, tokenTo[t]) {
				add(where, fmt.Sprintf("holds a claim token; its addressees are %v", tokenTo[t]))
			}
		}
	}

	for _, d := range e.tableDumps(ctx) {
		if d.err != nil {
			return leaks, checked, d.err
		}
		for _, k := range slices.Sorted(maps.Keys(d.items)) {
			nowhere(fmt.Sprintf("table %s item %s", d.table, k), d.items[k])
		}
	}
	return leaks, checked, nil
}

// strictKeyAllowed checks a documented place of a key: a key may be there, nothing
// else may.
func strictKeyAllowed(leaks *[]Leak, s secretSet, where, text string) {
	f := s.find(text)
	if len(f.tokens) > 0 || f.shape {
		*leaks = append(*leaks, Leak{where, "holds a claim token"})
	}
	if f.jwt {
		*leaks = append(*leaks, Leak{where, "holds a JWT"})
	}
}

// allIn reports whether every recipient is one of the documented addresses (and
// there is at least one).
func allIn(recipients, documented []string) bool {
	if len(recipients) == 0 {
		return false
	}
	for _, r := range recipients {
		if !containsFold(documented, bareAddress(r)) {
			return false
		}
	}
	return true
}

// bareAddress strips a display name: "Name <addr>" -> addr.
func bareAddress(s string) string {
	if i := strings.LastIndexByte(s, '<'); i >= 0 && strings.HasSuffix(s, ">") {
		return s[i+1 : len(s)-1]
	}
	return s
}

// tableDump is a whole table, item key to the item in JSON.
type tableDump struct {
	table string
	items map[string]string
	err   error
}

// dumps holds the tables NewTable made, scanned just before their deletion.
var dumps struct {
	mu   sync.Mutex
	list []tableDump
}

func (e *Env) tableDumps(ctx context.Context) []tableDump {
	dumps.mu.Lock()
	out := slices.Clone(dumps.list)
	dumps.mu.Unlock()
	items, err := e.dump(ctx, e.TableName)
	return append(out, tableDump{e.TableName, items, err})
}

// dump reads a whole table, item by item as canonical JSON (strings as text).
func (e *Env) dump(ctx context.Context, table string) (map[string]string, error) {
	out := map[string]string{}
	p := dynamodb.NewScanPaginator(dynamodb.NewFromConfig(e.AWSConfig), &dynamodb.ScanInput{TableName: &table, ConsistentRead: aws.Bool(true)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("scanning %q: %w", table, err)
		}
		for _, it := range page.Items {
			var m map[string]any
			if err := attributevalue.UnmarshalMap(it, &m); err != nil {
				return nil, fmt.Errorf("decoding an item of %q: %w", table, err)
			}
			b, err := json.Marshal(m)
			if err != nil {
				return nil, err
			}
			out[fmt.Sprint(m["pk"])+" | "+fmt.Sprint(m["sk"])] = string(b)
		}
	}
	return out, nil
}

// Dump returns the whole table, item key ("pk | sk") to the item as JSON, failing
// the test if it cannot be read. Two dumps compare with DiffDumps.
func (e *Env) Dump(tb testing.TB, table string) map[string]string {
	tb.Helper()
	d, err := e.dump(tb.Context(), table)
	if err != nil {
		tb.Fatalf("testenv: %v", err)
	}
	return d
}

// DiffDumps lists the items added, deleted or changed between two dumps, sorted.
func DiffDumps(before, after map[string]string) []string {
	var out []string
	for k, a := range after {
		b, ok := before[k]
		switch {
		case !ok:
			out = append(out, "added "+k+": "+a)
		case a != b:
			out = append(out, "changed "+k+":\n before "+b+"\n after  "+a)
		}
	}
	for k, b := range before {
		if _, ok := after[k]; !ok {
			out = append(out, "deleted "+k+": "+b)
		}
	}
	sort.Strings(out)
	return out
}

// MailsTo is Env.MailsTo for a test that reads the mails a flow documents sending
// addr with a secret (activation, reset: a key; send-key: a claim token): every key
// and token in them is recorded as addr's to receive.
func (l *Ledger) MailsTo(tb testing.TB, addr string) []emulators.Email {
	tb.Helper()
	mails := Get(tb).MailsTo(tb, addr)
	for _, m := range mails {
		body := m.Subject + "\n" + m.Text + "\n" + m.HTML
		for _, cand := range foldedKeyShape.FindAllString(fold(body), -1) {
			if k, err := orgkey.Parse(cand); err == nil {
				l.Key(k, addr)
			}
		}
		for _, tok := range tokenShape.FindAllString(body, -1) {
			l.Token(tok, addr)
		}
	}
	return mails
}

// HoldsKey reports whether text holds k in any form orgkey.Parse reads (any case,
// with or without dashes and spaces, look-alikes for digits).
func HoldsKey(text string, k orgkey.Key) bool {
	return strings.Contains(fold(text), fold(k.Reveal()))
}

// TokensAsDelivered records every claim token in the mails the emulator holds as its
// mail's To recipients' to receive: for a test that sends without reading the mail.
// The check still refuses a CC or BCC, and the tests check who got the send's mail.
func (l *Ledger) TokensAsDelivered(tb testing.TB) {
	tb.Helper()
	all, err := Get(tb).Emails(tb.Context())
	if err != nil {
		tb.Fatalf("testenv: reading the SES store: %v", err)
	}
	for _, m := range all {
		for _, tok := range tokenShape.FindAllString(m.Subject+"\n"+m.Text+"\n"+m.HTML, -1) {
			l.Token(tok, m.To...)
		}
	}
}
