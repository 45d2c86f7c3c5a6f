package monitor_test

import (
	"encoding/json"
	"math"
	"os"
	"testing"

	"github.com/mloop/mloop/internal/monitor"
)

// qualityFixture is testdata/quality.json, written by quality_fixture.py
// with scikit-learn.
type qualityFixture struct {
	Binary struct {
		Y       []float64          `json:"y"`
		P       []float32          `json:"p"`
		Metrics map[string]float64 `json:"metrics"`
	} `json:"binary"`
	Multiclass struct {
		Y       []float64          `json:"y"`
		P       [][]float32        `json:"p"`
		Metrics map[string]float64 `json:"metrics"`
	} `json:"multiclass"`
	Regression struct {
		Y       []float64          `json:"y"`
		P       []float32          `json:"p"`
		Metrics map[string]float64 `json:"metrics"`
	} `json:"regression"`
}

func loadQualityFixture(t *testing.T) *qualityFixture {
	t.Helper()
	data, err := os.ReadFile("testdata/quality.json")
	if err != nil {
		t.Fatal(err)
	}
	var f qualityFixture
	if err := json.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	return &f
}

// checkMetrics compares metrics with scikit-learn's; tol per metric.
func checkMetrics(t *testing.T, what string, got, want map[string]float64, tol map[string]float64) {
	t.Helper()
	for k, w := range want {
		g, ok := got[k]
		e := tol[k]
		if e == 0 {
			e = 1e-9
		}
		if !ok || math.Abs(g-w) > e {
			t.Errorf("%s %s: got %v, want %v (sklearn) within %g", what, k, g, w, e)
		}
	}
}

// TestQualityAgainstSklearn computes every metric on labels split into
// parts merged together (as windows merge) and compares with sklearn.
func TestQualityAgainstSklearn(t *testing.T) {
	f := loadQualityFixture(t)
	parts := func(task monitor.Task, n int, add func(q *monitor.Quality, i int)) *monitor.Quality {
		total := monitor.NewQuality(task)
		for lo := 0; lo < n; lo += 317 {
			q := monitor.NewQuality(task)
			for i := lo; i < min(lo+317, n); i++ {
				add(q, i)
			}
			// Through the stored form and back.
			data, err := json.Marshal(q)
			if err != nil {
				t.Fatal(err)
			}
			var back monitor.Quality
			if err := json.Unmarshal(data, &back); err != nil {
				t.Fatal(err)
			}
			if err := total.Merge(&back); err != nil {
				t.Fatal(err)
			}
		}
		return total
	}
	b := parts(monitor.Binary, len(f.Binary.Y), func(q *monitor.Quality, i int) {
		if err := q.AddLabel(f.Binary.Y[i], []float32{f.Binary.P[i]}); err != nil {
			t.Fatal(err)
		}
	})
	bm := b.Metrics()
	// The AUC from score bins is within its reported bound.
	checkMetrics(t, "binary", bm, f.Binary.Metrics, map[string]float64{"roc_auc": bm[monitor.MetricAUCMaxError] + 1e-12, "log_loss": 1e-7})
	if bm[monitor.MetricAUCMaxError] > 0.002 {
		t.Errorf("binary auc_max_error: got %v, want at most 0.002 for spread scores", bm[monitor.MetricAUCMaxError])
	}
	m := parts(monitor.Multiclass, len(f.Multiclass.Y), func(q *monitor.Quality, i int) {
		if err := q.AddLabel(f.Multiclass.Y[i], f.Multiclass.P[i]); err != nil {
			t.Fatal(err)
		}
	})
	checkMetrics(t, "multiclass", m.Metrics(), f.Multiclass.Metrics, map[string]float64{"log_loss": 1e-6})
	r := parts(monitor.Regression, len(f.Regression.Y), func(q *monitor.Quality, i int) {
		if err := q.AddLabel(f.Regression.Y[i], []float32{f.Regression.P[i]}); err != nil {
			t.Fatal(err)
		}
	})
	checkMetrics(t, "regression", r.Metrics(), f.Regression.Metrics, map[string]float64{"rmse": 1e-9, "mae": 1e-9, "r2": 1e-9})
}

// TestQualityHandComputed checks small cases by hand.
func TestQualityHandComputed(t *testing.T) {
	q := monitor.NewQuality(monitor.Binary)
	// y:      1    1    0    0    1
	// p:     .9   .4   .6   .1   .8  → TP 2, FN 1, FP 1, TN 1
	for i, y := range []float64{1, 1, 0, 0, 1} {
		if err := q.AddLabel(y, []float32{[]float32{0.9, 0.4, 0.6, 0.1, 0.8}[i]}); err != nil {
			t.Fatal(err)
		}
	}
	m := q.Metrics()
	// Pairs (pos, neg): (.9,.6) (.9,.1) (.4,.6)✗ (.4,.1) (.8,.6) (.8,.1): 5 of 6.
	want := map[string]float64{"accuracy": 0.6, "precision": 2.0 / 3, "recall": 2.0 / 3, "f1": 2.0 / 3, "roc_auc": 5.0 / 6}
	checkMetrics(t, "binary", m, want, map[string]float64{"roc_auc": 1e-9})
	if err := q.AddLabel(2, []float32{0.5}); err == nil {
		t.Errorf("binary label 2: got no error")
	}
	// multi:softmax predicts class indexes: no log loss.
	mc := monitor.NewQuality(monitor.Multiclass)
	for i, y := range []float64{0, 1, 2, 2} {
		if err := mc.AddLabel(y, []float32{[]float32{0, 2, 2, 1}[i]}); err != nil {
			t.Fatal(err)
		}
	}
	mm := mc.Metrics()
	// Class 0: tp1 → f1 1; class 1: tp0 fn1 fp1 → 0; class 2: tp1 fp1 fn1 → 0.5.
	checkMetrics(t, "softmax", mm, map[string]float64{"accuracy": 0.5, "macro_f1": 0.5}, nil)
	if _, ok := mm[monitor.MetricLogLoss]; ok {
		t.Errorf("softmax: got a log loss without probabilities")
	}
	if err := monitor.NewQuality(monitor.Binary).Merge(monitor.NewQuality(monitor.Regression)); err == nil {
		t.Errorf("merge binary with regression: got no error")
	}
}
