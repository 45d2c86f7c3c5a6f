package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/tracking"
)

// The tracking API is tested end to end: real HTTP requests to the real
// Server over real services and a real SQLite database. Most cases are
// fixtures in testdata/tracking, written from MLflow's service.proto and
// handlers: each file is a scenario of requests sent in order to a fresh
// server, with the status, MLflow error_code and message, or the exact
// response body each must get. Cases whose requests are too large for a
// fixture (batch limits, long values, many runs) are Go tests below.

// fixture is one scenario of testdata/tracking.
type fixture struct {
	Description string        `json:"description"`
	Steps       []fixtureStep `json:"steps"`
}

// fixtureStep is one request and what must come back.
//
// Strings of the form ${name} in Path, Body, RawBody and Response are
// replaced by values saved from earlier responses (Save maps a name to a
// dotted path into the response, such as "run.info.run_id" or
// "runs.0.info.run_id"). In Response, the string "*" matches any value that
// is present (ids, timestamps); everything else must match exactly, with no
// missing and no extra fields.
type fixtureStep struct {
	Name      string            `json:"name"`
	Method    string            `json:"method"`
	Path      string            `json:"path"`
	Body      json.RawMessage   `json:"body,omitempty"`
	RawBody   *string           `json:"raw_body,omitempty"`
	Status    int               `json:"status"`
	ErrorCode string            `json:"error_code,omitempty"`
	Message   string            `json:"message,omitempty"` // a substring of the error message
	Response  json.RawMessage   `json:"response,omitempty"`
	Save      map[string]string `json:"save,omitempty"`
}

func TestTrackingFixtures(t *testing.T) {
	runFixtures(t, filepath.Join("testdata", "tracking"))
}

// runFixtures runs each scenario file *.json in dir as a subtest named after
// the file, against a fresh test server.
func runFixtures(t *testing.T, dir string) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures in %s: %v", filepath.ToSlash(dir), err)
	}
	for _, file := range files {
		t.Run(strings.TrimSuffix(filepath.Base(file), ".json"), func(t *testing.T) {
			b, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			var fx fixture
			dec := json.NewDecoder(bytes.NewReader(b))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&fx); err != nil {
				t.Fatalf("parse %s: %v", file, err)
			}
			srv, _ := newTestServer(t)
			vars := map[string]string{}
			for i, step := range fx.Steps {
				runFixtureStep(t, srv.URL, fmt.Sprintf("step %d (%s)", i+1, step.Name), step, vars)
			}
		})
	}
}

var fixtureVar = regexp.MustCompile(`\$\{([A-Za-z0-9_]+)\}`)

// expand replaces ${name} in s with escape(value of name).
func expand(t *testing.T, where, s string, vars map[string]string, escape func(string) string) string {
	t.Helper()
	return fixtureVar.ReplaceAllStringFunc(s, func(m string) string {
		name := fixtureVar.FindStringSubmatch(m)[1]
		v, ok := vars[name]
		if !ok {
			t.Fatalf("%s: ${%s} is not saved by an earlier step", where, name)
		}
		return escape(v)
	})
}

// jsonEscape escapes s for use inside a JSON string.
func jsonEscape(s string) string {
	b, _ := json.Marshal(s)
	return string(b[1 : len(b)-1])
}

