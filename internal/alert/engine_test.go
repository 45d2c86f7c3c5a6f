package alert_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/sqlstore"
)

var t0 = time.Date(2025, 3, 4, 0, 0, 0, 0, time.UTC)

// mustStore opens a fresh SQLite alert store.
func mustStore(t *testing.T) *sqlstore.AlertStore {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "mloop.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return sqlstore.NewAlertStore(db)
}

func mustEngine(t *testing.T, s alert.Store, p alert.EventPoster) *alert.Engine {
	t.Helper()
	e := alert.NewEngine(s, p, alert.Config{})
	if err := e.Open(context.Background()); err != nil {
		t.Fatalf("open engine: %v", err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	return e
}

// window returns the i-th hourly window of deployment "flights" with the
// given error count out of requests.
func window(i int, requests, errors int64) *monitor.WindowSummary {
	return &monitor.WindowSummary{ID: "mw-" + string(rune('a'+i)), Deployment: "flights", ModelVersion: "m/1", Model: "m", Version: 1,
		Start: t0.Add(time.Duration(i) * time.Hour), End: t0.Add(time.Duration(i+1) * time.Hour),
		Rows: requests, Requests: requests, Errors: errors}
}

func errRule(name string, windows int, minSamples int64, actions ...alert.Action) *alert.Rule {
	th := 0.1
	return &alert.Rule{Name: name, Deployment: "flights", Condition: alert.Condition{Kind: alert.ErrorRateAbove, Threshold: &th},
		Windows: windows, MinSamples: minSamples, Actions: actions}
}

func mustEval(t *testing.T, e *alert.Engine, w *monitor.WindowSummary) {
	t.Helper()
	if err := e.Evaluate(context.Background(), w); err != nil {
		t.Fatalf("evaluate %s: %v", w.ID, err)
	}
}

func alerts(t *testing.T, e *alert.Engine) []*alert.Alert {
	t.Helper()
	as, err := e.Alerts(context.Background(), alert.AlertFilter{})
	if err != nil {
		t.Fatalf("alerts: %v", err)
	}
	return as
}

// TestTransitions walks ok → firing → resolved with consecutive windows
// and MinSamples, and checks that the state survives a new engine.
func TestTransitions(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	e := mustEngine(t, s, nil)
	if _, err := e.CreateRule(ctx, errRule("errors", 2, 100)); err != nil {
		t.Fatal(err)
	}
	mustEval(t, e, window(0, 1000, 500)) // holds: streak 1
	if n := len(alerts(t, e)); n != 0 {
		t.Fatalf("after one bad window: %d alerts, want 0 (rule needs 2)", n)
	}
	mustEval(t, e, window(1, 50, 50)) // too few samples: no change
	mustEval(t, e, window(1, 50, 50)) // same window again
	// A new engine on the same store continues from the stored state.
	e2 := mustEngine(t, s, nil)
	mustEval(t, e2, window(2, 1000, 300)) // holds: streak 2 → firing
	as := alerts(t, e2)
	if len(as) != 1 || as[0].State != alert.StateFiring || as[0].Value != 0.3 || as[0].Threshold != 0.1 ||
		len(as[0].Windows) != 2 || as[0].Windows[0] != "mw-a" || as[0].Windows[1] != "mw-c" || !as[0].StartedAt.Equal(t0.Add(3*time.Hour)) {
		t.Fatalf("after two bad windows: got %+v, want one firing alert over mw-a, mw-c", as)
	}
	mustEval(t, e2, window(2, 1000, 300)) // re-evaluation changes nothing
	mustEval(t, e2, window(3, 1000, 0))   // clears → resolved
	as = alerts(t, e2)
	if len(as) != 1 || as[0].State != alert.StateResolved || as[0].ResolvedBy != "mw-d" || !as[0].ResolvedAt.Equal(t0.Add(4*time.Hour)) {
		t.Fatalf("after a good window: got %+v, want the alert resolved by mw-d", as)
	}
	// A streak broken by a good window starts over.
	mustEval(t, e2, window(4, 1000, 500))
	mustEval(t, e2, window(5, 1000, 0))
	mustEval(t, e2, window(6, 1000, 500))
	if n := len(alerts(t, e2)); n != 1 {
		t.Fatalf("after broken streaks: %d alerts, want still 1", n)
	}
	// Other deployments are not watched.
	w := window(7, 1000, 900)
	w.Deployment = "other"
	mustEval(t, e2, w)
	if n := len(alerts(t, e2)); n != 1 {
		t.Fatalf("after another deployment's window: %d alerts, want 1", n)
	}
}

// TestConditions checks each condition kind on windows that meet it and
// windows that do not.
func TestConditions(t *testing.T) {
	f := func(v float64) *float64 { return &v }
	q := monitor.NewQuality(monitor.Binary)
	for i := range 200 {
		// Predictions that are always wrong: accuracy 0, AUC 0.
		y := float64(i % 2)
		if err := q.AddLabel(y, []float32{float32(1 - y)}); err != nil {
			t.Fatal(err)
		}
	}
	base := func() *monitor.WindowSummary {
		w := window(0, 1000, 0)
		w.LatencyP99 = 300
		w.Drift = monitor.Drift{Status: monitor.DriftOK, Drifted: 1, Share: 0.5, DriftShare: 0.5, DatasetDrift: true,
			Features: []monitor.FeatureDrift{{Feature: "dep_delay", Statistic: 0.2, Threshold: 0.1, Drifted: true}}}
		w.Quality = q
		return w
	}
	for _, tc := range []struct {
		name    string
		c       alert.Condition
		min     int64
		w       func(*monitor.WindowSummary)
		counted bool
		holds   bool
	}{
		{"dataset drift verdict", alert.Condition{Kind: alert.DatasetDrift}, 0, nil, true, true},
		{"dataset drift share", alert.Condition{Kind: alert.DatasetDrift, Threshold: f(0.6)}, 0, nil, true, false},
		{"dataset drift none", alert.Condition{Kind: alert.DatasetDrift}, 0, func(w *monitor.WindowSummary) { w.Drift.Status = monitor.DriftNoReference }, false, false},
		{"feature drifted", alert.Condition{Kind: alert.FeatureDrift, Feature: "dep_delay"}, 0, nil, true, true},
		{"feature bound", alert.Condition{Kind: alert.FeatureDrift, Feature: "dep_delay", Threshold: f(0.3)}, 0, nil, true, false},
		{"feature missing", alert.Condition{Kind: alert.FeatureDrift, Feature: "nope"}, 0, nil, false, false},
		{"auc below", alert.Condition{Kind: alert.QualityBelow, Metric: "roc_auc", Threshold: f(0.65)}, 0, nil, true, true},
		{"too few labels", alert.Condition{Kind: alert.QualityBelow, Metric: "roc_auc", Threshold: f(0.65), MinLabels: 500}, 0, nil, false, false},
		{"log loss above", alert.Condition{Kind: alert.QualityBelow, Metric: "log_loss", Threshold: f(100)}, 0, nil, true, false},
		{"latency", alert.Condition{Kind: alert.LatencyP99Above, Threshold: f(250)}, 0, nil, true, true},
		{"latency ok", alert.Condition{Kind: alert.LatencyP99Above, Threshold: f(350)}, 0, nil, true, false},
		{"min samples", alert.Condition{Kind: alert.LatencyP99Above, Threshold: f(250)}, 5000, nil, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &alert.Rule{Name: "r", Deployment: "*", Condition: tc.c, MinSamples: tc.min}
			if err := r.Check(); err != nil {
				t.Fatal(err)
			}
			w := base()
			if tc.w != nil {
				tc.w(w)
			}
			res := alert.Check(r, w)
			if res.Counted != tc.counted || res.Holds != tc.holds {
				t.Fatalf("got counted %v holds %v (%s), want %v %v", res.Counted, res.Holds, res.Message, tc.counted, tc.holds)
			}
		})
	}
}

// TestWebhook delivers to a real HTTP server and checks the signature and
// the body, on firing and on resolve.
func TestWebhook(t *testing.T) {
	type got struct {
		sig  string
		body []byte
	}
	calls := make(chan got, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		calls <- got{r.Header.Get(alert.SignatureHeader), b}
	}))
	defer srv.Close()
	ctx := context.Background()
	s := mustStore(t)
	e := mustEngine(t, s, nil)
	if _, err := e.CreateRule(ctx, errRule("hook", 1, 0, alert.Action{Webhook: &alert.Webhook{URL: srv.URL, Secret: "k3y", OnResolve: true}})); err != nil {
		t.Fatal(err)
	}
	mustEval(t, e, window(0, 100, 50))
	c := <-calls
	if want := alert.Sign("k3y", c.body); c.sig != want || len(want) != len("sha256=")+64 {
		t.Fatalf("signature: got %q, want %q", c.sig, want)
	}
	var p alert.Payload
	if err := json.Unmarshal(c.body, &p); err != nil {
		t.Fatalf("body: %v", err)
	}
	if p.Event != alert.StateFiring || p.Alert == nil || p.Alert.Rule != "hook" || p.Alert.Value != 0.5 || p.Window.ID != "mw-a" || p.Rule.Condition.Kind != alert.ErrorRateAbove {
		t.Fatalf("body: got %s", c.body)
	}
	mustEval(t, e, window(1, 100, 0))
	c = <-calls
	if err := json.Unmarshal(c.body, &p); err != nil || p.Event != alert.StateResolved || p.Alert.State != alert.StateResolved {
		t.Fatalf("resolve body: got %s (%v)", c.body, err)
	}
	ds := waitDeliveries(t, e, p.Alert.ID, 2)
	if ds[0].Outcome != alert.OutcomeOK || ds[0].StatusCode != 200 || ds[1].Event != alert.StateResolved {
		t.Fatalf("deliveries: got %+v", ds)
	}
}

