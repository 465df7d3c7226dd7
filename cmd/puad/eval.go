package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/atomicfile"
	"github.com/puad-go/puad/internal/evalsetup"
	"github.com/puad-go/puad/internal/pyfmt"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// Flags shared by the commands that load a model.
var (
	sizeFlag      = &cli.StringFlag{Name: "size", Value: "s", Usage: "EfficientAD size: s or m"}
	extractorFlag = &cli.StringFlag{Name: "feature-extractor", Value: "student", Usage: "PUAD feature extractor: student or teacher"}
	deviceFlag    = &cli.StringFlag{Name: "device", Value: "auto", Usage: "auto, cpu, cuda or cuda:N"}
	batchFlag     = &cli.IntFlag{Name: "batch-size", Usage: "images per forward pass (default: 1 on CPU, bit-exact with the reference; 8 on CUDA)"}
	quietFlag     = &cli.BoolFlag{Name: "quiet", Aliases: []string{"q"}, Usage: "no progress bar"}
	imgSizeFlag   = &cli.IntFlag{Name: "img-size", Value: 256, Usage: "image size the model was trained at (the reference's is 256)"}
	precisionFlag = &cli.StringFlag{Name: "precision", Value: "fp32", Usage: "network arithmetic: fp32 (the reference's, bit-exact), bf16 (CPUs with AVX512-BF16/AMX, CUDA) or fp16 (CUDA)"}
	nameFlag      = &cli.StringFlag{Name: "name", Usage: "model `NAME` of a plain folder (default: the folder's name); its model is MODELS/<size>_size/custom/NAME"}
	teacherFlag   = &cli.StringFlag{Name: "teacher", Usage: "teacher PDN state dict `FILE` to use instead of MODELS/<size>_size/teacher/teacher.pt (the reference's, anomalib's or nelson1425/EfficientAD's layout)"}
	mapsFlag      = &cli.StringFlag{Name: "maps", Usage: "write each test image's anomaly map at the image's size as a float TIFF into `DIR`/<category>/test/<class>/<id>.tiff (the official MVTec evaluation scripts' layout)"}
)

// datasetHelp describes the two shapes of DATASET, for the commands' --help.
const datasetHelp = "DATASET is either a category folder in the MVTec AD / MVTec LOCO AD layout (train/good, test/...,\n" +
	"optionally validation/good; its model is MODELS/<size>_size/<dataset>/<category>), or a plain folder of\n" +
	"good images (PNG, JPEG, BMP or TIFF, any case of extension) with an optional validation/ folder of good\n" +
	"images (otherwise 15% are held out as the reference does) and an optional test/ folder holding good/ and\n" +
	"defect folders; its model is MODELS/<size>_size/custom/<NAME>, NAME the folder's name or --name.\n" +
	"16-bit greyscale images are clipped to 8 bits in MVTec folders, as the reference does, and scaled in plain folders.\n"

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "EfficientAD and PUAD image AUROC of one category, as the reference's main.py",
		ArgsUsage: "DATASET MODELS",
		Description: datasetHelp + "Evaluation needs test images: the test/ folder of a category, or of a plain folder.\n" +
			"MODELS is a model directory in the reference's layout (<size>_size/teacher, <size>_size/<dataset>/<category>).",
		Flags: []cli.Flag{sizeFlag, extractorFlag, deviceFlag, batchFlag, quietFlag, imgSizeFlag, precisionFlag, nameFlag, teacherFlag,
			&cli.StringFlag{Name: "json", Usage: "write the numbers and per-image scores to `FILE`"},
			mapsFlag,
			&cli.StringFlag{Name: "masks", Usage: "write each test image's defect mask at the image's size as a PNG into " +
				"`DIR`/<category>/test/<class>/<id>.png, cut at the pixel threshold of the category's stored fit (`puad fit`)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError(c, "eval needs DATASET and MODELS, got %d arguments", c.NArg())
			}
			if err := checkModelFlags(c); err != nil {
				return err
			}
			res, err := runEval(c.Context, c.Args().Get(0), c.Args().Get(1), evalSettingsFrom(c))
			if err != nil {
				return err
			}
			res.AddOperatingPoints(fittedThreshold(c.Args().Get(1), res))
			printResult(os.Stdout, res)
			printOperatingPoints(os.Stdout, res.OperatingPoints)
			if path := c.String("json"); path != "" {
				if err := atomicfile.WriteJSON(path, res); err != nil {
					return err
				}
			}
			return nil
		},
	}
}

