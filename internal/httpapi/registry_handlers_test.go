package httpapi

import (
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// The registry API is tested like the tracking API: real HTTP requests to
// the real Server over real services and SQLite. The scenarios of
// testdata/registry (the fixture format of tracking_handlers_test.go) were
// written from MLflow's model_registry.proto, handlers and sqlalchemy store;
// the Go tests below cover what needs runs, a clock or many requests.

func TestRegistryFixtures(t *testing.T) {
	runFixtures(t, filepath.Join("testdata", "registry"))
}

// withTickingClock makes the registry's clock start at a fixed time and
// advance by one millisecond each time it is read, so every write gets its
// own timestamp.
func withTickingClock(s *Server) {
	var ms atomic.Int64
	ms.Store(1_700_000_000_000)
	s.Registry.Now = func() time.Time { return time.UnixMilli(ms.Add(1)) }
}

// registryNames returns the "name" field of each object in list, a JSON array.
func registryNames(list any) []string {
	var out []string
	items, _ := list.([]any)
	for _, it := range items {
		m, _ := it.(map[string]any)
		n, _ := m["name"].(string)
		if v, ok := m["version"].(string); ok {
			n += "/" + v
		}
		out = append(out, n)
	}
	return out
}

// MLflow's test_search_registered_model_flow_paginated: every page size and
// filter returns all matches, in name order, across page tokens.
func TestRegistrySearchRegisteredModelsPages(t *testing.T) {
	srv, _ := newTestServer(t)
	c := apiClient{t, srv.URL}
	var all []string
	for i := range 29 {
		name := fmt.Sprintf("CreateRMsearch%03d", i)
		c.mustCall(http.MethodPost, "registered-models/create", map[string]any{"name": name})
		all = append(all, name)
	}
	filter := func(keep func(string) bool) []string {
		var out []string
		for _, n := range all {
			if keep(n) {
				out = append(out, n)
			}
		}
		return out
	}
	tests := []struct {
		filter string
		want   []string
	}{
		{"", all},
		{"name LIKE '%7'", filter(func(n string) bool { return strings.HasSuffix(n, "7") })},
		{"name ILIKE '%rm%00%'", filter(func(n string) bool { return strings.Contains(n, "00") })},
		{"name LIKE '%rm%00%'", nil},
		{"name = 'badname'", nil},
		{"name = 'CreateRMsearch023'", []string{"CreateRMsearch023"}},
	}
	for _, tt := range tests {
		for _, size := range []int{1, 8, 100} {
			var got []string
			token := ""
			for page := 0; ; page++ {
				if page > len(all)+1 {
					t.Fatalf("filter %q, max_results %d: the page tokens never end", tt.filter, size)
				}
				q := url.Values{"filter": {tt.filter}, "max_results": {fmt.Sprint(size)}}
				if token != "" {
					q.Set("page_token", token)
				}
				out := c.mustCall(http.MethodGet, "registered-models/search", q)
				got = append(got, registryNames(out["registered_models"])...)
				token, _ = out["next_page_token"].(string)
				if token == "" {
					break
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("filter %q, max_results %d: got %v, want %v", tt.filter, size, got, tt.want)
			}
		}
	}
}

// MLflow's test_search_model_versions_order_by: the default order is last
// update descending, then name, then version descending; order_by overrides
// it and keeps the tiebreaks.
func TestRegistrySearchModelVersionsOrder(t *testing.T) {
	srv, _ := newTestServer(t, withTickingClock)
	c := apiClient{t, srv.URL}
	var created []string // "name/version" in creation order
	for i := range 6 {
		c.mustCall(http.MethodPost, "registered-models/create", map[string]any{"name": fmt.Sprintf("m%d", i)})
	}
	for _, i := range []int{0, 1, 2, 3, 4, 5, 0, 1, 2} {
		out := c.mustCall(http.MethodPost, "model-versions/create", map[string]any{
			"name": fmt.Sprintf("m%d", i), "source": "runs:/run_id/model", "run_id": "run_id"})
		mv := out["model_version"].(map[string]any)
		created = append(created, mv["name"].(string)+"/"+mv["version"].(string))
	}
	reversed := make([]string, len(created))
	for i, v := range created {
		reversed[len(created)-1-i] = v
	}
	tests := []struct {
		orderBy []string
		want    []string
	}{
		{nil, reversed},
		{[]string{"name DESC"}, []string{"m5/1", "m4/1", "m3/1", "m2/2", "m2/1", "m1/2", "m1/1", "m0/2", "m0/1"}},
		{[]string{"version_number DESC"}, []string{"m0/2", "m1/2", "m2/2", "m0/1", "m1/1", "m2/1", "m3/1", "m4/1", "m5/1"}},
		{[]string{"creation_timestamp ASC"}, created},
	}
	for _, tt := range tests {
		for _, size := range []int{2, 100} {
			var got []string
			token := ""
			for page := 0; ; page++ {
				if page > len(created)+1 {
					t.Fatalf("order_by %v: the page tokens never end", tt.orderBy)
				}
				q := url.Values{"order_by": tt.orderBy, "max_results": {fmt.Sprint(size)}}
				if token != "" {
					q.Set("page_token", token)
				}
				out := c.mustCall(http.MethodGet, "model-versions/search", q)
				got = append(got, registryNames(out["model_versions"])...)
				if token, _ = out["next_page_token"].(string); token == "" {
					break
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Errorf("order_by %v, max_results %d: got %v, want %v", tt.orderBy, size, got, tt.want)
			}
		}
	}
}

// A version registered from a run records the run (lineage), and its
// runs:/ source resolves to the run's artifacts for downloads.
func TestRegistryRunLineage(t *testing.T) {
	srv, _ := newTestServer(t)
	c := apiClient{t, srv.URL}
	_, runID := c.newRun("lineage")
	run := c.mustCall(http.MethodGet, "runs/get", url.Values{"run_id": {runID}})
	artifactURI := run["run"].(map[string]any)["info"].(map[string]any)["artifact_uri"].(string)

	c.mustCall(http.MethodPost, "registered-models/create", map[string]any{"name": "m"})
	out := c.mustCall(http.MethodPost, "model-versions/create", map[string]any{"name": "m", "source": "runs:/" + runID + "/model"})
	mv := out["model_version"].(map[string]any)
	if mv["run_id"] != runID || mv["source"] != "runs:/"+runID+"/model" {
		t.Errorf("created version: got run_id %v source %v, want the run %s and the source as sent", mv["run_id"], mv["source"], runID)
	}
	uri := c.mustCall(http.MethodGet, "model-versions/get-download-uri", url.Values{"name": {"m"}, "version": {"1"}})
	if want := strings.TrimRight(artifactURI, "/") + "/model"; uri["artifact_uri"] != want {
		t.Errorf("download uri: got %v, want %s", uri["artifact_uri"], want)
	}

	// A copy (models:/ source) downloads from the same place.
	c.mustCall(http.MethodPost, "model-versions/create", map[string]any{"name": "m", "source": "models:/m/1", "run_id": runID})
	uri2 := c.mustCall(http.MethodGet, "model-versions/get-download-uri", url.Values{"name": {"m"}, "version": {"2"}})
	if uri2["artifact_uri"] != uri["artifact_uri"] {
		t.Errorf("download uri of the copy: got %v, want %v", uri2["artifact_uri"], uri["artifact_uri"])
	}

	// What did the run produce?
	found := c.mustCall(http.MethodGet, "model-versions/search", url.Values{"filter": {"run_id = '" + runID + "'"}})
	if got := registryNames(found["model_versions"]); fmt.Sprint(got) != "[m/2 m/1]" {
		t.Errorf("versions of run %s: got %v, want [m/2 m/1]", runID, got)
	}
}

// A local source must lie in the artifact directory of its run, as MLflow's
// server requires; other sources must not climb out with "..".
func TestRegistryLocalSource(t *testing.T) {
	srv, _ := newTestServer(t)
	c := apiClient{t, srv.URL}
	root := t.TempDir()
	exp := c.mustCall(http.MethodPost, "experiments/create", map[string]any{"name": "local", "artifact_location": root})
	run := c.mustCall(http.MethodPost, "runs/create", map[string]any{"experiment_id": exp["experiment_id"], "start_time": 1})
	info := run["run"].(map[string]any)["info"].(map[string]any)
	runID, artifactURI := info["run_id"].(string), info["artifact_uri"].(string)
	c.mustCall(http.MethodPost, "registered-models/create", map[string]any{"name": "m"})

	tests := []struct {
		name, source, runID string
		ok                  bool
	}{
		{"inside the run's artifacts", artifactURI + "/model", runID, true},
		{"inside, as a file URI", "file://" + filepath.ToSlash(artifactURI) + "/model", runID, true},
		{"outside the run's artifacts", filepath.Join(root, "elsewhere"), runID, false},
		{"escaping with ..", artifactURI + "/../../etc", runID, false},
		{"without a run", artifactURI + "/model", "", false},
		{"remote with ..", "s3://bucket/a/../b", "", false},
		{"remote, encoded ..", "s3://bucket/a/%2E%2E/b", "", false},
		{"remote", "s3://bucket/a/b", "", true},
	}
	for _, tt := range tests {
		status, out := c.call(http.MethodPost, "model-versions/create", map[string]any{"name": "m", "source": tt.source, "run_id": tt.runID})
		if tt.ok && status != http.StatusOK {
			t.Errorf("%s: %s: got %d %v, want 200", tt.name, tt.source, status, out)
		}
		if !tt.ok {
			wantError(t, status, out, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Invalid model version source: '"+tt.source+"'")
		}
	}
}

// MLflow's test_create_model_version_with_file_uri(_env_var): with a file://
// artifact root, a file URI inside the run's artifacts is a valid source; a
// file URI of another machine is refused unless the server allows them
// (MLFLOW_ALLOW_FILE_URI_AS_MODEL_VERSION_SOURCE); and a symbolic link in
// the run's artifacts does not let a source out of them.
func TestRegistryFileURISource(t *testing.T) {
	_, opt := withLocalArtifactRoot(t)
	srv, _ := newTestServer(t, opt)
	c := apiClient{t, srv.URL}
	exp := c.mustCall(http.MethodPost, "experiments/create", map[string]any{"name": "file-uris"})
	run := c.mustCall(http.MethodPost, "runs/create", map[string]any{"experiment_id": exp["experiment_id"]})
	info := run["run"].(map[string]any)["info"].(map[string]any)
	runID, artifactURI := info["run_id"].(string), info["artifact_uri"].(string)
	if !strings.HasPrefix(artifactURI, "file://") {
		t.Fatalf("run artifact_uri %q: want a file:// URI", artifactURI)
	}
	c.mustCall(http.MethodPost, "registered-models/create", map[string]any{"name": "test"})

	runDir := strings.TrimPrefix(artifactURI, "file://")
	outside := t.TempDir()
	if err := os.MkdirAll(runDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(runDir, "link")); err != nil {
		t.Fatal(err)
	}

	const (
		notLocal  = "To use a local path as a model version source, the run_id request parameter has to be specified"
		fileURI   = "MLflow tracking server doesn't allow using a file URI as a model version source for security reasons. To disable this check, set the MLFLOW_ALLOW_FILE_URI_AS_MODEL_VERSION_SOURCE environment variable to True."
		otherHost = "file://123.456.789.123/path/to/source"
	)
	tests := []struct {
		source, runID string
		msg           string // "" when the version is created
	}{
		{artifactURI, runID, ""},
		{artifactURI + "/model", runID, ""},
		{artifactURI + "/.", runID, ""},
		{artifactURI + "/model/..", runID, ""},
		{"file://localhost" + runDir + "/model", runID, ""},
		{artifactURI, "", notLocal},
		{"file:///tmp", "", notLocal},
		{artifactURI + "/..", runID, notLocal},
		{artifactURI + "/link/model", runID, notLocal},
		{otherHost, runID, fileURI},
		{"FILE://otherhost/x", "", fileURI},
	}
	for _, tt := range tests {
		status, out := c.call(http.MethodPost, "model-versions/create", map[string]any{"name": "test", "source": tt.source, "run_id": tt.runID})
		if tt.msg == "" {
			if status != http.StatusOK {
				t.Errorf("source %s: got %d %v, want 200", tt.source, status, out)
			}
			continue
		}
		wantError(t, status, out, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", "Invalid model version source: '"+tt.source+"'. "+tt.msg)
	}

	// A server that allows file URIs (its environment sets the variable).
	_, opt = withLocalArtifactRoot(t)
	srv, _ = newTestServer(t, opt, func(s *Server) { s.Registry.AllowFileURISources = true })
	c = apiClient{t, srv.URL}
	c.mustCall(http.MethodPost, "registered-models/create", map[string]any{"name": "test"})
	status, out := c.call(http.MethodPost, "model-versions/create", map[string]any{"name": "test", "source": otherHost, "run_id": "run_id_1"})
	if status != http.StatusOK {
		t.Errorf("source %s with file URIs allowed: got %d %v, want 200", otherHost, status, out)
	}
	// A local source must still lie in its run's artifacts.
	status, out = c.call(http.MethodPost, "model-versions/create", map[string]any{"name": "test", "source": "file:///tmp"})
	wantError(t, status, out, http.StatusBadRequest, "INVALID_PARAMETER_VALUE", notLocal)
}

// MLflow 3: a version registered from a logged model (model_id, source
// models:/<model_id>) records the model id and the model's run, downloads
// from the model's artifacts, and is listed on the logged model's
// mlflow.modelVersions tag. An unknown model id registers nothing.
func TestRegistryLoggedModelVersion(t *testing.T) {
	srv, _ := newTestServer(t)
	c := apiClient{t, srv.URL}
	expID, runID := c.newRun("logged")
	lm := c.mustCall(http.MethodPost, "logged-models", map[string]any{"experiment_id": expID, "source_run_id": runID, "name": "clf"})
	info := lm["model"].(map[string]any)["info"].(map[string]any)
	modelID, location := info["model_id"].(string), info["artifact_uri"].(string)
	c.mustCall(http.MethodPost, "registered-models/create", map[string]any{"name": "m"})

	status, out := c.call(http.MethodPost, "model-versions/create", map[string]any{"name": "m", "source": "models:/" + modelID, "model_id": "m-00000000000000000000000000000000"})
	wantError(t, status, out, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "m-00000000000000000000000000000000")

	out = c.mustCall(http.MethodPost, "model-versions/create", map[string]any{"name": "m", "source": "models:/" + modelID, "model_id": modelID})
	mv := out["model_version"].(map[string]any)
	if mv["version"] != "1" || mv["model_id"] != modelID || mv["run_id"] != runID {
		t.Errorf("created version: got version %v model_id %v run_id %v, want 1, %s and the model's run %s", mv["version"], mv["model_id"], mv["run_id"], modelID, runID)
	}
	uri := c.mustCall(http.MethodGet, "model-versions/get-download-uri", url.Values{"name": {"m"}, "version": {"1"}})
	if uri["artifact_uri"] != location {
		t.Errorf("download uri: got %v, want the logged model's artifacts %s", uri["artifact_uri"], location)
	}
	got := c.mustCall(http.MethodGet, "logged-models/"+url.PathEscape(modelID), nil)
	var links string
	tags, _ := got["model"].(map[string]any)["info"].(map[string]any)["tags"].([]any)
	for _, tag := range tags {
		if kv := tag.(map[string]any); kv["key"] == "mlflow.modelVersions" {
			links, _ = kv["value"].(string)
		}
	}
	if links != `[{"name":"m","version":1}]` {
		t.Errorf("mlflow.modelVersions of the logged model: got %q, want [{\"name\":\"m\",\"version\":1}]", links)
	}
}

// MLflow 3 prompts are registered models and versions tagged
// mlflow.prompt.is_prompt: their versions' sources are not checked, and
// searches leave them out unless the filter asks for them.
func TestRegistryPrompts(t *testing.T) {
	srv, _ := newTestServer(t)
	c := apiClient{t, srv.URL}
	promptTag := []map[string]any{{"key": "mlflow.prompt.is_prompt", "value": "true"}}
	c.mustCall(http.MethodPost, "registered-models/create", map[string]any{"name": "greeting", "tags": promptTag})
	c.mustCall(http.MethodPost, "registered-models/create", map[string]any{"name": "model"})
	c.mustCall(http.MethodPost, "model-versions/create", map[string]any{"name": "greeting", "source": "dummy-source", "tags": promptTag})

	tests := []struct {
		endpoint, filter, list string
		want                   []string
	}{
		{"registered-models/search", "", "registered_models", []string{"model"}},
		{"registered-models/search", "tags.`mlflow.prompt.is_prompt` = 'true'", "registered_models", []string{"greeting"}},
		{"model-versions/search", "", "model_versions", nil},
		{"model-versions/search", "tags.`mlflow.prompt.is_prompt` = 'true'", "model_versions", []string{"greeting/1"}},
	}
	for _, tt := range tests {
		out := c.mustCall(http.MethodGet, tt.endpoint, url.Values{"filter": {tt.filter}})
		if got := registryNames(out[tt.list]); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("%s %q: got %v, want %v", tt.endpoint, tt.filter, got, tt.want)
		}
	}
}
