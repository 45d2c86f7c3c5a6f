package gbdt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/realdata"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/xgboost"
)

// weatherFeatures are the feature columns of weather.csv the tests use;
// location is text, so categorical.
var weatherFeatures = []string{"location", "precipitation", "temp_max", "temp_min", "wind"}

// MustWeather loads weather.csv (NOAA, vega-datasets) with the weather
// column as a multi-class label, and knocks out about 8% of the feature
// values (seeded) so that every model learns default directions.
func MustWeather(tb testing.TB) *Data {
	tb.Helper()
	d, err := LoadFiles(context.Background(), []string{realdata.Path(tb, "weather.csv")},
		LoadOptions{Label: "weather", Features: weatherFeatures, Objective: MultiSoftprob})
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for _, col := range d.Columns {
		for i := range col {
			if rng.Float64() < 0.08 {
				col[i] = float32(math.NaN())
			}
		}
	}
	return d
}

// binaryOf returns d with label 1 for class name and 0 otherwise.
func binaryOf(tb testing.TB, d *Data, name string) *Data {
	tb.Helper()
	out := *d
	out.Classes = nil
	out.Labels = make([]float32, len(d.Labels))
	found := false
	for i, y := range d.Labels {
		if d.Classes[int(y)] == name {
			out.Labels[i] = 1
			found = true
		}
	}
	if !found {
		tb.Fatalf("no row of class %q", name)
	}
	return &out
}

// regressionOf returns d predicting feature target from the others, on
// the rows where target is not missing.
func regressionOf(tb testing.TB, d *Data, target string) *Data {
	tb.Helper()
	t := slices.IndexFunc(d.Features, func(f Feature) bool { return f.Name == target })
	if t < 0 {
		tb.Fatalf("no feature %q", target)
	}
	out := &Data{}
	for j, f := range d.Features {
		if j != t {
			out.Features = append(out.Features, f)
			out.Columns = append(out.Columns, nil)
		}
	}
	for i, y := range d.Columns[t] {
		if y != y {
			continue
		}
		out.Labels = append(out.Labels, y)
		c := 0
		for j := range d.Features {
			if j != t {
				out.Columns[c] = append(out.Columns[c], d.Columns[j][i])
				c++
			}
		}
	}
	return out
}

// splitEvery returns the rows of d with i%n != 0 (train) and i%n == 0 (test).
func splitEvery(d *Data, n int) (train, test *Data) {
	train, test = &Data{Features: d.Features, Classes: d.Classes}, &Data{Features: d.Features, Classes: d.Classes}
	train.Columns = make([][]float32, len(d.Columns))
	test.Columns = make([][]float32, len(d.Columns))
	for i, y := range d.Labels {
		dst := train
		if i%n == 0 {
			dst = test
		}
		dst.Labels = append(dst.Labels, y)
		for j := range d.Columns {
			dst.Columns[j] = append(dst.Columns[j], d.Columns[j][i])
		}
	}
	return train, test
}

// rowMajor returns d's features as a row-major matrix.
func rowMajor(d *Data) []float32 {
	nf := len(d.Columns)
	out := make([]float32, d.Rows()*nf)
	for j, col := range d.Columns {
		for i, v := range col {
			out[i*nf+j] = v
		}
	}
	return out
}

