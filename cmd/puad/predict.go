package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/defectmask"
	"github.com/puad-go/puad/evaluate/heatmap"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/atomicfile"
	"github.com/puad-go/puad/internal/prefetch"
	"github.com/puad-go/puad/internal/pyfmt"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     "score images with a category's EfficientAD model and its stored PUAD fit",
		ArgsUsage: "MODELS IMAGE|FOLDER...",
		Description: "Loads the model of the category named by --category (a folder whose own name is the category\n" +
			"and whose parent's name is the dataset name, e.g. .../mvtec_loco_anomaly_detection/breakfast_box),\n" +
			"or by --name NAME (a plain folder's model, MODELS/<size>_size/custom/NAME: no dataset is read),\n" +
			"and the fit that `puad fit` stored for it, then prints per image the EfficientAD score, the\n" +
			"Mahalanobis distance, the PUAD score and the verdict (anomalous when the PUAD score is above the\n" +
			"fit's threshold, or --threshold; invalid when it is not a number). A FOLDER is searched\n" +
			"recursively for image files. Unreadable images are reported and skipped; the exit status is then\n" +
			"non-zero, as it is for invalid scores. Images are decoded as for the fit (16-bit greyscale clipped\n" +
			"for MVTec categories, scaled for plain folders), with the teacher the fit used unless --teacher\n" +
			"is given. --batch-size N sends N decoded images through the networks at once; results and errors\n" +
			"come in the order of the inputs whatever N.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "category", Usage: "the category `DIR` (its name and its parent's name select the model)"},
			&cli.StringFlag{Name: "name", Usage: "the model `NAME` of a plain folder (MODELS/<size>_size/custom/NAME)"},
			sizeFlag, extractorFlag, deviceFlag, batchFlag, teacherFlag, precisionFlag,
			&cli.StringFlag{Name: "heatmaps", Usage: "write an anomaly-map overlay per image (PNG) into `OUTDIR`"},
			&cli.StringFlag{Name: "masks", Usage: "write a defect mask per image (PNG, the image's size) into `OUTDIR` and list the defect regions"},
			&cli.StringFlag{Name: "json", Usage: "write the scores to `FILE`"},
			&cli.Float64Flag{Name: "threshold", Usage: "judge by this PUAD-score threshold instead of the fit's, for this run"},
			mapsFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return usageError(c, "predict needs MODELS and at least one IMAGE or FOLDER, got %d arguments", c.NArg())
			}
			if (c.String("category") == "") == (c.String("name") == "") {
				return usageError(c, "predict needs either --category DIR or --name NAME")
			}
			if err := checkModelFlags(c); err != nil {
				return err
			}
			ps := predictSettingsFrom(c)
			ctx, cancel := interruptible(c.Context)
			defer cancel()
			rep, err := runPredict(ctx, ps, os.Stdout, os.Stderr)
			if rep != nil && c.String("json") != "" {
				if jerr := atomicfile.WriteJSON(c.String("json"), rep); jerr != nil && err == nil {
					err = jerr
				}
			}
			return err
		},
	}
}

// predictSettingsFrom reads the settings of `puad predict`.
func predictSettingsFrom(c *cli.Context) predictSettings {
	ps := predictSettings{
		ModelDir: c.Args().First(), CategoryDir: c.String("category"), Name: c.String("name"), Inputs: c.Args().Slice()[1:],
		Size: c.String("size"), Device: c.String("device"), HeatmapDir: c.String("heatmaps"), MaskDir: c.String("masks"),
		TeacherFile: c.String("teacher"), MapsDir: c.String("maps"), Precision: c.String("precision"),
		BatchSize: c.Int("batch-size"),
	}
	if c.IsSet("feature-extractor") {
		ps.Extractor = c.String("feature-extractor")
	}
	if c.IsSet("threshold") {
		th := c.Float64("threshold")
		ps.Threshold = &th
	}
	return ps
}

type predictSettings struct {
	// CategoryDir names an MVTec category's model, Name a plain folder's
	// (one of the two is set).
	ModelDir, CategoryDir, Name string
	Inputs                      []string
	Size, Extractor             string // Extractor "" accepts the fit's
	Device                      string
	HeatmapDir, MaskDir         string
	// TeacherFile replaces the fit's teacher ("": the fit's).
	TeacherFile string
	// Precision is the networks' arithmetic (models.ParsePrecision).
	Precision string
	MapsDir   string   // anomaly maps as float TIFFs ("": none)
	Threshold *float64 // nil: the fit's
	// BatchSize is the number of images per forward pass (0: the
	// device's default, detector.Options.BatchSize).
	BatchSize int
}

