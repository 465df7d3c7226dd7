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

// one prepares (trains) and evaluates one category, or takes its kept
// result; it never fails the whole run except by cancellation.
func (r *runner) one(ctx context.Context, sizeErr error, u unit) (res *evaluate.Result, status report.RunStatus, reason string, kept bool) {
	cfg := r.cfg
	if u.ref.Dir == "" {
		return nil, report.StatusMissing, fmt.Sprintf("category folder not found under %s", filepath.Join(cfg.DataRoot, u.ref.Dataset)), false
	}
	if sizeErr != nil {
		return nil, report.StatusFailed, sizeErr.Error(), false
	}
	extractor := string(cfg.Extractor)
	path := runPath(cfg.OutDir, u.seed, u.size, u.ref.Dataset, u.ref.Category, extractor)
	force := cfg.Force
	if r.hooks.prepareCategory != nil {
		retrained, err := r.hooks.prepareCategory(ctx, u.ref, u.root, u.seed, u.size)
		if err != nil {
			return nil, report.StatusFailed, "training: " + err.Error(), false
		}
		force = force || retrained
	}
	if !force {
		if res := loadRun(path, u.ref.Dataset, u.ref.Category, u.size, extractor); res != nil {
			return res, report.StatusOK, "", true
		}
	}
	if missing := missingModelFiles(u.root, u.size, u.ref.Dataset, u.ref.Category); missing != "" {
		return nil, report.StatusMissing, fmt.Sprintf("model files not found in %s: %s", u.root, missing), false
	}
	ds, m, opts, err := evalsetup.Load(u.ref.Dir, u.root, evalsetup.Settings{
		Size: u.size, Extractor: cfg.Extractor, Device: cfg.Device, BatchSize: cfg.BatchSize, MVTecOnly: true})
	if err != nil {
		return nil, report.StatusFailed, err.Error(), false
	}
	defer m.Close()
	opts.Progress = func(stage string, done, total int) { cfg.progress(u.label+" "+stage, done, total, "") }
	res, err = evaluate.Evaluate(ctx, ds, m, opts)
	if err != nil {
		return nil, report.StatusFailed, err.Error(), false
	}
	if err := atomicfile.WriteJSON(path, res); err != nil {
		return res, report.StatusOK, "result not kept: " + err.Error(), false
	}
	return res, report.StatusOK, "", false
}