// MustTrain trains cfg on d, failing tb on error.
func MustTrain(tb testing.TB, d, valid *Data, cfg Config) *Model {
	tb.Helper()
	m, err := Train(context.Background(), d, valid, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return m
}

// MustJSON returns the model's XGBoost JSON.
func MustJSON(tb testing.TB, m *Model) []byte {
	tb.Helper()
	var buf bytes.Buffer
	if err := m.WriteXGBoostJSON(&buf); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// parityCases are trained models on real data, one per objective, with
// missing values, categorical features and, in some, row and feature
// sampling or pruning.
func parityCases(tb testing.TB) map[string]struct {
	m *Model
	d *Data
} {
	tb.Helper()
	w := MustWeather(tb)
	out := map[string]struct {
		m *Model
		d *Data
	}{}
	add := func(name string, d *Data, cfg Config) {
		out[name] = struct {
			m *Model
			d *Data
		}{MustTrain(tb, d, nil, cfg), d}
	}
	cfg := DefaultConfig()
	cfg.NumTrees = 30
	bin := binaryOf(tb, w, "sun")
	add("binary", bin, cfg)
	c := cfg
	c.Subsample, c.ColsampleByTree, c.Seed, c.Gamma, c.MaxDepth = 0.7, 0.6, 7, 2, 8
	add("binary_sampled_pruned", bin, c)
	c = cfg
	c.Objective, c.NumClass = MultiSoftprob, len(w.Classes)
	add("multi", w, c)
	c = cfg
	c.Objective = RegSquaredError
	c.MaxBins = 16 // fewer bins than distinct values: quantile cuts
	add("regression", regressionOf(tb, w, "temp_max"), c)
	return out
}

// TestRuntimeParity trains on real data, writes XGBoost JSON, loads it
// with mloop's serving runtime and checks the runtime predicts exactly
// what the trainer predicts, on rows with and without missing values.
func TestRuntimeParity(t *testing.T) {
	ctx := context.Background()
	for name, c := range parityCases(t) {
		t.Run(name, func(t *testing.T) {
			data := MustJSON(t, c.m)
			rt, err := xgboost.Load(bytes.NewReader(data), name+".json")
			if err != nil {
				t.Fatalf("runtime cannot load the model: %v", err)
			}
			if rt.NumTrees() != c.m.NumTrees() || rt.Objective() != string(c.m.Objective) {
				t.Fatalf("runtime sees %d trees of %s, want %d of %s", rt.NumTrees(), rt.Objective(), c.m.NumTrees(), c.m.Objective)
			}
			for j, f := range rt.Features() {
				want := serving.Numeric
				if c.m.Features[j].Categorical {
					want = serving.Categorical
				}
				if f.Name != c.m.Features[j].Name || f.Type != want {
					t.Errorf("runtime feature %d is %+v, want %s %s", j, f, c.m.Features[j].Name, want)
				}
			}
			rows := rowMajor(c.d)
			want := make([]float32, c.d.Rows()*c.m.Outputs())
			if err := c.m.Predict(rows, want); err != nil {
				t.Fatal(err)
			}
			byData, err := c.m.PredictData(c.d)
			if err != nil {
				t.Fatal(err)
			}
			got := make([]float32, len(want))
			if err := rt.Predict(ctx, serving.Batch{Rows: c.d.Rows(), Cols: len(c.d.Features), Values: rows}, got); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if got[i] != want[i] || byData[i] != want[i] {
					t.Fatalf("output %d: runtime %v, trainer %v (column store %v); want equal", i, got[i], want[i], byData[i])
				}
			}
		})
	}
}

// TestXGBoostParity loads the written models with XGBoost itself (Debian's
// python3-xgboost through /usr/bin/python3) and checks its predictions
// match the trainer's within 1e-5.
func TestXGBoostParity(t *testing.T) {
	const python = "/usr/bin/python3"
	if out, err := exec.Command(python, "-c", "import xgboost, numpy").CombinedOutput(); err != nil {
		t.Skipf("skipped: %s cannot import xgboost and numpy (%v: %s); install Debian's python3-xgboost (CI does)", python, err, strings.TrimSpace(string(out)))
	}
	dir := t.TempDir()
	script := `
import json, sys
import numpy as np
import xgboost as xgb
worst = {}
for name in sys.argv[1:]:
    b = xgb.Booster()
    b.load_model(name + ".json")
    x = np.fromfile(name + ".x", dtype="<f4").reshape(-1, len(b.feature_names))
    want = np.fromfile(name + ".want", dtype="<f4")
    dm = xgb.DMatrix(x, feature_names=b.feature_names, feature_types=b.feature_types, enable_categorical=True)
    got = b.predict(dm).reshape(-1)
    worst[name] = {"diff": float(np.abs(got - want).max()), "n": int(got.size), "want_n": int(want.size)}
print(json.dumps(worst))
`
	var names []string
	for name, c := range parityCases(t) {
		p := filepath.Join(dir, name)
		names = append(names, p)
		if err := os.WriteFile(p+".json", MustJSON(t, c.m), 0o644); err != nil {
			t.Fatal(err)
		}
		rows := rowMajor(c.d)
		want := make([]float32, c.d.Rows()*c.m.Outputs())
		if err := c.m.Predict(rows, want); err != nil {
			t.Fatal(err)
		}
		writeF32(t, p+".x", rows)
		writeF32(t, p+".want", want)
	}
	cmd := exec.Command(python, append([]string{"-c", script}, names...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("xgboost could not load or predict: %v\n%s", err, ee.Stderr)
		}
		t.Fatal(err)
	}
	var res map[string]struct {
		Diff  float64 `json:"diff"`
		N     int     `json:"n"`
		WantN int     `json:"want_n"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if len(res) != len(names) {
		t.Fatalf("xgboost checked %d models, want %d", len(res), len(names))
	}
	for name, r := range res {
		if r.N != r.WantN || !(r.Diff <= 1e-5) {
			t.Errorf("%s: xgboost predicts %d values, max diff %g from the trainer's %d; want equal counts within 1e-5", filepath.Base(name), r.N, r.Diff, r.WantN)
		}
	}
}

func writeF32(tb testing.TB, path string, v []float32) {
	tb.Helper()
	b := make([]byte, 4*len(v))
	for i, x := range v {
		u := math.Float32bits(x)
		b[4*i], b[4*i+1], b[4*i+2], b[4*i+3] = byte(u), byte(u>>8), byte(u>>16), byte(u>>24)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		tb.Fatal(err)
	}
}

// TestRegressorFits predicts temp_max from the other weather columns and
// checks R² on held-out rows.
func TestRegressorFits(t *testing.T) {
	d := regressionOf(t, MustWeather(t), "temp_max")
	train, test := splitEvery(d, 4)
	cfg := DefaultConfig()
	cfg.Objective, cfg.NumTrees, cfg.LearningRate = RegSquaredError, 100, 0.1
	m := MustTrain(t, train, nil, cfg)
	p, err := m.PredictData(test)
	if err != nil {
		t.Fatal(err)
	}
	met, err := Evaluate(m.Objective, 0, test.Labels, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	if met["r2"] < 0.8 {
		t.Errorf("held-out r2 = %.3f (rmse %.2f), want ≥ 0.8", met["r2"], met["rmse"])
	}
	if m.BaseScore == 0.5 {
		t.Errorf("base score %v: want the mean temperature", m.BaseScore)
	}
	t.Logf("held-out %v", met)
}

// TestMulticlass trains multi:softprob on the weather classes and checks
// probabilities sum to 1 and held-out accuracy beats the majority class.
func TestMulticlass(t *testing.T) {
	d := MustWeather(t)
	train, test := splitEvery(d, 4)
	cfg := DefaultConfig()
	cfg.Objective, cfg.NumClass, cfg.NumTrees, cfg.LearningRate = MultiSoftprob, len(d.Classes), 50, 0.1
	m := MustTrain(t, train, nil, cfg)
	if m.NumTrees() != 50*len(d.Classes) {
		t.Errorf("%d trees, want %d", m.NumTrees(), 50*len(d.Classes))
	}
	p, err := m.PredictData(test)
	if err != nil {
		t.Fatal(err)
	}
	k := len(d.Classes)
	for i := range test.Rows() {
		var s float64
		for _, v := range p[i*k : (i+1)*k] {
			s += float64(v)
		}
		if math.Abs(s-1) > 1e-5 {
			t.Fatalf("row %d probabilities sum to %g", i, s)
		}
	}
	met, err := Evaluate(m.Objective, k, test.Labels, nil, p)
	if err != nil {
		t.Fatal(err)
	}
	counts := make([]int, k)
	for _, y := range test.Labels {
		counts[int(y)]++
	}
	majority := 0.0
	for _, c := range counts {
		majority = max(majority, float64(c)/float64(test.Rows()))
	}
	if met["accuracy"] < majority+0.1 {
		t.Errorf("held-out accuracy %.3f, want ≥ majority %.3f + 0.1", met["accuracy"], majority)
	}
	t.Logf("held-out %v (majority %.3f)", met, majority)
}

// synthetic returns n rows of one categorical feature (codes 0…9) and one
// numerical feature, labelled by fn.
func synthetic(n int, seed uint64, fn func(cat, x float32, rng *rand.Rand) float32) *Data {
	rng := rand.New(rand.NewPCG(seed, 1))
	d := &Data{Features: []Feature{{Name: "cat", Categorical: true}, {Name: "x"}}, Columns: make([][]float32, 2)}
	for range n {
		c, x := float32(rng.IntN(10)), float32(rng.Float64())
		d.Columns[0] = append(d.Columns[0], c)
		d.Columns[1] = append(d.Columns[1], x)
		d.Labels = append(d.Labels, fn(c, x, rng))
	}
	return d
}

// treeJSON is the part of a written tree the tests inspect.
type treeJSON struct {
	Left       []int     `json:"left_children"`
	SplitType  []int     `json:"split_type"`
	Index      []int     `json:"split_indices"`
	Cond       []float64 `json:"split_conditions"`
	Default    []int     `json:"default_left"`
	Categories []int     `json:"categories"`
	CatNodes   []int     `json:"categories_nodes"`
	CatSizes   []int     `json:"categories_sizes"`
}

func firstTree(tb testing.TB, m *Model) treeJSON {
	tb.Helper()
	// NaN is not JSON; the tests only read trees whose conditions they
	// replace with null.
	data := bytes.ReplaceAll(MustJSON(tb, m), []byte("NaN"), []byte("null"))
	var doc struct {
		Learner struct {
			GB struct {
				Model struct {
					Trees []treeJSON `json:"trees"`
				} `json:"model"`
			} `json:"gradient_booster"`
		} `json:"learner"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		tb.Fatal(err)
	}
	return doc.Learner.GB.Model.Trees[0]
}

// TestCategoricalSplit checks that a label decided by an unordered set of
// categories ({1, 4, 7}) is learned by one partition split whose set is
// exactly those categories or the others, written as split_type 1.
func TestCategoricalSplit(t *testing.T) {
	d := synthetic(5000, 3, func(c, x float32, _ *rand.Rand) float32 {
		if c == 1 || c == 4 || c == 7 {
			return 1
		}
		return 0
	})
	cfg := DefaultConfig()
	cfg.NumTrees, cfg.MaxDepth = 1, 1
	m := MustTrain(t, d, nil, cfg)
	tr := firstTree(t, m)
	if len(tr.Left) != 3 || tr.SplitType[0] != 1 || tr.Index[0] != 0 {
		t.Fatalf("tree %+v: want one categorical split on feature 0", tr)
	}
	set := fmt.Sprint(tr.Categories)
	if set != "[1 4 7]" && set != "[0 2 3 5 6 8 9]" {
		t.Errorf("categories going right %s, want [1 4 7] or its complement", set)
	}
	p, err := m.PredictData(d)
	if err != nil {
		t.Fatal(err)
	}
	for i, y := range d.Labels {
		if (p[i] > 0.5) != (y == 1) {
			t.Fatalf("row %d (category %v) predicted %v for label %v", i, d.Columns[0][i], p[i], y)
		}
	}
	// Categories never seen, out of range or negative go left, as in the
	// runtime; the model still predicts something finite.
	out := make([]float32, 3)
	if err := m.Predict([]float32{42, 0.5, -1, 0.5, 1e6, 0.5}, out); err != nil {
		t.Fatal(err)
	}
	for _, v := range out {
		if v != out[0] || v != v {
			t.Errorf("unseen categories predict %v, want one finite value (the left leaf)", out)
		}
	}
}

// TestMissingValues checks that a default direction is learned from the
// data: rows whose x is missing behave like large x in one dataset and
// like small x in another, and the model sends them the right way.
func TestMissingValues(t *testing.T) {
	for _, tc := range []struct {
		name        string
		missingAs   float32 // the x missing rows behave like
		defaultLeft int
	}{{"like large", 0.9, 0}, {"like small", 0.1, 1}} {
		t.Run(tc.name, func(t *testing.T) {
			d := synthetic(4000, 5, func(c, x float32, _ *rand.Rand) float32 {
				if x > 0.5 {
					return 1
				}
				return 0
			})
			for i := range d.Labels {
				if i%5 == 0 {
					d.Columns[1][i] = float32(math.NaN())
					d.Labels[i] = 0
					if tc.missingAs > 0.5 {
						d.Labels[i] = 1
					}
				}
			}
			cfg := DefaultConfig()
			cfg.NumTrees, cfg.MaxDepth = 5, 1
			m := MustTrain(t, d, nil, cfg)
			tr := firstTree(t, m)
			if tr.SplitType[0] != 0 || tr.Index[0] != 1 {
				t.Fatalf("first split %+v, want a numerical split on x", tr)
			}
			if tr.Default[0] != tc.defaultLeft {
				t.Errorf("default_left = %d, want %d", tr.Default[0], tc.defaultLeft)
			}
			out := make([]float32, 2)
			if err := m.Predict([]float32{0, float32(math.NaN()), 0, tc.missingAs}, out); err != nil {
				t.Fatal(err)
			}
			if out[0] != out[1] {
				t.Errorf("missing x predicts %v, x = %v predicts %v; want equal", out[0], tc.missingAs, out[1])
			}
		})
	}
}

// TestSplitConditionSemantics checks x < condition goes left: values equal
// to a condition go right, in the trainer as in the runtime.
func TestSplitConditionSemantics(t *testing.T) {
	d := &Data{Features: []Feature{{Name: "x"}}, Columns: [][]float32{{}}}
	for i := range 200 {
		x := float32(i % 4) // 0, 1, 2, 3
		d.Columns[0] = append(d.Columns[0], x)
		y := float32(0)
		if x >= 2 {
			y = 1
		}
		d.Labels = append(d.Labels, y)
	}
	cfg := DefaultConfig()
	cfg.NumTrees, cfg.MaxDepth = 1, 1
	m := MustTrain(t, d, nil, cfg)
	tr := firstTree(t, m)
	if tr.Cond[0] != 2 {
		t.Fatalf("split condition %v, want 2 (the smallest value of the right side)", tr.Cond[0])
	}
	out := make([]float32, 2)
	if err := m.Predict([]float32{1.9999999, 2}, out); err != nil {
		t.Fatal(err)
	}
	if !(out[0] < 0.5 && out[1] > 0.5) {
		t.Errorf("predictions at 1.9999999 and 2: %v; want below and above 0.5", out)
	}
}

// TestGammaPrunes checks a large gamma prunes every split (single-leaf
// trees, which the runtime loads too) and gamma 0 does not.
func TestGammaPrunes(t *testing.T) {
	d := binaryOf(t, MustWeather(t), "rain")
	cfg := DefaultConfig()
	cfg.NumTrees, cfg.Gamma = 3, 1e9
	m := MustTrain(t, d, nil, cfg)
	for i, tr := range m.trees {
		if len(tr.nodes) != 1 {
			t.Errorf("tree %d has %d nodes with gamma 1e9, want 1", i, len(tr.nodes))
		}
	}
	if _, err := xgboost.Load(bytes.NewReader(MustJSON(t, m)), "stumps.json"); err != nil {
		t.Errorf("runtime cannot load single-leaf trees: %v", err)
	}
	cfg.Gamma = 0
	if m := MustTrain(t, d, nil, cfg); len(m.trees[0].nodes) < 3 {
		t.Errorf("gamma 0: first tree has %d nodes, want splits", len(m.trees[0].nodes))
	}
}

// TestEarlyStopping trains with a high learning rate on few rows, so the
// validation loss turns up, and checks training stops and keeps the trees
// up to the best round.
func TestEarlyStopping(t *testing.T) {
	d := binaryOf(t, MustWeather(t), "rain")
	train, valid := splitEvery(d, 3)
	cfg := DefaultConfig()
	cfg.NumTrees, cfg.LearningRate, cfg.MaxDepth, cfg.MinChildWeight, cfg.Lambda = 500, 1, 10, 0, 0
	cfg.EarlyStoppingRounds = 5
	var rounds []Progress
	cfg.Progress = func(p Progress) { rounds = append(rounds, p) }
	m := MustTrain(t, train, valid, cfg)
	if m.Rounds >= 500 || len(rounds) != m.Rounds {
		t.Fatalf("trained %d rounds (%d reported), want an early stop", m.Rounds, len(rounds))
	}
	if m.NumTrees() != m.BestIteration+1 || m.Rounds != m.BestIteration+1+5 {
		t.Errorf("kept %d trees, best iteration %d, %d rounds; want best+1 trees and best+1+5 rounds", m.NumTrees(), m.BestIteration, m.Rounds)
	}
	best := rounds[m.BestIteration].Valid
	for _, p := range rounds {
		if p.Valid < best || math.IsNaN(p.Valid) {
			t.Errorf("round %d valid %s %v below the kept best %v", p.Round, p.Metric, p.Valid, best)
		}
	}
	if !strings.Contains(string(MustJSON(t, m)), fmt.Sprintf(`"best_iteration":"%d"`, m.BestIteration)) {
		t.Error("model file lacks the best_iteration attribute")
	}
}

// TestDeterministic checks that the same data, config and seed give the
// same model file, with sampling and several goroutines.
func TestDeterministic(t *testing.T) {
	d := binaryOf(t, MustWeather(t), "sun")
	cfg := DefaultConfig()
	cfg.NumTrees, cfg.Subsample, cfg.ColsampleByTree, cfg.Seed, cfg.Threads = 10, 0.8, 0.8, 42, 3
	a, b := MustJSON(t, MustTrain(t, d, nil, cfg)), MustJSON(t, MustTrain(t, d, nil, cfg))
	if !bytes.Equal(a, b) {
		t.Error("two trainings with the same seed wrote different models")
	}
	cfg.Seed = 43
	if c := MustJSON(t, MustTrain(t, d, nil, cfg)); bytes.Equal(a, c) {
		t.Error("another seed wrote the same model")
	}
}

// TestParallelLargeNodes trains on enough rows that histograms and
// partitions are split among goroutines, and checks the result predicts
// as the runtime does and that 1 and 4 goroutines learn the same first
// split.
func TestParallelLargeNodes(t *testing.T) {
	d := synthetic(200_000, 9, func(c, x float32, rng *rand.Rand) float32 {
		p := 0.2 + 0.5*float64(x)
		if c == 3 || c == 8 {
			p += 0.2
		}
		if rng.Float64() < p {
			return 1
		}
		return 0
	})
	cfg := DefaultConfig()
	cfg.NumTrees, cfg.Threads = 5, 4
	m4 := MustTrain(t, d, nil, cfg)
	cfg.Threads = 1
	m1 := MustTrain(t, d, nil, cfg)
	t4, t1 := firstTree(t, m4), firstTree(t, m1)
	if t4.Index[0] != t1.Index[0] || t4.Cond[0] != t1.Cond[0] {
		t.Errorf("first split with 4 goroutines: feature %d at %v; with 1: %d at %v", t4.Index[0], t4.Cond[0], t1.Index[0], t1.Cond[0])
	}
	rt, err := xgboost.Load(bytes.NewReader(MustJSON(t, m4)), "m.json")
	if err != nil {
		t.Fatal(err)
	}
	rows := rowMajor(d)
	want, got := make([]float32, d.Rows()), make([]float32, d.Rows())
	if err := m4.Predict(rows, want); err != nil {
		t.Fatal(err)
	}
	if err := rt.Predict(context.Background(), serving.Batch{Rows: d.Rows(), Cols: 2, Values: rows}, got); err != nil {
		t.Fatal(err)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("row %d: runtime %v, trainer %v", i, got[i], want[i])
		}
	}
}

