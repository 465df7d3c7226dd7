// Package report turns evaluation outcomes into the tables of the PUAD
// README: per dataset, EfficientAD size and feature extractor, each
// category's image AUROC of EfficientAD and of PUAD beside the published
// value and the difference, a mean row, for MVTec LOCO AD the AUROC per
// anomaly type (logical and structural), on which the paper's claim rests,
// and the README's comparison with other methods.
//
// The published values are embedded (paper_results.json, read by Paper).
// Of EfficientAD's localisation results only what its authors published is
// recorded there, each value with its source (so far the mean AU-PRO of
// EfficientAD-M on MVTec AD), and the text and Markdown tables name the
// source beside the table.
// BuildReport groups CategoryRuns, one per evaluated category and seed,
// into a Report, which writes itself as aligned text, Markdown, CSV or
// JSON. Everything here is pure Go: runs in, text out; it does not need
// the native libtorch library.
package report
