package models_test

import (
	"errors"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

const (
	dsName = "mvtec_loco_anomaly_detection"
	catA   = "pushpins"
)

func load(root string) error {
	m, err := models.LoadEfficientAD(root, models.Small, dsName, catA, 256, tb.CPU)
	m.Close()
	return err
}

// TestMixedModelRefused: a category folder whose update stopped half way
// (one file newer than the manifest, or the manifest still marked
// incomplete) does not load; without a manifest, as the reference's
// folders, it does.
func TestMixedModelRefused(t *testing.T) {
	root := t.TempDir()
	testtree.RandomModel(t, root, dsName, catA, 1)
	if err := load(root); err != nil {
		t.Fatal(err)
	}
	dir := models.Layout{Root: root, Size: models.Small}.CategoryDir(dsName, catA)
	manifest, err := os.ReadFile(filepath.Join(dir, models.ManifestFile))
	if err != nil {
		t.Fatal(err)
	}
	// A retrain killed after writing the new student but before the rest.
	other := t.TempDir()
	testtree.RandomModel(t, other, dsName, catA, 2)
	odir := models.Layout{Root: other, Size: models.Small}.CategoryDir(dsName, catA)
	data, err := os.ReadFile(filepath.Join(odir, models.StudentFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, models.StudentFile), data, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := load(root); !errors.Is(err, models.ErrMixedModel) || !strings.Contains(err.Error(), "student.pt is not the file written with the others") {
		t.Errorf("new student with the old set: %v", err)
	}
	// The manifest Save writes first, before replacing any file.
	if err := os.WriteFile(filepath.Join(dir, models.ManifestFile), []byte(`{"format":1,"complete":false,"files":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := load(root); !errors.Is(err, models.ErrMixedModel) || !strings.Contains(err.Error(), "did not finish") {
		t.Errorf("interrupted update: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, models.ManifestFile), manifest[:len(manifest)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := load(root); !errors.Is(err, models.ErrMixedModel) {
		t.Errorf("truncated manifest: %v", err)
	}
	testtree.Unseal(t, root, dsName, catA)
	if err := load(root); err != nil {
		t.Errorf("folder without a manifest: %v", err)
	}
}

// TestNonFiniteWeightsRefused: NaN or infinite weights, statistics or
// quantiles, and quantiles that cannot normalise a map, do not load.
func TestNonFiniteWeightsRefused(t *testing.T) {
	cases := []struct {
		file, key string
		v         float32
		want      string
	}{
		{models.StudentFile, "conv1.weight", float32(math.NaN()), `student.pt: key "conv1.weight": non-finite values`},
		{models.AutoEncoderFile, "encoder.enconv1.bias", float32(math.Inf(1)), `autoencoder.pt: key "encoder.enconv1.bias": non-finite values`},
		{models.SigmaFile, "", float32(math.NaN()), "sigma.pt: non-finite values"},
		{models.QuantileFile, models.QuantileStudentB, float32(math.Inf(-1)), `key "q_b_student" is -Inf`},
		{models.QuantileFile, models.QuantileAutoEncoderB, 0, "q_b_autoencoder = 0 is not above q_a_autoencoder = 0"},
	}
	for _, c := range cases {
		root := t.TempDir()
		testtree.RandomModel(t, root, dsName, catA, 1)
		testtree.Unseal(t, root, dsName, catA)
		path := filepath.Join(models.Layout{Root: root, Size: models.Small}.CategoryDir(dsName, catA), c.file)
		testtree.Poison(t, path, c.key, c.v)
		if err := load(root); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %s = %v: %v, want %q", c.file, c.key, c.v, err, c.want)
		}
	}
}

func TestCheckImgSize(t *testing.T) {
	for _, n := range []int{128, 256, 512} {
		if err := models.CheckImgSize(n); err != nil {
			t.Errorf("%d: %v", n, err)
		}
	}
	for _, n := range []int{-1, 0, 100, 130, 1 << 20} {
		if err := models.CheckImgSize(n); err == nil {
			t.Errorf("%d accepted", n)
		}
	}
}
