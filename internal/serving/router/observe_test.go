package router

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/payloadlog"
)

// memSink keeps payload log segments in memory.
type memSink struct {
	mu   sync.Mutex
	segs map[string][]byte
}

func (s *memSink) Put(ctx context.Context, key string, r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.segs == nil {
		s.segs = make(map[string][]byte)
	}
	s.segs[key] = b
	return nil
}

// records reads back every record, by deployment.
func (s *memSink) records(t *testing.T) map[string][]payloadlog.Record {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string][]payloadlog.Record)
	for key, b := range s.segs {
		recs, err := payloadlog.ReadSegment(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("segment %s: %v", key, err)
		}
		dep := strings.Split(key, "/")[1]
		out[dep] = append(out[dep], recs...)
	}
	return out
}

// TestPayloadLog checks the records written for answered, refused and
// shadowed requests, and per-deployment sampling.
func TestPayloadLog(t *testing.T) {
	sink := &memSink{}
	logger := payloadlog.New(sink, payloadlog.Config{Logger: quiet()})
	logger.Start(context.Background())
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("weather", 2, xgbFiles("missing.json"))
	cp.put(newDep("weather",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100),
		slot(deploy.RoleShadow, 2, "weather", 2, "xgboost", 0)))
	half := 0.5
	sampled := newDep("sampled", slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100))
	sampled.Spec.PayloadSample = &half
	cp.put(sampled)
	r, srv := newRouter(t, cp, Config{Payloads: logger}, false)
	fx := loadFixture(t, "binary_logistic")

	for i := range 3 {
		if resp := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("w"+strconv.Itoa(i), i, i+1)); resp.status != 200 {
			t.Fatalf("got %d %s", resp.status, resp.body)
		}
	}
	bad := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", `{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`)
	if bad.status != 400 {
		t.Fatalf("got %d", bad.status)
	}
	want := 0
	for i := range 200 {
		id := "s" + strconv.Itoa(i)
		if payloadlog.Keep(id, half) {
			want++
		}
		if resp := do(t, nil, "POST", srv.URL+"/v2/models/sampled/infer", fx.oipBody(id, 0)); resp.status != 200 {
			t.Fatalf("got %d %s", resp.status, resp.body)
		}
	}
	waitFor(t, "the shadow done", func() bool { return shadowStatus(t, r, "weather").Compared == 6 })
	if err := logger.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	recs := sink.records(t)

	// weather: 3 primary answers, their 3 shadow copies, the 400.
	w := recs["weather"]
	slices.SortFunc(w, func(a, b payloadlog.Record) int {
		return strings.Compare(a.RequestID+a.Revision, b.RequestID+b.Revision)
	})
	if len(w) != 7 {
		t.Fatalf("got %d weather records, want 7: %+v", len(w), w)
	}
	for i := range 3 {
		p, s := w[2*i+1], w[2*i+2]
		id := "w" + strconv.Itoa(i)
		if p.RequestID != id || p.Revision != "1" || p.ModelVersion != "weather/1" || p.Status != 200 || p.Deployment != "weather" ||
			p.Inputs.Rows != 2 || p.Inputs.Cols != 7 || p.OutputsPerRow != 1 || !near(f64(p.Outputs), fx.expected(i, i+1)) || p.Error != "" {
			t.Errorf("primary record %d: %+v", i, p)
		}
		if !sameFloats(p.Inputs.Values, rowValues(fx, i, i+1)) {
			t.Errorf("primary record %d inputs: got %v", i, p.Inputs.Values)
		}
		if s.RequestID != id || s.Revision != "2" || s.ModelVersion != "weather/2" || s.Status != 200 || len(s.Outputs) != 2 ||
			!sameFloats(s.Inputs.Values, p.Inputs.Values) {
			t.Errorf("shadow record %d: %+v", i, s)
		}
	}
	if e := w[0]; e.Status != 400 || !strings.Contains(e.Error, "has shape [1,2]") || e.Outputs != nil || e.RequestID == "" || e.Revision != "1" {
		t.Errorf("refused record: %+v", e)
	}
	if got := len(recs["sampled"]); got != want || want == 0 || want == 200 {
		t.Errorf("sampled: got %d records, want %d of 200", got, want)
	}
	for _, rec := range recs["sampled"] {
		if !payloadlog.Keep(rec.RequestID, half) {
			t.Errorf("record %s should have been left out", rec.RequestID)
		}
	}
}

