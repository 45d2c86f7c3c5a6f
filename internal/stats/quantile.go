package stats

import (
	"errors"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strconv"
	"sync/atomic"
)

// QuantileSketch is a KLL sketch (Karnin, Lang, Liberty 2016): a mergeable
// summary of a stream of float64 values that answers rank and quantile
// queries with a bounded normalized rank error (see RankError) in memory
// that grows only with log(n). Call NewQuantileSketch to choose k; the zero
// value behaves as NewQuantileSketch(0).
//
// The sketch keeps its values in levels: a value retained at level h stands
// for 2^h original values. Level 0 is an unsorted buffer that Add appends to;
// the higher levels are sorted. With H levels, level h holds up to about
// k·(2/3)^(H−1−h) values (at least 8; level 0 at least 16), so the sketch
// retains about 3k values plus 8 per low level (618 values, 5 KB, for k=200
// and 10^6 values). Compaction is lazy: only when the whole sketch is over
// its capacity is the lowest level at or over its own capacity compacted —
// sorted, and every other value (starting at the first or the second, by a
// coin flip) promoted to the level above with twice the weight. Once the
// sketch is large, level 0 is compacted 16 values at a time with a sorting
// network, which keeps Add at about 150 instructions and half a branch
// misprediction per value, amortized.
//
// The coin comes from a per-sketch xorshift generator seeded from a constant
// and the first value compacted, and mixed with the other sketch's state on
// Merge, so the same input always gives the same sketch (results are
// reproducible across runs) while sketches of different partitions still
// flip different coins. The generator state is part of the JSON encoding.
//
// Values are kept as order-preserving 64-bit integer keys, which makes
// sorting and merging cheap; −0 is stored as +0, so Min, Max, Items and
// Quantile report 0 for it.
//
// A QuantileSketch is not safe for concurrent modification; concurrent
// queries (Count, Min, Max, Quantile, CDF, Items) are safe when nothing
// modifies the sketch.
type QuantileSketch struct {
	k int

	// Level 0: l0[:l0n] holds the values added since its last compaction;
	// Add takes its fast path while l0n < l0lim (= capTot − sizeUp).
	l0    []uint64
	l0n   int
	l0lim int

	levels [][]uint64 // levels[h] for h ≥ 1, sorted; levels[0] is unused
	upN    int64      // total weight of levels ≥ 1
	sizeUp int        // values retained in levels ≥ 1
	caps   []int      // capacity of each level for the current number of levels
	capTot int        // sum of caps

	// keyMin and keyMax bound every value outside l0[:l0n] (exactly: they
	// are the smallest and largest such value ever added).
	keyMin, keyMax uint64

	rng     uint64 // xorshift state; 0 until the first compaction seeds it
	version uint64 // bumped by every change except the fast path of Add
	tmp     []uint64
	view    atomic.Pointer[quantileView]
}

// quantileView is the sorted, deduplicated form of a sketch that queries
// use; it is valid while the sketch's version and l0n are unchanged.
type quantileView struct {
	version uint64
	l0n     int
	n       int64
	min     float64
	max     float64
	vals    []float64
	cum     []int64 // cum[i] = total weight of values ≤ vals[i]
}

const (
	// kllMinK and kllMaxK bound the accuracy parameter.
	kllMinK = 8
	kllMaxK = 1 << 16
	// kllMinWidth is the smallest capacity of any level above 0.
	kllMinWidth = 8
	// l0Chunk is the smallest capacity of level 0 and the number of values
	// a compaction of level 0 takes once the sketch is large.
	l0Chunk = 16
	// kllMaxLevels bounds the number of levels: a value at level 62 weighs
	// 2^62, and no count above math.MaxInt64 can be represented.
	kllMaxLevels = 63
	// kllSeed seeds each sketch's coin generator (mixed with its first value).
	kllSeed = 0x9e3779b97f4a7c15
)

// floatKey maps x (not NaN) to a uint64 that sorts as x does; −0 maps as +0.
func floatKey(x float64) uint64 {
	u := math.Float64bits(x + 0) // x + 0 turns −0 into +0
	return u ^ (uint64(int64(u)>>63) | 1<<63)
}

// keyFloat inverts floatKey.
func keyFloat(k uint64) float64 {
	return math.Float64frombits(k ^ (uint64(int64(^k)>>63) | 1<<63))
}