// waitDeliveries polls until the alert has n final deliveries.
func waitDeliveries(t *testing.T, e *alert.Engine, id string, n int) []*alert.Delivery {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, ds, err := e.Alert(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		final := 0
		for _, d := range ds {
			if d.Outcome != alert.OutcomeRetry {
				final++
			}
		}
		if final >= n {
			return ds
		}
		if time.Now().After(deadline) {
			t.Fatalf("alert %s: %d final deliveries after 30s, want %d: %+v", id, final, n, ds)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestUnreachableWebhook retries a closed port, then records the failure;
// evaluation goes on meanwhile.
func TestUnreachableWebhook(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	ctx := context.Background()
	e := mustEngine(t, mustStore(t), nil)
	retries := 2
	wh := &alert.Webhook{URL: "http://" + addr + "/hook", Retries: &retries, Backoff: alert.Duration(time.Millisecond), Timeout: alert.Duration(5 * time.Second)}
	if _, err := e.CreateRule(ctx, errRule("dead", 1, 0, alert.Action{Webhook: wh})); err != nil {
		t.Fatal(err)
	}
	mustEval(t, e, window(0, 100, 50))
	mustEval(t, e, window(1, 100, 50)) // the loop continues
	as := alerts(t, e)
	if len(as) != 1 || len(as[0].Windows) != 2 {
		t.Fatalf("alerts: got %+v, want one alert over two windows", as)
	}
	ds := waitDeliveries(t, e, as[0].ID, 1)
	if len(ds) != 3 || ds[0].Outcome != alert.OutcomeRetry || ds[1].Outcome != alert.OutcomeRetry || ds[2].Outcome != alert.OutcomeFailed ||
		ds[2].Attempt != 3 || ds[2].Error == "" {
		t.Fatalf("deliveries: got %+v, want retry, retry, failed", ds)
	}
}

// fakePoster records PostEvent calls and, like pipeline.Service, keeps one
// event per dedup key.
type fakePoster struct {
	mu    sync.Mutex
	calls []string
	keys  map[string]bool
}

func (f *fakePoster) PostEvent(ctx context.Context, typ, subject string, payload json.RawMessage, dedupKey string) ([]*pipeline.TriggerEvent, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, typ+" "+subject+" "+dedupKey)
	if f.keys[dedupKey] {
		return []*pipeline.TriggerEvent{}, nil
	}
	f.keys[dedupKey] = true
	return []*pipeline.TriggerEvent{{Trigger: "retrain", Subject: subject, Payload: payload, DedupKey: dedupKey}}, nil
}

// TestTriggerAction posts one event per firing with the window's dedup
// key; evaluating the window again posts nothing.
func TestTriggerAction(t *testing.T) {
	ctx := context.Background()
	p := &fakePoster{keys: map[string]bool{}}
	e := mustEngine(t, mustStore(t), p)
	if _, err := e.CreateRule(ctx, errRule("retrain", 1, 0, alert.Action{Trigger: &alert.TriggerAction{}})); err != nil {
		t.Fatal(err)
	}
	w := window(0, 100, 50)
	mustEval(t, e, w)
	mustEval(t, e, w)
	as := alerts(t, e)
	if len(as) != 1 {
		t.Fatalf("alerts: %d, want 1", len(as))
	}
	ds := waitDeliveries(t, e, as[0].ID, 1)
	p.mu.Lock()
	defer p.mu.Unlock()
	want := "monitoring.alert alert/retrain/flights " + alert.DedupKey("retrain", "flights", "mw-a")
	if len(p.calls) != 1 || p.calls[0] != want || len(ds) != 1 || ds[0].Outcome != alert.OutcomeOK || ds[0].Kind != "trigger" {
		t.Fatalf("calls %q deliveries %+v; want one call %q", p.calls, ds, want)
	}
}

// TestMetrics checks the firing gauge through firing and resolve, and the
// firing gauge of a new engine set from the stored alerts.
func TestMetrics(t *testing.T) {
	ctx := context.Background()
	s := mustStore(t)
	reg := prometheus.NewRegistry()
	e := alert.NewEngine(s, nil, alert.Config{Registerer: reg})
	if err := e.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer e.Close(ctx)
	if _, err := e.CreateRule(ctx, errRule("m", 1, 0)); err != nil {
		t.Fatal(err)
	}
	gauge := func(reg *prometheus.Registry) float64 {
		mfs, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, mf := range mfs {
			if mf.GetName() == "mloop_alert_firing" {
				return mf.GetMetric()[0].GetGauge().GetValue()
			}
		}
		return -1
	}
	mustEval(t, e, window(0, 100, 50))
	if g := gauge(reg); g != 1 {
		t.Fatalf("firing gauge after firing: got %v, want 1", g)
	}
	reg2 := prometheus.NewRegistry()
	e2 := alert.NewEngine(s, nil, alert.Config{Registerer: reg2})
	if err := e2.Open(ctx); err != nil {
		t.Fatal(err)
	}
	defer e2.Close(ctx)
	if g := gauge(reg2); g != 1 {
		t.Fatalf("firing gauge of a new engine: got %v, want 1 (from the store)", g)
	}
	mustEval(t, e, window(1, 100, 0))
	if g := gauge(reg); g != 0 {
		t.Fatalf("firing gauge after resolve: got %v, want 0", g)
	}
}
