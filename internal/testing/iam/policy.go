package iam

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// Statement is one resolved policy statement.
type Statement struct {
	Source    string // where it comes from: "RevealKeyFunctionRole/RevealKeyFunctionRolePolicy0#2 (CallerByIdentity)"
	Sid       string
	Effect    string // Allow or Deny
	Principal []string
	Action    []string
	NotAction []string
	Resource  []string
	// Condition: operator -> key -> values, e.g. StringEquals -> kms:EncryptionContext:purpose -> [org-key].
	Condition map[string]map[string][]string
}

// ParseStatements reads a resolved policy document.
func ParseStatements(source string, doc any) ([]Statement, error) {
	d, ok := doc.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: policy document is %T", source, doc)
	}
	var raw []any
	switch s := d["Statement"].(type) {
	case []any:
		raw = s
	case map[string]any:
		raw = []any{s}
	default:
		return nil, fmt.Errorf("%s: no Statement", source)
	}
	var out []Statement
	for i, r := range raw {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("%s#%d: statement is %T", source, i, r)
		}
		st := Statement{Source: fmt.Sprintf("%s#%d", source, i), Effect: fmt.Sprint(m["Effect"])}
		if sid, ok := m["Sid"].(string); ok {
			st.Sid = sid
			st.Source += " (" + sid + ")"
		}
		for k := range m {
			switch k {
			case "Sid", "Effect", "Action", "NotAction", "Resource", "Condition", "Principal":
			default:
				return nil, fmt.Errorf("%s: element %s is not modelled", st.Source, k)
			}
		}
		if st.Effect != "Allow" && st.Effect != "Deny" {
			return nil, fmt.Errorf("%s: Effect %q", st.Source, st.Effect)
		}
		st.Action, st.NotAction = strs(m["Action"]), strs(m["NotAction"])
		st.Resource = strs(m["Resource"])
		if len(st.Resource) == 0 {
			st.Resource = []string{"*"} // key policies: "*" is the key itself
		}
		switch p := m["Principal"].(type) {
		case nil:
		case string:
			st.Principal = []string{p}
		case map[string]any:
			for _, k := range slices.Sorted(maps.Keys(p)) {
				for _, v := range strs(p[k]) {
					st.Principal = append(st.Principal, k+":"+v)
				}
			}
		}
		if c, ok := m["Condition"].(map[string]any); ok {
			st.Condition = map[string]map[string][]string{}
			for op, kv := range c {
				if !knownOperator(op) {
					return nil, fmt.Errorf("%s: condition operator %s is not modelled", st.Source, op)
				}
				st.Condition[op] = map[string][]string{}
				for k, v := range kv.(map[string]any) {
					st.Condition[op][k] = strs(v)
				}
			}
		}
		out = append(out, st)
	}
	return out, nil
}

func strs(v any) []string {
	switch x := v.(type) {
	case nil:
		return nil
	case string:
		return []string{x}
	case []any:
		out := make([]string, len(x))
		for i, e := range x {
			out[i] = fmt.Sprint(e)
		}
		return out
	}
	return []string{fmt.Sprint(v)}
}

// wildcard is IAM's matching: * any run of characters (slashes and colons
// included), ? one character, nothing else special (path.Match would stop * at a
// slash and read brackets).
func wildcard(pattern, s string, fold bool) bool {
	if fold {
		pattern, s = strings.ToLower(pattern), strings.ToLower(s)
	}
	return globMatch(pattern, s)
}

func globMatch(p, s string) bool {
	// Iterative matcher with backtracking on the last '*'.
	pi, si, star, mark := 0, 0, -1, 0
	for si < len(s) {
		switch {
		case pi < len(p) && (p[pi] == '?' || p[pi] == s[si]):
			pi++
			si++
		case pi < len(p) && p[pi] == '*':
			star, mark = pi, si
			pi++
		case star >= 0:
			pi = star + 1
			mark++
			si = mark
		default:
			return false
		}
	}
	for pi < len(p) && p[pi] == '*' {
		pi++
	}
	return pi == len(p)
}

// matchesAction: action names are case-insensitive.
func (st Statement) matchesAction(action string) bool {
	if len(st.NotAction) > 0 {
		for _, a := range st.NotAction {
			if wildcard(a, action, true) {
				return false
			}
		}
		return true
	}
	for _, a := range st.Action {
		if wildcard(a, action, true) {
			return true
		}
	}
	return false
}

// matchesResource: ARNs are case-sensitive.
func (st Statement) matchesResource(arn string) bool {
	for _, r := range st.Resource {
		if wildcard(r, arn, false) {
			return true
		}
	}
	return false
}

