package httpapi

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/pipeline/pipelinetest"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/router"
	"github.com/mloop/mloop/internal/sqlstore"
)

// deployEnv is the real HTTP API with the real deployment service on
// SQLite and a local artifact folder.
type deployEnv struct {
	srv     *httptest.Server
	api     *Server
	deploys *deploy.Service
	router  *router.Router // nil unless asked for
	done    chan struct{}  // the Server's Done
}

// newDeployServer starts the API with deployments; with serving, the real
// data plane (router) follows the service in process and is mounted as
// the server mounts it. opts adjust the Server before it starts.
func newDeployServer(t *testing.T, serving bool, opts ...func(*Server)) *deployEnv {
	t.Helper()
	st := pipelinetest.NewStack(t)
	svc := deploy.NewService(sqlstore.NewDeploymentStore(st.DB), st.Registry, st.Artifacts)
	svc.Logger = st.Logger
	svc.AliasInterval = 50 * time.Millisecond
	if err := svc.Open(context.Background()); err != nil {
		t.Fatalf("open deployments: %v", err)
	}
	t.Cleanup(func() { svc.Close() })
	e := &deployEnv{deploys: svc, done: make(chan struct{})}
	e.api = &Server{Tracking: st.Tracking, LoggedModels: st.LoggedModels, Registry: st.Registry, Artifacts: st.Artifacts,
		Deployments: svc, Logger: st.Logger, Version: "test", Done: e.done}
	if serving {
		e.router = router.New(svc, router.Config{CacheDir: t.TempDir(), Logger: st.Logger, Wait: time.Second})
		e.api.Serving = e.router.Handler()
		e.api.ServingStatus = e.router.Status
	}
	for _, opt := range opts {
		opt(e.api)
	}
	e.srv = httptest.NewServer(e.api.Handler())
	t.Cleanup(e.srv.Close)
	if e.router != nil {
		if err := e.router.Open(context.Background()); err != nil {
			t.Fatalf("open router: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			e.router.Close(ctx)
		})
	}
	return e
}

// register registers an XGBoost fixture as the next version of model name.
func (e *deployEnv) register(t *testing.T, name, fixture string) {
	t.Helper()
	status, body := postModel(t, e.srv.URL, name, "", modelTar(t, [2]string{"model.json", xgbFixture(t, fixture)}))
	if status != http.StatusCreated {
		t.Fatalf("register %s: got %d %s", fixture, status, body)
	}
}

// call sends a JSON request (body: nil, a raw string, or a value to encode).
func (e *deployEnv) call(t *testing.T, method, path string, body any) (int, map[string]any) {
	t.Helper()
	return loggedModelCall(t, e.srv, method, path, body)
}

// must sends a request and fails the test unless it answers wantStatus.
func (e *deployEnv) must(t *testing.T, wantStatus int, method, path string, body any) map[string]any {
	t.Helper()
	status, out := e.call(t, method, path, body)
	if status != wantStatus {
		t.Fatalf("%s %s: got %d %v, want %d", method, path, status, out, wantStatus)
	}
	return out
}

// decodeAs re-decodes a JSON value into T.
func decodeAs[T any](t *testing.T, v any) T {
	t.Helper()
	var out T
	b, _ := json.Marshal(v)
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return out
}

// slotVersions returns role → "revision:model/version percent" of a deployment.
func slotVersions(d *deploy.Deployment) map[string]string {
	out := map[string]string{}
	for _, s := range d.Slots {
		out[s.Role] = fmt.Sprintf("%d:%s/%d %d", s.Revision, s.Model, s.Version, s.Percent)
	}
	return out
}

