package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/internal/atomicfile"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
	"github.com/puad-go/puad/training"
)

func init() { extraCommands = append(extraCommands, reproduceCommand()) }

func reproduceCommand() *cli.Command {
	return &cli.Command{
		Name:  "reproduce",
		Usage: "evaluate EfficientAD and PUAD on every category of MVTec LOCO AD and MVTec AD and compare with the paper",
		Description: "Finds the categories under ROOT/mvtec_loco_anomaly_detection and ROOT/mvtec_anomaly_detection (a\n" +
			"category is a folder with train/ and test/), evaluates each with the models in MODELS (the\n" +
			"reference's layout) and prints the README's tables with the published value and the\n" +
			"difference beside each measured one, and for MVTec LOCO AD the AUROC per anomaly type\n" +
			"(logical, structural). Categories the paper reports but ROOT lacks, and categories whose\n" +
			"model files are missing, are listed as missing; the others still run.\n\n" +
			"results.json, results.csv and results.md go to --out, with one result file per category\n" +
			"under --out/runs; a rerun skips the categories already there (--force redoes them).\n\n" +
			"--train retrains first: the teacher once per size (with --imagenet and --wrn-weights) and\n" +
			"each category's student and autoencoder, per seed into MODELS/seed<k>; models already\n" +
			"there are kept unless --force. With several --seeds the tables show mean ± standard\n" +
			"deviation over seeds. --seeds without --train evaluates MODELS/seed<k> as they are.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "data", Usage: "`ROOT` holding mvtec_loco_anomaly_detection/ and/or mvtec_anomaly_detection/", Required: true},
			&cli.StringFlag{Name: "models", Usage: "model directory `MODELS` (the reference's layout)", Required: true},
			&cli.StringFlag{Name: "size", Value: "s", Usage: "EfficientAD sizes, comma-separated: s, m or s,m"},
			extractorFlag,
			&cli.StringFlag{Name: "categories", Usage: "only these categories, comma-separated"},
			&cli.StringFlag{Name: "out", Value: "reproduce-out", Usage: "output `DIR`"},
			deviceFlag, batchFlag, quietFlag, precisionFlag,
			&cli.BoolFlag{Name: "force", Usage: "redo categories whose results (and, with --train, models) exist"},
			&cli.BoolFlag{Name: "train", Usage: "train the teacher and the students before evaluating"},
			&cli.StringFlag{Name: "imagenet", Usage: "ImageNet training folder `PATH` (for --train)"},
			&cli.StringFlag{Name: "wrn-weights", Usage: "torchvision's wide_resnet101_2 weights `FILE` (for --train)"},
			&cli.StringFlag{Name: "seeds", Usage: "training seeds, comma-separated (models in MODELS/seed<k>); default 0 with --train"},
			&cli.IntFlag{Name: "teacher-iterations", Usage: "teacher training iterations (0: the reference's)"},
			&cli.IntFlag{Name: "student-iterations", Usage: "student training iterations (0: the reference's)"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return usageError(c, "reproduce takes no arguments (use --data and --models), got %q", c.Args().Slice())
			}
			cfg, err := reproduceConfigFrom(c)
			if err != nil {
				return err
			}
			ctx, cancel := interruptible(c.Context)
			defer cancel()
			_, err = runReproduce(ctx, cfg, os.Stdout, os.Stderr)
			return err
		},
	}
}

// reproduceConfig is the parsed command line of `puad reproduce`.
type reproduceConfig struct {
	DataRoot, ModelRoot, OutDir string
	Sizes                       []models.Size
	Extractor                   string
	Categories                  []string // empty: all
	Device                      string
	BatchSize                   int
	Precision                   string
	Force, Quiet                bool
	// Seeds selects MODELS/seed<k> model folders; nil uses MODELS itself.
	Seeds []int
	// Train, when set, trains the models before evaluating them.
	Train *trainSettings
}

