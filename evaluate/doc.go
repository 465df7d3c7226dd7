// Package evaluate runs EfficientAD and PUAD on images with libtorch and
// evaluates them on a dataset category, as the Python reference's main.py
// does.
//
//   - Scorer runs the three networks of an EfficientAD model on a batch and
//     gives, per image, the anomaly score, the PUAD feature vector (the
//     pooled output of the student or of the normalised teacher) and, when
//     asked, the anomaly map. RunImages feeds it a list of image files,
//     decoding and resizing them in parallel.
//   - Fit fits PUAD on a category's training and validation images (the
//     Gaussian of the training features, the z-score statistics of the
//     validation scores); PUADModel.FitFile describes the result as a
//     stats.FitFile, which holds what scoring new images needs.
//   - Evaluate scores the test images and returns EfficientAD's and PUAD's
//     image AUROC, overall and per anomaly class; when the category has
//     ground truth it also streams each test map, resized to its image's
//     size (FullMap), into the pixel-level metrics of evaluate/localize, and
//     with Options.MapsDir writes the maps as float TIFFs (WriteMap),
//     having refused first, with a *MapCollisionError, test images whose
//     maps would be one file (CheckMapPaths), and with Options.MasksDir
//     their defect masks (evaluate/defectmask).
//     RunFromResult turns a Result into a row of the reproduction report.
//   - PUADModel.ScoreLabelled scores labelled images as Evaluate scores
//     test images; TestFitFile and FolderFitFile describe a fit whose
//     threshold is chosen on the test images or on a labelled folder by an
//     objective (stats.ChooseLabelledThreshold).
//
// This package needs the native libtorch library through cgo. The pure-Go
// parts live in subpackages that build without it:
//
//   - evaluate/metrics: image- and pixel-level detection metrics (AUROC as
//     scikit-learn computes it, per-class AUROC; pixel AUROC, AU-PRO and
//     AU-sPRO as MVTec's evaluation scripts define them).
//   - evaluate/stats: the PUAD statistics (Ledoit-Wolf Gaussian,
//     Mahalanobis distance, z-score fusion, decision threshold) and the fit
//     file.
//   - evaluate/localize: a category's pixel AUROC, AU-PRO and AU-sPRO from
//     full-size maps and its ground truth, and the maps' file layout.
//   - evaluate/floattiff: anomaly maps as 32-bit float TIFF files.
//   - evaluate/report: the tables of the PUAD README beside measured runs.
//   - evaluate/heatmap: anomaly maps drawn over their images.
//   - evaluate/defectmask: binary defect masks of anomaly maps and their
//     PNG files.
package evaluate
