package monitor_test

import (
	"context"
	"encoding/csv"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/realdata"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/sqlstore"
)

// mustStore opens a fresh SQLite monitoring store.
func mustStore(t *testing.T) *sqlstore.MonitorStore {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "mloop.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return sqlstore.NewMonitorStore(db)
}

// staticRefs is a ReferenceSource with one reference for every model.
type staticRefs struct{ ref *monitor.Reference }

func (s staticRefs) Reference(ctx context.Context, model string, version int64) (*monitor.Reference, error) {
	if s.ref == nil {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "model version %s/%d has no dataset version in its lineage", model, version)
	}
	return s.ref, nil
}

// mustOpen opens a monitor and closes it at the end of the test.
func mustOpen(t *testing.T, store monitor.Store, refs monitor.ReferenceSource, cfg monitor.Config) *monitor.Monitor {
	t.Helper()
	if cfg.Registerer == nil {
		cfg.Registerer = prometheus.NewRegistry()
	}
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = 5 * time.Millisecond
	}
	m := monitor.New(store, refs, cfg)
	storeOf.Store(m, store)
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(context.Background()); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return m
}

// weatherRow is one day of Seattle weather.
type weatherRow struct {
	month int
	x     [4]float64 // precipitation, temp_max, temp_min, wind
	kind  string
}

var weatherKinds = []string{"drizzle", "fog", "rain", "snow", "sun"}

var weatherFeatures = []serving.Feature{
	{Name: "precipitation", Type: serving.Numeric}, {Name: "temp_max", Type: serving.Numeric},
	{Name: "temp_min", Type: serving.Numeric}, {Name: "wind", Type: serving.Numeric},
	{Name: "weather", Type: serving.Categorical},
}

