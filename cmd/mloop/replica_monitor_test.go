package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/monitor"
)

// TestReplicaMonitoring serves an XGBoost deployment from an `mloop serve`
// replica of a real server: the requests sent to the replica, with their
// X-Request-Id, reach the server's monitor (open window, then saved
// window), and the labels posted to the server join them into live
// quality.
func TestReplicaMonitoring(t *testing.T) {
	m := NewMain()
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DataDir = t.TempDir()
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	registerFixture(t, m, "weather", "binary_logistic.json")
	mustCreate(t, m, map[string]any{"name": "weather", "spec": map[string]any{"model": "weather@1"}})

	rep := NewReplica()
	rep.Config.ControlPlane = m.URL()
	rep.Config.Addr = "127.0.0.1:0"
	rep.Logger = m.Logger
	if err := rep.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rep.Close() })
	if rep.Forwarder == nil {
		t.Fatal("a replica forwards no observations by default")
	}
	waitFor(t, "weather ready on the replica", 60*time.Second, func() bool {
		resp, err := http.Get(rep.URL() + "/v2/models/weather/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	const n = 120
	var labels []map[string]any
	correct := 0
	for i := range n {
		label := predictedLabel(t, rep.URL(), fmt.Sprintf("rep-%d", i), i)
		if i%3 == 2 {
			label = 1 - label // every third prediction is wrong
		} else {
			correct++
		}
		labels = append(labels, map[string]any{"request_id": fmt.Sprintf("rep-%d", i), "label": label})
	}

	// The replica forwards within a second or so; the server's monitor
	// holds the requests in its open window.
	var current []*monitor.WindowSummary
	waitFor(t, "the server's open window to hold the replica's requests", 60*time.Second, func() bool {
		out := mustCall(t, m, "GET", "/api/v1/monitoring/weather/current", nil)
		current = decodeValue[[]*monitor.WindowSummary](t, out["windows"])
		return len(current) == 1 && current[0].Requests == n
	})
	if w := current[0]; w.Rows != n || w.ModelVersion != "weather/1" || w.Errors != 0 {
		t.Errorf("open window: rows %d, model version %s, errors %d; want %d, weather/1, 0", w.Rows, w.ModelVersion, w.Errors, n)
	}

	// Labels posted to the server join the replica's predictions.
	res := decodeValue[monitor.FeedbackResult](t, mustCall(t, m, "POST", "/api/v1/feedback", map[string]any{"labels": labels}))
	if res != (monitor.FeedbackResult{Accepted: n}) {
		t.Fatalf("feedback: got %+v, want %d accepted", res, n)
	}
	out := mustCall(t, m, "GET", "/api/v1/monitoring/weather/quality", nil)
	qs := decodeValue[[]struct {
		ModelVersion string           `json:"model_version"`
		Quality      *monitor.Quality `json:"quality"`
	}](t, out["model_versions"])
	if len(qs) != 1 || qs[0].Quality == nil || qs[0].Quality.Labels != n {
		t.Fatalf("quality: %v", out)
	}
	if got, want := qs[0].Quality.Metrics()[monitor.MetricAccuracy], float64(correct)/n; got != want {
		t.Errorf("live accuracy got %v, want %v", got, want)
	}

	// The saved window keeps the rows and the quality.
	if err := m.Monitor.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	out = mustCall(t, m, "GET", "/api/v1/monitoring/weather/windows", nil)
	ws := decodeValue[[]*monitor.WindowSummary](t, out["windows"])
	if len(ws) != 1 || ws[0].Rows != n || ws[0].Requests != n || ws[0].Quality == nil || ws[0].Quality.Labels != n {
		t.Fatalf("saved windows: %v", out)
	}

	// The replica says what it forwarded.
	if got := rep.Forwarder.Stats(); got.Sent != n || got.Dropped != 0 {
		t.Errorf("forwarder stats: got %+v, want %d sent, none dropped", got, n)
	}
	text, status := httpGet(t, rep.URL()+"/metrics")
	for _, want := range []string{fmt.Sprintf("mloop_monitor_forward_sent_total %d", n), "mloop_monitor_forward_dropped_total 0"} {
		if status != 200 || !strings.Contains(text, want) {
			t.Errorf("replica /metrics: missing %q (status %d)", want, status)
		}
	}
}

// TestReplicaMonitorFlag checks that --monitor=false and MLOOP_MONITOR
// turn forwarding off.
func TestReplicaMonitorFlag(t *testing.T) {
	m := MustOpenMain(t)
	for _, tt := range []struct {
		name string
		args []string
		env  string
	}{
		{"flag", []string{"--monitor=false"}, ""},
		{"env", nil, "false"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("MLOOP_MONITOR", tt.env)
			ctx, cancel := context.WithCancel(context.Background())
			var out, errb syncBuffer
			code := make(chan int, 1)
			args := append([]string{"serve", "--control-plane", m.URL(), "--addr", "127.0.0.1:0", "--log-level", "info", "--log-format", "json"}, tt.args...)
			go func() { code <- run(ctx, args, &out, &errb) }()
			waitFor(t, "mloop serve to listen", time.Minute, func() bool {
				return strings.Contains(out.String(), "mloop serve listening")
			})
			cancel()
			if c := <-code; c != exitOK {
				t.Fatalf("mloop serve exit %d: %s", c, errb.String())
			}
			if !strings.Contains(errb.String(), `"monitor":false`) {
				t.Errorf("the replica's log does not say monitor false:\n%s", errb.String())
			}
		})
	}
}

// decodeValue re-decodes a JSON value into T.
func decodeValue[T any](t *testing.T, v any) T {
	t.Helper()
	var out T
	b, _ := json.Marshal(v)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return out
}