// NewQuantileSketch returns an empty sketch with accuracy parameter k
// (DefaultQuantileK when k <= 0). k is raised to at least 8 and lowered to at
// most 65536.
func NewQuantileSketch(k int) *QuantileSketch {
	s := &QuantileSketch{}
	s.init(k)
	return s
}

// init makes s an empty sketch with accuracy parameter k.
func (s *QuantileSketch) init(k int) {
	if k <= 0 {
		k = DefaultQuantileK
	}
	s.k = min(max(k, kllMinK), kllMaxK)
	s.l0, s.l0n = nil, 0
	s.levels = [][]uint64{nil}
	s.upN, s.sizeUp = 0, 0
	s.keyMin, s.keyMax = math.MaxUint64, 0
	s.rng = 0
	s.version++
	s.recomputeCaps()
}

// ready initializes a zero-value sketch.
func (s *QuantileSketch) ready() {
	if s.k == 0 {
		s.init(0)
	}
}

// K returns the sketch's accuracy parameter.
func (s *QuantileSketch) K() int {
	if s.k == 0 {
		return DefaultQuantileK
	}
	return s.k
}

// levelCap returns the capacity of level h in a sketch with nlev levels:
// k·(2/3)^depth rounded to nearest, depth counted from the top, at least
// kllMinWidth.
func levelCap(k, nlev, h int) int {
	depth := nlev - 1 - h
	c := float64(k) * math.Pow(2.0/3.0, float64(depth))
	if h == 0 {
		return max(l0Chunk, int(c+0.5))
	}
	return max(kllMinWidth, int(c+0.5))
}

// recomputeCaps refreshes caps, capTot, l0lim and l0's buffer after k, the
// number of levels or sizeUp changed.
func (s *QuantileSketch) recomputeCaps() {
	nlev := len(s.levels)
	s.caps = slices.Grow(s.caps[:0], nlev)[:nlev]
	s.capTot = 0
	for h := range nlev {
		s.caps[h] = levelCap(s.k, nlev, h)
		s.capTot += s.caps[h]
	}
	s.syncLimit()
}

// syncLimit sets l0lim from the free capacity and makes l0 long enough.
func (s *QuantileSketch) syncLimit() {
	s.l0lim = max(s.capTot-s.sizeUp, 0)
	if len(s.l0) < s.l0lim {
		n := make([]uint64, max(s.l0lim, s.capTot))
		copy(n, s.l0[:s.l0n])
		s.l0 = n
	}
}

// Add adds x to the sketch. NaN values are ignored (callers count them).
func (s *QuantileSketch) Add(x float64) {
	if x != x {
		return
	}
	i := s.l0n
	if i >= s.l0lim || i >= len(s.l0) {
		s.addSlow(x)
		return
	}
	s.l0[i] = floatKey(x)
	s.l0n = i + 1
}

// addSlow adds x when level 0 is full (or the sketch not yet initialized).
func (s *QuantileSketch) addSlow(x float64) {
	s.ready()
	s.appendL0(floatKey(x))
	s.compress()
}

// appendL0 appends key to level 0, growing its buffer when needed.
func (s *QuantileSketch) appendL0(key uint64) {
	if s.l0n == len(s.l0) {
		s.l0 = append(s.l0[:s.l0n], key)
		s.l0 = s.l0[:cap(s.l0)]
	} else {
		s.l0[s.l0n] = key
	}
	s.l0n++
	s.version++
}

// AddSlice adds every value of xs (NaN values are ignored). It is the fast
// path for columns read in batches.
func (s *QuantileSketch) AddSlice(xs []float64) {
	s.ready()
	for len(xs) > 0 {
		free := min(s.l0lim, len(s.l0)) - s.l0n
		if free <= 0 {
			s.Add(xs[0])
			xs = xs[1:]
			continue
		}
		chunk := xs[:min(len(xs), free)]
		xs = xs[len(chunk):]
		dst := s.l0[s.l0n : s.l0n+len(chunk)]
		j := 0
		for _, x := range chunk {
			if x == x {
				dst[j] = floatKey(x)
				j++
			}
		}
		s.l0n += j
	}
}

