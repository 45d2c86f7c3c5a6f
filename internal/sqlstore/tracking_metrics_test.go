package sqlstore_test

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

func TestTrackingStore_LatestMetric(t *testing.T) {
	nan := math.NaN()
	type pt struct {
		value     float64
		timestamp int64
		step      int64
	}
	tests := []struct {
		name    string
		batches [][]pt
		want    pt
	}{
		{"larger step wins over newer timestamp", [][]pt{{{1, 100, 1}}, {{2, 5, 2}}, {{3, 200, 1}}}, pt{2, 5, 2}},
		{"same step: newer timestamp wins", [][]pt{{{1, 10, 3}, {2, 20, 3}}, {{0, 15, 3}}}, pt{2, 20, 3}},
		{"same step and timestamp: larger value wins", [][]pt{{{5, 10, 3}}, {{4, 10, 3}, {6, 10, 3}}}, pt{6, 10, 3}},
		{"within one batch, in any order", [][]pt{{{9, 1, 7}, {8, 2, 9}, {7, 3, 8}}}, pt{8, 2, 9}},
		{"NaN counts as 0: beats -1", [][]pt{{{-1, 10, 3}}, {{nan, 10, 3}}}, pt{nan, 10, 3}},
		{"NaN counts as 0: loses to 1", [][]pt{{{nan, 10, 3}}, {{1, 10, 3}}}, pt{1, 10, 3}},
		{"NaN at a larger step", [][]pt{{{1, 10, 3}, {nan, 1, 4}}}, pt{nan, 1, 4}},
		{"equal points keep the first", [][]pt{{{0, 10, 3}}, {{nan, 10, 3}}}, pt{0, 10, 3}},
		{"negative steps", [][]pt{{{1, 1, -5}, {2, 1, -7}}}, pt{1, 1, -5}},
	}
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s := MustTrackingStore(t, db)
		exp := MustCreateExperiment(t, s, "e")
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := runID(i + 1)
				MustCreateRun(t, s, exp, id)
				for _, batch := range tt.batches {
					var ms []tracking.Metric
					for _, p := range batch {
						ms = append(ms, tracking.Metric{Key: "m", Value: p.value, Timestamp: p.timestamp, Step: p.step})
					}
					MustLogBatch(t, s, id, ms, nil, nil)
				}
				r := MustGetRun(t, s, id)
				if len(r.Metrics) != 1 {
					t.Fatalf("latest metrics: got %v want one", r.Metrics)
				}
				got := r.Metrics[0]
				if got.Key != "m" || !floatEqual(got.Value, tt.want.value) || got.Timestamp != tt.want.timestamp || got.Step != tt.want.step {
					t.Errorf("latest: got %+v want %+v", got, tt.want)
				}
			})
		}
	})
}

func TestTrackingStore_MetricValues(t *testing.T) {
	values := []float64{math.NaN(), math.Inf(1), math.Inf(-1), 0, -1.5, math.MaxFloat64, math.SmallestNonzeroFloat64}
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		MustCreateRun(t, s, exp, runID(1))
		var ms []tracking.Metric
		for i, v := range values {
			ms = append(ms, tracking.Metric{Key: "m", Value: v, Timestamp: 1, Step: int64(i)},
				tracking.Metric{Key: fmt.Sprintf("k%d", i), Value: v, Timestamp: 1, Step: 0})
		}
		MustLogBatch(t, s, runID(1), ms, nil, nil)
		h, err := s.GetMetricHistory(ctx, runID(1), "m", 0, 0)
		if err != nil || len(h) != len(values) {
			t.Fatalf("history: got %v, %v want %d points", h, err, len(values))
		}
		for i, v := range values {
			if !floatEqual(h[i].Value, v) {
				t.Errorf("history value at step %d: got %v want %v", i, h[i].Value, v)
			}
		}
		r := MustGetRun(t, s, runID(1))
		for _, m := range r.Metrics {
			var i int
			if _, err := fmt.Sscanf(m.Key, "k%d", &i); err == nil && !floatEqual(m.Value, values[i]) {
				t.Errorf("latest %s: got %v want %v", m.Key, m.Value, values[i])
			}
		}
	})
}

func TestTrackingStore_GetMetricHistory(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		id := runID(1)
		MustCreateRun(t, s, exp, id)
		var want []tracking.Metric
		for step := range int64(4) {
			for ts := range int64(3) {
				for _, v := range []float64{-1, 2} {
					want = append(want, tracking.Metric{Key: "loss", Value: v, Timestamp: 100 + ts, Step: step})
				}
			}
		}
		shuffled := slices.Clone(want)
		rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
		// Identical points, within the batch and in a later one, are stored once.
		MustLogBatch(t, s, id, append(shuffled, shuffled[:5]...), nil, nil)
		MustLogBatch(t, s, id, shuffled[3:9], nil, nil)
		MustLogBatch(t, s, id, []tracking.Metric{{Key: "other", Value: 1, Timestamp: 1, Step: 1}}, nil, nil)

		got, err := s.GetMetricHistory(ctx, id, "loss", 0, 0)
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("history:\ngot  %v, %v\nwant %v", got, err, want)
		}
		pages := []struct{ offset, max int }{{0, 5}, {5, 5}, {20, 10}, {24, 3}, {30, 3}}
		for _, p := range pages {
			got, err := s.GetMetricHistory(ctx, id, "loss", p.offset, p.max)
			w := want[min(p.offset, len(want)):min(p.offset+p.max, len(want))]
			if err != nil || len(got) != len(w) || (len(w) > 0 && !reflect.DeepEqual(got, w)) {
				t.Errorf("page offset %d max %d: got %v, %v want %v", p.offset, p.max, got, err, w)
			}
		}
		if got, err := s.GetMetricHistory(ctx, id, "never", 0, 10); err != nil || got == nil || len(got) != 0 {
			t.Errorf("history of a key never logged: got %#v, %v want an empty list", got, err)
		}
	})
}

