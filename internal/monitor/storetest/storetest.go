// Package storetest is the conformance suite of monitor.Store: every
// implementation (sqlstore on SQLite and on PostgreSQL) runs the same tests.
// Call Run from a test of the implementation's package with a function that
// returns a fresh, empty store.
package storetest

import (
	"context"
	"fmt"
	"math"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/monitor"
)

// Run runs the conformance suite; newStore returns a fresh, empty store for
// each subtest.
func Run(t *testing.T, newStore func(t *testing.T) monitor.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s monitor.Store)
	}{
		{"SaveGet", testSaveGet},
		{"SaveExists", testSaveExists},
		{"SaveInvalid", testSaveInvalid},
		{"GetNotFound", testGetNotFound},
		{"List", testList},
		{"MergeQuality", testMergeQuality},
		{"MergeQualityRace", testMergeQualityRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// t0 is the base time of the tests.
var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := mloop.ErrorCode(err); got != code {
		t.Fatalf("%s: got error %v (kind %q), want kind %q", what, err, got, code)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// profile profiles n values of a float column "x" starting at base.
func profile(t *testing.T, name string, n int, base float64) *dataset.Profile {
	t.Helper()
	p := dataset.NewProfiler("test", []dataset.Column{{Name: name, Type: dataset.TypeFloat}}, dataset.ProfileOptions{})
	b := &dataset.Batch{Rows: n, Cols: []dataset.ColumnValues{{Kind: dataset.KindFloat, Float: make([]float64, n)}}}
	for i := range n {
		b.Cols[0].Float[i] = base + float64(i)
	}
	must(t, "profile", p.Add(b))
	prof, err := p.Finish()
	must(t, "finish profile", err)
	return prof
}

// binaryQuality returns the quality of labels ys with scores ps.
func binaryQuality(ys []float64, ps []float32) *monitor.Quality {
	q := monitor.NewQuality(monitor.Binary)
	for i := range ys {
		q.AddLabel(ys[i], []float32{ps[i]})
	}
	return q
}

// window returns a window of deployment dep for model version mv starting
// at start, one minute long.
func window(dep, mv string, start time.Time) *monitor.WindowSummary {
	pv := 0.01
	return &monitor.WindowSummary{
		ID: fmt.Sprintf("mw-%s-%s-%d", dep, mv, start.Unix()), Deployment: dep, ModelVersion: mv, Model: "m", Version: 1, Revision: 2,
		Start: start, End: start.Add(time.Minute), Rows: 100, Requests: 90, Errors: 3, ClientErrors: 1,
		LatencyP50: 0.5, LatencyP99: 2.5, Reference: "weather@1",
		Drift: monitor.Drift{Status: monitor.DriftOK, Drifted: 1, Share: 0.5, DriftShare: 0.5, DatasetDrift: true,
			Features: []monitor.FeatureDrift{{Feature: "x", Method: dataset.MethodKS, Statistic: 0.3, PValue: &pv, Threshold: 0.05, Drifted: true}}},
		PredictionDrift: monitor.Drift{Status: monitor.DriftIsReference, Reason: "first"},
		DataQuality: monitor.DataQuality{Schema: true, CheckedRows: 100, Issues: 4,
			Features: []monitor.FeatureQuality{{Feature: "x", Nulls: 2, OutOfRange: 4}}},
	}
}

func testSaveGet(t *testing.T, s monitor.Store) {
	ctx := context.Background()
	w := window("d", "m/1", t0)
	w.Quality = binaryQuality([]float64{1, 0, 1, 0}, []float32{0.9, 0.2, 0.4, 0.6})
	w.Profiles = &monitor.WindowProfiles{Features: profile(t, "x", 100, 0), Predictions: profile(t, "prediction", 100, 0.5)}
	must(t, "save", s.SaveWindow(ctx, w))
	got, err := s.GetWindow(ctx, w.ID)
	must(t, "get", err)
	if got.ID != w.ID || got.Deployment != "d" || got.ModelVersion != "m/1" || got.Model != "m" || got.Version != 1 || got.Revision != 2 {
		t.Fatalf("get: got %+v, want the saved identity", got)
	}
	if !got.Start.Equal(w.Start) || !got.End.Equal(w.End) || got.Rows != 100 || got.Requests != 90 || got.Errors != 3 || got.ClientErrors != 1 {
		t.Fatalf("get: got bounds %v–%v counts %d/%d/%d/%d, want the saved ones", got.Start, got.End, got.Rows, got.Requests, got.Errors, got.ClientErrors)
	}
	if got.LatencyP50 != 0.5 || got.LatencyP99 != 2.5 || got.Reference != "weather@1" {
		t.Fatalf("get: got latency %v/%v reference %q", got.LatencyP50, got.LatencyP99, got.Reference)
	}
	if !got.Drift.DatasetDrift || len(got.Drift.Features) != 1 || got.Drift.Features[0].PValue == nil || *got.Drift.Features[0].PValue != 0.01 {
		t.Fatalf("get: got drift %+v", got.Drift)
	}
	if got.PredictionDrift.Status != monitor.DriftIsReference || got.DataQuality.Issues != 4 || got.DataQuality.Features[0].OutOfRange != 4 {
		t.Fatalf("get: got prediction drift %+v data quality %+v", got.PredictionDrift, got.DataQuality)
	}
	if got.Quality == nil || got.Quality.Labels != 4 || got.Quality.Metrics()[monitor.MetricROCAUC] != w.Quality.Metrics()[monitor.MetricROCAUC] {
		t.Fatalf("get: got quality %+v, want 4 labels with the saved AUC", got.Quality)
	}
	if got.Profiles == nil || got.Profiles.Features.Rows != 100 || got.Profiles.Predictions.Column("prediction") == nil {
		t.Fatalf("get: got profiles %+v, want both profiles of 100 rows", got.Profiles)
	}
	// The profile still merges and compares after the round trip.
	rep, err := dataset.DriftProfiles(got.Profiles.Features, w.Profiles.Features, dataset.DriftOptions{})
	must(t, "drift of stored profiles", err)
	if rep.DatasetDrift {
		t.Fatalf("a stored profile drifts from itself: %+v", rep.Columns)
	}
}

func testSaveExists(t *testing.T, s monitor.Store) {
	ctx := context.Background()
	w := window("d", "m/1", t0)
	must(t, "save", s.SaveWindow(ctx, w))
	wantCode(t, "save twice", s.SaveWindow(ctx, w), mloop.EEXISTS)
}

func testSaveInvalid(t *testing.T, s monitor.Store) {
	ctx := context.Background()
	for _, mod := range []func(w *monitor.WindowSummary){
		func(w *monitor.WindowSummary) { w.ID = "" },
		func(w *monitor.WindowSummary) { w.Deployment = "" },
		func(w *monitor.WindowSummary) { w.ModelVersion = "" },
	} {
		w := window("d", "m/1", t0)
		mod(w)
		wantCode(t, "save incomplete window", s.SaveWindow(ctx, w), mloop.EINVALID)
	}
}

func testGetNotFound(t *testing.T, s monitor.Store) {
	_, err := s.GetWindow(context.Background(), "mw-none")
	wantCode(t, "get unknown", err, mloop.ENOTFOUND)
	err = s.MergeWindowQuality(context.Background(), "mw-none", binaryQuality([]float64{1}, []float32{0.7}))
	wantCode(t, "merge into unknown", err, mloop.ENOTFOUND)
}

func testList(t *testing.T, s monitor.Store) {
	ctx := context.Background()
	var ids []string
	for i := range 6 {
		mv := "m/1"
		if i%2 == 1 {
			mv = "m/2"
		}
		w := window("d", mv, t0.Add(time.Duration(i)*time.Minute))
		w.Profiles = &monitor.WindowProfiles{Features: profile(t, "x", 10, float64(i)), Predictions: profile(t, "prediction", 10, 0)}
		must(t, "save", s.SaveWindow(ctx, w))
		ids = append(ids, w.ID)
	}
	must(t, "save other deployment", s.SaveWindow(ctx, window("e", "m/1", t0)))
	idsOf := func(ws []*monitor.WindowSummary) []string {
		out := []string{}
		for _, w := range ws {
			out = append(out, w.ID)
		}
		return out
	}
	check := func(what string, f monitor.WindowFilter, want []string) []*monitor.WindowSummary {
		t.Helper()
		ws, err := s.ListWindows(ctx, "d", f)
		must(t, what, err)
		if got := idsOf(ws); fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
		return ws
	}
	all := check("all", monitor.WindowFilter{}, []string{ids[5], ids[4], ids[3], ids[2], ids[1], ids[0]})
	if all[0].Profiles != nil {
		t.Fatalf("list without WithProfiles: got profiles")
	}
	check("oldest first", monitor.WindowFilter{Oldest: true, Limit: 2}, []string{ids[0], ids[1]})
	check("limit", monitor.WindowFilter{Limit: 2}, []string{ids[5], ids[4]})
	check("model version", monitor.WindowFilter{ModelVersion: "m/2"}, []string{ids[5], ids[3], ids[1]})
	// Window i spans [t0+i, t0+i+1) minutes.
	check("since", monitor.WindowFilter{Since: t0.Add(4 * time.Minute)}, []string{ids[5], ids[4]})
	check("until", monitor.WindowFilter{Until: t0.Add(2 * time.Minute)}, []string{ids[1], ids[0]})
	ws := check("with profiles", monitor.WindowFilter{WithProfiles: true, Limit: 1}, []string{ids[5]})
	if ws[0].Profiles == nil || ws[0].Profiles.Features.Column("x") == nil || *ws[0].Profiles.Features.Column("x").Min != 5 {
		t.Fatalf("with profiles: got %+v, want window 5's profile (min 5)", ws[0].Profiles)
	}
	none, err := s.ListWindows(ctx, "unknown", monitor.WindowFilter{})
	must(t, "list unknown deployment", err)
	if none == nil || len(none) != 0 {
		t.Fatalf("list unknown deployment: got %v, want an empty list", none)
	}
}

func testMergeQuality(t *testing.T, s monitor.Store) {
	ctx := context.Background()
	w := window("d", "m/1", t0)
	must(t, "save", s.SaveWindow(ctx, w))
	ys := []float64{1, 0, 1, 0, 1, 1}
	ps := []float32{0.9, 0.3, 0.35, 0.8, 0.7, 0.6}
	must(t, "merge first", s.MergeWindowQuality(ctx, w.ID, binaryQuality(ys[:3], ps[:3])))
	must(t, "merge second", s.MergeWindowQuality(ctx, w.ID, binaryQuality(ys[3:], ps[3:])))
	got, err := s.GetWindow(ctx, w.ID)
	must(t, "get", err)
	want := binaryQuality(ys, ps).Metrics()
	gm := got.Quality.Metrics()
	for k, v := range want {
		if math.Abs(gm[k]-v) > 1e-12 {
			t.Fatalf("merged %s: got %v, want %v (all: %v)", k, gm[k], v, gm)
		}
	}
	reg := monitor.NewQuality(monitor.Regression)
	reg.AddLabel(1, []float32{2})
	wantCode(t, "merge another task", s.MergeWindowQuality(ctx, w.ID, reg), mloop.EINVALID)
}

func testMergeQualityRace(t *testing.T, s monitor.Store) {
	ctx := context.Background()
	w := window("d", "m/1", t0)
	w.Quality = monitor.NewQuality(monitor.Regression)
	w.Quality.AddLabel(0, []float32{0})
	must(t, "save", s.SaveWindow(ctx, w))
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			q := monitor.NewQuality(monitor.Regression)
			q.AddLabel(float64(i), []float32{float32(i) + 1})
			errs <- s.MergeWindowQuality(ctx, w.ID, q)
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		must(t, "concurrent merge", err)
	}
	got, err := s.GetWindow(ctx, w.ID)
	must(t, "get", err)
	if got.Quality.Labels != 9 || got.Quality.Metrics()[monitor.MetricMAE] != 8.0/9 {
		t.Fatalf("after 8 concurrent merges: got %d labels, MAE %v; want 9 labels, MAE 8/9", got.Quality.Labels, got.Quality.Metrics()[monitor.MetricMAE])
	}
}
