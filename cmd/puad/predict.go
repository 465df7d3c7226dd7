package main

import (
	"context"
	"errors"
	"fmt"
	"image"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/heatmap"
	"github.com/puad-go/puad/evaluate/stats"
	"github.com/puad-go/puad/internal/pyfmt"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

func init() { extraCommands = append(extraCommands, predictCommand()) }

func predictCommand() *cli.Command {
	return &cli.Command{
		Name:      "predict",
		Usage:     "score images with a category's EfficientAD model and its stored PUAD fit",
		ArgsUsage: "MODELS IMAGE|FOLDER...",
		Description: "Loads the model of the category named by --category (a folder whose own name is the category\n" +
			"and whose parent's name is the dataset name, e.g. .../mvtec_loco_anomaly_detection/breakfast_box)\n" +
			"and the fit that `puad fit` stored for it, then prints per image the EfficientAD score, the\n" +
			"Mahalanobis distance, the PUAD score and the verdict (anomalous when the PUAD score is above the\n" +
			"fit's threshold). A FOLDER is searched recursively for image files. Unreadable images are\n" +
			"reported and skipped; the exit status is then non-zero.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "category", Usage: "the category `DIR` (its name and its parent's name select the model)", Required: true},
			sizeFlag, extractorFlag, deviceFlag, precisionFlag,
			&cli.StringFlag{Name: "heatmaps", Usage: "write an anomaly-map overlay per image (PNG) into `OUTDIR`"},
			&cli.StringFlag{Name: "json", Usage: "write the scores to `FILE`"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return usageError(c, "predict needs MODELS and at least one IMAGE or FOLDER, got %d arguments", c.NArg())
			}
			ps := predictSettings{
				ModelDir: c.Args().First(), CategoryDir: c.String("category"), Inputs: c.Args().Slice()[1:],
				Size: c.String("size"), Device: c.String("device"), HeatmapDir: c.String("heatmaps"),
				Precision: c.String("precision"),
			}
			if c.IsSet("feature-extractor") {
				ps.Extractor = c.String("feature-extractor")
			}
			ctx, cancel := interruptible(c.Context)
			defer cancel()
			rep, err := runPredict(ctx, ps, os.Stdout, os.Stderr)
			if rep != nil && c.String("json") != "" {
				if jerr := writeJSON(c.String("json"), rep); jerr != nil && err == nil {
					err = jerr
				}
			}
			return err
		},
	}
}

type predictSettings struct {
	ModelDir, CategoryDir string
	Inputs                []string
	Size, Extractor       string // Extractor "" accepts the fit's
	Device                string
	HeatmapDir            string
	Precision             string
}

// prediction is one scored image.
type prediction struct {
	Path        string  `json:"path"`
	EfficientAD float64 `json:"efficient_ad_score"`
	Mahalanobis float64 `json:"mahalanobis_distance"`
	PUAD        float64 `json:"puad_score"`
	Anomalous   bool    `json:"anomalous"`
	Heatmap     string  `json:"heatmap,omitempty"`
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
	Images      []prediction    `json:"images"`
	Errors      []predictError  `json:"errors,omitempty"`
}

// categoryNames returns the dataset name and the category of a category folder path.
func categoryNames(dir string) (datasetName, category string, err error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", "", err
	}
	category, datasetName = filepath.Base(abs), filepath.Base(filepath.Dir(abs))
	if category == string(filepath.Separator) || datasetName == string(filepath.Separator) || datasetName == "." {
		return "", "", fmt.Errorf("--category %s: want a path <dataset>/<category>", dir)
	}
	return datasetName, category, nil
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
	// Heatmap names must be unique.
	seen := map[string]int{}
	for i := range ins {
		n := ins[i].name
		seen[n]++
		if seen[n] > 1 {
			ins[i].name = fmt.Sprintf("%s_%d", n, seen[n])
		}
	}
	return ins, errs
}

