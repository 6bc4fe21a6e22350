package samtemplate

import (
	"fmt"
	"path"
	"sort"
	"strconv"
	"strings"
	"unicode"
)

// Function is one AWS::Serverless::Function with the template's Globals
// applied.
type Function struct {
	LogicalID     string
	CodeURI       string // "." for the makefile build
	BuildMethod   string // Metadata.BuildMethod ("makefile")
	Handler       string
	Runtime       string
	Architectures []string
	Timeout       int // seconds; 0 when unset (Lambda's default, 3 s)
	MemorySize    int // MB; 0 when unset
	Tracing       string
	LogFormat     string // LoggingConfig.LogFormat
	LogGroup      Value  // LoggingConfig.LogGroup; zero when unset
	Env           map[string]Value
	Events        []Event // sorted by name

	Statements      []Statement // inline policy statements
	ManagedPolicies []string    // policies given by name or ARN
	PolicyTemplates []string    // SAM policy templates (DynamoDBCrudPolicy, ...)
}

// SourceDir returns the directory of the function's main package, derived
// from its logical id: ActivationEmailFunction -> functions/activation-email.
func (f Function) SourceDir() string {
	return path.Join("functions", kebab(strings.TrimSuffix(f.LogicalID, "Function")))
}

// Event is one entry of the function's Events.
type Event struct {
	Name     string
	Type     string // "HttpApi", "Schedule", "ScheduleV2", "SQS", ...
	Route    *Route // HttpApi events only
	Schedule string // Schedule and ScheduleV2 events: rate(...) or cron(...)
}

// Route is the HTTP API route of an HttpApi event.
type Route struct {
	API    string // logical id of the AWS::Serverless::HttpApi; "" for SAM's implicit API
	Method string // upper case; "ANY" for any method
	Path   string // e.g. "/users/{userId}/send-key"; "$default" for the default route
	// Auth is the authorizer applied to the route (the event's own, or the
	// API's DefaultAuthorizer); nil when the route is open (Authorizer: NONE,
	// or no authorizer at all).
	Auth *Authorizer
	// Scopes are the scopes a token needs on this route: the event's
	// Auth.AuthorizationScopes, or else its authorizer's.
	Scopes []string
}

// Open reports whether the route needs no authorization.
func (r Route) Open() bool { return r.Auth == nil }

// Authorizer is an HTTP API authorizer.
type Authorizer struct {
	Name           string
	Type           string // "JWT" or "Lambda"
	IdentitySource string
	Issuer         Value   // JWT only
	Audience       []Value // JWT only
	// Scopes are the authorizer's AuthorizationScopes: a token must carry one of
	// them (in its scope claim) to pass. A route's own AuthorizationScopes replace
	// them (Route.Scopes).
	Scopes []string
}

// Statement is one IAM policy statement. Resources and condition values
// are rendered with Value.String: literal ARNs as written, intrinsics in
// short form ("!GetAtt OrgKeyTable.Arn", "!Sub ${OrgKeyTable.Arn}/index/gsi1").
type Statement struct {
	Sid          string
	Effect       string
	Actions      []string
	NotActions   []string
	Resources    []string
	NotResources []string
	// Condition maps operator -> condition key -> values, e.g.
	// "StringEquals" -> "kms:EncryptionContext:purpose" -> ["org-key"].
	Condition map[string]map[string][]string
}

// Allows reports whether the statement allows this action (IAM wildcards
// and case-insensitive matching, NotAction honoured).
func (s Statement) Allows(action string) bool {
	if s.Effect != "Allow" {
		return false
	}
	if len(s.NotActions) > 0 {
		return !matchesAny(s.NotActions, action)
	}
	return matchesAny(s.Actions, action)
}

func matchesAny(patterns []string, action string) bool {
	for _, p := range patterns {
		if wildcardMatch(strings.ToLower(p), strings.ToLower(action)) {
			return true
		}
	}
	return false
}