func (st Statement) matchesPrincipal(principalARN string) bool {
	if st.Principal == nil {
		return true // identity policy: the principal is the role it is attached to
	}
	for _, p := range st.Principal {
		switch {
		case p == "*" || p == "AWS:*":
			return true
		case p == "AWS:arn:"+Partition+":iam::"+Account+":root" || p == "AWS:"+Account:
			// The account: its principals, when their IAM policies also allow (KeyDecision).
			if strings.Contains(principalARN, ":iam::"+Account+":") {
				return true
			}
		case p == "AWS:"+principalARN:
			return true
		}
	}
	return false
}

func knownOperator(op string) bool {
	base := strings.TrimSuffix(op, "IfExists")
	base = strings.TrimPrefix(strings.TrimPrefix(base, "ForAllValues:"), "ForAnyValue:")
	switch base {
	case "StringEquals", "StringNotEquals", "StringEqualsIgnoreCase", "StringNotEqualsIgnoreCase",
		"StringLike", "StringNotLike", "ArnEquals", "ArnLike", "ArnNotEquals", "ArnNotLike", "Bool", "Null":
		return true
	}
	return false
}

// conditionsHold evaluates every operator and key (all must hold; within a key, any
// value matches), with IAM's rules for missing keys: a missing key fails a
// positive operator, passes a negated one (StringNotEquals, ArnNotLike) and any
// ...IfExists operator; ForAllValues passes on a missing or empty key, ForAnyValue
// fails on it.
func (st Statement) conditionsHold(ctx map[string][]string) bool {
	for op, kv := range st.Condition {
		for key, want := range kv {
			if !conditionHolds(op, ctx[key], ctx, key, want) {
				return false
			}
		}
	}
	return true
}

func conditionHolds(op string, have []string, ctx map[string][]string, key string, want []string) bool {
	_, present := ctx[key]
	if strings.HasPrefix(op, "Null") {
		isNull := !present
		return slices.Contains(want, fmt.Sprint(isNull))
	}
	ifExists := strings.HasSuffix(op, "IfExists")
	base := strings.TrimSuffix(op, "IfExists")
	switch {
	case strings.HasPrefix(base, "ForAllValues:"):
		base = strings.TrimPrefix(base, "ForAllValues:")
		for _, h := range have {
			if !singleMatches(base, h, want) {
				return false
			}
		}
		return true
	case strings.HasPrefix(base, "ForAnyValue:"):
		base = strings.TrimPrefix(base, "ForAnyValue:")
		for _, h := range have {
			if singleMatches(base, h, want) {
				return true
			}
		}
		return false
	}
	negated := strings.Contains(base, "Not")
	if !present || len(have) == 0 {
		return ifExists || negated
	}
	// A single-valued key: the request's value.
	return singleMatches(base, have[0], want)
}

func singleMatches(op, have string, want []string) bool {
	switch op {
	case "StringEquals", "ArnEquals":
		return slices.Contains(want, have)
	case "StringNotEquals", "ArnNotEquals":
		return !slices.Contains(want, have)
	case "StringEqualsIgnoreCase":
		return slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(w, have) })
	case "StringNotEqualsIgnoreCase":
		return !slices.ContainsFunc(want, func(w string) bool { return strings.EqualFold(w, have) })
	case "StringLike", "ArnLike":
		return slices.ContainsFunc(want, func(w string) bool { return wildcard(w, have, false) })
	case "StringNotLike", "ArnNotLike":
		return !slices.ContainsFunc(want, func(w string) bool { return wildcard(w, have, false) })
	case "Bool":
		return slices.Contains(want, have)
	}
	panic("iam: operator not modelled: " + op)
}

// Applies reports whether st covers the request (principal, action, resource,
// conditions), whatever its effect.
func (st Statement) Applies(principalARN, action, resource string, ctx map[string][]string) bool {
	return st.matchesPrincipal(principalARN) && st.matchesAction(action) && st.matchesResource(resource) && st.conditionsHold(ctx)
}

// Decision is IAM's answer for one policy set: an explicit deny wins, then an
// allow, else the implicit deny.
type Decision int

// Decisions.
const (
	ImplicitDeny Decision = iota
	Allowed
	ExplicitDeny
)

func (d Decision) String() string {
	return [...]string{"implicitly denied", "allowed", "explicitly denied"}[d]
}

// Decide evaluates statements for one request; it returns the decision and the
// statements that allowed it.
func Decide(sts []Statement, principalARN, action, resource string, ctx map[string][]string) (Decision, []Statement) {
	var allow []Statement
	for _, st := range sts {
		if !st.Applies(principalARN, action, resource, ctx) {
			continue
		}
		if st.Effect == "Deny" {
			return ExplicitDeny, nil
		}
		allow = append(allow, st)
	}
	if len(allow) > 0 {
		return Allowed, allow
	}
	return ImplicitDeny, nil
}