// AddN adds n copies of x (nothing when n <= 0 or x is NaN). It costs
// O(log n) instead of n calls to Add: the copies enter the levels whose
// weights make up n's binary digits.
func (s *QuantileSketch) AddN(x float64, n int64) {
	if x != x || n <= 0 {
		return
	}
	s.ready()
	key := floatKey(x)
	if n&1 != 0 {
		s.appendL0(key)
	}
	if n > 1 {
		s.keyMin = min(s.keyMin, key)
		s.keyMax = max(s.keyMax, key)
		s.upN += n &^ 1
		for h, m := 1, n>>1; m != 0; h, m = h+1, m>>1 {
			if m&1 == 0 {
				continue
			}
			if h >= len(s.levels) {
				s.growLevels(h + 1)
			}
			lv := s.levels[h]
			i, _ := slices.BinarySearch(lv, key)
			s.levels[h] = slices.Insert(lv, i, key)
			s.sizeUp++
		}
		s.version++
		s.syncLimit()
	}
	s.compress()
}

// growLevels adds empty levels until there are nlev.
func (s *QuantileSketch) growLevels(nlev int) {
	for len(s.levels) < nlev {
		s.levels = append(s.levels, nil)
	}
	s.recomputeCaps()
}

// compress compacts levels until the sketch fits its capacity.
func (s *QuantileSketch) compress() {
	for s.sizeUp+s.l0n > s.capTot {
		if s.l0n >= s.caps[0] {
			s.compact0()
			continue
		}
		h := 1
		for len(s.levels[h]) < s.caps[h] {
			h++
		}
		s.compact(h)
	}
}

// coin returns a pseudo-random bit from the sketch's xorshift generator.
func (s *QuantileSketch) coin() int {
	if s.rng == 0 {
		var first uint64
		if s.l0n > 0 {
			first = s.l0[0]
		}
		s.rng = splitmix64(kllSeed^first^uint64(s.upN)) | 1
	}
	x := s.rng
	x ^= x << 13
	x ^= x >> 7
	x ^= x << 17
	s.rng = x
	return int(x >> 63)
}

// splitmix64 is the SplitMix64 finalizer, used to mix seeds.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// compact0 compacts level 0: when the low levels are at their minimum
// width it takes the 16 newest values (sorted by a sorting network),
// otherwise the whole level (keeping the smallest value when their number is
// odd); it promotes every other one of the sorted values to level 1. Any
// subset of a level may be compacted: the KLL error argument only needs the
// compacted values paired in sorted order.
func (s *QuantileSketch) compact0() {
	if len(s.levels) < 2 {
		s.growLevels(2)
	}
	var buf []uint64
	if s.caps[0] <= l0Chunk && s.l0n >= l0Chunk {
		buf = s.l0[s.l0n-l0Chunk : s.l0n]
		sort16((*[l0Chunk]uint64)(buf))
	} else {
		buf = s.l0[:s.l0n]
		sortKeys(buf)
	}
	s.keyMin = min(s.keyMin, buf[0])
	s.keyMax = max(s.keyMax, buf[len(buf)-1])
	odd := len(buf) & 1
	half := (len(buf) - odd) / 2
	s.promote(1, buf[odd:], half, s.coin())
	s.l0n -= 2 * half
	s.upN += 2 * int64(half)
	s.sizeUp += half
	s.version++
	s.syncLimit()
}

// compact halves level h ≥ 1 in the same way.
func (s *QuantileSketch) compact(h int) {
	if h+1 >= len(s.levels) {
		s.growLevels(h + 2)
	}
	buf := s.levels[h]
	odd := len(buf) & 1
	half := (len(buf) - odd) / 2
	s.promote(h+1, buf[odd:], half, s.coin())
	s.levels[h] = buf[:odd]
	s.sizeUp -= half
	s.version++
	s.syncLimit()
}

// promote merges src[off], src[off+2], … (half values of the sorted src)
// into level h. src's storage is reused to gather them.
func (s *QuantileSketch) promote(h int, src []uint64, half, off int) {
	for i := range half {
		src[i] = src[off+2*i]
	}
	// src[half] is free now (half ≤ len(src)/2 < len(src)); a sentinel there
	// and one after level h let the merge run without end-of-input tests.
	src[half] = math.MaxUint64
	up := append(s.levels[h], math.MaxUint64)
	up = up[:len(up)-1]
	n := len(up) + half
	dst := slices.Grow(s.tmp[:0], n+1)[:n]
	mergeSentinel(dst, up[:len(up)+1], src[:half+1])
	s.tmp = up[:0]
	s.levels[h] = dst
}

