package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/evalsetup"
	"github.com/puad-go/puad/internal/pyfmt"
	"github.com/puad-go/puad/models"
)

var maxFPRFlag = &cli.Float64Flag{Name: "max-fpr", Value: stats.DefaultMaxFPR,
	Usage: "largest false-positive rate the decision threshold allows on the validation images"}

func fitCommand() *cli.Command {
	return &cli.Command{
		Name:      "fit",
		Usage:     "fit PUAD and a decision threshold on one category and store them beside its model files",
		ArgsUsage: "DATASET MODELS",
		Description: "Fits what `puad predict` needs besides the EfficientAD model: the mean and the Ledoit-Wolf\n" +
			"inverse covariance of the training images' features, the validation statistics of the\n" +
			"EfficientAD score and the Mahalanobis distance, and a threshold on the PUAD score.\n" +
			"They are written to <MODELS>/<size>_size/<dataset>/<category>/" + stats.FitFileName + " (for a plain folder\n" +
			"<MODELS>/<size>_size/custom/<NAME>/" + stats.FitFileName + "). Fitting needs no test images.\n\n" + datasetHelp + "\n" +
			"The threshold is the (k+1)-th largest PUAD score of the n validation images, with\n" +
			"k = floor(max-fpr × n) of them allowed above it (images score as anomalous when above\n" +
			"the threshold). Validation sets are small (60 to 100 images in MVTec LOCO AD), so with\n" +
			"the default max-fpr of 0.01 the threshold is the largest validation score; the rate to\n" +
			"expect on new normal images, (k+1)/(n+1), is printed and stored beside it.\n\n" +
			"With --threshold-from test or --threshold-from DIR the threshold is chosen by --objective on\n" +
			"labelled images instead: the category's test images, or those of DIR, a folder with good/ and\n" +
			"defect folders (the layout of a test/ folder), scored as `puad eval` scores test images. The\n" +
			"fit stores where they came from, the objective and the operating point.\n\n" +
			"The pixel threshold of the defect masks (`puad predict --masks`, `puad eval --masks`) is the\n" +
			"(k+1)-th largest value of the validation images' anomaly maps, k = floor(pixel-fpr × pixels).",
		Flags: []cli.Flag{sizeFlag, extractorFlag, deviceFlag, batchFlag, quietFlag, imgSizeFlag, maxFPRFlag, precisionFlag, nameFlag, teacherFlag,
			&cli.StringFlag{Name: "threshold-from", Value: "validation", Usage: "`SOURCE` the threshold is chosen on: validation " +
				"(normal images, --max-fpr), test (the category's labelled test images, --objective) or a labelled folder DIR " +
				"(good/ and defect folders like a test/ folder, --objective; write ./test for a folder named test)"},
			&cli.StringFlag{Name: "objective", Value: "f1", Usage: "with --threshold-from test or DIR: f1, recall=R (fewest false " +
				"alarms with recall >= R) or fpr=F (highest recall with false-positive rate <= F)"},
			&cli.Float64Flag{Name: "pixel-fpr", Value: stats.DefaultPixelFPR, Usage: "largest share of the validation images' " +
				"pixels the defect masks' pixel threshold allows above it"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError(c, "fit needs DATASET and MODELS, got %d arguments", c.NArg())
			}
			if err := checkModelFlags(c); err != nil {
				return err
			}
			choice, err := fitChoiceFrom(c)
			if err != nil {
				return err
			}
			ctx, cancel := interruptible(c.Context)
			defer cancel()
			f, path, err := runFitWith(ctx, c.Args().Get(0), c.Args().Get(1), evalSettingsFrom(c), choice)
			if err != nil {
				return err
			}
			printFit(os.Stdout, f, path)
			return nil
		},
	}
}

// fitPath is where `puad fit` stores a category's fit.
func fitPath(modelDir string, size models.Size, datasetName, category string) string {
	return evalsetup.FitPath(modelDir, size, datasetName, category)
}

// withFitHint adds to an error of stats.LoadFit the command that makes a
// usable fit file for size (the size asked for).
func withFitHint(err error, size string) error {
	var mismatch *stats.MismatchError
	var format *stats.FormatError
	var stale *stats.StaleError
	switch {
	case errors.Is(err, stats.ErrNoFit):
		return fmt.Errorf("%w: run `puad fit DATASET MODELS --size %s` for this category first", err, size)
	case errors.As(err, &mismatch) && mismatch.Field == stats.FieldSize:
		return fmt.Errorf("%w: run `puad fit` with --size %s", err, mismatch.Want)
	case errors.As(err, &mismatch) && mismatch.Field == stats.FieldExtractor:
		return fmt.Errorf("%w: run `puad fit` with --feature-extractor %s", err, mismatch.Want)
	case errors.As(err, &format):
		return fmt.Errorf("%w (run `puad fit` again)", err)
	case errors.As(err, &stale):
		return fmt.Errorf("%w: run `puad fit` again for this model", err)
	}
	return err
}

// fitChoice is how `puad fit` chooses the thresholds: the decision
// threshold at most MaxFPR on the validation images, or by Objective on
// the labelled images of From (stats.FromTest, or a labelled folder);
// the pixel threshold at PixelFPR of the validation pixels.
type fitChoice struct {
	MaxFPR, PixelFPR float64
	From             string // "": the validation images
	Objective        stats.Objective
}

