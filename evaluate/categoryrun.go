package evaluate

import "github.com/puad-go/puad/evaluate/report"

// RunFromResult is the report.CategoryRun of a successful evaluation, with
// the seed of its models (nil when they were not trained per seed).
func RunFromResult(r *Result, seed *int) report.CategoryRun {
	return report.CategoryRun{
		DatasetName: r.DatasetName, Category: r.Category, Size: r.Size, Extractor: r.Extractor, Seed: seed,
		Status: report.StatusOK, EfficientADAUROC: r.EfficientADAUROC, PUADAUROC: r.PUADAUROC,
		EfficientADPerClass: r.EfficientADPerClass, PUADPerClass: r.PUADPerClass,
	}
}