// mergeSentinel writes the merge of the sorted a and b to dst
// (len(dst) = len(a)+len(b)−2); a and b each end with math.MaxUint64, a key
// that no value has.
func mergeSentinel(dst, a, b []uint64) {
	i, j := 0, 0
	for o := range dst {
		x, y := a[i], b[j]
		v, di := x, 1
		if y < x {
			v, di = y, 0
		}
		dst[o] = v
		i += di
		j += 1 - di
	}
}

// mergeKeys appends the merge of the sorted slices a and b to dst.
func mergeKeys(dst, a, b []uint64) []uint64 {
	start := len(dst)
	dst = slices.Grow(dst, len(a)+len(b))[:start+len(a)+len(b)]
	out := dst[start:]
	i, j, o := 0, 0, 0
	for i < len(a) && j < len(b) {
		x, y := a[i], b[j]
		v, di, dj := x, 1, 0
		if y < x {
			v, di, dj = y, 0, 1
		}
		out[o] = v
		o++
		i += di
		j += dj
	}
	o += copy(out[o:], a[i:])
	copy(out[o:], b[j:])
	return dst
}

// sortKeys sorts v ascending: small slices (level 0 usually holds a dozen
// values when compacted) by an insertion sort whose inner loop uses
// conditional moves instead of an unpredictable exit branch.
func sortKeys(v []uint64) {
	if len(v) > 32 {
		slices.Sort(v)
		return
	}
	for i := 1; i < len(v); i++ {
		x := v[i]
		pos := i
		for j := i; j > 0; j-- {
			p, cur := v[j-1], v[j]
			if p > x {
				cur, pos = p, j-1
			}
			v[j] = cur
		}
		v[pos] = x
	}
}

// Merge adds every value summarised by o to s. o is not modified.
//
// Sketches built with different k merge into a sketch with the smaller k, so
// the result answers with the less accurate sketch's RankError; an empty s
// takes o's k.
func (s *QuantileSketch) Merge(o *QuantileSketch) {
	if o == nil || o.Count() == 0 {
		return
	}
	if o == s {
		o = s.Clone()
	}
	s.ready()
	if s.Count() == 0 {
		s.k = o.k
	} else {
		s.k = min(s.k, o.k)
	}
	for len(s.levels) < len(o.levels) {
		s.levels = append(s.levels, nil)
	}
	s.l0 = append(s.l0[:s.l0n], o.l0[:o.l0n]...)
	s.l0n = len(s.l0)
	s.l0 = s.l0[:cap(s.l0)]
	for h := 1; h < len(o.levels); h++ {
		if len(o.levels[h]) == 0 {
			continue
		}
		merged := mergeKeys(s.tmp[:0], s.levels[h], o.levels[h])
		s.tmp = s.levels[h][:0]
		s.levels[h] = merged
	}
	s.upN += o.upN
	s.sizeUp += o.sizeUp
	s.keyMin = min(s.keyMin, o.keyMin)
	s.keyMax = max(s.keyMax, o.keyMax)
	if o.rng != 0 {
		s.rng = splitmix64(bits.RotateLeft64(s.rng, 29)^o.rng) | 1
	}
	s.version++
	s.recomputeCaps()
	s.compress()
}

// Clone returns an independent copy of s.
func (s *QuantileSketch) Clone() *QuantileSketch {
	c := &QuantileSketch{}
	c.init(s.k)
	if s.k == 0 {
		return c
	}
	c.levels = make([][]uint64, len(s.levels))
	for h, lv := range s.levels {
		c.levels[h] = slices.Clone(lv)
	}
	c.l0 = slices.Clone(s.l0[:s.l0n])
	c.l0n = s.l0n
	c.upN, c.sizeUp, c.keyMin, c.keyMax, c.rng = s.upN, s.sizeUp, s.keyMin, s.keyMax, s.rng
	c.recomputeCaps()
	return c
}

// Count returns how many values were added (including merged ones).
func (s *QuantileSketch) Count() int64 { return s.upN + int64(s.l0n) }

// keyRange returns the smallest and largest key added; ok is false when empty.
func (s *QuantileSketch) keyRange() (lo, hi uint64, ok bool) {
	lo, hi = s.keyMin, s.keyMax
	for _, k := range s.l0[:s.l0n] {
		lo = min(lo, k)
		hi = max(hi, k)
	}
	return lo, hi, s.Count() > 0
}

