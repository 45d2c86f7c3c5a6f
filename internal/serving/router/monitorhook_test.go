package router

import (
	"bytes"
	"context"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/payloadlog"
)

// fakeMonitor records deep copies of the observations it is handed (the
// router reuses them).
type fakeMonitor struct {
	mu  sync.Mutex
	obs []monitor.Observation
}

func (f *fakeMonitor) Observe(o *monitor.Observation) {
	c := *o
	c.Features = slices.Clone(o.Features)
	c.Inputs.Values = slices.Clone(o.Inputs.Values)
	c.Outputs = slices.Clone(o.Outputs)
	f.mu.Lock()
	f.obs = append(f.obs, c)
	f.mu.Unlock()
}

// byID returns the observations of request id.
func (f *fakeMonitor) byID(id string) []monitor.Observation {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []monitor.Observation
	for _, o := range f.obs {
		if o.RequestID == id {
			out = append(out, o)
		}
	}
	return out
}

func (f *fakeMonitor) all() []monitor.Observation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.obs)
}

// TestMonitorHook checks that Config.Monitor sees every request a primary
// or a canary answered, native and process, with the fields the monitor
// needs, and never the shadow's runs or a request pinned to the shadow.
func TestMonitorHook(t *testing.T) {
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("weather", 2, xgbFiles("binary_logistic.json"))
	cp.model("weather", 3, xgbFiles("missing.json"))
	cp.model("adder", 1, procFiles("serve", nil))
	cp.put(newDep("weather",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 50),
		slot(deploy.RoleCanary, 2, "weather", 2, "xgboost", 50),
		slot(deploy.RoleShadow, 3, "weather", 3, "xgboost", 0)))
	cp.put(newDep("sum", slot(deploy.RolePrimary, 1, "adder", 1, "process", 100)))
	mon := &fakeMonitor{}
	r, srv := newRouter(t, cp, Config{Monitor: mon}, false)
	fx := loadFixture(t, "binary_logistic")

	const n = 40
	for i := range n {
		id := "w" + strconv.Itoa(i)
		resp := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody(id, i%5, i%5+1))
		if resp.status != 200 {
			t.Fatalf("got %d %s", resp.status, resp.body)
		}
		obs := mon.byID(id)
		if len(obs) != 1 {
			t.Fatalf("request %s observed %d times, want once", id, len(obs))
		}
		o := obs[0]
		rev := resp.header.Get(deploy.RevisionHeader)
		if strconv.FormatInt(o.Revision, 10) != rev || o.Deployment != "weather" || o.Model != "weather" ||
			o.ModelVersion != "weather/"+strconv.FormatInt(o.Version, 10) || o.Version != o.Revision {
			t.Errorf("request %s: observation %+v, answered by revision %s", id, o, rev)
		}
		if o.Status != 200 || o.Objective != fx.Objective || o.OutputsPerRow != 1 || o.Time.IsZero() || o.Latency <= 0 {
			t.Errorf("request %s: status %d, objective %q, outputs per row %d, time %v, latency %v",
				id, o.Status, o.Objective, o.OutputsPerRow, o.Time, o.Latency)
		}
		if len(o.Features) != len(fx.Features) || o.Features[0].Name != fx.Features[0] {
			t.Errorf("request %s: features %+v, want %v", id, o.Features, fx.Features)
		}
		if o.Inputs.Rows != 2 || o.Inputs.Cols != len(fx.Features) || len(o.Inputs.Values) != 2*len(fx.Features) {
			t.Fatalf("request %s: inputs %d×%d (%d values)", id, o.Inputs.Rows, o.Inputs.Cols, len(o.Inputs.Values))
		}
		for j, v := range fx.Rows[i%5] {
			got := float64(o.Inputs.Values[j])
			if (v == nil) != math.IsNaN(got) || (v != nil && math.Abs(got-*v) > 1e-4*math.Max(1, math.Abs(*v))) {
				t.Errorf("request %s: input %d is %v, want %v", id, j, got, v)
			}
		}
		want := fx.expected(i%5, i%5+1)
		got := []float64{float64(o.Outputs[0]), float64(o.Outputs[1])}
		if !near(got, want) && math.Abs(got[0]-want[0]) > 1e-5 {
			t.Errorf("request %s: outputs %v, want %v", id, got, want)
		}
	}
	// A refused request is observed, without rows.
	bad := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer",
		`{"inputs":[{"name":"x","shape":[1,2],"datatype":"FP32","data":[1,2]}]}`, "X-Request-Id", "bad")
	if bad.status != 400 {
		t.Fatalf("got %d", bad.status)
	}
	if obs := mon.byID("bad"); len(obs) != 1 || obs[0].Status != 400 || obs[0].Inputs.Rows != 0 || obs[0].Outputs != nil {
		t.Errorf("refused request: observations %+v", obs)
	}
	// A request pinned to the shadow is answered by it, not observed.
	if resp := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("pinned", 0), deploy.RevisionHeader, "shadow"); resp.status != 200 {
		t.Fatalf("pinned to the shadow: got %d %s", resp.status, resp.body)
	}
	waitFor(t, "the shadow done", func() bool { return shadowStatus(t, r, "weather").Compared >= 1 })
	byRev := map[int64]int{}
	for _, o := range mon.all() {
		if o.Deployment == "weather" {
			byRev[o.Revision]++
		}
	}
	if byRev[3] != 0 || byRev[1]+byRev[2] != n+1 || byRev[1] == 0 || byRev[2] == 0 {
		t.Errorf("observations by revision %v: want %d from the primary and the canary, none from the shadow", byRev, n+1)
	}
	if len(mon.byID("pinned")) != 0 {
		t.Errorf("the request pinned to the shadow was observed")
	}

	// Process revisions: OIP requests with their decoded rows and the
	// process's outputs; other protocols without rows.
	resp := do(t, nil, "POST", srv.URL+"/v2/models/sum/infer",
		`{"id":"p1","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]}`)
	if resp.status != 200 {
		t.Fatalf("process: got %d %s", resp.status, resp.body)
	}
	obs := mon.byID("p1")
	if len(obs) != 1 {
		t.Fatalf("process request observed %d times", len(obs))
	}
	o := obs[0]
	if o.Deployment != "sum" || o.ModelVersion != "adder/1" || o.Revision != 1 || o.Status != 200 ||
		o.Inputs.Rows != 2 || o.Inputs.Cols != 3 || !slices.Equal(o.Inputs.Values, []float32{1, 2, 3, 4, 5, 6}) ||
		!slices.Equal(o.Outputs, []float32{6, 15}) || o.OutputsPerRow != 1 ||
		len(o.Features) != 3 || o.Features[2].Name != "input_2" {
		t.Errorf("process observation %+v", o)
	}
	resp = do(t, nil, "POST", srv.URL+"/v1/models/sum:predict", `{"instances":[[1,2,3]]}`, "X-Request-Id", "p2")
	if resp.status != 200 {
		t.Fatalf("process V1: got %d %s", resp.status, resp.body)
	}
	if obs := mon.byID("p2"); len(obs) != 1 || obs[0].Status != 200 || obs[0].Inputs.Rows != 0 || len(obs[0].Features) != 3 {
		t.Errorf("process V1 observation %+v", obs)
	}
}

