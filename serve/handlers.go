package serve

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"io"
	"math"
	"mime"
	"net/http"
	"strconv"
	"time"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/detector"
	"github.com/puad-go/puad/evaluate/stats"
)

// Timings are the stages of a prediction request, in milliseconds.
type Timings struct {
	Read      float64 `json:"read"`      // receiving the body
	Decode    float64 `json:"decode"`    // decoding and resizing the image
	Queue     float64 `json:"queue"`     // waiting for the networks
	Inference float64 `json:"inference"` // the forward pass (shared by the batch)
	Total     float64 `json:"total"`
}

// Prediction is the answer to POST /v1/predict.
type Prediction struct {
	DatasetName string `json:"dataset_name"`
	Category    string `json:"category"`
	detector.Result
	// Verdict is "normal", "anomalous" or "invalid" (stats.Verdict): the
	// scores of an invalid verdict that are not numbers are null.
	Verdict string `json:"verdict"`
	// BatchSize is the number of images of the forward pass that scored it.
	BatchSize int     `json:"batch_size"`
	Timings   Timings `json:"timings_ms"`
	// HeatmapPNG is the overlay of the anomaly map, a base64 PNG, when
	// asked for with ?heatmap=png.
	HeatmapPNG string `json:"heatmap_png,omitempty"`
	// MaskPNG is the defect mask at the image's size, a base64 PNG, and
	// Regions its connected regions, when asked for with ?masks=png.
	MaskPNG string            `json:"mask_png,omitempty"`
	Regions []detector.Region `json:"regions,omitempty"`
}

// MarshalJSON writes the scores of an invalid prediction that are not
// numbers as null, which JSON can hold.
func (p Prediction) MarshalJSON() ([]byte, error) {
	type plain Prediction
	return stats.MarshalScored(plain(p), p.Invalid, p.EfficientAD, p.Mahalanobis, p.PUAD)
}

