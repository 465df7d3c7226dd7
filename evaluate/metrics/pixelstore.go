package metrics

import (
	"math"
)

// The pixel metrics need, for every distinct anomaly score, how many normal
// and how many anomalous pixels have that score (plus a per-score weight for
// the overlap curves). Scores are float32, so a score is identified exactly
// by its 32 bit pattern, mapped to a key whose unsigned order is the order of
// the scores (pxKey). The keys are kept in 2^16 buckets by their upper 16
// bits. A bucket starts sparse (its distinct lower halves, sorted, with their
// values, plus an unsorted append buffer that is merged in once it is as long
// as the sorted part) and turns into a dense array of 2^16 values once that
// takes less memory. Memory is therefore at most a small constant times the
// number of distinct scores, and never more than the dense arrays of the
// buckets the scores fall into; nothing is stored per pixel.

// pxValue is what a store keeps per key: it can be added and tells whether
// it is the zero value (an empty dense slot).
type pxValue[V any] interface {
	pxPlus(V) V
	pxZero() bool
}

// pxCount is the number of normal pixels with one score.
type pxCount uint32

func (a pxCount) pxPlus(b pxCount) pxCount { return a + b }
func (a pxCount) pxZero() bool             { return a == 0 }

// pxPos is, for one score, the number of anomalous pixels and the sum of the
// overlap-curve increments (per-region or per-channel) at that score.
type pxPos struct {
	n uint32
	w float64
}

func (a pxPos) pxPlus(b pxPos) pxPos { return pxPos{a.n + b.n, a.w + b.w} }
func (a pxPos) pxZero() bool         { return a.n == 0 && a.w == 0 }

const (
	pxBuckets    = 1 << 16
	pxMinPending = 1024
)

type pxEntry[V any] struct {
	low uint16
	v   V
}

type pxBucket[V pxValue[V]] struct {
	dense []V // nil while sparse, else one slot per lower half
	lows  []uint16
	vals  []V
	pend  []pxEntry[V]
}

// pxStore maps float32 score keys to values of type V.
type pxStore[V pxValue[V]] struct {
	buckets [pxBuckets]*pxBucket[V]
	// denseAt is the number of distinct sparse entries above which a
	// dense bucket takes less memory.
	denseAt int
	tmp     []pxEntry[V] // scratch for sorting append buffers
}

func pxNewStore[V pxValue[V]](entryBytes, slotBytes int) *pxStore[V] {
	return &pxStore[V]{denseAt: pxBuckets * slotBytes / entryBytes}
}

// add adds v to the value of key.
func (s *pxStore[V]) add(key uint32, v V) {
	b := s.buckets[key>>16]
	if b == nil {
		b = &pxBucket[V]{}
		s.buckets[key>>16] = b
	}
	low := uint16(key)
	if b.dense != nil {
		b.dense[low] = b.dense[low].pxPlus(v)
		return
	}
	b.pend = append(b.pend, pxEntry[V]{low, v})
	if len(b.pend) >= max(pxMinPending, len(b.lows)) {
		s.compact(b)
	}
}

// compact merges a sparse bucket's append buffer into its sorted part, and
// turns the bucket dense when that is smaller.
func (s *pxStore[V]) compact(b *pxBucket[V]) {
	if len(b.pend) == 0 {
		return
	}
	s.tmp = pxRadixSort(b.pend, s.tmp)
	if len(b.lows)+len(b.pend) > s.denseAt {
		b.dense = make([]V, pxBuckets)
		for i, l := range b.lows {
			b.dense[l] = b.vals[i]
		}
		for _, e := range b.pend {
			b.dense[e.low] = b.dense[e.low].pxPlus(e.v)
		}
		b.lows, b.vals, b.pend = nil, nil, nil
		return
	}
	lows := make([]uint16, 0, len(b.lows)+len(b.pend))
	vals := make([]V, 0, cap(lows))
	i, j := 0, 0
	for i < len(b.lows) || j < len(b.pend) {
		var l uint16
		var v V
		switch {
		case j == len(b.pend) || (i < len(b.lows) && b.lows[i] < b.pend[j].low):
			l, v = b.lows[i], b.vals[i]
			i++
		default:
			l, v = b.pend[j].low, b.pend[j].v
			j++
			if i < len(b.lows) && b.lows[i] == l {
				v = b.vals[i].pxPlus(v)
				i++
			}
		}
		if n := len(lows); n > 0 && lows[n-1] == l {
			vals[n-1] = vals[n-1].pxPlus(v)
			continue
		}
		lows, vals = append(lows, l), append(vals, v)
	}
	b.lows, b.vals = lows, vals
	b.pend = b.pend[:0]
}