// wildcardMatch matches IAM patterns: * is any run, ? any one character.
func wildcardMatch(pattern, s string) bool {
	if pattern == "" {
		return s == ""
	}
	switch pattern[0] {
	case '*':
		for i := 0; i <= len(s); i++ {
			if wildcardMatch(pattern[1:], s[i:]) {
				return true
			}
		}
		return false
	case '?':
		return s != "" && wildcardMatch(pattern[1:], s[1:])
	default:
		return s != "" && s[0] == pattern[0] && wildcardMatch(pattern[1:], s[1:])
	}
}

// Functions returns every AWS::Serverless::Function, sorted by logical id,
// with Globals.Function applied the way SAM applies them.
func (t *Template) Functions() ([]Function, error) {
	var out []Function
	for _, id := range t.logicalIDs("AWS::Serverless::Function") {
		f, err := t.function(id)
		if err != nil {
			return nil, fmt.Errorf("samtemplate.Functions: %s: %w", id, err)
		}
		out = append(out, f)
	}
	return out, nil
}

func (t *Template) function(id string) (Function, error) {
	r := t.Resources[id]
	props, _ := mergeGlobals(t.globals["Function"], r.Properties).(map[string]any)
	f := Function{LogicalID: id, Env: map[string]Value{}}

	var err error
	if f.CodeURI, err = literalString(props, "CodeUri"); err != nil {
		return f, err
	}
	if f.Handler, err = literalString(props, "Handler"); err != nil {
		return f, err
	}
	if f.Runtime, err = literalString(props, "Runtime"); err != nil {
		return f, err
	}
	if f.Tracing, err = literalString(props, "Tracing"); err != nil {
		return f, err
	}
	if f.Timeout, err = literalInt(props, "Timeout"); err != nil {
		return f, err
	}
	if f.MemorySize, err = literalInt(props, "MemorySize"); err != nil {
		return f, err
	}
	f.BuildMethod = scalarString(r.Metadata["BuildMethod"])
	if archs, ok := props["Architectures"].([]any); ok {
		for _, a := range archs {
			f.Architectures = append(f.Architectures, valueOf(a).String())
		}
	}
	if lc, ok := props["LoggingConfig"].(map[string]any); ok {
		if f.LogFormat, err = literalString(lc, "LogFormat"); err != nil {
			return f, fmt.Errorf("LoggingConfig: %w", err)
		}
		if lg, ok := lc["LogGroup"]; ok {
			f.LogGroup = valueOf(lg)
		}
	}
	if env, ok := props["Environment"].(map[string]any); ok {
		vars, _ := env["Variables"].(map[string]any)
		for k, v := range vars {
			f.Env[k] = valueOf(v)
		}
	}

	events, _ := props["Events"].(map[string]any)
	for name, raw := range events {
		ev, err := t.event(name, raw)
		if err != nil {
			return f, fmt.Errorf("event %s: %w", name, err)
		}
		f.Events = append(f.Events, ev)
	}
	sort.Slice(f.Events, func(i, j int) bool { return f.Events[i].Name < f.Events[j].Name })

	if err := f.addPolicies(props["Policies"]); err != nil {
		//lint:ignore ST1005 "Policies" is the template property's name
		return f, fmt.Errorf("Policies: %w", err)
	}
	return f, nil
}

func (t *Template) event(name string, raw any) (Event, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return Event{}, fmt.Errorf("not a mapping")
	}
	ev := Event{Name: name, Type: scalarString(m["Type"])}
	props, _ := m["Properties"].(map[string]any)
	switch ev.Type {
	case "Schedule":
		ev.Schedule = scalarString(props["Schedule"])
	case "ScheduleV2":
		ev.Schedule = scalarString(props["ScheduleExpression"])
	case "HttpApi":
		r, err := t.route(props)
		if err != nil {
			return ev, err
		}
		ev.Route = r
	}
	return ev, nil
}