// prediction is one scored image.
type prediction struct {
	Path        string  `json:"path"`
	EfficientAD float64 `json:"efficient_ad_score"`
	Mahalanobis float64 `json:"mahalanobis_distance"`
	PUAD        float64 `json:"puad_score"`
	Anomalous   bool    `json:"anomalous"`
	// Invalid marks a score that is not a number (NaN or infinite): the
	// image is neither normal nor anomalous, and the run fails.
	Invalid bool `json:"invalid,omitempty"`
	// Confidence and Component are those of detector.Result.
	Confidence float64         `json:"confidence"`
	Component  stats.Component `json:"component"`
	Heatmap    string          `json:"heatmap,omitempty"`
	Map        string          `json:"map,omitempty"`
	// Mask and Regions are the defect mask's file and its regions (--masks).
	Mask    string            `json:"mask,omitempty"`
	Regions []detector.Region `json:"regions,omitempty"`
}

// MarshalJSON writes the scores of an invalid prediction that are not
// numbers as null, which JSON can hold.
func (p prediction) MarshalJSON() ([]byte, error) {
	type plain prediction
	return stats.MarshalScored(plain(p), p.Invalid, p.EfficientAD, p.Mahalanobis, p.PUAD)
}

type predictError struct {
	Path  string `json:"path"`
	Error string `json:"error"`
}

// predictReport is what --json writes.
type predictReport struct {
	DatasetName string          `json:"dataset_name"`
	Category    string          `json:"category"`
	Size        string          `json:"size"`
	Extractor   string          `json:"feature_extractor"`
	FitFile     string          `json:"fit_file"`
	Threshold   stats.Threshold `json:"threshold"`
	// ThresholdOverride is the threshold of --threshold, which replaced
	// the fit's for this run.
	ThresholdOverride *float64       `json:"threshold_override,omitempty"`
	Images            []prediction   `json:"images"`
	Errors            []predictError `json:"errors,omitempty"`
	// Incomplete is set when the run was interrupted before every input
	// was scored.
	Incomplete bool `json:"incomplete,omitempty"`
}

// predictInput is an image to score and the name its heatmap gets.
type predictInput struct{ path, name string }

// listInputs expands the arguments: a folder gives its image files
// (recursively, sorted, torchvision's extensions), a file itself. Arguments
// that do not exist are returned as errors.
func listInputs(args []string) ([]predictInput, []predictError) {
	var ins []predictInput
	var errs []predictError
	for _, a := range args {
		info, err := os.Stat(a)
		if err != nil {
			errs = append(errs, predictError{Path: a, Error: err.Error()})
			continue
		}
		// Heatmap names keep the folder the image is in: <folder>_<name>.
		abs, _ := filepath.Abs(a)
		if !info.IsDir() {
			stem := strings.TrimSuffix(filepath.Base(a), filepath.Ext(a))
			ins = append(ins, predictInput{path: a, name: filepath.Base(filepath.Dir(abs)) + "_" + stem})
			continue
		}
		var found []string
		err = filepath.WalkDir(a, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				errs = append(errs, predictError{Path: p, Error: err.Error()})
				return nil
			}
			if !d.IsDir() && slices.Contains(datasets.ImgExtensions, strings.ToLower(filepath.Ext(p))) {
				found = append(found, p)
			}
			return nil
		})
		if err != nil {
			errs = append(errs, predictError{Path: a, Error: err.Error()})
		}
		slices.Sort(found)
		for _, p := range found {
			rel, _ := filepath.Rel(a, p)
			rel = strings.TrimSuffix(rel, filepath.Ext(rel))
			ins = append(ins, predictInput{path: p, name: filepath.Base(abs) + "_" + strings.ReplaceAll(filepath.ToSlash(rel), "/", "_")})
		}
	}
	uniqueNames(ins)
	return ins, errs
}

// uniqueNames makes the heatmap and mask names of ins unique. In input
// order, an input keeps its name unless an earlier one took it; it then
// gets the name with the smallest suffix _2, _3, … that no input has and
// no earlier input took.
func uniqueNames(ins []predictInput) {
	natural := make(map[string]bool, len(ins))
	for _, in := range ins {
		natural[in.name] = true
	}
	taken := make(map[string]bool, len(ins))
	for i := range ins {
		n := ins[i].name
		for k := 2; taken[ins[i].name]; k++ {
			if alt := fmt.Sprintf("%s_%d", n, k); !natural[alt] && !taken[alt] {
				ins[i].name = alt
			}
		}
		taken[ins[i].name] = true
	}
}

