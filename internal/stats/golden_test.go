package stats

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
)

// golden.json is written by testdata/gen_golden.py with Debian's
// python3-scipy 1.10.1; see that script for how to regenerate it.

const (
	goldenRel     = 1e-9   // relative tolerance against scipy
	goldenAbsStat = 1e-12  // absolute tolerance for statistics and distances near 0
	goldenAbsProb = 1e-300 // absolute tolerance for probabilities (the subnormal range)
)

// gfloat is a JSON number, or "nan", "inf", "-inf".
type gfloat float64

func (g *gfloat) UnmarshalJSON(b []byte) error {
	var s string
	if json.Unmarshal(b, &s) == nil {
		switch s {
		case "nan":
			*g = gfloat(math.NaN())
		case "inf":
			*g = gfloat(math.Inf(1))
		case "-inf":
			*g = gfloat(math.Inf(-1))
		default:
			return fmt.Errorf("bad float string %q", s)
		}
		return nil
	}
	var v float64
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*g = gfloat(v)
	return nil
}

func floats(v []gfloat) []float64 {
	if v == nil {
		return nil
	}
	out := make([]float64, len(v))
	for i, e := range v {
		out[i] = float64(e)
	}
	return out
}

type golden struct {
	Scipy   string              `json:"scipy"`
	Samples map[string][]gfloat `json:"samples"`
	KS      []struct {
		Name      string   `json:"name"`
		X         string   `json:"x"`
		NX        int      `json:"nx"`
		Y         string   `json:"y"`
		NY        int      `json:"ny"`
		YShift    float64  `json:"y_shift"`
		Method    KSMethod `json:"method"`
		Statistic gfloat   `json:"statistic"`
		PValue    gfloat   `json:"pvalue"`
	} `json:"ks_2samp"`
	KSPValue []struct {
		D      float64  `json:"d"`
		N1     int64    `json:"n1"`
		N2     int64    `json:"n2"`
		Method KSMethod `json:"method"`
		PValue gfloat   `json:"pvalue"`
	} `json:"ks_pvalue"`
	KSTwo []struct {
		N  float64 `json:"n"`
		X  float64 `json:"x"`
		SF gfloat  `json:"sf"`
	} `json:"kstwo_sf"`
	Smirnov []struct {
		N  int     `json:"n"`
		X  float64 `json:"x"`
		SF gfloat  `json:"sf"`
	} `json:"smirnov"`
	Chi2SF []struct {
		X  float64 `json:"x"`
		K  float64 `json:"k"`
		SF gfloat  `json:"sf"`
	} `json:"chi2_sf"`
	Chi2Contingency []struct {
		Name       string     `json:"name"`
		Table      [][]gfloat `json:"table"`
		Correction bool       `json:"correction"`
		Error      string     `json:"error"`
		Statistic  gfloat     `json:"statistic"`
		PValue     gfloat     `json:"pvalue"`
		DoF        int        `json:"dof"`
		Expected   [][]gfloat `json:"expected"`
	} `json:"chi2_contingency"`
	JensenShannon []struct {
		P        []gfloat `json:"p"`
		Q        []gfloat `json:"q"`
		Base     float64  `json:"base"`
		Distance gfloat   `json:"distance"`
	} `json:"jensenshannon"`
	PSI []struct {
		Ref []gfloat `json:"ref"`
		Cur []gfloat `json:"cur"`
		PSI gfloat   `json:"psi"`
	} `json:"psi"`
	Wasserstein []struct {
		Name     string   `json:"name"`
		U        string   `json:"u"`
		NU       int      `json:"nu"`
		V        string   `json:"v"`
		NV       int      `json:"nv"`
		UW       []gfloat `json:"uw"`
		VW       []gfloat `json:"vw"`
		Distance gfloat   `json:"distance"`
	} `json:"wasserstein"`
	ZTest []struct {
		X1        int64  `json:"x1"`
		N1        int64  `json:"n1"`
		X2        int64  `json:"x2"`
		N2        int64  `json:"n2"`
		Statistic gfloat `json:"statistic"`
		PValue    gfloat `json:"pvalue"`
	} `json:"ztest"`
	NormSF []struct {
		Z  float64 `json:"z"`
		SF gfloat  `json:"sf"`
	} `json:"norm_sf"`
}

var (
	goldenOnce sync.Once
	goldenData golden
	goldenErr  error
)

func loadGolden(t *testing.T) *golden {
	t.Helper()
	goldenOnce.Do(func() {
		b, err := os.ReadFile("testdata/golden.json")
		if err != nil {
			goldenErr = err
			return
		}
		goldenErr = json.Unmarshal(b, &goldenData)
	})
	if goldenErr != nil {
		t.Fatalf("load golden values: %v", goldenErr)
	}
	if goldenData.Scipy != "1.10.1" {
		t.Fatalf("golden values from scipy %q, want 1.10.1", goldenData.Scipy)
	}
	return &goldenData
}