func runFixtureStep(t *testing.T, base, where string, step fixtureStep, vars map[string]string) {
	t.Helper()
	path := expand(t, where, step.Path, vars, url.QueryEscape)
	var body io.Reader
	switch {
	case step.RawBody != nil:
		body = strings.NewReader(expand(t, where, *step.RawBody, vars, func(s string) string { return s }))
	case step.Body != nil:
		body = strings.NewReader(expand(t, where, string(step.Body), vars, jsonEscape))
	}
	req, err := http.NewRequest(step.Method, base+path, body)
	if err != nil {
		t.Fatalf("%s: %v", where, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s: %s %s: %v", where, step.Method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: read response: %v", where, err)
	}
	if resp.StatusCode != step.Status {
		t.Fatalf("%s: %s %s: got status %d, want %d; body %s", where, step.Method, path, resp.StatusCode, step.Status, raw)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("%s: got Content-Type %q, want application/json", where, ct)
	}
	got, err := decodeJSON(raw)
	if err != nil {
		t.Fatalf("%s: response is not JSON: %v; body %s", where, err, raw)
	}
	if step.ErrorCode != "" || step.Message != "" {
		m, _ := got.(map[string]any)
		if code, _ := m["error_code"].(string); code != step.ErrorCode {
			t.Fatalf("%s: got error_code %q, want %q; body %s", where, code, step.ErrorCode, raw)
		}
		if msg, _ := m["message"].(string); !strings.Contains(msg, expand(t, where, step.Message, vars, func(s string) string { return s })) {
			t.Fatalf("%s: got message %q, want it to contain %q", where, msg, step.Message)
		}
	}
	if step.Response != nil {
		want, err := decodeJSON([]byte(expand(t, where, string(step.Response), vars, jsonEscape)))
		if err != nil {
			t.Fatalf("%s: expected response is not JSON: %v", where, err)
		}
		if err := matchJSON("response", want, got); err != nil {
			t.Fatalf("%s: %s %s: %v\ngot  %s", where, step.Method, path, err, raw)
		}
	}
	for name, p := range step.Save {
		v, err := lookupJSON(got, p)
		if err != nil {
			t.Fatalf("%s: save %s: %v; body %s", where, name, err, raw)
		}
		vars[name] = v
	}
}

