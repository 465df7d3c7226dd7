package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/internal/atomicfile"
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
	precisionFlag = &cli.StringFlag{Name: "precision", Value: "fp32", Usage: "network arithmetic: fp32 (the reference's), bf16 (CPUs with AVX512-BF16/AMX, CUDA) or fp16 (CUDA)"}
)

func evalCommand() *cli.Command {
	return &cli.Command{
		Name:      "eval",
		Usage:     "EfficientAD and PUAD image AUROC of one category, as the reference's main.py",
		ArgsUsage: "DATASET MODELS",
		Description: "DATASET is a category folder in the MVTec layout (e.g. .../mvtec_loco_anomaly_detection/breakfast_box);\n" +
			"MODELS is a model directory in the reference's layout (<size>_size/teacher, <size>_size/<dataset>/<category>).",
		Flags: []cli.Flag{sizeFlag, extractorFlag, deviceFlag, batchFlag, quietFlag, imgSizeFlag, precisionFlag,
			&cli.StringFlag{Name: "json", Usage: "write the numbers and per-image scores to `FILE`"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 2 {
				return usageError(c, "eval needs DATASET and MODELS, got %d arguments", c.NArg())
			}
			res, err := runEval(c.Context, c.Args().Get(0), c.Args().Get(1), evalSettingsFrom(c))
			if err != nil {
				return err
			}
			printResult(os.Stdout, res)
			if path := c.String("json"); path != "" {
				if err := writeJSON(path, res); err != nil {
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
	ImgSize   int
	Precision string
}

func evalSettingsFrom(c *cli.Context) evalSettings {
	return evalSettings{
		Size: c.String("size"), Extractor: c.String("feature-extractor"), Device: c.String("device"),
		BatchSize: c.Int("batch-size"), Quiet: c.Bool("quiet"), ImgSize: c.Int("img-size"),
		Precision: c.String("precision"),
	}
}

// loadCategory opens a dataset category and its model.
func loadCategory(datasetDir, modelDir string, st evalSettings) (*datasets.Dataset, *models.EfficientAD, evaluate.Options, error) {
	var opts evaluate.Options
	size, err := models.ParseSize(st.Size)
	if err != nil {
		return nil, nil, opts, err
	}
	if opts.Extractor, err = evaluate.ParseExtractor(st.Extractor); err != nil {
		return nil, nil, opts, err
	}
	dev, err := tb.ParseDevice(st.Device)
	if err != nil {
		return nil, nil, opts, err
	}
	if info, err := os.Stat(modelDir); err != nil || !info.IsDir() {
		return nil, nil, opts, fmt.Errorf("model directory %s: not found", modelDir)
	}
	ds, err := datasets.Open(datasetDir, func(n int) ([]int64, error) { return tb.Perm(42, n) })
	if err != nil {
		return nil, nil, opts, err
	}
	imgSize := int64(st.ImgSize)
	if imgSize <= 0 {
		imgSize = 256
	}
	m, err := models.LoadEfficientAD(modelDir, size, ds.DatasetName, ds.Category, imgSize, dev)
	if err != nil {
		return nil, nil, opts, err
	}
	opts.BatchSize = st.BatchSize
	opts.Precision = models.Precision(st.Precision)
	if opts.BatchSize <= 0 && dev.IsCUDA() {
		opts.BatchSize = evaluate.DefaultCUDABatchSize
	}
	bar := newProgressBar(st.Quiet)
	opts.Progress = func(stage string, done, total int) { bar.Update(stage, done, total, "") }
	return ds, m, opts, nil
}

func runEval(ctx context.Context, datasetDir, modelDir string, st evalSettings) (*evaluate.Result, error) {
	ds, m, opts, err := loadCategory(datasetDir, modelDir, st)
	if err != nil {
		return nil, err
	}
	defer m.Close()
	ctx, cancel := interruptible(ctx)
	defer cancel()
	res, err := evaluate.Evaluate(ctx, ds, m, opts)
	if err != nil {
		return nil, err
	}
	if err := res.Validation.Check(); err != nil {
		fmt.Fprintf(os.Stderr, "puad: warning: %v\n", err)
	}
	return res, nil
}

// printResult prints the reference's lines.
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
}

// writeJSON writes v as indented JSON to path atomically.
func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.WriteFile(path, append(data, '\n'), atomicfile.DefaultPerm)
}
