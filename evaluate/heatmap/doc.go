// Package heatmap draws anomaly maps over the images they score: the map,
// resized to the image with bilinear interpolation and coloured with the
// "jet" colour map, is blended over the picture, with an optional strip of
// text below it (a title, the anomaly score and the verdict against a
// threshold) and an optional colour bar to its right. Write stores the
// result as a PNG file through internal/atomicfile.
//
// The package is pure Go and does not need the native libtorch library.
package heatmap
