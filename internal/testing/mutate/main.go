// Command mutate is the mutation gate (make mutate): it plants each small, realistic
// fault of mutations.txt in the product code, one at a time, runs the tests named to
// catch it, and fails if any fault survives.
//
// A mutation never touches the checkout: the mutated file is written to a temporary
// directory and handed to `go test -overlay`, so an interrupted run leaves the tree as
// it was. An entry whose original snippet is not found exactly once, whose -run
// pattern selects no test, or whose mutant does not build fails the gate loudly: the
// list names code on main, and code moves.
//
//	go run ./internal/testing/mutate                 every mutation
//	go run ./internal/testing/mutate -subset 4       4 of them, rotating by day of year
//	go run ./internal/testing/mutate -only NAME,...  the named ones
package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Mutation is one entry of the list.
type Mutation struct {
	Name string
	File string // relative to the module root
	From string // the original snippet; must occur exactly once in File
	To   string // what replaces it
	Pkg  string // the test package, e.g. ./internal/revealkey
	Run  string // the -run pattern of the tests that should catch it
	Why  string // the fault it stands for
	Line int    // where the entry starts in the list, for messages
}

// Outcome of one mutation.
type Outcome string

const (
	Killed   Outcome = "killed"
	Survived Outcome = "survived"
	Broken   Outcome = "broken" // the entry or its mutant is wrong: stale snippet, no tests run, no build
)