// Min and Max return the exact smallest and largest values added; NaN when empty.
func (s *QuantileSketch) Min() float64 {
	lo, _, ok := s.keyRange()
	if !ok {
		return math.NaN()
	}
	return keyFloat(lo)
}

// Max returns the exact largest value added; NaN when empty.
func (s *QuantileSketch) Max() float64 {
	_, hi, ok := s.keyRange()
	if !ok {
		return math.NaN()
	}
	return keyFloat(hi)
}

// sorted returns the query view of a non-empty sketch, building it when the
// sketch changed.
func (s *QuantileSketch) sorted() *quantileView {
	if v := s.view.Load(); v != nil && v.version == s.version && v.l0n == s.l0n {
		return v
	}
	type item struct {
		key uint64
		w   int64
	}
	items := make([]item, 0, s.l0n+s.sizeUp)
	for _, k := range s.l0[:s.l0n] {
		items = append(items, item{k, 1})
	}
	for h, lv := range s.levels {
		for _, k := range lv {
			items = append(items, item{k, int64(1) << h})
		}
	}
	slices.SortFunc(items, func(a, b item) int {
		switch {
		case a.key < b.key:
			return -1
		case a.key > b.key:
			return 1
		}
		return 0
	})
	lo, hi, _ := s.keyRange()
	v := &quantileView{
		version: s.version, l0n: s.l0n, n: s.Count(),
		min: keyFloat(lo), max: keyFloat(hi),
		vals: make([]float64, 0, len(items)), cum: make([]int64, 0, len(items)),
	}
	var cum int64
	var last uint64
	for i, it := range items {
		cum += it.w
		if i > 0 && it.key == last {
			v.cum[len(v.cum)-1] = cum
			continue
		}
		last = it.key
		v.vals = append(v.vals, keyFloat(it.key))
		v.cum = append(v.cum, cum)
	}
	s.view.Store(v)
	return v
}

// Quantile returns an approximate q-quantile (0 ≤ q ≤ 1); q=0 and q=1 return
// the exact minimum and maximum. NaN when empty or q is outside [0, 1].
//
// The answer is the smallest retained value whose estimated rank (the weight
// of retained values ≤ it) reaches q·Count — the inverse of CDF, so on a
// sketch that compacted nothing it is the exact "inverted CDF" quantile of
// the data (numpy's method="inverted_cdf").
func (s *QuantileSketch) Quantile(q float64) float64 {
	if s.Count() == 0 || !(q >= 0 && q <= 1) {
		return math.NaN()
	}
	v := s.sorted()
	switch q {
	case 0:
		return v.min
	case 1:
		return v.max
	}
	target := q * float64(v.n)
	i, _ := slices.BinarySearchFunc(v.cum, target, func(c int64, t float64) int {
		if float64(c) < t {
			return -1
		}
		return 1
	})
	if i >= len(v.vals) {
		return v.max
	}
	return v.vals[i]
}

// CDF returns the approximate fraction of values ≤ x; NaN when the sketch is
// empty or x is NaN.
func (s *QuantileSketch) CDF(x float64) float64 {
	if s.Count() == 0 || x != x {
		return math.NaN()
	}
	v := s.sorted()
	if x >= v.max {
		return 1
	}
	if x < v.min {
		return 0
	}
	i, found := slices.BinarySearch(v.vals, x)
	if found {
		i++
	}
	if i == 0 {
		return 0
	}
	return float64(v.cum[i-1]) / float64(v.n)
}

// Items returns the sketch's retained values in ascending order with their
// weights (the number of original values each stands for); the weights sum
// to Count. Drift computed from profiles uses them as a weighted sample.
// Equal retained values are reported once with their weights summed.
func (s *QuantileSketch) Items() (values []float64, weights []float64) {
	if s.Count() == 0 {
		return nil, nil
	}
	v := s.sorted()
	values = slices.Clone(v.vals)
	weights = make([]float64, len(v.cum))
	var prev int64
	for i, c := range v.cum {
		weights[i] = float64(c - prev)
		prev = c
	}
	return values, weights
}