// TestMonitorHookReal serves through a real monitor and checks that its
// open window counts the requests and rows.
func TestMonitorHookReal(t *testing.T) {
	mon := monitor.New(nil, nil, monitor.Config{Logger: quiet()})
	ctx := context.Background()
	if err := mon.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { mon.Close(context.Background()) })
	_, srv := newRouter(t, weatherCP(t), Config{Monitor: mon}, false)
	fx := loadFixture(t, "binary_logistic")
	for i := range 10 {
		if resp := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("r"+strconv.Itoa(i), 0, 1, 2)); resp.status != 200 {
			t.Fatalf("got %d %s", resp.status, resp.body)
		}
	}
	waitFor(t, "the window to hold the requests", func() bool {
		ws, err := mon.CurrentWindow(ctx, "weather")
		return err == nil && len(ws) == 1 && ws[0].Requests == 10 && ws[0].Rows == 30
	})
	if st := mon.Stats(); st.Observed != 10 || st.ObservedRows != 30 || st.SkippedRows != 0 {
		t.Errorf("monitor stats %+v", st)
	}
}

// benchRouterMonitor is benchRouterWith with a real, open monitor (its
// windows keep to memory: an hour is longer than any benchmark).
func benchRouterMonitor(b *testing.B, payloads *payloadlog.Logger) (*Router, []byte) {
	mon := monitor.New(nil, nil, monitor.Config{Logger: quiet()})
	if err := mon.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.put(newDep("weather", slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100)))
	r := New(cp, Config{CacheDir: b.TempDir(), Logger: quiet(), Registerer: prometheus.NewRegistry(), Payloads: payloads, Monitor: mon})
	if err := r.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		r.Close(context.Background())
		mon.Close(context.Background())
	})
	fx := loadFixture(b, "binary_logistic")
	return r, []byte(fx.oipBody("req-42", 1))
}

// BenchmarkServeHTTPInferOIPMonitor is BenchmarkServeHTTPInferOIP with a
// real monitor observing every request.
func BenchmarkServeHTTPInferOIPMonitor(b *testing.B) {
	r, body := benchRouterMonitor(b, nil)
	h := r.Handler()
	req := httptest.NewRequest("POST", "/v2/models/weather/infer", nil)
	rd := bytes.NewReader(body)
	req.Body = io.NopCloser(rd)
	req.ContentLength = int64(len(body))
	w := &discardWriter{h: make(http.Header)}
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		clear(w.h)
		w.status = 0
		h.ServeHTTP(w, req)
		if w.status != 0 && w.status != 200 {
			b.Fatalf("status %d", w.status)
		}
	}
}
