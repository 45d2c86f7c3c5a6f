package httpapi

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// The web UI's endpoints whose answers are JSON are covered by
// testdata/tracking/ajax.json; the tests below cover what a fixture cannot
// express: several runs whose order depends on their random ids, artifact
// bytes and headers, and a gateway to forward to.

const ajaxAPI = "/ajax-api/2.0/mlflow/"

// TestMetricHistoryBulkSeveralRuns replays MLflow's
// test_get_metric_history_bulk_returns_expected_metrics_in_expected_order:
// runs come in ascending order of run id, whatever order they are asked in.
func TestMetricHistoryBulkSeveralRuns(t *testing.T) {
	srv, _ := newTestServer(t)
	c := apiClient{t, srv.URL}
	expID, run1 := c.newRun("bulk")
	var run2 string
	{
		out := c.mustCall(http.MethodPost, "runs/create", map[string]any{"experiment_id": expID})
		run2 = out["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
	}
	out := c.mustCall(http.MethodPost, "runs/create", map[string]any{"experiment_id": expID})
	run3 := out["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)

	type point struct {
		Key       string  `json:"key"`
		Timestamp int64   `json:"timestamp"`
		Step      int64   `json:"step"`
		Value     float64 `json:"value"`
		RunID     string  `json:"run_id"`
	}
	history := []point{
		{Key: "metricA", Timestamp: 1, Step: 2, Value: 10},
		{Key: "metricA", Timestamp: 1, Step: 3, Value: 11},
		{Key: "metricA", Timestamp: 1, Step: 3, Value: 12},
		{Key: "metricA", Timestamp: 2, Step: 3, Value: 12},
	}
	var want []point
	for _, p := range history {
		for i, run := range []string{run1, run2} {
			q := p
			q.Value += float64(i)
			q.RunID = run
			c.mustCall(http.MethodPost, "runs/log-metric", map[string]any{
				"run_id": run, "key": q.Key, "value": q.Value, "timestamp": q.Timestamp, "step": q.Step})
			want = append(want, q)
		}
	}
	slices.SortStableFunc(want, func(a, b point) int { return strings.Compare(a.RunID, b.RunID) })

	q := url.Values{"run_id": {run3, run2, run1}, "metric_key": {"metricA"}}
	resp, body := sendArtifactRequest(t, srv, http.MethodGet, ajaxAPI+"metrics/get-history-bulk?"+q.Encode(), nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("get-history-bulk: got status %d (%s), want 200", resp.StatusCode, body)
	}
	var got struct{ Metrics []point }
	if err := json.Unmarshal([]byte(body), &got); err != nil {
		t.Fatalf("get-history-bulk: %v; body %s", err, body)
	}
	if !slices.Equal(got.Metrics, want) {
		t.Errorf("get-history-bulk:\ngot  %+v\nwant %+v", got.Metrics, want)
	}
	// Each point carries exactly MLflow's five fields.
	var raw struct{ Metrics []map[string]any }
	if err := json.Unmarshal([]byte(body), &raw); err != nil || len(raw.Metrics) == 0 {
		t.Fatalf("get-history-bulk: %v; body %s", err, body)
	}
	var keys []string
	for k := range raw.Metrics[0] {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	if want := []string{"key", "run_id", "step", "timestamp", "value"}; !slices.Equal(keys, want) {
		t.Errorf("fields of a point: got %v, want %v", keys, want)
	}
}

// TestUploadAndGetRunArtifact replays MLflow's test_upload_artifact_handler
// and checks where the file lands and how get-artifact sends it.
func TestUploadAndGetRunArtifact(t *testing.T) {
	srv, s := newTestServer(t)
	run := mustCreateArtifactRun(t, s)
	id := run.Info.RunID
	upload := func(p, data string) (*http.Response, string) {
		t.Helper()
		q := url.Values{"run_uuid": {id}, "path": {p}}
		return sendArtifactRequest(t, srv, http.MethodPost, ajaxAPI+"upload-artifact?"+q.Encode(), strings.NewReader(data))
	}
	for _, f := range []struct{ path, data string }{{"test.txt", "hello world"}, {"dir/b.json", `{"a": 1}`}} {
		if resp, body := upload(f.path, f.data); resp.StatusCode != http.StatusOK || body != "{}" {
			t.Fatalf("upload %s: got %d %s, want 200 {}", f.path, resp.StatusCode, body)
		}
	}
	// The file is one of the run's artifacts: the proxied API sees it too.
	key := strings.TrimPrefix(run.Info.ArtifactURI, "mlflow-artifacts:/")
	wantArtifactResponse(t, srv, http.MethodGet, artifactsAPI+"/"+key+"/dir/b.json", nil, http.StatusOK, `{"a": 1}`)

	for _, q := range []string{"run_uuid=" + id + "&path=test.txt", "run_id=" + id + "&path=test.txt"} {
		resp := wantArtifactResponse(t, srv, http.MethodGet, "/get-artifact?"+q, nil, http.StatusOK, "hello world")
		for h, want := range map[string]string{
			"Content-Type":           "text/plain",
			"Content-Disposition":    "attachment; filename=test.txt",
			"X-Content-Type-Options": "nosniff",
		} {
			if got := resp.Header.Get(h); !strings.HasPrefix(got, want) {
				t.Errorf("get-artifact?%s: header %s: got %q, want %q", q, h, got, want)
			}
		}
	}
	wantArtifactResponse(t, srv, http.MethodGet, "/get-artifact?run_id="+id+"&path=dir/b.json", nil, http.StatusOK, `{"a": 1}`)
	wantArtifactError(t, srv, http.MethodGet, "/get-artifact?run_id="+id+"&path=missing.txt", http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	wantArtifactError(t, srv, http.MethodGet, "/get-artifact?run_id=nosuchrun&path=test.txt", http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	wantArtifactError(t, srv, http.MethodGet, "/get-artifact?path=test.txt", http.StatusBadRequest, "INVALID_PARAMETER_VALUE")
	wantArtifactError(t, srv, http.MethodGet, "/get-artifact?run_id="+id, http.StatusBadRequest, "INVALID_PARAMETER_VALUE")

	// A file over 10 MB is refused, whether or not its length is announced.
	big := strings.Repeat("x", MaxUploadArtifactBytes+1)
	const tooLarge = `{"error_code":"INVALID_PARAMETER_VALUE","message":"Artifact size is too large. Max size is 10MB."}`
	if resp, body := upload("big.bin", big); resp.StatusCode != http.StatusBadRequest || body != tooLarge {
		t.Errorf("upload of 10 MB + 1 byte: got %d %s, want 400 %s", resp.StatusCode, body, tooLarge)
	}
	q := url.Values{"run_uuid": {id}, "path": {"big.bin"}}
	req, err := http.NewRequest(http.MethodPost, srv.URL+ajaxAPI+"upload-artifact?"+q.Encode(), io.MultiReader(strings.NewReader(big)))
	if err != nil {
		t.Fatal(err)
	}
	req.ContentLength = -1 // chunked: the length is not known in advance
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest || strings.TrimSpace(string(body)) != tooLarge {
		t.Errorf("chunked upload of 10 MB + 1 byte: got %d %s, want 400 %s", resp.StatusCode, body, tooLarge)
	}
	wantArtifactError(t, srv, http.MethodGet, "/get-artifact?run_id="+id+"&path=big.bin", http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
}

// TestGetArtifactInvalidPath replays MLflow's test_path_validation for the
// two artifact endpoints of the web UI: the exact body, and the path is
// judged before the run or the model version is looked up (neither exists
// here). The model version URL starts with "//", as in MLflow's test.
func TestGetArtifactInvalidPath(t *testing.T) {
	srv, _ := newTestServer(t)
	const want = `{"error_code":"INVALID_PARAMETER_VALUE","message":"Invalid path"}`
	for _, target := range []string{
		"/get-artifact?run_id=nosuchrun&path=../path",
		"/get-artifact?run_uuid=nosuchrun&path=%2e%2e/path",
		"/get-artifact?run_id=nosuchrun&path=/etc/passwd",
		"//model-versions/get-artifact?name=model&version=1&path=../path",
		"/model-versions/get-artifact?name=model&version=1&path=a%23b",
	} {
		wantArtifactResponse(t, srv, http.MethodGet, target, nil, http.StatusBadRequest, want)
	}
}

// TestGetModelVersionArtifact serves a file of a model version through the
// version's download URI: the artifacts of the run it came from.
func TestGetModelVersionArtifact(t *testing.T) {
	srv, s := newTestServer(t)
	c := apiClient{t, srv.URL}
	run := mustCreateArtifactRun(t, s)
	q := url.Values{"run_uuid": {run.Info.RunID}, "path": {"model/MLmodel"}}
	wantArtifactResponse(t, srv, http.MethodPost, ajaxAPI+"upload-artifact?"+q.Encode(), strings.NewReader("flavors: {}\n"), http.StatusOK, "{}")
	c.mustCall(http.MethodPost, "registered-models/create", map[string]any{"name": "clf"})
	c.mustCall(http.MethodPost, "model-versions/create", map[string]any{
		"name": "clf", "source": "runs:/" + run.Info.RunID + "/model", "run_id": run.Info.RunID})

	resp := wantArtifactResponse(t, srv, http.MethodGet, "/model-versions/get-artifact?name=clf&version=1&path=MLmodel", nil, http.StatusOK, "flavors: {}\n")
	if got := resp.Header.Get("Content-Disposition"); got != "attachment; filename=MLmodel" {
		t.Errorf("Content-Disposition: got %q, want attachment; filename=MLmodel", got)
	}
	wantArtifactError(t, srv, http.MethodGet, "/model-versions/get-artifact?name=clf&version=2&path=MLmodel", http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
	wantArtifactError(t, srv, http.MethodGet, "/model-versions/get-artifact?name=clf&version=1&path=nothing", http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST")
}

// TestPromptlabRunArtifacts checks what create-promptlab-run leaves beside
// the run: eval_results_table.json exactly as MLflow's json.dumps writes it,
// and the model recorded in mlflow.log-model.history.
func TestPromptlabRunArtifacts(t *testing.T) {
	srv, s := newTestServer(t)
	s.Tracking.Now = func() time.Time { return time.UnixMilli(1_700_000_000_123).UTC() }
	c := apiClient{t, srv.URL}
	expID, _ := c.newRun("promptlab")
	create := func(body map[string]any) map[string]any {
		t.Helper()
		resp, raw := sendArtifactRequest(t, srv, http.MethodPost, ajaxAPI+"runs/create-promptlab-run", strings.NewReader(mustJSON(t, body)))
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("create-promptlab-run: got %d %s, want 200", resp.StatusCode, raw)
		}
		var out map[string]any
		if err := json.Unmarshal([]byte(raw), &out); err != nil {
			t.Fatal(err)
		}
		return out["run"].(map[string]any)
	}
	run := create(map[string]any{
		"experiment_id":           expID,
		"prompt_template":         "Say {{ word }} in {{ lang }}",
		"prompt_parameters":       []map[string]any{{"key": "word", "value": "hé \"there\""}, {"key": "lang", "value": 7}},
		"model_route":             "chat",
		"model_input":             "Say hé in 7",
		"model_output":            "😀",
		"model_output_parameters": []map[string]any{{"key": "latency", "value": "100"}},
		"mlflow_version":          "2.9.2",
	})
	info := run["info"].(map[string]any)
	id := info["run_id"].(string)
	if info["status"] != "FINISHED" || info["end_time"] == nil {
		t.Errorf("run info: got %v, want FINISHED with an end_time", info)
	}
	const table = `{"columns": ["word", "lang", "prompt", "output", "latency"], ` +
		`"data": [["h\u00e9 \"there\"", "7", "Say h\u00e9 in 7", "\ud83d\ude00", "100"]]}`
	wantArtifactResponse(t, srv, http.MethodGet, "/get-artifact?run_id="+id+"&path=eval_results_table.json", nil, http.StatusOK, table)

	var history []map[string]any
	for _, tag := range run["data"].(map[string]any)["tags"].([]any) {
		if tag := tag.(map[string]any); tag["key"] == "mlflow.log-model.history" {
			if err := json.Unmarshal([]byte(tag["value"].(string)), &history); err != nil {
				t.Fatalf("history tag: %v", err)
			}
		}
	}
	if len(history) != 1 || !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(fmt.Sprint(history[0]["model_uuid"])) {
		t.Fatalf("history: got %v, want one model with a uuid", history)
	}
	delete(history[0], "model_uuid")
	want := map[string]any{"run_id": id, "artifact_path": "model", "utc_time_created": "2023-11-14 22:13:20.123000",
		"flavors": map[string]any{}, "mlflow_version": "2.9.2"}
	if mustJSON(t, history[0]) != mustJSON(t, want) {
		t.Errorf("history entry: got %v, want %v", history[0], want)
	}

	// Without a model output the table says null.
	run = create(map[string]any{"experiment_id": expID, "prompt_template": "t", "mlflow_version": "2.9.2",
		"prompt_parameters": []map[string]any{{"key": "k", "value": "v"}}, "model_route": "r", "model_input": "i"})
	id = run["info"].(map[string]any)["run_id"].(string)
	wantArtifactResponse(t, srv, http.MethodGet, "/get-artifact?run_id="+id+"&path=eval_results_table.json", nil, http.StatusOK,
		`{"columns": ["k", "prompt", "output"], "data": [["v", "i", null]]}`)
}

// TestPromptlabRunFailed checks that a prompt engineering run whose
// artifacts cannot be written is kept, ended FAILED, as MLflow does.
func TestPromptlabRunFailed(t *testing.T) {
	srv, _ := newTestServer(t, func(s *Server) { s.Artifacts = nil })
	c := apiClient{t, srv.URL}
	expID, _ := c.newRun("promptlab-failed")
	resp, raw := sendArtifactRequest(t, srv, http.MethodPost, ajaxAPI+"runs/create-promptlab-run", strings.NewReader(mustJSON(t, map[string]any{
		"experiment_id": expID, "prompt_template": "t", "mlflow_version": "2.9.2",
		"prompt_parameters": []map[string]any{{"key": "k", "value": "v"}}, "model_route": "r", "model_input": "i"})))
	var out struct {
		Run struct {
			Info struct {
				RunID   string `json:"run_id"`
				Status  string `json:"status"`
				EndTime int64  `json:"end_time"`
			}
		}
	}
	if err := json.Unmarshal([]byte(raw), &out); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("create-promptlab-run: got %d %s (%v), want 200", resp.StatusCode, raw, err)
	}
	if out.Run.Info.Status != "FAILED" || out.Run.Info.EndTime == 0 {
		t.Errorf("run: got status %q, end time %d, want FAILED with an end time", out.Run.Info.Status, out.Run.Info.EndTime)
	}
	got := c.mustCall(http.MethodGet, "runs/get", url.Values{"run_id": {out.Run.Info.RunID}})
	if status := got["run"].(map[string]any)["info"].(map[string]any)["status"]; status != "FAILED" {
		t.Errorf("stored run: got status %v, want FAILED", status)
	}
}

// fakeGateway is an MLflow AI gateway that records what it is asked and
// answers with a fixed status and body.
type fakeGateway struct {
	mu       sync.Mutex
	requests []string // "METHOD /path body"
	status   int
	body     string
}

func (g *fakeGateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	g.mu.Lock()
	g.requests = append(g.requests, r.Method+" "+r.URL.Path+" "+string(b))
	status, body := g.status, g.body
	g.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	io.WriteString(w, body)
}

// last returns the last request the gateway got.
func (g *fakeGateway) last() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	if len(g.requests) == 0 {
		return ""
	}
	return g.requests[len(g.requests)-1]
}

// TestGatewayProxy checks gateway-proxy with a gateway configured: the
// request is forwarded with its method and json_data, and the gateway's
// answer or failure comes back.
func TestGatewayProxy(t *testing.T) {
	gw := &fakeGateway{status: http.StatusOK, body: `{"endpoints": [{"name": "chat"}]}`}
	gwSrv := httptest.NewServer(gw)
	t.Cleanup(gwSrv.Close)
	srv, _ := newTestServer(t, func(s *Server) { s.DeploymentsTarget = gwSrv.URL + "/" })
	proxy := ajaxAPI + "gateway-proxy"

	wantArtifactResponse(t, srv, http.MethodPost, proxy, strings.NewReader(`{}`), http.StatusBadRequest,
		`{"error_code":"INVALID_PARAMETER_VALUE","message":"Deployments proxy request must specify a gateway_path."}`)
	wantArtifactResponse(t, srv, http.MethodGet, proxy, nil, http.StatusBadRequest,
		`{"error_code":"INVALID_PARAMETER_VALUE","message":"Deployments proxy request must specify a gateway_path."}`)

	wantArtifactResponse(t, srv, http.MethodGet, proxy+"?gateway_path=api/2.0/endpoints/", nil, http.StatusOK, `{"endpoints": [{"name": "chat"}]}`)
	if got, want := gw.last(), "GET /api/2.0/endpoints/ "; got != want {
		t.Errorf("forwarded GET: got %q, want %q", got, want)
	}
	wantArtifactResponse(t, srv, http.MethodPost, proxy, strings.NewReader(`{"gateway_path": "/endpoints/chat/invocations", "json_data": {"messages": [1]}}`),
		http.StatusOK, `{"endpoints": [{"name": "chat"}]}`)
	if got, want := gw.last(), `POST /endpoints/chat/invocations {"messages": [1]}`; got != want {
		t.Errorf("forwarded POST: got %q, want %q", got, want)
	}

	for _, tt := range []struct {
		status     int
		body       string
		wantStatus int
		wantCode   string
	}{
		{http.StatusNotFound, `{"detail": "no route"}`, http.StatusBadRequest, "BAD_REQUEST"},
		{http.StatusBadGateway, `upstream down`, http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE"},
		{http.StatusOK, `not json`, http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE"},
	} {
		gw.mu.Lock()
		gw.status, gw.body = tt.status, tt.body
		gw.mu.Unlock()
		wantArtifactError(t, srv, http.MethodGet, proxy+"?gateway_path=x", tt.wantStatus, tt.wantCode)
	}

	gwSrv.Close()
	wantArtifactError(t, srv, http.MethodGet, proxy+"?gateway_path=x", http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE")
}

// mustJSON encodes v.
func mustJSON(tb testing.TB, v any) string {
	tb.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