// evalSettings are the options of one evaluation.
type evalSettings struct {
	Size      string
	Extractor string
	Device    string
	BatchSize int
	Quiet     bool
	// ImgSize is the model's image size (0: 256, the reference's).
	ImgSize int
	// Name names a plain folder's model; TeacherFile replaces the model
	// directory's teacher.
	Name, TeacherFile string
	// MapsDir receives the test anomaly maps, MasksDir their defect
	// masks at the stored fit's pixel threshold ("": none).
	MapsDir, MasksDir string
	// Precision is the networks' arithmetic (models.ParsePrecision).
	Precision string
}

func evalSettingsFrom(c *cli.Context) evalSettings {
	return evalSettings{
		Size: c.String("size"), Extractor: c.String("feature-extractor"), Device: c.String("device"),
		BatchSize: c.Int("batch-size"), Quiet: c.Bool("quiet"), ImgSize: c.Int("img-size"), MapsDir: c.String("maps"), MasksDir: c.String("masks"),
		Name: c.String("name"), TeacherFile: c.String("teacher"), Precision: c.String("precision"),
	}
}

// loadCategory opens a dataset folder with what need asks of it and its
// model, with a progress bar unless st.Quiet.
func loadCategory(datasetDir, modelDir string, st evalSettings, need datasets.Need) (*datasets.Dataset, *models.EfficientAD, evaluate.Options, error) {
	var set evalsetup.Settings
	var err error
	if set.Size, err = models.ParseSize(st.Size); err != nil {
		return nil, nil, evaluate.Options{}, err
	}
	if set.Extractor, err = evaluate.ParseExtractor(st.Extractor); err != nil {
		return nil, nil, evaluate.Options{}, err
	}
	if set.Device, err = tb.ParseDevice(st.Device); err != nil {
		return nil, nil, evaluate.Options{}, err
	}
	set.BatchSize, set.ImgSize = st.BatchSize, st.ImgSize
	set.Need, set.Name, set.TeacherFile = need, st.Name, st.TeacherFile
	if set.Precision, err = models.ParsePrecision(st.Precision); err != nil {
		return nil, nil, evaluate.Options{}, err
	}
	ds, m, opts, err := evalsetup.Load(datasetDir, modelDir, set)
	if err != nil {
		return nil, nil, opts, err
	}
	bar := newProgressBar(st.Quiet)
	opts.Progress = func(stage string, done, total int) { bar.Update(stage, done, total, "") }
	return ds, m, opts, nil
}

func runEval(ctx context.Context, datasetDir, modelDir string, st evalSettings) (*evaluate.Result, error) {
	ds, m, opts, err := loadCategory(datasetDir, modelDir, st, datasets.NeedTrain|datasets.NeedTest)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	ctx, cancel := interruptible(ctx)
	defer cancel()
	opts.MapsDir = st.MapsDir
	if st.MasksDir != "" {
		pt, err := storedPixelThreshold(modelDir, ds, m, st)
		if err != nil {
			return nil, err
		}
		opts.MasksDir, opts.MaskThreshold = st.MasksDir, pt.Value
	}
	res, err := evaluate.Evaluate(ctx, ds, m, opts)
	if err != nil {
		return nil, err
	}
	if err := res.Validation.Check(); err != nil {
		warn(err)
	}
	warnResolution(res.Validation, opts.Precision)
	return res, nil
}

