package refsplit

import (
	"encoding/json"
	"os/exec"
	"slices"
	"strconv"
	"testing"

	"github.com/puad-go/puad/internal/pyref"
)

// TestPerm checks that Perm is a permutation and draws the same one each time.
func TestPerm(t *testing.T) {
	p, err := Perm(20)
	if err != nil {
		t.Fatal(err)
	}
	q, err := Perm(20)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(p, q) {
		t.Errorf("two draws differ: %v, %v", p, q)
	}
	sorted := slices.Clone(p)
	slices.Sort(sorted)
	for i, v := range sorted {
		if v != int64(i) {
			t.Fatalf("%v is not a permutation of 0..19", p)
		}
	}
}

// TestPermMatchesPyTorch compares Perm with the reference's own draw,
// torch.randperm(n, generator=torch.Generator().manual_seed(42)), computed
// by PyTorch at test time.
func TestPermMatchesPyTorch(t *testing.T) {
	pyref.Require(t)
	sizes := []int{1, 7, 20, 57, 300}
	script := `import json, sys, torch
print(json.dumps([torch.randperm(n, generator=torch.Generator().manual_seed(42)).tolist() for n in map(int, sys.argv[1:])]))`
	args := []string{"-c", script}
	for _, n := range sizes {
		args = append(args, strconv.Itoa(n))
	}
	out, err := exec.Command(pyref.Python, args...).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want [][]int64
	if err := json.Unmarshal(out, &want); err != nil {
		t.Fatal(err)
	}
	for i, n := range sizes {
		got, err := Perm(n)
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want[i]) {
			t.Errorf("Perm(%d) = %v, PyTorch gives %v", n, got, want[i])
		}
	}
}
