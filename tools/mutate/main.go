// Command mutate measures the strength of puad's test suite: it applies
// each mutation of a list (a small, realistic bug) to the source tree, one
// at a time, runs the tests of the affected packages with CI=true, restores
// the file, and prints which mutations the tests caught and which they
// missed. It exits non-zero when a mutation is missed or no longer applies.
//
// The list (tools/mutations.txt) holds blocks of this form:
//
//	== resize: horizontal pass rounds down instead of to nearest
//	file: datasets/resize.go
//	test: ./datasets/
//	run: TestResize
//	- old text (one or more lines, matched exactly once in the file)
//	+ new text (one or more lines)
//
// A '-' or '+' is followed by the line as it is in the file; one space
// after the sign is dropped, so "- x" and "-x" both stand for "x", and a
// line indented with tabs is written "-\t\tx".
//
// "run" is optional (a -run pattern for go test). Lines starting with '#'
// outside blocks are comments. An equivalent mutation (one that cannot
// change behaviour) is marked "equivalent: reason" and is reported, not run.
//
// Usage: go run ./tools/mutate [-list tools/mutations.txt] [-only SUBSTRING] [-timeout 20m]
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// interrupts receives SIGINT/SIGTERM, so the file under mutation is
// restored before the program exits.
var interrupts = make(chan os.Signal, 1)

// mutation is one block of the list.
type mutation struct {
	Name, File, Run, Equivalent string
	Tests                       []string
	Old, New                    string
	Line                        int
}

func main() {
	list := flag.String("list", "tools/mutations.txt", "mutation list")
	only := flag.String("only", "", "run only mutations whose name contains this")
	from := flag.Int("from", 1, "start at the mutation with this number")
	compileOnly := flag.Bool("compile-only", false, "only check that every mutation applies and compiles (go vet)")
	timeout := flag.Duration("timeout", 20*time.Minute, "time limit of one mutation's tests")
	flag.Parse()
	signal.Notify(interrupts, os.Interrupt, syscall.SIGTERM)
	ms, err := parse(*list)
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
	var caught, missed, stale, equivalent int
	start := time.Now()
	fmt.Printf("%-4s %-8s %-8s %s\n", "#", "result", "time", "mutation")
	for i, m := range ms {
		if i+1 < *from || (*only != "" && !strings.Contains(m.Name, *only)) {
			continue
		}
		t0 := time.Now()
		res, detail := runOne(m, *timeout, *compileOnly)
		switch res {
		case "caught":
			caught++
		case "MISSED":
			missed++
		case "STALE", "NOBUILD":
			stale++
		case "equiv.":
			equivalent++
		}
		fmt.Printf("%-4d %-8s %-8s %s\n", i+1, res, time.Since(t0).Round(time.Second), m.Name)
		if detail != "" {
			fmt.Printf("     %s\n", detail)
		}
	}
	fmt.Printf("\n%d caught, %d missed, %d stale or not compiling, %d equivalent (%s)\n", caught, missed, stale, equivalent, time.Since(start).Round(time.Second))
	if missed > 0 || stale > 0 {
		os.Exit(1)
	}
}

// runOne applies m, runs its tests and restores the file.
func runOne(m mutation, timeout time.Duration, compileOnly bool) (result, detail string) {
	if m.Equivalent != "" {
		return "equiv.", m.Equivalent
	}
	orig, err := os.ReadFile(m.File)
	if err != nil {
		return "STALE", err.Error()
	}
	src := string(orig)
	if n := strings.Count(src, m.Old); n != 1 {
		return "STALE", fmt.Sprintf("%s: the old text occurs %d times (want 1); update the list (line %d)", m.File, n, m.Line)
	}
	mutated := strings.Replace(src, m.Old, m.New, 1)
	fi, err := os.Stat(m.File)
	if err != nil {
		return "STALE", err.Error()
	}
	if err := os.WriteFile(m.File, []byte(mutated), fi.Mode().Perm()); err != nil {
		return "STALE", err.Error()
	}
	restore := func() {
		if err := os.WriteFile(m.File, orig, fi.Mode().Perm()); err != nil {
			fmt.Fprintf(os.Stderr, "mutate: could not restore %s: %v\n", m.File, err)
			os.Exit(3)
		}
	}
	defer restore()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-interrupts:
			restore()
			fmt.Fprintf(os.Stderr, "mutate: interrupted; %s restored\n", m.File)
			os.Exit(130)
		case <-stop:
		}
	}()
	args := []string{"test", "-count=1"}
	if compileOnly {
		args = []string{"vet"}
	} else if m.Run != "" {
		args = append(args, "-run", m.Run)
	}
	args = append(args, m.Tests...)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Env = append(os.Environ(), "CI=true")
	out, err := cmd.CombinedOutput()
	if compileOnly {
		if err != nil {
			return "NOBUILD", strings.TrimSpace(string(out))
		}
		return "builds", ""
	}
	if err == nil {
		return "MISSED", ""
	}
	if strings.Contains(string(out), "[build failed]") || strings.Contains(string(out), "[setup failed]") {
		// A mutation that does not compile proves nothing about the tests.
		return "NOBUILD", firstFailure(string(out))
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return "caught", "(tests timed out)"
	}
	return "caught", firstFailure(string(out))
}

// firstFailure picks the first line that says what failed.
func firstFailure(out string) string {
	for _, l := range strings.Split(out, "\n") {
		t := strings.TrimSpace(l)
		if strings.HasPrefix(t, "--- FAIL") || strings.Contains(t, "[build failed]") || strings.HasPrefix(t, "panic:") {
			return t
		}
	}
	return ""
}

// parse reads the mutation list.
func parse(path string) ([]mutation, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ms []mutation
	var cur *mutation
	var old, new []string
	flush := func() error {
		if cur == nil {
			return nil
		}
		cur.Old, cur.New = strings.Join(old, "\n"), strings.Join(new, "\n")
		if cur.File == "" || len(cur.Tests) == 0 || (cur.Equivalent == "" && (cur.Old == "" || cur.Old == cur.New)) {
			return fmt.Errorf("%s:%d: mutation %q needs file, test and a change", path, cur.Line, cur.Name)
		}
		ms = append(ms, *cur)
		cur, old, new = nil, nil, nil
		return nil
	}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		l := sc.Text()
		switch {
		case strings.HasPrefix(l, "== "):
			if err := flush(); err != nil {
				return nil, err
			}
			cur = &mutation{Name: strings.TrimSpace(l[3:]), Line: n}
		case cur == nil:
			if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
				return nil, fmt.Errorf("%s:%d: text outside a mutation block", path, n)
			}
		case strings.HasPrefix(l, "file: "):
			cur.File = strings.TrimSpace(l[6:])
		case strings.HasPrefix(l, "test: "):
			cur.Tests = strings.Fields(l[6:])
		case strings.HasPrefix(l, "run: "):
			cur.Run = strings.TrimSpace(l[5:])
		case strings.HasPrefix(l, "equivalent: "):
			cur.Equivalent = strings.TrimSpace(l[12:])
		case strings.HasPrefix(l, "-"):
			old = append(old, strings.TrimPrefix(l[1:], " "))
		case strings.HasPrefix(l, "+"):
			new = append(new, strings.TrimPrefix(l[1:], " "))
		case strings.TrimSpace(l) == "" || strings.HasPrefix(strings.TrimSpace(l), "#"):
		default:
			return nil, fmt.Errorf("%s:%d: unexpected line in mutation %q", path, n, cur.Name)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if err := flush(); err != nil {
		return nil, err
	}
	return ms, nil
}
