package synth

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/puad-go/puad/datasets"
	"github.com/puad-go/puad/internal/atomicfile"
)

// WritePlain lays out the images of the generated category in categoryDir
// as a plain folder at dst, the shape a user's own product images take:
// the training images at the top, validation/ with the validation images
// (when the category has them) and test/ with the test classes. Files are
// hard-linked where the file system allows it, copied otherwise; dst must
// not exist yet. Ground-truth masks are left out.
func WritePlain(categoryDir, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return fmt.Errorf("plain folder %s: already exists", dst)
	}
	pairs := []struct{ from, to string }{
		{filepath.Join(datasets.TrainDir, datasets.NormalClass), ""},
		{filepath.Join(datasets.ValidationDir, datasets.NormalClass), datasets.ValidationDir},
	}
	classes, err := os.ReadDir(filepath.Join(categoryDir, datasets.TestDir))
	if err != nil {
		return fmt.Errorf("plain folder %s: %w", dst, err)
	}
	for _, c := range classes {
		rel := filepath.Join(datasets.TestDir, c.Name())
		pairs = append(pairs, struct{ from, to string }{rel, rel})
	}
	for _, p := range pairs {
		if err := linkFiles(filepath.Join(categoryDir, p.from), filepath.Join(dst, p.to)); err != nil {
			return fmt.Errorf("plain folder %s: %w", dst, err)
		}
	}
	// The ground truth goes along, so that pixel-level metrics apply too.
	if err := linkTree(filepath.Join(categoryDir, datasets.GroundTruthDir), filepath.Join(dst, datasets.GroundTruthDir)); err != nil {
		return fmt.Errorf("plain folder %s: %w", dst, err)
	}
	cfg := filepath.Join(categoryDir, datasets.DefectsConfigFile)
	if _, err := os.Stat(cfg); err == nil {
		if err := copyFile(cfg, filepath.Join(dst, datasets.DefectsConfigFile)); err != nil {
			return fmt.Errorf("plain folder %s: %w", dst, err)
		}
	}
	return nil
}

// linkTree is linkFiles for src and every folder below it; a missing src
// is skipped.
func linkTree(src, dst string) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if os.IsNotExist(err) && path == src {
			return filepath.SkipDir
		}
		if err != nil || !d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		return linkFiles(path, filepath.Join(dst, rel))
	})
}

// linkFiles links (or copies) the files of src into dst; a missing src is
// skipped.
func linkFiles(src, dst string) error {
	entries, err := os.ReadDir(src)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		if os.Link(from, to) == nil {
			continue
		}
		if err := copyFile(from, to); err != nil {
			return err
		}
	}
	return nil
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	return atomicfile.Write(to, atomicfile.DefaultPerm, func(w io.Writer) error {
		_, err := io.Copy(w, in)
		return err
	})
}