func TestDeploymentLifecycle(t *testing.T) {
	e := newDeployServer(t, false)
	e.register(t, "weather", "binary_logistic.json")
	e.register(t, "weather", "missing.json")

	out := e.must(t, http.StatusCreated, "POST", "/api/v1/deployments", map[string]any{"name": "weather", "spec": map[string]any{"model": "weather@1"}})
	d := decodeAs[deploy.Deployment](t, out["deployment"])
	if d.Name != "weather" || d.Generation != 1 || len(d.Slots) != 1 || slotVersions(&d)["primary"] != "1:weather/1 100" || d.Slots[0].Flavor != "xgboost" {
		t.Fatalf("created %+v, want generation 1 with primary revision 1 = weather/1 (xgboost) at 100%%", d)
	}

	out = e.must(t, http.StatusOK, "GET", "/api/v1/deployments", nil)
	list := decodeAs[[]deploy.Deployment](t, out["deployments"])
	if len(list) != 1 || list[0].Name != "weather" {
		t.Errorf("list: got %+v, want the one deployment", list)
	}

	// A canary, then its promotion: the canary's revision becomes the primary.
	out = e.must(t, http.StatusOK, "PATCH", "/api/v1/deployments/weather", map[string]any{"canary": "weather@2", "canary_percent": 25})
	d = decodeAs[deploy.Deployment](t, out["deployment"])
	if got := slotVersions(&d); d.Generation != 2 || got["primary"] != "1:weather/1 75" || got["canary"] != "2:weather/2 25" {
		t.Fatalf("update: got generation %d slots %v, want 2 with primary 1:weather/1 75%% and canary 2:weather/2 25%%", d.Generation, got)
	}
	out = e.must(t, http.StatusOK, "POST", "/api/v1/deployments/weather/promote", nil)
	d = decodeAs[deploy.Deployment](t, out["deployment"])
	if got := slotVersions(&d); got["primary"] != "2:weather/2 100" || got["canary"] != "" {
		t.Fatalf("promote: got slots %v, want revision 2 (weather/2) as the primary with all traffic", got)
	}
	// No canary left to promote.
	status, body := e.call(t, "POST", "/api/v1/deployments/weather/promote", nil)
	wantError(t, status, body, http.StatusBadRequest, "INVALID_STATE", "canary")

	// Rollback without a canary: the primary returns to weather/1. The body may be empty.
	out = e.must(t, http.StatusOK, "POST", "/api/v1/deployments/weather/rollback", nil)
	d = decodeAs[deploy.Deployment](t, out["deployment"])
	if p := d.Slot(deploy.RolePrimary); p == nil || p.Version != 1 || d.Slot(deploy.RoleCanary) != nil {
		t.Fatalf("rollback: got slots %v, want the primary back on weather/1", slotVersions(&d))
	}
	// A rollback with a reason and a canary that is not the current one is refused.
	e.must(t, http.StatusOK, "PATCH", "/api/v1/deployments/weather", map[string]any{"canary": "weather@2", "canary_percent": 10})
	status, body = e.call(t, "POST", "/api/v1/deployments/weather/rollback", map[string]any{"if_canary_revision": 999, "reason": "stale"})
	wantError(t, status, body, http.StatusBadRequest, "INVALID_STATE", "")
	out = e.must(t, http.StatusOK, "POST", "/api/v1/deployments/weather/rollback", map[string]any{"reason": "too slow"})
	d = decodeAs[deploy.Deployment](t, out["deployment"])
	if d.Slot(deploy.RoleCanary) != nil {
		t.Fatalf("rollback with a canary: got slots %v, want the canary removed", slotVersions(&d))
	}

	// GET has the deployment, its newest events (newest first) and no serving status (no data plane).
	out = e.must(t, http.StatusOK, "GET", "/api/v1/deployments/weather", nil)
	if out["serving"] != nil {
		t.Errorf("serving: got %v, want null from a server without a data plane", out["serving"])
	}
	evs := decodeAs[[]deploy.Event](t, out["events"])
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type)
	}
	if want := "rolled_back updated rolled_back promoted updated created"; strings.Join(types, " ") != want {
		t.Errorf("events: got %v, want %s", types, want)
	}
	if !strings.Contains(evs[0].Message, "too slow") {
		t.Errorf("the rollback event %q does not record its reason", evs[0].Message)
	}

	out = e.must(t, http.StatusOK, "GET", "/api/v1/deployments/weather/events?limit=2", nil)
	if evs := decodeAs[[]deploy.Event](t, out["events"]); len(evs) != 2 || evs[0].Type != "rolled_back" {
		t.Errorf("events?limit=2: got %+v, want the 2 newest", evs)
	}
	out = e.must(t, http.StatusOK, "GET", "/api/v1/deployments/weather/history", nil)
	hist := decodeAs[[]deploy.Deployment](t, out["deployments"])
	if len(hist) != 5 || hist[0].Generation != 5 || hist[4].Generation != 1 {
		gens := []int64{}
		for _, h := range hist {
			gens = append(gens, h.Generation)
		}
		t.Errorf("history: got generations %v, want 5 … 1 (the current, 6, is not history)", gens)
	}
	out = e.must(t, http.StatusOK, "GET", "/api/v1/deployments/weather/history?limit=1", nil)
	if hist := decodeAs[[]deploy.Deployment](t, out["deployments"]); len(hist) != 1 {
		t.Errorf("history?limit=1: got %d, want 1", len(hist))
	}

	// Delete: gone, but its events are kept.
	if out := e.must(t, http.StatusOK, "DELETE", "/api/v1/deployments/weather", nil); len(out) != 0 {
		t.Errorf("delete: got %v, want {}", out)
	}
	status, body = e.call(t, "GET", "/api/v1/deployments/weather", nil)
	wantError(t, status, body, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "weather")
	status, body = e.call(t, "DELETE", "/api/v1/deployments/weather", nil)
	wantError(t, status, body, http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST", "weather")
	out = e.must(t, http.StatusOK, "GET", "/api/v1/deployments/weather/events", nil)
	if evs := decodeAs[[]deploy.Event](t, out["events"]); len(evs) == 0 || evs[0].Type != "deleted" {
		t.Errorf("events after delete: got %+v, want the deleted event first", evs)
	}
	out = e.must(t, http.StatusOK, "GET", "/api/v1/deployments", nil)
	if list := out["deployments"].([]any); len(list) != 0 {
		t.Errorf("list after delete: got %v, want []", list)
	}
}

