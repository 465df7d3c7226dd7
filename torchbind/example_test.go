package torchbind_test

import (
	"fmt"

	"github.com/puad-go/puad/torchbind"
)

// A tensor made from Go values, one operation, and the values read back;
// each tensor is closed by its owner.
func Example() {
	x, err := torchbind.FromSlice([]float32{1, 2, 3, 4, 5, 6}, 2, 3)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer x.Close()

	rows, err := torchbind.Sum(x, []int64{1}, false) // along dimension 1
	if err != nil {
		fmt.Println(err)
		return
	}
	defer rows.Close()

	v, err := torchbind.Values[float32](rows)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(rows.Shape(), v)
	// Output: [2] [6 15]
}

// A Scope owns the tensors of a chain of operations, keeps the first error,
// and frees everything at Close except what Keep hands out.
func ExampleScope() {
	s := torchbind.NewScope()
	defer s.Close()
	x := s.T(torchbind.FromSlice([]float32{3, -1, 4, -1, 5, -9}, 2, 3))
	r := s.T(torchbind.Relu(x))
	all := s.T(torchbind.Mean(r, nil, false)) // nil dims: every element
	best := s.T(torchbind.Argmax(x, []int64{1}, false))
	if err := s.Err(); err != nil {
		fmt.Println(err)
		return
	}
	mean, err := all.Item()
	if err != nil {
		fmt.Println(err)
		return
	}
	idx, err := best.Int64s()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(mean, idx)
	// Output: 2 [2 1]
}
