package models

import (
	"testing"

	"github.com/puad-go/puad/internal/pyref"
	tb "github.com/puad-go/puad/torchbind"
)

// TestInitReference checks the draws of the constructors against PyTorch 1.13:
//
//	torch.manual_seed(5)
//	c = [nn.Conv2d(3, 128, 4), nn.Conv2d(128, 256, 4), nn.Conv2d(256, 256, 3), nn.Conv2d(256, 384, 4)]
//	c[0].weight.flatten()[:3], c[3].bias[-2:], c[3].weight.double().sum()
//	int(torch.empty((), dtype=torch.int64).random_())  # the next draw
//
// and, after torch.manual_seed(3); torchvision.models.wide_resnet101_2(),
// the next int64 draw.
func TestInitReference(t *testing.T) {
	g, err := tb.NewGenerator(5, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	pdn, err := NewPDN(Small, TeacherChannels, false)
	if err != nil {
		t.Fatal(err)
	}
	defer Close(pdn)
	if err := InitReference(pdn, g); err != nil {
		t.Fatal(err)
	}
	ps := pdn.NamedParams()
	w0, _ := tb.Values[float32](*ps[0].Tensor)
	b3, _ := tb.Values[float32](*ps[7].Tensor)
	w3, _ := (*ps[6].Tensor).Float64s()
	var sum float64
	for _, v := range w3 {
		sum += v
	}
	for i, want := range []float64{0.09533549845218658, -0.10793247818946838, 0.1176263689994812} {
		if w0[i] != float32(want) {
			t.Errorf("conv1.weight[%d] = %v, want %v", i, w0[i], float32(want))
		}
	}
	for i, want := range []float64{-0.005028966814279556, -0.006404070183634758} {
		if b := b3[len(b3)-2+i]; b != float32(want) {
			t.Errorf("conv4.bias[%d] = %v, want %v", len(b3)-2+i, b, float32(want))
		}
	}
	if d := sum - 2.8331846203655005; d > 1e-9 || d < -1e-9 {
		t.Errorf("sum of conv4.weight = %v, want 2.8331846203655005", sum)
	}
	if v, _ := tb.RandomInt64(g); v != 8750189266074315100 {
		t.Errorf("draw after the PDN = %d, want 8750189266074315100", v)
	}

	pyref.SkipShort(t, "the WideResNet101-2 draws take seconds")
	g3, err := tb.NewGenerator(3, tb.CPU)
	if err != nil {
		t.Fatal(err)
	}
	defer g3.Close()
	if err := DrawWRN101Init(g3); err != nil {
		t.Fatal(err)
	}
	if v, _ := tb.RandomInt64(g3); v != 4500585134531399515 {
		t.Errorf("draw after wide_resnet101_2() = %d, want 4500585134531399515", v)
	}
}