// trainSettings are the options of --train.
type trainSettings struct {
	ImageNet, WRNWeights                 string
	TeacherIterations, StudentIterations int
}

func reproduceConfigFrom(c *cli.Context) (reproduceConfig, error) {
	cfg := reproduceConfig{
		DataRoot: c.String("data"), ModelRoot: c.String("models"), OutDir: c.String("out"),
		Extractor: c.String("feature-extractor"), Device: c.String("device"), BatchSize: c.Int("batch-size"),
		Force: c.Bool("force"), Quiet: c.Bool("quiet"), Categories: splitList(c.String("categories")),
		Precision: c.String("precision"),
	}
	if _, err := evaluate.ParseExtractor(cfg.Extractor); err != nil {
		return cfg, err
	}
	for _, s := range splitList(c.String("size")) {
		size, err := models.ParseSize(s)
		if err != nil {
			return cfg, err
		}
		if !slices.Contains(cfg.Sizes, size) {
			cfg.Sizes = append(cfg.Sizes, size)
		}
	}
	if len(cfg.Sizes) == 0 {
		return cfg, errors.New("--size: no size given")
	}
	for _, s := range splitList(c.String("seeds")) {
		k, err := strconv.Atoi(s)
		if err != nil || k < 0 {
			return cfg, fmt.Errorf("--seeds: %q is not a non-negative integer", s)
		}
		if !slices.Contains(cfg.Seeds, k) {
			cfg.Seeds = append(cfg.Seeds, k)
		}
	}
	if c.Bool("train") {
		if c.String("imagenet") == "" || c.String("wrn-weights") == "" {
			return cfg, errors.New("--train needs --imagenet PATH and --wrn-weights FILE (the teacher is distilled from WideResNet101-2 on ImageNet)")
		}
		cfg.Train = &trainSettings{ImageNet: c.String("imagenet"), WRNWeights: c.String("wrn-weights"),
			TeacherIterations: c.Int("teacher-iterations"), StudentIterations: c.Int("student-iterations")}
		if len(cfg.Seeds) == 0 {
			cfg.Seeds = []int{0}
		}
	}
	return cfg, nil
}

func splitList(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// categoryRef is a category to evaluate; Dir is empty when it is not under the data root.
type categoryRef struct {
	Dataset, Category, Dir string
}

// reproduceDatasets are the dataset folders reproduce looks for, in table order.
var reproduceDatasets = []string{report.LOCODataset, report.MVTecADataset}

// discoverCategories lists the categories to evaluate: those found under
// root (folders with train/ and test/) and those the paper reports for a
// dataset folder that exists, restricted to filter when it is not empty.
// A filtered name found nowhere is returned without Dir.
func discoverCategories(root string, filter []string) ([]categoryRef, []string, error) {
	var refs []categoryRef
	var notes []string
	present := 0
	for _, ds := range reproduceDatasets {
		dsDir := filepath.Join(root, ds)
		entries, err := os.ReadDir(dsDir)
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				notes = append(notes, fmt.Sprintf("%s not found: its categories were not evaluated", dsDir))
				continue
			}
			return nil, nil, err
		}
		present++
		found := map[string]string{}
		for _, e := range entries {
			dir := filepath.Join(dsDir, e.Name())
			if isDirPath(dir) && isDirPath(filepath.Join(dir, "train")) && isDirPath(filepath.Join(dir, "test")) {
				found[e.Name()] = dir
			}
		}
		names := map[string]bool{}
		for c := range found {
			names[c] = true
		}
		for _, size := range []string{"s", "m"} {
			for _, c := range report.Paper().Categories(ds, size) {
				names[c] = true
			}
		}
		var sorted []string
		for c := range names {
			if len(filter) == 0 || slices.Contains(filter, c) {
				sorted = append(sorted, c)
			}
		}
		sort.Strings(sorted)
		for _, c := range sorted {
			refs = append(refs, categoryRef{Dataset: ds, Category: c, Dir: found[c]})
		}
	}
	if present == 0 {
		return nil, notes, fmt.Errorf("neither %s nor %s is under %s", reproduceDatasets[0], reproduceDatasets[1], root)
	}
	for _, c := range filter {
		if !slices.ContainsFunc(refs, func(r categoryRef) bool { return r.Category == c }) {
			refs = append(refs, categoryRef{Dataset: paperDatasetOf(c), Category: c})
		}
	}
	return refs, notes, nil
}

