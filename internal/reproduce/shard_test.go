package reproduce

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/evaluate"
	"github.com/puad-go/puad/evaluate/report"
	"github.com/puad-go/puad/internal/shard"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// shardCase is a run of three category runs: breakfast_box fails (its
// stand-in training fails), pushpins is evaluated, screw_bag is missing.
func shardCase(t *testing.T) Config {
	t.Helper()
	root := t.TempDir()
	data, modelDir := filepath.Join(root, "data"), filepath.Join(root, "models")
	testtree.Category(t, data, loco, "pushpins", synth.VariantPins, 2)
	testtree.RandomModel(t, modelDir, loco, "pushpins", 2)
	for _, d := range []string{"train", "test"} {
		if err := os.MkdirAll(filepath.Join(data, loco, "breakfast_box", d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	saved := trainingHooks
	t.Cleanup(func() { trainingHooks = saved })
	trainingHooks = func(cfg Config) hooks {
		return hooks{prepareCategory: func(ctx context.Context, ref Category, modelRoot string, seed *int, size models.Size) (bool, error) {
			if ref.Category == "breakfast_box" {
				return false, errors.New("no images")
			}
			return false, nil
		}}
	}
	return Config{DataRoot: data, ModelRoot: modelDir, OutDir: filepath.Join(root, "single"), Sizes: []models.Size{models.Small},
		Extractor: evaluate.StudentExtractor, Device: tb.CPU, Categories: []string{"breakfast_box", "pushpins", "screw_bag"},
		Train: &TrainSettings{}}
}

// runShards runs the n shards of cfg, each into its own folder under dir,
// holding a copy of kept's results when kept is not empty.
func runShards(t *testing.T, cfg Config, dir string, n int, kept string) []string {
	t.Helper()
	var dirs []string
	for k := 0; k < n; k++ {
		c := cfg
		c.Shard = &shard.Spec{Index: k, Count: n}
		c.OutDir = filepath.Join(dir, fmt.Sprintf("shard%d", k))
		if kept != "" {
			if err := os.CopyFS(runsDir(c.OutDir), os.DirFS(runsDir(kept))); err != nil {
				t.Fatal(err)
			}
		}
		rep, err := Run(context.Background(), c)
		if err != nil {
			t.Fatalf("shard %d/%d: %v", k, n, err)
		}
		if want := (3 - k + n - 1) / n; len(rep.Runs) != want {
			t.Errorf("shard %d/%d ran %d category runs, want %d", k, n, len(rep.Runs), want)
		}
		if _, err := os.Stat(ReportFiles(c.OutDir)[0]); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("shard %d/%d wrote a report: %v", k, n, err)
		}
		dirs = append(dirs, c.OutDir)
	}
	return dirs
}

// TestShardsMerge: the shards of a run, merged, are the run without shards,
// file for file and byte for byte, its failed category run included.
func TestShardsMerge(t *testing.T) {
	cfg := shardCase(t)
	single, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := Failures(single); err == nil || !strings.Contains(err.Error(), "breakfast_box") {
		t.Fatalf("single run's failures: %v", err)
	}
	want := testtree.Files(t, cfg.OutDir)
	if len(want) != 4 {
		t.Fatalf("single run wrote %d files", len(want))
	}
	root := filepath.Dir(cfg.OutDir)
	for _, n := range []int{2, 3} {
		// Two shards evaluate; three take the single run's kept result
		// (one evaluation less), and copy only their own to the merge.
		kept := ""
		if n == 3 {
			kept = cfg.OutDir
		}
		dirs := runShards(t, cfg, filepath.Join(root, fmt.Sprint(n)), n, kept)
		out := filepath.Join(root, fmt.Sprintf("merged%d", n))
		// Any order of the folders.
		rep, err := Merge(append(dirs[1:], dirs[0]), out)
		if err != nil {
			t.Fatalf("%d shards: %v", n, err)
		}
		if err := Failures(rep); err == nil || err.Error() != Failures(single).Error() {
			t.Errorf("%d shards: failures %v", n, err)
		}
		got := testtree.Files(t, out)
		if len(got) != len(want) {
			t.Errorf("%d shards: files %v, want %v", n, keys(got), keys(want))
		}
		for name, data := range want {
			if !bytes.Equal(got[name], data) {
				t.Errorf("%d shards: %s differs:\n%s\nwant\n%s", n, name, got[name], data)
			}
		}
		if n == 3 {
			testMergeRefusals(t, cfg, dirs)
		}
	}
}

func keys(m map[string][]byte) []string {
	var k []string
	for name := range m {
		k = append(k, name)
	}
	return k
}

// testMergeRefusals checks Merge's refusals on copies of the three shards'
// folders; a refused merge writes nothing.
func testMergeRefusals(t *testing.T, cfg Config, dirs []string) {
	root := t.TempDir()
	cp := func(k int, edit func(m map[string]any, units *[]map[string]any)) string {
		dst := filepath.Join(root, fmt.Sprintf("copy%d-%d", k, len(mustRead(t, root))))
		if err := os.CopyFS(dst, os.DirFS(dirs[k])); err != nil {
			t.Fatal(err)
		}
		var m map[string]any
		var units []map[string]any
		readJSON(t, filepath.Join(dst, ManifestFile), &m)
		readJSON(t, filepath.Join(dst, UnitsFile), &units)
		edit(m, &units)
		writeJSON(t, filepath.Join(dst, ManifestFile), m)
		writeJSON(t, filepath.Join(dst, UnitsFile), units)
		return dst
	}
	unchanged := func(map[string]any, *[]map[string]any) {}
	pushpins := filepath.Join(RunsDir, "s_size", loco, "pushpins.student.json")
	noResult := cp(1, unchanged)
	if err := os.Remove(filepath.Join(noResult, pushpins)); err != nil {
		t.Fatal(err)
	}
	otherSize := cp(1, func(m map[string]any, _ *[]map[string]any) {
		m["fingerprint"] = "other"
		m["config"].(map[string]any)["sizes"] = []string{"m"}
	})
	empty := t.TempDir()
	for _, c := range []struct {
		name string
		dirs []string
		want error
		text string
	}{
		{"missing shard", []string{dirs[0], dirs[2]}, ErrShardMissing, "shard 1 of 3"},
		{"shard twice", []string{dirs[0], dirs[1], dirs[2], cp(1, unchanged)}, ErrShardTwice, "shard 1/3 is in"},
		{"another run", []string{dirs[0], otherSize, dirs[2]}, ErrDifferentRuns, "differ in the sizes"},
		{"other shard count", []string{dirs[0], filepath.Join(filepath.Dir(filepath.Dir(dirs[0])), "2", "shard1"), dirs[2]}, ErrDifferentRuns, "divided differently"},
		{"not a shard", []string{dirs[0], empty, dirs[2]}, ErrNotShard, "no shard.json"},
		{"unfinished", []string{dirs[0], cp(1, func(m map[string]any, _ *[]map[string]any) { m["complete"] = false }), dirs[2]}, ErrShardUnfinished, "shard 1/3"},
		{"unit missing", []string{dirs[0], cp(1, func(_ map[string]any, u *[]map[string]any) { *u = nil }), dirs[2]}, ErrUnitMissing, "category run 2 of 3"},
		{"unit twice", []string{dirs[0], cp(1, func(_ map[string]any, u *[]map[string]any) { *u = append(*u, (*u)[0]) }), dirs[2]}, ErrUnitTwice, "category run 2"},
		{"unit of another shard", []string{dirs[0], cp(1, func(_ map[string]any, u *[]map[string]any) { (*u)[0]["index"] = 2 }), dirs[2]}, ErrUnitTwice, "not one of shard 1/3's"},
		{"result file missing", []string{dirs[0], noResult, dirs[2]}, ErrUnitMissing, loco + "/pushpins (s)"},
		{"into a shard's folder", dirs, ErrFolderInUse, ""},
	} {
		out := filepath.Join(root, "out")
		if c.name == "into a shard's folder" {
			out = dirs[1]
		}
		_, err := Merge(c.dirs, out)
		if !errors.Is(err, c.want) || !strings.Contains(err.Error(), c.text) {
			t.Errorf("%s: %v, want %v with %q", c.name, err, c.want, c.text)
		}
		if _, err := os.Stat(filepath.Join(root, "out")); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: the refused merge wrote %v", c.name, err)
		}
	}
	// A shard refuses a folder holding another shard's output.
	c := cfg
	c.Shard, c.OutDir = &shard.Spec{Index: 2, Count: 3}, dirs[1]
	if _, err := Run(context.Background(), c); !errors.Is(err, ErrFolderInUse) || !strings.Contains(err.Error(), "(shard 1/3)") {
		t.Errorf("shard into another's folder: %v", err)
	}
}

func mustRead(t *testing.T, dir string) []os.DirEntry {
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func readJSON(t *testing.T, path string, v any) {
	data, err := os.ReadFile(path)
	if err == nil {
		err = json.Unmarshal(data, v)
	}
	if err != nil {
		t.Fatal(err)
	}
}

func writeJSON(t *testing.T, path string, v any) {
	data, err := json.Marshal(v)
	if err == nil {
		err = os.WriteFile(path, data, 0o644)
	}
	if err != nil {
		t.Fatal(err)
	}
}

// TestShardTeacher: a shard of several does not train the teacher its
// size shares; its category runs fail with the reason when it is missing.
func TestShardTeacher(t *testing.T) {
	root := t.TempDir()
	data := filepath.Join(root, "data")
	testtree.Category(t, data, loco, "pushpins", synth.VariantPins, 2)
	cfg := Config{DataRoot: data, ModelRoot: filepath.Join(root, "models"), OutDir: filepath.Join(root, "out"),
		Sizes: []models.Size{models.Small}, Extractor: evaluate.StudentExtractor, Device: tb.CPU,
		Categories: []string{"pushpins"}, Seeds: []int{0}, Train: &TrainSettings{}, Shard: &shard.Spec{Index: 0, Count: 2}}
	rep, err := Run(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Runs) != 1 || rep.Runs[0].Status != report.StatusFailed || !strings.Contains(rep.Runs[0].Reason, ErrNoSharedTeacher.Error()) {
		t.Errorf("runs %+v", rep.Runs)
	}
}