func readWeather(t *testing.T) []weatherRow {
	t.Helper()
	f, err := os.Open(realdata.Path(t, "seattle-weather.csv"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	var rows []weatherRow
	for _, r := range recs[1:] {
		var w weatherRow
		w.month, _ = strconv.Atoi(r[0][5:7])
		for i := range 4 {
			if w.x[i], err = strconv.ParseFloat(r[i+1], 64); err != nil {
				t.Fatal(err)
			}
		}
		w.kind = r[5]
		rows = append(rows, w)
	}
	return rows
}

// weatherProfile profiles rows as a dataset would (weather as strings).
func weatherProfile(t *testing.T, rows []weatherRow) *dataset.Profile {
	t.Helper()
	cols := []dataset.Column{{Name: "precipitation", Type: dataset.TypeFloat}, {Name: "temp_max", Type: dataset.TypeFloat},
		{Name: "temp_min", Type: dataset.TypeFloat}, {Name: "wind", Type: dataset.TypeFloat}, {Name: "weather", Type: dataset.TypeString}}
	p := dataset.NewProfiler("reference", cols, dataset.ProfileOptions{})
	b := &dataset.Batch{Rows: len(rows), Cols: make([]dataset.ColumnValues, 5)}
	for j := range 4 {
		b.Cols[j] = dataset.ColumnValues{Kind: dataset.KindFloat, Float: make([]float64, len(rows))}
	}
	b.Cols[4] = dataset.ColumnValues{Kind: dataset.KindText, Text: make([]string, len(rows))}
	for i, r := range rows {
		for j := range 4 {
			b.Cols[j].Float[i] = r.x[j]
		}
		b.Cols[4].Text[i] = r.kind
	}
	if err := p.Add(b); err != nil {
		t.Fatal(err)
	}
	prof, err := p.Finish()
	if err != nil {
		t.Fatal(err)
	}
	return prof
}

// serveWeather observes one request per row; the "model" predicts
// temp_max/40.
func serveWeather(m *monitor.Monitor, rows []weatherRow, idPrefix string) {
	for i, r := range rows {
		code := float32(slices.Index(weatherKinds, r.kind))
		in := []float32{float32(r.x[0]), float32(r.x[1]), float32(r.x[2]), float32(r.x[3]), code}
		m.Observe(&monitor.Observation{
			Deployment: "weather", Revision: 1, ModelVersion: "rain/1", Model: "rain", Version: 1,
			RequestID: fmt.Sprintf("%s-%d", idPrefix, i), Features: weatherFeatures,
			Inputs:  serving.Batch{Rows: 1, Cols: 5, Values: in},
			Outputs: []float32{float32(r.x[1] / 40)}, OutputsPerRow: 1, Objective: "reg:squarederror",
			Status: 200, Latency: time.Duration(100+i%50) * time.Microsecond,
		})
	}
}

// TestWindowsDriftOnWeather serves real Seattle weather: a window of the
// same distribution as the reference (odd days against even days) shows no
// drift; a window of winter days against the whole years does, in its
// features and its predictions.
func TestWindowsDriftOnWeather(t *testing.T) {
	rows := readWeather(t)
	var even, odd, winter []weatherRow
	for i, r := range rows {
		if i%2 == 0 {
			even = append(even, r)
		} else {
			odd = append(odd, r)
		}
		if r.month == 12 || r.month <= 2 {
			winter = append(winter, r)
		}
	}
	ref := &monitor.Reference{Dataset: "weather@1", Profile: weatherProfile(t, even), Categories: map[string][]string{"weather": weatherKinds}}
	reg := prometheus.NewRegistry()
	m := mustOpen(t, mustStore(t), staticRefs{ref}, monitor.Config{Registerer: reg})
	ctx := context.Background()

	serveWeather(m, odd, "odd")
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	serveWeather(m, winter, "winter")
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ws, err := m.Windows(ctx, "weather", monitor.WindowFilter{Oldest: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 {
		t.Fatalf("windows: got %d, want 2", len(ws))
	}
	same, win := ws[0], ws[1]
	if same.Rows != int64(len(odd)) || same.Requests != int64(len(odd)) || win.Rows != int64(len(winter)) {
		t.Fatalf("rows: got %d and %d, want %d and %d", same.Rows, win.Rows, len(odd), len(winter))
	}
	if same.Reference != "weather@1" || same.Drift.Status != monitor.DriftOK || len(same.Drift.Features) != 5 {
		t.Fatalf("same distribution: got reference %q drift %+v, want 5 features compared with weather@1", same.Reference, same.Drift)
	}
	if same.Drift.DatasetDrift {
		t.Errorf("odd days against even days: got dataset drift %+v", same.Drift.Features)
	}
	if same.PredictionDrift.Status != monitor.DriftIsReference {
		t.Errorf("first window's prediction drift: got %+v, want it to be the reference", same.PredictionDrift)
	}
	if !win.Drift.DatasetDrift {
		t.Errorf("winter against whole years: got no dataset drift: %+v", win.Drift.Features)
	}
	for _, f := range win.Drift.Features {
		if (f.Feature == "temp_max" || f.Feature == "temp_min") && !f.Drifted {
			t.Errorf("winter %s: got no drift (%+v)", f.Feature, f)
		}
	}
	if win.PredictionDrift.Status != monitor.DriftOK || !win.PredictionDrift.DatasetDrift {
		t.Errorf("winter predictions against the first window's: got %+v, want drift", win.PredictionDrift)
	}
	if win.LatencyP50 < 0.1 || win.LatencyP99 > 0.15 || win.LatencyP50 > win.LatencyP99 {
		t.Errorf("latency: got p50 %v p99 %v ms, want within 0.1–0.15", win.LatencyP50, win.LatencyP99)
	}
	// The profiles are stored with the window.
	got, err := mustStoreOf(m, t).GetWindow(ctx, win.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Profiles == nil || got.Profiles.Features.Column("weather").Type != dataset.TypeInteger || got.Profiles.Predictions.Column("prediction") == nil {
		t.Fatalf("stored profiles: got %+v", got.Profiles)
	}
	// Prometheus.
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for _, f := range fams {
		found[f.GetName()] = len(f.GetMetric()) > 0
	}
	for _, name := range []string{"mloop_monitor_feature_drift", "mloop_monitor_dataset_drift_share", "mloop_monitor_dropped_total"} {
		if !found[name] {
			t.Errorf("metric %s: not exported", name)
		}
	}
}

var storeOf sync.Map // *monitor.Monitor → monitor.Store

func mustStoreOf(m *monitor.Monitor, t *testing.T) monitor.Store {
	s, ok := storeOf.Load(m)
	if !ok {
		t.Fatal("no store recorded")
	}
	return s.(monitor.Store)
}

// TestNoReference profiles windows without a reference and says why.
func TestNoReference(t *testing.T) {
	m := mustOpen(t, mustStore(t), staticRefs{}, monitor.Config{})
	serveWeather(m, readWeather(t)[:50], "r")
	ctx := context.Background()
	cur, err := m.CurrentWindow(ctx, "weather")
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ws, err := m.Windows(ctx, "weather", monitor.WindowFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Rows != 50 || ws[0].Drift.Status != monitor.DriftNoReference || ws[0].Drift.Reason == "" {
		t.Fatalf("got %d windows, first %+v; want one of 50 rows with drift status no_reference and a reason", len(ws), ws[0])
	}
	if len(cur) > 1 {
		t.Fatalf("current window: got %d model versions", len(cur))
	}
}

// TestDataQuality counts nulls, type errors and values outside the
// schema's ranges and domains; such rows are still profiled.
func TestDataQuality(t *testing.T) {
	lo, hi := 0.0, 10.0
	schema := &dataset.Schema{Columns: []*dataset.ColumnSchema{
		{Name: "x", Type: dataset.TypeFloat, Min: &lo, Max: &hi},
		{Name: "n", Type: dataset.TypeInteger, Nullable: true},
		{Name: "c", Type: dataset.TypeInteger, Domain: []string{"0", "1", "2"}},
		{Name: "k", Type: dataset.TypeString, Domain: []string{"a", "b"}},
	}}
	ref := &monitor.Reference{Dataset: "d@1", Schema: schema, Categories: map[string][]string{"k": {"a", "b", "z"}}}
	feats := []serving.Feature{{Name: "x"}, {Name: "n"}, {Name: "c", Type: serving.Categorical},
		{Name: "k", Type: serving.Categorical}, {Name: "extra"}}
	nan := float32(math.NaN())
	rows := [][]float32{
		{1, 1, 0, 0, 5},       // fine
		{nan, 2, 1, 1, 5},     // x null (not nullable)
		{11, 2.5, 3, 2, 5},    // x out of range, n fractional, c out of domain, k code 2 = "z" out of domain
		{-1, nan, 1.5, -1, 5}, // x out of range, n null (nullable), c fractional code, k negative code
		{5, 3, nan, 1, nan},   // c null (not nullable), extra null
	}
	m := mustOpen(t, mustStore(t), staticRefs{ref}, monitor.Config{})
	for i, r := range rows {
		m.Observe(&monitor.Observation{Deployment: "dq", ModelVersion: "m/1", Model: "m", Version: 1, RequestID: strconv.Itoa(i),
			Features: feats, Inputs: serving.Batch{Rows: 1, Cols: 5, Values: r}, Outputs: []float32{0.5}, OutputsPerRow: 1, Status: 200})
	}
	// A request answered 500 and one answered 400 count, without rows.
	m.Observe(&monitor.Observation{Deployment: "dq", ModelVersion: "m/1", Model: "m", Version: 1, Features: feats, Status: 500})
	m.Observe(&monitor.Observation{Deployment: "dq", ModelVersion: "m/1", Model: "m", Version: 1, Features: feats, Status: 400,
		Inputs: serving.Batch{Rows: 1, Cols: 2, Values: []float32{1, 2}}})
	ctx := context.Background()
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ws, err := m.Windows(ctx, "dq", monitor.WindowFilter{})
	if err != nil {
		t.Fatal(err)
	}
	w := ws[0]
	if w.Rows != 5 || w.Requests != 7 || w.Errors != 1 || w.ClientErrors != 1 {
		t.Fatalf("counts: got rows %d requests %d errors %d client errors %d, want 5, 7, 1, 1", w.Rows, w.Requests, w.Errors, w.ClientErrors)
	}
	dq := w.DataQuality
	if !dq.Schema || dq.CheckedRows != 5 {
		t.Fatalf("data quality: got schema %v checked %d, want a schema and 5 rows checked", dq.Schema, dq.CheckedRows)
	}
	want := []monitor.FeatureQuality{
		{Feature: "x", Nulls: 1, NullViolations: 1, OutOfRange: 2},
		{Feature: "n", Nulls: 1, TypeErrors: 1},
		{Feature: "c", Nulls: 1, NullViolations: 1, OutOfDomain: 1, TypeErrors: 1},
		{Feature: "k", OutOfDomain: 1, TypeErrors: 1},
		{Feature: "extra", Nulls: 1, NotInSchema: true},
	}
	for i, f := range want {
		g := dq.Features[i]
		if g != f {
			t.Errorf("feature %s: got %+v, want %+v", f.Feature, g, f)
		}
	}
	if dq.Issues != 9 {
		t.Errorf("issues: got %d, want 9", dq.Issues)
	}
}

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *fakeClock) advance(d time.Duration) { c.ns.Add(int64(d)) }

// TestFeedback joins labels: accepted, unknown, duplicate, late, invalid;
// rows of batch requests by ID#i; live quality of the open window; labels
// of a saved window merged into the store.
func TestFeedback(t *testing.T) {
	clock := &fakeClock{}
	clock.ns.Store(time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	store := mustStore(t)
	m := mustOpen(t, store, staticRefs{}, monitor.Config{Now: clock.now, Horizon: time.Hour, Window: 24 * time.Hour})
	feats := []serving.Feature{{Name: "x"}}
	observe := func(id string, ps ...float32) {
		in := make([]float32, len(ps))
		m.Observe(&monitor.Observation{Deployment: "fb", ModelVersion: "clf/1", Model: "clf", Version: 1, RequestID: id,
			Features: feats, Inputs: serving.Batch{Rows: len(ps), Cols: 1, Values: in}, Outputs: ps, OutputsPerRow: 1,
			Objective: "binary:logistic", Status: 200})
	}
	fix := loadQualityFixture(t)
	n := 300
	for i := range n {
		observe(fmt.Sprintf("r-%d", i), fix.Binary.P[i])
	}
	observe("batch", 0.2, 0.9, 0.4)
	observe("late-1", 0.7)
	observe("invalid-1", 0.7)
	observe("after-flush", 0.8)
	ctx := context.Background()
	// Labels join once the aggregator has the predictions (flushed every
	// FlushInterval): wait until the first one is known.
	waitAccepted(t, m, monitor.Label{RequestID: "r-0", Value: fix.Binary.Y[0]})
	labels := []monitor.Label{}
	for i := 1; i < n; i++ {
		labels = append(labels, monitor.Label{RequestID: fmt.Sprintf("r-%d", i), Value: fix.Binary.Y[i]})
	}
	labels = append(labels,
		monitor.Label{RequestID: "batch#1", Value: 1},
		monitor.Label{RequestID: "nope", Value: 1},
		monitor.Label{RequestID: "r-3", Value: 1},
		monitor.Label{RequestID: "late-1", Value: 1, Time: clock.now().Add(2 * time.Hour)},
		monitor.Label{RequestID: "invalid-1", Value: 2},
		monitor.Label{RequestID: "", Value: 1},
		monitor.Label{RequestID: "batch#7", Value: 1},
	)
	res, err := m.Feedback(ctx, labels)
	if err != nil {
		t.Fatal(err)
	}
	want := monitor.FeedbackResult{Accepted: int64(n - 1 + 1), Unknown: 2, Duplicate: 1, Late: 1, Invalid: 2}
	if res != want {
		t.Fatalf("feedback: got %+v, want %+v", res, want)
	}
	// The expected quality: the fixture's first n pairs and batch row 1.
	exp := monitor.NewQuality(monitor.Binary)
	for i := range n {
		_ = exp.AddLabel(fix.Binary.Y[i], []float32{fix.Binary.P[i]})
	}
	_ = exp.AddLabel(1, []float32{0.9})
	cur, err := m.CurrentWindow(ctx, "fb")
	if err != nil {
		t.Fatal(err)
	}
	if len(cur) != 1 || cur[0].Quality == nil || cur[0].Quality.Labels != int64(n+1) {
		t.Fatalf("current window: got %+v, want live quality of %d labels", cur, n+1)
	}
	sameMetrics(t, "live window", cur[0].Quality.Metrics(), exp.Metrics())
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	// A label for a saved window is merged into the stored window.
	if r, _ := m.Feedback(ctx, []monitor.Label{{RequestID: "after-flush", Value: 0}}); r.Accepted != 1 {
		t.Fatalf("label after the window closed: got %+v, want accepted", r)
	}
	_ = exp.AddLabel(0, []float32{0.8})
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ws, err := m.Windows(ctx, "fb", monitor.WindowFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Quality == nil || ws[0].Quality.Labels != int64(n+2) {
		t.Fatalf("stored window: got %d windows, quality %+v; want %d labels", len(ws), ws[0].Quality, n+2)
	}
	sameMetrics(t, "stored window", ws[0].Quality.Metrics(), exp.Metrics())
	sameMetrics(t, "model version", m.ModelQuality("fb", "clf/1").Metrics(), exp.Metrics())
	st := m.Stats()
	if st.Feedback.Accepted != int64(n+2) || st.QualityMerges != 1 {
		t.Fatalf("stats: got %+v", st)
	}
	// Horizon: twice the horizon later, the predictions are swept.
	clock.advance(3 * time.Hour)
	deadline := time.Now().Add(10 * time.Second)
	for m.Stats().Tracked > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("tracked predictions older than twice the horizon were not swept: %+v", m.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if r, _ := m.Feedback(ctx, []monitor.Label{{RequestID: "r-1", Value: 1}}); r.Unknown != 1 {
		t.Fatalf("label of a swept prediction: got %+v, want unknown", r)
	}
}

func waitAccepted(t *testing.T, m *monitor.Monitor, l monitor.Label) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := m.Feedback(context.Background(), []monitor.Label{l})
		if err != nil {
			t.Fatal(err)
		}
		if res.Accepted == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("label %s never joined: %+v", l.RequestID, res)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func sameMetrics(t *testing.T, what string, got, want map[string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got metrics %v, want %v", what, got, want)
	}
	for k, v := range want {
		if math.Abs(got[k]-v) > 1e-9 {
			t.Errorf("%s %s: got %v, want %v", what, k, got[k], v)
		}
	}
}

// TestFeedbackEviction bounds the tracked predictions by MaxTracked.
func TestFeedbackEviction(t *testing.T) {
	m := mustOpen(t, mustStore(t), staticRefs{}, monitor.Config{MaxTracked: 10})
	for i := range 25 {
		m.Observe(&monitor.Observation{Deployment: "ev", ModelVersion: "r/1", Model: "r", Version: 1, RequestID: fmt.Sprintf("e-%d", i),
			Features: []serving.Feature{{Name: "x"}}, Inputs: serving.Batch{Rows: 1, Cols: 1, Values: []float32{1}},
			Outputs: []float32{float32(i)}, OutputsPerRow: 1, Status: 200})
	}
	// An unknown id makes Feedback collect the buffered requests.
	if _, err := m.Feedback(context.Background(), []monitor.Label{{RequestID: "none", Value: 1}}); err != nil {
		t.Fatal(err)
	}
	st := m.Stats()
	if st.Tracked != 10 || st.Evicted != 15 {
		t.Fatalf("got %d tracked, %d evicted; want 10 and 15", st.Tracked, st.Evicted)
	}
	// Buffers reach the aggregator stripe by stripe, so which ten are
	// kept is not request order.
	var labels []monitor.Label
	for i := range 25 {
		labels = append(labels, monitor.Label{RequestID: fmt.Sprintf("e-%d", i), Value: float64(i)})
	}
	res, _ := m.Feedback(context.Background(), labels)
	if res.Unknown != 15 || res.Accepted != 10 {
		t.Fatalf("got %+v, want 15 unknown (evicted) and 10 accepted", res)
	}
}

// TestConcurrentObserve observes from many goroutines while windows close
// every 100 requests, labels join and the open window is read; every row
// ends in a stored window or in the dropped count.
func TestConcurrentObserve(t *testing.T) {
	store := mustStore(t)
	m := mustOpen(t, store, staticRefs{}, monitor.Config{WindowRequests: 100, BufferRows: 64})
	feats := []serving.Feature{{Name: "a"}, {Name: "b", Type: serving.Categorical}}
	const workers, per = 8, 1500
	var wg sync.WaitGroup
	var rows atomic.Int64
	for w := range workers {
		wg.Go(func() {
			in := make([]float32, 6)
			out := make([]float32, 3)
			for i := range per {
				n := 1 + i%3
				for r := range n {
					in[2*r], in[2*r+1], out[r] = float32(i), float32(r), float32(i%7)
				}
				m.Observe(&monitor.Observation{Deployment: "c", ModelVersion: fmt.Sprintf("m/%d", 1+w%2), Model: "m", Version: int64(1 + w%2),
					RequestID: fmt.Sprintf("c-%d-%d", w, i), Features: feats, Inputs: serving.Batch{Rows: n, Cols: 2, Values: in[:2*n]},
					Outputs: out[:n], OutputsPerRow: 1, Status: 200})
				rows.Add(int64(n))
			}
		})
	}
	wg.Go(func() {
		for i := range 200 {
			_, _ = m.Feedback(context.Background(), []monitor.Label{{RequestID: fmt.Sprintf("c-%d-%d#0", i%workers, i), Value: 1}})
			_, _ = m.CurrentWindow(context.Background(), "c")
		}
	})
	wg.Wait()
	ctx := context.Background()
	if err := m.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ws, err := m.Windows(ctx, "c", monitor.WindowFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var stored, reqs int64
	for _, w := range ws {
		stored += w.Rows
		reqs += w.Requests
	}
	st := m.Stats()
	if stored+st.DroppedRows != rows.Load() || reqs+st.DroppedRequests != workers*per {
		t.Fatalf("got %d rows stored + %d dropped, want %d; %d requests stored + %d dropped, want %d",
			stored, st.DroppedRows, rows.Load(), reqs, st.DroppedRequests, workers*per)
	}
	if st.DroppedRequests == 0 && len(ws) < workers*per/100 {
		t.Fatalf("got %d windows, want at least %d (one per 100 requests)", len(ws), workers*per/100)
	}
}
