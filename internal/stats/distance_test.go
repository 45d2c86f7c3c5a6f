package stats

import (
	"math"
	"strings"
	"testing"
)

func TestDistributionErrors(t *testing.T) {
	tests := []struct {
		name string
		p, q []float64
		want string
	}{
		{"lengths", []float64{1, 2}, []float64{1}, "vectors have different lengths 2 and 1"},
		{"empty", nil, nil, "empty vectors"},
		{"negative", []float64{1, -1}, []float64{1, 1}, "first vector has negative value -1 at index 1"},
		{"NaN", []float64{1, 1}, []float64{math.NaN(), 1}, "second vector has NaN at index 0"},
		{"infinite", []float64{math.Inf(1), 1}, []float64{1, 1}, "first vector has an infinite value at index 0"},
		{"zero sum", []float64{0, 0}, []float64{1, 1}, "first vector sums to zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := JensenShannon(tt.p, tt.q, 0); err == nil || !strings.Contains(err.Error(), "jensen-shannon: "+tt.want) {
				t.Errorf("JensenShannon: got error %v, want %q", err, tt.want)
			}
			if _, err := PSI(tt.p, tt.q); err == nil || !strings.Contains(err.Error(), "psi: "+tt.want) {
				t.Errorf("PSI: got error %v, want %q", err, tt.want)
			}
		})
	}
	for _, base := range []float64{1, 0.5, math.NaN(), math.Inf(1)} {
		if _, err := JensenShannon([]float64{1}, []float64{1}, base); err == nil || !strings.Contains(err.Error(), "invalid base") {
			t.Errorf("JensenShannon with base %g: got error %v, want invalid base", base, err)
		}
	}
}

func TestJensenShannonProperties(t *testing.T) {
	p := []float64{3, 0, 5, 2}
	q := []float64{1, 4, 0, 5}
	a, err := JensenShannon(p, q, 2)
	if err != nil {
		t.Fatal(err)
	}
	b, err := JensenShannon(q, p, 2)
	if err != nil {
		t.Fatal(err)
	}
	if a != b {
		t.Errorf("JS(p, q) got %g, JS(q, p) got %g, want equal", a, b)
	}
	if a <= 0 || a >= 1 {
		t.Errorf("JS base 2 got %g, want in (0, 1)", a)
	}
	// Disjoint supports: divergence ln 2, so distance 1 in base 2 and
	// √(ln 2) in base e.
	d2, _ := JensenShannon([]float64{1, 0}, []float64{0, 1}, 2)
	de, _ := JensenShannon([]float64{1, 0}, []float64{0, 1}, 0)
	if relErr(d2, 1) > 1e-15 || relErr(de, math.Sqrt(math.Ln2)) > 1e-15 {
		t.Errorf("disjoint: got %g (base 2) and %g (base e), want 1 and %g", d2, de, math.Sqrt(math.Ln2))
	}
	// Counts and proportions give the same answer; identical inputs give 0.
	c, _ := JensenShannon([]float64{2, 4, 6}, []float64{1, 2, 3}, 0)
	if c != 0 {
		t.Errorf("proportional vectors: got %g, want 0", c)
	}
}

func TestPSIByHand(t *testing.T) {
	// ref proportions 0.5, 0.5, 0; cur 0.25, 0.25, 0.5. The empty reference
	// bin becomes 0.0001.
	got, err := PSI([]float64{2, 2, 0}, []float64{1, 1, 2})
	if err != nil {
		t.Fatal(err)
	}
	want := 2*(0.25-0.5)*math.Log(0.25/0.5) + (0.5-PSIEpsilon)*math.Log(0.5/PSIEpsilon)
	if relErr(got, want) > 1e-15 {
		t.Errorf("got %.17g, want %.17g", got, want)
	}
	same, _ := PSI([]float64{1, 2, 3}, []float64{10, 20, 30})
	if same != 0 {
		t.Errorf("proportional vectors: got %g, want 0", same)
	}
}

func TestWassersteinErrors(t *testing.T) {
	tests := []struct {
		name         string
		u, v, uw, vw []float64
		want         string
	}{
		{"empty u", nil, []float64{1}, nil, nil, "u is empty"},
		{"empty v", []float64{1}, []float64{}, nil, nil, "v is empty"},
		{"NaN", []float64{1, math.NaN()}, []float64{1}, nil, nil, "u has non-finite value NaN at index 1"},
		{"infinite", []float64{1}, []float64{math.Inf(-1)}, nil, nil, "v has non-finite value -Inf at index 0"},
		{"weight length", []float64{1, 2}, []float64{1}, []float64{1}, nil, "u has 2 values but 1 weights"},
		{"negative weight", []float64{1}, []float64{1, 2}, nil, []float64{1, -1}, "v weights have negative value -1 at index 1"},
		{"zero weights", []float64{1}, []float64{1}, []float64{0}, nil, "u weights must sum to a positive finite number"},
		{"NaN weight", []float64{1}, []float64{1}, []float64{math.NaN()}, nil, "u weights have NaN at index 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Wasserstein(tt.u, tt.v, tt.uw, tt.vw)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

func TestWassersteinByHand(t *testing.T) {
	// Moving mass 1/2 from 0 to 1 and 1/2 from 1 to 3: (1 + 2)/2.
	got, err := Wasserstein([]float64{0, 1}, []float64{1, 3}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got != 1.5 {
		t.Errorf("got %g, want 1.5", got)
	}
	// A shift moves every value by the same amount.
	u := []float64{0.5, -2, 7, 3, 3}
	v := make([]float64, len(u))
	for i := range u {
		v[i] = u[i] + 0.25
	}
	if got, _ := Wasserstein(u, v, nil, nil); relErr(got, 0.25) > 1e-15 {
		t.Errorf("shift: got %g, want 0.25", got)
	}
	// Weights: all of u's mass at 0 against v's at 2.
	if got, _ := Wasserstein([]float64{0, 5}, []float64{2}, []float64{1, 0}, nil); got != 2 {
		t.Errorf("weighted: got %g, want 2", got)
	}
	if got := WassersteinSorted(nil, []float64{1}); !math.IsNaN(got) {
		t.Errorf("WassersteinSorted(empty) got %g, want NaN", got)
	}
}

func TestWassersteinSortedAllocatesNothing(t *testing.T) {
	u := benchSamples(1000, 0)
	v := benchSamples(1500, 0.2)
	allocs := testing.AllocsPerRun(10, func() { WassersteinSorted(u, v) })
	if allocs != 0 {
		t.Errorf("got %g allocations per run, want 0", allocs)
	}
}

// BenchmarkWassersteinSorted is the drift case: two sorted 500,000-value
// columns.
func BenchmarkWassersteinSorted(b *testing.B) {
	u := benchSamples(500000, 0)
	v := benchSamples(500000, 0.01)
	b.ResetTimer()
	for b.Loop() {
		WassersteinSorted(u, v)
	}
}
