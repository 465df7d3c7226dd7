package evaluate

import "github.com/puad-go/puad/evaluate/report"

// RunFromResult is the report.CategoryRun of a successful evaluation, with
// the seed of its models (nil when they were not trained per seed). Its
// localisation is the AU-sPRO at FPR 0.05 when the evaluation computed
// AU-sPROs (MVTec LOCO AD), else the AU-PRO when it computed one.
func RunFromResult(r *Result, seed *int) report.CategoryRun {
	run := report.CategoryRun{
		DatasetName: r.DatasetName, Category: r.Category, Size: r.Size, Extractor: r.Extractor, Seed: seed,
		Status: report.StatusOK, EfficientADAUROC: r.EfficientADAUROC, PUADAUROC: r.PUADAUROC,
		EfficientADPerClass: r.EfficientADPerClass, PUADPerClass: r.PUADPerClass,
	}
	if m := r.Metrics; m != nil {
		if v, ok := m.AUSPRO["0.05"]; ok {
			run.Localization, run.LocalizationMetric = &v, report.MetricAUSPRO05
		} else if m.AUPRO != nil {
			run.Localization, run.LocalizationMetric = m.AUPRO, report.MetricAUPRO
		}
	}
	return run
}
