package main

import (
	"cmp"
	"context"
	"encoding/json"
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
	"github.com/puad-go/puad/internal/atomicfile"
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
			"fit's threshold). A FOLDER is searched recursively for image files. Unreadable images are\n" +
			"reported and skipped; the exit status is then non-zero. Images are decoded as for the fit (16-bit\n" +
			"greyscale clipped for MVTec categories, scaled for plain folders), with the teacher the fit used\n" +
			"unless --teacher is given.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "category", Usage: "the category `DIR` (its name and its parent's name select the model)"},
			&cli.StringFlag{Name: "name", Usage: "the model `NAME` of a plain folder (MODELS/<size>_size/custom/NAME)"},
			sizeFlag, extractorFlag, deviceFlag, teacherFlag, precisionFlag,
			&cli.StringFlag{Name: "heatmaps", Usage: "write an anomaly-map overlay per image (PNG) into `OUTDIR`"},
			&cli.StringFlag{Name: "json", Usage: "write the scores to `FILE`"},
			mapsFlag,
		},
		Action: func(c *cli.Context) error {
			if c.NArg() < 2 {
				return usageError(c, "predict needs MODELS and at least one IMAGE or FOLDER, got %d arguments", c.NArg())
			}
			if (c.String("category") == "") == (c.String("name") == "") {
				return usageError(c, "predict needs either --category DIR or --name NAME")
			}
			ps := predictSettings{
				ModelDir: c.Args().First(), CategoryDir: c.String("category"), Name: c.String("name"), Inputs: c.Args().Slice()[1:],
				Size: c.String("size"), Device: c.String("device"), HeatmapDir: c.String("heatmaps"), TeacherFile: c.String("teacher"),
				Precision: c.String("precision"),
				MapsDir:   c.String("maps"),
			}
			if c.IsSet("feature-extractor") {
				ps.Extractor = c.String("feature-extractor")
			}
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

type predictSettings struct {
	// CategoryDir names an MVTec category's model, Name a plain folder's
	// (one of the two is set).
	ModelDir, CategoryDir, Name string
	Inputs                      []string
	Size, Extractor             string // Extractor "" accepts the fit's
	Device                      string
	HeatmapDir                  string
	// TeacherFile replaces the fit's teacher ("": the fit's).
	TeacherFile string
	// Precision is the networks' arithmetic (models.ParsePrecision).
	Precision string
	MapsDir   string // anomaly maps as float TIFFs ("": none)
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
	Invalid bool   `json:"invalid,omitempty"`
	Heatmap string `json:"heatmap,omitempty"`
	Map     string `json:"map,omitempty"`
}

// MarshalJSON writes the scores of an invalid prediction that are not
// numbers as null, which JSON can hold.
func (p prediction) MarshalJSON() ([]byte, error) {
	num := func(v float64) *float64 {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil
		}
		return &v
	}
	type plain prediction
	if !p.Invalid {
		return json.Marshal(plain(p))
	}
	return json.Marshal(struct {
		plain
		EfficientAD *float64 `json:"efficient_ad_score"`
		Mahalanobis *float64 `json:"mahalanobis_distance"`
		PUAD        *float64 `json:"puad_score"`
	}{plain(p), num(p.EfficientAD), num(p.Mahalanobis), num(p.PUAD)})
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
	// Incomplete is set when the run was interrupted before every input
	// was scored.
	Incomplete bool `json:"incomplete,omitempty"`
}

// modelNames returns the dataset name and the category of the model ps
// names: a plain folder's model by name, or a category folder's.
func modelNames(ps predictSettings) (datasetName, category string, err error) {
	if ps.Name != "" {
		if err := datasets.CheckName(ps.Name); err != nil {
			return "", "", err
		}
		return datasets.PlainDatasetName, ps.Name, nil
	}
	return categoryNames(ps.CategoryDir)
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

// predictor scores images with a category's model and its stored fit.
type predictor struct {
	fit     *stats.FitFile
	decode  datasets.DecodeOptions
	model   *models.EfficientAD
	sc      *evaluate.Scorer
	g       *stats.Gaussian
	hm      heatmapStyle
	heatDir string // "": no heatmaps
	mapsDir string // "": no anomaly map files
}

// openPredictor loads the fit and the model of the category ps names and
// starts its report. The caller closes the model.
func openPredictor(ps predictSettings) (*predictor, *predictReport, error) {
	size, err := models.ParseSize(ps.Size)
	if err != nil {
		return nil, nil, err
	}
	if ps.Extractor != "" {
		if _, err := evaluate.ParseExtractor(ps.Extractor); err != nil {
			return nil, nil, err
		}
	}
	dev, err := tb.ParseDevice(ps.Device)
	if err != nil {
		return nil, nil, err
	}
	datasetName, category, err := modelNames(ps)
	if err != nil {
		return nil, nil, err
	}
	fp := fitPath(ps.ModelDir, size, datasetName, category)
	fit, err := stats.LoadFit(fp, string(size), ps.Extractor)
	if err != nil {
		return nil, nil, withFitHint(err, string(size))
	}
	if fit.DatasetName != datasetName || fit.Category != category {
		return nil, nil, fmt.Errorf("PUAD fit %s is of %s/%s, not %s/%s", fp, fit.DatasetName, fit.Category, datasetName, category)
	}
	var decode datasets.DecodeOptions
	if decode.Grey16, err = datasets.ParseGrey16Mode(fit.Depth16); err != nil {
		return nil, nil, fmt.Errorf("PUAD fit %s: %w", fp, err)
	}
	ref := models.ModelRef{Root: ps.ModelDir, Size: size, DatasetName: datasetName, Category: category, TeacherFile: cmp.Or(ps.TeacherFile, fit.TeacherFile)}
	m, err := ref.Load(int64(fit.ImgSize), dev)
	if err != nil {
		return nil, nil, err
	}
	if err := evaluate.CheckFit(fit, m); err != nil {
		m.Close()
		return nil, nil, withFitHint(fmt.Errorf("%s: %w", fp, err), string(size))
	}
	prec, err := models.ParsePrecision(ps.Precision)
	if err == nil {
		err = m.SetPrecision(prec)
	}
	if err != nil {
		m.Close()
		return nil, nil, err
	}
	p := &predictor{fit: fit, decode: decode, model: m, sc: &evaluate.Scorer{Model: m, Extractor: evaluate.Extractor(fit.Extractor)},
		g: fit.Gaussian(), heatDir: ps.HeatmapDir, mapsDir: ps.MapsDir,
		hm: heatmapStyle{Max: fit.Fusion.EfficientAD.Mean + 3*fit.Fusion.EfficientAD.Std, Threshold: fit.Threshold.Value}}
	rep := &predictReport{DatasetName: datasetName, Category: category, Size: fit.Size, Extractor: fit.Extractor,
		FitFile: fp, Threshold: fit.Threshold}
	return p, rep, nil
}

// score scores one loaded image (CHW float32 at the model's size), draws
// its heatmap and writes its anomaly map.
func (p *predictor) score(in predictInput, data []float32) (prediction, error) {
	need := evaluate.Need{Score: true, Feature: true, Map: p.heatDir != "" || p.mapsDir != ""}
	outs, err := evaluate.ScoreBatch(p.sc, data, 1, need)
	if err != nil {
		return prediction{}, fmt.Errorf("%s: %w", in.path, err)
	}
	o := outs[0]
	maha, puad, _ := p.fit.Score(p.g, o.Score, o.Feature)
	v := p.fit.Verdict(puad)
	pr := prediction{Path: in.path, EfficientAD: o.Score, Mahalanobis: maha, PUAD: puad,
		Anomalous: v == stats.VerdictAnomalous, Invalid: v == stats.VerdictInvalid}
	if p.heatDir != "" {
		pr.Heatmap = filepath.Join(p.heatDir, in.name+".png")
		ex := heatmapExtras{UnpicturableOnly: p.fit.UnpicturableOnly(o.Score, maha)}
		if err := p.hm.write(pr.Heatmap, p.decode, in.path, int(p.model.ImgSize), o.Map, heatmapTitle(in.path), puad, ex); err != nil {
			return pr, err
		}
	}
	if p.mapsDir != "" {
		full, err := evaluate.ImageFullMap(in.path, o.Map, int(p.model.ImgSize))
		if err != nil {
			return pr, err
		}
		// The image's folder stands for the class folder of the layout.
		class := filepath.Base(filepath.Dir(absPath(in.path)))
		if pr.Map, err = evaluate.WriteMap(p.mapsDir, p.fit.Category, class, in.path, full); err != nil {
			return pr, err
		}
	}
	return pr, nil
}

// absPath is path made absolute, or path itself when that fails.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return path
}

// runPredict scores the inputs and prints one line per image to out;
// unreadable images are reported on errOut. It returns the report, and an
// error when some image could not be read (after scoring the others).
func runPredict(ctx context.Context, ps predictSettings, out, errOut io.Writer) (*predictReport, error) {
	p, rep, err := openPredictor(ps)
	if err != nil {
		return nil, err
	}
	defer p.model.Close()
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
	fit := p.fit
	fmt.Fprintf(out, "dataset name : %s\ncategory : %s\nsize : %s\nfeature extractor : %s\n", rep.DatasetName, rep.Category, fit.Size, fit.Extractor)
	fmt.Fprintf(out, "threshold : %s (PUAD score, fitted %s on %d validation images, max false-positive rate %g)\n",
		pyfmt.Float(fit.Threshold.Value), fit.Created.Format("2006-01-02"), fit.NumValidation, fit.Threshold.MaxFPR)
	fmt.Fprintf(out, "%12s  %12s  %10s  %-9s  %s\n", "efficient_ad", "mahalanobis", "puad", "verdict", "image")

	paths := make([]string, len(ins))
	for i, in := range ins {
		paths[i] = in.path
	}
	stream := p.decode.Stream(ctx, paths, int(p.model.ImgSize), runtime.NumCPU(), 2*runtime.NumCPU())
	anomalous, invalid := 0, 0
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
		pr, err := p.score(in, it.Data)
		if err != nil {
			return rep, err
		}
		if pr.Anomalous {
			anomalous++
		}
		if pr.Invalid {
			invalid++
		}
		rep.Images = append(rep.Images, pr)
		fmt.Fprintf(out, "%12.6f  %12.4f  %10.4f  %-9s  %s\n", pr.EfficientAD, pr.Mahalanobis, pr.PUAD, verdict(pr), in.path)
	}
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

// heatmapExtras are what a heatmap shows beyond the map and the verdict.
type heatmapExtras struct {
	// GroundTruth is the image's ground-truth mask, outlined when set.
	GroundTruth *image.Gray
	// UnpicturableOnly says that only the Mahalanobis score flags the
	// image (stats.FitFile.UnpicturableOnly): the map may show nothing.
	UnpicturableOnly bool
}

// unpicturableNote is the heatmap's note for an image that only the
// unpicturable score flags.
const unpicturableNote = "flagged by Mahalanobis score only"

// write renders the overlay of the image at path (resized to the model's
// square input size, as the network saw it, or to heatmapMinSize if that is
// larger) with its size×size map, title, PUAD verdict and extras.
func (h heatmapStyle) write(out string, decode datasets.DecodeOptions, path string, size int, amap []float32, title string, puad float64, ex heatmapExtras) error {
	img, err := decode.LoadRGB(path, max(size, heatmapMinSize))
	if err != nil {
		return err
	}
	hi := h.Max
	if !(hi > 0) || math.IsInf(hi, 0) {
		hi = 0 // relative to the map's own peak
	}
	opts := heatmap.Options{
		Min: 0, Max: hi, Title: title, ShowScore: true, Score: puad,
		// heatmap.Write flags Score >= Threshold; the verdict is Score > Threshold.
		UseThreshold: true, Threshold: math.Nextafter(h.Threshold, math.Inf(1)), ColorBar: true,
		GroundTruth: ex.GroundTruth,
	}
	if ex.UnpicturableOnly {
		opts.Note = unpicturableNote
	}
	return heatmap.Write(out, rgbaImage(img), amap, size, size, opts)
}

// rgbaImage converts a datasets.RGB to an image.RGBA.
func rgbaImage(m datasets.RGB) *image.RGBA {
	out := image.NewRGBA(image.Rect(0, 0, m.W, m.H))
	for i, j := 0, 0; i < len(m.Pix); i, j = i+3, j+4 {
		out.Pix[j], out.Pix[j+1], out.Pix[j+2], out.Pix[j+3] = m.Pix[i], m.Pix[i+1], m.Pix[i+2], 255
	}
	return out
}
