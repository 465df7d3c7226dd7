// Package refsplit is the reference's train/validation split of a category
// without a validation folder: the permutation torch.randperm(n) draws from
// a CPU generator seeded with 42. It is apart from package datasets because
// it needs libtorch's generator, while datasets builds without cgo.
package refsplit

import (
	"github.com/puad-go/puad/datasets"
	tb "github.com/puad-go/puad/torchbind"
)

// Seed is the seed of the reference's split generator.
const Seed = 42

// Perm is the reference's permutation of n training images, for datasets.Open.
func Perm(n int) ([]int64, error) { return tb.Perm(Seed, n) }

var _ datasets.PermFunc = Perm
