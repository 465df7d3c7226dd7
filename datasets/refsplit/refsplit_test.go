package refsplit

import (
	"slices"
	"testing"
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
