package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/datasets/refsplit"
	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/heatmap"
	"github.com/puad-go/puad/evaluate/metrics"
	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/atomicfile"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
	"github.com/puad-go/puad/training"
)

// Demo defaults, chosen so that `make demo` ends within 10 minutes on two
// CPU cores (see demoConfig).
const (
	demoIterations = 300
	demoImgSize    = 128
	demoSeed       = 1
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "generate a LOCO-like category, train a small EfficientAD on it and compare EfficientAD with PUAD",
		Description: "Runs the whole pipeline on this machine without downloads: a synthetic category in the layout of\n" +
			"MVTec LOCO AD (logical and structural anomalies), a randomly initialised teacher (the real one is\n" +
			"distilled from an ImageNet WideResNet, which cannot be obtained here), a student and autoencoder\n" +
			"trained briefly at 128×128, then EfficientAD and PUAD on the test images, with heatmaps.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "out", Value: "demo-out", Usage: "output `DIR` (data, models, heatmaps, results)"},
			&cli.IntFlag{Name: "iterations", Value: demoIterations, Usage: "student/autoencoder training iterations"},
			&cli.Uint64Flag{Name: "seed", Value: demoSeed, Usage: "seed of the generated data and of training"},
			deviceFlag, quietFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageError(c, "demo takes no arguments, got %q", c.Args().Slice())
			}
			cfg := defaultDemoConfig()
			cfg.OutDir, cfg.Iterations, cfg.Seed = c.String("out"), c.Int("iterations"), c.Uint64("seed")
			cfg.Device, cfg.Quiet = c.String("device"), c.Bool("quiet")
			ctx, cancel := interruptible(c.Context)
			defer cancel()
			_, err := runDemo(ctx, cfg, os.Stdout)
			return err
		},
	}
}

// demoConfig is one demo run.
type demoConfig struct {
	OutDir     string
	Iterations int
	Seed       uint64
	Device     string
	Quiet      bool
	// Data is the generated category: image counts and size.
	Data synth.Config
	// ImgSize is the networks' input size.
	ImgSize int
	// HeatmapsPerClass is the number of test images of each class drawn as heatmaps.
	HeatmapsPerClass int
}

func defaultDemoConfig() demoConfig {
	d := synth.DefaultConfig() // 100 train, 20 validation, 20 test images of each class, 256×256
	return demoConfig{OutDir: "demo-out", Iterations: demoIterations, Seed: demoSeed, Device: "auto",
		Data: d, ImgSize: demoImgSize, HeatmapsPerClass: 2}
}

// demoOutcome is what a demo run measured.
type demoOutcome struct {
	Result   *evaluate.Result
	Rows     []demoRow
	Heatmaps []string
	Verdict  string
	Elapsed  time.Duration
}

// demoRow is one method's AUROCs (0..1) overall and per anomaly type.
type demoRow struct {
	Method                   string
	All, Logical, Structural float64
}

