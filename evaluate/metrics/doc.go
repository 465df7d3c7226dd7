// Package metrics scores anomaly detectors: image-level detection metrics
// computed as scikit-learn defines them, and pixel-level localisation
// metrics computed as the MVTec benchmarks define them.
//
// The image-level area under the ROC curve (AUROC) reproduces
// roc_auc_score bit for bit: the same curve, the same trapezoids and numpy's
// order of summation (PairwiseSum). PerClassAUROC splits it by anomaly
// class, each class against the normal images, as the PUAD reference reports
// it.
//
// The package is pure Go and does not need the native libtorch library.
package metrics