// TestBadInput checks bad data and configurations are EINVALID errors
// that say what is wrong.
func TestBadInput(t *testing.T) {
	good := func() *Data {
		return &Data{
			Features: []Feature{{Name: "a"}, {Name: "c", Categorical: true}},
			Columns:  [][]float32{{1, 2, 3, 4}, {0, 1, 0, 1}},
			Labels:   []float32{0, 1, 0, 1},
		}
	}
	nan := float32(math.NaN())
	cases := []struct {
		name   string
		mutate func(d, v *Data, c *Config) (*Data, *Data)
		want   string
	}{
		{"labels shorter than rows", func(d, v *Data, c *Config) (*Data, *Data) { d.Labels = d.Labels[:3]; return d, nil }, "has 4 values for 3 labels"},
		{"NaN label", func(d, v *Data, c *Config) (*Data, *Data) { d.Labels[2] = nan; return d, nil }, "label of row 3 is NaN"},
		{"binary label 2", func(d, v *Data, c *Config) (*Data, *Data) { d.Labels[1] = 2; return d, nil }, "needs labels 0 or 1"},
		{"binary label 0.5", func(d, v *Data, c *Config) (*Data, *Data) { d.Labels[1] = 0.5; return d, nil }, "needs labels 0 or 1"},
		{"class beyond num_class", func(d, v *Data, c *Config) (*Data, *Data) {
			c.Objective, c.NumClass = MultiSoftprob, 2
			d.Labels[0] = 2
			return d, nil
		}, "num_class 2 needs class indices 0 to 1"},
		{"multi without num_class", func(d, v *Data, c *Config) (*Data, *Data) { c.Objective = MultiSoftprob; return d, nil }, "needs num_class"},
		{"num_class with binary", func(d, v *Data, c *Config) (*Data, *Data) { c.NumClass = 3; return d, nil }, "does not take num_class"},
		{"no rows", func(d, v *Data, c *Config) (*Data, *Data) {
			d.Labels = nil
			d.Columns = [][]float32{{}, {}}
			return d, nil
		}, "no rows"},
		{"infinite feature", func(d, v *Data, c *Config) (*Data, *Data) { d.Columns[0][1] = float32(math.Inf(1)); return d, nil }, "use NaN for a missing value"},
		{"negative category", func(d, v *Data, c *Config) (*Data, *Data) { d.Columns[1][0] = -1; return d, nil }, "categories are integer codes"},
		{"fractional category", func(d, v *Data, c *Config) (*Data, *Data) { d.Columns[1][0] = 1.5; return d, nil }, "categories are integer codes"},
		{"weights length", func(d, v *Data, c *Config) (*Data, *Data) { d.Weights = []float32{1}; return d, nil }, "1 weights for 4 labels"},
		{"negative weight", func(d, v *Data, c *Config) (*Data, *Data) { d.Weights = []float32{1, -1, 1, 1}; return d, nil }, "weight of row 2"},
		{"duplicate feature", func(d, v *Data, c *Config) (*Data, *Data) { d.Features[1].Name = "a"; return d, nil }, `feature "a" appears twice`},
		{"columns for features", func(d, v *Data, c *Config) (*Data, *Data) { d.Columns = d.Columns[:1]; return d, nil }, "1 columns for 2 features"},
		{"valid features differ", func(d, v *Data, c *Config) (*Data, *Data) { v.Features[0].Name = "b"; return d, v }, "features must match"},
		{"valid bad label", func(d, v *Data, c *Config) (*Data, *Data) { v.Labels[0] = 7; return d, v }, "validation data: label of row 1"},
		{"early stopping without valid", func(d, v *Data, c *Config) (*Data, *Data) { c.EarlyStoppingRounds = 3; return d, nil }, "needs validation data"},
		{"unknown objective", func(d, v *Data, c *Config) (*Data, *Data) { c.Objective = "rank:pairwise"; return d, nil }, "not supported"},
		{"learning rate", func(d, v *Data, c *Config) (*Data, *Data) { c.LearningRate = 2; return d, nil }, "learning_rate must be in (0, 1]"},
		{"negative lambda", func(d, v *Data, c *Config) (*Data, *Data) { c.Lambda = -1; return d, nil }, "lambda must be at least 0"},
		{"max bins", func(d, v *Data, c *Config) (*Data, *Data) { c.MaxBins = 1; return d, nil }, "max_bins"},
		{"subsample", func(d, v *Data, c *Config) (*Data, *Data) { c.Subsample = 1.5; return d, nil }, "subsample"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := DefaultConfig()
			d, v := tc.mutate(good(), good(), &cfg)
			_, err := Train(context.Background(), d, v, cfg)
			if err == nil {
				t.Fatalf("no error, want one containing %q", tc.want)
			}
			if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v (kind %s), want EINVALID containing %q", err, mloop.ErrorCode(err), tc.want)
			}
		})
	}
	if _, err := FromRows([]Feature{{Name: "a"}, {Name: "b"}}, []float32{1, 2, 3}, []float32{0}, nil); err == nil {
		t.Error("FromRows accepted 3 values for 2 features")
	}
}