// RankError returns the sketch's normalized rank error bound: with
// probability at least 99%, |CDF(x) − true CDF(x)| ≤ RankError() for all x.
//
// The bound is KLLRankError(k) = 2.296/k^0.9723, the empirical fit Apache
// DataSketches publishes for the same KLL design (capacities k·(2/3)^depth,
// minimum width 8, lazy compaction): 1.33% for k=200. This implementation
// keeps at least 16 values in level 0, which only lowers the error. Measured
// by TestQuantileRankErrorCalibration (the largest error over all x of 400
// independently seeded sketches of 2^15 shuffled distinct values), the
// median / 99th percentile / largest errors were 2.65% / 4.06% / 4.80% for
// k=50 (bound 5.12%), 0.75% / 1.10% / 1.22% for k=200 (bound 1.33%) and
// 0.19% / 0.29% / 0.32% for k=800 (bound 0.35%); TestQuantileSketchRankErrorWithinBound
// sees 0.4–0.9% for k=200 on uniform, normal, Cauchy, Pareto and tied data
// of 10^3 to 10^6 values, merged or not. A sketch that never compacted is
// exact and reports 0.
func (s *QuantileSketch) RankError() float64 {
	if s.upN == 0 {
		return 0
	}
	return KLLRankError(s.k)
}

// KLLRankError returns the 99%-confidence normalized rank error bound of a
// KLL sketch with accuracy parameter k, 2.296/k^0.9723 (see RankError).
func KLLRankError(k int) float64 {
	if k <= 0 {
		k = DefaultQuantileK
	}
	k = min(max(k, kllMinK), kllMaxK)
	return 2.296 / math.Pow(float64(k), 0.9723)
}

// quantileJSON is the wire form of a QuantileSketch: its parameter k, the
// exact count, minimum and maximum (absent when empty), the generator state
// in hex and the values of each level (level h weighs 2^h; level 0 in the
// order added, the others ascending). Infinite values are written as the
// strings "+Inf" and "-Inf".
type quantileJSON struct {
	K      int           `json:"k"`
	N      int64         `json:"n"`
	Min    *jsonFloat    `json:"min"`
	Max    *jsonFloat    `json:"max"`
	RNG    string        `json:"rng"`
	Levels [][]jsonFloat `json:"levels"`
}

// jsonFloat is a float64 whose JSON form also allows ±Inf (as strings).
type jsonFloat float64

// UnmarshalJSON decodes a number or the string "+Inf" or "-Inf".
func (f *jsonFloat) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case `"+Inf"`:
		*f = jsonFloat(math.Inf(1))
		return nil
	case `"-Inf"`:
		*f = jsonFloat(math.Inf(-1))
		return nil
	}
	if len(b) == 0 || !(b[0] == '-' || b[0] >= '0' && b[0] <= '9') {
		return fmt.Errorf("invalid number %.20q", b)
	}
	x, err := strconv.ParseFloat(string(b), 64)
	if err != nil {
		return fmt.Errorf("invalid number %.20q: %w", b, err)
	}
	*f = jsonFloat(x)
	return nil
}

// appendJSONFloat appends x's JSON form (shortest exact decimal, or "±Inf").
func appendJSONFloat(b []byte, x float64) []byte {
	switch {
	case math.IsInf(x, 1):
		return append(b, `"+Inf"`...)
	case math.IsInf(x, -1):
		return append(b, `"-Inf"`...)
	}
	return strconv.AppendFloat(b, x, 'g', -1, 64)
}

// appendJSONKeys appends keys as a JSON array of numbers.
func appendJSONKeys(b []byte, keys []uint64) []byte {
	b = append(b, '[')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendJSONFloat(b, keyFloat(k))
	}
	return append(b, ']')
}

// MarshalJSON encodes the sketch so that UnmarshalJSON restores it exactly.
func (s *QuantileSketch) MarshalJSON() ([]byte, error) {
	b := make([]byte, 0, 64+20*(s.l0n+s.sizeUp))
	b = append(b, `{"k":`...)
	b = strconv.AppendInt(b, int64(s.K()), 10)
	b = append(b, `,"n":`...)
	b = strconv.AppendInt(b, s.Count(), 10)
	if lo, hi, ok := s.keyRange(); ok {
		b = append(b, `,"min":`...)
		b = appendJSONFloat(b, keyFloat(lo))
		b = append(b, `,"max":`...)
		b = appendJSONFloat(b, keyFloat(hi))
	}
	b = append(b, `,"rng":"`...)
	b = strconv.AppendUint(b, s.rng, 16)
	b = append(b, `","levels":[`...)
	b = appendJSONKeys(b, s.l0[:s.l0n])
	for h := 1; h < len(s.levels); h++ {
		b = append(b, ',')
		b = appendJSONKeys(b, s.levels[h])
	}
	return append(b, "]}"...), nil
}

