// Package reproduce evaluates EfficientAD and PUAD on every category of
// MVTec LOCO AD and MVTec AD, optionally training the models first, and
// writes the comparison with the paper: the work of `puad reproduce`.
//
// A run finds the categories under the data root, evaluates each for every
// seed and size with the models of the reference's layout, keeps each
// category's result under <out>/runs so that a rerun skips it, and writes
// results.json, results.csv and results.md into the output folder.
package reproduce

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// Config is one reproduce run.
type Config struct {
	// DataRoot holds mvtec_loco_anomaly_detection/ and/or
	// mvtec_anomaly_detection/; ModelRoot is a model folder in the
	// reference's layout; OutDir receives the results.
	DataRoot, ModelRoot, OutDir string
	Sizes                       []models.Size
	Extractor                   evaluate.Extractor
	// Categories restricts the run to these categories (empty: all).
	Categories []string
	Device     tb.Device
	// BatchSize is the number of images per forward pass (0: the device's default).
	BatchSize int
	// Force redoes categories whose results (and, when training, models) exist.
	Force bool
	// Seeds selects <ModelRoot>/seed<k> model folders; nil uses ModelRoot itself.
	Seeds []int
	// Train, when set, trains the models before evaluating them.
	Train *TrainSettings

	// Progress, if set, receives the progress of each stage of evaluation
	// and training; note is empty or the training loss.
	Progress func(stage string, done, total int, note string)
	// Log, if set, receives information lines (what is being trained).
	Log io.Writer
	// Finished, if set, is called after each category run.
	Finished func(Outcome)
}

// Outcome is the end of one category run.
type Outcome struct {
	// Label names the run and its place: "[3/10] <dataset>/<category> (s, seed 1)".
	Label string
	Run   report.CategoryRun
	// Kept is set when the result was taken from an earlier run.
	Kept bool
}

func (c Config) progress(stage string, done, total int, note string) {
	if c.Progress != nil {
		c.Progress(stage, done, total, note)
	}
}

func (c Config) log() io.Writer {
	if c.Log == nil {
		return io.Discard
	}
	return c.Log
}

// InterruptedError is Run's error when its context ends: finished
// categories are kept in RunsDir and training resumes from its checkpoint,
// so the same run started again continues.
type InterruptedError struct {
	Err     error // the context's error
	RunsDir string
}

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("%v (finished categories are kept in %s; training resumes from its checkpoint)", e.Err, e.RunsDir)
}

func (e *InterruptedError) Unwrap() error { return e.Err }

// Run evaluates every category for every seed and size and writes the
// report files (ReportFiles). A category that cannot be evaluated is a row
// with its reason, not an error; Run fails only when no dataset folder is
// found, when the report cannot be written, or when ctx ends
// (*InterruptedError).
func Run(ctx context.Context, cfg Config) (*report.Report, error) {
	if err := checkNames(cfg.Categories); err != nil {
		return nil, err
	}
	refs, notes, err := Discover(cfg.DataRoot, cfg.Categories)
	if err != nil {
		return nil, err
	}
	h := hooks{}
	if cfg.Train != nil {
		h = trainingHooks(cfg)
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
	r := &runner{cfg: cfg, hooks: h, refs: refs, total: len(seeds) * len(cfg.Sizes) * len(refs)}
	for _, seed := range seeds {
		for _, size := range cfg.Sizes {
			if err := r.runSize(ctx, seed, size); err != nil {
				return nil, err
			}
		}
	}
	rep := report.BuildReport(r.runs, report.Paper(), notes...)
	if err := writeReport(cfg.OutDir, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// runner holds the state of one Run.
type runner struct {
	cfg   Config
	hooks hooks
	refs  []Category
	total int // category runs in all
	n     int // category runs started
	runs  []report.CategoryRun
}

// runSize prepares the models of one seed and size and runs its categories.
func (r *runner) runSize(ctx context.Context, seed *int, size models.Size) error {
	root := seedModelRoot(r.cfg.ModelRoot, seed)
	var sizeErr error
	if r.hooks.prepareSize != nil {
		sizeErr = r.hooks.prepareSize(ctx, root, seed, size)
		if ctx.Err() != nil {
			return r.interrupted(ctx)
		}
	}
	for _, ref := range r.refs {
		r.n++
		run := report.CategoryRun{DatasetName: ref.Dataset, Category: ref.Category, Size: string(size),
			Extractor: string(r.cfg.Extractor), Seed: seed}
		label := fmt.Sprintf("[%d/%d] %s/%s (%s%s)", r.n, r.total, ref.Dataset, ref.Category, size, seedLabel(seed))
		u := unit{ref: ref, root: root, seed: seed, size: size, label: label}
		res, status, reason, kept := r.one(ctx, sizeErr, u)
		if ctx.Err() != nil {
			return r.interrupted(ctx)
		}
		if res != nil {
			run = evaluate.RunFromResult(res, seed)
		}
		run.Status, run.Reason = status, reason
		if r.cfg.Finished != nil {
			r.cfg.Finished(Outcome{Label: label, Run: run, Kept: kept})
		}
		r.runs = append(r.runs, run)
	}
	return nil
}

func (r *runner) interrupted(ctx context.Context) error {
	return &InterruptedError{Err: ctx.Err(), RunsDir: runsDir(r.cfg.OutDir)}
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

// checkNames refuses category names that are not a single folder name
// ("", ".", "..", or names holding a path separator).
func checkNames(names []string) error {
	for _, n := range names {
		if n == "" || n == "." || n == ".." || strings.ContainsAny(n, `/\`) {
			return fmt.Errorf("category %q: want a category's folder name, not a path", n)
		}
	}
	return nil
}

// FailedError is returned by Failures when some category runs failed.
type FailedError struct {
	// Runs are the failed runs, "<dataset>/<category> (<size>)".
	Runs []string
}

func (e *FailedError) Error() string {
	return fmt.Sprintf("%d category runs failed: %s", len(e.Runs), strings.Join(e.Runs, ", "))
}

// Failures returns a *FailedError naming the runs of rep that failed
// (report.StatusFailed), or nil. Categories that are missing are not failures.
func Failures(rep *report.Report) error {
	var failed []string
	for _, run := range rep.Runs {
		if run.Status == report.StatusFailed {
			label := fmt.Sprintf("%s/%s (%s", run.DatasetName, run.Category, run.Size)
			if run.Seed != nil {
				label += fmt.Sprintf(", seed %d", *run.Seed)
			}
			failed = append(failed, label+")")
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &FailedError{Runs: failed}
}
