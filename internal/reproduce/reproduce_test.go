package reproduce

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// loco is the dataset folder name of MVTec LOCO AD.
const loco = report.LOCODataset

// keptCount runs cfg and returns the report and the number of kept results.
func keptCount(t *testing.T, cfg Config) (*report.Report, int) {
	t.Helper()
	kept := 0
	cfg.Finished = func(o Outcome) {
		if o.Kept {
			kept++
		}
		t.Logf("%s: %s %s", o.Label, o.Run.Status, o.Run.Reason)
	}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return rep, kept
}

// TestRun runs reproduce on a LOCO-like tree with two evaluable
// categories, one without model files, two of the paper's categories absent
// and no MVTec AD folder; then reruns it (kept results) and forces one
// category.
func TestRun(t *testing.T) {
	root := t.TempDir()
	data, modelDir, out := filepath.Join(root, "data"), filepath.Join(root, "models"), filepath.Join(root, "out")
	testtree.Category(t, data, loco, "breakfast_box", synth.VariantTray, 1)
	testtree.Category(t, data, loco, "pushpins", synth.VariantPins, 2)
	testtree.Category(t, data, loco, "juice_bottle", synth.VariantTray, 3)
	testtree.RandomModel(t, modelDir, loco, "breakfast_box", 1)
	testtree.RandomModel(t, modelDir, loco, "pushpins", 2)

	cfg := Config{DataRoot: data, ModelRoot: modelDir, OutDir: out, Sizes: []models.Size{models.Small},
		Extractor: evaluate.StudentExtractor, Device: tb.CPU}
	rep, kept := keptCount(t, cfg)
	if len(rep.Tables) != 1 || kept != 0 {
		t.Fatalf("%d tables, %d kept", len(rep.Tables), kept)
	}
	tab := rep.Tables[0]
	status := map[string]report.RunStatus{}
	reason := map[string]string{}
	for _, r := range tab.Rows {
		status[r.Category], reason[r.Category] = r.Status, r.Reason
	}
	want := map[string]report.RunStatus{"breakfast_box": "ok", "juice_bottle": "missing", "pushpins": "ok", "screw_bag": "missing", "splicing_connectors": "missing"}
	for c, s := range want {
		if status[c] != s {
			t.Errorf("%s: status %q (%s), want %q", c, status[c], reason[c], s)
		}
	}
	if !strings.Contains(reason["juice_bottle"], "s_size/"+loco+"/juice_bottle/ (student.pt, autoencoder.pt, mu.pt, sigma.pt, quantile.pt)") || !strings.Contains(reason["screw_bag"], "category folder not found") {
		t.Errorf("reasons %q", reason)
	}
	if tab.MeanOf != [2]int{2, 5} || tab.Mean == nil || !tab.HasTypes {
		t.Errorf("mean over %v: %+v", tab.MeanOf, tab.Mean)
	}
	// The generated categories have LOCO ground truth: EfficientAD's AU-sPRO@0.05.
	if tab.LocalizationMetric != report.MetricAUSPRO05 || tab.Mean.Localization == nil {
		t.Errorf("localisation %q, mean %+v", tab.LocalizationMetric, tab.Mean.Localization)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"MVTec LOCO AD: AUROC ×100", "mean (2 of 5)", "83.75", "per anomaly type", "EfficientAD logical", "EfficientAD AU-sPRO@0.05"} {
		if !strings.Contains(text.String(), s) {
			t.Errorf("tables lack %q:\n%s", s, text.String())
		}
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), filepath.Join(data, report.MVTecADataset)+" not found") {
		t.Errorf("notes %q", rep.Notes)
	}
	checkReportFiles(t, out, 1+5+1)
	// The kept per-category result is `puad eval --json`'s, per-image scores included.
	keptRun := loadRun(runPath(out, nil, models.Small, loco, "pushpins", "student"), loco, "pushpins", models.Small, "student")
	if keptRun == nil || len(keptRun.Test) != 4 {
		t.Fatalf("kept result %+v", keptRun)
	}

	// A rerun takes the kept results.
	rep2, kept := keptCount(t, cfg)
	if kept != 2 {
		t.Errorf("rerun kept %d results, want 2", kept)
	}
	if rep2.Tables[0].Mean.PUAD.Measured.Mean != tab.Mean.PUAD.Measured.Mean {
		t.Errorf("rerun mean %v, first run %v", rep2.Tables[0].Mean.PUAD.Measured.Mean, tab.Mean.PUAD.Measured.Mean)
	}

	// Force with a category filter evaluates again, to the same numbers.
	forced := cfg
	forced.Force, forced.Categories = true, []string{"pushpins", "no_such_category"}
	rep3, kept := keptCount(t, forced)
	if kept != 0 || len(rep3.Tables) != 1 || len(rep3.Tables[0].Rows) != 2 {
		t.Fatalf("forced run: %d kept, %+v", kept, rep3.Tables)
	}
	if r := rep3.Tables[0].Rows[0]; r.Category != "no_such_category" || r.Status != report.StatusMissing {
		t.Errorf("unknown category row %+v", r)
	}
	if got := rep3.Runs[0]; got.PUADAUROC != keptRun.PUADAUROC || got.EfficientADAUROC != keptRun.EfficientADAUROC {
		t.Errorf("forced run %+v, first run %v %v", got, keptRun.EfficientADAUROC, keptRun.PUADAUROC)
	}
}

