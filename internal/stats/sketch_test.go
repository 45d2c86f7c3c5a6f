package stats

import (
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// benchValues returns n pseudo-random values for benchmarks.
func benchValues(n int) []float64 {
	r := rand.New(rand.NewPCG(1, 2))
	xs := make([]float64, n)
	for i := range xs {
		xs[i] = r.NormFloat64()*100 + 1000
	}
	return xs
}

func BenchmarkQuantileSketchAdd(b *testing.B) {
	xs := benchValues(1 << 20)
	s := NewQuantileSketch(0)
	b.ResetTimer()
	for i := range b.N {
		s.Add(xs[i&(1<<20-1)])
	}
}

func BenchmarkQuantileSketchAddSlice(b *testing.B) {
	xs := benchValues(1 << 16)
	s := NewQuantileSketch(0)
	b.ResetTimer()
	for i := 0; i < b.N; i += len(xs) {
		s.AddSlice(xs[:min(len(xs), b.N-i)])
	}
}

func BenchmarkQuantileSketchMerge(b *testing.B) {
	xs := benchValues(1 << 16)
	parts := make([]*QuantileSketch, 16)
	for i := range parts {
		parts[i] = NewQuantileSketch(0)
		parts[i].AddSlice(xs[i*4096 : (i+1)*4096])
	}
	b.ResetTimer()
	for i := range b.N {
		s := NewQuantileSketch(0)
		_ = i
		for _, p := range parts {
			s.Merge(p)
		}
	}
}

func BenchmarkQuantileSketchQuery(b *testing.B) {
	s := NewQuantileSketch(0)
	s.AddSlice(benchValues(1 << 20))
	b.ResetTimer()
	for i := range b.N {
		_ = s.CDF(1000 + float64(i%200-100))
	}
}

func BenchmarkDistinctAddFloat(b *testing.B) {
	xs := benchValues(1 << 20)
	c := NewDistinctCounter()
	b.ResetTimer()
	for i := range b.N {
		c.AddFloat(xs[i&(1<<20-1)])
	}
}

func BenchmarkDistinctAddFloatExact(b *testing.B) {
	c := NewDistinctCounter()
	b.ResetTimer()
	for i := range b.N {
		c.AddFloat(float64(i % 1000))
	}
}

func BenchmarkDistinctAddString(b *testing.B) {
	vals := make([]string, 1<<16)
	for i := range vals {
		vals[i] = "value-" + strconv.Itoa(i)
	}
	c := NewDistinctCounter()
	b.ResetTimer()
	for i := range b.N {
		c.AddString(vals[i&(1<<16-1)])
	}
}

func BenchmarkDistinctMerge(b *testing.B) {
	x, y := NewDistinctCounter(), NewDistinctCounter()
	for i := range 100000 {
		x.AddFloat(float64(i))
		y.AddFloat(float64(i + 50000))
	}
	b.ResetTimer()
	for range b.N {
		z := x.Clone()
		z.Merge(y)
	}
}

func BenchmarkFrequentAddTracked(b *testing.B) {
	vals := make([]string, 500)
	for i := range vals {
		vals[i] = "airport-" + strconv.Itoa(i)
	}
	f := NewFrequentItems(0)
	for _, v := range vals {
		f.Add(v, 1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f.Add(vals[i%len(vals)], 1)
	}
}

func BenchmarkFrequentAddBytesTracked(b *testing.B) {
	vals := make([][]byte, 500)
	f := NewFrequentItems(0)
	for i := range vals {
		vals[i] = []byte("airport-" + strconv.Itoa(i))
		f.AddBytes(vals[i], 1)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f.AddBytes(vals[i%len(vals)], 1)
	}
}

func BenchmarkFrequentAddApproximate(b *testing.B) {
	// Zipf-distributed values over a domain far above the limit.
	r := rand.New(rand.NewPCG(3, 4))
	z := rand.NewZipf(r, 1.1, 1, 1<<20)
	vals := make([]string, 1<<16)
	for i := range vals {
		vals[i] = strconv.FormatUint(z.Uint64(), 10)
	}
	f := NewFrequentItems(0)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		f.Add(vals[i&(1<<16-1)], 1)
	}
}

func BenchmarkFrequentMerge(b *testing.B) {
	x, y := NewFrequentItems(0), NewFrequentItems(0)
	for i := range 5000 {
		x.Add(strconv.Itoa(i%1500), int64(i%7+1))
		y.Add(strconv.Itoa(i%1700+300), int64(i%5+1))
	}
	b.ResetTimer()
	for range b.N {
		z := x.Clone()
		z.Merge(y)
	}
}

func BenchmarkMomentsAdd(b *testing.B) {
	xs := benchValues(1 << 16)
	var m Moments
	b.ResetTimer()
	for i := range b.N {
		m.Add(xs[i&(1<<16-1)])
	}
	if math.IsNaN(m.Mean) {
		b.Fatal("NaN mean")
	}
}

func BenchmarkMomentsMerge(b *testing.B) {
	o := Moments{N: 100, Mean: 3, M2: 40, Min: 1, Max: 9}
	var m Moments
	for range b.N {
		m.Merge(o)
	}
}
