package deploy_test

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/modelcheck"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

// The Service is tested over the real SQLite store, the real tracking and
// registry services and a real artifact store in a temp folder, wired as
// the server wires them; models are registered through the real
// modelcheck.Registrar from the XGBoost runtime's test fixtures. The store
// runs its conformance suite on SQLite and PostgreSQL in sqlstore.

// env is a deployment Service with everything behind it.
type env struct {
	db        *sqlstore.DB
	store     *sqlstore.DeploymentStore
	tracking  *tracking.Service
	reg       *registry.Service
	arts      *artifact.Store
	registrar *modelcheck.Registrar
	svc       *deploy.Service
	logs      *lockedBuffer
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers (loggers).
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// newEnv returns a Service over a fresh SQLite database and artifact
// folder; its logs go to e.logs.
func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	db, err := sqlstore.Open(ctx, filepath.Join(dir, "mloop.db"))
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	arts, err := artifact.Open(ctx, filepath.Join(dir, "artifacts"))
	if err != nil {
		t.Fatalf("open artifact store: %v", err)
	}
	t.Cleanup(func() { arts.Close() })
	e := &env{db: db, store: sqlstore.NewDeploymentStore(db), arts: arts, logs: &lockedBuffer{}}
	e.tracking = tracking.NewService(sqlstore.NewTrackingStore(db))
	e.reg = registry.NewService(sqlstore.NewRegistryStore(db), e.tracking, nil)
	e.registrar = &modelcheck.Registrar{Tracking: e.tracking, Registry: e.reg, Artifacts: arts, TempDir: t.TempDir(),
		Logger: slog.New(slog.NewTextHandler(e.logs, nil))}
	e.svc = e.newService(t)
	return e
}

// newService returns another Service over the same database, as another
// server would run.
func (e *env) newService(t *testing.T) *deploy.Service {
	t.Helper()
	s := deploy.NewService(e.store, e.reg, e.arts)
	s.Logger = slog.New(slog.NewTextHandler(e.logs, nil))
	t.Cleanup(func() { s.Close() })
	return s
}

// fixture returns the bytes of an XGBoost test model of the runtime.
func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "xgboost", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// makeTar returns a tar archive of files (relative path → content).
func makeTar(t *testing.T, files map[string][]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(files[n])), Typeflag: tar.TypeReg}); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write(files[n]); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// register registers files as a new version of model through the
// Registrar and returns its number.
func (e *env) register(t *testing.T, model string, files map[string][]byte) int64 {
	t.Helper()
	r, err := e.registrar.Register(context.Background(), modelcheck.RegisterRequest{Name: model}, bytes.NewReader(makeTar(t, files)))
	if err != nil {
		t.Fatalf("register a version of %s: %v", model, err)
	}
	return r.Version
}

// registerXGBoost registers n versions of model, each an XGBoost model.
func (e *env) registerXGBoost(t *testing.T, model string, n int) {
	t.Helper()
	for range n {
		e.register(t, model, map[string][]byte{"model.json": fixture(t, "tiny_categorical.json")})
	}
}

// registerSource registers a version of model (created when missing)
// whose files are at source, without the Registrar (so without a flavor
// tag), and returns its number.
func (e *env) registerSource(t *testing.T, model, source string) int64 {
	t.Helper()
	ctx := context.Background()
	if _, err := e.reg.GetRegisteredModel(ctx, model); mloop.IsNotFound(err) {
		if _, err := e.reg.CreateRegisteredModel(ctx, model, nil, ""); err != nil {
			t.Fatalf("create model %s: %v", model, err)
		}
	}
	v, err := e.reg.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: model, Source: source})
	if err != nil {
		t.Fatalf("create a version of %s from %s: %v", model, source, err)
	}
	return v.Version
}

// setAlias points alias of model at version.
func (e *env) setAlias(t *testing.T, model, alias string, version int64) {
	t.Helper()
	if err := e.reg.SetRegisteredModelAlias(context.Background(), model, alias, fmt.Sprint(version)); err != nil {
		t.Fatalf("set alias %s@%s → %d: %v", model, alias, version, err)
	}
}

// ref parses a model reference.
func ref(t *testing.T, s string) deploy.Ref {
	t.Helper()
	r, err := deploy.ParseRef(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// refp returns a pointer to a parsed reference; "" is the zero Ref.
func refp(t *testing.T, s string) *deploy.Ref {
	t.Helper()
	if s == "" {
		return &deploy.Ref{}
	}
	r := ref(t, s)
	return &r
}

func ptr[T any](v T) *T { return &v }

// slotsText summarises slots as "role rREV model/version ref percent%"
// (the flavor is checked on its own).
func slotsText(slots []deploy.Slot) string {
	parts := make([]string, len(slots))
	for i, s := range slots {
		parts[i] = fmt.Sprintf("%s r%d %s/%d %s %d%%", s.Role, s.Revision, s.Model, s.Version, s.Ref, s.Percent)
	}
	return strings.Join(parts, ", ")
}

// wantCode fails the test unless err is of the given kind.
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := mloop.ErrorCode(err); got != code {
		t.Fatalf("%s: got error %v (kind %q), want kind %q", what, err, got, code)
	}
}

// must fails the test on err.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// events returns the deployment's events, newest first.
func (e *env) events(t *testing.T, name string) []*deploy.Event {
	t.Helper()
	evs, err := e.svc.Events(context.Background(), name, 0)
	must(t, "Events", err)
	return evs
}

// get returns the deployment.
func (e *env) get(t *testing.T, name string) *deploy.Deployment {
	t.Helper()
	d, err := e.svc.Get(context.Background(), name)
	must(t, "Get "+name, err)
	return d
}

// decodeDetails decodes an event's details.
func decodeDetails(t *testing.T, ev *deploy.Event) deploy.EventDetails {
	t.Helper()
	var d deploy.EventDetails
	if err := json.Unmarshal(ev.Details, &d); err != nil {
		t.Fatalf("decode the details of event %q: %v (%s)", ev.Message, err, ev.Details)
	}
	return d
}

// eventually polls cond until it holds or 20s pass.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not after 20s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