func decodeJSON(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// matchJSON reports how got differs from want; the string "*" in want
// matches any value.
func matchJSON(path string, want, got any) error {
	if s, ok := want.(string); ok && s == "*" {
		if got == nil {
			return fmt.Errorf("%s: got nothing, want a value", path)
		}
		return nil
	}
	switch w := want.(type) {
	case map[string]any:
		g, ok := got.(map[string]any)
		if !ok {
			return fmt.Errorf("%s: got %v, want an object", path, got)
		}
		for _, k := range unionKeys(w, g) {
			wv, inWant := w[k]
			gv, inGot := g[k]
			switch {
			case !inWant:
				return fmt.Errorf("%s.%s: got %v, want no such field", path, k, gv)
			case !inGot:
				return fmt.Errorf("%s.%s: missing, want %v", path, k, wv)
			}
			if err := matchJSON(path+"."+k, wv, gv); err != nil {
				return err
			}
		}
		return nil
	case []any:
		g, ok := got.([]any)
		if !ok || len(g) != len(w) {
			return fmt.Errorf("%s: got %v, want %d elements %v", path, got, len(w), w)
		}
		for i := range w {
			if err := matchJSON(path+"."+strconv.Itoa(i), w[i], g[i]); err != nil {
				return err
			}
		}
		return nil
	case json.Number:
		g, ok := got.(json.Number)
		wf, _ := w.Float64()
		gf, _ := g.Float64()
		if !ok || wf != gf {
			return fmt.Errorf("%s: got %v, want %v", path, got, w)
		}
		return nil
	default:
		if want != got {
			return fmt.Errorf("%s: got %#v, want %#v", path, got, want)
		}
		return nil
	}
}

func unionKeys(a, b map[string]any) []string {
	var keys []string
	for k := range a {
		keys = append(keys, k)
	}
	for k := range b {
		if _, ok := a[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	return keys
}

// lookupJSON returns the string or number at a dotted path of v.
func lookupJSON(v any, path string) (string, error) {
	for _, part := range strings.Split(path, ".") {
		switch c := v.(type) {
		case map[string]any:
			v = c[part]
		case []any:
			i, err := strconv.Atoi(part)
			if err != nil || i < 0 || i >= len(c) {
				return "", fmt.Errorf("no element %q at %s", part, path)
			}
			v = c[i]
		default:
			return "", fmt.Errorf("no field %q at %s", part, path)
		}
	}
	switch s := v.(type) {
	case string:
		return s, nil
	case json.Number:
		return s.String(), nil
	}
	return "", fmt.Errorf("%s is %v, not a string or number", path, v)
}

// Helpers for the Go tests below.

// apiClient sends MLflow API requests to a test server.
type apiClient struct {
	t    *testing.T
	base string
}

// call sends a request (a JSON body for POST, a query string for GET) and
// returns the status and decoded body.
func (c apiClient) call(method, endpoint string, req any) (int, map[string]any) {
	c.t.Helper()
	var body io.Reader
	target := c.base + "/api/2.0/mlflow/" + endpoint
	if method == http.MethodGet {
		if q, ok := req.(url.Values); ok {
			target += "?" + q.Encode()
		}
	} else if req != nil {
		b, err := json.Marshal(req)
		if err != nil {
			c.t.Fatalf("encode %s request: %v", endpoint, err)
		}
		body = bytes.NewReader(b)
	}
	r, err := http.NewRequest(method, target, body)
	if err != nil {
		c.t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, endpoint, err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		c.t.Fatalf("%s %s: decode response: %v", method, endpoint, err)
	}
	return resp.StatusCode, out
}

// mustCall is call that fails the test unless the status is 200.
func (c apiClient) mustCall(method, endpoint string, req any) map[string]any {
	c.t.Helper()
	status, out := c.call(method, endpoint, req)
	if status != http.StatusOK {
		c.t.Fatalf("%s %s: got status %d (%v), want 200", method, endpoint, status, out)
	}
	return out
}

// newRun creates an experiment and a run in it and returns their ids.
func (c apiClient) newRun(name string) (expID, runID string) {
	c.t.Helper()
	exp := c.mustCall(http.MethodPost, "experiments/create", map[string]any{"name": name})
	expID = exp["experiment_id"].(string)
	run := c.mustCall(http.MethodPost, "runs/create", map[string]any{"experiment_id": expID, "start_time": 1})
	return expID, run["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string)
}

// wantError fails the test unless the response is an MLflow error.
func wantError(t *testing.T, status int, body map[string]any, wantStatus int, wantCode, wantMsg string) {
	t.Helper()
	msg, _ := body["message"].(string)
	if status != wantStatus || body["error_code"] != wantCode || !strings.Contains(msg, wantMsg) {
		t.Errorf("got %d %v %q, want %d %s with a message containing %q", status, body["error_code"], msg, wantStatus, wantCode, wantMsg)
	}
}

// TestLogBatchLimits checks MLflow's limits on one log-batch request.
func TestLogBatchLimits(t *testing.T) {
	srv, _ := newTestServer(t)
	c := apiClient{t, srv.URL}
	_, run := c.newRun("batch-limits")

	metrics := func(n int) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = map[string]any{"key": "m", "value": i, "timestamp": 1, "step": i}
		}
		return out
	}
	keyed := func(prefix string, n int) []map[string]any {
		out := make([]map[string]any, n)
		for i := range out {
			out[i] = map[string]any{"key": prefix + strconv.Itoa(i), "value": "v"}
		}
		return out
	}
	tests := []struct {
		name    string
		req     map[string]any
		wantMsg string // "" for success
	}{
		{"1000 metrics", map[string]any{"metrics": metrics(1000)}, ""},
		{"1001 metrics", map[string]any{"metrics": metrics(1001)}, "at most 1000 metrics. Got 1001 metrics."},
		{"100 params", map[string]any{"params": keyed("p", 100)}, ""},
		{"101 params", map[string]any{"params": keyed("q", 101)}, "at most 100 params. Got 101 params."},
		{"101 tags", map[string]any{"tags": keyed("t", 101)}, "at most 100 tags. Got 101 tags."},
		{"1001 entities", map[string]any{"metrics": metrics(900), "params": keyed("r", 100), "tags": keyed("u", 1)},
			"at most 1000 metrics, params, and tags. Got 1001 metrics, params, and tags."},
		{"body over 1 MB", map[string]any{"tags": []map[string]any{{"key": "big", "value": strings.Repeat("x", tracking.MaxBatchRequestBytes)}}},
			"Batched logging API requests must be at most 1000000 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.req["run_id"] = run
			status, body := c.call(http.MethodPost, "runs/log-batch", tt.req)
			if tt.wantMsg == "" {
				if status != http.StatusOK {
					t.Errorf("got %d %v, want 200", status, body)
				}
				return
			}
			wantError(t, status, body, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", tt.wantMsg)
		})
	}
	// Nothing of a rejected batch is written.
	hist := c.mustCall(http.MethodGet, "metrics/get-history", url.Values{"run_id": {run}, "metric_key": {"m"}})
	if got := len(hist["metrics"].([]any)); got != 1000 {
		t.Errorf("metric m: got %d points, want the 1000 of the accepted batch", got)
	}
}

// TestValueLengthLimits checks MLflow's key and value length limits.
func TestValueLengthLimits(t *testing.T) {
	srv, _ := newTestServer(t)
	c := apiClient{t, srv.URL}
	exp, run := c.newRun("length-limits")
	long := func(n int) string { return strings.Repeat("a", n) }
	tests := []struct {
		name     string
		endpoint string
		req      map[string]any
		wantMsg  string // "" for success
	}{
		{"param value at the limit", "runs/log-parameter", map[string]any{"run_id": run, "key": "p1", "value": long(6000)}, ""},
		{"param value over the limit", "runs/log-parameter", map[string]any{"run_id": run, "key": "p2", "value": long(6001)},
			"Param value '" + long(250) + "' had length 6001, which exceeded length limit of 6000"},
		{"param key over the limit", "runs/log-parameter", map[string]any{"run_id": run, "key": long(251), "value": "v"},
			"Param key '" + long(250) + "' had length 251, which exceeded length limit of 250"},
		{"tag value at the limit", "runs/set-tag", map[string]any{"run_id": run, "key": "t1", "value": long(8000)}, ""},
		{"tag value over the limit", "runs/set-tag", map[string]any{"run_id": run, "key": "t2", "value": long(8001)},
			"had length 8001, which exceeded length limit of 8000"},
		{"metric key over the limit", "runs/log-metric", map[string]any{"run_id": run, "key": long(251), "value": 1, "timestamp": 1},
			"Metric name '" + long(250) + "' had length 251"},
		{"experiment tag value over the limit", "experiments/set-experiment-tag", map[string]any{"experiment_id": exp, "key": "e", "value": long(5001)},
			"had length 5001, which exceeded length limit of 5000"},
		{"experiment name over the limit", "experiments/create", map[string]any{"name": long(501)},
			"Experiment name exceeds the maximum length of 500 characters"},
		{"multi-byte characters count once", "runs/log-parameter", map[string]any{"run_id": run, "key": "p3", "value": strings.Repeat("é", 6000)}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := c.call(http.MethodPost, tt.endpoint, tt.req)
			if tt.wantMsg == "" {
				if status != http.StatusOK {
					t.Errorf("got %d %v, want 200", status, body)
				}
				return
			}
			wantError(t, status, body, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", tt.wantMsg)
		})
	}
}

// TestOversizedBody checks that a body over the server's limit is refused
// before it is parsed.
func TestOversizedBody(t *testing.T) {
	srv, _ := newTestServer(t, func(s *Server) { s.MaxBodyBytes = 1 << 10 })
	c := apiClient{t, srv.URL}
	status, body := c.call(http.MethodPost, "experiments/create", map[string]any{"name": strings.Repeat("x", 2<<10)})
	wantError(t, status, body, http.StatusRequestEntityTooLarge, "RESOURCE_LIMIT_EXCEEDED", "exceeds the limit of 1024 bytes")
}

// TestSearchRunsPages pages through runs two at a time and checks that every
// run comes back exactly once, in MLflow's order (newest start time first).
func TestSearchRunsPages(t *testing.T) {
	srv, _ := newTestServer(t)
	c := apiClient{t, srv.URL}
	exp := c.mustCall(http.MethodPost, "experiments/create", map[string]any{"name": "pages"})["experiment_id"].(string)
	var want []string
	for i := range 7 {
		run := c.mustCall(http.MethodPost, "runs/create", map[string]any{"experiment_id": exp, "start_time": 1000 + i})
		want = append(want, run["run"].(map[string]any)["info"].(map[string]any)["run_id"].(string))
	}
	slices.Reverse(want)

	var got []string
	token := ""
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatalf("still paging after %d pages", page)
		}
		req := map[string]any{"experiment_ids": []string{exp}, "max_results": 2}
		if token != "" {
			req["page_token"] = token
		}
		out := c.mustCall(http.MethodPost, "runs/search", req)
		runs, _ := out["runs"].([]any)
		if len(runs) > 2 {
			t.Fatalf("page %d: got %d runs, want at most 2", page, len(runs))
		}
		for _, r := range runs {
			got = append(got, r.(map[string]any)["info"].(map[string]any)["run_id"].(string))
		}
		token, _ = out["next_page_token"].(string)
		if token == "" {
			break
		}
	}
	if !slices.Equal(got, want) {
		t.Errorf("runs over all pages: got %v, want %v", got, want)
	}
}

