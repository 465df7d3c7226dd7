package reproduce

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/puad-go/puad/evaluate/report"
)

// TestFailures: a report with a failed category run is an error naming it;
// missing categories are not failures.
func TestFailures(t *testing.T) {
	seed := 1
	rep := &report.Report{Runs: []report.CategoryRun{
		{DatasetName: "d", Category: "ok", Size: "s", Status: report.StatusOK},
		{DatasetName: "d", Category: "absent", Size: "s", Status: report.StatusMissing},
	}}
	if err := Failures(rep); err != nil {
		t.Errorf("no failure: %v", err)
	}
	rep.Runs = append(rep.Runs, report.CategoryRun{DatasetName: "d", Category: "broken", Size: "m", Seed: &seed, Status: report.StatusFailed})
	var fe *FailedError
	if err := Failures(rep); !errors.As(err, &fe) || err.Error() != "1 category runs failed: d/broken (m, seed 1)" {
		t.Errorf("failed run: %v", err)
	}
}

// TestCategoryNamesNotPaths: --categories takes folder names only.
func TestCategoryNamesNotPaths(t *testing.T) {
	for _, name := range []string{"../etc", "a/b", `a\b`, "..", ".", ""} {
		_, err := Run(context.Background(), Config{DataRoot: t.TempDir(), Categories: []string{name}})
		if err == nil || !strings.Contains(err.Error(), "not a path") {
			t.Errorf("category %q: %v", name, err)
		}
	}
}