// runPredict scores the inputs and prints one line per image to out;
// unreadable images are reported on errOut. It returns the report, and an
// error when some image could not be read (after scoring the others).
func runPredict(ctx context.Context, ps predictSettings, out, errOut io.Writer) (*predictReport, error) {
	size, err := models.ParseSize(ps.Size)
	if err != nil {
		return nil, err
	}
	if ps.Extractor != "" {
		if _, err := evaluate.ParseExtractor(ps.Extractor); err != nil {
			return nil, err
		}
	}
	dev, err := tb.ParseDevice(ps.Device)
	if err != nil {
		return nil, err
	}
	datasetName, category, err := categoryNames(ps.CategoryDir)
	if err != nil {
		return nil, err
	}
	fp := fitPath(ps.ModelDir, size, datasetName, category)
	fit, err := stats.LoadFit(fp, string(size), ps.Extractor)
	if err != nil {
		return nil, withFitHint(err, string(size))
	}
	if fit.DatasetName != datasetName || fit.Category != category {
		return nil, fmt.Errorf("PUAD fit %s is of %s/%s, not %s/%s", fp, fit.DatasetName, fit.Category, datasetName, category)
	}
	m, err := models.LoadEfficientAD(ps.ModelDir, size, datasetName, category, int64(fit.ImgSize), dev)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	if err := m.SetPrecision(models.Precision(ps.Precision)); err != nil {
		return nil, err
	}
	rep := &predictReport{DatasetName: datasetName, Category: category, Size: fit.Size, Extractor: fit.Extractor,
		FitFile: fp, Threshold: fit.Threshold}
	ins, errs := listInputs(ps.Inputs)
	for _, e := range errs {
		fmt.Fprintf(errOut, "puad: cannot read %s: %s\n", e.Path, e.Error)
	}
	rep.Errors = errs
	if ps.HeatmapDir != "" {
		if err := os.MkdirAll(ps.HeatmapDir, 0o755); err != nil {
			return rep, err
		}
	}

	fmt.Fprintf(out, "dataset name : %s\ncategory : %s\nsize : %s\nfeature extractor : %s\n", datasetName, category, fit.Size, fit.Extractor)
	fmt.Fprintf(out, "threshold : %s (PUAD score, fitted %s on %d validation images, max false-positive rate %g)\n",
		pyfmt.Float(fit.Threshold.Value), fit.Created.Format("2006-01-02"), fit.NumValidation, fit.Threshold.MaxFPR)
	fmt.Fprintf(out, "%12s  %12s  %10s  %-9s  %s\n", "efficient_ad", "mahalanobis", "puad", "verdict", "image")

	sc := &evaluate.Scorer{Model: m, Extractor: evaluate.Extractor(fit.Extractor)}
	g := fit.Gaussian()
	hm := heatmapStyle{Max: fit.Fusion.EfficientAD.Mean + 3*fit.Fusion.EfficientAD.Std, Threshold: fit.Threshold.Value}
	paths := make([]string, len(ins))
	for i, in := range ins {
		paths[i] = in.path
	}
	imgSize := int(m.ImgSize)
	stream := datasets.Stream(ctx, paths, imgSize, runtime.NumCPU(), 2*runtime.NumCPU())
	anomalous := 0
	for it := range stream {
		in := ins[it.Index]
		if it.Err != nil {
			if ctx.Err() != nil {
				break
			}
			fmt.Fprintf(errOut, "puad: cannot read %s: %v\n", in.path, it.Err)
			rep.Errors = append(rep.Errors, predictError{Path: in.path, Error: it.Err.Error()})
			continue
		}
		o, err := scoreOne(sc, it.Data, imgSize, ps.HeatmapDir != "")
		if err != nil {
			return rep, fmt.Errorf("%s: %w", in.path, err)
		}
		maha, puad, anom := fit.Score(g, o.Score, o.Feature)
		p := prediction{Path: in.path, EfficientAD: o.Score, Mahalanobis: maha, PUAD: puad, Anomalous: anom}
		if ps.HeatmapDir != "" {
			p.Heatmap = filepath.Join(ps.HeatmapDir, in.name+".png")
			if err := hm.write(p.Heatmap, in.path, imgSize, o.Map, heatmapTitle(in.path), puad); err != nil {
				return rep, err
			}
		}
		if anom {
			anomalous++
		}
		rep.Images = append(rep.Images, p)
		fmt.Fprintf(out, "%12.6f  %12.4f  %10.4f  %-9s  %s\n", p.EfficientAD, p.Mahalanobis, p.PUAD, verdict(anom), in.path)
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	fmt.Fprintf(out, "%d images: %d anomalous, %d normal", len(rep.Images), anomalous, len(rep.Images)-anomalous)
	if len(rep.Errors) > 0 {
		fmt.Fprintf(out, ", %d unreadable", len(rep.Errors))
	}
	fmt.Fprintln(out)
	if len(rep.Errors) > 0 {
		return rep, fmt.Errorf("%d of %d inputs could not be read", len(rep.Errors), len(ins)+len(errs))
	}
	if len(rep.Images) == 0 {
		return rep, errors.New("no image found in the arguments")
	}
	return rep, nil
}

// heatmapTitle is an image's folder and file name, e.g. "good/000.png".
func heatmapTitle(path string) string {
	abs, err := filepath.Abs(path)
	if err != nil {
		return filepath.Base(path)
	}
	return filepath.Base(filepath.Dir(abs)) + "/" + filepath.Base(abs)
}

func verdict(anomalous bool) string {
	if anomalous {
		return "anomalous"
	}
	return "normal"
}

// scoreOne runs one loaded image (CHW float32) through the scorer.
func scoreOne(sc *evaluate.Scorer, data []float32, size int, withMap bool) (evaluate.ImageOutput, error) {
	x, err := tb.FromSlice(data, 1, 3, int64(size), int64(size))
	if err != nil {
		return evaluate.ImageOutput{}, err
	}
	defer x.Close()
	if sc.Model.Device != tb.CPU {
		xd, err := x.ToDevice(sc.Model.Device)
		if err != nil {
			return evaluate.ImageOutput{}, err
		}
		defer xd.Close()
		x = xd
	}
	outs, err := sc.Run(x, evaluate.Need{Score: true, Feature: true, Map: withMap})
	if err != nil {
		return evaluate.ImageOutput{}, err
	}
	return outs[0], nil
}

// heatmapStyle draws anomaly maps with one colour scale for all images of a
// run: 0 (the 0.9 quantile of normal pixels after the model's normalisation)
// is cold, and Max (the validation images' mean EfficientAD score plus three
// standard deviations, i.e. an unusually high peak for a normal image) is hot.
type heatmapStyle struct {
	Max       float64
	Threshold float64 // on the PUAD score
}

// heatmapMinSize is the smallest side of a heatmap's image: maps of models
// with smaller inputs are drawn upsampled over a larger copy of the image.
const heatmapMinSize = 256

// write renders the overlay of the image at path (resized to the model's
// square input size, as the network saw it, or to heatmapMinSize if that is
// larger) with its size×size map, title and PUAD verdict.
func (h heatmapStyle) write(out, path string, size int, amap []float32, title string, puad float64) error {
	img, err := datasets.LoadRGB(path, max(size, heatmapMinSize))
	if err != nil {
		return err
	}
	hi := h.Max
	if !(hi > 0) || math.IsInf(hi, 0) {
		hi = 0 // relative to the map's own peak
	}
	return heatmap.Write(out, rgbaImage(img), amap, size, size, heatmap.Options{
		Min: 0, Max: hi, Title: title, ShowScore: true, Score: puad,
		// heatmap.Write flags Score >= Threshold; the verdict is Score > Threshold.
		UseThreshold: true, Threshold: math.Nextafter(h.Threshold, math.Inf(1)), ColorBar: true,
	})
}

// rgbaImage converts a datasets.RGB to an image.RGBA.
func rgbaImage(m datasets.RGB) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	for i, j := 0, 0; i < len(m.Pix); i, j = i+3, j+4 {
		out.Pix[j], out.Pix[j+1], out.Pix[j+2], out.Pix[j+3] = m.Pix[i], m.Pix[i+1], m.Pix[i+2], 255
	}
	return out
}
