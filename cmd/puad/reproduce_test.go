package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/internal/reproduce"
	"github.com/puad-go/puad/internal/testtree"
)

// TestReproduceCommand runs `puad reproduce` twice on a LOCO-like tree
// with one evaluable category and one of the paper's categories absent: the
// tables, the written files and one line per category on stderr, the second
// time from the kept result. A global flag after the arguments is accepted.
func TestReproduceCommand(t *testing.T) {
	root := t.TempDir()
	data, modelDir, out := filepath.Join(root, "data"), filepath.Join(root, "models"), filepath.Join(root, "out")
	testtree.Category(t, data, loco, "pushpins", synth.VariantPins, 2)
	testtree.RandomModel(t, modelDir, loco, "pushpins", 2)
	args := []string{"reproduce", "--data", data, "--models", modelDir, "--out", out, "--device", "cpu",
		"--categories", "pushpins,screw_bag", "-q", "--threads", "2"}
	for i, want := range []string{"efficient_ad auroc ", "(kept from an earlier run; --force redoes it)"} {
		stdout, stderr, code := runPuad(t, args...)
		if code != 0 {
			t.Fatalf("run %d: exit %d: %s", i+1, code, stderr)
		}
		lines := strings.Split(strings.TrimSpace(stderr), "\n")
		if len(lines) != 2 || !strings.HasPrefix(lines[0], "[1/2] "+loco+"/pushpins (s): efficient_ad auroc ") || !strings.Contains(lines[0], want) ||
			!strings.HasPrefix(lines[1], "[2/2] "+loco+"/screw_bag (s): missing: category folder not found") {
			t.Errorf("run %d: stderr lines %q", i+1, lines)
		}
		for _, s := range []string{"MVTec LOCO AD: AUROC ×100", "pushpins", "\nwritten: " + strings.Join(reproduce.ReportFiles(out), ", ") + "\n"} {
			if !strings.Contains(stdout, s) {
				t.Errorf("run %d: output lacks %q:\n%s", i+1, s, stdout)
			}
		}
	}
	for _, f := range reproduce.ReportFiles(out) {
		if info, err := os.Stat(f); err != nil || info.Size() == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}

// TestReproduceFlags checks the command line: --train needs its inputs and
// fails before any work when they are missing.
func TestReproduceFlags(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	if err := os.MkdirAll(filepath.Join(data, loco), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--train"}, "--train needs --imagenet PATH and --wrn-weights FILE"},
		{[]string{"--train", "--imagenet", filepath.Join(root, "absent"), "--wrn-weights", filepath.Join(root, "wrn.pth")}, "--imagenet " + filepath.Join(root, "absent") + ": not a folder"},
		{[]string{"--train", "--imagenet", root, "--wrn-weights", filepath.Join(root, "wrn.pth")}, "wide_resnet101_2"},
		{[]string{"--size", "s,x"}, `"x"`},
		{[]string{"--seeds", "0,a"}, `--seeds: "a"`},
		{[]string{"--device", "tpu"}, `"tpu"`},
		{[]string{"--data", root}, "neither mvtec_loco_anomaly_detection nor mvtec_anomaly_detection"},
	} {
		app := newApp()
		args := append([]string{"puad", "reproduce", "--data", data, "--models", filepath.Join(root, "models"), "--out", filepath.Join(root, "out"), "-q"}, c.args...)
		err := app.Run(interspersed(app, args))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: %v, want %q", c.args, err, c.want)
		}
	}
}
