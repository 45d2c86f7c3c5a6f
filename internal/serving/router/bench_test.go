package router

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/payloadlog"
)

// discardSink accepts and discards payload log segments.
type discardSink struct{}

func (discardSink) Put(_ context.Context, _ string, r io.Reader) error {
	_, err := io.Copy(io.Discard, r)
	return err
}

// discardWriter is a reusable http.ResponseWriter that keeps nothing.
type discardWriter struct {
	h      http.Header
	status int
}

func (w *discardWriter) Header() http.Header         { return w.h }
func (w *discardWriter) WriteHeader(status int)      { w.status = status }
func (w *discardWriter) Write(b []byte) (int, error) { return len(b), nil }

// benchRouter returns a synced router serving the binary_logistic fixture
// as deployment weather, with metrics on, and a single-row OIP body.
func benchRouter(b *testing.B) (*Router, []byte) {
	return benchRouterWith(b, nil)
}

// benchRouterWith is benchRouter with a payload logger.
func benchRouterWith(b *testing.B, payloads *payloadlog.Logger) (*Router, []byte) {
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.put(newDep("weather", slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100)))
	r := New(cp, Config{CacheDir: b.TempDir(), Logger: quiet(), Registerer: prometheus.NewRegistry(), Payloads: payloads})
	if err := r.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	fx := loadFixture(b, "binary_logistic")
	return r, []byte(fx.oipBody("req-42", 1))
}

// BenchmarkServeHTTPInferOIP measures the handler alone on a single-row
// OIP request (decode, predict, encode, window, metrics), without the
// network.
func BenchmarkServeHTTPInferOIP(b *testing.B) {
	r, body := benchRouter(b)
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

// BenchmarkServeHTTPInferOIPParallel is the same on every core.
func BenchmarkServeHTTPInferOIPParallel(b *testing.B) {
	r, body := benchRouter(b)
	h := r.Handler()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("POST", "/v2/models/weather/infer", nil)
		rd := bytes.NewReader(body)
		req.Body = io.NopCloser(rd)
		req.ContentLength = int64(len(body))
		w := &discardWriter{h: make(http.Header)}
		for pb.Next() {
			rd.Reset(body)
			clear(w.h)
			w.status = 0
			h.ServeHTTP(w, req)
			if w.status != 0 && w.status != 200 {
				b.Errorf("status %d", w.status)
				return
			}
		}
	})
}

// BenchmarkHTTP compares, over real loopback HTTP with parallel
// keep-alive clients, single-row OIP infer requests against a minimal
// net/http handler returning a fixed JSON body (the practical ceiling).
// Compare their ns/op: the target is infer at least 60% of the
// fixed handler's throughput, and monitoring with payload logging costing
// at most 15% of infer's.
func BenchmarkHTTP(b *testing.B) {
	r, body := benchRouter(b)
	logger := payloadlog.New(discardSink{}, payloadlog.Config{Logger: quiet()})
	logger.Start(context.Background())
	defer logger.Close(context.Background())
	rp, _ := benchRouterWith(b, logger)
	rm, _ := benchRouterMonitor(b, nil)
	rmp, _ := benchRouterMonitor(b, logger)
	fixed := []byte(`{"model_name":"weather","model_version":"1","id":"req-42","outputs":[{"name":"predict","shape":[1],"datatype":"FP32","data":[0.0015721373]}]}`)
	for _, c := range []struct {
		name string
		h    http.Handler
		path string
	}{
		{"fixed-json", http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			io.Copy(io.Discard, req.Body)
			w.Header().Set("Content-Type", "application/json")
			w.Write(fixed)
		}), "/"},
		{"infer-oip", r.Handler(), "/v2/models/weather/infer"},
		{"infer-oip-payload-log", rp.Handler(), "/v2/models/weather/infer"},
		{"infer-oip-monitor", rm.Handler(), "/v2/models/weather/infer"},
		{"infer-oip-monitor-payload-log", rmp.Handler(), "/v2/models/weather/infer"},
	} {
		b.Run(c.name, func(b *testing.B) {
			srv := httptest.NewServer(c.h)
			defer srv.Close()
			tr := &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 1024, IdleConnTimeout: time.Minute}
			defer tr.CloseIdleConnections()
			client := &http.Client{Transport: tr}
			url := srv.URL + c.path
			b.SetParallelism(4)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					resp, err := client.Post(url, "application/json", bytes.NewReader(body))
					if err != nil {
						b.Error(err)
						return
					}
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 {
						b.Errorf("status %d", resp.StatusCode)
						return
					}
				}
			})
		})
	}
}

// BenchmarkServeHTTPInferOIPShadow is BenchmarkServeHTTPInferOIP with a
// native shadow mirroring every request (its workers run meanwhile, and
// their work counts too; copies beyond the queue are dropped).
func BenchmarkServeHTTPInferOIPShadow(b *testing.B) {
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("weather", 2, xgbFiles("missing.json"))
	cp.put(newDep("weather",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100),
		slot(deploy.RoleShadow, 2, "weather", 2, "xgboost", 0)))
	r := New(cp, Config{CacheDir: b.TempDir(), Logger: quiet(), Registerer: prometheus.NewRegistry()})
	if err := r.Open(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	body := []byte(loadFixture(b, "binary_logistic").oipBody("req-42", 1))
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
