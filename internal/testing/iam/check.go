package iam

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
)

// ManagedPolicies are the AWS managed policies SAM attaches to every function's
// role, as AWS publishes them (AWSLambdaBasicExecutionRole v1 and
// AWSXrayWriteOnlyAccess v1 when this was written). A template that attaches
// another managed policy fails Load until it is added here.
var ManagedPolicies = map[string]string{
	"arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole": `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["logs:CreateLogGroup","logs:CreateLogStream","logs:PutLogEvents"],"Resource":"*"}]}`,
	"arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess": `{"Version":"2012-10-17","Statement":[
		{"Effect":"Allow","Action":["xray:PutTraceSegments","xray:PutTelemetryRecords","xray:GetSamplingRules",
		"xray:GetSamplingTargets","xray:GetSamplingStatisticSummaries"],"Resource":["*"]}]}`,
}

// Role is a function's execution role after the transform.
type Role struct {
	Function  string // functions/<name>
	LogicalID string // e.g. RevealKeyFunctionRole
	ARN       string
	Inline    []Statement
	Managed   []Managed
	// Platform are the requests the Lambda service and the X-Ray SDK make with the
	// role on the function's behalf (its logs, its traces): modelled from the
	// function's LoggingConfig and Tracing, not recorded.
	Platform []Request
	logGroup string
}

// Managed is one attached managed policy.
type Managed struct {
	ARN        string
	Statements []Statement
}

// Statements are all the statements of the role's identity policies.
func (r Role) Statements() []Statement {
	out := slices.Clone(r.Inline)
	for _, m := range r.Managed {
		out = append(out, m.Statements...)
	}
	return out
}

// Model is what IAM needs to decide the functions' requests: each function's
// role, the KMS key's policy, and the ARNs of the template's one table, key, user
// pool and mail identity.
type Model struct {
	Roles     map[string]*Role // by function
	KeyPolicy []Statement
	TableARN  string
	KeyARN    string
	PoolARN   string // "" when the template has no user pool
	// ConfigSetARN is the SES configuration set's ARN ("" for none).
	ConfigSetARN string
}

var functionID = regexp.MustCompile(`^([A-Z][A-Za-z0-9]*)Function$`)

// kebab is the function's directory name: RevealKey -> reveal-key.
func kebab(s string) string {
	var b strings.Builder
	for i, r := range s {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte('-')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Load builds the model from a resolved, transformed template.
func Load(t *Template) (*Model, error) {
	m := &Model{Roles: map[string]*Role{}}
	res, _ := t.Raw["Resources"].(map[string]any)
	var tables, keys, pools, sets []string
	for _, id := range slices.Sorted(maps.Keys(res)) {
		typ, props, _ := t.Resource(id)
		switch typ {
		case "AWS::DynamoDB::Table":
			tables = append(tables, id)
		case "AWS::KMS::Key":
			keys = append(keys, id)
			pol, err := t.Eval(props["KeyPolicy"])
			if err != nil {
				return nil, fmt.Errorf("%s KeyPolicy: %w", id, err)
			}
			if m.KeyPolicy, err = ParseStatements(id+"/KeyPolicy", pol); err != nil {
				return nil, err
			}
		case "AWS::Cognito::UserPool":
			pools = append(pools, id)
		case "AWS::SES::ConfigurationSet":
			sets = append(sets, id)
		case "AWS::Lambda::Function":
			sub := functionID.FindStringSubmatch(id)
			if sub == nil {
				return nil, fmt.Errorf("function %s: logical id is not <Name>Function", id)
			}
			r, err := loadRole(t, kebab(sub[1]), props)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", id, err)
			}
			m.Roles[r.Function] = r
		}
	}
	if len(tables) != 1 || len(keys) != 1 {
		return nil, fmt.Errorf("the model maps every recorded table and key to the template's one table and one key; found tables %v, keys %v", tables, keys)
	}
	var err error
	if m.TableARN, err = t.GetAtt(tables[0], "Arn"); err != nil {
		return nil, err
	}
	if m.KeyARN, err = t.GetAtt(keys[0], "Arn"); err != nil {
		return nil, err
	}
	if len(pools) == 1 {
		if m.PoolARN, err = t.GetAtt(pools[0], "Arn"); err != nil {
			return nil, err
		}
	}
	if len(sets) == 1 {
		name, err := t.PhysicalID(sets[0])
		if err != nil {
			return nil, err
		}
		m.ConfigSetARN = t.arn("ses", "configuration-set/"+name)
	}
	return m, nil
}

func loadRole(t *Template, function string, fnProps map[string]any) (*Role, error) {
	roleRef, ok := fnProps["Role"].(map[string]any)["Fn::GetAtt"].([]any)
	if !ok {
		return nil, errors.New("its Role is not a GetAtt of a role in the template")
	}
	r := &Role{Function: function, LogicalID: fmt.Sprint(roleRef[0])}
	typ, props, ok := t.Resource(r.LogicalID)
	if !ok || typ != "AWS::IAM::Role" {
		return nil, fmt.Errorf("role %s not found", r.LogicalID)
	}
	var err error
	if r.ARN, err = t.GetAtt(r.LogicalID, "Arn"); err != nil {
		return nil, err
	}
	pols, err := t.Eval(props["Policies"])
	if err != nil {
		return nil, err
	}
	for _, p := range asList(pols) {
		pm := p.(map[string]any)
		sts, err := ParseStatements(r.LogicalID+"/"+fmt.Sprint(pm["PolicyName"]), pm["PolicyDocument"])
		if err != nil {
			return nil, err
		}
		r.Inline = append(r.Inline, sts...)
	}
	arns, err := t.Eval(props["ManagedPolicyArns"])
	if err != nil {
		return nil, err
	}
	for _, a := range asList(arns) {
		doc, ok := ManagedPolicies[fmt.Sprint(a)]
		if !ok {
			return nil, fmt.Errorf("managed policy %v is not modelled (add it to iam.ManagedPolicies)", a)
		}
		sts, err := ParseStatements(fmt.Sprint(a), mustJSON(doc))
		if err != nil {
			return nil, err
		}
		r.Managed = append(r.Managed, Managed{ARN: fmt.Sprint(a), Statements: sts})
	}
	// The platform's requests: Lambda writes the function's logs to its log group
	// with the role (the group is the template's, so CreateLogGroup, which the
	// managed policy also grants, is not modelled as needed); with active tracing, the runtime sends segments and reads
	// sampling rules with it.
	lc, _ := fnProps["LoggingConfig"].(map[string]any)
	group := "/aws/lambda/" + StackName + "-" + function
	if lc != nil && lc["LogGroup"] != nil {
		g, err := t.Eval(lc["LogGroup"])
		if err != nil {
			return nil, err
		}
		group = fmt.Sprint(g)
	}
	r.logGroup = group
	streams := t.arn("logs", "log-group:"+group+":log-stream:*")
	r.Platform = append(r.Platform,
		Request{Function: function, Operation: "Lambda.CreateLogStream", Action: "logs:CreateLogStream", Kind: KindAny, Name: streams},
		Request{Function: function, Operation: "Lambda.PutLogEvents", Action: "logs:PutLogEvents", Kind: KindAny, Name: streams})
	if tc, _ := fnProps["TracingConfig"].(map[string]any); tc != nil && tc["Mode"] == "Active" {
		for _, a := range []string{"xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:GetSamplingStatisticSummaries"} {
			r.Platform = append(r.Platform, Request{Function: function, Operation: "XRay." + strings.TrimPrefix(a, "xray:"), Action: a, Kind: KindAny, Name: "*"})
		}
	}
	return r, nil
}

func mustJSON(s string) any {
	var v any
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		panic(err)
	}
	return v
}

