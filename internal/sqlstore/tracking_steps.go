package sqlstore

import (
	"encoding/binary"
	"errors"
	"math"
	"slices"
	"sort"
)

// The distinct steps of a metric series, kept as arithmetic runs ("step
// segments") in the series row while they need few runs. A series logged at
// 0, 1, 2, … is one segment; one logged every 100 steps plus its last step is
// two. With them, LogBatch knows which steps are new without reading the
// history, and SampledMetricSteps picks steps by rank arithmetically, without
// scanning a million points. A series whose steps need more than maxSegments
// runs is irregular: its segments are dropped for good and both fall back to
// SQL.

// maxSegments bounds the segments a series keeps.
const maxSegments = 64

// stepSegment is the run of count steps first, first+stride, …; stride is 0
// when count is 1. Arithmetic is unsigned so that runs spanning the whole
// int64 range cannot overflow.
type stepSegment struct {
	first  int64
	stride uint64
	count  uint64
}

// segment returns a normalised segment.
func segment(first int64, stride, count uint64) stepSegment {
	if count == 1 {
		stride = 0
	}
	return stepSegment{first: first, stride: stride, count: count}
}

// at returns the k-th step of g.
func (g stepSegment) at(k uint64) int64 { return int64(uint64(g.first) + k*g.stride) }

// last returns the largest step of g.
func (g stepSegment) last() int64 { return g.at(g.count - 1) }

// contains reports whether step is one of g's steps.
func (g stepSegment) contains(step int64) bool {
	if step < g.first || step > g.last() {
		return false
	}
	return g.count == 1 || (uint64(step)-uint64(g.first))%g.stride == 0
}

// segmentsContain reports whether step is in one of segs (ascending, disjoint).
func segmentsContain(segs []stepSegment, step int64) bool {
	i := sort.Search(len(segs), func(i int) bool { return segs[i].first > step }) - 1
	return i >= 0 && segs[i].contains(step)
}

// segmentBuilder collects ascending, distinct steps and runs into segments,
// extending the current segment greedily.
type segmentBuilder struct {
	out []stepSegment
	cur stepSegment
}

func (b *segmentBuilder) addStep(x int64) {
	switch {
	case b.cur.count == 0:
		b.cur = segment(x, 0, 1)
	case b.cur.count == 1:
		b.cur = segment(b.cur.first, uint64(x)-uint64(b.cur.first), 2)
	case uint64(x)-uint64(b.cur.last()) == b.cur.stride:
		b.cur.count++
	default:
		b.out = append(b.out, b.cur)
		b.cur = segment(x, 0, 1)
	}
}

func (b *segmentBuilder) addRun(g stepSegment) {
	switch {
	case g.count == 1:
		b.addStep(g.first)
	case b.cur.count == 0:
		b.cur = g
	case b.cur.count == 1 && uint64(g.first)-uint64(b.cur.first) == g.stride:
		b.cur = segment(b.cur.first, g.stride, g.count+1)
	case b.cur.count > 1 && b.cur.stride == g.stride && uint64(g.first)-uint64(b.cur.last()) == g.stride:
		b.cur.count += g.count
	default:
		b.out = append(b.out, b.cur)
		b.cur = g
	}
}

func (b *segmentBuilder) segments() []stepSegment {
	if b.cur.count > 0 {
		b.out = append(b.out, b.cur)
	}
	return b.out
}

// mergeSegments returns the segments of the union of segs (ascending,
// disjoint) and steps (ascending, distinct, none in segs). A new step inside
// a segment's span splits it around the step.
func mergeSegments(segs []stepSegment, steps []int64) []stepSegment {
	var b segmentBuilder
	i := 0
	for _, g := range segs {
		for {
			for i < len(steps) && steps[i] < g.first {
				b.addStep(steps[i])
				i++
			}
			if i == len(steps) || steps[i] > g.last() {
				break
			}
			// steps[i] lies strictly inside g, so g has several steps and
			// steps[i] is off its grid: split g around it.
			before := (uint64(steps[i])-uint64(g.first))/g.stride + 1 // steps of g below steps[i]
			b.addRun(segment(g.first, g.stride, before))
			b.addStep(steps[i])
			g = segment(g.at(before), g.stride, g.count-before)
			i++
		}
		b.addRun(g)
	}
	for ; i < len(steps); i++ {
		b.addStep(steps[i])
	}
	return b.segments()
}