// checkMapNames refuses inputs whose anomaly maps would overwrite each
// other in dir (writeMap's layout; the category is not known yet and is
// the same for all).
func checkMapNames(dir string, ins []predictInput) error {
	err := evaluate.CheckMapPaths(dir, "<category>", len(ins), func(i int) (string, string) { return mapClass(ins[i].path), ins[i].path })
	if err != nil {
		return fmt.Errorf("%w: score them in separate runs or into separate --maps folders", err)
	}
	return nil
}

// openDetector loads the detector of the model ps names and starts its
// report. The caller closes the detector.
func openDetector(ps predictSettings) (*detector.Detector, *predictReport, error) {
	opts, err := detectorOptions(ps.Size, ps.Extractor, ps.Device, ps.Precision)
	if err != nil {
		return nil, nil, err
	}
	opts.Threshold, opts.TeacherFile, opts.BatchSize = ps.Threshold, ps.TeacherFile, ps.BatchSize
	d, err := loadDetector(ps.ModelDir, ps.CategoryDir, ps.Name, opts)
	if err != nil {
		return nil, nil, err
	}
	fit := d.Fit()
	if err := d.CheckResolution(); err != nil {
		warn(err)
	}
	rep := &predictReport{DatasetName: d.DatasetName(), Category: d.Category(), Size: fit.Size, Extractor: fit.Extractor,
		FitFile: d.FitPath(), Threshold: fit.Threshold, ThresholdOverride: ps.Threshold}
	return d, rep, nil
}

// detectorOptions reads the size, the feature extractor ("" accepts the
// fit's), the device and the precision of the command line.
func detectorOptions(size, extractor, device, precision string) (detector.Options, error) {
	var opts detector.Options
	var err error
	if opts.Size, err = models.ParseSize(size); err != nil {
		return opts, err
	}
	if opts.Precision, err = models.ParsePrecision(precision); err != nil {
		return opts, err
	}
	if extractor != "" {
		if opts.Extractor, err = evaluate.ParseExtractor(extractor); err != nil {
			return opts, err
		}
	}
	opts.Device, err = tb.ParseDevice(device)
	return opts, err
}

// loadDetector loads the detector of a --category, or of a plain folder's
// model by --name when category is empty, with the hints of a missing,
// unusable or stale fit.
func loadDetector(modelDir, category, name string, opts detector.Options) (*detector.Detector, error) {
	var d *detector.Detector
	var err error
	if category == "" {
		d, err = detector.LoadName(modelDir, name, opts)
	} else {
		if _, _, err := detector.CategoryNames(category); err != nil {
			return nil, fmt.Errorf("--%w", err) // the message starts with "category"
		}
		d, err = detector.Load(modelDir, category, opts)
	}
	if err != nil {
		return nil, withFitHint(err, string(opts.Size))
	}
	return d, nil
}

// finishPrediction turns the result r of one image into its prediction
// and writes its heatmap, its defect mask and its anomaly map when ps asks
// for them.
func finishPrediction(d *detector.Detector, in predictInput, img detector.Input, r detector.Result, ps predictSettings) (prediction, error) {
	pr := prediction{Path: in.path, EfficientAD: r.EfficientAD, Mahalanobis: r.Mahalanobis, PUAD: r.PUAD,
		Anomalous: r.Anomalous, Invalid: r.Invalid, Confidence: r.Confidence, Component: r.Component}
	if ps.MaskDir != "" {
		mask, regions, err := d.Defects(r)
		if err != nil {
			return pr, fmt.Errorf("%s: %w", in.path, err)
		}
		pr.Mask, pr.Regions = filepath.Join(ps.MaskDir, in.name+defectmask.Ext), regions
		if err := defectmask.WriteFile(pr.Mask, mask); err != nil {
			return pr, err
		}
	}
	if ps.HeatmapDir != "" {
		pr.Heatmap = filepath.Join(ps.HeatmapDir, in.name+".png")
		out, err := d.Heatmap(img, r, heatmapTitle(in.path), ps.MaskDir != "")
		if err == nil {
			err = heatmap.WritePNG(pr.Heatmap, out)
		}
		if err != nil {
			return pr, fmt.Errorf("write %s: %w", pr.Heatmap, err)
		}
	}
	if ps.MapsDir != "" {
		var err error
		if pr.Map, err = writeMap(ps.MapsDir, d.Category(), in.path, r); err != nil {
			return pr, err
		}
	}
	return pr, nil
}