func (g *golden) sample(t *testing.T, name string, n int) []float64 {
	t.Helper()
	s, ok := g.Samples[name]
	if !ok || n > len(s) {
		t.Fatalf("golden sample %q with %d values missing", name, n)
	}
	return floats(s[:n])
}

// relErr is |got−want|/|want| (0 when equal, +Inf when only one is NaN or
// infinite).
func relErr(got, want float64) float64 {
	switch {
	case got == want || (math.IsNaN(got) && math.IsNaN(want)):
		return 0
	case math.IsNaN(got) || math.IsNaN(want) || math.IsInf(got, 0) || math.IsInf(want, 0):
		return math.Inf(1)
	}
	return math.Abs(got-want) / math.Abs(want)
}

// errStats tracks the largest relative error seen against scipy for one
// function, reported with go test -v.
type errStats struct {
	name   string
	maxRel float64
	where  string
}

func (e *errStats) check(t *testing.T, what string, got, want, abs float64) {
	t.Helper()
	r := relErr(got, want)
	// Relative errors of values that are themselves within the absolute
	// tolerance of zero say nothing; leave them out of the report.
	if (math.Abs(want) > abs || math.IsNaN(got) != math.IsNaN(want)) && r > e.maxRel {
		e.maxRel, e.where = r, what
	}
	if r <= goldenRel {
		return
	}
	if !math.IsNaN(got) && !math.IsNaN(want) && !math.IsInf(want, 0) && math.Abs(got-want) <= abs {
		return
	}
	t.Errorf("%s: got %.17g, want %.17g (relative error %.3g)", what, got, want, r)
}

func (e *errStats) report(t *testing.T) {
	t.Helper()
	t.Logf("%s: largest relative error against scipy %.3g (%s)", e.name, e.maxRel, e.where)
}

func TestGoldenKSTwoSample(t *testing.T) {
	g := loadGolden(t)
	stat := &errStats{name: "KSTwoSample statistic"}
	pval := &errStats{name: "KSTwoSample p-value"}
	pv := &errStats{name: "KSPValue"}
	for _, c := range g.KS {
		x, y := g.sample(t, c.X, c.NX), g.sample(t, c.Y, c.NY)
		for i := range y {
			y[i] += c.YShift
		}
		got, err := KSTwoSample(x, y, c.Method)
		if err != nil {
			t.Errorf("%s: KSTwoSample: %v", c.Name, err)
			continue
		}
		stat.check(t, c.Name+" statistic", got.Statistic, float64(c.Statistic), goldenAbsStat)
		pval.check(t, c.Name+" p-value", got.PValue, float64(c.PValue), goldenAbsProb)

		xs, ys := sortedCopy(x), sortedCopy(y)
		got2, err := KSTwoSampleSorted(xs, ys, c.Method)
		if err != nil {
			t.Errorf("%s: KSTwoSampleSorted: %v", c.Name, err)
			continue
		}
		if got2 != got && !(math.IsNaN(got.PValue) && math.IsNaN(got2.PValue)) {
			t.Errorf("%s: KSTwoSampleSorted got %+v, KSTwoSample got %+v", c.Name, got2, got)
		}
		// The p-value from the reported statistic alone, as sketches use it.
		p := KSPValue(float64(c.Statistic), int64(c.NX), int64(c.NY), c.Method)
		pv.check(t, c.Name+" KSPValue", p, float64(c.PValue), goldenAbsProb)
	}
	for _, c := range g.KSPValue {
		what := fmt.Sprintf("KSPValue(%g, %d, %d, %s)", c.D, c.N1, c.N2, c.Method)
		pv.check(t, what, KSPValue(c.D, c.N1, c.N2, c.Method), float64(c.PValue), goldenAbsProb)
	}
	stat.report(t)
	pval.report(t)
	pv.report(t)
}

func TestGoldenKSTwoSF(t *testing.T) {
	g := loadGolden(t)
	e := &errStats{name: "kstwo.sf"}
	for _, c := range g.KSTwo {
		e.check(t, fmt.Sprintf("kstwoSF(%.17g, %g)", c.X, c.N), kstwoSF(c.X, c.N), float64(c.SF), goldenAbsProb)
	}
	e.report(t)
	s := &errStats{name: "smirnov"}
	for _, c := range g.Smirnov {
		s.check(t, fmt.Sprintf("smirnovSF(%d, %.17g)", c.N, c.X), smirnovSF(c.N, c.X), float64(c.SF), goldenAbsProb)
	}
	s.report(t)
}

func TestGoldenChi2SF(t *testing.T) {
	g := loadGolden(t)
	e := &errStats{name: "Chi2SF"}
	for _, c := range g.Chi2SF {
		e.check(t, fmt.Sprintf("Chi2SF(%.17g, %g)", c.X, c.K), Chi2SF(c.X, c.K), float64(c.SF), goldenAbsProb)
	}
	e.report(t)
}