// UnmarshalJSON decodes a sketch written by MarshalJSON; invalid input is an error.
func (s *QuantileSketch) UnmarshalJSON(b []byte) error {
	var w quantileJSON
	if err := decodeStrict(b, &w); err != nil {
		return fmt.Errorf("decode quantile sketch: %w", err)
	}
	if err := s.fromJSON(&w); err != nil {
		return fmt.Errorf("decode quantile sketch: %w", err)
	}
	return nil
}

// fromJSON validates a decoded sketch and makes s that sketch.
func (s *QuantileSketch) fromJSON(w *quantileJSON) error {
	if w.K < kllMinK || w.K > kllMaxK {
		return fmt.Errorf("k %d outside [%d, %d]", w.K, kllMinK, kllMaxK)
	}
	if w.N < 0 {
		return fmt.Errorf("negative count %d", w.N)
	}
	if len(w.Levels) == 0 || len(w.Levels) > kllMaxLevels {
		return fmt.Errorf("%d levels, want 1 to %d", len(w.Levels), kllMaxLevels)
	}
	rng, err := strconv.ParseUint(w.RNG, 16, 64)
	if err != nil {
		return fmt.Errorf("generator state %q: %w", w.RNG, err)
	}
	keyMin, keyMax := uint64(math.MaxUint64), uint64(0)
	if w.N == 0 {
		if w.Min != nil || w.Max != nil {
			return errors.New("empty sketch with a minimum or maximum")
		}
	} else {
		if w.Min == nil || w.Max == nil {
			return errors.New("non-empty sketch without minimum and maximum")
		}
		keyMin, keyMax = floatKey(float64(*w.Min)), floatKey(float64(*w.Max))
		if keyMin > keyMax {
			return fmt.Errorf("minimum %v above maximum %v", float64(*w.Min), float64(*w.Max))
		}
	}
	levels := make([][]uint64, len(w.Levels))
	var weight uint64
	var sizeUp int
	for h, lv := range w.Levels {
		keys := make([]uint64, len(lv))
		for i, x := range lv {
			k := floatKey(float64(x))
			if k < keyMin || k > keyMax {
				return fmt.Errorf("level %d value %v outside [min, max]", h, float64(x))
			}
			if h > 0 && i > 0 && k < keys[i-1] {
				return fmt.Errorf("level %d not sorted at %d", h, i)
			}
			keys[i] = k
		}
		levels[h] = keys
		if h > 0 {
			sizeUp += len(keys)
		}
		hi, lo := bits.Mul64(uint64(len(keys)), uint64(1)<<h)
		var carry uint64
		weight, carry = bits.Add64(weight, lo, 0)
		if hi != 0 || carry != 0 || weight > math.MaxInt64 {
			return errors.New("weights overflow")
		}
	}
	if weight != uint64(w.N) {
		return fmt.Errorf("level weights sum to %d, count is %d", weight, w.N)
	}
	t := &QuantileSketch{}
	t.init(w.K)
	t.levels = levels
	t.l0, t.l0n = levels[0], len(levels[0])
	t.levels[0] = nil
	t.upN = w.N - int64(t.l0n)
	t.sizeUp = sizeUp
	t.keyMin, t.keyMax, t.rng = keyMin, keyMax, rng
	t.recomputeCaps()
	if t.sizeUp+t.l0n > t.capTot {
		return fmt.Errorf("%d values retained, capacity is %d", t.sizeUp+t.l0n, t.capTot)
	}
	s.k, s.l0, s.l0n, s.l0lim = t.k, t.l0, t.l0n, t.l0lim
	s.levels, s.upN, s.sizeUp, s.caps, s.capTot = t.levels, t.upN, t.sizeUp, t.caps, t.capTot
	s.keyMin, s.keyMax, s.rng, s.tmp = t.keyMin, t.keyMax, t.rng, nil
	s.version++
	s.view.Store(nil)
	return nil
}

