package sqlstore

import (
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/mloop/mloop/internal/tracking"
)

// expand lists the steps of segs.
func expand(segs []stepSegment) []int64 {
	var out []int64
	for _, g := range segs {
		for k := range g.count {
			out = append(out, g.at(k))
		}
	}
	return out
}

// checkSegments fails unless segs are normalised, ascending and disjoint.
func checkSegments(t *testing.T, segs []stepSegment) {
	t.Helper()
	for i, g := range segs {
		if g.count == 0 || (g.count == 1) != (g.stride == 0) {
			t.Fatalf("segment %d not normalised: %+v", i, g)
		}
		if i > 0 && segs[i-1].last() >= g.first {
			t.Fatalf("segments %d and %d overlap or are out of order: %+v %+v", i-1, i, segs[i-1], g)
		}
	}
}

// TestMergeSegments logs random step patterns in random batches and checks
// that the segments always hold exactly the steps logged, that membership
// agrees, and that sampling agrees with tracking.SampleSteps.
func TestMergeSegments(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 8))
	patterns := map[string]func() []int64{
		"dense": func() []int64 { return seq(0, 1, 500) },
		"strided with a last step": func() []int64 {
			return append(seq(0, 100, 50), 4999)
		},
		"two strides": func() []int64 { return append(seq(0, 10, 100), seq(1000, 100, 30)...) },
		"random gaps": func() []int64 {
			var out []int64
			x := int64(-1000)
			for range 300 {
				x += 1 + rng.Int64N(5)
				out = append(out, x)
			}
			return out
		},
		"extremes": func() []int64 { return []int64{math.MinInt64, -1, 0, 1, math.MaxInt64 - 1, math.MaxInt64} },
	}
	for name, pattern := range patterns {
		t.Run(name, func(t *testing.T) {
			for trial := range 20 {
				all := pattern()
				order := slices.Clone(all)
				if trial > 0 {
					rng.Shuffle(len(order), func(i, j int) { order[i], order[j] = order[j], order[i] })
				}
				var segs []stepSegment
				seen := map[int64]bool{}
				for len(order) > 0 {
					n := min(len(order), 1+rng.IntN(40))
					batch := slices.Clone(order[:n])
					order = order[n:]
					slices.Sort(batch)
					var fresh []int64
					for _, s := range batch {
						if got := segmentsContain(segs, s); got != seen[s] {
							t.Fatalf("contains %d: got %v want %v", s, got, seen[s])
						}
						if !seen[s] {
							fresh = append(fresh, s)
							seen[s] = true
						}
					}
					segs = mergeSegments(segs, fresh)
					checkSegments(t, segs)
				}
				want := slices.Clone(all)
				slices.Sort(want)
				if got := expand(segs); !reflect.DeepEqual(got, want) {
					t.Fatalf("trial %d: segments %v hold %v want %v", trial, segs, got, want)
				}
				if trial == 0 && len(segs) > 3 && name != "random gaps" {
					t.Errorf("in order: got %d segments %v want at most 3", len(segs), segs)
				}
				for _, q := range [][3]int64{{math.MinInt64, math.MaxInt64, 10}, {-5, 300, 7}, {2, 2, 1}, {0, 4999, 1000}, {100, 50, 3}} {
					lo, hi := max(q[0], want[0]), min(q[1], want[len(want)-1])
					if lo > hi {
						continue
					}
					got := sampleSegments(segs, lo, hi, int(q[2]))
					exp := tracking.SampleSteps(want, lo, hi, int(q[2]))
					if len(exp) == 0 {
						exp = []int64{}
					}
					if !reflect.DeepEqual(got, exp) && !(len(got) == 0 && len(exp) == 0) {
						t.Fatalf("sample [%d, %d] max %d:\ngot  %v\nwant %v", lo, hi, q[2], got, exp)
					}
				}
			}
		})
	}
}

func seq(first, stride, n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = first + int64(i)*stride
	}
	return out
}

func TestSegmentsEncoding(t *testing.T) {
	segs := []stepSegment{segment(math.MinInt64, 0, 1), segment(-3, 3, 1000), segment(10_000, 1, 1<<40)}
	got, err := decodeSegments(encodeSegments(segs))
	if err != nil || !reflect.DeepEqual(got, segs) {
		t.Errorf("round trip: got %v, %v want %v", got, err, segs)
	}
	if got, err := decodeSegments(encodeSegments(nil)); got != nil || err != nil {
		t.Errorf("irregular: got %v, %v want nil, nil", got, err)
	}
	for _, bad := range [][]byte{{0x80}, {0x02}, {0x02, 0x00}, {0x02, 0x00, 0x02}, {0x02, 0x01, 0x01}, {0x02, 0x00, 0x00}} {
		if _, err := decodeSegments(bad); err == nil {
			t.Errorf("decode %x: got no error want errCorruptSegments", bad)
		}
	}
}

// FuzzDecodeSegments checks that stored segments, whatever their bytes, never
// make decoding or sampling panic.
func FuzzDecodeSegments(f *testing.F) {
	f.Add(encodeSegments([]stepSegment{segment(0, 1, 100), segment(500, 0, 1)}), int64(0), int64(1000), 10)
	f.Add([]byte{0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01, 0x03}, int64(math.MinInt64), int64(math.MaxInt64), 1)
	f.Fuzz(func(t *testing.T, b []byte, lo, hi int64, maxResults int) {
		segs, err := decodeSegments(b)
		if err != nil || maxResults <= 0 || lo > hi {
			return
		}
		_ = sampleSegments(segs, lo, hi, min(maxResults, 1000))
		_ = segmentsContain(segs, lo)
	})
}
