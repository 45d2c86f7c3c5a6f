package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/tracking"
)

// loggedModelCall sends one request to srv and decodes the JSON answer. A
// nil body sends no body; a string body is sent as is; anything else is
// encoded as JSON.
func loggedModelCall(t *testing.T, srv *httptest.Server, method, path string, body any) (int, map[string]any) {
	t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			t.Fatalf("encode %s %s body: %v", method, path, err)
		}
		r = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, srv.URL+path, r)
	if err != nil {
		t.Fatalf("new request %s %s: %v", method, path, err)
	}
	if r != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read %s %s: %v", method, path, err)
	}
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: answer %q is not a JSON object: %v", method, path, raw, err)
	}
	return resp.StatusCode, out
}

// callOK sends one request as loggedModelCall does and fails t unless it
// answers 200.
func callOK(t *testing.T, srv *httptest.Server, method, path string, body any) map[string]any {
	t.Helper()
	status, out := loggedModelCall(t, srv, method, path, body)
	if status != http.StatusOK {
		t.Fatalf("%s %s: got status %d %v, want 200", method, path, status, out)
	}
	return out
}

// modelNames returns the names of the models of a search answer, which has
// no "models" at all when nothing matched.
func modelNames(body map[string]any) []string {
	var names []string
	models, _ := body["models"].([]any)
	for _, m := range models {
		name, _ := jsonAt(m, "info", "name").(string)
		names = append(names, name)
	}
	return names
}

// jsonAt follows a path of object keys and array indexes through decoded JSON.
func jsonAt(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, _ := v.(map[string]any)
			v = m[k]
		case int:
			a, _ := v.([]any)
			if k >= len(a) {
				return nil
			}
			v = a[k]
		}
	}
	return v
}

// loggedModelFixture is a server with an experiment and a run in it.
type loggedModelFixture struct {
	srv   *httptest.Server
	s     *Server
	expID string
	runID string
}

func newLoggedModelFixture(t *testing.T) *loggedModelFixture {
	t.Helper()
	srv, s := newTestServer(t)
	ctx := context.Background()
	expID, err := s.Tracking.CreateExperiment(ctx, "logged-models", "", nil)
	if err != nil {
		t.Fatalf("create experiment: %v", err)
	}
	run, err := s.Tracking.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: expID})
	if err != nil {
		t.Fatalf("create run: %v", err)
	}
	return &loggedModelFixture{srv: srv, s: s, expID: expID, runID: run.Info.RunID}
}

