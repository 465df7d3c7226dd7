package metrics

// PairwiseSum returns the sum of xs added in the order numpy's add.reduce
// uses for a contiguous array: pairwise summation with an 8-way unrolled
// base case, accumulating in the array's own type. Results therefore agree
// bit for bit with np.sum of float64 and of float32 arrays, which a plain
// left-to-right loop does not.
func PairwiseSum[F float32 | float64](xs []F) F {
	n := len(xs)
	switch {
	case n < 8:
		var res F
		for _, x := range xs {
			res += x
		}
		return res
	case n <= 128:
		var r [8]F
		copy(r[:], xs[:8])
		i := 8
		for ; i < n-n%8; i += 8 {
			for j := 0; j < 8; j++ {
				r[j] += xs[i+j]
			}
		}
		res := ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]))
		for ; i < n; i++ {
			res += xs[i]
		}
		return res
	default:
		n2 := n / 2
		n2 -= n2 % 8
		return PairwiseSum(xs[:n2]) + PairwiseSum(xs[n2:])
	}
}