// paperDatasetOf is the dataset the paper reports a category under
// (MVTec LOCO AD when it reports none).
func paperDatasetOf(category string) string {
	for _, ds := range reproduceDatasets {
		for _, size := range []string{"s", "m"} {
			if slices.Contains(report.Paper().Categories(ds, size), category) {
				return ds
			}
		}
	}
	return report.LOCODataset
}

func isDirPath(p string) bool {
	info, err := os.Stat(p)
	return err == nil && info.IsDir()
}

// missingModelFiles describes the files of a category's model that are
// absent, grouped by folder relative to the model root, e.g.
// "s_size/teacher/ (teacher.pt)"; empty when none is.
func missingModelFiles(root string, size models.Size, dataset, category string) string {
	l := models.Layout{Root: root, Size: size}
	groups := []struct {
		dir   string
		files []string
	}{
		{l.TeacherDir(), []string{"teacher.pt"}},
		{l.CategoryDir(dataset, category), []string{"student.pt", "autoencoder.pt", "mu.pt", "sigma.pt", "quantile.pt"}},
	}
	var parts []string
	for _, g := range groups {
		var missing []string
		for _, f := range g.files {
			if _, err := os.Stat(filepath.Join(g.dir, f)); err != nil {
				missing = append(missing, f)
			}
		}
		if len(missing) > 0 {
			rel, err := filepath.Rel(root, g.dir)
			if err != nil {
				rel = g.dir
			}
			parts = append(parts, fmt.Sprintf("%s/ (%s)", filepath.ToSlash(rel), strings.Join(missing, ", ")))
		}
	}
	return strings.Join(parts, "; ")
}

// runPath is where the result of one category run is kept for resuming:
// <out>/runs[/seed<k>]/<size>_size/<dataset>/<category>.<extractor>.json,
// the format of `puad eval --json`.
func runPath(out string, seed *int, size models.Size, dataset, category, extractor string) string {
	dir := filepath.Join(out, "runs")
	if seed != nil {
		dir = filepath.Join(dir, fmt.Sprintf("seed%d", *seed))
	}
	return filepath.Join(dir, string(size)+"_size", dataset, category+"."+extractor+".json")
}

// loadRun reads a kept result; it returns nil when there is none or it does
// not belong to the run.
func loadRun(path, dataset, category string, size models.Size, extractor string) *evaluate.Result {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var r evaluate.Result
	if json.Unmarshal(data, &r) != nil || r.DatasetName != dataset || r.Category != category ||
		r.Size != string(size) || r.Extractor != extractor {
		return nil
	}
	return &r
}

// seedModelRoot is the model folder of a seed (the root itself without seeds).
func seedModelRoot(root string, seed *int) string {
	if seed == nil {
		return root
	}
	return filepath.Join(root, fmt.Sprintf("seed%d", *seed))
}

// reproduceHooks lets the training step run before each category's
// evaluation. prepareSize runs once per seed and size before its categories;
// prepareCategory returns whether it replaced the category's models.
type reproduceHooks struct {
	prepareSize     func(ctx context.Context, modelRoot string, seed *int, size models.Size) error
	prepareCategory func(ctx context.Context, ref categoryRef, modelRoot string, seed *int, size models.Size) (bool, error)
}