// TestMetricHistoryBulkIntervalSampling logs a long history and checks that
// the bulk-interval endpoint downsamples it as MLflow does.
func TestMetricHistoryBulkIntervalSampling(t *testing.T) {
	srv, _ := newTestServer(t)
	c := apiClient{t, srv.URL}
	_, run := c.newRun("sampling")
	var metrics []map[string]any
	for step := range 1000 {
		metrics = append(metrics, map[string]any{"key": "loss", "value": 1 / float64(step+1), "timestamp": 1000 + step, "step": step})
	}
	c.mustCall(http.MethodPost, "runs/log-batch", map[string]any{"run_id": run, "metrics": metrics})

	steps := func(q url.Values) []int64 {
		t.Helper()
		out := c.mustCall(http.MethodGet, "metrics/get-history-bulk-interval", q)
		var got []int64
		for _, m := range out["metrics"].([]any) {
			m := m.(map[string]any)
			if m["run_id"] != run || m["key"] != "loss" {
				t.Fatalf("got point %v, want run_id %s and key loss", m, run)
			}
			got = append(got, int64(m["step"].(float64)))
		}
		return got
	}
	all := make([]int64, 1000)
	for i := range all {
		all[i] = int64(i)
	}
	tests := []struct {
		name string
		q    url.Values
		want []int64
	}{
		{"default max_results returns every step", url.Values{}, all},
		{"ten steps", url.Values{"max_results": {"10"}},
			[]int64{0, 100, 200, 300, 400, 500, 600, 700, 800, 900, 999}},
		{"a window keeps its ends", url.Values{"max_results": {"4"}, "start_step": {"10"}, "end_step": {"29"}},
			[]int64{10, 15, 20, 25, 29}},
		{"a window past the last step adds the run's last step", url.Values{"max_results": {"2"}, "start_step": {"990"}, "end_step": {"5000"}},
			[]int64{990, 995, 999}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.Set("run_ids", run)
			tt.q.Set("metric_key", "loss")
			if got := steps(tt.q); !slices.Equal(got, tt.want) {
				t.Errorf("steps: got %v, want %v", got, tt.want)
			}
		})
	}
}

