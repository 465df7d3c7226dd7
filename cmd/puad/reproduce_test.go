package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/internal/reproduce"
	"github.com/puad-go/puad/internal/shard"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
)

// TestReproduceCommand runs `puad reproduce` twice on a LOCO-like tree
// with one evaluable category and one of the paper's categories absent: the
// tables, the written files and one line per category on stderr, the second
// time from the kept result. A global flag after the arguments is accepted.
func TestReproduceCommand(t *testing.T) {
	clearArrayEnv(t)
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
	clearArrayEnv(t)
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

// clearArrayEnv unsets the job-array variables that make `puad reproduce`
// a shard, for the test and the commands it starts.
func clearArrayEnv(t *testing.T) {
	for _, v := range []string{shard.SlurmTaskID, shard.SlurmTaskCount, shard.SlurmTaskMin, shard.SlurmTaskMax,
		shard.SlurmTaskStep, shard.KubernetesIndex, shard.CountVar} {
		t.Setenv(v, "")
	}
}

// TestReproduceShardsCommand runs `puad reproduce` on three categories
// (one evaluated, one whose model file is broken, one missing) without
// shards, as the tasks of a Slurm array numbered from 1 and as the pods of
// a Kubernetes Indexed Job, merges the shards, and compares: same output,
// same files, byte for byte, and the exit status of a failed category run.
func TestReproduceShardsCommand(t *testing.T) {
	clearArrayEnv(t)
	root := t.TempDir()
	data, modelDir := filepath.Join(root, "data"), filepath.Join(root, "models")
	testtree.Category(t, data, loco, "pushpins", synth.VariantPins, 2)
	testtree.RandomModel(t, modelDir, loco, "pushpins", 2)
	testtree.Category(t, data, loco, "breakfast_box", synth.VariantTray, 1)
	testtree.RandomModel(t, modelDir, loco, "breakfast_box", 1)
	broken := filepath.Join(models.Layout{Root: modelDir, Size: models.Small}.CategoryDir(loco, "breakfast_box"), models.StudentFile)
	if err := os.WriteFile(broken, []byte("not a model"), 0o644); err != nil {
		t.Fatal(err)
	}
	reproduceArgs := func(out string, extra ...string) []string {
		return append([]string{"reproduce", "--data", data, "--models", modelDir, "--out", out, "--device", "cpu",
			"--categories", "breakfast_box,pushpins,screw_bag", "-q", "--threads", "2"}, extra...)
	}
	single := filepath.Join(root, "single")
	wantOut, stderr, code := runPuad(t, reproduceArgs(single)...)
	if code != 1 || !strings.Contains(stderr, "1 category runs failed: "+loco+"/breakfast_box (s)") {
		t.Fatalf("single run: exit %d: %s", code, stderr)
	}
	wantFiles := testtree.Files(t, single)

	var slurm, kube []string
	for id := 1; id <= 2; id++ { // --array=1-2
		t.Setenv(shard.SlurmTaskID, fmt.Sprint(id))
		t.Setenv(shard.SlurmTaskCount, "2")
		t.Setenv(shard.SlurmTaskMin, "1")
		t.Setenv(shard.SlurmTaskMax, "2")
		out := filepath.Join(root, fmt.Sprintf("slurm%d", id))
		stdout, stderr, code := runPuad(t, reproduceArgs(out)...)
		if want := fmt.Sprintf("shard %d/2: ", id-1); code != 0 || !strings.HasPrefix(stdout, want) {
			t.Fatalf("Slurm task %d: exit %d, %q, want %q: %s", id, code, stdout, want, stderr)
		}
		slurm = append(slurm, out)
	}
	clearArrayEnv(t)
	for k := 0; k < 3; k++ {
		t.Setenv(shard.KubernetesIndex, fmt.Sprint(k))
		out := filepath.Join(root, fmt.Sprintf("kube%d", k))
		// The pods take the single run's kept result: one evaluation less.
		if err := os.CopyFS(filepath.Join(out, reproduce.RunsDir), os.DirFS(filepath.Join(single, reproduce.RunsDir))); err != nil {
			t.Fatal(err)
		}
		if stdout, stderr, code := runPuad(t, reproduceArgs(out, "--shard-count", "3")...); code != 0 {
			t.Fatalf("pod %d: exit %d: %s%s", k, code, stdout, stderr)
		}
		kube = append(kube, out)
	}
	clearArrayEnv(t)
	for _, dirs := range [][]string{slurm, kube} {
		out := filepath.Join(root, "merged"+filepath.Base(dirs[0]))
		stdout, stderr, code := runPuad(t, append([]string{"reproduce", "--merge", "--out", out, "-q"}, dirs...)...)
		if code != 1 || !strings.Contains(stderr, "1 category runs failed: "+loco+"/breakfast_box (s)") {
			t.Errorf("merge of %v: exit %d: %s", dirs, code, stderr)
		}
		if want := strings.ReplaceAll(wantOut, single, out); stdout != want {
			t.Errorf("merge of %v printed\n%s\nwant\n%s", dirs, stdout, want)
		}
		got := testtree.Files(t, out)
		if len(got) != len(wantFiles) {
			t.Errorf("merge of %v: %d files, want %d", dirs, len(got), len(wantFiles))
		}
		for name, data := range wantFiles {
			if !bytes.Equal(got[name], data) {
				t.Errorf("merge of %v: %s differs", dirs, name)
			}
		}
	}
}

// TestReproduceShardFlags checks the errors of --shard, --shard-count,
// the array variables and --merge, with their hints.
func TestReproduceShardFlags(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	if err := os.MkdirAll(filepath.Join(data, loco), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		env  map[string]string
		args []string
		want string
	}{
		{nil, []string{"--shard", "2/2"}, "--shard: shard 2/2: want an index from 0 to 1"},
		{nil, []string{"--shard", "1"}, `--shard: "1": want K/N`},
		{nil, []string{"--shard", "0/2", "--shard-count", "3"}, "--shard 0/2 and --shard-count 3 disagree"},
		{nil, []string{"--shard-count", "2"}, "--shard-count needs JOB_COMPLETION_INDEX"},
		{nil, []string{"--shard-count", "0"}, "--shard-count 0: want the number of shards"},
		{map[string]string{shard.SlurmTaskID: "x", shard.SlurmTaskCount: "2"}, nil, `SLURM_ARRAY_TASK_ID="x": not a non-negative integer`},
		{map[string]string{shard.SlurmTaskID: "1", shard.SlurmTaskCount: "2", shard.SlurmTaskStep: "2"}, nil, "SLURM_ARRAY_TASK_STEP=2"},
		{map[string]string{shard.KubernetesIndex: "0"}, nil, "JOB_COMPLETION_INDEX=0: the number of shards is unknown (PUAD_SHARD_COUNT is not set) (give --shard-count N, the Job's completions, or set PUAD_SHARD_COUNT)"},
		{map[string]string{shard.KubernetesIndex: "0", shard.CountVar: "two"}, nil, `PUAD_SHARD_COUNT="two"`},
		{map[string]string{shard.KubernetesIndex: "3"}, []string{"--shard-count", "3"}, "JOB_COMPLETION_INDEX=3: shard 3/3"},
		{nil, []string{"--merge", root}, "--merge takes the shards' folders and --out, not --data"},
		{nil, []string{"--shard", "0/1", "--merge", root}, "not --data"},
	} {
		clearArrayEnv(t)
		for k, v := range c.env {
			t.Setenv(k, v)
		}
		app := newApp()
		args := []string{"puad", "reproduce", "--data", data, "--models", filepath.Join(root, "models"), "--out", filepath.Join(root, "out"), "-q"}
		err := app.Run(interspersed(app, append(args, c.args...)))
		if err == nil || !strings.Contains(explain(err), c.want) {
			t.Errorf("%v %v: %v, want %q", c.env, c.args, err, c.want)
		}
	}
	// Merge's refusals come with a hint.
	clearArrayEnv(t)
	merge := func(dirs ...string) error {
		app := newApp()
		return app.Run(interspersed(app, append([]string{"puad", "reproduce", "--merge", "--out", filepath.Join(root, "out"), "-q"}, dirs...)))
	}
	if err := merge(); err == nil || err.Error() != "--merge needs the output folders of the shards as arguments" {
		t.Errorf("merge of nothing: %v", err)
	}
	err := merge(data)
	if msg := explain(err); !errors.Is(err, reproduce.ErrNotShard) || !strings.HasSuffix(msg, "(--merge takes the --out folders of puad reproduce --shard runs)") {
		t.Errorf("merge of a plain folder: %v", msg)
	}
}