// runReproduce evaluates every category for every seed and size, writes
// the report files and prints the tables to out; progress goes to log.
func runReproduce(ctx context.Context, cfg reproduceConfig, out, log io.Writer) (*report.Report, error) {
	refs, notes, err := discoverCategories(cfg.DataRoot, cfg.Categories)
	if err != nil {
		return nil, err
	}
	hooks := reproduceHooks{}
	if cfg.Train != nil {
		if hooks, err = trainingHooks(cfg, log); err != nil {
			return nil, err
		}
		notes = append(notes, fmt.Sprintf("models trained by this program into %s/seed<k> (teacher once per size, shared by the seeds)", cfg.ModelRoot))
	}
	seeds := []*int{nil}
	if len(cfg.Seeds) > 0 {
		seeds = nil
		for _, k := range cfg.Seeds {
			seeds = append(seeds, &k)
		}
		notes = append(notes, fmt.Sprintf("seeds %s: ± is the sample standard deviation over seeds; the mean row's is that of the per-seed means", joinInts(cfg.Seeds)))
	}
	bar := newProgressBar(cfg.Quiet)
	total := len(seeds) * len(cfg.Sizes) * len(refs)
	var runs []report.CategoryRun
	n := 0
	for _, seed := range seeds {
		root := seedModelRoot(cfg.ModelRoot, seed)
		for _, size := range cfg.Sizes {
			var sizeErr error
			if hooks.prepareSize != nil {
				sizeErr = hooks.prepareSize(ctx, root, seed, size)
				if ctx.Err() != nil {
					return nil, interruptedRun(ctx, cfg)
				}
			}
			for _, ref := range refs {
				n++
				run := report.CategoryRun{DatasetName: ref.Dataset, Category: ref.Category, Size: string(size),
					Extractor: cfg.Extractor, Seed: seed}
				label := fmt.Sprintf("[%d/%d] %s/%s (%s%s)", n, total, ref.Dataset, ref.Category, size, seedLabel(seed))
				res, status, reason, kept := reproduceOne(ctx, cfg, hooks, sizeErr, ref, root, seed, size, bar, label)
				if ctx.Err() != nil {
					return nil, interruptedRun(ctx, cfg)
				}
				if res != nil {
					run = evaluate.RunFromResult(res, seed)
				}
				run.Status, run.Reason = status, reason
				if status == report.StatusOK {
					note := reasonSuffix(reason)
					if kept {
						note = " (kept from an earlier run; --force redoes it)"
					}
					fmt.Fprintf(log, "%s: efficient_ad auroc %.4f, puad auroc %.4f%s\n", label, run.EfficientADAUROC, run.PUADAUROC, note)
				} else {
					fmt.Fprintf(log, "%s: %s: %s\n", label, status, reason)
				}
				runs = append(runs, run)
			}
		}
	}
	rep := report.BuildReport(runs, report.Paper(), notes...)
	if err := writeReport(cfg.OutDir, rep); err != nil {
		return rep, err
	}
	if err := rep.WriteText(out); err != nil {
		return rep, err
	}
	fmt.Fprintf(out, "\nwritten: %s, %s, %s\n", filepath.Join(cfg.OutDir, "results.json"), filepath.Join(cfg.OutDir, "results.csv"), filepath.Join(cfg.OutDir, "results.md"))
	return rep, nil
}