// TestLoggedModelClientFlow replays what an MLflow 3 client sends for
// mlflow.<flavor>.log_model inside a run, then registers nothing but reads
// the model back the ways the client and UI do.
func TestLoggedModelClientFlow(t *testing.T) {
	f := newLoggedModelFixture(t)
	base := "/api/2.0/mlflow/logged-models"

	// create_logged_model, with the body message_to_json produces.
	created := callOK(t, f.srv, "POST", base, map[string]any{
		"experiment_id": f.expID,
		"name":          "model",
		"model_type":    "sklearn",
		"source_run_id": f.runID,
		"params":        []map[string]string{{"key": "alpha", "value": "0.5"}},
		"tags":          []map[string]string{{"key": "mlflow.user", "value": "alice"}},
	})
	info := jsonAt(created, "model", "info").(map[string]any)
	id, _ := info["model_id"].(string)
	if !regexp.MustCompile(`^m-[0-9a-f]{32}$`).MatchString(id) {
		t.Fatalf("model_id: got %q, want m- and 32 hex digits", id)
	}
	exp, err := f.s.Tracking.GetExperiment(context.Background(), f.expID)
	if err != nil {
		t.Fatalf("get experiment: %v", err)
	}
	wantInfo := map[string]any{
		"model_id":      id,
		"experiment_id": f.expID,
		"name":          "model",
		"model_type":    "sklearn",
		"source_run_id": f.runID,
		"status":        "LOGGED_MODEL_PENDING",
		"artifact_uri":  exp.ArtifactLocation + "/models/" + id + "/artifacts",
	}
	for k, want := range wantInfo {
		if info[k] != want {
			t.Errorf("info.%s: got %v, want %v", k, info[k], want)
		}
	}
	for _, k := range []string{"creation_timestamp_ms", "last_updated_timestamp_ms"} {
		if _, ok := info[k].(float64); !ok {
			t.Errorf("info.%s: got %v, want a JSON number", k, info[k])
		}
	}
	if got := jsonAt(info, "tags", 0); !sameJSON(got, map[string]any{"key": "mlflow.user", "value": "alice"}) {
		t.Errorf("info.tags[0]: got %v, want mlflow.user=alice", got)
	}
	if got := jsonAt(created, "model", "data", "params", 0); !sameJSON(got, map[string]any{"key": "alpha", "value": "0.5"}) {
		t.Errorf("data.params[0]: got %v, want alpha=0.5", got)
	}

	// The client uploads the model's files, links the run's output, logs the
	// rest of its params, tags it and finalizes it.
	root, err := artifact.KeyFromURI(wantInfo["artifact_uri"].(string))
	if err != nil {
		t.Fatalf("artifact key: %v", err)
	}
	for name, content := range map[string]string{"MLmodel": "flavors: {}\n", "model.pkl": "pickle", "sub/x.txt": "x"} {
		if err := f.s.Artifacts.Put(context.Background(), root+"/"+name, strings.NewReader(content)); err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
	}
	callOK(t, f.srv, "POST", base+"/"+id+"/params", map[string]any{
		"model_id": id, "params": []map[string]string{{"key": "beta", "value": "2"}},
	})
	callOK(t, f.srv, "PATCH", base+"/"+id+"/tags", map[string]any{
		"tags": []map[string]string{{"key": "mlflow.source.name", "value": "train.py"}, {"key": "tmp", "value": "1"}},
	})
	callOK(t, f.srv, "DELETE", base+"/"+id+"/tags/tmp", nil)
	finalized := callOK(t, f.srv, "PATCH", base+"/"+id, map[string]any{
		"model_id": id, "status": "LOGGED_MODEL_READY",
	})
	if got := jsonAt(finalized, "model", "info", "status"); got != "LOGGED_MODEL_READY" {
		t.Errorf("finalized status: got %v, want LOGGED_MODEL_READY", got)
	}

	// get_logged_model, under each prefix MLflow serves it.
	for _, prefix := range []string{"/api/2.0/mlflow", "/ajax-api/2.0/mlflow", "/api/3.0/mlflow"} {
		got := callOK(t, f.srv, "GET", prefix+"/logged-models/"+id, nil)
		if n := len(jsonAt(got, "model", "data", "params").([]any)); n != 2 {
			t.Errorf("get via %s: got %d params, want 2", prefix, n)
		}
		tags := jsonAt(got, "model", "info", "tags").([]any)
		if len(tags) != 2 || !sameJSON(tags[0], map[string]any{"key": "mlflow.source.name", "value": "train.py"}) {
			t.Errorf("get via %s: tags %v, want mlflow.source.name and mlflow.user", prefix, tags)
		}
	}

	// The UI lists the model's files.
	listed := callOK(t, f.srv, "GET", base+"/"+id+"/artifacts/directories", nil)
	wantFiles := []any{
		map[string]any{"path": "MLmodel", "is_dir": false, "file_size": 12.0},
		map[string]any{"path": "model.pkl", "is_dir": false, "file_size": 6.0},
		map[string]any{"path": "sub", "is_dir": true},
	}
	if listed["root_uri"] != wantInfo["artifact_uri"] || !sameJSON(listed["files"], wantFiles) {
		t.Errorf("artifacts: got root %v files %v, want root %v files %v", listed["root_uri"], listed["files"], wantInfo["artifact_uri"], wantFiles)
	}
	sub := callOK(t, f.srv, "GET", base+"/"+id+"/artifacts/directories?artifact_directory_path=sub", nil)
	if want := []any{map[string]any{"path": "sub/x.txt", "is_dir": false, "file_size": 1.0}}; !sameJSON(sub["files"], want) {
		t.Errorf("artifacts of sub: got %v, want %v", sub["files"], want)
	}

	// delete_logged_model sends its id in the body too.
	callOK(t, f.srv, "DELETE", base+"/"+id, map[string]any{"model_id": id})
	status, body := loggedModelCall(t, f.srv, "GET", base+"/"+id, nil)
	wantMLflowError(t, "get after delete", status, body, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "Logged model with ID '"+id+"' not found.")
	callOK(t, f.srv, "GET", base+"/"+id+"?allow_deleted=true", nil)
}