// sort16 sorts 16 keys with the 63 compare-exchanges of Batcher's odd–even
// merge sort network; it runs without data-dependent branches.
func sort16(v *[16]uint64) {
	x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15 := v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15]
	x0, x1 = min(x0, x1), max(x0, x1)
	x2, x3 = min(x2, x3), max(x2, x3)
	x0, x2 = min(x0, x2), max(x0, x2)
	x1, x3 = min(x1, x3), max(x1, x3)
	x1, x2 = min(x1, x2), max(x1, x2)
	x4, x5 = min(x4, x5), max(x4, x5)
	x6, x7 = min(x6, x7), max(x6, x7)
	x4, x6 = min(x4, x6), max(x4, x6)
	x5, x7 = min(x5, x7), max(x5, x7)
	x5, x6 = min(x5, x6), max(x5, x6)
	x0, x4 = min(x0, x4), max(x0, x4)
	x2, x6 = min(x2, x6), max(x2, x6)
	x2, x4 = min(x2, x4), max(x2, x4)
	x1, x5 = min(x1, x5), max(x1, x5)
	x3, x7 = min(x3, x7), max(x3, x7)
	x3, x5 = min(x3, x5), max(x3, x5)
	x1, x2 = min(x1, x2), max(x1, x2)
	x3, x4 = min(x3, x4), max(x3, x4)
	x5, x6 = min(x5, x6), max(x5, x6)
	x8, x9 = min(x8, x9), max(x8, x9)
	x10, x11 = min(x10, x11), max(x10, x11)
	x8, x10 = min(x8, x10), max(x8, x10)
	x9, x11 = min(x9, x11), max(x9, x11)
	x9, x10 = min(x9, x10), max(x9, x10)
	x12, x13 = min(x12, x13), max(x12, x13)
	x14, x15 = min(x14, x15), max(x14, x15)
	x12, x14 = min(x12, x14), max(x12, x14)
	x13, x15 = min(x13, x15), max(x13, x15)
	x13, x14 = min(x13, x14), max(x13, x14)
	x8, x12 = min(x8, x12), max(x8, x12)
	x10, x14 = min(x10, x14), max(x10, x14)
	x10, x12 = min(x10, x12), max(x10, x12)
	x9, x13 = min(x9, x13), max(x9, x13)
	x11, x15 = min(x11, x15), max(x11, x15)
	x11, x13 = min(x11, x13), max(x11, x13)
	x9, x10 = min(x9, x10), max(x9, x10)
	x11, x12 = min(x11, x12), max(x11, x12)
	x13, x14 = min(x13, x14), max(x13, x14)
	x0, x8 = min(x0, x8), max(x0, x8)
	x4, x12 = min(x4, x12), max(x4, x12)
	x4, x8 = min(x4, x8), max(x4, x8)
	x2, x10 = min(x2, x10), max(x2, x10)
	x6, x14 = min(x6, x14), max(x6, x14)
	x6, x10 = min(x6, x10), max(x6, x10)
	x2, x4 = min(x2, x4), max(x2, x4)
	x6, x8 = min(x6, x8), max(x6, x8)
	x10, x12 = min(x10, x12), max(x10, x12)
	x1, x9 = min(x1, x9), max(x1, x9)
	x5, x13 = min(x5, x13), max(x5, x13)
	x5, x9 = min(x5, x9), max(x5, x9)
	x3, x11 = min(x3, x11), max(x3, x11)
	x7, x15 = min(x7, x15), max(x7, x15)
	x7, x11 = min(x7, x11), max(x7, x11)
	x3, x5 = min(x3, x5), max(x3, x5)
	x7, x9 = min(x7, x9), max(x7, x9)
	x11, x13 = min(x11, x13), max(x11, x13)
	x1, x2 = min(x1, x2), max(x1, x2)
	x3, x4 = min(x3, x4), max(x3, x4)
	x5, x6 = min(x5, x6), max(x5, x6)
	x7, x8 = min(x7, x8), max(x7, x8)
	x9, x10 = min(x9, x10), max(x9, x10)
	x11, x12 = min(x11, x12), max(x11, x12)
	x13, x14 = min(x13, x14), max(x13, x14)
	v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10], v[11], v[12], v[13], v[14], v[15] = x0, x1, x2, x3, x4, x5, x6, x7, x8, x9, x10, x11, x12, x13, x14, x15
}
