package xgboost

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/mloop/mloop/internal/serving"
)

// syntheticModel returns the JSON of a binary:logistic gbtree model with
// the given number of complete trees of the given depth over nf numeric
// features, with seeded random splits, default directions and leaves.
func syntheticModel(tb testing.TB, trees, depth, nf int) []byte {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2))
	n := 1<<(depth+1) - 1
	list := make([]any, trees)
	info := make([]int, trees)
	for t := range list {
		left, right, split := make([]int, n), make([]int, n), make([]int, n)
		cond, dl, st := make([]float64, n), make([]int, n), make([]int, n)
		for i := range n {
			if 2*i+1 < n {
				left[i], right[i] = 2*i+1, 2*i+2
				split[i] = rng.IntN(nf)
				cond[i] = float64(float32(rng.Float64()))
				dl[i] = rng.IntN(2)
			} else {
				left[i], right[i] = -1, -1
				cond[i] = float64(float32(rng.NormFloat64() * 0.1))
			}
		}
		list[t] = map[string]any{
			"tree_param":       map[string]any{"num_nodes": strconv.Itoa(n), "num_feature": strconv.Itoa(nf), "size_leaf_vector": "0", "num_deleted": "0"},
			"left_children":    left,
			"right_children":   right,
			"split_indices":    split,
			"split_conditions": cond,
			"default_left":     dl,
			"split_type":       st,
		}
	}
	names := make([]string, nf)
	for i := range names {
		names[i] = "x" + strconv.Itoa(i)
	}
	doc := map[string]any{
		"version": []int{1, 7, 4},
		"learner": map[string]any{
			"feature_names":       names,
			"learner_model_param": map[string]any{"base_score": "5E-1", "num_class": "0", "num_feature": strconv.Itoa(nf), "num_target": "1"},
			"objective":           map[string]any{"name": "binary:logistic"},
			"gradient_booster": map[string]any{"name": "gbtree", "model": map[string]any{
				"gbtree_model_param": map[string]any{"num_trees": strconv.Itoa(trees), "num_parallel_tree": "1"},
				"tree_info":          info,
				"trees":              list,
			}},
		},
	}
	data, err := json.Marshal(doc)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// randomBatch returns rows×nf uniform values in [0, 1), one in every
// nanEvery of them NaN (none when nanEvery is 0).
func randomBatch(rows, nf, nanEvery int) serving.Batch {
	rng := rand.New(rand.NewPCG(3, 4))
	b := serving.Batch{Rows: rows, Cols: nf, Values: make([]float32, rows*nf)}
	for i := range b.Values {
		b.Values[i] = rng.Float32()
		if nanEvery > 0 && rng.IntN(nanEvery) == 0 {
			b.Values[i] = float32(math.NaN())
		}
	}
	return b
}

// BenchmarkPredict1000Rows predicts a 1,000-row batch with a 150-tree,
// depth-6 model over five features (the shape of the flights model, whose
// features have no missing values).
func BenchmarkPredict1000Rows(b *testing.B) { benchmarkPredict(b, 1000, 0) }

// BenchmarkPredict1000RowsMissing is BenchmarkPredict1000Rows with one
// value in twenty missing, so most rows take the default-direction path.
func BenchmarkPredict1000RowsMissing(b *testing.B) { benchmarkPredict(b, 1000, 20) }

func benchmarkPredict(b *testing.B, rows, nanEvery int) {
	m, err := Load(bytes.NewReader(syntheticModel(b, 150, 6, 5)), "bench")
	if err != nil {
		b.Fatal(err)
	}
	batch := randomBatch(rows, 5, nanEvery)
	out := make([]float32, batch.Rows)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Predict(ctx, batch, out); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(rows), "ns/row")
}

// BenchmarkPredict1Row predicts a single row with the same model.
func BenchmarkPredict1Row(b *testing.B) {
	m, err := Load(bytes.NewReader(syntheticModel(b, 150, 6, 5)), "bench")
	if err != nil {
		b.Fatal(err)
	}
	batch := randomBatch(1, 5, 0)
	out := make([]float32, 1)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := m.Predict(ctx, batch, out); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSyntheticModelMatchesReference checks the blocked, flattened
// predictor against a direct walk of the synthetic trees.
func TestSyntheticModelMatchesReference(t *testing.T) {
	data := syntheticModel(t, 30, 6, 5)
	m, err := Load(bytes.NewReader(data), "synthetic")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := parseJSON(data)
	if err != nil {
		t.Fatal(err)
	}
	trees := doc.(map[string]any)["learner"].(map[string]any)["gradient_booster"].(map[string]any)["model"].(map[string]any)["trees"].([]any)
	batch := randomBatch(203, 5, 20) // not a multiple of 4: exercises the tail
	got := make([]float32, batch.Rows)
	if err := m.PredictMargin(context.Background(), batch, got); err != nil {
		t.Fatal(err)
	}
	for r := range batch.Rows {
		row := batch.Row(r)
		var sum float32
		for _, raw := range trees {
			tr := raw.(map[string]any)
			left, _ := ints(tr["left_children"], "")
			right, _ := ints(tr["right_children"], "")
			split, _ := ints(tr["split_indices"], "")
			cond, _ := floats(tr["split_conditions"], "")
			dl, _ := ints(tr["default_left"], "")
			k := int64(0)
			for left[k] != -1 {
				v := row[split[k]]
				switch {
				case v != v:
					k = map[bool]int64{true: left[k], false: right[k]}[dl[k] == 1]
				case v < cond[k]:
					k = left[k]
				default:
					k = right[k]
				}
			}
			sum += cond[k]
		}
		if got[r] != sum {
			t.Fatalf("row %d: got %v, want %v", r, got[r], sum)
		}
	}
}