// TestTrackingStore_SampledMetricSteps compares the store's sampling with
// tracking.SampleSteps over all the steps, for series whose steps form a grid
// (sampled from statistics) and for irregular ones (sampled in SQL).
func TestTrackingStore_SampledMetricSteps(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	irregular := func(n int) []int64 {
		var out []int64
		step := int64(-50)
		for range n {
			step += 1 + rng.Int64N(7)
			out = append(out, step)
		}
		return out
	}
	series := []struct {
		name    string
		batches [][]int64 // steps logged, batch by batch
	}{
		{"dense from 0", [][]int64{seqSteps(0, 1, 3000)}},
		{"every 10th from 5, appended", [][]int64{seqSteps(5, 10, 700), seqSteps(7005, 10, 600)}},
		{"one step", [][]int64{{4, 4, 4}}},
		{"dense logged backwards", [][]int64{seqSteps(1000, 1, 1000), seqSteps(0, 1, 1000), seqSteps(500, 1, 1000)}},
		{"negative grid", [][]int64{seqSteps(-3000, 3, 2000)}},
		{"irregular", [][]int64{irregular(2500)}},
		{"grid with a hole", [][]int64{append(seqSteps(0, 1, 1000), seqSteps(1001, 1, 1500)...)}},
		{"grid then an off-grid step", [][]int64{seqSteps(0, 4, 1000), {2}}},
		{"huge steps", [][]int64{{math.MinInt64, 0, math.MaxInt64}}},
	}
	type query struct {
		start, end int64
		max        int
	}
	queries := []query{
		{math.MinInt64, math.MaxInt64, 100}, {0, math.MaxInt64, 320}, {10, 2000, 7}, {-100, 100, 1000},
		{100, 100, 5}, {101, 102, 1}, {2500, 1 << 40, 999}, {1, 1, 2500}, {0, 6000, 2500},
	}
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		for i, sr := range series {
			t.Run(sr.name, func(t *testing.T) {
				id := runID(i + 1)
				MustCreateRun(t, s, exp, id)
				var all []int64
				for b, steps := range sr.batches {
					var ms []tracking.Metric
					for j, st := range steps {
						// Two points at some steps: sampling is over distinct steps.
						ms = append(ms, tracking.Metric{Key: "m", Value: 1, Timestamp: int64(b), Step: st})
						if j%3 == 0 {
							ms = append(ms, tracking.Metric{Key: "m", Value: 2, Timestamp: int64(b), Step: st})
						}
					}
					MustLogBatch(t, s, id, ms, nil, nil)
					all = append(all, steps...)
				}
				slices.Sort(all)
				all = slices.Compact(all)
				lo, hi, ok, err := s.MetricStepRange(ctx, id, "m")
				if err != nil || !ok || lo != all[0] || hi != all[len(all)-1] {
					t.Errorf("step range: got %d..%d, %v, %v want %d..%d", lo, hi, ok, err, all[0], all[len(all)-1])
				}
				for _, q := range queries {
					got, err := s.SampledMetricSteps(ctx, id, "m", q.start, q.end, q.max)
					if err != nil {
						t.Fatalf("sample %+v: %v", q, err)
					}
					want := tracking.SampleSteps(all, q.start, q.end, q.max)
					if len(want) == 0 {
						want = []int64{}
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("sample %+v:\ngot  %v\nwant %v", q, got, want)
					}
				}
			})
		}
		_, err := s.SampledMetricSteps(ctx, runID(1), "m", 0, 10, 0)
		assertError(t, err, mloop.EINVALID, "")
		if got, err := s.SampledMetricSteps(ctx, runID(1), "never", 0, 10, 10); err != nil || len(got) != 0 {
			t.Errorf("sample a key never logged: got %v, %v want none", got, err)
		}
		if _, _, ok, err := s.MetricStepRange(ctx, runID(1), "never"); ok || err != nil {
			t.Errorf("step range of a key never logged: got ok %v, %v want false, nil", ok, err)
		}
	})
}

