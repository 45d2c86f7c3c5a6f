package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

// MustOpenMain starts the real server on 127.0.0.1:0 with a temporary data
// folder and closes it when the test ends.
func MustOpenMain(tb testing.TB) *Main {
	tb.Helper()
	m := NewMain()
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DataDir = tb.TempDir()
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Open(context.Background()); err != nil {
		tb.Fatalf("open main: %v", err)
	}
	tb.Cleanup(func() { m.Close() })
	return m
}

// call sends a JSON request and decodes the JSON answer into a map.
func call(tb testing.TB, m *Main, method, path string, body any) (int, map[string]any) {
	tb.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, m.URL()+path, rd)
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		tb.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out := map[string]any{}
	raw, _ := io.ReadAll(resp.Body)
	if len(raw) > 0 && json.Unmarshal(raw, &out) != nil {
		tb.Fatalf("%s %s: answer is not JSON: %s", method, path, raw)
	}
	return resp.StatusCode, out
}

func mustCall(tb testing.TB, m *Main, method, path string, body any) map[string]any {
	tb.Helper()
	status, out := call(tb, m, method, path, body)
	if status != http.StatusOK {
		tb.Fatalf("%s %s: got status %d %v, want 200", method, path, status, out)
	}
	return out
}

// TestEndToEnd drives the real server through the MLflow REST API the way a
// training script does: experiment, run, params and metrics, an artifact, a
// registered model version pointing back at the run, and an alias.
func TestEndToEnd(t *testing.T) {
	exerciseMLflowAPI(t, MustOpenMain(t))
}

