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
			"expect on new normal images, (k+1)/(n+1), is printed and stored beside it.",
		Flags: []cli.Flag{sizeFlag, extractorFlag, deviceFlag, batchFlag, quietFlag, imgSizeFlag, maxFPRFlag, precisionFlag, nameFlag, teacherFlag,
			&cli.StringFlag{Name: "threshold-from", Value: "validation", Usage: "`SET` the threshold is chosen on: validation " +
				"(normal images, --max-fpr) or test (labelled images, --objective)"},
			&cli.StringFlag{Name: "objective", Value: "f1", Usage: "with --threshold-from test: f1, recall=R (fewest false " +
				"alarms with recall >= R) or fpr=F (highest recall with false-positive rate <= F)"},
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

// fitChoice is how `puad fit` chooses the threshold: at most MaxFPR on
// the validation images, or by Objective on the labelled test images.
type fitChoice struct {
	MaxFPR    float64
	FromTest  bool
	Objective stats.Objective
}

func fitChoiceFrom(c *cli.Context) (fitChoice, error) {
	ch := fitChoice{MaxFPR: c.Float64("max-fpr")}
	switch from := c.String("threshold-from"); from {
	case "validation":
		if c.IsSet("objective") {
			return ch, errors.New("--objective needs --threshold-from test")
		}
	case "test":
		obj, err := stats.ParseObjective(c.String("objective"))
		if err != nil {
			return ch, fmt.Errorf("--%w", err)
		}
		ch.FromTest, ch.Objective = true, obj
	default:
		return ch, fmt.Errorf("--threshold-from %q: want validation or test", from)
	}
	return ch, nil
}

// runFit fits PUAD on a category with a threshold allowing maxFPR on the
// validation images and writes the fit file; it returns the fit and its path.
func runFit(ctx context.Context, datasetDir, modelDir string, st evalSettings, maxFPR float64) (*stats.FitFile, string, error) {
	return runFitWith(ctx, datasetDir, modelDir, st, fitChoice{MaxFPR: maxFPR})
}

// runFitWith is runFit with the threshold chosen as ch says.
func runFitWith(ctx context.Context, datasetDir, modelDir string, st evalSettings, ch fitChoice) (*stats.FitFile, string, error) {
	if !(ch.MaxFPR >= 0 && ch.MaxFPR < 1) {
		return nil, "", fmt.Errorf("--max-fpr %v: want a rate in [0, 1)", ch.MaxFPR)
	}
	need := datasets.NeedTrain
	if ch.FromTest {
		need |= datasets.NeedTest
	}
	ds, m, opts, err := loadCategory(datasetDir, modelDir, st, need)
	if err != nil {
		return nil, "", err
	}
	defer m.Close()
	var f *stats.FitFile
	if ch.FromTest {
		var res *evaluate.Result
		if res, err = evaluate.Evaluate(ctx, ds, m, opts); err == nil {
			f, err = res.LabelledFitFile(ds, ch.Objective, time.Now())
		}
	} else {
		var pm *evaluate.PUADModel
		if pm, err = evaluate.Fit(ctx, ds, m, opts); err == nil {
			f, err = pm.FitFile(ds, ch.MaxFPR, time.Now())
		}
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
		fmt.Fprintf(w, "chosen on the %s images for %s : TP %d, FP %d, TN %d, FN %d, precision %.4g, recall %.4g, F1 %.4g, FPR %.4g\n",
			th.From, th.Objective, op.TP, op.FP, op.TN, op.FN, op.Precision, op.Recall, op.F1, op.FPR)
		fmt.Fprintf(w, "validation images above the threshold : %d of %d (%.4g)\n", above, th.NumValidation, th.ValidationFPR)
	} else {
		fmt.Fprintf(w, "false-positive rate : at most %g asked, %d of %d validation images above the threshold (%.4g), about %.4g expected on new normal images\n",
			th.MaxFPR, above, th.NumValidation, th.ValidationFPR, th.ExpectedFPR)
	}
	fmt.Fprintf(w, "written : %s\n", path)
}