// pxRadixSort sorts entries by their lower halves with two counting passes
// (one per byte), using tmp as scratch; it returns tmp for reuse.
func pxRadixSort[V any](a, tmp []pxEntry[V]) []pxEntry[V] {
	if cap(tmp) < len(a) {
		tmp = make([]pxEntry[V], len(a))
	}
	tmp = tmp[:len(a)]
	var lo, hi [257]int
	for _, e := range a {
		lo[e.low&0xff+1]++
		hi[e.low>>8+1]++
	}
	for i := 1; i < 257; i++ {
		lo[i] += lo[i-1]
		hi[i] += hi[i-1]
	}
	for _, e := range a {
		tmp[lo[e.low&0xff]] = e
		lo[e.low&0xff]++
	}
	for _, e := range tmp {
		a[hi[e.low>>8]] = e
		hi[e.low>>8]++
	}
	return tmp
}

// descending appends the bucket's keys (lower halves) and values, in
// descending key order, to lows and vals; the bucket must be compacted.
func (b *pxBucket[V]) descending(lows []uint16, vals []V) ([]uint16, []V) {
	if b == nil {
		return lows, vals
	}
	if b.dense != nil {
		for l := pxBuckets - 1; l >= 0; l-- {
			if !b.dense[l].pxZero() {
				lows, vals = append(lows, uint16(l)), append(vals, b.dense[l])
			}
		}
		return lows, vals
	}
	for i := len(b.lows) - 1; i >= 0; i-- {
		lows, vals = append(lows, b.lows[i]), append(vals, b.vals[i])
	}
	return lows, vals
}

// distinct returns the number of keys stored.
func (s *pxStore[V]) distinct() int {
	n := 0
	for _, b := range s.buckets {
		if b == nil {
			continue
		}
		s.compact(b)
		if b.dense == nil {
			n += len(b.lows)
			continue
		}
		for _, v := range b.dense {
			if !v.pxZero() {
				n++
			}
		}
	}
	return n
}

// pxWalk calls visit for every key present in neg or pos, in descending
// score order, with the values of both stores (zero where absent).
func pxWalk(neg *pxStore[pxCount], pos *pxStore[pxPos], visit func(key uint32, n pxCount, p pxPos)) {
	var nLows, pLows []uint16
	var nVals []pxCount
	var pVals []pxPos
	for hi := pxBuckets - 1; hi >= 0; hi-- {
		nb, pb := neg.buckets[hi], pos.buckets[hi]
		if nb == nil && pb == nil {
			continue
		}
		if nb != nil {
			neg.compact(nb)
		}
		if pb != nil {
			pos.compact(pb)
		}
		nLows, nVals = nb.descending(nLows[:0], nVals[:0])
		pLows, pVals = pb.descending(pLows[:0], pVals[:0])
		i, j := 0, 0
		for i < len(nLows) || j < len(pLows) {
			var n pxCount
			var p pxPos
			var low uint16
			switch {
			case j == len(pLows) || (i < len(nLows) && nLows[i] > pLows[j]):
				low, n = nLows[i], nVals[i]
				i++
			case i == len(nLows) || pLows[j] > nLows[i]:
				low, p = pLows[j], pVals[j]
				j++
			default:
				low, n, p = nLows[i], nVals[i], pVals[j]
				i, j = i+1, j+1
			}
			visit(uint32(hi)<<16|uint32(low), n, p)
		}
	}
}

// pxKey maps a finite float32 to a key whose unsigned order is the order of
// the floats; -0 and +0 get the same key.
func pxKey(f float32) uint32 {
	if f == 0 {
		f = 0
	}
	b := math.Float32bits(f)
	if b&(1<<31) != 0 {
		return ^b
	}
	return b | 1<<31
}