// checkReportFiles checks that the report files are in out, the CSV with
// records records.
func checkReportFiles(t *testing.T, out string, records int) {
	t.Helper()
	files := ReportFiles(out)
	f, err := os.Open(files[1])
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != records {
		t.Fatalf("results.csv: %d records, %v", len(recs), err)
	}
	for _, name := range []string{files[0], files[2]} {
		if info, err := os.Stat(name); err != nil || info.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestRunSeeds checks the wiring of training with two seeds, with a
// stand-in for training that writes random models per seed.
func TestRunSeeds(t *testing.T) {
	root := t.TempDir()
	data, modelDir, out := filepath.Join(root, "data"), filepath.Join(root, "models"), filepath.Join(root, "out")
	testtree.Category(t, data, loco, "pushpins", synth.VariantPins, 2)
	saved := trainingHooks
	defer func() { trainingHooks = saved }()
	var trained []string
	trainingHooks = func(cfg Config) hooks {
		return hooks{
			prepareSize: func(ctx context.Context, modelRoot string, seed *int, size models.Size) error {
				trained = append(trained, "teacher "+filepath.Base(modelRoot))
				return nil
			},
			prepareCategory: func(ctx context.Context, ref Category, modelRoot string, seed *int, size models.Size) (bool, error) {
				trained = append(trained, ref.Category+" "+filepath.Base(modelRoot))
				testtree.RandomModel(t, modelRoot, ref.Dataset, ref.Category, uint64(10+*seed))
				return true, nil
			},
		}
	}
	cfg := Config{DataRoot: data, ModelRoot: modelDir, OutDir: out, Sizes: []models.Size{models.Small},
		Extractor: evaluate.StudentExtractor, Device: tb.CPU, Categories: []string{"pushpins"}, Seeds: []int{0, 1}, Train: &TrainSettings{}}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(trained, ";") != "teacher seed0;pushpins seed0;teacher seed1;pushpins seed1" {
		t.Errorf("training calls %q", trained)
	}
	row := rep.Tables[0].Rows[0]
	if row.Runs != 2 || row.PUAD.Measured.N != 2 || rep.Tables[0].Mean.PUAD.Measured.N != 2 {
		t.Errorf("row %+v, measured %+v", row, row.PUAD.Measured)
	}
	var text bytes.Buffer
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), " ± ") {
		t.Errorf("no ± in the tables:\n%s", text.String())
	}
	for _, k := range []int{0, 1} {
		if _, err := os.Stat(runPath(out, &k, models.Small, loco, "pushpins", "student")); err != nil {
			t.Error(err)
		}
	}
}

// TestRunInterrupted checks that a cancelled run is an *InterruptedError
// naming the folder of kept results.
func TestRunInterrupted(t *testing.T) {
	root := t.TempDir()
	data, out := filepath.Join(root, "data"), filepath.Join(root, "out")
	testtree.Category(t, data, loco, "pushpins", synth.VariantPins, 2)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, Config{DataRoot: data, ModelRoot: filepath.Join(root, "models"), OutDir: out,
		Sizes: []models.Size{models.Small}, Extractor: evaluate.StudentExtractor, Device: tb.CPU})
	var ie *InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, context.Canceled) || ie.RunsDir != filepath.Join(out, RunsDir) {
		t.Errorf("cancelled run: %v", err)
	}
}
