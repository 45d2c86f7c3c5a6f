package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/pipeline/pipelinetest"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/router"
	"github.com/mloop/mloop/internal/sqlstore"
)

// newMonitorServer is the real API with deployments, the data plane and a
// monitor saving its windows to SQLite, all wired as the server wires them.
func newMonitorServer(t *testing.T) (*deployEnv, *monitor.Monitor) {
	t.Helper()
	st := pipelinetest.NewStack(t)
	svc := deploy.NewService(sqlstore.NewDeploymentStore(st.DB), st.Registry, st.Artifacts)
	svc.Logger = st.Logger
	if err := svc.Open(context.Background()); err != nil {
		t.Fatalf("open deployments: %v", err)
	}
	t.Cleanup(func() { svc.Close() })
	mon := monitor.New(sqlstore.NewMonitorStore(st.DB), nil, monitor.Config{Logger: st.Logger})
	if err := mon.Open(context.Background()); err != nil {
		t.Fatalf("open monitor: %v", err)
	}
	e := &deployEnv{deploys: svc, done: make(chan struct{})}
	e.router = router.New(svc, router.Config{CacheDir: t.TempDir(), Logger: st.Logger, Wait: time.Second, Monitor: mon})
	e.api = &Server{Tracking: st.Tracking, LoggedModels: st.LoggedModels, Registry: st.Registry, Artifacts: st.Artifacts,
		Deployments: svc, Logger: st.Logger, Version: "test", Done: e.done, Monitor: mon,
		Serving: e.router.Handler(), ServingStatus: e.router.Status}
	e.srv = httptest.NewServer(e.api.Handler())
	if err := e.router.Open(context.Background()); err != nil {
		t.Fatalf("open router: %v", err)
	}
	t.Cleanup(func() {
		e.srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		e.router.Close(ctx)
		if err := mon.Close(ctx); err != nil {
			t.Errorf("close monitor: %v", err)
		}
	})
	return e, mon
}

