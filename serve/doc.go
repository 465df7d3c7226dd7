// Package serve is the HTTP service of `puad serve`: it scores images
// posted to POST /v1/predict with the detectors of one or more categories,
// gathering concurrent requests of a category into micro-batches, and
// exposes /healthz, /readyz, Prometheus metrics at /metrics and a page at /
// to try it in a browser.
//
// Requests never reach the file system: an image travels in the request
// body (raw, or as the file of a multipart form) and is decoded in memory
// within the body and pixel limits. Every failure is answered with a JSON
// error and a 4xx or 5xx status; the service keeps serving.
package serve