func TestDeploymentErrors(t *testing.T) {
	e := newDeployServer(t, false)
	e.register(t, "weather", "binary_logistic.json")
	e.must(t, http.StatusCreated, "POST", "/api/v1/deployments", map[string]any{"name": "weather", "spec": map[string]any{"model": "weather@1"}})

	for _, tc := range []struct {
		method, path string
		body         any
		status       int
		code, msg    string
	}{
		// Unknown deployments.
		{"GET", "/api/v1/deployments/nope", nil, 404, "RESOURCE_DOES_NOT_EXIST", "nope"},
		{"PATCH", "/api/v1/deployments/nope", map[string]any{"canary_percent": 10}, 404, "RESOURCE_DOES_NOT_EXIST", "nope"},
		{"POST", "/api/v1/deployments/nope/promote", nil, 404, "RESOURCE_DOES_NOT_EXIST", "nope"},
		{"POST", "/api/v1/deployments/nope/rollback", nil, 404, "RESOURCE_DOES_NOT_EXIST", "nope"},
		{"DELETE", "/api/v1/deployments/nope", nil, 404, "RESOURCE_DOES_NOT_EXIST", "nope"},
		{"GET", "/api/v1/deployments/nope/events", nil, 404, "RESOURCE_DOES_NOT_EXIST", "nope"},
		{"GET", "/api/v1/deployments/nope/history", nil, 404, "RESOURCE_DOES_NOT_EXIST", "nope"},
		// Bad requests to create.
		{"POST", "/api/v1/deployments", map[string]any{"name": "weather", "spec": map[string]any{"model": "weather@1"}}, 400, "RESOURCE_ALREADY_EXISTS", "weather"},
		{"POST", "/api/v1/deployments", map[string]any{"spec": map[string]any{"model": "weather@1"}}, 400, "INVALID_PARAMETER_VALUE", "'name'"},
		{"POST", "/api/v1/deployments", map[string]any{"name": "b"}, 400, "INVALID_PARAMETER_VALUE", "'spec'"},
		{"POST", "/api/v1/deployments", map[string]any{"name": "b", "spec": map[string]any{"model": "weather"}}, 400, "INVALID_PARAMETER_VALUE", "MODEL@VERSION"},
		{"POST", "/api/v1/deployments", map[string]any{"name": "b", "spec": map[string]any{"model": 3}}, 400, "INVALID_PARAMETER_VALUE", ""},
		{"POST", "/api/v1/deployments", map[string]any{"name": "b", "spec": map[string]any{"model": "weather@9"}}, 404, "RESOURCE_DOES_NOT_EXIST", "weather"},
		{"POST", "/api/v1/deployments", map[string]any{"name": "b", "spec": map[string]any{"model": "ghost@1"}}, 404, "RESOURCE_DOES_NOT_EXIST", "ghost"},
		{"POST", "/api/v1/deployments", map[string]any{"name": "b", "spec": map[string]any{"model": "weather@1", "canary": "weather@1", "canary_percent": 150}}, 400, "INVALID_PARAMETER_VALUE", ""},
		{"POST", "/api/v1/deployments", map[string]any{"name": "b/c", "spec": map[string]any{"model": "weather@1"}}, 400, "INVALID_PARAMETER_VALUE", ""},
		{"POST", "/api/v1/deployments", `{"name": "b", "spec": `, 400, "BAD_REQUEST", "Malformed JSON"},
		{"POST", "/api/v1/deployments", ``, 400, "INVALID_PARAMETER_VALUE", "empty"},
		// Bad updates and parameters.
		{"PATCH", "/api/v1/deployments/weather", map[string]any{"model": "weather"}, 400, "INVALID_PARAMETER_VALUE", "MODEL@VERSION"},
		{"PATCH", "/api/v1/deployments/weather", map[string]any{"canary": "weather@7", "canary_percent": 5}, 404, "RESOURCE_DOES_NOT_EXIST", "weather"},
		{"PATCH", "/api/v1/deployments/weather", `[1]`, 400, "INVALID_PARAMETER_VALUE", "JSON object"},
		{"POST", "/api/v1/deployments/weather/rollback", map[string]any{"if_canary_revision": "x"}, 400, "INVALID_PARAMETER_VALUE", "if_canary_revision"},
		{"GET", "/api/v1/deployments/weather/events?limit=0", nil, 400, "INVALID_PARAMETER_VALUE", "'limit'"},
		{"GET", "/api/v1/deployments/weather/history?limit=x", nil, 400, "INVALID_PARAMETER_VALUE", "'limit'"},
		{"GET", "/api/v1/serving/state?wait=forever", nil, 400, "INVALID_PARAMETER_VALUE", "'wait'"},
		{"GET", "/api/v1/serving/state?wait=1h", nil, 400, "INVALID_PARAMETER_VALUE", "'wait'"},
		// Nothing to roll back to: the primary never served another version.
		{"POST", "/api/v1/deployments/weather/rollback", nil, 400, "INVALID_STATE", ""},
	} {
		status, body := e.call(t, tc.method, tc.path, tc.body)
		t.Run(fmt.Sprintf("%s %s %v", tc.method, tc.path, tc.body), func(t *testing.T) {
			wantError(t, status, body, tc.status, tc.code, tc.msg)
		})
	}
	// None of the refused calls changed anything.
	out := e.must(t, http.StatusOK, "GET", "/api/v1/deployments/weather", nil)
	if d := decodeAs[deploy.Deployment](t, out["deployment"]); d.Generation != 1 {
		t.Errorf("got generation %d after refused calls, want 1", d.Generation)
	}
	out = e.must(t, http.StatusOK, "GET", "/api/v1/deployments", nil)
	if list := out["deployments"].([]any); len(list) != 1 {
		t.Errorf("got %d deployments after refused creations, want 1", len(list))
	}
}

