package detector_test

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/internal/testtree"
)

// The category all tests share: a tiny generated category, a random model
// and its fit, made once per test binary.
var (
	modelDir, categoryDir string
	testImages            []string // the category's test images, sorted
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	root, err := os.MkdirTemp("", "detector-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(root)
	modelDir, categoryDir, err = testtree.Fitted(root, "mvtec_loco_anomaly_detection", "pushpins", synth.VariantPins, 7, 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	testImages, err = filepath.Glob(filepath.Join(categoryDir, "test", "*", "*.png"))
	if err != nil || len(testImages) == 0 {
		fmt.Fprintln(os.Stderr, "no test images", err)
		return 1
	}
	sort.Strings(testImages)
	return m.Run()
}