// warn prints a warning on standard error.
func warn(err error) {
	fmt.Fprintf(os.Stderr, "puad: warning: %v\n", err)
}

// warnResolution warns when the precision p may reorder the scores that
// fusion was fitted on (evaluate.CheckResolution).
func warnResolution(fusion stats.Fusion, p models.Precision) {
	if err := evaluate.CheckResolution(fusion, p); err != nil {
		warn(err)
	}
}

// storedPixelThreshold is the pixel threshold of the fit `puad fit`
// stored for ds and m, which must still describe m.
func storedPixelThreshold(modelDir string, ds *datasets.Dataset, m *models.EfficientAD, st evalSettings) (*stats.PixelThreshold, error) {
	path := evalsetup.FitPath(modelDir, m.Size, ds.DatasetName, ds.Category)
	f, err := stats.LoadFit(path, string(m.Size), st.Extractor)
	if err == nil {
		err = evaluate.CheckFit(f, m)
	}
	if err != nil {
		return nil, fmt.Errorf("defect masks: %w", withFitHint(err, string(m.Size)))
	}
	if f.PixelThreshold == nil {
		return nil, fmt.Errorf("defect masks: PUAD fit %s: %w", path, stats.ErrNoPixelThreshold)
	}
	return f.PixelThreshold, nil
}

// printResult prints the reference's lines, then the pixel-level results
// when the category has ground truth.
func printResult(w io.Writer, r *evaluate.Result) {
	fmt.Fprintf(w, "dataset name : %s\n", r.DatasetName)
	fmt.Fprintf(w, "category : %s\n", r.Category)
	fmt.Fprintf(w, "size : %s\n", r.Size)
	fmt.Fprintf(w, "feature extractor : %s\n", r.Extractor)
	fmt.Fprintf(w, "efficient_ad auroc : %s\n", pyfmt.Float(r.EfficientADAUROC))
	fmt.Fprintf(w, "puad auroc : %s\n", pyfmt.Float(r.PUADAUROC))
	for _, pc := range r.PUADPerClass {
		fmt.Fprintf(w, "puad auroc for %s: %s\n", pc.Class, pyfmt.Float(pc.AUROC))
	}
	if r.Metrics != nil {
		r.Metrics.WriteText(w)
	}
}

// fittedThreshold is the threshold of the stored fit of res's category,
// nil when there is none (a fit that cannot be used is warned about).
func fittedThreshold(modelDir string, res *evaluate.Result) *float64 {
	path := evalsetup.FitPath(modelDir, models.Size(res.Size), res.DatasetName, res.Category)
	f, err := stats.LoadFit(path, res.Size, res.Extractor)
	if err != nil {
		if !errors.Is(err, stats.ErrNoFit) {
			warn(fmt.Errorf("no operating point at the fitted threshold: %w", err))
		}
		return nil
	}
	return &f.Threshold.Value
}

// printOperatingPoints prints how each threshold performs on the test
// images, overall and per anomaly class.
func printOperatingPoints(w io.Writer, reps []stats.OperatingReport) {
	names := map[string]string{"fitted": "the fitted threshold", "f1_optimal": "the F1-optimal threshold"}
	line := func(op stats.OperatingPoint) string {
		return fmt.Sprintf("TP %d, FP %d, TN %d, FN %d, precision %.4f, recall %.4f, F1 %.4f, FPR %.4f",
			op.TP, op.FP, op.TN, op.FN, op.Precision, op.Recall, op.F1, op.FPR)
	}
	for _, r := range reps {
		fmt.Fprintf(w, "operating point at %s %s : %s\n", names[r.Name], pyfmt.Float(r.Threshold), line(r.OperatingPoint))
		for _, c := range r.PerClass {
			fmt.Fprintf(w, "  %s : %s\n", c.Class, line(c.OperatingPoint))
		}
	}
}
