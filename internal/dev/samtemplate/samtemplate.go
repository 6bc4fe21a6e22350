// Package samtemplate reads template.yaml, the single source of truth of the
// deployment, for the tests and the local stack: the table definition, the
// functions with their environment, events, HTTP routes and IAM statements.
//
// It reads the YAML itself (gopkg.in/yaml.v3) rather than through
// goformation: goformation v7.14.9 rejects the whole template because its SAM
// schema predates Function.LoggingConfig ("json: unknown field"), resolves
// !GetAtt to null, does not apply Globals, and registers its YAML tag
// handlers in a package-level map on every parse (unsafe for parallel
// tests). Here intrinsic functions are kept, never resolved: short forms
// (!Ref, !GetAtt, !Sub, ...) become the long form ({"Ref": ...},
// {"Fn::GetAtt": [resource, attribute]}, ...), and a Value describes them.
package samtemplate

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

// Template is a parsed SAM template. Resource properties are as written
// (Globals are applied by Functions, not here).
type Template struct {
	Parameters map[string]Parameter
	Resources  map[string]Resource
	// Rules is the Rules section as decoded (intrinsics in their long form).
	Rules   map[string]any
	globals map[string]any // the Globals section, by kind ("Function", "HttpApi", ...)
}

// Parameter is one template parameter.
type Parameter struct {
	Type          string
	Default       string
	HasDefault    bool
	AllowedValues []string
}

// Resource is one resource of the template. In Properties and Metadata,
// intrinsic functions appear in their long form, e.g. {"Ref": "X"} or
// {"Fn::GetAtt": ["X", "Arn"]}.
type Resource struct {
	Type                string
	Properties          map[string]any
	Metadata            map[string]any
	Condition           string
	DeletionPolicy      string
	UpdateReplacePolicy string
}

// Load reads and parses a SAM template file.
func Load(path string) (*Template, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("samtemplate.Load: %w", err)
	}
	t, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("samtemplate.Load(%q): %w", path, err)
	}
	return t, nil
}

// Parse parses a SAM template held in memory (YAML or JSON).
func Parse(data []byte) (*Template, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	if doc.Kind == 0 {
		return nil, errors.New("parse template: empty document")
	}
	root, err := decodeNode(&doc)
	if err != nil {
		return nil, fmt.Errorf("parse template: %w", err)
	}
	top, ok := root.(map[string]any)
	if !ok {
		return nil, errors.New("parse template: the document is not a mapping")
	}

	t := &Template{
		Parameters: map[string]Parameter{},
		Resources:  map[string]Resource{},
		globals:    map[string]any{},
	}
	if g, ok := top["Globals"].(map[string]any); ok {
		t.globals = g
	}
	t.Rules, _ = top["Rules"].(map[string]any)
	params, _ := top["Parameters"].(map[string]any)
	for name, raw := range params {
		p, _ := raw.(map[string]any)
		param := Parameter{Type: scalarString(p["Type"])}
		if d, ok := p["Default"]; ok && d != nil {
			param.Default, param.HasDefault = scalarString(d), true
		}
		if av, ok := p["AllowedValues"].([]any); ok {
			for _, v := range av {
				param.AllowedValues = append(param.AllowedValues, scalarString(v))
			}
		}
		t.Parameters[name] = param
	}
	resources, ok := top["Resources"].(map[string]any)
	if !ok {
		return nil, errors.New("parse template: no Resources mapping")
	}
	for id, raw := range resources {
		r, ok := raw.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("parse template: resource %s is not a mapping", id)
		}
		typ, _ := r["Type"].(string)
		if typ == "" {
			return nil, fmt.Errorf("parse template: resource %s has no Type", id)
		}
		res := Resource{Type: typ}
		res.Properties, _ = r["Properties"].(map[string]any)
		res.Metadata, _ = r["Metadata"].(map[string]any)
		res.Condition, _ = r["Condition"].(string)
		res.DeletionPolicy, _ = r["DeletionPolicy"].(string)
		res.UpdateReplacePolicy, _ = r["UpdateReplacePolicy"].(string)
		t.Resources[id] = res
	}
	return t, nil
}

// FindRoot walks up from the working directory to the directory holding
// go.mod (the repo root); tests use it to locate template.yaml.
func FindRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("samtemplate.FindRoot: %w", err)
	}
	for {
		if fi, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil && !fi.IsDir() {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("samtemplate.FindRoot: no go.mod above the working directory")
		}
		dir = parent
	}
}

// resource returns the resource with this logical id, checking its type.
func (t *Template) resource(logicalID, typ string) (Resource, error) {
	r, ok := t.Resources[logicalID]
	if !ok {
		return Resource{}, fmt.Errorf("no resource %s", logicalID)
	}
	if r.Type != typ {
		return Resource{}, fmt.Errorf("resource %s is a %s, not a %s", logicalID, r.Type, typ)
	}
	return r, nil
}

