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
	// MaskPaths are the ground-truth files of an anomalous image: its
	// channel PNGs (MasksLOCO) or its one mask (MasksMVTecAD); none for a
	// normal image.
	MaskPaths []string
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
	// DefectsConfig is the defects_config.json written (MasksLOCO with
	// anomalous test images); empty otherwise.
	DefectsConfig string
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
			sum.Entries = append(sum.Entries, Entry{Set: s, Index: i, Path: filepath.Join(setDir, Stem(i)+".png")})
		}
		sum.Counts[s] = n
	}
	if cfg.Masks == MasksLOCO && cfg.TestLogical+cfg.TestStructural > 0 {
		if err := writeDefectsConfig(dir, cfg.Variant); err != nil {
			return Summary{}, err
		}
		sum.DefectsConfig = filepath.Join(dir, datasets.DefectsConfigFile)
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
				if errs[i] = writeEntry(cfg, dir, e); errs[i] != nil {
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

// writeEntry renders one image and writes it, and its ground truth if any,
// into the category folder dir.
func writeEntry(cfg Config, dir string, e *Entry) error {
	smp, err := Render(cfg, e.Set, e.Index)
	if err != nil {
		return err
	}
	e.Anomaly = smp.Anomaly
	if err := writePNG(e.Path, smp.Image); err != nil {
		return err
	}
	if len(smp.Channels) == 0 {
		return nil
	}
	gtDir := filepath.Join(dir, datasets.GroundTruthDir, e.Set.Label())
	if cfg.Masks == MasksMVTecAD {
		e.MaskPaths = []string{filepath.Join(gtDir, Stem(e.Index)+datasets.MaskSuffix)}
		return writeMasks(e.MaskPaths, []*image.Gray{smp.Mask})
	}
	value := DefectPixelValue(smp.Anomaly)
	chans := make([]*image.Gray, len(smp.Channels))
	for i, ch := range smp.Channels {
		chans[i] = image.NewGray(ch.Rect)
		for j, p := range ch.Pix {
			if p != 0 {
				chans[i].Pix[j] = value
			}
		}
		e.MaskPaths = append(e.MaskPaths, filepath.Join(gtDir, Stem(e.Index), Stem(i)+".png"))
	}
	return writeMasks(e.MaskPaths, chans)
}

// writeMasks writes masks[i] to paths[i], creating their folders.
func writeMasks(paths []string, masks []*image.Gray) error {
	for i, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("synth: create %s: %w", filepath.Dir(p), err)
		}
		if err := writePNG(p, masks[i]); err != nil {
			return err
		}
	}
	return nil
}

// writeDefectsConfig writes the variant's defects_config.json into dir.
func writeDefectsConfig(dir string, v Variant) error {
	data, err := defectsJSON(v)
	if err != nil {
		return fmt.Errorf("synth: defects config: %w", err)
	}
	if err := atomicfile.WriteFile(filepath.Join(dir, datasets.DefectsConfigFile), data, atomicfile.DefaultPerm); err != nil {
		return fmt.Errorf("synth: %w", err)
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
