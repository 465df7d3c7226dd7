package main

import (
	"context"
	"fmt"
	"image"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/heatmap"
	"github.com/puad-go/puad/evaluate/localize"
	"github.com/puad-go/puad/evaluate/metrics"
	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/atomicfile"
	"github.com/puad-go/puad/internal/evalsetup"
	"github.com/puad-go/puad/internal/pyfmt"
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
			"MVTec LOCO AD (logical and structural anomalies), copied as a plain folder of good images with\n" +
			"validation/ and test/ beside them (the shape of a user's own images), a randomly initialised teacher\n" +
			"(the real one is distilled from an ImageNet WideResNet, which cannot be obtained here), a student and\n" +
			"autoencoder trained briefly at 128×128 on the plain folder, then EfficientAD and PUAD on the test\n" +
			"images, with heatmaps, and `puad predict --name` on the logical anomalies.",
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
			return demoError(ctx, err)
		},
	}
}

// demoError is the error of a demo run: an interrupted demo cannot be
// continued (it starts over on the next run), whatever the step said.
func demoError(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("demo interrupted; run `puad demo` again to start it over (it does not resume): %v", plainMessage(err))
	}
	return err
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

// demoSteps is the number of steps runDemo announces.
const demoSteps = 6

// demoRun is the state of a demo run shared by its steps.
type demoRun struct {
	cfg                demoConfig
	out                io.Writer
	dev                tb.Device
	size               models.Size
	data               synth.Config
	category, plainDir string
	modelDir           string
	bar                *progressBar
}

func (r *demoRun) step(n int, format string, a ...any) {
	fmt.Fprintf(r.out, "[%d/%d] %s\n", n, demoSteps, fmt.Sprintf(format, a...))
}

// runDemo generates the data, trains, evaluates, writes heatmaps and
// predicts, printing what it does and the results to out.
func runDemo(ctx context.Context, cfg demoConfig, out io.Writer) (*demoOutcome, error) {
	start := time.Now()
	dev, err := tb.ParseDevice(cfg.Device)
	if err != nil {
		return nil, err
	}
	if cfg.Iterations < 1 {
		return nil, fmt.Errorf("--iterations %d: want at least 1", cfg.Iterations)
	}
	r := &demoRun{cfg: cfg, out: out, dev: dev, size: models.Small, modelDir: filepath.Join(cfg.OutDir, "models"), bar: newProgressBar(cfg.Quiet)}
	fmt.Fprintln(out, "puad demo: EfficientAD and PUAD on a generated LOCO-like category, trained and evaluated on this machine")
	if err := r.generate(); err != nil {
		return nil, err
	}
	if err := r.train(ctx); err != nil {
		return nil, err
	}
	o, fit, ds, err := r.evaluate(ctx)
	if err != nil {
		return nil, err
	}
	defer o.Result.Fitted.Scorer.Model.Close()
	t0 := time.Now()
	heatDir := filepath.Join(cfg.OutDir, "heatmaps")
	if o.Heatmaps, err = demoHeatmaps(o.Result, ds, fit, heatDir, cfg.HeatmapsPerClass); err != nil {
		return nil, err
	}
	r.step(5, "heatmaps: %d overlays in %s (%s)", len(o.Heatmaps), heatDir, since(t0))
	if err := r.predict(ctx); err != nil {
		return nil, err
	}
	r.printTable(o)
	o.Elapsed = time.Since(start)
	fmt.Fprintf(out, "demo finished in %s\n", o.Elapsed.Round(time.Second))
	return o, nil
}

// generate writes the category and its plain-folder copy (step 1).
func (r *demoRun) generate() error {
	t0 := time.Now()
	dcfg := r.cfg.Data
	dcfg.Seed = r.cfg.Seed
	dataRoot := filepath.Join(r.cfg.OutDir, "data")
	sum, err := synth.Generate(dataRoot, dcfg)
	if err != nil {
		return err
	}
	r.data, r.category = sum.Config, sum.Config.Category
	r.plainDir = filepath.Join(dataRoot, "own_images", r.category)
	// A plain folder of an earlier demo may hold other images.
	if err := os.RemoveAll(r.plainDir); err != nil {
		return err
	}
	if err := synth.WritePlain(sum.Dir, r.plainDir); err != nil {
		return err
	}
	d := r.data
	r.step(1, "data: %s (%d×%d): %d train, %d validation, %d good + %d logical + %d structural test images, seed %d (%s)",
		sum.Dir, d.Width, d.Height, d.Count(synth.SetTrainGood), d.Count(synth.SetValidationGood),
		d.Count(synth.SetTestGood), d.Count(synth.SetTestLogical), d.Count(synth.SetTestStructural), r.cfg.Seed, since(t0))
	fmt.Fprintf(r.out, "      the same images as a plain folder, the way your own product images would come: %s\n", r.plainDir)
	fmt.Fprintf(r.out, "      (good images at the top, validation/ and test/<class>/ beside them; the model is named %q)\n", r.category)
	return nil
}

