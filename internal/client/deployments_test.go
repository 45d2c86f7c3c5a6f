package client

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/httpapi"
	"github.com/mloop/mloop/internal/pipeline/pipelinetest"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/router"
	"github.com/mloop/mloop/internal/sqlstore"
)

// deployServer is the real HTTP API with the real deployment service
// (and, when asked, the real data plane) on SQLite and a local artifact
// folder.
type deployServer struct {
	c      *Client
	srv    *httptest.Server
	router *router.Router
}

func newDeployServer(t *testing.T, serving bool) *deployServer {
	t.Helper()
	st := pipelinetest.NewStack(t)
	svc := deploy.NewService(sqlstore.NewDeploymentStore(st.DB), st.Registry, st.Artifacts)
	svc.Logger = st.Logger
	if err := svc.Open(context.Background()); err != nil {
		t.Fatalf("open deployments: %v", err)
	}
	t.Cleanup(func() { svc.Close() })
	api := &httpapi.Server{Tracking: st.Tracking, LoggedModels: st.LoggedModels, Registry: st.Registry,
		Artifacts: st.Artifacts, Deployments: svc, Logger: st.Logger, Version: "test"}
	ds := &deployServer{}
	if serving {
		ds.router = router.New(svc, router.Config{CacheDir: t.TempDir(), Logger: st.Logger, Wait: time.Second})
		api.Serving, api.ServingStatus = ds.router.Handler(), ds.router.Status
	}
	ds.srv = httptest.NewServer(api.Handler())
	t.Cleanup(ds.srv.Close)
	if ds.router != nil {
		if err := ds.router.Open(context.Background()); err != nil {
			t.Fatalf("open router: %v", err)
		}
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ds.router.Close(ctx)
		})
	}
	ds.c = New(ds.srv.URL, nil)
	return ds
}

// registerFixture registers an XGBoost model of the runtime's tests as the
// next version of name, with extra files beside it.
func registerFixture(t *testing.T, c *Client, name, fixture string, extra map[string]string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "serving", "xgboost", "testdata", fixture))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	files := map[string]string{"model.json": string(data)}
	for k, v := range extra {
		files[k] = v
	}
	for rel, content := range files {
		p := filepath.Join(dir, filepath.FromSlash(rel))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := c.RegisterModel(context.Background(), name, dir, "", ""); err != nil {
		t.Fatalf("register %s: %v", fixture, err)
	}
}

