package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/monitor"
)

// runCLI runs mloop with args and returns the exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// TestMonitorFeedbackEndToEnd deploys the weather model on the real
// server, sends OIP requests with ids, pushes their labels with `mloop
// feedback push`, closes the window and reads it back with `mloop
// monitor`: its rows and the quality metrics the labels give.
func TestMonitorFeedbackEndToEnd(t *testing.T) {
	m := NewMain()
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DataDir = t.TempDir()
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	if m.Monitor == nil {
		t.Fatal("the server runs without a monitor by default")
	}
	registerFixture(t, m, "weather", "binary_logistic.json")
	mustCreate(t, m, map[string]any{"name": "weather", "spec": map[string]any{"model": "weather@1"}})
	waitFor(t, "weather ready", 60*time.Second, func() bool {
		resp, err := http.Get(m.URL() + "/v2/models/weather/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})

	const n = 200
	var csv strings.Builder
	csv.WriteString("request_id,label\n")
	correct := 0
	for i := range n {
		label := predictedLabel(t, m.URL(), fmt.Sprintf("req-%d", i), i)
		if i%4 == 3 {
			label = 1 - label // every fourth prediction is wrong
		} else {
			correct++
		}
		fmt.Fprintf(&csv, "req-%d,%d\n", i, label)
	}
	csv.WriteString("nope-1,1\nnope-2,0\nnope-3,true\n")
	dir := t.TempDir()
	file := filepath.Join(dir, "labels.csv")
	if err := os.WriteFile(file, []byte(csv.String()), 0o644); err != nil {
		t.Fatal(err)
	}

	code, out, errs := runCLI(t, "feedback", "push", file, "--json", "--server", m.URL())
	if code != exitOK {
		t.Fatalf("feedback push: exit %d\n%s%s", code, out, errs)
	}
	var res monitor.FeedbackResult
	if err := json.Unmarshal([]byte(out), &res); err != nil || res != (monitor.FeedbackResult{Accepted: n, Unknown: 3}) {
		t.Fatalf("feedback push: %v %s, want %d accepted and 3 unknown", err, out, n)
	}
	// NDJSON: a duplicate is counted; a bad line stops the push, naming it.
	nd := filepath.Join(dir, "more.ndjson")
	os.WriteFile(nd, []byte(`{"request_id": "req-0", "label": 1}`+"\n"+`{"request_id": "req-1"}`+"\n"), 0o644)
	code, out, errs = runCLI(t, "feedback", "push", nd, "--server", m.URL())
	if code != exitFailure || !strings.Contains(errs, "line 2: missing label") {
		t.Errorf("bad NDJSON: exit %d\n%s%s", code, out, errs)
	}
	os.WriteFile(nd, []byte(`{"request_id": "req-0", "label": 1}`+"\n"), 0o644)
	code, out, errs = runCLI(t, "feedback", "push", nd, "--server", m.URL())
	if code != exitOK || !strings.Contains(out, "1 labels: 0 accepted, 0 unknown, 1 duplicate") {
		t.Errorf("duplicate: exit %d\n%s%s", code, out, errs)
	}

	code, out, errs = runCLI(t, "monitor", "weather", "--current", "--server", m.URL())
	if code != exitOK || !strings.Contains(out, "weather/1") {
		t.Errorf("monitor --current: exit %d\n%s%s", code, out, errs)
	}
	if err := m.Monitor.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, "monitor", "weather", "--json", "--server", m.URL())
	if code != exitOK {
		t.Fatalf("monitor: exit %d\n%s%s", code, out, errs)
	}
	var got struct {
		Windows []*monitor.WindowSummary `json:"windows"`
	}
	if err := json.Unmarshal([]byte(out), &got); err != nil || len(got.Windows) != 1 {
		t.Fatalf("monitor --json: %v\n%s", err, out)
	}
	w := got.Windows[0]
	if w.Rows != n || w.Requests != n || w.Errors != 0 || w.ModelVersion != "weather/1" || w.Quality == nil || w.Quality.Labels != n {
		t.Fatalf("window %+v", w)
	}
	metrics := w.Quality.Metrics()
	if acc := metrics[monitor.MetricAccuracy]; acc != float64(correct)/n {
		t.Errorf("accuracy %v, want %v", acc, float64(correct)/n)
	}
	for _, k := range []string{monitor.MetricROCAUC, monitor.MetricLogLoss, monitor.MetricF1, monitor.MetricPrecision, monitor.MetricRecall} {
		if _, ok := metrics[k]; !ok {
			t.Errorf("no %s in %v", k, metrics)
		}
	}
	code, out, errs = runCLI(t, "monitor", "weather", "--since", "1h", "--server", m.URL())
	if code != exitOK || !strings.Contains(out, "weather/1") || !strings.Contains(out, fmt.Sprintf("n=%d accuracy=%.3f", n, float64(correct)/n)) {
		t.Errorf("monitor table: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "monitor", "weather", "--current", "--server", m.URL())
	if code != exitOK || !strings.Contains(out, "no window is open") {
		t.Errorf("monitor --current after the window closed: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "monitor", "--server", m.URL()); code != exitUsage || !strings.Contains(errs, "missing arguments") {
		t.Errorf("monitor without a deployment: exit %d %s", code, errs)
	}
}

// predictedLabel sends row i of the weather fixture's test rows to the
// weather deployment at baseURL with X-Request-Id id (OIP, one 1×7 tensor)
// and returns the class it predicts (score ≥ 0.5).
func predictedLabel(t *testing.T, baseURL, id string, i int) int {
	t.Helper()
	body := fmt.Sprintf(`{"id": %q, "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 7], "data": [%d, %d.5, 3.1, 4.0, 0.5, %d, 2]}]}`,
		id, i%30, i%17, i%5)
	req, err := http.NewRequest("POST", baseURL+"/v2/models/weather/infer", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Request-Id", id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var ans struct {
		Outputs []struct {
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	err = json.NewDecoder(resp.Body).Decode(&ans)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || len(ans.Outputs) != 1 || len(ans.Outputs[0].Data) != 1 {
		t.Fatalf("infer %s at %s: %d %v", id, baseURL, resp.StatusCode, err)
	}
	if ans.Outputs[0].Data[0] >= 0.5 {
		return 1
	}
	return 0
}