// reproduceOne prepares (trains) and evaluates one category, or takes its
// kept result; it never fails the whole run except by cancellation.
func reproduceOne(ctx context.Context, cfg reproduceConfig, hooks reproduceHooks, sizeErr error, ref categoryRef, root string,
	seed *int, size models.Size, bar *progressBar, label string) (res *evaluate.Result, status report.RunStatus, reason string, kept bool) {
	if ref.Dir == "" {
		return nil, report.StatusMissing, fmt.Sprintf("category folder not found under %s", filepath.Join(cfg.DataRoot, ref.Dataset)), false
	}
	if sizeErr != nil {
		return nil, report.StatusFailed, sizeErr.Error(), false
	}
	path := runPath(cfg.OutDir, seed, size, ref.Dataset, ref.Category, cfg.Extractor)
	force := cfg.Force
	if hooks.prepareCategory != nil {
		retrained, err := hooks.prepareCategory(ctx, ref, root, seed, size)
		if err != nil {
			return nil, report.StatusFailed, "training: " + err.Error(), false
		}
		force = force || retrained
	}
	if !force {
		if res := loadRun(path, ref.Dataset, ref.Category, size, cfg.Extractor); res != nil {
			return res, report.StatusOK, "", true
		}
	}
	if missing := missingModelFiles(root, size, ref.Dataset, ref.Category); missing != "" {
		return nil, report.StatusMissing, fmt.Sprintf("model files not found in %s: %s", root, missing), false
	}
	st := evalSettings{Size: string(size), Extractor: cfg.Extractor, Device: cfg.Device, BatchSize: cfg.BatchSize, Quiet: cfg.Quiet, Precision: cfg.Precision}
	ds, m, opts, err := loadCategory(ref.Dir, root, st)
	if err != nil {
		return nil, report.StatusFailed, err.Error(), false
	}
	defer m.Close()
	opts.Progress = func(stage string, done, total int) { bar.Update(label+" "+stage, done, total, "") }
	res, err = evaluate.Evaluate(ctx, ds, m, opts)
	if err != nil {
		return nil, report.StatusFailed, err.Error(), false
	}
	if err := writeJSON(path, res); err != nil {
		return res, report.StatusOK, "result not kept: " + err.Error(), false
	}
	return res, report.StatusOK, "", false
}

// interruptedRun is the error of a cancelled reproduce run.
func interruptedRun(ctx context.Context, cfg reproduceConfig) error {
	return fmt.Errorf("%w: rerun the same command to continue (finished categories are kept in %s; training resumes from its checkpoint)",
		ctx.Err(), filepath.Join(cfg.OutDir, "runs"))
}

func reasonSuffix(r string) string {
	if r == "" {
		return ""
	}
	return " (" + r + ")"
}

func seedLabel(seed *int) string {
	if seed == nil {
		return ""
	}
	return fmt.Sprintf(", seed %d", *seed)
}

func joinInts(v []int) string {
	s := make([]string, len(v))
	for i, k := range v {
		s[i] = strconv.Itoa(k)
	}
	return strings.Join(s, ",")
}

// writeReport writes results.json, results.csv and results.md into dir, each atomically.
func writeReport(dir string, rep *report.Report) error {
	data, err := rep.JSON()
	if err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "results.json"), data, atomicfile.DefaultPerm); err != nil {
		return err
	}
	var b bytes.Buffer
	if err := rep.WriteCSV(&b); err != nil {
		return err
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, "results.csv"), b.Bytes(), atomicfile.DefaultPerm); err != nil {
		return err
	}
	b.Reset()
	if err := rep.WriteMarkdown(&b); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, "results.md"), b.Bytes(), atomicfile.DefaultPerm)
}

