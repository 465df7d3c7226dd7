// Package report turns evaluation outcomes into the tables of the PUAD
// README: per dataset, EfficientAD size and feature extractor, each
// category's image AUROC of EfficientAD and of PUAD beside the published
// value and the difference, a mean row, for MVTec LOCO AD the AUROC per
// anomaly type (logical and structural), on which the paper's claim rests,
// and the README's comparison with other methods.
//
// The published values are embedded (paper_results.json, read by Paper).
// BuildReport groups CategoryRuns, one per evaluated category and seed,
// into a Report, which writes itself as aligned text, Markdown, CSV or
// JSON. Everything here is pure Go: runs in, text out; it does not need
// the native libtorch library.
package report
