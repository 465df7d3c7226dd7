// Package stats holds the statistics of PUAD and the file that stores
// them, reproducing the arithmetic of the Python reference (numpy and
// scikit-learn) so that scores agree with it:
//
//   - FitGaussian: the mean of the training feature vectors, scikit-learn's
//     Ledoit-Wolf shrunk covariance and numpy's Moore-Penrose
//     pseudo-inverse; Gaussian.Mahalanobis is PUAD's unpicturable anomaly
//     score.
//   - MeanStd, FitZScore and ZScore: means and standard deviations, in
//     float32 with numpy's order of summation where the reference works on
//     float32 scores, and the standardisation they define.
//   - FitFusion and Fusion: the sum of the standardised EfficientAD score
//     and Mahalanobis distance, the PUAD score.
//   - ChooseThreshold: the decision threshold on the PUAD score of the
//     validation images.
//   - FitFile, NewFitFile, SaveFit, LoadFit and ParseFit: a fitted PUAD
//     stored as puad_fit.json, with the digests of the model files it was
//     made with and every field validated on load, with typed errors
//     (ErrNoFit, FormatError, MismatchError, StaleError) for the cases a
//     caller must tell apart.
//
// The package is pure Go (gonum for the linear algebra) and does not need
// the native libtorch library.
package stats