// logicalIDs returns the sorted logical ids of the resources of this type.
func (t *Template) logicalIDs(typ string) []string {
	var ids []string
	for id, r := range t.Resources {
		if r.Type == typ {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Value is a template value: a literal, or an intrinsic function that only
// CloudFormation can resolve.
type Value struct {
	// Fn is "" for a literal, otherwise the function: "Ref", "Fn::GetAtt",
	// "Fn::Sub", "Fn::If", ...
	Fn string
	// Arg is the literal itself; for Ref the name, for Fn::GetAtt
	// "Resource.Attribute", for a one-argument Fn::Sub its string; for
	// anything else the argument as JSON.
	Arg string
}

// IsLiteral reports whether v is a plain value, not an intrinsic function.
func (v Value) IsLiteral() bool { return v.Fn == "" }

// Ref returns the parameter or resource a Ref names.
func (v Value) Ref() (string, bool) {
	return v.Arg, v.Fn == "Ref"
}

// GetAtt returns the resource and attribute of a Fn::GetAtt.
func (v Value) GetAtt() (resource, attribute string, ok bool) {
	if v.Fn != "Fn::GetAtt" {
		return "", "", false
	}
	resource, attribute, ok = strings.Cut(v.Arg, ".")
	return resource, attribute, ok
}

// String renders a literal as itself and an intrinsic in the YAML short
// form: "!Ref OrgKeyTable", "!GetAtt OrgKeyWrappingKey.Arn", "!Sub ...".
func (v Value) String() string {
	switch v.Fn {
	case "":
		return v.Arg
	case "Ref":
		return "!Ref " + v.Arg
	default:
		return "!" + strings.TrimPrefix(v.Fn, "Fn::") + " " + v.Arg
	}
}

// valueOf describes a decoded template value.
func valueOf(x any) Value {
	if fn, arg, ok := intrinsic(x); ok {
		v := Value{Fn: fn}
		switch a := arg.(type) {
		case string:
			v.Arg = a
		case []any:
			if fn == "Fn::GetAtt" && len(a) == 2 {
				v.Arg = scalarString(a[0]) + "." + scalarString(a[1])
				break
			}
			v.Arg = jsonString(a)
		default:
			v.Arg = jsonString(a)
		}
		return v
	}
	switch x.(type) {
	case map[string]any, []any:
		return Value{Arg: jsonString(x)}
	}
	return Value{Arg: scalarString(x)}
}

// intrinsicNames are the keys that make a one-key mapping an intrinsic
// function call.
var intrinsicNames = map[string]bool{
	"Ref": true, "Condition": true,
	"Fn::And": true, "Fn::Base64": true, "Fn::Cidr": true, "Fn::Equals": true,
	"Fn::FindInMap": true, "Fn::GetAZs": true, "Fn::GetAtt": true, "Fn::If": true,
	"Fn::ImportValue": true, "Fn::Join": true, "Fn::Length": true, "Fn::Not": true,
	"Fn::Or": true, "Fn::Select": true, "Fn::Split": true, "Fn::Sub": true,
	"Fn::ToJsonString": true, "Fn::Transform": true,
}

// intrinsic reports whether x is an intrinsic function call in long form.
func intrinsic(x any) (fn string, arg any, ok bool) {
	m, isMap := x.(map[string]any)
	if !isMap || len(m) != 1 {
		return "", nil, false
	}
	for k, v := range m {
		if intrinsicNames[k] {
			return k, v, true
		}
	}
	return "", nil, false
}

// scalarString renders a scalar (string, number, bool) as text.
func scalarString(x any) string {
	switch v := x.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

func jsonString(x any) string {
	b, err := json.Marshal(x)
	if err != nil {
		return fmt.Sprint(x)
	}
	return string(b)
}

// decodeNode turns a YAML node into plain Go values (map[string]any, []any,
// string, int, float64, bool, nil), rewriting the short-form intrinsic tags
// into their long form.
func decodeNode(n *yaml.Node) (any, error) {
	switch n.Kind {
	case yaml.DocumentNode:
		if len(n.Content) == 0 {
			return nil, nil
		}
		return decodeNode(n.Content[0])
	case yaml.AliasNode:
		return decodeNode(n.Alias)
	}

	if strings.HasPrefix(n.Tag, "!") && !strings.HasPrefix(n.Tag, "!!") {
		return decodeTagged(n)
	}

	switch n.Kind {
	case yaml.ScalarNode:
		var v any
		if err := n.Decode(&v); err != nil {
			return nil, fmt.Errorf("line %d: %w", n.Line, err)
		}
		return v, nil
	case yaml.SequenceNode:
		out := make([]any, 0, len(n.Content))
		for _, c := range n.Content {
			v, err := decodeNode(c)
			if err != nil {
				return nil, err
			}
			out = append(out, v)
		}
		return out, nil
	case yaml.MappingNode:
		out := make(map[string]any, len(n.Content)/2)
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" {
				return nil, fmt.Errorf("line %d: unsupported mapping key", k.Line)
			}
			v, err := decodeNode(n.Content[i+1])
			if err != nil {
				return nil, err
			}
			out[k.Value] = v
		}
		return out, nil
	}
	return nil, fmt.Errorf("line %d: unsupported YAML node", n.Line)
}

// decodeTagged rewrites a short-form intrinsic (!Ref X, !GetAtt A.B,
// !Sub s, !If [c, a, b], ...) into its long form.
func decodeTagged(n *yaml.Node) (any, error) {
	name := strings.TrimPrefix(n.Tag, "!")
	fn := "Fn::" + name
	if name == "Ref" || name == "Condition" {
		fn = name
	}
	if !intrinsicNames[fn] {
		return nil, fmt.Errorf("line %d: unknown tag %s", n.Line, n.Tag)
	}
	untagged := *n
	untagged.Tag = ""
	if n.Kind == yaml.ScalarNode {
		untagged.Tag = "!!str"
	}
	arg, err := decodeNode(&untagged)
	if err != nil {
		return nil, err
	}
	if s, ok := arg.(string); ok && fn == "Fn::GetAtt" {
		// !GetAtt Resource.Attribute: the attribute may itself hold dots
		// (Endpoint.Address), the resource never does.
		res, attr, ok := strings.Cut(s, ".")
		if !ok {
			return nil, fmt.Errorf("line %d: !GetAtt %q has no attribute", n.Line, s)
		}
		arg = []any{res, attr}
	}
	return map[string]any{fn: arg}, nil
}