// trainingHooks returns the steps of --train: the teacher of each size is
// distilled once (with the first seed) into MODELS/<size>_size/teacher and
// copied into each seed's folder; a category's student and autoencoder are
// trained into MODELS/seed<k> unless they are there already (or --force).
// Interrupted runs resume from their checkpoints. It is a variable so that
// tests can put a stand-in for training in its place.
var trainingHooks = func(cfg reproduceConfig, log io.Writer) (reproduceHooks, error) {
	ts := cfg.Train
	dev, err := tb.ParseDevice(cfg.Device)
	if err != nil {
		return reproduceHooks{}, err
	}
	if !isDirPath(ts.ImageNet) {
		return reproduceHooks{}, fmt.Errorf("--imagenet %s: not a folder", ts.ImageNet)
	}
	if _, err := os.Stat(ts.WRNWeights); err != nil {
		return reproduceHooks{}, fmt.Errorf("--wrn-weights %s: %v; %s", ts.WRNWeights, err, wrnWeightsHelp())
	}
	bar := newProgressBar(cfg.Quiet)
	progress := func(label string) training.Progress {
		return func(stage string, iter, total int, loss float64) {
			note := ""
			if !math.IsNaN(loss) {
				note = fmt.Sprintf("loss %.4f", loss)
			}
			bar.Update(label+" "+stage, iter, total, note)
		}
	}
	firstSeed := uint64(0)
	if len(cfg.Seeds) > 0 {
		firstSeed = uint64(cfg.Seeds[0])
	}
	type teacherState struct {
		err     error
		trained bool
	}
	teachers := map[models.Size]*teacherState{}
	return reproduceHooks{
		prepareSize: func(ctx context.Context, modelRoot string, seed *int, size models.Size) error {
			shared := models.Layout{Root: cfg.ModelRoot, Size: size}.TeacherDir()
			st := teachers[size]
			if st == nil {
				st = &teacherState{}
				teachers[size] = st
				if _, err := os.Stat(filepath.Join(shared, "teacher.pt")); err != nil || cfg.Force {
					fmt.Fprintf(log, "training the %s teacher into %s\n", size, shared)
					st.err = training.TrainTeacher(ctx, training.TeacherConfig{
						ImageNetDir: ts.ImageNet, ModelDir: cfg.ModelRoot, Size: size, WRNWeights: ts.WRNWeights,
						Iterations: ts.TeacherIterations, Seed: firstSeed, Device: dev, Force: cfg.Force,
						CheckpointEvery: training.DefaultCheckpointEvery, Resume: true,
						Progress: progress(fmt.Sprintf("teacher (%s)", size)), Log: log, Precision: models.Precision(cfg.Precision),
					})
					st.trained = st.err == nil
				}
				if st.err != nil {
					st.err = fmt.Errorf("teacher (%s): %w", size, st.err)
				}
			}
			if st.err != nil {
				return st.err
			}
			dst := models.Layout{Root: modelRoot, Size: size}.TeacherDir()
			if dst == shared {
				return nil
			}
			for _, f := range []string{"teacher.pt", "mu.pt", "sigma.pt"} {
				if _, err := os.Stat(filepath.Join(dst, f)); err == nil && !st.trained {
					continue
				}
				data, err := os.ReadFile(filepath.Join(shared, f))
				if err != nil {
					if f != "teacher.pt" && errors.Is(err, os.ErrNotExist) {
						continue
					}
					return err
				}
				if err := atomicfile.WriteFile(filepath.Join(dst, f), data, atomicfile.DefaultPerm); err != nil {
					return err
				}
			}
			return nil
		},
		prepareCategory: func(ctx context.Context, ref categoryRef, modelRoot string, seed *int, size models.Size) (bool, error) {
			catDir := models.Layout{Root: modelRoot, Size: size}.CategoryDir(ref.Dataset, ref.Category)
			_, ckptErr := os.Stat(filepath.Join(catDir, training.CheckpointFile))
			if !cfg.Force && ckptErr != nil && missingModelFiles(modelRoot, size, ref.Dataset, ref.Category) == "" {
				return false, nil
			}
			k := uint64(0)
			if seed != nil {
				k = uint64(*seed)
			}
			scfg := training.StudentConfig{
				ImageNetDir: ts.ImageNet, DatasetDir: ref.Dir, ModelDir: modelRoot, Size: size,
				Iterations: ts.StudentIterations, Seed: k, Device: dev,
				CheckpointEvery: training.DefaultCheckpointEvery, Resume: true,
				Progress: progress(fmt.Sprintf("%s/%s (%s%s)", ref.Dataset, ref.Category, size, seedLabel(seed))), Log: log,
				Precision: models.Precision(cfg.Precision),
			}
			res, err := training.TrainStudent(ctx, scfg)
			if err == nil {
				_, _, err = scoreTrainedStudent(ctx, scfg, res)
			}
			return err == nil, err
		},
	}, nil
}