func asList(v any) []any {
	switch x := v.(type) {
	case nil:
		return nil
	case []any:
		return x
	}
	return []any{v}
}

// ARN is the resource IAM evaluates for q in this model: a recorded table is the
// template's table (tests create theirs from it), a recorded key the template's
// key.
func (m *Model) ARN(q Request) string {
	switch q.Kind {
	case KindTable:
		if q.Index != "" {
			return m.TableARN + "/index/" + q.Index
		}
		return m.TableARN
	case KindKey:
		return m.KeyARN
	case KindIdentity:
		return "arn:" + Partition + ":ses:" + Region + ":" + Account + ":identity/" + q.Name
	case KindConfigSet:
		if m.ConfigSetARN != "" {
			return m.ConfigSetARN
		}
		return "arn:" + Partition + ":ses:" + Region + ":" + Account + ":configuration-set/" + q.Name
	case KindUserPool:
		if m.PoolARN != "" {
			return m.PoolARN
		}
	case KindAny:
		if q.Name != "" {
			return q.Name // platform requests carry their ARN
		}
	}
	return "*"
}

func (m *Model) context(r *Role, q Request) map[string][]string {
	c := map[string][]string{
		"aws:PrincipalArn":     {r.ARN},
		"aws:PrincipalAccount": {Account},
	}
	if strings.HasPrefix(q.Action, "kms:") {
		c["kms:CallerAccount"] = []string{Account}
	}
	for k, v := range q.Context {
		c[k] = v
	}
	return c
}

// Finding is one way the policies and the calls disagree.
type Finding struct {
	Function string
	Problem  string
}

func (f Finding) String() string { return f.Function + ": " + f.Problem }

// Decide returns IAM's decision for q made by function's role: the role's
// policies, and for a KMS request the key policy as well (a key policy statement
// for the account's root lets the role's IAM policy decide; one naming the role
// allows by itself; an explicit deny in either wins).
func (m *Model) Decide(q Request) (Decision, []Statement) {
	r, ok := m.Roles[q.Function]
	if !ok {
		return ImplicitDeny, nil
	}
	arn, ctx := m.ARN(q), m.context(r, q)
	id, by := Decide(r.Statements(), r.ARN, q.Action, arn, ctx)
	if !strings.HasPrefix(q.Action, "kms:") || q.Kind != KindKey {
		return id, by
	}
	return m.DecideKey(r.ARN, id, by, q.Action, ctx)
}