func fitChoiceFrom(c *cli.Context) (fitChoice, error) {
	ch := fitChoice{MaxFPR: c.Float64("max-fpr"), PixelFPR: c.Float64("pixel-fpr")}
	switch from := c.String("threshold-from"); from {
	case "validation":
		if c.IsSet("objective") {
			return ch, errors.New("--objective needs --threshold-from test or a labelled folder")
		}
		return ch, nil
	case stats.FromTest:
		ch.From = from
	default:
		info, err := os.Stat(from)
		if err == nil && !info.IsDir() {
			err = errors.New("not a folder")
		}
		if err != nil {
			return ch, fmt.Errorf("--threshold-from %q: want validation, test or a labelled folder (good/ and defect folders): %w", from, err)
		}
		ch.From = from
	}
	obj, err := stats.ParseObjective(c.String("objective"))
	if err != nil {
		return ch, fmt.Errorf("--%w", err)
	}
	ch.Objective = obj
	return ch, nil
}

// runFit fits PUAD on a category with a threshold allowing maxFPR on the
// validation images and writes the fit file; it returns the fit and its path.
func runFit(ctx context.Context, datasetDir, modelDir string, st evalSettings, maxFPR float64) (*stats.FitFile, string, error) {
	return runFitWith(ctx, datasetDir, modelDir, st, fitChoice{MaxFPR: maxFPR, PixelFPR: stats.DefaultPixelFPR})
}

// runFitWith is runFit with the thresholds chosen as ch says.
func runFitWith(ctx context.Context, datasetDir, modelDir string, st evalSettings, ch fitChoice) (*stats.FitFile, string, error) {
	for _, r := range []struct {
		flag string
		v    float64
	}{{"max-fpr", ch.MaxFPR}, {"pixel-fpr", ch.PixelFPR}} {
		if !(r.v >= 0 && r.v < 1) {
			return nil, "", fmt.Errorf("--%s %v: want a rate in [0, 1)", r.flag, r.v)
		}
	}
	need := datasets.NeedTrain
	if ch.From == stats.FromTest {
		need |= datasets.NeedTest
	}
	ds, m, opts, err := loadCategory(datasetDir, modelDir, st, need)
	if err != nil {
		return nil, "", err
	}
	defer m.Close()
	pm, err := evaluate.Fit(ctx, ds, m, opts)
	if err != nil {
		return nil, "", err
	}
	warnResolution(pm.Fusion, opts.Precision)
	var f *stats.FitFile
	switch now := time.Now(); ch.From {
	case "":
		f, err = pm.FitFileAt(ds, evaluate.Rates{MaxFPR: ch.MaxFPR, PixelFPR: ch.PixelFPR}, now)
	case stats.FromTest:
		f, err = pm.TestFitFile(ctx, ds, ch.Objective, ch.PixelFPR, opts, now)
	default:
		f, err = pm.FolderFitFile(ctx, ds, ch.From, ch.Objective, ch.PixelFPR, opts, now)
	}
	if err != nil {
		return nil, "", err
	}
	path := fitPath(modelDir, m.Size, ds.DatasetName, ds.Category)
	if err := stats.SaveFit(path, f); err != nil {
		return nil, "", err
	}
	return f, path, nil
}

func printFit(w io.Writer, f *stats.FitFile, path string) {
	th := f.Threshold
	fmt.Fprintf(w, "dataset name : %s\n", f.DatasetName)
	fmt.Fprintf(w, "category : %s\n", f.Category)
	fmt.Fprintf(w, "size : %s\n", f.Size)
	fmt.Fprintf(w, "feature extractor : %s\n", f.Extractor)
	fmt.Fprintf(w, "training images : %d\n", f.NumTrain)
	fmt.Fprintf(w, "validation images : %d\n", f.NumValidation)
	fmt.Fprintf(w, "efficient_ad score on validation : mean %.6g, std %.6g\n", f.Fusion.EfficientAD.Mean, f.Fusion.EfficientAD.Std)
	fmt.Fprintf(w, "mahalanobis distance on validation : mean %.6g, std %.6g\n", f.Fusion.Mahalanobis.Mean, f.Fusion.Mahalanobis.Std)
	fmt.Fprintf(w, "threshold : %s (PUAD score; anomalous above it)\n", pyfmt.Float(th.Value))
	above := int(math.Round(th.ValidationFPR * float64(th.NumValidation)))
	if op := th.Labelled; op != nil {
		fmt.Fprintf(w, "chosen on %s for %s : TP %d, FP %d, TN %d, FN %d, precision %.4g, recall %.4g, F1 %.4g, FPR %.4g\n",
			th.Source(), th.Objective, op.TP, op.FP, op.TN, op.FN, op.Precision, op.Recall, op.F1, op.FPR)
		fmt.Fprintf(w, "validation images above the threshold : %d of %d (%.4g)\n", above, th.NumValidation, th.ValidationFPR)
	} else {
		fmt.Fprintf(w, "false-positive rate : at most %g asked, %d of %d validation images above the threshold (%.4g), about %.4g expected on new normal images\n",
			th.MaxFPR, above, th.NumValidation, th.ValidationFPR, th.ExpectedFPR)
	}
	if pt := f.PixelThreshold; pt != nil {
		fmt.Fprintf(w, "pixel threshold : %s (anomaly map; defect above it, at most %g of %d validation pixels)\n",
			pyfmt.Float(pt.Value), pt.MaxFPR, pt.NumPixels)
	}
	fmt.Fprintf(w, "written : %s\n", path)
}