func TestGoldenChi2Contingency(t *testing.T) {
	g := loadGolden(t)
	stat := &errStats{name: "Chi2Contingency statistic"}
	pval := &errStats{name: "Chi2Contingency p-value"}
	exp := &errStats{name: "Chi2Contingency expected"}
	for _, c := range g.Chi2Contingency {
		table := make([][]float64, len(c.Table))
		for i, row := range c.Table {
			table[i] = floats(row)
		}
		got, err := Chi2Contingency(table, c.Correction)
		if c.Error != "" {
			if err == nil {
				t.Errorf("%s: got %+v, want an error (scipy: %s)", c.Name, got, c.Error)
			} else if !strings.Contains(err.Error(), "expected frequency is zero") {
				t.Errorf("%s: got error %q, want one about a zero expected frequency", c.Name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		if got.DoF != c.DoF {
			t.Errorf("%s: dof got %d, want %d", c.Name, got.DoF, c.DoF)
		}
		stat.check(t, c.Name+" statistic", got.Statistic, float64(c.Statistic), goldenAbsStat)
		pval.check(t, c.Name+" p-value", got.PValue, float64(c.PValue), goldenAbsProb)
		for i, row := range c.Expected {
			for j, want := range row {
				exp.check(t, fmt.Sprintf("%s expected[%d][%d]", c.Name, i, j), got.Expected[i][j], float64(want), goldenAbsStat)
			}
		}
	}
	stat.report(t)
	pval.report(t)
	exp.report(t)
}

func TestGoldenJensenShannon(t *testing.T) {
	g := loadGolden(t)
	e := &errStats{name: "JensenShannon"}
	for _, c := range g.JensenShannon {
		what := fmt.Sprintf("JensenShannon(%v, %v, %g)", c.P, c.Q, c.Base)
		got, err := JensenShannon(floats(c.P), floats(c.Q), c.Base)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		e.check(t, what, got, float64(c.Distance), goldenAbsStat)
	}
	e.report(t)
}

func TestGoldenPSI(t *testing.T) {
	g := loadGolden(t)
	e := &errStats{name: "PSI"}
	for _, c := range g.PSI {
		what := fmt.Sprintf("PSI(%v, %v)", c.Ref, c.Cur)
		got, err := PSI(floats(c.Ref), floats(c.Cur))
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		e.check(t, what, got, float64(c.PSI), goldenAbsStat)
	}
	e.report(t)
}

func TestGoldenWasserstein(t *testing.T) {
	g := loadGolden(t)
	e := &errStats{name: "Wasserstein"}
	for _, c := range g.Wasserstein {
		u, v := g.sample(t, c.U, c.NU), g.sample(t, c.V, c.NV)
		got, err := Wasserstein(u, v, floats(c.UW), floats(c.VW))
		if err != nil {
			t.Errorf("%s: %v", c.Name, err)
			continue
		}
		e.check(t, c.Name, got, float64(c.Distance), goldenAbsStat)
		if c.UW == nil && c.VW == nil {
			sorted := WassersteinSorted(sortedCopy(u), sortedCopy(v))
			e.check(t, c.Name+" (sorted)", sorted, float64(c.Distance), goldenAbsStat)
		}
		// Unit weights must give the unweighted answer.
		if c.UW == nil && c.VW == nil {
			w, err := Wasserstein(u, v, ones(len(u)), nil)
			if err != nil {
				t.Errorf("%s unit weights: %v", c.Name, err)
				continue
			}
			e.check(t, c.Name+" (unit weights)", w, float64(c.Distance), goldenAbsStat)
		}
	}
	e.report(t)
}

func TestGoldenTwoProportionZ(t *testing.T) {
	g := loadGolden(t)
	stat := &errStats{name: "TwoProportionZ statistic"}
	pval := &errStats{name: "TwoProportionZ p-value"}
	for _, c := range g.ZTest {
		what := fmt.Sprintf("TwoProportionZ(%d, %d, %d, %d)", c.X1, c.N1, c.X2, c.N2)
		got, err := TwoProportionZ(c.X1, c.N1, c.X2, c.N2)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		stat.check(t, what+" statistic", got.Statistic, float64(c.Statistic), goldenAbsStat)
		pval.check(t, what+" p-value", got.PValue, float64(c.PValue), goldenAbsProb)
	}
	stat.report(t)
	pval.report(t)
	e := &errStats{name: "NormalSF"}
	for _, c := range g.NormSF {
		e.check(t, fmt.Sprintf("NormalSF(%g)", c.Z), NormalSF(c.Z), float64(c.SF), goldenAbsProb)
	}
	e.report(t)
}

func sortedCopy(v []float64) []float64 {
	out := slices.Clone(v)
	slices.Sort(out)
	return out
}

func ones(n int) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = 1
	}
	return out
}