func TestLoggedModelSearchHTTP(t *testing.T) {
	f := newLoggedModelFixture(t)
	base := "/api/2.0/mlflow/logged-models"
	var ids []string
	for _, name := range []string{"a", "b", "c"} {
		body := callOK(t, f.srv, "POST", base, map[string]any{
			"experiment_id": f.expID, "name": name, "source_run_id": f.runID,
		})
		ids = append(ids, jsonAt(body, "model", "info", "model_id").(string))
	}
	ctx := context.Background()
	for i, acc := range []float64{0.7, 0.9, 0.8} {
		err := f.s.LoggedModels.LogLoggedModelMetrics(ctx, []tracking.ModelMetric{{
			Metric:  tracking.Metric{Key: "accuracy", Value: acc, Timestamp: 1, RunID: f.runID},
			ModelID: ids[i],
		}})
		if err != nil {
			t.Fatalf("log metric of %s: %v", ids[i], err)
		}
	}

	// What _get_logged_models_from_run and search_logged_models send.
	var got []string
	token := ""
	for page := 0; page < 5; page++ {
		req := map[string]any{
			"experiment_ids": []string{f.expID},
			"filter":         "source_run_id = '" + f.runID + "'",
			"order_by":       []map[string]any{{"field_name": "metrics.accuracy", "ascending": false}},
			"max_results":    2,
		}
		if token != "" {
			req["page_token"] = token
		}
		body := callOK(t, f.srv, "POST", base+"/search", req)
		got = append(got, modelNames(body)...)
		if jsonAt(body, "models", 0, "data", "metrics", 0, "key") != "accuracy" {
			t.Errorf("search page %d: first model's metrics %v, want accuracy", page, jsonAt(body, "models", 0, "data", "metrics"))
		}
		token, _ = body["next_page_token"].(string)
		if token == "" {
			break
		}
	}
	if want := []string{"b", "c", "a"}; strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("search by accuracy desc: got %v, want %v", got, want)
	}

	// ascending defaults to true, as in the proto.
	body := callOK(t, f.srv, "POST", "/api/3.0/mlflow/logged-models/search", map[string]any{
		"experiment_ids": []string{f.expID},
		"filter":         "name != 'b'",
		"order_by":       []map[string]any{{"field_name": "name"}},
	})
	if names := modelNames(body); strings.Join(names, ",") != "a,c" {
		t.Errorf("search name != 'b' by name: got %v, want [a c]", names)
	}
	if _, ok := body["next_page_token"]; ok {
		t.Errorf("last page: got next_page_token %v, want none", body["next_page_token"])
	}

	// Filters a client writes by hand, through the real parser.
	ready := callOK(t, f.srv, "PATCH", base+"/"+ids[2], map[string]any{"status": "LOGGED_MODEL_READY"})
	filters := map[string]string{
		"status = 'LOGGED_MODEL_READY'":                  "c",
		"attributes.status = 'READY'":                    "c",
		"name IN ('a', 'c') AND metrics.accuracy < 0.75": "a",
		"creation_time > 0 AND name LIKE 'b%'":           "b",
		"params.missing = 'x'":                           "",
		"model_id = '" + ids[1] + "'":                    "b",
	}
	for filter, want := range filters {
		body := callOK(t, f.srv, "POST", base+"/search", map[string]any{"experiment_ids": []any{f.expID}, "filter": filter})
		if names := modelNames(body); strings.Join(names, ",") != want {
			t.Errorf("filter %q: got %v, want [%s]", filter, names, want)
		}
	}
	if jsonAt(ready, "model", "info", "name") != "c" {
		t.Errorf("finalize c: got %v", ready)
	}
}