func TestServingState(t *testing.T) {
	e := newDeployServer(t, false)
	e.register(t, "weather", "binary_logistic.json")
	e.register(t, "weather", "missing.json")

	out := e.must(t, http.StatusOK, "GET", "/api/v1/serving/state", nil)
	empty := decodeAs[deploy.State](t, out)
	if empty.ETag == "" || len(empty.Deployments) != 0 {
		t.Fatalf("empty state: got %+v, want an etag and no deployments", empty)
	}
	e.must(t, http.StatusCreated, "POST", "/api/v1/deployments", map[string]any{"name": "weather", "spec": map[string]any{"model": "weather@1"}})
	out = e.must(t, http.StatusOK, "GET", "/api/v1/serving/state?etag="+empty.ETag+"&wait=10s", nil)
	st := decodeAs[deploy.State](t, out)
	if st.ETag == empty.ETag || len(st.Deployments) != 1 || st.Deployments[0].Name != "weather" {
		t.Fatalf("state after create: got %+v, want a new etag and the deployment", st)
	}

	// Unchanged: the wait ends with the same state.
	out = e.must(t, http.StatusOK, "GET", "/api/v1/serving/state?etag="+st.ETag+"&wait=50ms", nil)
	if same := decodeAs[deploy.State](t, out); same.ETag != st.ETag {
		t.Errorf("no change: got etag %q, want %q", same.ETag, st.ETag)
	}

	// A long poll ends with the change made while it waits.
	got := make(chan deploy.State, 1)
	go func() {
		resp, err := http.Get(e.srv.URL + "/api/v1/serving/state?etag=" + st.ETag + "&wait=60s")
		if err != nil {
			got <- deploy.State{ETag: err.Error()}
			return
		}
		defer resp.Body.Close()
		var s deploy.State
		json.NewDecoder(resp.Body).Decode(&s)
		got <- s
	}()
	e.must(t, http.StatusOK, "PATCH", "/api/v1/deployments/weather", map[string]any{"model": "weather@2"})
	select {
	case s := <-got:
		if s.ETag == st.ETag || len(s.Deployments) != 1 || s.Deployments[0].Slots[0].Version != 2 {
			t.Errorf("long poll: got %+v, want the state serving weather/2", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the long poll did not end with the change")
	}
}

func TestServingStateEndsOnShutdown(t *testing.T) {
	e := newDeployServer(t, false)
	out := e.must(t, http.StatusOK, "GET", "/api/v1/serving/state", nil)
	etag := decodeAs[deploy.State](t, out).ETag
	type answer struct {
		status int
		body   map[string]any
	}
	got := make(chan answer, 1)
	go func() {
		status, body := e.call(t, "GET", "/api/v1/serving/state?etag="+etag+"&wait=5m", nil)
		got <- answer{status, body}
	}()
	// Close Done once the poll is surely waiting: poll until the server
	// holds a connection in the handler (a second, short poll returns).
	e.must(t, http.StatusOK, "GET", "/api/v1/serving/state?etag="+etag+"&wait=100ms", nil)
	close(e.done)
	select {
	case a := <-got:
		// Either answer ends the poll at once: 503 (ask again elsewhere),
		// or the unchanged state.
		if a.status == http.StatusOK {
			if a.body["etag"] != etag {
				t.Errorf("got %v, want the unchanged state", a.body)
			}
		} else {
			wantError(t, a.status, a.body, http.StatusServiceUnavailable, "TEMPORARILY_UNAVAILABLE", "shutting down")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the long poll did not end when the server began to shut down")
	}
}

func TestModelVersionFiles(t *testing.T) {
	e := newDeployServer(t, false)
	model := xgbFixture(t, "binary_logistic.json")
	status, body := postModel(t, e.srv.URL, "weather", "", modelTar(t, [2]string{"model.json", model}, [2]string{"notes/README.md", "hello"}))
	if status != http.StatusCreated {
		t.Fatalf("register: %d %s", status, body)
	}
	resp, err := http.Get(e.srv.URL + "/api/v1/models/weather/versions/1/files")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-tar" {
		t.Fatalf("got %d %s, want 200 application/x-tar", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	files := map[string]string{}
	tr := tar.NewReader(resp.Body)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			t.Errorf("entry %s of type %c, want regular files only", h.Name, h.Typeflag)
		}
		data, _ := io.ReadAll(tr)
		files[h.Name] = string(data)
	}
	if len(files) != 2 || files["model.json"] != model || files["notes/README.md"] != "hello" {
		names := []string{}
		for n := range files {
			names = append(names, n)
		}
		t.Errorf("got files %v, want model.json and notes/README.md byte for byte", names)
	}

	for path, want := range map[string][2]string{
		"/api/v1/models/weather/versions/2/files": {"404", "RESOURCE_DOES_NOT_EXIST"},
		"/api/v1/models/ghost/versions/1/files":   {"404", "RESOURCE_DOES_NOT_EXIST"},
		"/api/v1/models/weather/versions/x/files": {"400", "INVALID_PARAMETER_VALUE"},
		"/api/v1/models/weather/versions/0/files": {"400", "INVALID_PARAMETER_VALUE"},
	} {
		status, body := e.call(t, "GET", path, nil)
		if fmt.Sprint(status) != want[0] || body["error_code"] != want[1] {
			t.Errorf("GET %s: got %d %v, want %s %s", path, status, body, want[0], want[1])
		}
	}
}

func TestDeploymentsNotImplemented(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, p := range []string{"/api/v1/deployments", "/api/v1/serving/state", "/api/v1/models/a/versions/1/files", "/metrics"} {
		status, body := loggedModelCall(t, srv, "GET", p, nil)
		wantError(t, status, body, http.StatusNotImplemented, "NOT_IMPLEMENTED", "")
	}
	// Without a data plane the protocol paths say so.
	for _, p := range []string{"/v2/models/a/infer", "/v1/models/a:predict", "/serving-endpoints/a/invocations"} {
		status, body := loggedModelCall(t, srv, "POST", p, `{}`)
		wantError(t, status, body, http.StatusNotFound, "ENDPOINT_NOT_FOUND", "does not serve models")
	}
}

// recordingHandler records the requests the data plane got.
type recordingHandler struct {
	mu    sync.Mutex
	paths []string
	sizes []int
}

func (h *recordingHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	n, _ := io.Copy(io.Discard, r.Body)
	h.mu.Lock()
	h.paths = append(h.paths, r.Method+" "+r.URL.Path)
	h.sizes = append(h.sizes, int(n))
	h.mu.Unlock()
	w.WriteHeader(299)
}

func TestServingPathsSkipTheAPI(t *testing.T) {
	rec := &recordingHandler{}
	srv, _ := newTestServer(t, func(s *Server) {
		s.Serving = rec
		s.MaxBodyBytes = 1 << 10
	})
	big := `{"pad": "` + strings.Repeat("x", 64<<10) + `"}`
	for _, p := range []string{"/v2", "/v2/health/ready", "/v2/models/a/infer", "/v1/models/a:predict", "/serving-endpoints/a/invocations"} {
		resp, err := http.Post(srv.URL+p, "application/json", strings.NewReader(big))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 299 {
			t.Errorf("POST %s: got %d, want the data plane's 299", p, resp.StatusCode)
		}
	}
	rec.mu.Lock()
	if len(rec.paths) != 5 {
		t.Errorf("the data plane got %v, want the 5 protocol requests", rec.paths)
	}
	for i, n := range rec.sizes {
		if n != len(big) {
			t.Errorf("%s: the data plane read %d bytes, want all %d (no API body limit)", rec.paths[i], n, len(big))
		}
	}
	rec.mu.Unlock()
	// The API keeps its own routes and limits.
	status, body := loggedModelCall(t, srv, "POST", "/api/2.0/mlflow/experiments/create", big)
	wantError(t, status, body, http.StatusRequestEntityTooLarge, "RESOURCE_LIMIT_EXCEEDED", "")
	for _, p := range []string{"/healthz", "/v2x", "/v1/other"} {
		status, _ := loggedModelCall(t, srv, "GET", p, nil)
		if p == "/healthz" && status != 200 || p != "/healthz" && status != 404 {
			t.Errorf("GET %s: got %d", p, status)
		}
	}
	rec.mu.Lock()
	if len(rec.paths) != 5 {
		t.Errorf("the data plane got API requests: %v", rec.paths[5:])
	}
	rec.mu.Unlock()
}

func TestMetricsEndpoint(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "mloop_test_total", Help: "A test counter."})
	reg.MustRegister(c)
	c.Add(3)
	srv, _ := newTestServer(t, func(s *Server) { s.Metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{}) })
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte("mloop_test_total 3")) {
		t.Errorf("got %d %s, want the registry's metrics", resp.StatusCode, b)
	}
}

