package adversarial_test

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
)

// figures counts what the suite tried and what held. Each count is made by the test
// that checked it, after its checks ran: a case counts as held only if its test did
// not fail.
var figures = &tally{inputs: map[string]*pair{}, faults: map[string]*pair{}, matrix: map[string]*pair{}}

type pair struct{ tried, held int }

type tally struct {
	mu                      sync.Mutex
	inputs, faults, matrix  map[string]*pair
	leaksChecked, leaksSeen int
	leakCheckRan            bool
}

func count(m map[string]*pair, key string, held bool) {
	p := m[key]
	if p == nil {
		p = &pair{}
		m[key] = p
	}
	p.tried++
	if held {
		p.held++
	}
}

// input records one hostile input at an entry point; call it deferred in the case's
// subtest so it sees the outcome of every check.
func (f *tally) input(t *testing.T, entry string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	count(f.inputs, entry, !t.Failed())
}

func (f *tally) fault(t *testing.T, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	count(f.faults, name, !t.Failed())
}

func (f *tally) cell(t *testing.T, flow string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	count(f.matrix, flow, !t.Failed())
}

func (f *tally) leak() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leaksSeen++
}

func (f *tally) leakCheck(items int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.leaksChecked += items
	f.leakCheckRan = true
}

// markdown is the report make adversarial prints and the README shows.
func (f *tally) markdown(passed bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var b strings.Builder
	verdict := "PASS"
	if !passed {
		verdict = "FAIL (see the test output)"
	}
	fmt.Fprintf(&b, "Adversarial suite (internal/testing/adversarial): %s\n\n", verdict)
	table := func(title, tried, held string, m map[string]*pair) {
		fmt.Fprintf(&b, "| %s | %s | %s |\n| --- | ---: | ---: |\n", title, tried, held)
		var tt, th int
		for _, k := range slices.Sorted(maps.Keys(m)) {
			fmt.Fprintf(&b, "| %s | %d | %d |\n", k, m[k].tried, m[k].held)
			tt += m[k].tried
			th += m[k].held
		}
		fmt.Fprintf(&b, "| **total** | **%d** | **%d** |\n\n", tt, th)
	}
	table("entry point", "hostile inputs tried", "refused correctly, nothing changed, no mail", f.inputs)
	table("authorization matrix (flow)", "cells", "as the rules say", f.matrix)
	table("fault injected", "runs", "converged (nothing half-written, no mail twice, no key lost)", f.faults)
	leaks := "not checked"
	if f.leakCheckRan {
		leaks = fmt.Sprintf("%d found in %d log lines, answers, mails and table items", f.leaksSeen, f.leaksChecked)
	}
	fmt.Fprintf(&b, "Leaks (org keys, claim tokens, JWTs where they must not be): %s\n", leaks)
	return b.String()
}