// writeMap writes the anomaly map of r, at the image's size, as a float
// TIFF in the layout of evaluate.WriteMap and returns its path. The
// image's folder stands for the class folder of the layout.
func writeMap(dir, category, path string, r detector.Result) (string, error) {
	amap, err := r.AnomalyMap()
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	return evaluate.WriteMap(dir, category, mapClass(path), path, evaluate.ImageMap{Pix: amap, W: r.Width, H: r.Height})
}

// mapClass is the class folder of an input's anomaly map: the folder the
// image is in.
func mapClass(path string) string {
	return filepath.Base(filepath.Dir(absPath(path)))
}

// absPath is path made absolute, or path itself when that fails.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// decodeInputs decodes the inputs in parallel, in order, ahead of scoring:
// at least two of the detector's batches.
func decodeInputs(ctx context.Context, d *detector.Detector, ins []predictInput) <-chan prefetch.Result[int, detector.Input] {
	i := 0
	next := func() (int, bool, error) {
		if i == len(ins) {
			return 0, false, nil
		}
		i++
		return i - 1, true, nil
	}
	return prefetch.Ordered(ctx, runtime.NumCPU(), max(2*runtime.NumCPU(), 2*d.BatchSize()), next, func(i int) (detector.Input, error) {
		return d.DecodeFile(ins[i].path)
	})
}

// runPredict scores the inputs and prints one line per image to out;
// unreadable images are reported on errOut. It returns the report, and an
// error when some image could not be read or got an invalid score (after
// scoring the others), or when ctx ended first (the report is then marked
// incomplete).
func runPredict(ctx context.Context, ps predictSettings, out, errOut io.Writer) (*predictReport, error) {
	ins, errs := listInputs(ps.Inputs)
	if err := checkOutputNames(ps, ins); err != nil {
		return nil, err
	}
	d, rep, err := openDetector(ps)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	for _, e := range errs {
		fmt.Fprintf(errOut, "puad: cannot read %s: %s\n", e.Path, e.Error)
	}
	rep.Errors = errs
	for _, dir := range []string{ps.HeatmapDir, ps.MaskDir} {
		if dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return rep, err
			}
		}
	}
	printPredictHeader(out, rep, d.Fit(), ps.Threshold)

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	run := &predictRun{ctx: ctx, d: d, ps: ps, rep: rep, out: out}
	if err := run.scoreAll(decodeInputs(ctx, d, ins), ins, errOut); err != nil {
		return rep, err
	}
	anomalous, invalid := run.anomalous, run.invalid
	if ctx.Err() != nil {
		rep.Incomplete = true
		return rep, fmt.Errorf("interrupted after %d of %d images", len(rep.Images), len(ins))
	}
	if invalid > 0 {
		predictSummary(out, rep, anomalous, invalid, len(ins)+len(errs))
		return rep, fmt.Errorf("%d of %d images got a score that is not a number (verdict invalid): the model or its fit is broken", invalid, len(rep.Images))
	}
	return rep, predictSummary(out, rep, anomalous, invalid, len(ins)+len(errs))
}

// predictRun scores the decoded images of `puad predict` a batch at a
// time and reports each in the order of the inputs.
type predictRun struct {
	ctx                context.Context
	d                  *detector.Detector
	ps                 predictSettings
	rep                *predictReport
	out                io.Writer
	pending            []pendingInput // decoded, not scored yet
	anomalous, invalid int
}

// pendingInput is a decoded image waiting for its batch.
type pendingInput struct {
	in  predictInput
	img detector.Input
}

// scoreAll scores the decoded inputs, the detector's batch size at a time.
// An unreadable image is reported on errOut once the images before it are
// scored and printed, so the output is the same for every batch size. It
// returns an error when scoring fails, nil when the context ends (the
// caller reports the interruption).
func (r *predictRun) scoreAll(decoded <-chan prefetch.Result[int, detector.Input], ins []predictInput, errOut io.Writer) error {
	for it := range decoded {
		in := ins[it.Job]
		if it.Err != nil {
			if r.ctx.Err() != nil {
				return nil
			}
			if err := r.flush(); err != nil {
				return r.failure(err)
			}
			fmt.Fprintf(errOut, "puad: cannot read %s: %v\n", in.path, it.Err)
			r.rep.Errors = append(r.rep.Errors, predictError{Path: in.path, Error: it.Err.Error()})
			continue
		}
		r.pending = append(r.pending, pendingInput{in, it.Out})
		if len(r.pending) < r.d.BatchSize() {
			continue
		}
		if err := r.flush(); err != nil {
			return r.failure(err)
		}
	}
	return r.failure(r.flush())
}

// failure is err, or nil when the context has ended (an interruption,
// which the caller reports).
func (r *predictRun) failure(err error) error {
	if err != nil && r.ctx.Err() != nil {
		return nil
	}
	return err
}

