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
			"They are written to <MODELS>/<size>_size/<dataset>/<category>/" + stats.FitFileName + ".\n\n" +
			"The threshold is the (k+1)-th largest PUAD score of the n validation images, with\n" +
			"k = floor(max-fpr × n) of them allowed above it (images score as anomalous when above\n" +
			"the threshold). Validation sets are small (60 to 100 images in MVTec LOCO AD), so with\n" +
			"the default max-fpr of 0.01 the threshold is the largest validation score; the rate to\n" +
			"expect on new normal images, (k+1)/(n+1), is printed and stored beside it.",
		Flags: []cli.Flag{sizeFlag, extractorFlag, deviceFlag, batchFlag, quietFlag, imgSizeFlag, maxFPRFlag},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError(c, "fit needs DATASET and MODELS, got %d arguments", c.NArg())
			}
			ctx, cancel := interruptible(c.Context)
			defer cancel()
			f, path, err := runFit(ctx, c.Args().Get(0), c.Args().Get(1), evalSettingsFrom(c), c.Float64("max-fpr"))
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
	switch {
	case errors.Is(err, stats.ErrNoFit):
		return fmt.Errorf("%w: run `puad fit DATASET MODELS --size %s` for this category first", err, size)
	case errors.As(err, &mismatch) && mismatch.Field == stats.FieldSize:
		return fmt.Errorf("%w: run `puad fit` with --size %s", err, mismatch.Want)
	case errors.As(err, &mismatch) && mismatch.Field == stats.FieldExtractor:
		return fmt.Errorf("%w: run `puad fit` with --feature-extractor %s", err, mismatch.Want)
	case errors.As(err, &format):
		return fmt.Errorf("%w (run `puad fit` again)", err)
	}
	return err
}

// runFit fits PUAD on a category and writes the fit file; it returns the fit and its path.
func runFit(ctx context.Context, datasetDir, modelDir string, st evalSettings, maxFPR float64) (*stats.FitFile, string, error) {
	if !(maxFPR >= 0 && maxFPR < 1) {
		return nil, "", fmt.Errorf("--max-fpr %v: want a rate in [0, 1)", maxFPR)
	}
	ds, m, opts, err := loadCategory(datasetDir, modelDir, st)
	if err != nil {
		return nil, "", err
	}
	defer m.Close()
	pm, err := evaluate.Fit(ctx, ds, m, opts)
	if err != nil {
		return nil, "", err
	}
	f, err := pm.FitFile(ds, maxFPR, time.Now())
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
	fmt.Fprintf(w, "false-positive rate : at most %g asked, %d of %d validation images above the threshold (%.4g), about %.4g expected on new normal images\n",
		th.MaxFPR, int(math.Round(th.ValidationFPR*float64(th.NumValidation))), th.NumValidation, th.ValidationFPR, th.ExpectedFPR)
	fmt.Fprintf(w, "written : %s\n", path)
}