func TestTrackingStore_MetricsAtSteps(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		id := runID(1)
		MustCreateRun(t, s, exp, id)
		var ms []tracking.Metric
		for step := range int64(2000) {
			ms = append(ms, tracking.Metric{Key: "m", Value: float64(step), Timestamp: 2, Step: step},
				tracking.Metric{Key: "m", Value: -1, Timestamp: 1, Step: step})
		}
		MustLogBatch(t, s, id, ms, nil, nil)
		steps := []int64{1500, 3, 3, 999, 5000, 1999, 0}
		got, err := s.MetricsAtSteps(ctx, id, "m", steps, 0)
		if err != nil {
			t.Fatalf("metrics at steps: %v", err)
		}
		var want []tracking.Metric
		for _, step := range []int64{0, 3, 999, 1500, 1999} {
			want = append(want, tracking.Metric{Key: "m", Value: -1, Timestamp: 1, Step: step, RunID: id},
				tracking.Metric{Key: "m", Value: float64(step), Timestamp: 2, Step: step, RunID: id})
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("metrics at steps:\ngot  %v\nwant %v", got, want)
		}
		if got, err := s.MetricsAtSteps(ctx, id, "m", steps, 3); err != nil || !reflect.DeepEqual(got, want[:3]) {
			t.Errorf("metrics at steps, max 3: got %v, %v want %v", got, err, want[:3])
		}
		// More steps than one IN list holds.
		all := make([]int64, 2000)
		for i := range all {
			all[i] = int64(1999 - i)
		}
		if got, err := s.MetricsAtSteps(ctx, id, "m", all, 0); err != nil || len(got) != 4000 || got[3999].Step != 1999 {
			t.Errorf("metrics at 2000 steps: got %d points, %v want 4000 ending at step 1999", len(got), err)
		}
	})
}

// TestTrackingStore_GetMetricHistoryPages pages through series with one point
// per step (where a page starts at the step of its offset) and series without,
// and checks every page against the whole history.
func TestTrackingStore_GetMetricHistoryPages(t *testing.T) {
	steps := append(append(seqSteps(0, 1, 100), seqSteps(200, 2, 50)...), 1000, 1001, 5000)
	tests := []struct {
		name       string
		batches    [][]tracking.Metric
		onePerStep bool
	}{
		{"one point per step", [][]tracking.Metric{points("m", steps[:120], 1), points("m", steps[120:], 1)}, true},
		{"logged backwards", [][]tracking.Metric{points("m", steps[100:], 1), points("m", steps[:100], 1)}, true},
		{"a duplicate point", [][]tracking.Metric{points("m", steps, 1), points("m", steps[5:6], 1)}, false},
		{"two points at a step", [][]tracking.Metric{points("m", steps, 1), points("m", steps[7:8], 2)}, false},
		{"two points in one batch", [][]tracking.Metric{append(points("m", steps, 1), points("m", steps[9:10], 2)...)}, false},
		{"irregular steps", [][]tracking.Metric{points("m", irregularSteps(300), 1)}, true},
	}
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		s, ctx := MustTrackingStore(t, db), context.Background()
		exp := MustCreateExperiment(t, s, "e")
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				id := runID(i + 1)
				MustCreateRun(t, s, exp, id)
				for _, b := range tt.batches {
					MustLogBatch(t, s, id, b, nil, nil)
				}
				var flag bool
				if err := db.Read(ctx, func(tx *sqlstore.Tx) error {
					return tx.QueryRow(ctx, "SELECT one_point_per_step FROM latest_metrics WHERE run_uuid = ?", id).Scan(&flag)
				}); err != nil || flag != tt.onePerStep {
					t.Errorf("one_point_per_step: got %v, %v want %v", flag, err, tt.onePerStep)
				}
				all, err := s.GetMetricHistory(ctx, id, "m", 0, 0)
				if err != nil {
					t.Fatal(err)
				}
				for _, size := range []int{1, 7, 64, len(all)} {
					var got []tracking.Metric
					for offset := 0; ; offset += size {
						page, err := s.GetMetricHistory(ctx, id, "m", offset, size)
						if err != nil {
							t.Fatalf("page at %d: %v", offset, err)
						}
						got = append(got, page...)
						if len(page) < size {
							break
						}
					}
					if !reflect.DeepEqual(got, all) {
						t.Fatalf("pages of %d:\ngot  %v\nwant %v", size, got, all)
					}
				}
				if page, err := s.GetMetricHistory(ctx, id, "m", len(all)+5, 10); err != nil || len(page) != 0 {
					t.Errorf("page past the end: got %v, %v want none", page, err)
				}
			})
		}
	})
}

// points returns one point of key per step, all with value v.
func points(key string, steps []int64, v float64) []tracking.Metric {
	out := make([]tracking.Metric, len(steps))
	for i, s := range steps {
		out[i] = tracking.Metric{Key: key, Value: v, Timestamp: 10, Step: s}
	}
	return out
}

func seqSteps(first, stride, n int64) []int64 {
	out := make([]int64, n)
	for i := range out {
		out[i] = first + int64(i)*stride
	}
	return out
}

// irregularSteps returns n ascending steps with uneven gaps, needing more
// step segments than a series keeps.
func irregularSteps(n int) []int64 {
	out := make([]int64, n)
	x := int64(0)
	for i := range out {
		x += 1 + int64(i*i%7)
		out[i] = x
	}
	return out
}