// TestEndToEndPostgres runs the same story on PostgreSQL, in a schema of its
// own on the server the test script provides.
func TestEndToEndPostgres(t *testing.T) {
	pg := os.Getenv("MLOOP_TEST_POSTGRES")
	if pg == "" {
		pg = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	admin, err := sql.Open("pgx", pg)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	schema := fmt.Sprintf("e2e_%d", time.Now().UnixNano())
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		t.Fatalf("PostgreSQL at %s is required (scripts/test.sh starts it): %v", pg, err)
	}
	t.Cleanup(func() { admin.Exec("DROP SCHEMA " + schema + " CASCADE") })
	sep := "?"
	if strings.Contains(pg, "?") {
		sep = "&"
	}
	m := NewMain()
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DataDir = t.TempDir()
	m.Config.DB = pg + sep + "search_path=" + schema
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("open main on postgres: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	exerciseMLflowAPI(t, m)
}

// exerciseMLflowAPI drives a running server through the story of TestEndToEnd.
func exerciseMLflowAPI(t *testing.T, m *Main) {
	t.Helper()

	for _, p := range []string{"/healthz", "/readyz"} {
		if status, _ := call(t, m, "GET", p, nil); status != http.StatusOK {
			t.Fatalf("GET %s: got %d, want 200", p, status)
		}
	}

	exp := mustCall(t, m, "POST", "/api/2.0/mlflow/experiments/create", map[string]any{"name": "e2e"})
	expID, _ := exp["experiment_id"].(string)
	if expID == "" {
		t.Fatalf("experiments/create: got %v, want an experiment_id", exp)
	}
	run := mustCall(t, m, "POST", "/api/2.0/mlflow/runs/create", map[string]any{
		"experiment_id": expID, "start_time": time.Now().UnixMilli(), "run_name": "train",
	})
	info := run["run"].(map[string]any)["info"].(map[string]any)
	runID := info["run_id"].(string)
	artifactURI := info["artifact_uri"].(string)
	if want := "mlflow-artifacts:/" + expID + "/" + runID + "/artifacts"; artifactURI != want {
		t.Fatalf("artifact_uri: got %q, want %q", artifactURI, want)
	}

	metrics := make([]map[string]any, 0, 998) // + 1 param + 1 tag = MLflow's 1000 per batch
	for i := range 998 {
		metrics = append(metrics, map[string]any{"key": "loss", "value": 1.0 / float64(i+1), "timestamp": 1700000000000 + i, "step": i})
	}
	mustCall(t, m, "POST", "/api/2.0/mlflow/runs/log-batch", map[string]any{
		"run_id": runID, "metrics": metrics,
		"params": []map[string]any{{"key": "lr", "value": "0.1"}},
		"tags":   []map[string]any{{"key": "team", "value": "loop"}},
	})
	hist := mustCall(t, m, "GET", "/api/2.0/mlflow/metrics/get-history?run_id="+runID+"&metric_key=loss", nil)
	if n := len(hist["metrics"].([]any)); n != 998 {
		t.Fatalf("get-history: got %d points, want 998", n)
	}

	// An artifact through the proxy, then listed through the tracking API.
	req, _ := http.NewRequest("PUT", m.URL()+"/api/2.0/mlflow-artifacts/artifacts/"+expID+"/"+runID+"/artifacts/model/MLmodel", strings.NewReader("flavors: {}\n"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("artifact upload: %v %v", err, resp)
	}
	resp.Body.Close()
	list := mustCall(t, m, "GET", "/api/2.0/mlflow/artifacts/list?run_id="+runID, nil)
	if files, _ := list["files"].([]any); len(files) != 1 || files[0].(map[string]any)["path"] != "model" {
		t.Fatalf("artifacts/list: got %v, want the model folder", list)
	}

	mustCall(t, m, "POST", "/api/2.0/mlflow/registered-models/create", map[string]any{"name": "flights"})
	mv := mustCall(t, m, "POST", "/api/2.0/mlflow/model-versions/create", map[string]any{
		"name": "flights", "source": artifactURI + "/model", "run_id": runID,
	})
	if v := mv["model_version"].(map[string]any); v["version"] != "1" || v["run_id"] != runID {
		t.Fatalf("model-versions/create: got %v, want version 1 of run %s", v, runID)
	}
	mustCall(t, m, "POST", "/api/2.0/mlflow/registered-models/alias", map[string]any{"name": "flights", "alias": "champion", "version": "1"})
	byAlias := mustCall(t, m, "GET", "/api/2.0/mlflow/registered-models/alias?name=flights&alias=champion", nil)
	if v := byAlias["model_version"].(map[string]any); v["run_id"] != runID {
		t.Fatalf("get by alias: got %v, want the version produced by run %s", v, runID)
	}

	// Errors answer as MLflow's do.
	status, out := call(t, m, "GET", "/api/2.0/mlflow/runs/get?run_id=00000000000000000000000000000000", nil)
	if status != http.StatusNotFound || out["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
		t.Fatalf("unknown run: got %d %v, want 404 RESOURCE_DOES_NOT_EXIST", status, out)
	}
	status, out = call(t, m, "GET", "/api/2.0/mlflow-artifacts/artifacts/..%2f..%2fetc/passwd", nil)
	if status != http.StatusBadRequest || out["error_code"] != "INVALID_PARAMETER_VALUE" {
		t.Fatalf("hostile artifact path: got %d %v, want 400 INVALID_PARAMETER_VALUE", status, out)
	}
}

// TestGracefulShutdown checks that Close lets an in-flight upload finish.
func TestGracefulShutdown(t *testing.T) {
	m := MustOpenMain(t)
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("PUT", m.URL()+"/api/2.0/mlflow-artifacts/artifacts/0/r/artifacts/big.bin", pr)
	type result struct {
		status int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		resp.Body.Close()
		done <- result{status: resp.StatusCode}
	}()
	// Send more than loopback's socket buffers can hold, so the server is
	// surely inside the handler, reading the body, when Close begins.
	chunk := bytes.Repeat([]byte("x"), 1<<20)
	for range 32 {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	// The server is shutting down but the upload is in flight: it must finish.
	for range 3 {
		if _, err := pw.Write(chunk); err != nil {
			t.Fatalf("write during shutdown: %v", err)
		}
	}
	pw.Close()
	if r := <-done; r.err != nil || r.status != http.StatusOK {
		t.Fatalf("in-flight upload: got %d %v, want 200", r.status, r.err)
	}
	if err := <-closed; err != nil {
		t.Fatalf("close: %v", err)
	}
	if _, err := http.Get(m.URL() + "/healthz"); err == nil {
		t.Fatalf("server still accepts connections after Close")
	}
}

func TestRunCommands(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"version", "--json"}, &out, &errb); code != exitOK {
		t.Fatalf("version --json: got exit %d (%s), want 0", code, errb.String())
	}
	var v map[string]string
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v["version"] == "" {
		t.Fatalf("version --json: got %q, want JSON with a version", out.String())
	}
	if code := run(context.Background(), []string{"nope"}, &out, &errb); code != exitUsage {
		t.Fatalf("unknown command: got exit %d, want %d", code, exitUsage)
	}
	if code := run(context.Background(), []string{"server", "--log-level", "loud"}, &out, &errb); code != exitUsage {
		t.Fatalf("bad flag value: got exit %d, want %d", code, exitUsage)
	}
}

// TestServerCommand runs `mloop server` as the README does and stops it
// through its context, as SIGINT would.
func TestServerCommand(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	code := make(chan int, 1)
	go func() {
		code <- run(ctx, []string{"server", "--addr", "127.0.0.1:0", "--data", t.TempDir()}, &out, &errb)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(out.String(), "listening on") {
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if c := <-code; c != exitOK {
		t.Fatalf("server exit: got %d (%s), want 0", c, errb.String())
	}
}

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