// TestDeploymentServedInProcess runs the real data plane behind the API:
// a deployment created over HTTP is served at the same address, its status
// is in GET /api/v1/deployments/{name}, and a large prediction body is not
// held to the API's JSON limit.
func TestDeploymentServedInProcess(t *testing.T) {
	e := newDeployServer(t, true, func(s *Server) { s.MaxBodyBytes = 1 << 10 })
	e.register(t, "weather", "binary_logistic.json")
	e.must(t, http.StatusCreated, "POST", "/api/v1/deployments", map[string]any{"name": "weather", "spec": map[string]any{"model": "weather@1"}})
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, err := http.Get(e.srv.URL + "/v2/models/weather/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the deployment is not ready after 60s: %v", e.must(t, 200, "GET", "/api/v1/deployments/weather", nil))
		}
		time.Sleep(20 * time.Millisecond)
	}
	rows := make([]string, 200)
	for i := range rows {
		rows[i] = "[1.5, 12.5, 3.1, 4.0, 5, 120, 1]"
	}
	req := `{"instances": [` + strings.Join(rows, ",") + `]}`
	if len(req) <= 1<<10 {
		t.Fatal("the request must exceed the API's body limit")
	}
	resp, err := http.Post(e.srv.URL+"/v1/models/weather:predict", "application/json", strings.NewReader(req))
	if err != nil {
		t.Fatal(err)
	}
	var pred struct {
		Predictions []float64 `json:"predictions"`
	}
	err = json.NewDecoder(resp.Body).Decode(&pred)
	resp.Body.Close()
	if resp.StatusCode != 200 || err != nil || len(pred.Predictions) != 200 {
		t.Fatalf("predict: got %d %v %d predictions, want 200 predictions", resp.StatusCode, err, len(pred.Predictions))
	}
	if resp.Header.Get(deploy.RevisionHeader) != "1" || resp.Header.Get(deploy.ModelVersionHeader) != "weather/1" {
		t.Errorf("got revision %q model version %q, want 1 and weather/1", resp.Header.Get(deploy.RevisionHeader), resp.Header.Get(deploy.ModelVersionHeader))
	}

	out := e.must(t, http.StatusOK, "GET", "/api/v1/deployments/weather", nil)
	st := decodeAs[*router.DeploymentStatus](t, out["serving"])
	if st == nil || !st.Ready || st.Generation != 1 || len(st.Revisions) != 1 || st.Revisions[0].State != "ready" || st.Revisions[0].Requests < 1 {
		t.Errorf("serving: got %+v, want generation 1 ready with revision 1 having answered", out["serving"])
	}
}

// FuzzParseWait checks that any wait parameter gives a duration from 0 to
// deploy.MaxStateWait or an EINVALID error.
func FuzzParseWait(f *testing.F) {
	for _, s := range []string{"30s", "1.5", "0", "-1s", "5m", "5m1s", "1e300", "NaN", "Inf", "-0", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := parseWait(s)
		if err != nil {
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Fatalf("parseWait(%q): got %v, want EINVALID", s, err)
			}
			return
		}
		if d < 0 || d > deploy.MaxStateWait {
			t.Fatalf("parseWait(%q) = %v, outside [0, %v]", s, d, deploy.MaxStateWait)
		}
	})
}