// DecideKey combines the decision of a principal's identity policies (id, by) on a
// request for the key with the key policy's.
func (m *Model) DecideKey(principalARN string, id Decision, by []Statement, action string, ctx map[string][]string) (Decision, []Statement) {
	// Resource "*" in a key policy means the key.
	direct, viaAccount, deny := false, false, id == ExplicitDeny
	for _, st := range m.KeyPolicy {
		if !st.Applies(principalARN, action, m.KeyARN, ctx) {
			continue
		}
		switch {
		case st.Effect == "Deny":
			deny = true
		case slices.Contains(st.Principal, "AWS:"+principalARN):
			direct = true
		default:
			viaAccount = true
		}
	}
	switch {
	case deny:
		return ExplicitDeny, nil
	case direct || (viaAccount && id == Allowed):
		return Allowed, by
	}
	return ImplicitDeny, nil
}

// Check returns every recorded request IAM would deny, every inline grant (action
// and resource of an Allow statement) that no request uses, every managed policy
// the platform's requests do not need, and every function of the template with no
// recorded request.
func (m *Model) Check(reqs []Request) []Finding {
	var out []Finding
	byFn := map[string][]Request{}
	seen := map[string]bool{}
	for _, q := range reqs {
		if seen[q.Key()] {
			continue
		}
		seen[q.Key()] = true
		byFn[q.Function] = append(byFn[q.Function], q)
	}
	for fn := range byFn {
		if _, ok := m.Roles[fn]; !ok {
			out = append(out, Finding{fn, "calls recorded for a function the template does not define"})
		}
	}
	for _, fn := range slices.Sorted(maps.Keys(m.Roles)) {
		r := m.Roles[fn]
		if len(byFn[fn]) == 0 {
			out = append(out, Finding{fn, "no recorded call: its suites did not run or did not record (a new function's flow package goes in record.go's flowFunctions, its suite in iam_test.go's suites)"})
		}
		all := append(slices.Clone(byFn[fn]), r.Platform...)
		denied := map[string]bool{} // one finding per operation, action and resource
		for _, q := range all {
			if d, _ := m.Decide(q); d != Allowed {
				what := fmt.Sprintf("%s (%s on %s", q.Operation, q.Action, m.ARN(q))
				if !denied[what] {
					denied[what] = true
					out = append(out, Finding{fn, fmt.Sprintf("%s%s) would be %s", what, fmtContext(q.Context), d)})
				}
			}
		}
		for _, st := range r.Inline {
			if st.Effect != "Allow" {
				continue
			}
			for _, a := range st.Action {
				for _, res := range st.Resource {
					if !slices.ContainsFunc(byFn[fn], func(q Request) bool {
						return wildcard(a, q.Action, true) && wildcard(res, m.ARN(q), false) && st.conditionsHold(m.context(r, q))
					}) {
						out = append(out, Finding{fn, fmt.Sprintf("%s grants %s on %s: no recorded call uses it", st.Source, a, res)})
					}
				}
			}
		}
		for _, mp := range r.Managed {
			if !slices.ContainsFunc(r.Platform, func(q Request) bool {
				d, by := m.Decide(q)
				return d == Allowed && slices.ContainsFunc(by, func(s Statement) bool { return strings.HasPrefix(s.Source, mp.ARN+"#") })
			}) {
				out = append(out, Finding{fn, "managed policy " + mp.ARN + ": none of the platform's requests needs it"})
			}
		}
	}
	return out
}

func fmtContext(c map[string][]string) string {
	if len(c) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(c)) {
		parts = append(parts, k+"="+strings.Join(c[k], ","))
	}
	return ", " + strings.Join(parts, " ")
}

// Without returns a copy of the model in which function's role lacks its inline
// statement i (i < len(Inline)) or managed policy i-len(Inline).
func (m *Model) Without(function string, i int) *Model {
	c := m.copy()
	r := c.Roles[function]
	if i < len(r.Inline) {
		r.Inline = slices.Delete(slices.Clone(r.Inline), i, i+1)
	} else {
		j := i - len(r.Inline)
		r.Managed = slices.Delete(slices.Clone(r.Managed), j, j+1)
	}
	return c
}

// WithoutAction returns a copy of the model in which inline statement i of
// function's role lacks action (the statement goes when it was its only action).
func (m *Model) WithoutAction(function string, i int, action string) *Model {
	c := m.copy()
	r := c.Roles[function]
	r.Inline = slices.Clone(m.Roles[function].Inline)
	st := r.Inline[i]
	st.Action = slices.DeleteFunc(slices.Clone(st.Action), func(a string) bool { return a == action })
	if len(st.Action) == 0 {
		r.Inline = slices.Delete(r.Inline, i, i+1)
	} else {
		r.Inline[i] = st
	}
	return c
}

// copy copies the model down to the roles (their statements are not changed in
// place).
func (m *Model) copy() *Model {
	c := *m
	c.Roles = map[string]*Role{}
	for k, v := range m.Roles {
		rc := *v
		c.Roles[k] = &rc
	}
	return &c
}
