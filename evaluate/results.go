package evaluate

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/evaluate/metrics"
	"github.com/puad-go/puad/internal/atomicfile"
	"github.com/puad-go/puad/internal/pyfmt"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// EfficientADTestAUROC scores the test images of ds with m (EfficientAD's
// score alone, the student extractor) as the reference's inference after
// training does, and returns the image AUROC over all of them and per
// anomaly class. Progress reports the stage "test".
func EfficientADTestAUROC(ctx context.Context, ds *datasets.Dataset, m *models.EfficientAD, opts Options) (float64, []metrics.ClassAUROC, error) {
	opts.Decode = ds.Decode
	paths := make([]string, len(ds.Test))
	classes := make([]string, len(ds.Test))
	for i, it := range ds.Test {
		paths[i], classes[i] = it.Path, it.Class
	}
	sc := &Scorer{Model: m, Extractor: StudentExtractor}
	outs, err := RunImages(ctx, sc, paths, Need{Score: true}, "test", opts)
	if err != nil {
		return 0, nil, err
	}
	scores := make([]float64, len(outs))
	for i, o := range outs {
		scores[i] = o.Score
	}
	auroc, perClass, err := metrics.PerClassAUROC(classes, scores, datasets.NormalClass)
	if err != nil {
		return 0, nil, fmt.Errorf("EfficientAD AUROC of %s: %w", ds.Dir, err)
	}
	return auroc, perClass, nil
}

// ResultsText is the reference's results.txt (models.ResultsFile): the
// AUROC, then one line per anomaly class, numbers as Python prints them.
func ResultsText(auroc float64, perClass []metrics.ClassAUROC) string {
	var b strings.Builder
	fmt.Fprintf(&b, "auroc score = %s\n", pyfmt.Float(auroc))
	for _, pc := range perClass {
		fmt.Fprintf(&b, "%s auroc score = %s\n", pc.Class, pyfmt.Float(pc.AUROC))
	}
	return b.String()
}

// WriteResultsTxt writes ResultsText to path atomically.
func WriteResultsTxt(path string, auroc float64, perClass []metrics.ClassAUROC) error {
	return atomicfile.WriteFile(path, []byte(ResultsText(auroc, perClass)), atomicfile.DefaultPerm)
}

// TestTrainedModel loads the model that training just wrote for ds under
// modelDir (reference layout, images of imgSize pixels), scores ds's test
// set with it and writes results.txt beside it, as the reference does at the
// end of training. It returns the AUROCs it wrote.
func TestTrainedModel(ctx context.Context, modelDir string, size models.Size, imgSize int, dev tb.Device, ds *datasets.Dataset, opts Options) (float64, []metrics.ClassAUROC, error) {
	m, err := models.LoadEfficientAD(modelDir, size, ds.DatasetName, ds.Category, int64(imgSize), dev)
	if err != nil {
		return 0, nil, err
	}
	defer m.Close()
	auroc, perClass, err := EfficientADTestAUROC(ctx, ds, m, opts)
	if err != nil {
		return 0, nil, err
	}
	dir := models.Layout{Root: modelDir, Size: size}.CategoryDir(ds.DatasetName, ds.Category)
	if err := WriteResultsTxt(filepath.Join(dir, models.ResultsFile), auroc, perClass); err != nil {
		return 0, nil, err
	}
	return auroc, perClass, nil
}