// runDemo generates the data, trains, evaluates and writes heatmaps,
// printing what it does and the results to out.
func runDemo(ctx context.Context, cfg demoConfig, out io.Writer) (*demoOutcome, error) {
	start := time.Now()
	dev, err := tb.ParseDevice(cfg.Device)
	if err != nil {
		return nil, err
	}
	if cfg.Iterations < 1 {
		return nil, fmt.Errorf("--iterations %d: want at least 1", cfg.Iterations)
	}
	dataRoot := filepath.Join(cfg.OutDir, "data")
	modelDir := filepath.Join(cfg.OutDir, "models")
	heatDir := filepath.Join(cfg.OutDir, "heatmaps")
	step := func(n int, format string, a ...any) {
		fmt.Fprintf(out, "[%d/5] %s\n", n, fmt.Sprintf(format, a...))
	}
	fmt.Fprintln(out, "puad demo: EfficientAD and PUAD on a generated LOCO-like category, trained and evaluated on this machine")

	// 1. Data.
	t0 := time.Now()
	dcfg := cfg.Data
	dcfg.Seed = cfg.Seed
	sum, err := synth.Generate(dataRoot, dcfg)
	if err != nil {
		return nil, err
	}
	dcfg = sum.Config
	step(1, "data: %s (%d×%d): %d train, %d validation, %d good + %d logical + %d structural test images, seed %d (%s)",
		sum.Dir, dcfg.Width, dcfg.Height, dcfg.Count(synth.SetTrainGood), dcfg.Count(synth.SetValidationGood),
		dcfg.Count(synth.SetTestGood), dcfg.Count(synth.SetTestLogical), dcfg.Count(synth.SetTestStructural), cfg.Seed, since(t0))

	// 2. Teacher.
	size := models.Small
	teacher, err := training.RandomTeacher(modelDir, size, cfg.Seed, true)
	if err != nil {
		return nil, err
	}
	step(2, "teacher: %s with RANDOM weights (seed %d)", teacher, cfg.Seed)
	fmt.Fprintln(out, "      EfficientAD's teacher is distilled from an ImageNet-pretrained WideResNet101-2; neither ImageNet")
	fmt.Fprintln(out, "      nor those weights can be downloaded here, so this teacher is randomly initialised. The student")
	fmt.Fprintln(out, "      and autoencoder still learn to match it on normal images, so the pipeline runs end to end, but")
	fmt.Fprintln(out, "      its features carry no ImageNet knowledge: the numbers below say nothing about the paper's.")

	// 3. Student and autoencoder.
	t0 = time.Now()
	catModelDir := models.Layout{Root: modelDir, Size: size}.CategoryDir(dcfg.DatasetName, dcfg.Category)
	// A checkpoint of an earlier, interrupted demo would belong to other settings.
	os.Remove(filepath.Join(catModelDir, training.CheckpointFile))
	step(3, "student and autoencoder: %d iterations at %d×%d, batch 1, without the ImageNet penalty (no ImageNet here)",
		cfg.Iterations, cfg.ImgSize, cfg.ImgSize)
	bar := newProgressBar(cfg.Quiet)
	var logBuf strings.Builder
	scfg := training.StudentConfig{
		DatasetDir: sum.Dir, ModelDir: modelDir, Size: size, Iterations: cfg.Iterations, ImgSize: cfg.ImgSize,
		Seed: cfg.Seed, Device: dev, Log: &logBuf,
		Progress: func(stage string, iter, total int, loss float64) {
			note := ""
			if !math.IsNaN(loss) {
				note = fmt.Sprintf("loss %.4f", loss)
			}
			bar.Update(stage, iter, total, note)
		},
	}
	tr, err := training.TrainStudent(ctx, scfg)
	if err != nil {
		return nil, err
	}
	trainedAUROC, _, err := scoreTrainedStudent(ctx, scfg, tr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(out, "      final loss %.4f; EfficientAD AUROC after training %.4f (%s)\n", tr.FinalLoss, trainedAUROC, since(t0))

	// 4. Evaluation.
	t0 = time.Now()
	ds, err := datasets.Open(sum.Dir, refsplit.Perm)
	if err != nil {
		return nil, err
	}
	m, err := models.LoadEfficientAD(modelDir, size, ds.DatasetName, ds.Category, int64(cfg.ImgSize), dev)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	opts := evaluate.Options{Extractor: evaluate.StudentExtractor,
		Progress: func(stage string, done, total int) { bar.Update(stage, done, total, "") }}
	res, err := evaluate.Evaluate(ctx, ds, m, opts)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.WriteJSON(filepath.Join(cfg.OutDir, "results.json"), res); err != nil {
		return nil, err
	}
	fit, err := res.Fitted.FitFile(ds, stats.DefaultMaxFPR, time.Now())
	if err != nil {
		return nil, err
	}
	fitFile := filepath.Join(catModelDir, stats.FitFileName)
	if err := stats.SaveFit(fitFile, fit); err != nil {
		return nil, err
	}
	step(4, "evaluation: EfficientAD and PUAD (student features) on %d test images; PUAD fit and threshold in %s (%s)",
		len(res.Test), fitFile, since(t0))

	// 5. Heatmaps.
	t0 = time.Now()
	heatmaps, err := demoHeatmaps(res, ds, fit, heatDir, cfg.HeatmapsPerClass)
	if err != nil {
		return nil, err
	}
	step(5, "heatmaps: %d overlays in %s (%s)", len(heatmaps), heatDir, since(t0))

	rows, err := demoRows(res)
	if err != nil {
		return nil, err
	}
	o := &demoOutcome{Result: res, Rows: rows, Heatmaps: heatmaps}
	fmt.Fprintf(out, "\nImage AUROC ×100 on the generated test set (%d good, %d logical, %d structural images)\n",
		dcfg.Count(synth.SetTestGood), dcfg.Count(synth.SetTestLogical), dcfg.Count(synth.SetTestStructural))
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tall\tlogical\tstructural")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\n", r.Method, 100*r.All, 100*r.Logical, 100*r.Structural)
	}
	tw.Flush()
	o.Verdict = demoVerdict(rows)
	fmt.Fprintf(out, "\n%s\n", o.Verdict)
	fmt.Fprintf(out, "\nTry: puad predict %s --category %s --heatmaps %s %s\n", modelDir, sum.Dir,
		filepath.Join(cfg.OutDir, "predict"), filepath.Join(sum.Dir, datasets.TestDir, synth.LabelLogical))
	o.Elapsed = time.Since(start)
	fmt.Fprintf(out, "demo finished in %s\n", o.Elapsed.Round(time.Second))
	return o, nil
}