func TestDeploymentCalls(t *testing.T) {
	ds := newDeployServer(t, false)
	c, ctx := ds.c, context.Background()
	registerFixture(t, c, "weather", "binary_logistic.json", nil)
	registerFixture(t, c, "weather", "missing.json", nil)

	d, err := c.CreateDeployment(ctx, "weather", deploy.Spec{Model: deploy.Ref{Model: "weather", Version: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if d.Generation != 1 || d.Slot(deploy.RolePrimary) == nil || d.Slot(deploy.RolePrimary).Version != 1 {
		t.Fatalf("create: got %+v", d)
	}
	if _, err := c.CreateDeployment(ctx, "weather", deploy.Spec{Model: deploy.Ref{Model: "weather", Version: 1}}); mloop.ErrorCode(err) != mloop.EEXISTS {
		t.Errorf("create twice: got %v, want EEXISTS", err)
	}
	if _, err := c.CreateDeployment(ctx, "other", deploy.Spec{Model: deploy.Ref{Model: "weather", Version: 5}}); !mloop.IsNotFound(err) {
		t.Errorf("create on a missing version: got %v, want ENOTFOUND", err)
	}

	canary, pct := deploy.Ref{Model: "weather", Version: 2}, 40
	d, err = c.UpdateDeployment(ctx, "weather", deploy.Update{Canary: &canary, CanaryPercent: &pct})
	if err != nil {
		t.Fatal(err)
	}
	if s := d.Slot(deploy.RoleCanary); s == nil || s.Version != 2 || s.Percent != 40 || d.Generation != 2 {
		t.Fatalf("update: got %+v, want a canary weather/2 at 40%%", d)
	}
	canaryRev := d.Slot(deploy.RoleCanary).Revision

	info, err := c.GetDeployment(ctx, "weather")
	if err != nil {
		t.Fatal(err)
	}
	if info.Deployment.Generation != 2 || len(info.Events) != 2 || info.Events[0].Type != deploy.EventUpdated || info.Serving != nil {
		t.Errorf("get: got %+v with events %+v, want generation 2, updated then created, no serving status", info.Deployment, info.Events)
	}
	list, err := c.ListDeployments(ctx)
	if err != nil || len(list) != 1 || list[0].Name != "weather" {
		t.Errorf("list: got %v %v", list, err)
	}

	d, err = c.PromoteDeployment(ctx, "weather")
	if err != nil {
		t.Fatal(err)
	}
	if p := d.Slot(deploy.RolePrimary); p == nil || p.Revision != canaryRev || p.Percent != 100 || d.Slot(deploy.RoleCanary) != nil {
		t.Fatalf("promote: got %+v, want revision %d as the primary", d, canaryRev)
	}
	if _, err := c.PromoteDeployment(ctx, "weather"); mloop.ErrorCode(err) != mloop.ECONFLICT {
		t.Errorf("promote without a canary: got %v, want ECONFLICT", err)
	}
	// The ControlPlane's Rollback: the primary returns to weather/1.
	d, err = c.Rollback(ctx, "weather", deploy.RollbackRequest{Reason: "regression"})
	if err != nil {
		t.Fatal(err)
	}
	if p := d.Slot(deploy.RolePrimary); p == nil || p.Version != 1 {
		t.Fatalf("rollback: got %+v, want the primary on weather/1", d)
	}
	evs, err := c.DeploymentEvents(ctx, "weather", 2)
	if err != nil || len(evs) != 2 || evs[0].Type != deploy.EventRolledBack || evs[1].Type != deploy.EventPromoted {
		t.Errorf("events: got %+v %v, want rolled_back then promoted", evs, err)
	}
	hist, err := c.DeploymentHistory(ctx, "weather", 0)
	if err != nil || len(hist) != 3 || hist[0].Generation != 3 {
		t.Errorf("history: got %d generations %v, want 3, newest first", len(hist), err)
	}

	if err := c.DeleteDeployment(ctx, "weather"); err != nil {
		t.Fatal(err)
	}
	for name, err := range map[string]error{
		"get":      errOf(c.GetDeployment(ctx, "weather")),
		"update":   errOf(c.UpdateDeployment(ctx, "weather", deploy.Update{CanaryPercent: &pct})),
		"promote":  errOf(c.PromoteDeployment(ctx, "weather")),
		"rollback": errOf(c.RollbackDeployment(ctx, "weather", deploy.RollbackRequest{})),
		"delete":   c.DeleteDeployment(ctx, "weather"),
		"history":  errOf(c.DeploymentHistory(ctx, "weather", 0)),
		"events":   errOf(c.DeploymentEvents(ctx, "never", 0)),
	} {
		if !mloop.IsNotFound(err) {
			t.Errorf("%s after delete: got %v, want ENOTFOUND", name, err)
		}
	}
}

// errOf returns the error of a call's two results.
func errOf[T any](_ T, err error) error { return err }

func TestStateLongPoll(t *testing.T) {
	ds := newDeployServer(t, false)
	c, ctx := ds.c, context.Background()
	registerFixture(t, c, "weather", "binary_logistic.json", nil)

	st, err := c.State(ctx, "", 0)
	if err != nil || st.ETag == "" || len(st.Deployments) != 0 {
		t.Fatalf("state: got %+v %v, want an etag and nothing deployed", st, err)
	}
	same, err := c.State(ctx, st.ETag, 20*time.Millisecond)
	if err != nil || same.ETag != st.ETag {
		t.Fatalf("unchanged state: got %+v %v, want etag %s", same, err, st.ETag)
	}
	got := make(chan *deploy.State, 1)
	go func() {
		s, err := c.State(ctx, st.ETag, time.Minute)
		if err != nil {
			t.Errorf("long poll: %v", err)
		}
		got <- s
	}()
	if _, err := c.CreateDeployment(ctx, "weather", deploy.Spec{Model: deploy.Ref{Model: "weather", Version: 1}}); err != nil {
		t.Fatal(err)
	}
	select {
	case s := <-got:
		if s == nil || s.ETag == st.ETag || len(s.Deployments) != 1 {
			t.Errorf("long poll: got %+v, want the new deployment", s)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the long poll did not return with the change")
	}
}

func TestStateGivesUpOnASilentServer(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer srv.Close()
	defer close(release)
	old := stateTimeoutMargin
	stateTimeoutMargin = 50 * time.Millisecond
	defer func() { stateTimeoutMargin = old }()
	_, err := New(srv.URL, nil).State(context.Background(), "e1", 10*time.Millisecond)
	if err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v, want the call to give up (deadline exceeded)", err)
	}
}

func TestFetchModel(t *testing.T) {
	ds := newDeployServer(t, false)
	c, ctx := ds.c, context.Background()
	registerFixture(t, c, "weather", "binary_logistic.json", map[string]string{"notes/README.md": "hello"})
	dir := t.TempDir()
	if err := c.FetchModel(ctx, "weather", 1, dir); err != nil {
		t.Fatal(err)
	}
	want, _ := os.ReadFile(filepath.Join("..", "serving", "xgboost", "testdata", "binary_logistic.json"))
	if got, err := os.ReadFile(filepath.Join(dir, "model.json")); err != nil || !bytes.Equal(got, want) {
		t.Errorf("model.json: got %d bytes (%v), want the registered file", len(got), err)
	}
	if got, err := os.ReadFile(filepath.Join(dir, "notes", "README.md")); err != nil || string(got) != "hello" {
		t.Errorf("notes/README.md: got %q %v", got, err)
	}
	if err := c.FetchModel(ctx, "weather", 2, t.TempDir()); !mloop.IsNotFound(err) {
		t.Errorf("unknown version: got %v, want ENOTFOUND", err)
	}
}

// TestFetchModelRefusesHostileArchives checks that a server cannot make
// FetchModel write outside its folder.
func TestFetchModelRefusesHostileArchives(t *testing.T) {
	for name, entry := range map[string]*tar.Header{
		"parent":   {Typeflag: tar.TypeReg, Name: "../evil.txt", Size: 4, Mode: 0o644},
		"absolute": {Typeflag: tar.TypeReg, Name: "/tmp/evil.txt", Size: 4, Mode: 0o644},
		"symlink":  {Typeflag: tar.TypeSymlink, Name: "link", Linkname: "/etc/passwd"},
	} {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/x-tar")
				tw := tar.NewWriter(w)
				tw.WriteHeader(entry)
				if entry.Size > 0 {
					tw.Write([]byte("evil"))
				}
				tw.Close()
			}))
			defer srv.Close()
			parent := t.TempDir()
			dir := filepath.Join(parent, "model")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			err := New(srv.URL, nil).FetchModel(context.Background(), "m", 1, dir)
			if mloop.ErrorCode(err) != mloop.EINVALID {
				t.Errorf("got %v, want EINVALID", err)
			}
			if _, err := os.Stat(filepath.Join(parent, "evil.txt")); err == nil {
				t.Errorf("a file was written outside the model folder")
			}
		})
	}
}