func (t *Template) route(props map[string]any) (*Route, error) {
	r := &Route{}
	if api, ok := props["ApiId"]; ok {
		ref, isRef := valueOf(api).Ref()
		if !isRef {
			return nil, fmt.Errorf("ApiId must be a !Ref to an AWS::Serverless::HttpApi")
		}
		r.API = ref
	}
	var err error
	if r.Method, err = literalString(props, "Method"); err != nil {
		return nil, err
	}
	if r.Path, err = literalString(props, "Path"); err != nil {
		return nil, err
	}
	r.Method = strings.ToUpper(r.Method)
	if r.Method == "X-AMAZON-APIGATEWAY-ANY-METHOD" || r.Method == "" {
		r.Method = "ANY"
	}
	if r.Path == "" {
		r.Path = "$default"
	}

	// The API's auth: Globals.HttpApi merged with the API resource, or
	// Globals.HttpApi alone for SAM's implicit API.
	var apiProps any = t.globals["HttpApi"]
	if r.API != "" {
		res, err := t.resource(r.API, "AWS::Serverless::HttpApi")
		if err != nil {
			return nil, err
		}
		apiProps = mergeGlobals(t.globals["HttpApi"], res.Properties)
	}
	apiAuth, _ := lookup(apiProps, "Auth").(map[string]any)

	name := scalarString(apiAuth["DefaultAuthorizer"])
	var routeScopes []string
	hasRouteScopes := false
	if auth, ok := props["Auth"].(map[string]any); ok {
		if a, ok := auth["Authorizer"]; ok {
			name = scalarString(a)
		}
		if sc, ok := auth["AuthorizationScopes"]; ok {
			hasRouteScopes = true
			for _, x := range asList(sc) {
				routeScopes = append(routeScopes, scalarString(x))
			}
		}
	}
	if name == "" || name == "NONE" {
		return r, nil
	}
	def, ok := lookup(apiAuth, "Authorizers", name).(map[string]any)
	if !ok {
		return nil, fmt.Errorf("authorizer %q is not defined on the API", name)
	}
	a := &Authorizer{Name: name, Type: "JWT"}
	if _, ok := def["FunctionArn"]; ok {
		a.Type = "Lambda"
	}
	switch src := def["IdentitySource"].(type) {
	case string:
		a.IdentitySource = src
	case map[string]any:
		a.IdentitySource = valueOf(src).String()
	}
	if jwt, ok := def["JwtConfiguration"].(map[string]any); ok {
		a.Issuer = valueOf(jwt["issuer"])
		for _, aud := range asList(jwt["audience"]) {
			a.Audience = append(a.Audience, valueOf(aud))
		}
	}
	for _, x := range asList(def["AuthorizationScopes"]) {
		a.Scopes = append(a.Scopes, scalarString(x))
	}
	r.Auth = a
	r.Scopes = a.Scopes
	if hasRouteScopes {
		r.Scopes = routeScopes
	}
	return r, nil
}

// addPolicies reads SAM's Policies property: a managed policy name or ARN,
// a policy document, a SAM policy template, or a list of those.
func (f *Function) addPolicies(raw any) error {
	for _, p := range asList(raw) {
		switch v := p.(type) {
		case string:
			f.ManagedPolicies = append(f.ManagedPolicies, v)
		case map[string]any:
			if _, _, isFn := intrinsic(v); isFn {
				f.ManagedPolicies = append(f.ManagedPolicies, valueOf(v).String())
				continue
			}
			if stmts, ok := v["Statement"]; ok {
				for _, s := range asList(stmts) {
					st, err := statement(s)
					if err != nil {
						return err
					}
					f.Statements = append(f.Statements, st)
				}
				continue
			}
			if len(v) != 1 {
				return fmt.Errorf("neither a policy document nor a SAM policy template: %s", jsonString(v))
			}
			for name := range v {
				f.PolicyTemplates = append(f.PolicyTemplates, name)
			}
		default:
			return fmt.Errorf("unexpected policy %s", jsonString(v))
		}
	}
	return nil
}

