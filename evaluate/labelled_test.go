package evaluate_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/evalsetup"
	"github.com/puad-go/puad/internal/sklearnref"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// TestFolderFitFile chooses thresholds on a labelled folder and checks
// them against scikit-learn's choice on the same scores, for each kind of
// objective; a folder of normal images alone gives the clear error of an
// objective that needs anomalies.
func TestFolderFitFile(t *testing.T) {
	root := t.TempDir()
	cat := testtree.Category(t, filepath.Join(root, "data"), "my_dataset", "widget", synth.VariantTray, 3)
	modelDir := filepath.Join(root, "models")
	testtree.RandomModel(t, modelDir, "my_dataset", "widget", 3)
	labelled := testtree.LabelledFolder(t, filepath.Join(root, "held_out"), synth.VariantTray, 9)
	ds, m, opts, err := evalsetup.Load(cat, modelDir, evalsetup.Settings{
		Size: models.Small, Extractor: evaluate.StudentExtractor, Device: tb.CPU, Need: datasets.NeedTrain})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	ctx, created := context.Background(), time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	pm, err := evaluate.Fit(ctx, ds, m, opts)
	if err != nil {
		t.Fatal(err)
	}
	_, items, err := datasets.ImageFolder(labelled)
	if err != nil {
		t.Fatal(err)
	}
	scores, err := pm.ScoreLabelled(ctx, items, labelled, "labelled", opts)
	if err != nil {
		t.Fatal(err)
	}
	puad := make([]float64, len(scores))
	anomalous := make([]bool, len(scores))
	for i, s := range scores {
		puad[i], anomalous[i] = s.PUAD, s.Anomalous
		if want := filepath.ToSlash(must(filepath.Rel(labelled, items[i].Path))); s.Path != want || s.Class != items[i].Class {
			t.Errorf("score %d: %+v, image %s", i, s, want)
		}
	}
	objectives := []string{"f1", "recall=0.5", "recall=1", "fpr=0", "fpr=0.4"}
	want := sklearnref.Thresholds(t, puad, anomalous, objectives)

	// The fit records the folder's absolute path, given a relative one.
	abs := labelled
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	rel := must(filepath.Rel(cwd, labelled))
	f, err := pm.FolderFitFile(ctx, ds, rel, stats.Objective{Kind: stats.ObjectiveF1}, 0.01, opts, created)
	if err != nil {
		t.Fatal(err)
	}
	th := f.Threshold
	if th.From != abs || th.Objective.String() != "f1" || th.Labelled == nil || *th.Labelled != want["f1"] || th.Value != want["f1"].Threshold {
		t.Errorf("threshold %+v (%+v), scikit-learn's %+v", th, th.Labelled, want["f1"])
	}
	if pt := f.PixelThreshold; pt == nil || pt.MaxFPR != 0.01 {
		t.Errorf("pixel threshold %+v", pt)
	}
	for _, o := range objectives {
		obj, err := stats.ParseObjective(o)
		if err != nil {
			t.Fatal(err)
		}
		f, err := pm.LabelledFitFile(ds, scores, abs, obj, stats.DefaultPixelFPR, created)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Threshold; *got.Labelled != want[o] || got.Value != want[o].Threshold || *got.Objective != obj {
			t.Errorf("%s: %+v, scikit-learn's %+v", o, got.Labelled, want[o])
		}
	}

	checkNormalOnly(t, pm, ds, opts, labelled, filepath.Join(root, "normal"))
}

// checkNormalOnly copies two normal images of labelled into a folder of
// its own and checks that an objective that needs anomalies is refused
// on it with the clear error.
func checkNormalOnly(t *testing.T, pm *evaluate.PUADModel, ds *datasets.Dataset, opts evaluate.Options, labelled, normal string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(normal, "good"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"000.png", "001.png"} {
		data, err := os.ReadFile(filepath.Join(labelled, "good", name))
		if err == nil {
			err = os.WriteFile(filepath.Join(normal, "good", name), data, 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err := pm.FolderFitFile(context.Background(), ds, normal, stats.Objective{Kind: stats.ObjectiveRecall, Target: 0.9}, stats.DefaultPixelFPR, opts, time.Now())
	var na *stats.NoAnomaliesError
	if !errors.As(err, &na) || !strings.Contains(err.Error(), "objective recall=0.9 needs anomalous images, and the labelled images are all normal") {
		t.Errorf("normal images only: %v", err)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