func f64(v []float32) []float64 {
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// rowValues returns rows of a fixture as float32, NaN for missing.
func rowValues(fx fixture, rows ...int) []float32 {
	var out []float32
	for _, i := range rows {
		for _, v := range fx.Rows[i] {
			if v == nil {
				out = append(out, float32(math.NaN()))
			} else {
				out = append(out, float32(*v))
			}
		}
	}
	return out
}

func sameFloats(a, b []float32) bool {
	return slices.EqualFunc(a, b, func(x, y float32) bool { return x == y || x != x && y != y })
}

// scrape returns the metrics exposition of reg.
func scrape(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	if rec.Code != 200 {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	return rec.Body.String()
}

// metricValue returns the value of the series line that starts with
// prefix, or -1.
func metricValue(text, series string) float64 {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`)
	m := re.FindStringSubmatch(text)
	if m == nil {
		return -1
	}
	v, _ := strconv.ParseFloat(m[1], 64)
	return v
}

// TestMetrics scrapes the labelled series after traffic, a shadow, a
// swap and a deletion.
func TestMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	logger := payloadlog.New(&memSink{}, payloadlog.Config{Logger: quiet()})
	logger.Start(context.Background())
	defer logger.Close(context.Background())
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("weather", 2, xgbFiles("missing.json"))
	cp.put(newDep("weather",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100),
		slot(deploy.RoleShadow, 2, "weather", 2, "xgboost", 0)))
	r, srv := newRouter(t, cp, Config{Registerer: reg, Payloads: logger, CheckInterval: time.Hour}, true)
	fx := loadFixture(t, "binary_logistic")
	for i := range 5 {
		do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("", i))
	}
	do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", `{}`)
	waitFor(t, "the shadow done", func() bool { return shadowStatus(t, r, "weather").Compared == 5 })
	text := scrape(t, reg)
	p := `{deployment="weather",model_version="weather/1",revision="1",role="primary"}`
	s := `{deployment="weather",model_version="weather/2",revision="2",role="shadow"}`
	for series, want := range map[string]float64{
		`mloop_serving_requests_total{code="200",deployment="weather",model_version="weather/1",revision="1",role="primary"}`: 5,
		`mloop_serving_requests_total{code="400",deployment="weather",model_version="weather/1",revision="1",role="primary"}`: 1,
		`mloop_serving_requests_total{code="200",deployment="weather",model_version="weather/2",revision="2",role="shadow"}`:  5,
		`mloop_serving_request_duration_seconds_count` + p:                                                                    6,
		`mloop_serving_in_flight` + p:      0,
		`mloop_serving_revision_ready` + p: 1,
		`mloop_serving_revision_ready` + s: 1,
		`mloop_serving_shadow_compared_rows_total{deployment="weather",model_version="weather/2",revision="2"}`: 5,
		`mloop_payload_log_queue_depth`:   0,
		`mloop_payload_log_dropped_total`: 0,
		`mloop_payload_log_written_total`: 0,
		`mloop_payload_log_lost_total`:    0,
	} {
		got := metricValue(text, series)
		if series == `mloop_payload_log_queue_depth` {
			if got < 0 {
				t.Errorf("no %s in\n%s", series, text)
			}
			continue
		}
		if got != want {
			t.Errorf("%s: got %v, want %v", series, got, want)
		}
	}
	if !strings.Contains(text, `mloop_serving_request_duration_seconds_bucket{deployment="weather",model_version="weather/1",revision="1",role="primary",le="0.0001"}`) {
		t.Errorf("no 100µs bucket in\n%s", text)
	}
	if metricValue(text, `mloop_serving_shadow_agreed_rows_total{deployment="weather",model_version="weather/2",revision="2"}`) < 0 {
		t.Errorf("no agreed rows series")
	}

	// A swap to a new primary deletes the old revision's series.
	cp.put(newDep("weather", slot(deploy.RolePrimary, 3, "weather", 2, "xgboost", 100)))
	mustSync(t, r)
	do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("", 0))
	text = scrape(t, reg)
	if strings.Contains(text, `revision="1"`) || strings.Contains(text, `revision="2"`) {
		t.Errorf("series of removed revisions remain:\n%s", text)
	}
	if got := metricValue(text, `mloop_serving_requests_total{code="200",deployment="weather",model_version="weather/2",revision="3",role="primary"}`); got != 1 {
		t.Errorf("new revision: got %v", got)
	}
	cp.del("weather")
	mustSync(t, r)
	if text = scrape(t, reg); strings.Contains(text, `deployment="weather"`) {
		t.Errorf("series of a deleted deployment remain:\n%s", text)
	}
	// A second router cannot register on the same registry.
	r2 := New(cp, Config{CacheDir: t.TempDir(), Registerer: reg, Logger: quiet()})
	if err := r2.Open(context.Background()); err == nil {
		r2.Close(context.Background())
		t.Error("a second router registered the same metrics")
	}
}

// TestMetricsNoLateSeries checks that a request finishing on a revision
// after its series were deleted (a status outside the common codes), and
// a rollback counted after its deployment was removed, bring no series
// back.
func TestMetricsNoLateSeries(t *testing.T) {
	reg := prometheus.NewRegistry()
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("weather", 2, xgbFiles("missing.json"))
	dep := newDep("weather",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 50),
		slot(deploy.RoleCanary, 2, "weather", 2, "xgboost", 50))
	cp.put(dep)
	// Not opened: no follow loop brings the deployment back after the
	// test removes it; the metrics are registered by hand.
	r, _ := newRouter(t, cp, Config{Registerer: reg}, false)
	if err := r.metrics.register(reg); err != nil {
		t.Fatal(err)
	}
	d := r.lookup("weather")
	canary := d.table.Load().canary.m

	// Codes outside the common ones are counted, once resolved.
	canary.observe(http.StatusTeapot, time.Millisecond)
	canary.observe(http.StatusTeapot, time.Millisecond)
	series := `mloop_serving_requests_total{code="418",deployment="weather",model_version="weather/2",revision="2",role="canary"}`
	if got := metricValue(scrape(t, reg), series); got != 2 {
		t.Errorf("%s: got %v, want 2", series, got)
	}

	// The canary leaves; a request still running on it ends with 418.
	cp.put(newDep("weather", slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100)))
	mustSync(t, r)
	canary.observe(http.StatusTeapot, time.Millisecond)
	canary.observe(http.StatusGatewayTimeout, time.Millisecond)
	if text := scrape(t, reg); strings.Contains(text, `revision="2"`) {
		t.Errorf("series of the released canary came back:\n%s", text)
	}

	// The deployment is removed while a rollback call is under way.
	cp.put(newDep("weather",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 50),
		slot(deploy.RoleCanary, 3, "weather", 2, "xgboost", 50)))
	mustSync(t, r)
	d = r.lookup("weather")
	r.mu.Lock()
	r.deps.Store(&map[string]*deployment{})
	r.removeLocked(d)
	r.mu.Unlock()
	if !r.rollback(context.Background(), d, 3, Verdict{Reason: "test"}) {
		t.Fatal("the rollback call failed")
	}
	if text := scrape(t, reg); strings.Contains(text, `deployment="weather"`) {
		t.Errorf("series of the removed deployment came back:\n%s", text)
	}
}
