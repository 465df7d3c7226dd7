package synth

import (
	"fmt"
	"io"
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
	return nil
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