// clipSegments returns the parts of segs within [lo, hi] and how many steps
// they hold, at most math.MaxInt64.
func clipSegments(segs []stepSegment, lo, hi int64) ([]stepSegment, uint64) {
	var out []stepSegment
	var n uint64
	for _, g := range segs {
		if g.last() < lo || g.first > hi {
			continue
		}
		if g.count == 1 {
			out, n = append(out, g), min(n+1, math.MaxInt64)
			continue
		}
		var k0 uint64
		if lo > g.first {
			d := uint64(lo) - uint64(g.first)
			k0 = d / g.stride
			if d%g.stride != 0 {
				k0++
			}
		}
		k1 := g.count - 1
		if hi < g.last() {
			k1 = (uint64(hi) - uint64(g.first)) / g.stride
		}
		if k0 > k1 {
			continue
		}
		part := segment(g.at(k0), g.stride, k1-k0+1)
		out, n = append(out, part), n+min(part.count, math.MaxInt64-n)
	}
	return out, n
}

// sampleSegments samples the steps of segs within [lo, hi] by MLflow's rule
// (see sampleRanks) without materialising them.
func sampleSegments(segs []stepSegment, lo, hi int64, maxResults int) []int64 {
	parts, n := clipSegments(segs, lo, hi)
	if n <= uint64(maxResults) {
		out := make([]int64, 0, n)
		for _, g := range parts {
			for k := range g.count {
				out = append(out, g.at(k))
			}
		}
		return out
	}
	ranks := sampleRanks(int64(n), maxResults)
	out := make([]int64, 0, len(ranks))
	var before uint64 // steps in parts[:p]
	p := 0
	for _, r := range ranks {
		for uint64(r) >= before+parts[p].count {
			before += parts[p].count
			p++
		}
		out = append(out, parts[p].at(uint64(r)-before))
	}
	return out
}

// stepAtRank returns the step of rank r (from 0) in segs, which must hold
// more than r steps.
func stepAtRank(segs []stepSegment, r uint64) int64 {
	for _, g := range segs {
		if r < g.count {
			return g.at(r)
		}
		r -= g.count
	}
	return math.MaxInt64 // unreachable for a valid rank: past every step
}

// sampleRanks returns the ranks MLflow's rule picks among n distinct steps
// when n > maxResults: int(i * (n / maxResults)) for i in [0, maxResults),
// then n-1, ascending and distinct. The float arithmetic is Python's.
func sampleRanks(n int64, maxResults int) []int64 {
	interval := float64(n) / float64(maxResults)
	ranks := make([]int64, 0, maxResults+1)
	for i := range maxResults {
		ranks = append(ranks, int64(float64(i)*interval))
	}
	ranks = append(ranks, n-1)
	return slices.Compact(ranks)
}

// encodeSegments encodes segs as varints: first, stride, count per segment.
// Irregular series (nil segments) encode as nil, stored as NULL.
func encodeSegments(segs []stepSegment) []byte {
	if segs == nil {
		return nil
	}
	b := make([]byte, 0, 12*len(segs))
	for _, g := range segs {
		b = binary.AppendVarint(b, g.first)
		b = binary.AppendUvarint(b, g.stride)
		b = binary.AppendUvarint(b, g.count)
	}
	return b
}

// errCorruptSegments reports step segments that do not decode.
var errCorruptSegments = errors.New("corrupt step segments")

// decodeSegments decodes what encodeSegments encoded; nil or empty input is
// an irregular series (nil segments).
func decodeSegments(b []byte) ([]stepSegment, error) {
	if len(b) == 0 {
		return nil, nil
	}
	var segs []stepSegment
	for len(b) > 0 {
		first, n := binary.Varint(b)
		if n <= 0 {
			return nil, errCorruptSegments
		}
		b = b[n:]
		stride, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, errCorruptSegments
		}
		b = b[n:]
		count, n := binary.Uvarint(b)
		if n <= 0 || count == 0 || (count > 1) == (stride == 0) {
			return nil, errCorruptSegments
		}
		// The last step must fit in an int64 and segments must ascend.
		if count > 1 && count-1 > (uint64(math.MaxInt64)-uint64(first))/stride {
			return nil, errCorruptSegments
		}
		if len(segs) > 0 && first <= segs[len(segs)-1].last() {
			return nil, errCorruptSegments
		}
		b = b[n:]
		segs = append(segs, stepSegment{first: first, stride: stride, count: count})
	}
	return segs, nil
}
