package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/models"
)

// TestReproduce runs reproduce on a LOCO-like tree with two evaluable
// categories, one without model files, two of the paper's categories absent
// and no MVTec AD folder; then reruns it (kept results), forces one category,
// and trains (a stand-in for training) two seeds.
func TestReproduce(t *testing.T) {
	root := t.TempDir()
	data, modelDir, out := filepath.Join(root, "data"), filepath.Join(root, "models"), filepath.Join(root, "out")
	tinyCategory(t, data, loco, "breakfast_box", synth.VariantTray, 1)
	tinyCategory(t, data, loco, "pushpins", synth.VariantPins, 2)
	tinyCategory(t, data, loco, "juice_bottle", synth.VariantTray, 3)
	writeRandomModel(t, modelDir, loco, "breakfast_box", 1)
	writeRandomModel(t, modelDir, loco, "pushpins", 2)
	ctx := context.Background()

	var stdout, log bytes.Buffer
	cfg := reproduceConfig{DataRoot: data, ModelRoot: modelDir, OutDir: out, Sizes: []models.Size{models.Small},
		Extractor: "student", Device: "cpu", Quiet: true}
	rep, err := runReproduce(ctx, cfg, &stdout, &log)
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(rep.Tables) != 1 {
		t.Fatalf("%d tables", len(rep.Tables))
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
	text := stdout.String()
	t.Logf("output:\n%s\nlog:\n%s", text, log.String())
	for _, s := range []string{"MVTec LOCO AD: AUROC ×100", "mean (2 of 5)", "83.75", "per anomaly type", "EfficientAD logical"} {
		if !strings.Contains(text, s) {
			t.Errorf("output lacks %q:\n%s", s, text)
		}
	}
	if !strings.Contains(strings.Join(rep.Notes, "\n"), filepath.Join(data, report.MVTecADataset)+" not found") {
		t.Errorf("notes %q", rep.Notes)
	}
	f, err := os.Open(filepath.Join(out, "results.csv"))
	if err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(f).ReadAll()
	f.Close()
	if err != nil || len(recs) != 1+5+1 {
		t.Fatalf("results.csv: %d records, %v", len(recs), err)
	}
	for _, name := range []string{"results.json", "results.md"} {
		if info, err := os.Stat(filepath.Join(out, name)); err != nil || info.Size() == 0 {
			t.Errorf("%s: %v", name, err)
		}
	}
	// The kept per-category result is `puad eval --json`'s, per-image scores included.
	kept := loadRun(runPath(out, nil, models.Small, loco, "pushpins", "student"), loco, "pushpins", models.Small, "student")
	if kept == nil || len(kept.Test) != 4 {
		t.Fatalf("kept result %+v", kept)
	}

	// A rerun takes the kept results.
	log.Reset()
	rep2, err := runReproduce(ctx, cfg, io.Discard, &log)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(log.String(), "kept from an earlier run") != 2 {
		t.Errorf("rerun log:\n%s", log.String())
	}
	if rep2.Tables[0].Mean.PUAD.Measured.Mean != tab.Mean.PUAD.Measured.Mean {
		t.Errorf("rerun mean %v, first run %v", rep2.Tables[0].Mean.PUAD.Measured.Mean, tab.Mean.PUAD.Measured.Mean)
	}

	// --force with --categories evaluates again, to the same numbers.
	log.Reset()
	forced := cfg
	forced.Force, forced.Categories = true, []string{"pushpins", "no_such_category"}
	rep3, err := runReproduce(ctx, forced, io.Discard, &log)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(log.String(), "kept") || len(rep3.Tables) != 1 || len(rep3.Tables[0].Rows) != 2 {
		t.Fatalf("forced run: %+v\n%s", rep3.Tables, log.String())
	}
	if r := rep3.Tables[0].Rows[0]; r.Category != "no_such_category" || r.Status != report.StatusMissing {
		t.Errorf("unknown category row %+v", r)
	}
	if got := rep3.Runs[0]; got.PUADAUROC != kept.PUADAUROC || got.EfficientADAUROC != kept.EfficientADAUROC {
		t.Errorf("forced run %+v, first run %v %v", got, kept.EfficientADAUROC, kept.PUADAUROC)
	}
}

// TestReproduceSeeds checks the wiring of --train with two seeds, with a
// stand-in for training that writes random models per seed.
func TestReproduceSeeds(t *testing.T) {
	root := t.TempDir()
	data, modelDir, out := filepath.Join(root, "data"), filepath.Join(root, "models"), filepath.Join(root, "out")
	tinyCategory(t, data, loco, "pushpins", synth.VariantPins, 2)
	saved := trainingHooks
	defer func() { trainingHooks = saved }()
	var trained []string
	trainingHooks = func(cfg reproduceConfig, log io.Writer) (reproduceHooks, error) {
		return reproduceHooks{
			prepareSize: func(ctx context.Context, modelRoot string, seed *int, size models.Size) error {
				trained = append(trained, "teacher "+filepath.Base(modelRoot))
				return nil
			},
			prepareCategory: func(ctx context.Context, ref categoryRef, modelRoot string, seed *int, size models.Size) (bool, error) {
				trained = append(trained, ref.Category+" "+filepath.Base(modelRoot))
				writeRandomModel(t, modelRoot, ref.Dataset, ref.Category, uint64(10+*seed))
				return true, nil
			},
		}, nil
	}
	cfg := reproduceConfig{DataRoot: data, ModelRoot: modelDir, OutDir: out, Sizes: []models.Size{models.Small},
		Extractor: "student", Device: "cpu", Categories: []string{"pushpins"}, Seeds: []int{0, 1}, Train: &trainSettings{}, Quiet: true}
	var stdout bytes.Buffer
	rep, err := runReproduce(context.Background(), cfg, &stdout, io.Discard)
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
	if !strings.Contains(stdout.String(), " ± ") {
		t.Errorf("no ± in the output:\n%s", stdout.String())
	}
	for _, k := range []int{0, 1} {
		if _, err := os.Stat(runPath(out, &k, models.Small, loco, "pushpins", "student")); err != nil {
			t.Error(err)
		}
	}
}

// TestReproduceFlags checks the command line: --train needs its inputs and
// fails before any work when they are missing.
func TestReproduceFlags(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	if err := os.MkdirAll(filepath.Join(data, loco), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--train"}, "--train needs --imagenet PATH and --wrn-weights FILE"},
		{[]string{"--train", "--imagenet", root, "--wrn-weights", filepath.Join(root, "wrn.pth")}, "wide_resnet101_2"},
		{[]string{"--size", "s,x"}, `"x"`},
		{[]string{"--seeds", "0,a"}, `--seeds: "a"`},
		{[]string{"--data", root}, "neither mvtec_loco_anomaly_detection nor mvtec_anomaly_detection"},
	} {
		app := newApp()
		args := append([]string{"puad", "reproduce", "--data", data, "--models", filepath.Join(root, "models"), "--out", filepath.Join(root, "out"), "-q"}, c.args...)
		err := app.Run(interspersed(app, args))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}