func TestLoggedModelHTTPErrors(t *testing.T) {
	f := newLoggedModelFixture(t)
	base := "/api/2.0/mlflow/logged-models"
	created := callOK(t, f.srv, "POST", base, map[string]any{"experiment_id": f.expID})
	id := jsonAt(created, "model", "info", "model_id").(string)

	tests := []struct {
		name         string
		method, path string
		body         any
		status       int
		code         string
		msg          string // a part of the message
	}{
		{"create without experiment", "POST", base, map[string]any{"name": "m"}, 400, "INVALID_PARAMETER_VALUE",
			"Missing value for required parameter 'experiment_id'"},
		{"create with a boolean experiment id", "POST", base, `{"experiment_id": true}`, 400, "INVALID_PARAMETER_VALUE",
			"parameter 'experiment_id'"},
		{"create in an unknown experiment", "POST", base, map[string]any{"experiment_id": "999"}, 404, "RESOURCE_DOES_NOT_EXIST", "999"},
		{"create with a bad name", "POST", base, map[string]any{"experiment_id": f.expID, "name": "a.b"}, 400, "INVALID_PARAMETER_VALUE",
			"Invalid model name"},
		{"malformed body", "POST", base, `{"experiment_id": `, 400, "BAD_REQUEST", "Malformed JSON"},
		{"get an unknown model", "GET", base + "/m-00000000000000000000000000000000", nil, 404, "RESOURCE_DOES_NOT_EXIST",
			"Logged model with ID 'm-00000000000000000000000000000000' not found."},
		{"finalize without status", "PATCH", base + "/" + id, map[string]any{"model_id": id}, 400, "INVALID_PARAMETER_VALUE",
			"Missing value for required parameter 'status'"},
		{"finalize with an unknown status", "PATCH", base + "/" + id, map[string]any{"status": "LOGGED_MODEL_DONE"}, 400,
			"INVALID_PARAMETER_VALUE", "parameter 'status'"},
		{"finalize an unknown model", "PATCH", base + "/m-1", map[string]any{"status": 2}, 404, "RESOURCE_DOES_NOT_EXIST", "m-1"},
		{"delete an unknown model", "DELETE", base + "/m-1", nil, 404, "RESOURCE_DOES_NOT_EXIST", "m-1"},
		{"delete a missing tag", "DELETE", base + "/" + id + "/tags/" + url.PathEscape("no such"), nil, 404, "RESOURCE_DOES_NOT_EXIST",
			"No tag with key 'no such'"},
		{"tags of an unknown model", "PATCH", base + "/m-1/tags", map[string]any{"tags": []map[string]string{{"key": "a", "value": "b"}}},
			404, "RESOURCE_DOES_NOT_EXIST", "m-1"},
		{"change a param", "POST", base + "/" + id + "/params", map[string]any{"params": []map[string]string{{"key": "p", "value": "1"}, {"key": "p", "value": "2"}}},
			400, "INVALID_PARAMETER_VALUE", "'p'"},
		{"search without experiments", "POST", base + "/search", map[string]any{}, 400, "INVALID_PARAMETER_VALUE",
			"Missing value for required parameter 'experiment_ids'"},
		{"search with a malformed filter", "POST", base + "/search", map[string]any{"experiment_ids": []string{f.expID}, "filter": "metrics.acc LIKE '1'"},
			400, "INVALID_PARAMETER_VALUE", "Expected numeric value"},
		{"search with an operator logged models lack", "POST", base + "/search", map[string]any{"experiment_ids": []string{f.expID},
			"filter": "params.lr IS NULL"}, 400, "INVALID_PARAMETER_VALUE", "'IS NULL' for param 'lr'"},
		{"search with a run attribute", "POST", base + "/search", map[string]any{"experiment_ids": []string{f.expID},
			"filter": "run_name = 'x'"}, 400, "INVALID_PARAMETER_VALUE", "run_name"},
		{"search with a bad order", "POST", base + "/search", map[string]any{"experiment_ids": []string{f.expID},
			"order_by": []map[string]any{{"field_name": "params.lr"}}}, 400, "INVALID_PARAMETER_VALUE", "metrics.<name>"},
		{"search with a foreign token", "POST", base + "/search", map[string]any{"experiment_ids": []string{f.expID}, "page_token": "e30="},
			400, "INVALID_PARAMETER_VALUE", "page token"},
		{"list artifacts outside the model", "GET", base + "/" + id + "/artifacts/directories?artifact_directory_path=..%2F..", nil,
			400, "INVALID_PARAMETER_VALUE", "Invalid path"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := loggedModelCall(t, f.srv, tt.method, tt.path, tt.body)
			wantMLflowError(t, tt.name, status, body, tt.status, tt.code, tt.msg)
		})
	}
}

func TestLoggedModelsNotConfigured(t *testing.T) {
	srv, _ := newTestServer(t, func(s *Server) { s.LoggedModels = nil })
	status, body := loggedModelCall(t, srv, "GET", "/api/2.0/mlflow/logged-models/m-1", nil)
	wantMLflowError(t, "get without a logged-model service", status, body, http.StatusNotImplemented, "NOT_IMPLEMENTED", "logged models")
}

// wantMLflowError checks an MLflow error answer.
func wantMLflowError(t *testing.T, what string, status int, body map[string]any, wantStatus int, code, msg string) {
	t.Helper()
	m, _ := body["message"].(string)
	if status != wantStatus || body["error_code"] != code || !strings.Contains(m, msg) {
		t.Errorf("%s: got %d %v %q, want %d %s with a message containing %q", what, status, body["error_code"], m, wantStatus, code, msg)
	}
}

// sameJSON compares decoded JSON values.
func sameJSON(a, b any) bool {
	ja, errA := json.Marshal(a)
	jb, errB := json.Marshal(b)
	return errA == nil && errB == nil && bytes.Equal(ja, jb)
}