func statement(raw any) (Statement, error) {
	m, ok := raw.(map[string]any)
	if !ok {
		return Statement{}, fmt.Errorf("statement is not a mapping: %s", jsonString(raw))
	}
	s := Statement{
		Sid:          scalarString(m["Sid"]),
		Effect:       scalarString(m["Effect"]),
		Actions:      rendered(m["Action"]),
		NotActions:   rendered(m["NotAction"]),
		Resources:    rendered(m["Resource"]),
		NotResources: rendered(m["NotResource"]),
	}
	if cond, ok := m["Condition"].(map[string]any); ok {
		s.Condition = map[string]map[string][]string{}
		for op, keys := range cond {
			km, ok := keys.(map[string]any)
			if !ok {
				return s, fmt.Errorf("condition %s is not a mapping", op)
			}
			s.Condition[op] = map[string][]string{}
			for k, vals := range km {
				s.Condition[op][k] = rendered(vals)
			}
		}
	}
	return s, nil
}

// rendered turns a value or list of values into strings (Value.String).
func rendered(x any) []string {
	var out []string
	for _, v := range asList(x) {
		out = append(out, valueOf(v).String())
	}
	return out
}

// asList returns x itself if it is a list, else x as a one-element list
// (nil for nil). An intrinsic is one element, not a list.
func asList(x any) []any {
	switch v := x.(type) {
	case nil:
		return nil
	case []any:
		return v
	default:
		return []any{v}
	}
}

// lookup walks nested mappings by key.
func lookup(x any, keys ...string) any {
	for _, k := range keys {
		m, ok := x.(map[string]any)
		if !ok {
			return nil
		}
		x = m[k]
	}
	return x
}

// literalString returns the string property key of m, "" when absent, and
// an error when it is not a literal scalar.
func literalString(m map[string]any, key string) (string, error) {
	x, ok := m[key]
	if !ok || x == nil {
		return "", nil
	}
	switch x.(type) {
	case map[string]any, []any:
		return "", fmt.Errorf("%s is not a literal: %s", key, valueOf(x))
	}
	return scalarString(x), nil
}

func literalInt(m map[string]any, key string) (int, error) {
	s, err := literalString(m, key)
	if err != nil || s == "" {
		return 0, err
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not an integer", key, s)
	}
	return n, nil
}

// mergeGlobals applies a Globals section to a resource's properties the way
// SAM does: mappings merge key by key, lists concatenate (globals first),
// anything else (scalars, intrinsics) is overridden by the resource.
func mergeGlobals(global, local any) any {
	if global == nil {
		return local
	}
	if local == nil {
		return global
	}
	gm, gIsMap := global.(map[string]any)
	lm, lIsMap := local.(map[string]any)
	if gIsMap && lIsMap {
		_, _, gFn := intrinsic(gm)
		_, _, lFn := intrinsic(lm)
		if gFn || lFn {
			return local
		}
		out := make(map[string]any, len(gm)+len(lm))
		for k, v := range gm {
			out[k] = v
		}
		for k, v := range lm {
			out[k] = mergeGlobals(out[k], v)
		}
		return out
	}
	gl, gIsList := global.([]any)
	ll, lIsList := local.([]any)
	if gIsList && lIsList {
		return append(append([]any{}, gl...), ll...)
	}
	return local
}

// kebab turns a Go-style name into kebab case: ActivationEmail ->
// activation-email, SESBounce -> ses-bounce.
func kebab(s string) string {
	rs := []rune(s)
	var b strings.Builder
	for i, r := range rs {
		if unicode.IsUpper(r) && i > 0 {
			prev := rs[i-1]
			nextLower := i+1 < len(rs) && unicode.IsLower(rs[i+1])
			if unicode.IsLower(prev) || unicode.IsDigit(prev) || (unicode.IsUpper(prev) && nextLower) {
				b.WriteByte('-')
			}
		}
		b.WriteRune(unicode.ToLower(r))
	}
	return b.String()
}