// TestMonitoringAPI serves requests through the real data plane, posts
// their labels, and reads the open window, the model version's quality
// and, once the window closed, its saved history.
func TestMonitoringAPI(t *testing.T) {
	e, mon := newMonitorServer(t)
	e.register(t, "weather", "binary_logistic.json")
	e.must(t, http.StatusCreated, "POST", "/api/v1/deployments", map[string]any{"name": "weather", "spec": map[string]any{"model": "weather@1"}})
	waitUntil(t, "the deployment is ready", func() bool {
		resp, err := http.Get(e.srv.URL + "/v2/models/weather/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	const n = 20
	preds := make([]float64, n)
	for i := range n {
		body := `{"instances": [[` + strconv.Itoa(i%7) + `.5, 12.5, 3.1, 4.0, 5, 120, 1]]}`
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/models/weather:predict", strings.NewReader(body))
		req.Header.Set("X-Request-Id", "r"+strconv.Itoa(i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var out struct {
			Predictions []float64 `json:"predictions"`
		}
		err = json.NewDecoder(resp.Body).Decode(&out)
		resp.Body.Close()
		if resp.StatusCode != 200 || err != nil || len(out.Predictions) != 1 {
			t.Fatalf("predict: %d %v", resp.StatusCode, err)
		}
		preds[i] = out.Predictions[0]
	}
	waitUntil(t, "the open window holds the requests", func() bool {
		out := e.must(t, http.StatusOK, "GET", "/api/v1/monitoring/weather/current", nil)
		ws := decodeAs[[]*monitor.WindowSummary](t, out["windows"])
		return len(ws) == 1 && ws[0].Requests == n && ws[0].Rows == n
	})

	// Labels: the class the model would predict for half, the other class
	// for the rest, so that accuracy is 0.5 exactly.
	label := func(i int) int {
		c := 0
		if preds[i] >= 0.5 {
			c = 1
		}
		if i%2 == 1 {
			c = 1 - c
		}
		return c
	}
	res := decodeAs[monitor.FeedbackResult](t, e.must(t, http.StatusOK, "POST", "/api/v1/feedback",
		map[string]any{"request_id": "r0", "label": label(0)}))
	if res != (monitor.FeedbackResult{Accepted: 1}) {
		t.Errorf("one label: %+v", res)
	}
	var batch []map[string]any
	for i := 1; i < n; i++ {
		batch = append(batch, map[string]any{"request_id": "r" + strconv.Itoa(i), "label": label(i) == 1})
	}
	batch = append(batch, map[string]any{"request_id": "nope", "label": 1}, map[string]any{"request_id": "r0", "label": 1},
		map[string]any{"request_id": "r3", "label": 7, "time": time.Now().UTC().Format(time.RFC3339)})
	res = decodeAs[monitor.FeedbackResult](t, e.must(t, http.StatusOK, "POST", "/api/v1/feedback", map[string]any{"labels": batch}))
	if res.Accepted != n-1 || res.Unknown != 1 || res.Duplicate != 2 {
		t.Errorf("batch: %+v, want %d accepted, 1 unknown, 2 duplicates", res, n-1)
	}
	for _, c := range []struct{ body, want string }{
		{`{"labels":[{"request_id":"a","label":1},{"label":1}]}`, "labels[1]: missing request_id"},
		{`{"labels":[{"request_id":"a","label":"yes"}]}`, "labels[0]: label \"yes\" is not a number"},
		{`{"labels":[{"request_id":"a","label":1,"time":"yesterday"}]}`, "labels[0]: time \"yesterday\""},
		{`{"request_id":"a"}`, "missing label"},
		{`[1]`, "JSON object"},
	} {
		status, out := e.call(t, "POST", "/api/v1/feedback", c.body)
		if status != http.StatusBadRequest || !strings.Contains(out["message"].(string), c.want) {
			t.Errorf("%s: got %d %v, want 400 saying %q", c.body, status, out, c.want)
		}
	}

	out := e.must(t, http.StatusOK, "GET", "/api/v1/monitoring/weather/quality", nil)
	qs := decodeAs[[]ModelVersionQuality](t, out["model_versions"])
	if len(qs) != 1 || qs[0].ModelVersion != "weather/1" || qs[0].Quality == nil || qs[0].Quality.Labels != n {
		t.Fatalf("quality: %v", out)
	}
	if acc := qs[0].Quality.Metrics()[monitor.MetricAccuracy]; acc != 0.5 {
		t.Errorf("accuracy %v, want 0.5", acc)
	}

	if err := mon.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	out = e.must(t, http.StatusOK, "GET", "/api/v1/monitoring/weather/windows?since=1h", nil)
	ws := decodeAs[[]*monitor.WindowSummary](t, out["windows"])
	if len(ws) != 1 || ws[0].Rows != n || ws[0].Requests != n || ws[0].ModelVersion != "weather/1" ||
		ws[0].Quality == nil || ws[0].Quality.Labels != n || ws[0].Profiles != nil {
		t.Fatalf("windows: %v", out)
	}
	if m := ws[0].Quality.Metrics(); m[monitor.MetricAccuracy] != 0.5 || math.IsNaN(m[monitor.MetricLogLoss]) {
		t.Errorf("window metrics %v", m)
	}
	out = e.must(t, http.StatusOK, "GET", "/api/v1/monitoring/weather/windows?profiles=true&limit=1&model_version=weather/1", nil)
	if ws := decodeAs[[]*monitor.WindowSummary](t, out["windows"]); len(ws) != 1 || ws[0].Profiles == nil || ws[0].Profiles.Features == nil {
		t.Errorf("windows with profiles: %v", out)
	}
	for _, q := range []string{"model_version=weather/2", "until=" + ws[0].Start.Add(-time.Second).UTC().Format(time.RFC3339Nano)} {
		out = e.must(t, http.StatusOK, "GET", "/api/v1/monitoring/weather/windows?"+q, nil)
		if ws := decodeAs[[]*monitor.WindowSummary](t, out["windows"]); len(ws) != 0 {
			t.Errorf("%s: got %d windows, want none", q, len(ws))
		}
	}
	out = e.must(t, http.StatusOK, "GET", "/api/v1/monitoring/weather/current", nil)
	if ws := decodeAs[[]*monitor.WindowSummary](t, out["windows"]); len(ws) != 0 {
		t.Errorf("current after the flush: %v", out)
	}
	for _, q := range []string{"since=yesterday", "limit=0", "profiles=maybe"} {
		if status, out := e.call(t, "GET", "/api/v1/monitoring/weather/windows?"+q, nil); status != http.StatusBadRequest {
			t.Errorf("%s: got %d %v, want 400", q, status, out)
		}
	}
}

// TestPostObservations posts a batch as a replica's forwarder encodes it:
// the monitor observes its requests and rows, and a label posted for one
// of them joins it.
func TestPostObservations(t *testing.T) {
	e, _ := newMonitorServer(t)
	features := []serving.Feature{{Name: "temp", Type: serving.Numeric}, {Name: "wind", Type: serving.Numeric}}
	obs := func(id string, rows int) *monitor.Observation {
		vals := make([]float32, 2*rows)
		vals[0] = float32(math.NaN())
		return &monitor.Observation{Deployment: "remote", Revision: 1, ModelVersion: "weather/1", Model: "weather", Version: 1,
			RequestID: id, Features: features, Inputs: serving.Batch{Rows: rows, Cols: 2, Values: vals},
			Outputs: make([]float32, rows), OutputsPerRow: 1, Objective: "binary:logistic", Status: 200, Latency: time.Millisecond}
	}
	// The replica's clock is a day ahead: the times move onto the server's.
	sent := time.Now().Add(24 * time.Hour)
	body := monitor.EncodeObservations([]*monitor.Observation{obs("r-1", 1), obs("r-2", 2)}, sent)
	post := func(body []byte) (int, map[string]any) {
		t.Helper()
		resp, err := http.Post(e.srv.URL+"/api/v1/monitoring/observations", monitor.ObservationsContentType, bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out map[string]any
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, out
	}
	if status, out := post(body); status != http.StatusOK || out["accepted"] != float64(2) {
		t.Fatalf("post: got %d %v, want 200 {accepted: 2}", status, out)
	}
	waitUntil(t, "the open window holds the forwarded requests", func() bool {
		out := e.must(t, http.StatusOK, "GET", "/api/v1/monitoring/remote/current", nil)
		ws := decodeAs[[]*monitor.WindowSummary](t, out["windows"])
		return len(ws) == 1 && ws[0].Requests == 2 && ws[0].Rows == 3
	})
	res := decodeAs[monitor.FeedbackResult](t, e.must(t, http.StatusOK, "POST", "/api/v1/feedback",
		map[string]any{"labels": []map[string]any{{"request_id": "r-1", "label": 0}, {"request_id": "r-2#1", "label": 1}}}))
	if res != (monitor.FeedbackResult{Accepted: 2}) {
		t.Errorf("feedback: got %+v, want 2 accepted (not late: the replica's clock skew is undone)", res)
	}
	for _, c := range []struct {
		body []byte
		want string
	}{
		{[]byte(`{"observations": []}`), "invalid observations batch"},
		{body[:len(body)-2], "outputs"},
	} {
		if status, out := post(c.body); status != http.StatusBadRequest || !strings.Contains(out["message"].(string), c.want) {
			t.Errorf("%q: got %d %v, want 400 naming %q", c.body, status, out, c.want)
		}
	}
}

// TestMonitoringNotImplemented checks the answer of a server without a
// monitor.
func TestMonitoringNotImplemented(t *testing.T) {
	e := newDeployServer(t, false)
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/monitoring/weather/windows"},
		{"GET", "/api/v1/monitoring/weather/current"},
		{"GET", "/api/v1/monitoring/weather/quality"},
		{"POST", "/api/v1/feedback"},
		{"POST", "/api/v1/monitoring/observations"},
	} {
		status, out := e.call(t, c.method, c.path, `{"request_id":"a","label":1}`)
		if status != http.StatusNotImplemented || !strings.Contains(out["message"].(string), "--monitor") {
			t.Errorf("%s %s: got %d %v, want 501", c.method, c.path, status, out)
		}
	}
}

// waitUntil polls cond until it holds, failing after a generous deadline.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// FuzzFeedbackBody checks that any body of POST /api/v1/feedback either
// gives labels with a request id and a finite value, or an error.
func FuzzFeedbackBody(f *testing.F) {
	for _, s := range []string{
		`{"request_id":"a","label":1}`, `{"labels":[{"request_id":"a","label":true,"time":"2026-01-02T15:04:05Z"}]}`,
		`{"labels":[{"label":1e999}]}`, `{"request_id":"a","label":"1"}`, `{"labels":null}`, `{"request_id":"a","label":NaN}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var req feedbackRequest
		if json.Unmarshal(body, &req) != nil {
			return
		}
		items := []FeedbackLabel{req.FeedbackLabel}
		if req.Labels != nil {
			items = *req.Labels
		}
		for _, it := range items {
			l, err := ParseFeedbackLabel(it)
			if err != nil {
				continue
			}
			if l.RequestID == "" || math.IsNaN(l.Value) || math.IsInf(l.Value, 0) {
				t.Fatalf("accepted %+v from %q", l, body)
			}
		}
	})
}