// TestMetricValuesRoundTrip checks that special and extreme doubles survive
// logging and reading back, written as protobuf's JSON mapping writes them.
func TestMetricValuesRoundTrip(t *testing.T) {
	srv, _ := newTestServer(t)
	c := apiClient{t, srv.URL}
	_, run := c.newRun("values")
	values := []struct {
		sent any    // as the client sends it
		want string // the JSON the server writes back
	}{
		{"NaN", `"NaN"`},
		{"Infinity", `"Infinity"`},
		{"-Infinity", `"-Infinity"`},
		{math.MaxFloat64, "1.7976931348623157e+308"},
		{-math.SmallestNonzeroFloat64, "-5e-324"},
		{"2.5", "2.5"},
		{0.1, "0.1"},
		{-0.0, "0"},
	}
	for i, v := range values {
		c.mustCall(http.MethodPost, "runs/log-metric", map[string]any{"run_id": run, "key": "v", "value": v.sent, "timestamp": 1, "step": i})
	}
	resp, err := http.Get(srv.URL + "/api/2.0/mlflow/metrics/get-history?" + url.Values{"run_id": {run}, "metric_key": {"v"}}.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Metrics []struct {
			Value json.RawMessage `json:"value"`
			Step  int             `json:"step"`
		} `json:"metrics"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	if len(out.Metrics) != len(values) {
		t.Fatalf("got %d points, want %d", len(out.Metrics), len(values))
	}
	for _, m := range out.Metrics {
		if got, want := string(m.Value), values[m.Step].want; got != want {
			t.Errorf("value logged as %v: got %s, want %s", values[m.Step].sent, got, want)
		}
	}
}

// TestCreateExperimentRelativeLocation replays MLflow's
// test_create_get_search_experiment: a relative artifact location is stored
// as the plain absolute path under the server's working directory.
func TestCreateExperimentRelativeLocation(t *testing.T) {
	srv, _ := newTestServer(t)
	c := apiClient{t, srv.URL}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	out := c.mustCall(http.MethodPost, "experiments/create", map[string]any{"name": "My Experiment", "artifact_location": "my_location",
		"tags": []map[string]string{{"key": "key1", "value": "val1"}}})
	got := c.mustCall(http.MethodGet, "experiments/get", url.Values{"experiment_id": {out["experiment_id"].(string)}})
	exp := got["experiment"].(map[string]any)
	if want := filepath.ToSlash(filepath.Join(wd, "my_location")); exp["artifact_location"] != want {
		t.Errorf("artifact_location: got %v, want %s", exp["artifact_location"], want)
	}
}
