package client

import (
	"context"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/httpapi"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/pipeline/pipelinetest"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/router"
	"github.com/mloop/mloop/internal/sqlstore"
)

// TestMonitorCalls serves requests through the real data plane with a
// real monitor on SQLite, and reads them back through the client's
// monitoring calls, with feedback pushed through it.
func TestMonitorCalls(t *testing.T) {
	st := pipelinetest.NewStack(t)
	svc := deploy.NewService(sqlstore.NewDeploymentStore(st.DB), st.Registry, st.Artifacts)
	svc.Logger = st.Logger
	if err := svc.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	mon := monitor.New(sqlstore.NewMonitorStore(st.DB), nil, monitor.Config{Logger: st.Logger})
	if err := mon.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	rt := router.New(svc, router.Config{CacheDir: t.TempDir(), Logger: st.Logger, Wait: time.Second, Monitor: mon})
	api := &httpapi.Server{Tracking: st.Tracking, LoggedModels: st.LoggedModels, Registry: st.Registry,
		Artifacts: st.Artifacts, Deployments: svc, Logger: st.Logger, Version: "test", Monitor: mon,
		Serving: rt.Handler(), ServingStatus: rt.Status}
	srv := httptest.NewServer(api.Handler())
	if err := rt.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Close()
		rt.Close(context.Background())
		mon.Close(context.Background())
	})
	c := New(srv.URL, nil)
	ctx := context.Background()
	registerFixture(t, c, "weather", "binary_logistic.json", nil)
	if _, err := c.CreateDeployment(ctx, "weather", deploy.Spec{Model: deploy.Ref{Model: "weather", Version: 1}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(srv.URL + "/v2/models/weather/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("the deployment is not ready after 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	const n = 10
	for i := range n {
		req, _ := http.NewRequest("POST", srv.URL+"/v1/models/weather:predict", strings.NewReader(`{"instances": [[1.5, 12.5, 3.1, 4.0, 5, 120, 1]]}`))
		req.Header.Set("X-Request-Id", "c"+strconv.Itoa(i))
		resp, err := http.DefaultClient.Do(req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("predict: %v %v", resp, err)
		}
		resp.Body.Close()
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		ws, err := c.CurrentWindow(ctx, "weather")
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) == 1 && ws[0].Requests == n {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the open window: %+v", ws)
		}
		time.Sleep(20 * time.Millisecond)
	}
	labels := []monitor.Label{{RequestID: "nope", Value: 1}}
	for i := range n {
		labels = append(labels, monitor.Label{RequestID: "c" + strconv.Itoa(i), Value: float64(i % 2), Time: time.Now()})
	}
	res, err := c.PushFeedback(ctx, labels)
	if err != nil || res != (monitor.FeedbackResult{Accepted: n, Unknown: 1}) {
		t.Fatalf("push: %+v %v", res, err)
	}
	if _, err := c.PushFeedback(ctx, []monitor.Label{{RequestID: "x", Value: math.NaN()}}); mloop.ErrorCode(err) != mloop.EINVALID {
		t.Errorf("NaN label: got %v, want EINVALID", err)
	}
	if _, err := c.PushFeedback(ctx, []monitor.Label{{Value: 1}}); mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), "labels[0]") {
		t.Errorf("label without id: got %v, want EINVALID naming labels[0]", err)
	}
	qs, err := c.ModelQuality(ctx, "weather")
	if err != nil || len(qs) != 1 || qs[0].ModelVersion != "weather/1" || qs[0].Quality == nil || qs[0].Quality.Labels != n {
		t.Fatalf("quality: %+v %v", qs, err)
	}
	if err := mon.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ws, err := c.MonitoringWindows(ctx, "weather", monitor.WindowFilter{Since: time.Now().Add(-time.Hour), ModelVersion: "weather/1", Limit: 5, WithProfiles: true})
	if err != nil || len(ws) != 1 || ws[0].Rows != n || ws[0].Quality == nil || ws[0].Quality.Labels != n || ws[0].Profiles == nil {
		t.Fatalf("windows: %+v %v", ws, err)
	}
	if ws, err := c.MonitoringWindows(ctx, "weather", monitor.WindowFilter{Until: ws[0].Start.Add(-time.Minute)}); err != nil || len(ws) != 0 {
		t.Errorf("windows until before the first: %+v %v", ws, err)
	}
	if _, err := c.MonitoringWindows(ctx, "other", monitor.WindowFilter{}); err != nil {
		t.Errorf("an unknown deployment has no windows, got %v", err)
	}

	// A replica's forwarded batch: observed as the server's own requests.
	batch := monitor.EncodeObservations([]*monitor.Observation{{Deployment: "fwd", ModelVersion: "weather/1", Model: "weather",
		Version: 1, RequestID: "f1", Status: 200, Latency: time.Millisecond}}, time.Now())
	if err := c.PostObservations(ctx, batch); err != nil {
		t.Fatalf("post observations: %v", err)
	}
	for deadline := time.Now().Add(60 * time.Second); ; {
		ws, err := c.CurrentWindow(ctx, "fwd")
		if err != nil {
			t.Fatal(err)
		}
		if len(ws) == 1 && ws[0].Requests == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the forwarded request is not in the open window: %+v", ws)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := c.PostObservations(ctx, []byte("not a batch")); mloop.ErrorCode(err) != mloop.EINVALID {
		t.Errorf("a bad batch: got %v, want EINVALID", err)
	}

	plain := newDeployServer(t, false)
	if _, err := plain.c.CurrentWindow(ctx, "weather"); mloop.ErrorCode(err) != mloop.ENOTIMPLEMENTED {
		t.Errorf("a server without a monitor: got %v, want ENOTIMPLEMENTED", err)
	}
	if err := plain.c.PostObservations(ctx, batch); mloop.ErrorCode(err) != mloop.ENOTIMPLEMENTED {
		t.Errorf("observations to a server without a monitor: got %v, want ENOTIMPLEMENTED", err)
	}
}
