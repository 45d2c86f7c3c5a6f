package stats

import (
	"encoding/binary"
	"math"
	"math/big"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

func TestKSTwoSampleErrors(t *testing.T) {
	tests := []struct {
		name   string
		x, y   []float64
		method KSMethod
		want   string
	}{
		{"empty x", nil, []float64{1}, KSAuto, "empty sample"},
		{"empty y", []float64{1}, []float64{}, KSAuto, "empty sample"},
		{"NaN in x", []float64{1, math.NaN()}, []float64{1}, KSAuto, "x has NaN at index 1"},
		{"NaN in y", []float64{1}, []float64{math.NaN()}, KSExact, "y has NaN at index 0"},
		{"unknown method", []float64{1}, []float64{2}, KSMethod("fast"), `unknown method "fast"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, f := range []func([]float64, []float64, KSMethod) (TestResult, error){KSTwoSample, KSTwoSampleSorted} {
				_, err := f(tt.x, tt.y, tt.method)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("got error %v, want one containing %q", err, tt.want)
				}
			}
		})
	}
}

func TestKSTwoSampleSortedRejectsUnsorted(t *testing.T) {
	_, err := KSTwoSampleSorted([]float64{1, 3, 2}, []float64{1, 2}, KSAuto)
	if err == nil || !strings.Contains(err.Error(), "x is not sorted ascending at index 2") {
		t.Errorf("got error %v, want x not sorted at index 2", err)
	}
	_, err = KSTwoSampleSorted([]float64{1, 2}, []float64{2, 1}, KSAuto)
	if err == nil || !strings.Contains(err.Error(), "y is not sorted ascending at index 1") {
		t.Errorf("got error %v, want y not sorted at index 1", err)
	}
}

func TestKSTwoSampleLeavesInputAlone(t *testing.T) {
	x := []float64{3, 1, 2}
	y := []float64{9, 0, 4, 4}
	x0, y0 := slices.Clone(x), slices.Clone(y)
	if _, err := KSTwoSample(x, y, KSAuto); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(x, x0) || !slices.Equal(y, y0) {
		t.Errorf("inputs changed: got %v %v, want %v %v", x, y, x0, y0)
	}
}

// TestKSTwoSampleSymmetric checks that swapping the samples changes nothing,
// and that the sorted entry point agrees with the unsorted one, on samples
// with many ties.
func TestKSTwoSampleSymmetric(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for trial := 0; trial < 50; trial++ {
		x := make([]float64, 1+r.IntN(60))
		y := make([]float64, 1+r.IntN(60))
		for i := range x {
			x[i] = float64(r.IntN(10))
		}
		for i := range y {
			y[i] = float64(r.IntN(12))
		}
		for _, m := range []KSMethod{KSAuto, KSExact, KSAsymp} {
			a, err := KSTwoSample(x, y, m)
			if err != nil {
				t.Fatal(err)
			}
			b, err := KSTwoSample(y, x, m)
			if err != nil {
				t.Fatal(err)
			}
			if a != b && !(math.IsNaN(a.PValue) && math.IsNaN(b.PValue)) {
				t.Errorf("%s: KS(x, y) got %+v, KS(y, x) got %+v", m, a, b)
			}
			if a.Statistic < 0 || a.Statistic > 1 || a.PValue < 0 || a.PValue > 1 {
				if !math.IsNaN(a.PValue) {
					t.Errorf("%s: got %+v, want statistic and p-value in [0, 1]", m, a)
				}
			}
		}
	}
}

// exactKSPValue counts lattice paths with big integers: the share of the
// C(n+m, n) paths from (0,0) to (n,m) that reach |i/n − j/m| ≥ d somewhere.
// It is an independent oracle for the exact two-sided p-value.
func exactKSPValue(n, m int, d float64) float64 {
	lcm := int64(n / int(gcd(int64(n), int64(m))) * m)
	h := int64(math.RoundToEven(d * float64(lcm)))
	inside := func(i, j int) bool {
		// |i/n − j/m| < h/lcm  ⇔  |i·lcm/n − j·lcm/m| < h
		diff := int64(i)*(lcm/int64(n)) - int64(j)*(lcm/int64(m))
		if diff < 0 {
			diff = -diff
		}
		return diff < h
	}
	paths := make([][]*big.Int, n+1)
	for i := range paths {
		paths[i] = make([]*big.Int, m+1)
		for j := range paths[i] {
			p := new(big.Int)
			if inside(i, j) {
				switch {
				case i == 0 && j == 0:
					p.SetInt64(1)
				default:
					if i > 0 {
						p.Add(p, paths[i-1][j])
					}
					if j > 0 {
						p.Add(p, paths[i][j-1])
					}
				}
			}
			paths[i][j] = p
		}
	}
	total := new(big.Int).Binomial(int64(n+m), int64(n))
	in := new(big.Rat).SetFrac(paths[n][m], total)
	f, _ := in.Float64()
	return 1 - f
}

func TestKSExactAgainstPathCount(t *testing.T) {
	for _, nm := range [][2]int{{3, 3}, {5, 5}, {12, 12}, {4, 6}, {7, 3}, {10, 15}, {25, 20}, {30, 30}} {
		n, m := nm[0], nm[1]
		lcm := n / int(gcd(int64(n), int64(m))) * m
		for h := 1; h <= lcm; h += max(1, lcm/17) {
			d := float64(h) / float64(lcm)
			got := KSPValue(d, int64(n), int64(m), KSExact)
			want := exactKSPValue(n, m, d)
			if math.Abs(got-want) > 1e-12*math.Max(1, 1/want) && math.Abs(got-want) > 1e-14 {
				// n == m and h == 1 is where scipy falls back to asymp.
				if !(n == m && h == 1) {
					t.Errorf("n=%d m=%d d=%g: got %.17g, want %.17g", n, m, d, got, want)
				}
			}
		}
	}
}

func TestKSPValueInvalid(t *testing.T) {
	for _, tt := range []struct {
		d      float64
		n, m   int64
		method KSMethod
	}{
		{0.5, 0, 3, KSAuto},
		{0.5, 3, -1, KSAuto},
		{math.NaN(), 3, 3, KSAuto},
		{-0.1, 3, 3, KSAuto},
		{1.5, 3, 3, KSExact},
		{0.5, 3, 3, KSMethod("x")},
	} {
		if got := KSPValue(tt.d, tt.n, tt.m, tt.method); !math.IsNaN(got) {
			t.Errorf("KSPValue(%g, %d, %d, %q) got %g, want NaN", tt.d, tt.n, tt.m, tt.method, got)
		}
	}
	if got := KSPValue(0, 20000, 20000, KSAsymp); got != 1 {
		t.Errorf("KSPValue(0, …) got %g, want 1", got)
	}
	if got := KSPValue(1, 20000, 20000, KSAsymp); got != 0 {
		t.Errorf("KSPValue(1, …) got %g, want 0", got)
	}
}

// TestKSPValueMonotone checks that the p-value does not increase with d on
// either side of the exact/asymptotic switch.
func TestKSPValueMonotone(t *testing.T) {
	for _, nm := range [][2]int64{{10000, 10000}, {10000, 10001}, {60000, 50000}, {50000000, 70000000}} {
		prev := 1.0
		for i := 1; i <= 60; i++ {
			d := float64(i) / 60 * 8 / math.Sqrt(float64(min(nm[0], nm[1])))
			p := KSPValue(d, nm[0], nm[1], KSAuto)
			if p > prev*(1+1e-12) {
				t.Errorf("n=%d m=%d: p(%g) = %g > p(previous d) = %g", nm[0], nm[1], d, p, prev)
			}
			prev = p
		}
	}
}

func FuzzKSTwoSample(f *testing.F) {
	f.Add([]byte{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16}, uint8(3))
	f.Add(make([]byte, 64), uint8(1))
	f.Fuzz(func(t *testing.T, data []byte, split uint8) {
		var vals []float64
		for len(data) >= 8 {
			vals = append(vals, math.Float64frombits(binary.LittleEndian.Uint64(data)))
			data = data[8:]
		}
		k := int(split)
		if k > len(vals) {
			k = len(vals)
		}
		x, y := vals[:k], vals[k:]
		for _, m := range []KSMethod{KSAuto, KSAsymp} {
			got, err := KSTwoSample(x, y, m)
			if err != nil {
				continue
			}
			if !(got.Statistic >= 0 && got.Statistic <= 1) {
				t.Fatalf("statistic %g outside [0, 1]", got.Statistic)
			}
			if !math.IsNaN(got.PValue) && !(got.PValue >= 0 && got.PValue <= 1) {
				t.Fatalf("p-value %g outside [0, 1]", got.PValue)
			}
			xs, ys := slices.Clone(x), slices.Clone(y)
			slices.Sort(xs)
			slices.Sort(ys)
			got2, err := KSTwoSampleSorted(xs, ys, m)
			if err != nil {
				t.Fatalf("sorted: %v", err)
			}
			if got2 != got && !(math.IsNaN(got.PValue) && math.IsNaN(got2.PValue)) {
				t.Fatalf("sorted got %+v, unsorted got %+v", got2, got)
			}
		}
	})
}

func benchSamples(n int, shift float64) []float64 {
	r := rand.New(rand.NewPCG(7, uint64(n)))
	v := make([]float64, n)
	for i := range v {
		v[i] = math.Round((r.NormFloat64()+shift)*1000) / 1000
	}
	slices.Sort(v)
	return v
}

// BenchmarkKSTwoSampleSorted is the drift case: two sorted 500,000-value
// columns, asymptotic p-value.
func BenchmarkKSTwoSampleSorted(b *testing.B) {
	x := benchSamples(500000, 0)
	y := benchSamples(500000, 0.01)
	b.ResetTimer()
	for b.Loop() {
		if _, err := KSTwoSampleSorted(x, y, KSAuto); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKSExactUnequal is the most expensive exact case KSAuto takes:
// disjoint samples of 10000 and 9999 values, where the lattice band spans
// the whole grid (about 10^8 steps).
func BenchmarkKSExactUnequal(b *testing.B) {
	x := make([]float64, 10000)
	y := make([]float64, 9999)
	for i := range x {
		x[i] = float64(i)
	}
	for i := range y {
		y[i] = float64(i) + 1e6
	}
	for b.Loop() {
		if _, err := KSTwoSampleSorted(x, y, KSAuto); err != nil {
			b.Fatal(err)
		}
	}
}