// TestCancel checks a cancelled context stops training with its error.
func TestCancel(t *testing.T) {
	d := binaryOf(t, MustWeather(t), "sun")
	ctx, cancel := context.WithCancel(context.Background())
	cfg := DefaultConfig()
	cfg.NumTrees = 1000
	cfg.Progress = func(p Progress) {
		if p.Round == 3 {
			cancel()
		}
	}
	_, err := Train(ctx, d, nil, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("error %v, want context.Canceled", err)
	}
}

// TestEvaluate checks the metrics against values worked out by hand.
func TestEvaluate(t *testing.T) {
	// Scores 0.1 (neg), 0.4 (pos), 0.4 (neg), 0.8 (pos): of the 4
	// positive-negative pairs, 3 are ordered right and 1 is tied: AUC
	// (3 + 0.5)/4 = 0.875.
	labels := []float32{0, 1, 0, 1}
	preds := []float32{0.1, 0.4, 0.4, 0.8}
	m, err := Evaluate(BinaryLogistic, 0, labels, nil, preds)
	if err != nil {
		t.Fatal(err)
	}
	wantLL := -(math.Log(0.9) + math.Log(float64(float32(0.4))) + math.Log(1-float64(float32(0.4))) + math.Log(float64(float32(0.8)))) / 4
	if math.Abs(m["auc"]-0.875) > 1e-12 || math.Abs(m["logloss"]-wantLL) > 1e-6 || m["accuracy"] != 0.75 {
		t.Errorf("binary metrics %v, want auc 0.875, logloss %.6f, accuracy 0.75", m, wantLL)
	}
	if _, ok := AUC([]float32{1, 1}, nil, []float32{0.2, 0.3}); ok {
		t.Error("AUC of one class reported as defined")
	}
	m, err = Evaluate(RegSquaredError, 0, []float32{1, 2, 3}, nil, []float32{1, 2, 5})
	if err != nil {
		t.Fatal(err)
	}
	if math.Abs(m["rmse"]-math.Sqrt(4.0/3)) > 1e-12 || math.Abs(m["mae"]-2.0/3) > 1e-12 || math.Abs(m["r2"]-(1-4.0/2)) > 1e-12 {
		t.Errorf("regression metrics %v, want rmse %.4f, mae %.4f, r2 -1", m, math.Sqrt(4.0/3), 2.0/3)
	}
	m, err = Evaluate(MultiSoftprob, 3, []float32{0, 2}, nil, []float32{0.7, 0.2, 0.1, 0.5, 0.1, 0.4})
	if err != nil {
		t.Fatal(err)
	}
	wantML := -(math.Log(float64(float32(0.7))) + math.Log(float64(float32(0.4)))) / 2
	if math.Abs(m["mlogloss"]-wantML) > 1e-9 || m["accuracy"] != 0.5 {
		t.Errorf("multi metrics %v, want mlogloss %.6f, accuracy 0.5", m, wantML)
	}
	if _, err := Evaluate(BinaryLogistic, 0, labels, nil, preds[:3]); mloop.ErrorCode(err) != mloop.EINVALID {
		t.Errorf("short predictions: error %v, want EINVALID", err)
	}
}

// TestFormatBaseScore checks floats are written as XGBoost writes them.
func TestFormatBaseScore(t *testing.T) {
	for v, want := range map[float32]string{0.5: "5E-1", 0.3: "3E-1", 0: "0E0", 123.45: "1.2345E2", -2.5e-7: "-2.5E-7", 1e20: "1E20"} {
		if got := FormatBaseScore(v); got != want {
			t.Errorf("FormatBaseScore(%v) = %q, want %q", v, got, want)
		}
	}
}
