package ptfile

import "testing"

// TestLoadCUDALocation loads a file whose storages were saved on a GPU
// (location "cuda:0"), as the reference's pretrained quantile.pt, mu.pt and
// sigma.pt may be: the location is informative and the values load on the CPU.
func TestLoadCUDALocation(t *testing.T) {
	v, err := Load("testdata/quantile_cuda.pt")
	if err != nil {
		t.Fatal(err)
	}
	d, ok := v.(*OrderedDict)
	if !ok {
		t.Fatalf("loaded %T, want a dict", v)
	}
	for key, want := range map[string]float32{"q_a_student": 0.25, "q_b_student": 2.5} {
		tt, ok := d.Tensor(key)
		if !ok {
			t.Fatalf("no tensor %q", key)
		}
		got, err := tt.Float32s()
		if err != nil {
			t.Fatal(err)
		}
		if len(tt.Shape) != 0 || len(got) != 1 || got[0] != want {
			t.Errorf("%s = %v (shape %v), want the scalar %v", key, got, tt.Shape, want)
		}
	}
}
