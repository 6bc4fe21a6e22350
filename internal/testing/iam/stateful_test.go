package iam_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

// replacing lists, per stateful resource type, the properties whose change makes
// CloudFormation replace the resource (the "Update requires: Replacement" rows of
// its reference: the table's key (and its attributes' types: adding a GSI's
// attribute definitions is an in-place update), the key's spec and usage,
// Cognito's username and alias attributes; and the pool's schema, whose
// attributes cannot be changed or removed in place). A replacement with
// UpdateReplacePolicy: Retain keeps the old table, key or pool and silently points
// the functions at a new, empty one.
var replacing = map[string][]string{
	"AWS::DynamoDB::Table":   {"TableName", "KeySchema", "LocalSecondaryIndexes", "ImportSourceSpecification"},
	"AWS::KMS::Key":          {"KeySpec", "KeyUsage", "MultiRegion", "Origin"},
	"AWS::Cognito::UserPool": {"UsernameAttributes", "AliasAttributes", "UsernameConfiguration", "Schema"},
}

// TestStatefulResourcesAreNotReplaced compares what would replace the table, the
// key and the user pool with testdata/stateful.json. A difference fails: a
// deployed stack would get new, empty resources. When the change is meant (no
// stack is deployed yet, or a migration is planned: README, Deploy), rewrite the
// snapshot with ORGKEY_UPDATE_STATEFUL=1 and say so in the commit.
func TestStatefulResourcesAreNotReplaced(t *testing.T) {
	res := transformedTemplate(t)["Resources"].(map[string]any)
	got := map[string]any{}
	for id, r := range res {
		rm := r.(map[string]any)
		typ := rm["Type"].(string)
		props, ok := replacing[typ]
		if !ok {
			continue
		}
		for _, p := range []string{"DeletionPolicy", "UpdateReplacePolicy"} {
			if rm[p] != "Retain" {
				t.Errorf("%s: %s is %v, want Retain", id, p, rm[p])
			}
		}
		pm, _ := rm["Properties"].(map[string]any)
		snap := map[string]any{"Type": typ}
		for _, p := range props {
			if v, ok := pm[p]; ok {
				snap[p] = v
			}
		}
		if typ == "AWS::DynamoDB::Table" {
			// The key attributes' types, not the GSIs' (those update in place).
			types := map[string]any{}
			for _, k := range pm["KeySchema"].([]any) {
				name := k.(map[string]any)["AttributeName"]
				for _, d := range pm["AttributeDefinitions"].([]any) {
					if d.(map[string]any)["AttributeName"] == name {
						types[fmt.Sprint(name)] = d.(map[string]any)["AttributeType"]
					}
				}
			}
			snap["KeyAttributeTypes"] = types
		}
		got[id] = snap
	}
	if len(got) != 3 {
		t.Fatalf("stateful resources %v: want the table, the key and the user pool", keys(got))
	}
	path := filepath.Join("testdata", "stateful.json")
	if os.Getenv("ORGKEY_UPDATE_STATEFUL") == "1" {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("wrote %s", path)
		return
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var want map[string]any
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	for id := range want {
		if _, ok := got[id]; !ok {
			t.Errorf("%s is gone or renamed: a deployed stack would delete (retain) it and create a new, empty one", id)
		}
	}
	for id, g := range got {
		w, ok := want[id]
		if !ok {
			t.Errorf("%s is new: if it replaces one of %v, the deployed data stays behind", id, keys(want))
			continue
		}
		wm, gm := w.(map[string]any), g.(map[string]any)
		for p := range merge(wm, gm) {
			if !reflect.DeepEqual(wm[p], gm[p]) {
				t.Errorf("%s.%s changed: CloudFormation would replace %s (a new, empty resource; the old one retained):\n was %s\n now %s",
					id, p, id, js(wm[p]), js(gm[p]))
			}
		}
	}
}

func keys(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func merge(a, b map[string]any) map[string]bool {
	out := map[string]bool{}
	for k := range a {
		out[k] = true
	}
	for k := range b {
		out[k] = true
	}
	return out
}

func js(v any) string {
	if v == nil {
		return "(absent)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
