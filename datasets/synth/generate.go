package synth

import (
	"fmt"
	"image"
	"image/png"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/internal/atomicfile"
)

// Entry describes one image written by Generate.
type Entry struct {
	// Set is the group of the image.
	Set Set
	// Index is the position of the image in its set; the file stem is
	// Index formatted as %03d.
	Index int
	// Path is the image file.
	Path string
	// MaskPath is the ground-truth mask file; empty unless Set is
	// SetTestStructural.
	MaskPath string
	// Anomaly names the kind of anomaly; empty for normal images.
	Anomaly string
}

// Summary describes a category written by Generate.
type Summary struct {
	// Dir is <root>/<DatasetName>/<Category>.
	Dir string
	// Config is the configuration with defaults filled in.
	Config Config
	// Entries lists every image, ordered by set (in the order of Sets) and
	// then by index.
	Entries []Entry
	// Counts is the number of images written per set.
	Counts map[Set]int
}

// Stem returns the file stem of image index: "000", "001", ...
func Stem(index int) string { return fmt.Sprintf("%03d", index) }

// Generate renders the category described by cfg and writes it below root
// in the MVTec LOCO AD layout (see the package documentation). Each file is
// written to a temporary file in its directory and renamed into place, so a
// reader never sees a partial PNG. Existing files with the same names are
// replaced; other files are left alone. Images are rendered in parallel.
func Generate(root string, cfg Config) (Summary, error) {
	cfg, err := cfg.Normalized()
	if err != nil {
		return Summary{}, err
	}
	dir := filepath.Join(root, cfg.DatasetName, cfg.Category)
	sum := Summary{Dir: dir, Config: cfg, Counts: map[Set]int{}}
	for _, s := range Sets() {
		n := cfg.Count(s)
		if n == 0 {
			continue
		}
		setDir := filepath.Join(dir, s.Split(), s.Label())
		if err := os.MkdirAll(setDir, 0o755); err != nil {
			return Summary{}, fmt.Errorf("synth: create %s: %w", setDir, err)
		}
		for i := range n {
			e := Entry{Set: s, Index: i, Path: filepath.Join(setDir, Stem(i)+".png")}
			if s == SetTestStructural {
				maskDir := filepath.Join(dir, datasets.GroundTruthDir, s.Label(), Stem(i))
				if err := os.MkdirAll(maskDir, 0o755); err != nil {
					return Summary{}, fmt.Errorf("synth: create %s: %w", maskDir, err)
				}
				e.MaskPath = filepath.Join(maskDir, "000.png")
			}
			sum.Entries = append(sum.Entries, e)
		}
		sum.Counts[s] = n
	}

	workers := min(runtime.GOMAXPROCS(0), len(sum.Entries))
	errs := make([]error, len(sum.Entries))
	var wg sync.WaitGroup
	var mu sync.Mutex
	next, failed := 0, false
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				stop := failed || i >= len(sum.Entries)
				mu.Unlock()
				if stop {
					return
				}
				e := &sum.Entries[i]
				if errs[i] = writeEntry(cfg, e); errs[i] != nil {
					mu.Lock()
					failed = true
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return Summary{}, err
		}
	}
	return sum, nil
}

// writeEntry renders one image and writes it, and its mask if any.
func writeEntry(cfg Config, e *Entry) error {
	smp, err := Render(cfg, e.Set, e.Index)
	if err != nil {
		return err
	}
	e.Anomaly = smp.Anomaly
	if err := writePNG(e.Path, smp.Image); err != nil {
		return err
	}
	if e.MaskPath != "" {
		if err := writePNG(e.MaskPath, smp.Mask); err != nil {
			return err
		}
	}
	return nil
}

// writePNG encodes img as a PNG file at path, atomically.
func writePNG(path string, img image.Image) error {
	if err := atomicfile.Write(path, atomicfile.DefaultPerm, func(w io.Writer) error { return png.Encode(w, img) }); err != nil {
		return fmt.Errorf("synth: %w", err)
	}
	return nil
}