// flush scores the pending images in one call of PredictBatch and
// reports them in order.
func (r *predictRun) flush() error {
	batch := r.pending
	r.pending = nil
	if len(batch) == 0 {
		return nil
	}
	imgs := make([]detector.Input, len(batch))
	for i, p := range batch {
		imgs[i] = p.img
	}
	rs, err := r.d.PredictBatch(r.ctx, imgs)
	if err != nil {
		if len(batch) == 1 {
			return fmt.Errorf("%s: %w", batch[0].in.path, err)
		}
		return fmt.Errorf("the batch %s … %s: %w", batch[0].in.path, batch[len(batch)-1].in.path, err)
	}
	for i, res := range rs {
		pr, err := finishPrediction(r.d, batch[i].in, batch[i].img, res, r.ps)
		if err != nil {
			return err
		}
		if pr.Anomalous {
			r.anomalous++
		}
		if pr.Invalid {
			r.invalid++
		}
		r.rep.Images = append(r.rep.Images, pr)
		fmt.Fprintf(r.out, "%12.6f  %12.4f  %10.4f  %-9s  %s\n", pr.EfficientAD, pr.Mahalanobis, pr.PUAD, verdict(pr), batch[i].in.path)
	}
	return nil
}

// checkOutputNames refuses, before any work, outputs that would overwrite
// each other: anomaly maps of two inputs at one file, or heatmaps and
// masks (which share their names) in one folder.
func checkOutputNames(ps predictSettings, ins []predictInput) error {
	if ps.HeatmapDir != "" && ps.MaskDir != "" && absPath(ps.HeatmapDir) == absPath(ps.MaskDir) {
		return fmt.Errorf("--heatmaps and --masks are both %s, where an image's heatmap and mask would be one file: give them separate folders", ps.HeatmapDir)
	}
	if ps.MapsDir == "" {
		return nil
	}
	return checkMapNames(ps.MapsDir, ins)
}

// printPredictHeader prints the model, the threshold in force and the
// column heads.
func printPredictHeader(out io.Writer, rep *predictReport, fit *stats.FitFile, override *float64) {
	fmt.Fprintf(out, "dataset name : %s\ncategory : %s\nsize : %s\nfeature extractor : %s\n", rep.DatasetName, rep.Category, fit.Size, fit.Extractor)
	if override != nil {
		fmt.Fprintf(out, "threshold : %s (PUAD score, given for this run; the fit's is %s)\n", pyfmt.Float(*override), pyfmt.Float(fit.Threshold.Value))
	} else if th := fit.Threshold; th.Labelled != nil {
		fmt.Fprintf(out, "threshold : %s (PUAD score, fitted %s on %s for %s)\n",
			pyfmt.Float(th.Value), fit.Created.Format("2006-01-02"), th.Source(), th.Objective)
	} else {
		fmt.Fprintf(out, "threshold : %s (PUAD score, fitted %s on %d validation images, max false-positive rate %g)\n",
			pyfmt.Float(th.Value), fit.Created.Format("2006-01-02"), fit.NumValidation, th.MaxFPR)
	}
	fmt.Fprintf(out, "%12s  %12s  %10s  %-9s  %s\n", "efficient_ad", "mahalanobis", "puad", "verdict", "image")
}

// predictSummary prints the counts and says whether the run failed.
func predictSummary(out io.Writer, rep *predictReport, anomalous, invalid, inputs int) error {
	fmt.Fprintf(out, "%d images: %d anomalous, %d normal", len(rep.Images), anomalous, len(rep.Images)-anomalous-invalid)
	if invalid > 0 {
		fmt.Fprintf(out, ", %d invalid", invalid)
	}
	if len(rep.Errors) > 0 {
		fmt.Fprintf(out, ", %d unreadable", len(rep.Errors))
	}
	fmt.Fprintln(out)
	if len(rep.Errors) > 0 {
		return fmt.Errorf("%d of %d inputs could not be read", len(rep.Errors), inputs)
	}
	if len(rep.Images) == 0 {
		return errors.New("no image found in the arguments")
	}
	return nil
}

// heatmapTitle is an image's folder and file name, e.g. "good/000.png".
func heatmapTitle(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Base(path)
	}
	return filepath.Base(filepath.Dir(abs)) + "/" + filepath.Base(abs)
}

// verdict is a prediction's word (stats.Verdict).
func verdict(pr prediction) string {
	switch {
	case pr.Invalid:
		return stats.VerdictInvalid.String()
	case pr.Anomalous:
		return stats.VerdictAnomalous.String()
	}
	return stats.VerdictNormal.String()
}
