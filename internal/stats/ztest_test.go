package stats

import (
	"math"
	"strings"
	"testing"
)

func TestTwoProportionZErrors(t *testing.T) {
	tests := []struct {
		x1, n1, x2, n2 int64
		want           string
	}{
		{1, 0, 1, 2, "sample sizes must be positive, got 0 and 2"},
		{1, 2, 1, -1, "sample sizes must be positive"},
		{-1, 2, 1, 2, "count -1 outside [0, 2]"},
		{1, 2, 3, 2, "count 3 outside [0, 2]"},
	}
	for _, tt := range tests {
		_, err := TwoProportionZ(tt.x1, tt.n1, tt.x2, tt.n2)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("TwoProportionZ(%d, %d, %d, %d): got error %v, want %q", tt.x1, tt.n1, tt.x2, tt.n2, err, tt.want)
		}
	}
}

func TestTwoProportionZDegenerate(t *testing.T) {
	for _, c := range [][4]int64{{0, 10, 0, 20}, {10, 10, 20, 20}} {
		got, err := TwoProportionZ(c[0], c[1], c[2], c[3])
		if err != nil {
			t.Fatal(err)
		}
		if got != (TestResult{Statistic: 0, PValue: 1}) {
			t.Errorf("TwoProportionZ%v got %+v, want statistic 0, p-value 1", c, got)
		}
	}
}

func TestTwoProportionZByHand(t *testing.T) {
	// p1 = 0.3, p2 = 0.5, pooled 0.4: z = −0.2/√(0.24·(1/100 + 1/100)).
	got, err := TwoProportionZ(30, 100, 50, 100)
	if err != nil {
		t.Fatal(err)
	}
	wantZ := -0.2 / math.Sqrt(0.24*0.02)
	if relErr(got.Statistic, wantZ) > 1e-14 {
		t.Errorf("statistic got %.17g, want %.17g", got.Statistic, wantZ)
	}
	wantP := math.Erfc(math.Abs(wantZ) / math.Sqrt2)
	if relErr(got.PValue, wantP) > 1e-13 {
		t.Errorf("p-value got %.17g, want %.17g", got.PValue, wantP)
	}
	swapped, _ := TwoProportionZ(50, 100, 30, 100)
	if swapped.Statistic != -got.Statistic || swapped.PValue != got.PValue {
		t.Errorf("swapped got %+v, want statistic %g and the same p-value", swapped, -got.Statistic)
	}
}

func TestNormalSF(t *testing.T) {
	if got := NormalSF(0); got != 0.5 {
		t.Errorf("NormalSF(0) got %g, want 0.5", got)
	}
	if got := NormalSF(math.NaN()); !math.IsNaN(got) {
		t.Errorf("NormalSF(NaN) got %g, want NaN", got)
	}
	if got := NormalSF(math.Inf(1)); got != 0 {
		t.Errorf("NormalSF(+Inf) got %g, want 0", got)
	}
	for _, z := range []float64{0.1, 0.5, 1, 1.96, 3, 6} {
		if s := NormalSF(z) + NormalSF(-z); math.Abs(s-1) > 1e-15 {
			t.Errorf("NormalSF(%g) + NormalSF(−%g) got %.17g, want 1", z, z, s)
		}
	}
	// Deep tail: sf(z) ≈ φ(z)/z·(1 − 1/z² + 3/z⁴), relative error below 15/z⁶.
	z := 30.0
	approx := math.Exp(-z*z/2) / (z * math.Sqrt(2*math.Pi)) * (1 - 1/(z*z) + 3/math.Pow(z, 4))
	if relErr(NormalSF(z), approx) > 15/math.Pow(z, 6) {
		t.Errorf("NormalSF(30) got %g, want about %g", NormalSF(z), approx)
	}
}
