// Package reproduce evaluates EfficientAD and PUAD on every category of
// MVTec LOCO AD and MVTec AD, optionally training the models first, and
// writes the comparison with the paper: the work of `puad reproduce`.
//
// A run finds the categories under the data root, evaluates each for every
// seed and size with the models of the reference's layout, keeps each
// category's result under <out>/runs so that a rerun skips it, and writes
// results.json, results.csv and results.md into the output folder.
//
// On a cluster, each task of a job array runs one shard of the category
// runs (Config.Shard) into a folder of its own, which holds the shard's
// manifest and category runs instead of the report; Merge combines the
// shards' folders into the files the run without shards writes.
package reproduce

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/internal/shard"
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
	// Precision is the networks' arithmetic, in evaluation and training
	// ("": float32, the reference's).
	Precision models.Precision
	// Force redoes categories whose results (and, when training, models) exist.
	Force bool
	// Seeds selects <ModelRoot>/seed<k> model folders; nil uses ModelRoot itself.
	Seeds []int
	// Train, when set, trains the models before evaluating them.
	Train *TrainSettings
	// Shard, when set, restricts the run to one shard of its category
	// runs (see package shard) and writes them for Merge in place of the
	// report. A shard of several never trains the teacher a size shares.
	Shard *shard.Spec

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
//
// With cfg.Shard, Run evaluates only the shard's category runs and writes
// them with its manifest (ShardFiles) in place of the report, for Merge;
// the report it returns holds the shard's runs only.
func Run(ctx context.Context, cfg Config) (*report.Report, error) {
	p, err := newPlan(cfg)
	if err != nil {
		return nil, err
	}
	var out *shardOutput
	if cfg.Shard != nil {
		if out, err = startShard(cfg, p); err != nil {
			return nil, err
		}
	}
	r := &runner{cfg: cfg, hooks: p.hooks}
	if err := r.runAll(ctx, p.units(cfg)); err != nil {
		return nil, err
	}
	rep := report.BuildReport(r.runs, report.Paper(), p.notes...)
	if out != nil {
		return rep, out.finish(r.units)
	}
	if err := writeReport(cfg.OutDir, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// plan is what a run evaluates: each seed, each size of the configuration
// and each category, in this order, and the report's notes.
type plan struct {
	refs  []Category
	seeds []*int // nil: the model root itself
	notes []string
	hooks hooks
}

// newPlan finds the categories of cfg and the notes of its report.
func newPlan(cfg Config) (plan, error) {
	if err := checkNames(cfg.Categories); err != nil {
		return plan{}, err
	}
	if cfg.Shard != nil {
		if err := cfg.Shard.Check(); err != nil {
			return plan{}, err
		}
	}
	refs, notes, err := Discover(cfg.DataRoot, cfg.Categories)
	if err != nil {
		return plan{}, err
	}
	p := plan{refs: refs, seeds: []*int{nil}}
	if cfg.Train != nil {
		p.hooks = trainingHooks(cfg)
		notes = append(notes, fmt.Sprintf("models trained by this program into %s/seed<k> (teacher once per size, shared by the seeds)", cfg.ModelRoot))
	}
	if len(cfg.Seeds) > 0 {
		p.seeds = nil
		for _, k := range cfg.Seeds {
			p.seeds = append(p.seeds, &k)
		}
		notes = append(notes, fmt.Sprintf("seeds %s: ± is the sample standard deviation over seeds; the mean row's is that of the per-seed means", joinInts(cfg.Seeds)))
	}
	p.notes = notes
	return p, nil
}

// units are the category runs of the plan in the order a run takes them,
// which numbers them for shards: by seed, then size, then category.
func (p plan) units(cfg Config) []unit {
	var us []unit
	for _, seed := range p.seeds {
		for _, size := range cfg.Sizes {
			for _, ref := range p.refs {
				us = append(us, unit{ref: ref, root: seedModelRoot(cfg.ModelRoot, seed), seed: seed, size: size})
			}
		}
	}
	return us
}

// runner holds the state of one Run.
type runner struct {
	cfg   Config
	hooks hooks
	runs  []report.CategoryRun
	units []shardUnit // with a shard: its runs, numbered
}

// runAll runs the category runs (with a shard, its own), preparing the
// models of each seed and size before the first of its runs.
func (r *runner) runAll(ctx context.Context, units []unit) error {
	var prepared *unit // the seed and size last prepared
	var sizeErr error
	for i, u := range units {
		if r.cfg.Shard != nil && !r.cfg.Shard.Owns(i) {
			continue
		}
		if prepared == nil || prepared.seed != u.seed || prepared.size != u.size {
			prepared, sizeErr = &units[i], nil
			if r.hooks.prepareSize != nil {
				sizeErr = r.hooks.prepareSize(ctx, u.root, u.seed, u.size)
				if ctx.Err() != nil {
					return r.interrupted(ctx)
				}
			}
		}
		u.label = fmt.Sprintf("[%d/%d] %s/%s (%s%s)", i+1, len(units), u.ref.Dataset, u.ref.Category, u.size, seedLabel(u.seed))
		out := r.one(ctx, sizeErr, u)
		if ctx.Err() != nil {
			return r.interrupted(ctx)
		}
		run := report.CategoryRun{DatasetName: u.ref.Dataset, Category: u.ref.Category, Size: string(u.size),
			Extractor: string(r.cfg.Extractor), Seed: u.seed}
		if out.res != nil {
			run = evaluate.RunFromResult(out.res, u.seed)
		}
		run.Status, run.Reason = out.status, out.reason
		if r.cfg.Finished != nil {
			r.cfg.Finished(Outcome{Label: u.label, Run: run, Kept: out.kept})
		}
		r.runs = append(r.runs, run)
		if r.cfg.Shard != nil {
			r.units = append(r.units, shardUnit{Index: i, Saved: out.saved, Run: run})
		}
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
			failed = append(failed, unitName(run))
		}
	}
	if len(failed) == 0 {
		return nil
	}
	return &FailedError{Runs: failed}
}