// train makes the teacher and trains the student and autoencoder on the
// plain folder (steps 2 and 3).
func (r *demoRun) train(ctx context.Context) error {
	teacher, err := training.RandomTeacher(r.modelDir, r.size, r.cfg.Seed, true)
	if err != nil {
		return err
	}
	r.step(2, "teacher: %s with RANDOM weights (seed %d)", teacher, r.cfg.Seed)
	fmt.Fprintln(r.out, "      EfficientAD's teacher is distilled from an ImageNet-pretrained WideResNet101-2; neither ImageNet")
	fmt.Fprintln(r.out, "      nor those weights can be downloaded here, so this teacher is randomly initialised. The student")
	fmt.Fprintln(r.out, "      and autoencoder still learn to match it on normal images, so the pipeline runs end to end, but")
	fmt.Fprintln(r.out, "      its features carry no ImageNet knowledge: the numbers below say nothing about the paper's.")
	fmt.Fprintln(r.out, "      With a published teacher, `puad train student --teacher FILE` starts from it instead.")

	t0 := time.Now()
	catModelDir := models.Layout{Root: r.modelDir, Size: r.size}.CategoryDir(datasets.PlainDatasetName, r.category)
	// A checkpoint of an earlier, interrupted demo would belong to other settings.
	os.Remove(filepath.Join(catModelDir, training.CheckpointFile))
	r.step(3, "student and autoencoder on the plain folder: %d iterations at %d×%d, batch 1, without the ImageNet penalty (no ImageNet here)",
		r.cfg.Iterations, r.cfg.ImgSize, r.cfg.ImgSize)
	var logBuf strings.Builder
	scfg := training.StudentConfig{
		DatasetDir: r.plainDir, ModelDir: r.modelDir, Size: r.size, Iterations: r.cfg.Iterations, ImgSize: r.cfg.ImgSize,
		Seed: r.cfg.Seed, Device: r.dev, Log: &logBuf, Progress: trainProgress(r.bar),
	}
	tr, err := training.TrainStudent(ctx, scfg)
	if err != nil {
		return err
	}
	trainedAUROC, _, err := scoreTrainedStudent(ctx, scfg, tr)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "      model in %s; final loss %.4f; EfficientAD AUROC after training %.4f (%s)\n", tr.Dir, tr.FinalLoss, trainedAUROC, since(t0))
	return nil
}

// evaluate scores the test images with EfficientAD and PUAD and stores the
// PUAD fit beside the model (step 4). The outcome's scorer keeps the model
// open; the caller closes it.
func (r *demoRun) evaluate(ctx context.Context) (*demoOutcome, *stats.FitFile, *datasets.Dataset, error) {
	t0 := time.Now()
	ds, m, opts, err := evalsetup.Load(r.plainDir, r.modelDir, evalsetup.Settings{
		Size: r.size, Extractor: evaluate.StudentExtractor, Device: r.dev, BatchSize: 1, ImgSize: r.cfg.ImgSize})
	if err != nil {
		return nil, nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			m.Close()
		}
	}()
	opts.Progress = func(stage string, done, total int) { r.bar.Update(stage, done, total, "") }
	res, err := evaluate.Evaluate(ctx, ds, m, opts)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := atomicfile.WriteJSON(filepath.Join(r.cfg.OutDir, "results.json"), res); err != nil {
		return nil, nil, nil, err
	}
	fit, err := res.Fitted.FitFile(ds, stats.DefaultMaxFPR, time.Now())
	if err != nil {
		return nil, nil, nil, err
	}
	fitFile := fitPath(r.modelDir, r.size, ds.DatasetName, ds.Category)
	if err := stats.SaveFit(fitFile, fit); err != nil {
		return nil, nil, nil, err
	}
	r.step(4, "evaluation: EfficientAD and PUAD (student features) on %d test images; PUAD fit and threshold in %s (%s)",
		len(res.Test), fitFile, since(t0))
	rows, err := demoRows(res)
	if err != nil {
		return nil, nil, nil, err
	}
	ok = true
	return &demoOutcome{Result: res, Rows: rows}, fit, ds, nil
}

