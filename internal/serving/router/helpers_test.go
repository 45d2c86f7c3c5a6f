package router

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// serverModeEnv selects, when set, the OIP test server mode this test
// binary runs as (see testServer).
const serverModeEnv = "MLOOP_ROUTER_TEST_SERVER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(serverModeEnv); mode != "" {
		os.Exit(testServer(mode))
	}
	os.Exit(m.Run())
}

// testServer is a tiny Open Inference Protocol server, run as a model
// process by re-executing the test binary. POST /v2/models/NAME/infer sums
// each row of one 2-D input (answering output "sum", FP32); POST
// /v1/models/NAME:predict does the same for {"instances": [[…], …]}.
// Modes:
//
//	serve  answer
//	fail   answer 500 to every inference request
//	block  wait until $RELEASE_FILE exists before each inference answer
func testServer(mode string) int {
	name := os.Getenv("MLOOP_MODEL_NAME")
	answer := func(w http.ResponseWriter, status int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(v)
	}
	sums := func(rows [][]float64) []float64 {
		out := make([]float64, len(rows))
		for i, r := range rows {
			for _, v := range r {
				out[i] += v
			}
		}
		return out
	}
	gate := func(w http.ResponseWriter, r *http.Request) bool {
		switch mode {
		case "fail":
			answer(w, http.StatusInternalServerError, map[string]string{"error": "model exploded"})
			return false
		case "block":
			for {
				if _, err := os.Stat(os.Getenv("RELEASE_FILE")); err == nil {
					return true
				}
				select {
				case <-r.Context().Done():
					return false
				case <-time.After(5 * time.Millisecond):
				}
			}
		}
		return true
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v2/health/ready", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /v2/models/{name}", func(w http.ResponseWriter, r *http.Request) {
		answer(w, 200, map[string]any{"name": r.PathValue("name"), "platform": "test-sum", "versions": []string{}})
	})
	mux.HandleFunc("POST /v2/models/{name}/infer", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("name") != name {
			answer(w, http.StatusNotFound, map[string]string{"error": "unknown model " + r.PathValue("name")})
			return
		}
		var req struct {
			ID     string `json:"id"`
			Inputs []struct {
				Shape []int     `json:"shape"`
				Data  []float64 `json:"data"`
			} `json:"inputs"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil || len(req.Inputs) != 1 || len(req.Inputs[0].Shape) != 2 ||
			req.Inputs[0].Shape[0]*req.Inputs[0].Shape[1] != len(req.Inputs[0].Data) {
			answer(w, http.StatusBadRequest, map[string]string{"error": "want one 2-D input"})
			return
		}
		if !gate(w, r) {
			return
		}
		in := req.Inputs[0]
		var rows [][]float64
		for i := range in.Shape[0] {
			rows = append(rows, in.Data[i*in.Shape[1]:(i+1)*in.Shape[1]])
		}
		answer(w, 200, map[string]any{"id": req.ID, "model_name": name, "outputs": []any{
			map[string]any{"name": "sum", "datatype": "FP32", "shape": []int{len(rows)}, "data": sums(rows)},
		}})
	})
	mux.HandleFunc("POST /v1/models/{verb}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("verb") != name+":predict" {
			answer(w, http.StatusNotFound, map[string]string{"error": "unknown path " + r.URL.Path})
			return
		}
		var req struct {
			Instances [][]float64 `json:"instances"`
		}
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			answer(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
			return
		}
		if !gate(w, r) {
			return
		}
		answer(w, 200, map[string]any{"predictions": sums(req.Instances)})
	})
	l, err := net.Listen("tcp", "127.0.0.1:"+os.Getenv("PORT"))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := http.Serve(l, mux); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// files writes a model version's files into dir.
type files func(dir string) error

// xgbFiles is a model version holding an XGBoost fixture as model.json (or
// model.ubj).
func xgbFiles(fixture string) files {
	return func(dir string) error {
		data, err := os.ReadFile(filepath.Join("..", "xgboost", "testdata", fixture))
		if err != nil {
			return err
		}
		name := "model.json"
		if strings.HasSuffix(fixture, ".ubj") {
			name = "model.ubj"
		}
		return os.WriteFile(filepath.Join(dir, name), data, 0o644)
	}
}

// procFiles is a process model version running this test binary as a
// server in mode, with extra environment variables.
func procFiles(mode string, env map[string]string) files {
	return func(dir string) error {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		e := map[string]string{serverModeEnv: mode}
		for k, v := range env {
			e[k] = v
		}
		b, err := json.Marshal(map[string]any{"command": []string{self}, "env": e})
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dir, "serve.json"), b, 0o644)
	}
}

// rollbackCall is one call of fakeCP.Rollback.
type rollbackCall struct {
	Name string
	Req  deploy.RollbackRequest
}

// fakeCP is an in-memory deploy.ControlPlane: State serves the deployments
// the test puts, FetchModel writes the registered files, and Rollback
// removes the canary (conditionally, as the real one does) and records the
// call.
type fakeCP struct {
	mu          sync.Mutex
	deps        map[string]*deploy.Deployment
	version     int
	changed     chan struct{}
	models      map[string]files
	rollbacks   []rollbackCall
	rollbackErr []error // returned by the next calls, in order
	fetches     map[string]int
}

func newFakeCP() *fakeCP {
	return &fakeCP{
		deps:    make(map[string]*deploy.Deployment),
		changed: make(chan struct{}),
		models:  make(map[string]files),
		fetches: make(map[string]int),
	}
}

var _ deploy.ControlPlane = (*fakeCP)(nil)

// model registers a model version's files.
func (f *fakeCP) model(name string, version int64, fs files) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.models[name+"/"+strconv.FormatInt(version, 10)] = fs
}

// put creates or replaces a deployment (its generation is bumped).
func (f *fakeCP) put(d *deploy.Deployment) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if old := f.deps[d.Name]; old != nil && d.Generation <= old.Generation {
		d.Generation = old.Generation + 1
	} else if d.Generation == 0 {
		d.Generation = 1
	}
	f.deps[d.Name] = d
	f.bump()
}

// del removes a deployment.
func (f *fakeCP) del(name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.deps, name)
	f.bump()
}

func (f *fakeCP) bump() {
	f.version++
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeCP) snapshot() *deploy.State {
	st := &deploy.State{ETag: "v" + strconv.Itoa(f.version)}
	for _, d := range f.deps {
		c := *d
		c.Slots = append([]deploy.Slot(nil), d.Slots...)
		st.Deployments = append(st.Deployments, &c)
	}
	return st
}

func (f *fakeCP) State(ctx context.Context, etag string, wait time.Duration) (*deploy.State, error) {
	f.mu.Lock()
	st, ch := f.snapshot(), f.changed
	f.mu.Unlock()
	if etag != st.ETag || wait <= 0 {
		return st, nil
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snapshot(), nil
}

func (f *fakeCP) Rollback(ctx context.Context, name string, req deploy.RollbackRequest) (*deploy.Deployment, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.rollbacks = append(f.rollbacks, rollbackCall{name, req})
	if len(f.rollbackErr) > 0 {
		err := f.rollbackErr[0]
		f.rollbackErr = f.rollbackErr[1:]
		if err != nil {
			return nil, err
		}
	}
	d := f.deps[name]
	if d == nil {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "no deployment %q", name)
	}
	c := d.Slot(deploy.RoleCanary)
	if c == nil || req.IfCanaryRevision != 0 && c.Revision != req.IfCanaryRevision {
		return nil, mloop.Errorf(mloop.ECONFLICT, "the canary is not revision %d", req.IfCanaryRevision)
	}
	n := *d
	n.Slots = nil
	for _, s := range d.Slots {
		switch s.Role {
		case deploy.RoleCanary:
		case deploy.RolePrimary:
			s.Percent = 100
			n.Slots = append(n.Slots, s)
		default:
			n.Slots = append(n.Slots, s)
		}
	}
	n.Spec.Canary, n.Spec.CanaryPercent = nil, 0
	n.Generation++
	f.deps[name] = &n
	f.bump()
	return &n, nil
}

func (f *fakeCP) FetchModel(ctx context.Context, model string, version int64, dir string) error {
	f.mu.Lock()
	key := model + "/" + strconv.FormatInt(version, 10)
	fs := f.models[key]
	f.fetches[key]++
	f.mu.Unlock()
	if fs == nil {
		return mloop.Errorf(mloop.ENOTFOUND, "model version %s does not exist", key)
	}
	return fs(dir)
}

func (f *fakeCP) rollbackCalls() []rollbackCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]rollbackCall(nil), f.rollbacks...)
}

// slot returns a deployment slot.
func slot(role string, rev int64, model string, version int64, flavor string, percent int) deploy.Slot {
	return deploy.Slot{Role: role, Revision: rev, Ref: deploy.Ref{Model: model, Version: version},
		Model: model, Version: version, Flavor: flavor, Percent: percent}
}

// newDep returns a deployment of the given slots.
func newDep(name string, slots ...deploy.Slot) *deploy.Deployment {
	d := &deploy.Deployment{Name: name, Slots: slots}
	for _, s := range slots {
		ref := s.Ref
		switch s.Role {
		case deploy.RolePrimary:
			d.Spec.Model = ref
		case deploy.RoleCanary:
			d.Spec.Canary, d.Spec.CanaryPercent = &ref, s.Percent
		case deploy.RoleShadow:
			d.Spec.Shadow = &ref
		}
		d.NextRevision = max(d.NextRevision, s.Revision+1)
	}
	return d
}

// quiet is a logger that discards.
func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// newRouter returns a Router over cp with a temporary cache, synced, and
// its HTTP test server; both are closed at the end of the test.
func newRouter(t *testing.T, cp deploy.ControlPlane, cfg Config, open bool) (*Router, *httptest.Server) {
	t.Helper()
	if cfg.CacheDir == "" {
		cfg.CacheDir = t.TempDir()
	}
	if cfg.Logger == nil {
		cfg.Logger = quiet()
	}
	r := New(cp, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if open {
		if err := r.Open(ctx); err != nil {
			t.Fatalf("Open: %v", err)
		}
	} else if err := r.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
	srv := httptest.NewServer(r.Handler())
	t.Cleanup(func() {
		srv.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := r.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r, srv
}

// mustSync syncs r with its control plane.
func mustSync(t *testing.T, r *Router) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := r.Sync(ctx); err != nil {
		t.Fatalf("Sync: %v", err)
	}
}

// response is an answer read whole.
type response struct {
	status int
	header http.Header
	body   string
}

// do sends a request with optional headers (name, value pairs).
func do(t testing.TB, client *http.Client, method, url, body string, headers ...string) response {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	if client == nil {
		client = http.DefaultClient
	}
	resp, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return response{resp.StatusCode, resp.Header, string(b)}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting until %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fixture is an XGBoost fixture's rows and the predictions XGBoost made.
type fixture struct {
	Features    []string     `json:"features"`
	Rows        [][]*float64 `json:"rows"`
	Predictions [][]float64  `json:"predictions"`
	Objective   string       `json:"objective"`
}

// loadFixture reads testdata's NAME.expected.json.
func loadFixture(t testing.TB, name string) fixture {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "xgboost", "testdata", name+".expected.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f fixture
	if err := json.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	return f
}

// expected returns the fixture's expected predictions of rows, flat.
func (f fixture) expected(rows ...int) []float64 {
	var v []float64
	for _, i := range rows {
		v = append(v, f.Predictions[i]...)
	}
	return v
}

// oipBody returns an OIP request for rows of the fixture, as one 2-D input.
func (f fixture) oipBody(id string, rows ...int) string {
	var data []string
	for _, i := range rows {
		for _, v := range f.Rows[i] {
			if v == nil {
				data = append(data, "null")
			} else {
				data = append(data, strconv.FormatFloat(*v, 'g', -1, 64))
			}
		}
	}
	idPart := ""
	if id != "" {
		idPart = `"id":` + strconv.Quote(id) + `,`
	}
	return fmt.Sprintf(`{%s"inputs":[{"name":"x","shape":[%d,%d],"datatype":"FP64","data":[%s]}]}`,
		idPart, len(rows), len(f.Features), strings.Join(data, ","))
}

// oipOutputs reads the data of an OIP answer's first output.
func oipOutputs(t testing.TB, body string) []float64 {
	t.Helper()
	var v struct {
		Outputs []struct {
			Data []float64 `json:"data"`
		} `json:"outputs"`
	}
	if err := json.Unmarshal([]byte(body), &v); err != nil || len(v.Outputs) == 0 {
		t.Fatalf("not an OIP answer (%v): %s", err, body)
	}
	return v.Outputs[0].Data
}

// near reports whether got is within 1e-6 of want.
func near(got, want []float64) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if math.Abs(got[i]-want[i]) > 1e-6 {
			return false
		}
	}
	return true
}
