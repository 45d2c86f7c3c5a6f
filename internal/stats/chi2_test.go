package stats

import (
	"math"
	"strings"
	"testing"
)

func TestChi2ContingencyErrors(t *testing.T) {
	tests := []struct {
		name  string
		table [][]float64
		want  string
	}{
		{"nil", nil, "empty table"},
		{"empty row", [][]float64{{}}, "empty table"},
		{"ragged", [][]float64{{1, 2}, {3}}, "row 1 has 1 columns, want 2"},
		{"negative", [][]float64{{1, -2}, {3, 4}}, "negative count -2 at row 0, column 1"},
		{"NaN", [][]float64{{1, 2}, {math.NaN(), 4}}, "NaN at row 1, column 0"},
		{"infinite", [][]float64{{1, 2}, {3, math.Inf(1)}}, "infinite count at row 1, column 1"},
		{"zero column", [][]float64{{0, 5}, {0, 6}}, "expected frequency is zero at row 0, column 0"},
		{"zero row", [][]float64{{1, 2}, {0, 0}}, "expected frequency is zero at row 1, column 0"},
		{"all zero", [][]float64{{0, 0}, {0, 0}}, "expected frequency is zero"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Chi2Contingency(tt.table, true)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got error %v, want one containing %q", err, tt.want)
			}
		})
	}
}

// TestChi2ContingencyYates checks the 2×2 statistic against the textbook
// closed form N·(|ad−bc| − N/2)² / (r1·r2·c1·c2), valid when every |O−E|
// is at least 0.5.
func TestChi2ContingencyYates(t *testing.T) {
	a, b, c, d := 12.0, 30.0, 25.0, 9.0
	n := a + b + c + d
	got, err := Chi2Contingency([][]float64{{a, b}, {c, d}}, true)
	if err != nil {
		t.Fatal(err)
	}
	num := math.Abs(a*d-b*c) - n/2
	want := n * num * num / ((a + b) * (c + d) * (a + c) * (b + d))
	if relErr(got.Statistic, want) > 1e-13 {
		t.Errorf("statistic got %.17g, want %.17g", got.Statistic, want)
	}
	if got.DoF != 1 {
		t.Errorf("dof got %d, want 1", got.DoF)
	}
	// Without correction: N·(ad−bc)² / (r1·r2·c1·c2).
	got, err = Chi2Contingency([][]float64{{a, b}, {c, d}}, false)
	if err != nil {
		t.Fatal(err)
	}
	num = a*d - b*c
	want = n * num * num / ((a + b) * (c + d) * (a + c) * (b + d))
	if relErr(got.Statistic, want) > 1e-13 {
		t.Errorf("uncorrected statistic got %.17g, want %.17g", got.Statistic, want)
	}
}

// TestChi2ContingencyYatesSmallDifference checks that the correction never
// moves an observation past its expected value (scipy gh-13875): when every
// |O−E| is below 0.5 the corrected statistic is 0.
func TestChi2ContingencyYatesSmallDifference(t *testing.T) {
	got, err := Chi2Contingency([][]float64{{10, 10}, {10, 11}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if got.Statistic != 0 || got.PValue != 1 {
		t.Errorf("got %+v, want statistic 0 and p-value 1", got)
	}
}

func TestChi2ContingencyOneRow(t *testing.T) {
	got, err := Chi2Contingency([][]float64{{1, 2, 3}}, true)
	if err != nil {
		t.Fatal(err)
	}
	if got.DoF != 0 || got.Statistic != 0 || got.PValue != 1 {
		t.Errorf("got %+v, want dof 0, statistic 0, p-value 1", got)
	}
}

func TestChi2SFSpecialValues(t *testing.T) {
	tests := []struct {
		x, k, want float64
	}{
		{0, 3, 1},
		{-1, 3, 1},
		{math.Inf(1), 3, 0},
		{1, 0, math.NaN()},
		{1, -2, math.NaN()},
		{math.NaN(), 2, math.NaN()},
		{1, math.NaN(), math.NaN()},
	}
	for _, tt := range tests {
		got := Chi2SF(tt.x, tt.k)
		if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("Chi2SF(%g, %g) got %g, want %g", tt.x, tt.k, got, tt.want)
		}
	}
}

// TestChi2SFClosedForms checks the survival function against closed forms:
// k = 2 gives e^(−x/2), k = 1 gives erfc(√(x/2)), k = 4 gives
// e^(−x/2)·(1 + x/2).
func TestChi2SFClosedForms(t *testing.T) {
	for _, x := range []float64{1e-6, 0.01, 0.3, 1, 2.2, 5, 17, 60, 200, 700, 1300} {
		checks := []struct {
			k, want float64
		}{
			{2, math.Exp(-x / 2)},
			{1, math.Erfc(math.Sqrt(x / 2))},
			{4, math.Exp(-x/2) * (1 + x/2)},
		}
		for _, c := range checks {
			got := Chi2SF(x, c.k)
			if relErr(got, c.want) > 1e-12 && math.Abs(got-c.want) > 1e-300 {
				t.Errorf("Chi2SF(%g, %g) got %.17g, want %.17g", x, c.k, got, c.want)
			}
		}
	}
}

// TestChi2SFLargeDoF checks that for large k the distribution's median sits
// near k(1 − 2/(9k))³ (Wilson–Hilferty), and that the survival function
// falls as x grows.
func TestChi2SFLargeDoF(t *testing.T) {
	for _, k := range []float64{1e3, 1e5, 1e7} {
		median := k * math.Pow(1-2/(9*k), 3)
		if got := Chi2SF(median, k); math.Abs(got-0.5) > 1e-3 {
			t.Errorf("Chi2SF(median %g, %g) got %g, want about 0.5", median, k, got)
		}
		prev := 1.0
		for c := -8.0; c <= 30; c += 0.5 {
			x := k + c*math.Sqrt(2*k)
			got := Chi2SF(x, k)
			if got > prev {
				t.Errorf("Chi2SF(%g, %g) = %g rises above %g", x, k, got, prev)
			}
			prev = got
		}
	}
}