func main() {
	list := flag.String("list", "internal/testing/mutate/mutations.txt", "the mutation list")
	subset := flag.Int("subset", 0, "run only this many mutations, chosen by the day of the year (0: all)")
	only := flag.String("only", "", "comma-separated names to run (default: all)")
	jobs := flag.Int("j", 1, "mutations tested at once")
	timeout := flag.Duration("timeout", 8*time.Minute, "per-mutation go test timeout")
	flag.Parse()

	muts, err := Parse(*list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
	muts, err = choose(muts, *only, *subset, time.Now().YearDay())
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
	tmp, err := os.MkdirTemp("", "orgkey-mutate-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
	defer os.RemoveAll(tmp)

	// Each mutation is one go test of one package with its own emulators; -j runs a
	// few side by side (the emulators pick free ports). Lines print as they finish.
	type result struct {
		out    Outcome
		detail string
	}
	results := make([]result, len(muts))
	work := make(chan int)
	var wg sync.WaitGroup
	var mu sync.Mutex
	for range max(*jobs, 1) {
		wg.Go(func() {
			for i := range work {
				m := muts[i]
				start := time.Now()
				out, detail := runOne(m, tmp, *timeout)
				results[i] = result{out, detail}
				mu.Lock()
				fmt.Printf("%-9s %-34s %s %s -run '%s' (%s)\n", out, m.Name, m.File, m.Pkg, m.Run, time.Since(start).Round(time.Second))
				if out != Killed {
					fmt.Printf("          %s\n", strings.ReplaceAll(strings.TrimSpace(detail), "\n", "\n          "))
				}
				mu.Unlock()
			}
		})
	}
	for i := range muts {
		work <- i
	}
	close(work)
	wg.Wait()
	counts := map[Outcome]int{}
	var bad []string
	for i, r := range results {
		counts[r.out]++
		if r.out != Killed {
			bad = append(bad, muts[i].Name)
		}
	}
	fmt.Printf("\nmutate: %d mutations, %d killed, %d survived, %d broken\n", len(muts), counts[Killed], counts[Survived], counts[Broken])
	if len(bad) > 0 {
		fmt.Printf("mutate: not killed: %s\n", strings.Join(bad, ", "))
		os.Exit(1)
	}
}

// choose narrows the list to the named mutations, or to a rotating subset: n
// consecutive entries starting at day*n, so that successive days walk the whole list.
func choose(muts []Mutation, only string, n, day int) ([]Mutation, error) {
	if only != "" {
		byName := map[string]Mutation{}
		for _, m := range muts {
			byName[m.Name] = m
		}
		var out []Mutation
		for _, name := range strings.Split(only, ",") {
			m, ok := byName[strings.TrimSpace(name)]
			if !ok {
				return nil, fmt.Errorf("-only: no mutation named %q", name)
			}
			out = append(out, m)
		}
		return out, nil
	}
	if n <= 0 || n >= len(muts) {
		return muts, nil
	}
	out := make([]Mutation, 0, n)
	for i := range n {
		out = append(out, muts[(day*n+i)%len(muts)])
	}
	return out, nil
}

// runOne applies m through an overlay and runs its tests.
func runOne(m Mutation, tmp string, timeout time.Duration) (Outcome, string) {
	mutated, err := m.Apply(".")
	if err != nil {
		return Broken, err.Error()
	}
	dir := filepath.Join(tmp, m.Name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Broken, err.Error()
	}
	mutFile := filepath.Join(dir, filepath.Base(m.File))
	if err := os.WriteFile(mutFile, mutated, 0o644); err != nil {
		return Broken, err.Error()
	}
	abs, err := filepath.Abs(m.File)
	if err != nil {
		return Broken, err.Error()
	}
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": {abs: mutFile}})
	ovFile := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(ovFile, ov, 0o644); err != nil {
		return Broken, err.Error()
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout+time.Minute)
	defer cancel()
	// -failfast: one failing test is a kill; the rest of the package need not run.
	cmd := exec.CommandContext(ctx, "go", "test", "-count=1", "-failfast", "-overlay="+ovFile,
		"-timeout="+timeout.String(), "-run", m.Run, m.Pkg)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	err = cmd.Run()
	out := buf.String()
	switch {
	case strings.Contains(out, "[build failed]") || strings.Contains(out, "[setup failed]"):
		return Broken, "the mutant does not build:\n" + tail(out, 20)
	case strings.Contains(out, "[no tests to run]") || strings.Contains(out, "no test files"):
		return Broken, fmt.Sprintf("-run %q selects no test in %s", m.Run, m.Pkg)
	case err == nil:
		return Survived, "every selected test passed with the mutation: " + m.Why
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return Broken, err.Error()
	}
	return Killed, ""
}

// Apply returns m.File (under root) with the mutation made, or an error when the
// original snippet is not there exactly once.
func (m Mutation) Apply(root string) ([]byte, error) {
	src, err := os.ReadFile(filepath.Join(root, m.File))
	if err != nil {
		return nil, fmt.Errorf("mutation %s: %w", m.Name, err)
	}
	if n := bytes.Count(src, []byte(m.From)); n != 1 {
		return nil, fmt.Errorf("stale entry %s (line %d): the original snippet occurs %d times in %s, want exactly once: %q", m.Name, m.Line, n, m.File, m.From)
	}
	return bytes.Replace(src, []byte(m.From), []byte(m.To), 1), nil
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

var header = regexp.MustCompile(`^\[([a-z0-9-]+)\]$`)

// Parse reads the list: entries headed [name], then key = value lines (file, from,
// to, pkg, run, why); # starts a comment line. Values are taken verbatim after "= ",
// so a snippet keeps its spaces; \n and \t in from/to stand for a newline and a tab, \\ for a backslash.
func Parse(path string) ([]Mutation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parse(f, path)
}

func parse(r io.Reader, path string) ([]Mutation, error) {
	var muts []Mutation
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	lineNo := 0
	var cur *Mutation
	for sc.Scan() {
		lineNo++
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if h := header.FindStringSubmatch(trimmed); h != nil {
			if seen[h[1]] {
				return nil, fmt.Errorf("%s:%d: mutation %q listed twice", path, lineNo, h[1])
			}
			seen[h[1]] = true
			muts = append(muts, Mutation{Name: h[1], Line: lineNo})
			cur = &muts[len(muts)-1]
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok || cur == nil {
			return nil, fmt.Errorf("%s:%d: want [name] or key = value, got %q", path, lineNo, line)
		}
		key = strings.TrimSpace(key)
		val = strings.TrimPrefix(val, " ")
		unescape := strings.NewReplacer(`\\`, `\`, `\n`, "\n", `\t`, "\t").Replace
		switch key {
		case "file":
			cur.File = val
		case "from":
			cur.From = unescape(val)
		case "to":
			cur.To = unescape(val)
		case "pkg":
			cur.Pkg = val
		case "run":
			cur.Run = val
		case "why":
			cur.Why = val
		default:
			return nil, fmt.Errorf("%s:%d: unknown key %q", path, lineNo, key)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, m := range muts {
		if m.File == "" || m.From == "" || m.Pkg == "" || m.Run == "" || m.Why == "" || m.From == m.To {
			return nil, fmt.Errorf("%s:%d: mutation %q needs file, from, to (different from from), pkg, run and why", path, m.Line, m.Name)
		}
	}
	if len(muts) == 0 {
		return nil, fmt.Errorf("%s: no mutations", path)
	}
	return muts, nil
}