func since(t time.Time) string { return time.Since(t).Round(100 * time.Millisecond).String() }

// demoRows computes the AUROCs of EfficientAD, of the Mahalanobis distance
// alone and of PUAD, overall and for the logical and structural anomalies.
func demoRows(res *evaluate.Result) ([]demoRow, error) {
	classes := make([]string, len(res.Test))
	eff := make([]float64, len(res.Test))
	maha := make([]float64, len(res.Test))
	puad := make([]float64, len(res.Test))
	for i, s := range res.Test {
		classes[i], eff[i], maha[i], puad[i] = s.Class, s.EfficientAD, s.Mahalanobis, s.PUAD
	}
	var rows []demoRow
	for _, m := range []struct {
		name   string
		scores []float64
	}{
		{"EfficientAD (S)", eff},
		{"Mahalanobis distance alone (unpicturable)", maha},
		{"PUAD (EfficientAD + Mahalanobis)", puad},
	} {
		all, per, err := metrics.PerClassAUROC(classes, m.scores, datasets.NormalClass)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.name, err)
		}
		r := demoRow{Method: m.name, All: all, Logical: math.NaN(), Structural: math.NaN()}
		for _, pc := range per {
			switch pc.Class {
			case report.LogicalClass:
				r.Logical = pc.AUROC
			case report.StructuralClass:
				r.Structural = pc.AUROC
			}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

// demoVerdict says plainly whether adding the unpicturable score helped
// with the logical anomalies on this run. Differences within two AUROC
// points are called unclear: with 20 logical and 20 good images one image
// pair moves the AUROC by a quarter point, and a retrained model moves it by
// more.
func demoVerdict(rows []demoRow) string {
	eff, puad := rows[0], rows[2]
	gain := 100 * (puad.Logical - eff.Logical)
	sgain := 100 * (puad.Structural - eff.Structural)
	head := fmt.Sprintf("Logical anomalies: EfficientAD %.2f, PUAD %.2f (%+.2f). Structural: %.2f → %.2f (%+.2f).",
		100*eff.Logical, 100*puad.Logical, gain, 100*eff.Structural, 100*puad.Structural, sgain)
	switch {
	case gain > 2:
		return head + "\nOn this data the unpicturable score HELPS with logical anomalies, as the paper claims for MVTec LOCO AD."
	case gain < -2:
		return head + "\nOn this data the unpicturable score does NOT help with logical anomalies: PUAD is worse than EfficientAD on them."
	}
	return head + "\nOn this data adding the unpicturable score makes NO CLEAR DIFFERENCE for logical anomalies (within 2 AUROC points)."
}

// demoHeatmaps draws the first perClass test images of each class with
// their anomaly maps and PUAD verdicts.
func demoHeatmaps(res *evaluate.Result, ds *datasets.Dataset, fit *stats.FitFile, dir string, perClass int) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	sc := res.Fitted.Scorer
	size := int(sc.Model.ImgSize)
	hm := detector.NewHeatmapStyle(fit)
	count := map[string]int{}
	var written []string
	for i, it := range ds.Test {
		if count[it.Class] >= perClass {
			continue
		}
		count[it.Class]++
		data, err := datasets.LoadImage(it.Path, size)
		if err != nil {
			return nil, err
		}
		outs, err := evaluate.ScoreBatch(sc, data, 1, evaluate.Need{Score: true, Feature: true, Map: true})
		if err != nil {
			return nil, err
		}
		o := outs[0]
		stem := strings.TrimSuffix(filepath.Base(it.Path), filepath.Ext(it.Path))
		path := filepath.Join(dir, it.Class+"_"+stem+".png")
		title := it.Class + "/" + filepath.Base(it.Path)
		img, err := datasets.DecodeFile(it.Path)
		if err != nil {
			return nil, err
		}
		out, err := hm.Render(img, o.Map, size, title, res.Test[i].PUAD)
		if err == nil {
			err = heatmap.WritePNG(path, out)
		}
		if err != nil {
			return nil, fmt.Errorf("write %s: %w", path, err)
		}
		written = append(written, path)
	}
	return written, nil
}
