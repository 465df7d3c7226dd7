package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
	"github.com/puad-go/puad/training"
)

func TestTrainErrors(t *testing.T) {
	root := filepath.Join(testRoot, "train-errors")
	data := testtree.Category(t, filepath.Join(root, "data"), loco, "tray", synth.VariantTray, 7)
	modelsDir := filepath.Join(root, "models")
	imagenet := filepath.Join(root, "imagenet")
	os.MkdirAll(imagenet, 0o755)
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"missing WRN weights", []string{"train", "teacher", imagenet, modelsDir, "--wrn-weights", filepath.Join(root, "none.pth")}, "wide_resnet101_2-32ee1156.pth"},
		{"no dataset", []string{"train", "student", "none", modelsDir}, "--dataset"},
		{"no teacher", []string{"train", "student", "none", modelsDir, "--dataset", data, "--device", "cpu"}, "teacher"},
		{"bad size", []string{"train", "student", "none", modelsDir, "--dataset", data, "--size", "xl"}, "size"},
		{"bad iterations", []string{"train", "student", "none", modelsDir, "--dataset", data, "--iterations", "0"}, "--iterations"},
		{"small image", []string{"train", "student", "none", modelsDir, "--dataset", data, "--img-size", "64", "--device", "cpu"}, "128"},
	}
	if !tb.CUDAAvailable() {
		cases = append(cases, struct {
			name string
			args []string
			want string
		}{"no CUDA", []string{"train", "student", "none", modelsDir, "--dataset", data, "--device", "cuda"}, "CUDA is not available"})
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, stderr, code := runPuad(t, c.args...)
			if code == 0 || !strings.Contains(stderr, c.want) {
				t.Errorf("exit %d, stderr %q; want a failure mentioning %q", code, stderr, c.want)
			}
		})
	}
}

// TestTrainStudentCommand runs `puad train student` for one iteration on
// tiny images without ImageNet and checks its output and files.
func TestTrainStudentCommand(t *testing.T) {
	root := filepath.Join(testRoot, "train-student")
	data := testtree.Category(t, filepath.Join(root, "data"), loco, "tray", synth.VariantTray, 8)
	modelsDir := filepath.Join(root, "models")
	if _, err := training.RandomTeacher(modelsDir, models.Small, 3, false); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runPuad(t, "train", "student", "none", modelsDir, "--dataset", data,
		"--iterations", "1", "--img-size", "128", "--device", "cpu", "--quiet")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, "without the ImageNet penalty") {
		t.Errorf("no warning about the ImageNet penalty on stderr: %q", stderr)
	}
	want := []string{
		`auroc score = [0-9.e-]+`,
		`logical_anomalies auroc score = [0-9.e-]+`,
		`structural_anomalies auroc score = [0-9.e-]+`,
		`model saved to .*/s_size/` + loco + `/tray \(final loss [0-9.e-]+\)`,
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != len(want) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), len(want), stdout)
	}
	for i, w := range want {
		if !regexp.MustCompile("^" + w + "$").MatchString(lines[i]) {
			t.Errorf("line %d = %q, want %s", i+1, lines[i], w)
		}
	}
	dir := models.Layout{Root: modelsDir, Size: models.Small}.CategoryDir(loco, "tray")
	results, err := os.ReadFile(filepath.Join(dir, "results.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if string(results) != strings.Join(lines[:3], "\n")+"\n" {
		t.Errorf("results.txt:\n%s\nstdout:\n%s", results, stdout)
	}
}
