package main

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

const root = "../../.."

// TestListApplies keeps the list true without running it: every entry's snippet is
// found exactly once, the mutant still parses, and the named test package exists, so
// a refactor that moves the code fails here, in make test, not only in make mutate.
func TestListApplies(t *testing.T) {
	muts, err := Parse("mutations.txt")
	if err != nil {
		t.Fatal(err)
	}
	if len(muts) < 20 {
		t.Errorf("%d mutations, want at least 20", len(muts))
	}
	for _, m := range muts {
		mutated, err := m.Apply(root)
		if err != nil {
			t.Error(err)
			continue
		}
		if _, err := parser.ParseFile(token.NewFileSet(), m.File, mutated, 0); err != nil {
			t.Errorf("mutation %s does not parse: %v", m.Name, err)
		}
		if strings.HasPrefix(m.File, "internal/testing/") || strings.HasPrefix(m.File, "internal/dev/") {
			t.Errorf("mutation %s targets %s: the gate mutates product code only", m.Name, m.File)
		}
		tests, _ := filepath.Glob(filepath.Join(root, m.Pkg, "*_test.go"))
		if len(tests) == 0 {
			t.Errorf("mutation %s: no tests in %s", m.Name, m.Pkg)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	for name, text := range map[string]string{
		"no header":    "file = a.go\n",
		"missing why":  "[a]\nfile = a.go\nfrom = x\nto = y\npkg = ./a\nrun = T\n",
		"no-op":        "[a]\nfile = a.go\nfrom = x\nto = x\npkg = ./a\nrun = T\nwhy = w\n",
		"unknown key":  "[a]\nfile = a.go\nwhere = x\n",
		"listed twice": "[a]\nfile = a.go\nfrom = x\nto = y\npkg = ./a\nrun = T\nwhy = w\n[a]\n",
		"empty":        "# nothing\n",
	} {
		if _, err := parse(strings.NewReader(text), name); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
	muts, err := parse(strings.NewReader("[a]\nfile = a.go\nfrom = x  y\\n\\tz\nto = w\npkg = ./a\nrun = ^T$\nwhy = w\n"), "ok")
	if err != nil || len(muts) != 1 || muts[0].From != "x  y\n\tz" || muts[0].Run != "^T$" {
		t.Errorf("parse: %+v %v", muts, err)
	}
}

// The rotating subset walks the whole list over successive days.
func TestChooseRotatesOverTheList(t *testing.T) {
	var muts []Mutation
	for _, n := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		muts = append(muts, Mutation{Name: n})
	}
	seen := map[string]bool{}
	for day := range 4 {
		got, err := choose(muts, "", 2, day)
		if err != nil || len(got) != 2 {
			t.Fatalf("day %d: %v %v", day, got, err)
		}
		for _, m := range got {
			seen[m.Name] = true
		}
	}
	if len(seen) != len(muts) {
		t.Errorf("4 days of 2 covered %d of %d", len(seen), len(muts))
	}
	if _, err := choose(muts, "a,zz", 0, 0); err == nil {
		t.Error("-only with an unknown name was accepted")
	}
}
