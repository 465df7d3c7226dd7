package reproduce

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/internal/atomicfile"
	"github.com/puad-go/puad/internal/evalsetup"
	"github.com/puad-go/puad/models"
)

// unit is one category run: a category with the models of one seed and size.
type unit struct {
	ref   Category
	root  string // the seed's model folder
	seed  *int
	size  models.Size
	label string
}

// unitOutcome is the end of one category run: its result (nil when it
// failed or is missing), status and reason; kept is set when the result was
// taken from an earlier run, saved when the result file is in place.
type unitOutcome struct {
	res         *evaluate.Result
	status      report.RunStatus
	reason      string
	kept, saved bool
}

func failed(status report.RunStatus, reason string) unitOutcome {
	return unitOutcome{status: status, reason: reason}
}

// one prepares (trains) and evaluates one category, or takes its kept
// result; it never fails the whole run except by cancellation.
func (r *runner) one(ctx context.Context, sizeErr error, u unit) unitOutcome {
	cfg := r.cfg
	if u.ref.Dir == "" {
		return failed(report.StatusMissing, fmt.Sprintf("category folder not found under %s", filepath.Join(cfg.DataRoot, u.ref.Dataset)))
	}
	if sizeErr != nil {
		return failed(report.StatusFailed, sizeErr.Error())
	}
	extractor := string(cfg.Extractor)
	path := runPath(cfg.OutDir, u.seed, u.size, u.ref.Dataset, u.ref.Category, extractor)
	force := cfg.Force
	if r.hooks.prepareCategory != nil {
		retrained, err := r.hooks.prepareCategory(ctx, u.ref, u.root, u.seed, u.size)
		if err != nil {
			return failed(report.StatusFailed, "training: "+err.Error())
		}
		force = force || retrained
	}
	if !force {
		if res := loadRun(path, u.ref.Dataset, u.ref.Category, u.size, extractor); res != nil {
			return unitOutcome{res: res, status: report.StatusOK, kept: true, saved: true}
		}
	}
	if missing := missingModelFiles(u.root, u.size, u.ref.Dataset, u.ref.Category); missing != "" {
		return failed(report.StatusMissing, fmt.Sprintf("model files not found in %s: %s", u.root, missing))
	}
	ds, m, opts, err := evalsetup.Load(u.ref.Dir, u.root, evalsetup.Settings{
		Size: u.size, Extractor: cfg.Extractor, Device: cfg.Device, BatchSize: cfg.BatchSize, MVTecOnly: true, Precision: cfg.Precision})
	if err != nil {
		return failed(report.StatusFailed, err.Error())
	}
	defer m.Close()
	opts.Progress = func(stage string, done, total int) { cfg.progress(u.label+" "+stage, done, total, "") }
	res, err := evaluate.Evaluate(ctx, ds, m, opts)
	if err != nil {
		return failed(report.StatusFailed, err.Error())
	}
	if err := atomicfile.WriteJSON(path, res); err != nil {
		return unitOutcome{res: res, status: report.StatusOK, reason: "result not kept: " + err.Error()}
	}
	return unitOutcome{res: res, status: report.StatusOK, saved: true}
}
