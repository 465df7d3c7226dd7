package training

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/puad-go/puad/datasets/synth"
	"github.com/puad-go/puad/internal/gcsettle"
	"github.com/puad-go/puad/internal/pyref"
	"github.com/puad-go/puad/internal/testtree"
	"github.com/puad-go/puad/models"
	tb "github.com/puad-go/puad/torchbind"
)

// TestMain fails the run when a test left tensors to the finalizers.
func TestMain(m *testing.M) {
	runDDPWorker()
	code := m.Run()
	removeLocalFixtures()
	gcsettle.Settle()
	if n := tb.LeakedTensors(); n != 0 && code == 0 {
		fmt.Fprintf(os.Stderr, "training: %d tensors were never closed (freed by the garbage collector)\n", n)
		code = 1
	}
	os.Exit(code)
}

// makeImageNet writes a tiny ImageNet-style folder: classes of PNG images
// of sizes from lo to hi-1 pixels.
func makeImageNet(t testing.TB, root string, classes, perClass, lo, hi int) string {
	t.Helper()
	dir := filepath.Join(root, "imagenet")
	r := rand.New(rand.NewPCG(1, 2))
	for c := 0; c < classes; c++ {
		cdir := filepath.Join(dir, fmt.Sprintf("n%08d", c))
		if err := os.MkdirAll(cdir, 0o755); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < perClass; i++ {
			w, h := lo+r.IntN(hi-lo), lo+r.IntN(hi-lo)
			img := image.NewRGBA(image.Rect(0, 0, w, h))
			f := [3]float64{r.Float64()*0.2 + 0.05, r.Float64()*0.2 + 0.05, r.Float64()*0.2 + 0.05}
			for y := 0; y < h; y++ {
				for x := 0; x < w; x++ {
					var px [3]uint8
					for k := range px {
						px[k] = uint8(127 + 100*math.Sin(f[k]*float64(x+2*y)+float64(k)) + float64(r.IntN(20)))
					}
					img.Set(x, y, color.RGBA{px[0], px[1], px[2], 255})
				}
			}
			var buf bytes.Buffer
			if err := png.Encode(&buf, img); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(cdir, fmt.Sprintf("img%d.png", i)), buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	return dir
}

// makeCategory writes a tiny synthetic category of 128×128 images.
func makeCategory(t *testing.T, root string) string {
	t.Helper()
	sum, err := synth.Generate(root, synth.Config{
		Seed: 3, Width: 128, Height: 128, DatasetName: "tiny", Category: "tray",
		TrainGood: 4, WithValidation: true, ValidationGood: 2, TestGood: 2, TestLogical: 2, TestStructural: 2,
	})
	if err != nil {
		t.Fatal(err)
	}
	return sum.Dir
}

func readTensors(t *testing.T, path string) map[string][]float32 {
	t.Helper()
	out := map[string][]float32{}
	if strings.HasSuffix(path, "mu.pt") || strings.HasSuffix(path, "sigma.pt") {
		x, err := tb.LoadTensor(path)
		if err != nil {
			t.Fatal(err)
		}
		defer x.Close()
		v, err := x.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		out[""] = v
		return out
	}
	sd, err := tb.LoadStateDict(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sd.Close()
	for _, k := range sd.Keys {
		v, err := sd.Tensors[k].Float32s()
		if err != nil {
			t.Fatal(err)
		}
		out[k] = v
	}
	return out
}

// sameFiles requires the tensors of the named files in dirs a and b to be
// equal bit for bit, and the other files to have equal bytes.
func sameFiles(t *testing.T, a, b string, names ...string) {
	t.Helper()
	for _, n := range names {
		if strings.HasSuffix(n, ".pt") {
			ma, mb := readTensors(t, filepath.Join(a, n)), readTensors(t, filepath.Join(b, n))
			if len(ma) != len(mb) {
				t.Errorf("%s: %d tensors vs %d", n, len(ma), len(mb))
			}
			for k, va := range ma {
				vb := mb[k]
				if len(va) != len(vb) {
					t.Errorf("%s %s: %d values vs %d", n, k, len(va), len(vb))
					continue
				}
				for i := range va {
					if math.Float32bits(va[i]) != math.Float32bits(vb[i]) {
						t.Errorf("%s %s[%d]: %v vs %v", n, k, i, va[i], vb[i])
						break
					}
				}
			}
			continue
		}
		da, err := os.ReadFile(filepath.Join(a, n))
		if err != nil {
			t.Fatal(err)
		}
		db, err := os.ReadFile(filepath.Join(b, n))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(da, db) {
			t.Errorf("%s differs:\n%s\nvs\n%s", n, da, db)
		}
	}
}

// copyFile copies src to dst, creating dst's folder.
func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	data, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// stopAfter returns a context and a Progress that cancels it once stage
// reaches k iterations.
func stopAfter(stage string, k int) (context.Context, Progress) {
	ctx, cancel := context.WithCancel(context.Background())
	return ctx, func(s string, it, total int, loss float64) {
		if s == stage && it == k {
			cancel()
		}
	}
}

// TestTrainTeacherResume distils a teacher from a tiny wide ResNet on a
// tiny ImageNet folder, once straight through and once interrupted after
// the first iteration and resumed, and requires the same files bit for bit.
func TestTrainTeacherResume(t *testing.T) {
	root := t.TempDir()
	imagenet := makeImageNet(t, root, 2, 3, 60, 140)
	wrn := filepath.Join(root, "wrn.pth")
	testtree.WriteTinyWRN(t, wrn, 9)
	cfg := TeacherConfig{
		ImageNetDir: imagenet, Size: models.Small, WRNWeights: wrn,
		Iterations: 3, BatchSize: 2, StatSamples: 4, ImgSize: 64, Seed: 11, Device: tb.CPU, CheckpointEvery: 2,
	}
	a := cfg
	a.ModelDir = filepath.Join(root, "a")
	var stages []string
	a.Progress = func(stage string, it, total int, loss float64) {
		if len(stages) == 0 || stages[len(stages)-1] != stage {
			stages = append(stages, stage)
		}
		if stage == StageDistill && !(loss > 0) {
			t.Errorf("iteration %d: loss %v", it, loss)
		}
	}
	if err := TrainTeacher(context.Background(), a); err != nil {
		t.Fatal(err)
	}
	if want := []string{StageTeacherMean, StageTeacherStd, StageDistill}; fmt.Sprint(stages) != fmt.Sprint(want) {
		t.Errorf("stages %v, want %v", stages, want)
	}
	dirA := models.Layout{Root: a.ModelDir, Size: models.Small}.TeacherDir()
	for _, f := range []string{"teacher.pt", "mu.pt", "sigma.pt", "train_loss.csv"} {
		if !exists(filepath.Join(dirA, f)) {
			t.Errorf("missing %s", f)
		}
	}
	if exists(filepath.Join(dirA, CheckpointFile)) {
		t.Error("checkpoint left after a complete run")
	}
	// The teacher loads into the unpadded PDN, as the reference does.
	teacher, err := models.NewPDN(models.Small, models.TeacherChannels, false)
	if err != nil {
		t.Fatal(err)
	}
	if err := loadModule(teacher, filepath.Join(dirA, "teacher.pt"), tb.CPU); err != nil {
		t.Fatal(err)
	}
	models.Close(teacher)

	// Refuses to overwrite; a missing WRN file says where it comes from.
	if err := TrainTeacher(context.Background(), a); !errors.Is(err, ErrOutputExists) || strings.Contains(err.Error(), "--") {
		t.Errorf("second run: %v, want a refusal to overwrite", err)
	}
	c := a
	c.ModelDir, c.WRNWeights = filepath.Join(root, "c"), filepath.Join(root, "missing.pth")
	if err := TrainTeacher(context.Background(), c); !errors.Is(err, ErrNoWRNWeights) || !strings.Contains(err.Error(), "wide_resnet101_2") {
		t.Errorf("missing weights: %v", err)
	}

	b := cfg
	b.ModelDir = filepath.Join(root, "b")
	ctx, progress := stopAfter(StageDistill, 1)
	b.Progress = progress
	err = TrainTeacher(ctx, b)
	var ie *InterruptedError
	if !errors.As(err, &ie) || !errors.Is(err, ErrInterrupted) || !errors.Is(err, context.Canceled) || ie.Iteration != 1 || strings.Contains(err.Error(), "--") {
		t.Fatalf("interrupted run: %v", err)
	}
	dirB := models.Layout{Root: b.ModelDir, Size: models.Small}.TeacherDir()
	if err := TrainTeacher(context.Background(), b); !errors.Is(err, ErrCheckpointExists) || strings.Contains(err.Error(), "--") {
		t.Errorf("run over a checkpoint without resuming: %v", err)
	}
	b.Resume, b.Progress = true, nil
	var logs bytes.Buffer
	b.Log = &logs
	if err := TrainTeacher(context.Background(), b); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "resuming") || !strings.Contains(logs.String(), "loaded mu") {
		t.Errorf("log: %q", logs.String())
	}
	sameFiles(t, dirA, dirB, "teacher.pt", "mu.pt", "sigma.pt", "train_loss.csv")

	if !pyref.Short() {
		// PyTorch loads the files; the padded PDN's state dict fits the unpadded PDN.
		pyref.Run(t, "testdata/check_files.py", a.ModelDir, "s")
	}
}

// TestTrainStudentResume trains a student and autoencoder on a tiny
// category, once straight through and once interrupted after the first
// iteration and resumed: every file must be the same, bit for bit; PyTorch
// must load them.
func TestTrainStudentResume(t *testing.T) {
	root := t.TempDir()
	imagenet := makeImageNet(t, root, 2, 2, 60, 140)
	dataset := makeCategory(t, filepath.Join(root, "data"))
	cfg := StudentConfig{
		ImageNetDir: imagenet, DatasetDir: dataset, Size: models.Small,
		Iterations: 2, ImgSize: 128, Seed: 5, Device: tb.CPU,
	}
	a := cfg
	a.ModelDir = filepath.Join(root, "a")
	if _, err := TrainStudent(context.Background(), a); !errors.Is(err, ErrNoTeacher) || !strings.Contains(err.Error(), "teacher") {
		t.Fatalf("no teacher: %v", err)
	}
	teacherA, err := RandomTeacher(a.ModelDir, models.Small, 1, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := RandomTeacher(a.ModelDir, models.Small, 1, false); !errors.Is(err, ErrOutputExists) {
		t.Error("RandomTeacher overwrote a teacher")
	}
	var losses []float64
	a.Progress = func(stage string, it, total int, loss float64) {
		if stage == StageTrain {
			losses = append(losses, loss)
		}
	}
	resA, err := TrainStudent(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("losses %v", losses)
	if len(losses) != 2 || resA.FinalLoss != losses[1] {
		t.Errorf("losses %v, final %v", losses, resA.FinalLoss)
	}
	if resA.Dataset == nil || resA.Dataset.Category != "tray" || len(resA.Dataset.Test) != 6 {
		t.Errorf("result %+v", resA)
	}
	files := append(append([]string(nil), models.CategoryFiles...), "train_loss.csv")
	for _, f := range files {
		if !exists(filepath.Join(resA.Dir, f)) {
			t.Errorf("missing %s", f)
		}
	}
	if exists(filepath.Join(resA.Dir, CheckpointFile)) {
		t.Error("checkpoint left after a complete run")
	}
	if exists(filepath.Join(resA.Dir, models.ResultsFile)) {
		t.Error("training scored the test set")
	}
	log, _ := os.ReadFile(filepath.Join(resA.Dir, "train_loss.csv"))
	if rows := strings.Split(strings.TrimSpace(string(log)), "\n"); len(rows) != 3 || rows[0] != "iteration,loss_total,loss_hard,loss_penalty,loss_ae,loss_student_ae,lr" {
		t.Errorf("train_loss.csv:\n%s", log)
	}
	m, err := models.LoadEfficientAD(a.ModelDir, models.Small, "tiny", "tray", 128, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	m.Close()

	b := cfg
	b.ModelDir = filepath.Join(root, "b")
	copyFile(t, teacherA, models.Layout{Root: b.ModelDir, Size: models.Small}.TeacherDir()+"/teacher.pt")
	ctx, progress := stopAfter(StageTrain, 1)
	b.Progress = progress
	_, err = TrainStudent(ctx, b)
	var ie *InterruptedError
	if !errors.As(err, &ie) || ie.Iteration != 1 {
		t.Fatalf("interrupted run: %v", err)
	}
	// Resumed, and interrupted again after training, while computing the quantiles.
	b.Resume = true
	ctx, b.Progress = stopAfter(StageQuantiles, 1)
	_, err = TrainStudent(ctx, b)
	if !errors.As(err, &ie) || ie.Iteration != 2 {
		t.Fatalf("run interrupted after training: %v", err)
	}
	b.Progress = nil
	resB, err := TrainStudent(context.Background(), b)
	if err != nil {
		t.Fatal(err)
	}
	sameFiles(t, resA.Dir, resB.Dir, files...)
	if resB.FinalLoss != resA.FinalLoss {
		t.Errorf("resumed run: final loss %v; uninterrupted: %v", resB.FinalLoss, resA.FinalLoss)
	}

	if pyref.Short() {
		return
	}
	// PyTorch loads every file (and the padded teacher's keys fit the unpadded PDN).
	pyref.Run(t, "testdata/check_files.py", a.ModelDir, "s", "128", "tiny", "tray")
}
