// Package pyref runs the project's PyTorch reference scripts from tests.
// Cross-language tests need Debian's python3-torch (installed by `make
// setup`): without it they skip, except under CI (CI=true), where they fail.
package pyref

import (
	"os"
	"os/exec"
	"sync"
	"testing"
)

// Python is the interpreter that has Debian's python3-torch.
const Python = "/usr/bin/python3"

// CI reports whether the tests run under CI (CI=true), where nothing that
// needs Python may be skipped.
func CI() bool { return os.Getenv("CI") == "true" }

// Short reports whether a test may leave out its slower cross-language
// checks: under -short, except under CI.
func Short() bool { return testing.Short() && !CI() }

var probe struct {
	once sync.Once
	msg  string // empty when the reference Python is available
}

// missing says what is missing for the reference scripts ("" when nothing).
func missing() string {
	probe.once.Do(func() {
		cmd := exec.Command(Python, "-c", "import torch, torchvision, sklearn, PIL")
		if out, err := cmd.CombinedOutput(); err != nil {
			probe.msg = "python3-torch/torchvision/sklearn/PIL not available (`make setup` installs them): " + string(out)
		}
	})
	return probe.msg
}

// Available reports whether Python with torch, torchvision, scikit-learn
// and Pillow is available; under CI it fails the test when it is not.
func Available(t testing.TB) bool {
	t.Helper()
	msg := missing()
	if msg != "" && CI() {
		t.Fatal(msg)
	}
	return msg == ""
}

// Require skips (or, under CI, fails) the test when Python with torch,
// torchvision, scikit-learn and Pillow is not available.
func Require(t testing.TB) {
	t.Helper()
	if !Available(t) {
		t.Skip(missing())
	}
}

// Run runs a reference script with arguments and fails the test on error.
func Run(t testing.TB, script string, args ...string) {
	t.Helper()
	Require(t)
	cmd := exec.Command(Python, append([]string{script}, args...)...)
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s", script, args, err, out)
	}
}

// SkipShort skips a long test in -short mode, except under CI (CI=true),
// where every test runs.
func SkipShort(t testing.TB, why string) {
	t.Helper()
	if Short() {
		t.Skip(why + " (skipped with -short)")
	}
}

// Unavailable skips a test whose tool or platform feature is missing here,
// except under CI (CI=true), where a missing tool fails the test.
func Unavailable(t testing.TB, why string) {
	t.Helper()
	if CI() {
		t.Fatal(why + " (required under CI=true)")
	}
	t.Skip(why)
}