// Error is the body of every error answer.
type Error struct {
	Error  string `json:"error"`
	Status int    `json:"status"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, Error{Error: msg, Status: status})
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// handlePredict scores the image of the request body.
func (s *Server) handlePredict(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeError(w, http.StatusMethodNotAllowed, "use POST with an image as the body")
		return
	}
	q, err := parseQuery(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	b, status, msg := s.pick(q.category)
	if b == nil {
		writeError(w, status, msg)
		return
	}
	data, err := readImage(w, r, s.cfg.MaxBodyBytes)
	if err != nil {
		writeError(w, readStatus(err), err.Error())
		return
	}
	read := time.Now()
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
	defer cancel()
	in, err := b.det.Decode(data)
	if err != nil {
		writeError(w, decodeStatus(err), err.Error())
		return
	}
	decoded := time.Now()
	j := &job{ctx: ctx, in: in, enqueued: decoded, done: make(chan outcome, 1)}
	if !b.submit(j) {
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, "too many images waiting: try again")
		return
	}
	var o outcome
	select {
	case o = <-j.done:
	case <-ctx.Done():
		o.err = ctx.Err()
	}
	if o.err != nil {
		s.predictFailed(w, r, o.err)
		return
	}
	if q.threshold != nil {
		o.res = o.res.WithThreshold(*q.threshold)
	}
	p := Prediction{DatasetName: b.det.DatasetName(), Category: b.det.Category(), Result: o.res,
		Verdict: o.res.Verdict().String(), BatchSize: o.batchSize}
	if err := addImages(&p, b.det, in, q); err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	p.Timings = Timings{Read: ms(read.Sub(start)), Decode: ms(decoded.Sub(read)), Queue: ms(o.started.Sub(decoded)),
		Inference: ms(o.finished.Sub(o.started)), Total: ms(time.Since(start))}
	writeJSON(w, http.StatusOK, p)
}

// predictQuery is what the query string of a prediction asks for.
type predictQuery struct {
	category  string
	heatmap   bool
	masks     bool
	threshold *float64 // replaces the detector's for this request
}

func parseQuery(r *http.Request) (predictQuery, error) {
	v := r.URL.Query()
	q := predictQuery{category: v.Get("category")}
	switch h := v.Get("heatmap"); h {
	case "":
	case "png":
		q.heatmap = true
	default:
		return q, errors.New("heatmap: the only format is png")
	}
	switch m := v.Get("masks"); m {
	case "":
	case "png":
		q.masks = true
	default:
		return q, errors.New("masks: the only format is png")
	}
	if t := v.Get("threshold"); t != "" {
		th, err := strconv.ParseFloat(t, 64)
		if err != nil || math.IsNaN(th) || math.IsInf(th, 0) {
			return q, errors.New("threshold: want a finite number")
		}
		q.threshold = &th
	}
	return q, nil
}

// predictFailed answers a request whose scoring did not complete.
func (s *Server) predictFailed(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case r.Context().Err() != nil:
		writeError(w, 499, "the client went away") // nobody reads it; logged as 499
	case errors.Is(err, context.DeadlineExceeded):
		writeError(w, http.StatusGatewayTimeout, "timed out after "+s.cfg.Timeout.String())
	case errors.Is(err, detector.ErrClosed):
		writeError(w, http.StatusServiceUnavailable, "shutting down")
	default:
		s.cfg.Logger.Error("prediction failed", "err", err)
		writeError(w, http.StatusInternalServerError, "prediction failed: "+err.Error())
	}
}

// pick returns the batcher of the category asked for; with one category
// loaded the name may be left out.
func (s *Server) pick(name string) (*batcher, int, string) {
	if name == "" {
		if len(s.names) == 1 {
			return s.batchers[s.names[0]], 0, ""
		}
		return nil, http.StatusBadRequest, "several categories are served: name one with ?category="
	}
	b, ok := s.batchers[name]
	if !ok {
		return nil, http.StatusNotFound, "unknown category"
	}
	return b, 0, ""
}

// errNoFile is a multipart form without a file.
var errNoFile = errors.New("the form has no file")

// readImage returns the image bytes of the body: the body itself, or the
// first file of a multipart/form-data body. At most limit bytes are read.
func readImage(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	body := http.MaxBytesReader(w, r.Body, limit)
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "multipart/form-data" {
		return io.ReadAll(body)
	}
	r.Body = body
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, err
	}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return nil, errNoFile
		}
		if err != nil {
			return nil, err
		}
		if part.FileName() != "" {
			data, err := io.ReadAll(part)
			part.Close()
			return data, err
		}
		part.Close()
	}
}

// readStatus is the status of a body that could not be read.
func readStatus(err error) int {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// decodeStatus is the status of an image that could not be decoded.
func decodeStatus(err error) int {
	var tooLarge *datasets.ImageTooLargeError
	switch {
	case errors.As(err, &tooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, datasets.ErrUnsupportedFormat), errors.Is(err, datasets.ErrUnsupportedFeature):
		return http.StatusUnsupportedMediaType
	}
	return http.StatusBadRequest
}

// addImages adds the heatmap and the defect mask the query asks for; an
// invalid prediction, from a broken model or fit, gets none.
func addImages(p *Prediction, d *detector.Detector, in detector.Input, q predictQuery) error {
	if p.Invalid {
		return nil
	}
	if q.heatmap {
		img, err := d.Heatmap(in, p.Result, d.Category(), q.masks)
		if err != nil {
			return err
		}
		if p.HeatmapPNG, err = base64PNG(img); err != nil {
			return err
		}
	}
	if q.masks {
		mask, regions, err := d.Defects(p.Result)
		if err != nil {
			return err
		}
		if p.MaskPNG, err = base64PNG(mask); err != nil {
			return err
		}
		p.Regions = regions
	}
	return nil
}

// base64PNG encodes img as a base64 PNG.
func base64PNG(img image.Image) (string, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// categoryInfo describes a served category.
type categoryInfo struct {
	Name        string  `json:"name"`
	DatasetName string  `json:"dataset_name"`
	Threshold   float64 `json:"threshold"`
	ImgSize     int     `json:"img_size"`
}

func (s *Server) handleCategories(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	var cats []categoryInfo
	for _, n := range s.names {
		d := s.batchers[n].det
		cats = append(cats, categoryInfo{Name: n, DatasetName: d.DatasetName(), Threshold: d.Threshold(), ImgSize: d.ImgSize()})
	}
	writeJSON(w, http.StatusOK, map[string]any{"categories": cats})
}

func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	if allowGet(w, r) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}
}

// handleReady says whether the models are loaded and the service takes
// requests (not while shutting down).
func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if !allowGet(w, r) {
		return
	}
	if s.draining.Load() {
		writeError(w, http.StatusServiceUnavailable, "shutting down")
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ready", "categories": s.names})
}

// allowGet answers 405 to methods other than GET and HEAD.
func allowGet(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	writeError(w, http.StatusMethodNotAllowed, "use GET")
	return false
}