// TestPredictThroughTheDataPlane sends the same rows in the three
// protocols to a deployment served by the real data plane.
func TestPredictThroughTheDataPlane(t *testing.T) {
	ds := newDeployServer(t, true)
	c, ctx := ds.c, context.Background()
	registerFixture(t, c, "weather", "binary_logistic.json", nil)
	if _, err := c.CreateDeployment(ctx, "weather", deploy.Spec{Model: deploy.Ref{Model: "weather", Version: 1}}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		ready, err := c.ModelReady(ctx, "weather")
		if err != nil {
			t.Fatal(err)
		}
		if ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the deployment is not ready after a minute")
		}
		time.Sleep(20 * time.Millisecond)
	}
	bodies := map[string]string{
		ProtocolOIP:      `{"inputs": [{"name": "input", "shape": [2, 7], "datatype": "FP32", "data": [[11.7, 7.2, 1.7, 6.2, NaN, 78, 0], [2.5, 14.4, 8.9, 3.1, 3, 70, 1]]}]}`,
		ProtocolKServeV1: `{"instances": [[11.7, 7.2, 1.7, 6.2, null, 78, 0], [2.5, 14.4, 8.9, 3.1, 3, 70, 1]]}`,
		ProtocolMLflow:   `{"dataframe_split": {"columns": ["precipitation", "temp_max", "temp_min", "wind", "month", "day_of_year", "seattle"], "data": [[11.7, 7.2, 1.7, 6.2, null, 78, 0], [2.5, 14.4, 8.9, 3.1, 3, 70, 1]]}}`,
	}
	var first []string
	for protocol, body := range bodies {
		if p, err := DetectProtocol([]byte(body)); err != nil || p != protocol {
			t.Errorf("DetectProtocol: got %q %v, want %s", p, err, protocol)
		}
		res, err := c.Predict(ctx, PredictRequest{Deployment: "weather", Protocol: protocol, Body: []byte(body)})
		if err != nil {
			t.Fatalf("%s: %v", protocol, err)
		}
		if res.Revision != "1" || res.ModelVersion != "weather/1" || res.RequestID == "" {
			t.Errorf("%s: answered by revision %q model %q request %q, want 1, weather/1 and an id", protocol, res.Revision, res.ModelVersion, res.RequestID)
		}
		rows, err := PredictionRows(protocol, res.Body)
		if err != nil || len(rows) != 2 {
			t.Fatalf("%s: rows %v %v of %s", protocol, rows, err, res.Body)
		}
		if first == nil {
			first = rows
		} else if strings.Join(rows, ";") != strings.Join(first, ";") {
			t.Errorf("%s: got %v, want the same predictions as the other protocols (%v)", protocol, rows, first)
		}
	}
	// Pinned to the primary by role.
	res, err := c.Predict(ctx, PredictRequest{Deployment: "weather", Protocol: ProtocolKServeV1, Body: []byte(bodies[ProtocolKServeV1]), Revision: "primary"})
	if err != nil || res.Revision != "1" {
		t.Errorf("pinned: got %+v %v", res, err)
	}

	_, err = c.Predict(ctx, PredictRequest{Deployment: "nope", Protocol: ProtocolOIP, Body: []byte(bodies[ProtocolOIP])})
	if !mloop.IsNotFound(err) {
		t.Errorf("unknown deployment: got %v, want ENOTFOUND", err)
	}
	_, err = c.Predict(ctx, PredictRequest{Deployment: "weather", Protocol: ProtocolKServeV1, Body: []byte(`{"instances": [[1, 2]]}`)})
	if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(mloop.ErrorMessage(err), "400") {
		t.Errorf("wrong shape: got %v, want EINVALID with the server's 400 message", err)
	}
}