// predict scores the logical anomalies by the model's name alone, as a
// deployed line would (step 6).
func (r *demoRun) predict(ctx context.Context) error {
	t0 := time.Now()
	logical := filepath.Join(r.plainDir, datasets.TestDir, synth.LabelLogical)
	var lines strings.Builder
	rep, err := runPredict(ctx, predictSettings{ModelDir: r.modelDir, Name: r.category, Inputs: []string{logical},
		Size: string(r.size), Device: r.cfg.Device}, &lines, io.Discard)
	if err != nil {
		return err
	}
	jsonPath := filepath.Join(r.cfg.OutDir, "predict.json")
	if err := atomicfile.WriteJSON(jsonPath, rep); err != nil {
		return err
	}
	all := strings.Split(strings.TrimSpace(lines.String()), "\n")
	r.step(6, "predict by name: puad predict %s --name %s %s (%s)", r.modelDir, r.category, logical, since(t0))
	fmt.Fprintf(r.out, "      %s; per-image scores in %s\n", all[len(all)-1], jsonPath)
	return nil
}

// printTable prints the AUROC table and the verdict.
func (r *demoRun) printTable(o *demoOutcome) {
	d := r.data
	fmt.Fprintf(r.out, "\nImage AUROC ×100 on the generated test set (%d good, %d logical, %d structural images)\n",
		d.Count(synth.SetTestGood), d.Count(synth.SetTestLogical), d.Count(synth.SetTestStructural))
	tw := tabwriter.NewWriter(r.out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "method\tall\tlogical\tstructural")
	for _, row := range o.Rows {
		fmt.Fprintf(tw, "%s\t%.2f\t%.2f\t%.2f\n", row.Method, 100*row.All, 100*row.Logical, 100*row.Structural)
	}
	tw.Flush()
	if o.Result != nil {
		demoLocalization(r.out, o.Result.Metrics)
	}
	o.Verdict = demoVerdict(o.Rows)
	fmt.Fprintf(r.out, "\n%s\n", o.Verdict)
	fmt.Fprintf(r.out, "\nTry: puad predict %s --name %s --heatmaps %s %s\n", r.modelDir, r.category,
		filepath.Join(r.cfg.OutDir, "predict"), filepath.Join(r.plainDir, datasets.TestDir, synth.LabelStructural))
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
	gt, err := localize.Open(ds)
	if err != nil {
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
		data, err := ds.Decode.LoadImage(it.Path, size)
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
		ts := res.Test[i]
		ex := detector.HeatmapExtras{UnpicturableOnly: fit.UnpicturableOnly(ts.EfficientAD, ts.Mahalanobis)}
		if ex.GroundTruth, err = demoGroundTruth(gt, it); err != nil {
			return nil, err
		}
		img, err := ds.Decode.DecodeFile(it.Path)
		if err != nil {
			return nil, err
		}
		out, err := hm.Render(img, o.Map, size, title, ts.PUAD, ex)
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

// demoGroundTruth is the outline mask of a test image, nil without ground
// truth.
func demoGroundTruth(gt *localize.GroundTruth, it datasets.TestItem) (*image.Gray, error) {
	if gt == nil || !it.Anomalous {
		return nil, nil
	}
	w, h, err := datasets.ImageSize(it.Path)
	if err != nil {
		return nil, err
	}
	masks, err := gt.Masks(it, w, h)
	if err != nil {
		return nil, err
	}
	return localize.MaskImage(masks, w, h), nil
}

// demoLocalization prints the pixel-level results of EfficientAD's maps
// beside the image-level table: the pixel AUROC and the AU-sPRO at the
// official FPR limits, over all images (for the AU-sPRO the mean of the
// classes, as the official script reports it) and per anomaly type.
func demoLocalization(out io.Writer, m *localize.Metrics) {
	if m == nil {
		return
	}
	fmt.Fprintln(out, "\nPixel-level results ×100 of EfficientAD's anomaly maps (MVTec LOCO AD's metrics)")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "metric\tall\tlogical\tstructural")
	perClass := map[string]localize.ClassMetrics{}
	for _, c := range m.PerClass {
		perClass[c.Class] = c
	}
	cell := func(v float64, ok bool) string {
		if !ok {
			return "-"
		}
		return fmt.Sprintf("%.2f", 100*v)
	}
	row := func(name string, all float64, allOK bool, of func(localize.ClassMetrics) (float64, bool)) {
		fmt.Fprintf(tw, "%s\t%s", name, cell(all, allOK))
		for _, c := range []string{report.LogicalClass, report.StructuralClass} {
			pc, ok := perClass[c]
			v, vok := of(pc)
			fmt.Fprintf(tw, "\t%s", cell(v, ok && vok))
		}
		fmt.Fprintln(tw)
	}
	row("pixel AUROC", m.PixelAUROC, true, func(c localize.ClassMetrics) (float64, bool) { return c.PixelAUROC, true })
	for _, l := range localize.SPROLimits {
		key := pyfmt.Float(l)
		all, ok := m.AUSPRO[key]
		row("AU-sPRO@"+key, all, ok, func(c localize.ClassMetrics) (float64, bool) {
			v, ok := c.AUSPRO[key]
			return v, ok
		})
	}
	tw.Flush()
}
