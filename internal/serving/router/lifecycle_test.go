package router

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/serving/deploy"
)

// gatedFiles is a model version whose fetch blocks until gate is closed.
func gatedFiles(gate <-chan struct{}, fs files) files {
	return func(dir string) error {
		<-gate
		return fs(dir)
	}
}

// servedRevision returns the revision the deployment's primary answers
// with, or "".
func servedRevision(r *Router, name string) string {
	d := r.lookup(name)
	if d == nil {
		return ""
	}
	t := d.table.Load()
	if t.primary == nil {
		return ""
	}
	return t.primary.rev.revStr
}

// TestSlowLoadBlocksNothing loads a model whose fetch blocks: meanwhile
// the other deployments follow their changes, a newer state of the same
// deployment supersedes the blocked one, the replica stays ready, and
// Check returns after asking for a rollback.
func TestSlowLoadBlocksNothing(t *testing.T) {
	gate := make(chan struct{})
	cp := weatherCP(t)
	cp.model("weather", 2, xgbFiles("missing.json"))
	cp.model("slow", 1, gatedFiles(gate, xgbFiles("binary_logistic.json")))
	cp.model("adder", 1, procFiles("fail", nil))
	r, srv := newRouter(t, cp, Config{CheckInterval: time.Hour}, true)
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release) // before the router's Close
	fx := loadFixture(t, "binary_logistic")

	cp.put(newDep("slow", slot(deploy.RolePrimary, 1, "slow", 1, "xgboost", 100)))
	waitFor(t, "the slow deployment published", func() bool { return r.lookup("slow") != nil })
	// Another deployment changes: it follows at once.
	cp.put(newDep("weather", slot(deploy.RolePrimary, 2, "weather", 2, "xgboost", 100)))
	waitFor(t, "weather on revision 2 while slow loads", func() bool { return servedRevision(r, "weather") == "2" })
	if resp := do(t, nil, "GET", srv.URL+"/v2/health/ready", ""); resp.status != 200 {
		t.Errorf("replica ready while a deployment loads: got %d %s", resp.status, resp.body)
	}
	if resp := do(t, nil, "POST", srv.URL+"/v2/models/slow/infer", fx.oipBody("", 0)); resp.status != 503 || !strings.Contains(resp.body, "is loading") {
		t.Errorf("the loading deployment: got %d %s", resp.status, resp.body)
	}

	// A canary judged bad: Check asks for the rollback and returns, while
	// the slow load still holds.
	d := newDep("weather",
		slot(deploy.RolePrimary, 2, "weather", 2, "xgboost", 50),
		slot(deploy.RoleCanary, 3, "adder", 1, "process", 50))
	d.Spec.Rollback = deploy.RollbackPolicy{MinRequests: 3}
	cp.put(d)
	waitFor(t, "the canary served", func() bool {
		t := r.lookup("weather").table.Load()
		return t.canary != nil && t.canary.rev.revStr == "3"
	})
	for range 3 {
		if resp := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("", 0), deploy.RevisionHeader, "canary"); resp.status != 500 {
			t.Fatalf("canary: got %d %s", resp.status, resp.body)
		}
	}
	checked := make(chan struct{})
	go func() { r.Check(context.Background()); close(checked) }()
	waitFor(t, "Check to return while a load is blocked", func() bool {
		select {
		case <-checked:
			return true
		default:
			return false
		}
	})
	if n := len(cp.rollbackCalls()); n != 1 {
		t.Fatalf("got %d rollback calls, want 1", n)
	}
	waitFor(t, "the rolled back canary gone", func() bool { return r.lookup("weather").table.Load().canary == nil })

	// A newer state of the slow deployment supersedes the blocked one.
	cp.put(newDep("slow", slot(deploy.RolePrimary, 2, "weather", 1, "xgboost", 100)))
	waitFor(t, "slow on revision 2 while revision 1 still loads", func() bool { return servedRevision(r, "slow") == "2" })
	if resp := do(t, nil, "POST", srv.URL+"/v2/models/slow/infer", fx.oipBody("", 0)); resp.status != 200 || resp.header.Get(deploy.RevisionHeader) != "2" {
		t.Errorf("slow after the newer state: got %d %s", resp.status, resp.body)
	}
	// Once the blocked load ends, the superseded revision is retired, not
	// swapped in.
	release()
	waitFor(t, "the superseded revision retired", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		for k := range r.revs {
			if k.deployment == "slow" && k.revision == 1 {
				return false
			}
		}
		return true
	})
	mustSync(t, r)
	if got := servedRevision(r, "slow"); got != "2" {
		t.Errorf("slow serves revision %q after the blocked load ended, want 2", got)
	}
}

// TestSyncWaitsForItsState checks Sync's contract with a slow load: it
// returns once what it fetched is served, and gives up with ctx.
func TestSyncWaitsForItsState(t *testing.T) {
	gate := make(chan struct{})
	cp := weatherCP(t)
	cp.model("slow", 1, gatedFiles(gate, xgbFiles("binary_logistic.json")))
	r, _ := newRouter(t, cp, Config{}, false)
	var once sync.Once
	release := func() { once.Do(func() { close(gate) }) }
	t.Cleanup(release)
	cp.put(newDep("slow", slot(deploy.RolePrimary, 1, "slow", 1, "xgboost", 100)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := r.Sync(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sync with a cancelled context: got %v, want context.Canceled", err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Sync(context.Background()) }()
	select {
	case err := <-done:
		t.Fatalf("Sync returned (%v) before the slow load ended", err)
	default:
	}
	release()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := servedRevision(r, "slow"); got != "1" {
		t.Errorf("after Sync: slow serves revision %q, want 1", got)
	}
}

// TestCloseAnswers503 closes the router while a request's body is being
// read: the request, and every later one, gets 503 with Retry-After.
func TestCloseAnswers503(t *testing.T) {
	cp := weatherCP(t)
	r, srv := newRouter(t, cp, Config{}, true)
	fx := loadFixture(t, "binary_logistic")
	body := fx.oipBody("", 0)

	pr, pw := io.Pipe()
	req := httptest.NewRequest("POST", "/v2/models/weather/infer", pr)
	req.ContentLength = -1
	rec := httptest.NewRecorder()
	done := make(chan struct{})
	go func() {
		r.Handler().ServeHTTP(rec, req)
		close(done)
	}()
	// The write returns once the handler reads: it is past its first
	// checks, in the body.
	if _, err := pw.Write([]byte(body[:10])); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	pw.Write([]byte(body[10:]))
	pw.Close()
	<-done
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "shutting down") {
		t.Errorf("in-flight request at Close: got %d %s (Retry-After %q), want 503", rec.Code, rec.Body, rec.Header().Get("Retry-After"))
	}
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v2/models/weather/infer", body},
		{"GET", "/v2/models/weather", ""},
		{"GET", "/v2/models/weather/ready", ""},
		{"GET", "/v1/models/weather", ""},
		{"GET", "/v2/health/ready", ""},
	} {
		resp := do(t, nil, c.method, srv.URL+c.path, c.body)
		if resp.status != http.StatusServiceUnavailable {
			t.Errorf("%s %s after Close: got %d %s, want 503", c.method, c.path, resp.status, resp.body)
		}
		if c.path != "/v2/health/ready" && resp.header.Get("Retry-After") == "" {
			t.Errorf("%s %s after Close: no Retry-After", c.method, c.path)
		}
	}
}

// TestCloseDuringOpen closes the router after Open's Sync and before its
// loops start: Open fails, and no loop runs after Close.
func TestCloseDuringOpen(t *testing.T) {
	cp := weatherCP(t)
	r := New(cp, Config{CacheDir: t.TempDir(), Logger: quiet()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	closed := make(chan error, 1)
	r.hooks.afterOpenSync = func() {
		go func() { closed <- r.Close(ctx) }()
		waitFor(t, "Close started", r.closed.Load)
	}
	if err := r.Open(ctx); err == nil {
		t.Error("Open succeeded although Close ran during it")
	}
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	r.openMu.Lock()
	opened := r.opened
	r.openMu.Unlock()
	if opened {
		t.Error("the router counts as open after Close")
	}
	if err := r.Sync(ctx); err == nil {
		t.Error("Sync after Close succeeded")
	}
}

// TestTripSurvivesSwap runs Check, which trips a bad canary, while a swap
// of the same deployment is about to store its table: the tripped
// revision never gets traffic back.
func TestTripSurvivesSwap(t *testing.T) {
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("adder", 1, procFiles("fail", nil))
	dep := func(percent int) *deploy.Deployment {
		d := newDep("weather",
			slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100-percent),
			slot(deploy.RoleCanary, 2, "adder", 1, "process", percent))
		d.Spec.Rollback = deploy.RollbackPolicy{MinRequests: 5}
		return d
	}
	cp.put(dep(50))
	unreachable := errors.New("control plane unreachable")
	cp.rollbackErr = []error{unreachable, unreachable, unreachable}
	r, srv := newRouter(t, cp, Config{}, false)
	fx := loadFixture(t, "binary_logistic")
	for range 5 {
		if resp := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("", 0), deploy.RevisionHeader, "canary"); resp.status != 500 {
			t.Fatalf("canary: got %d %s", resp.status, resp.body)
		}
	}
	checked := make(chan struct{})
	var once sync.Once
	r.hooks.beforeStore = func(d *deployment) {
		once.Do(func() {
			go func() { r.Check(context.Background()); close(checked) }()
			// Give Check the time to run into the swap; when it cannot
			// (it waits for the swap), this only delays the test.
			select {
			case <-checked:
			case <-time.After(200 * time.Millisecond):
			}
		})
	}
	cp.put(dep(40)) // a new generation, the same canary revision
	mustSync(t, r)
	<-checked
	d := r.lookup("weather")
	consistent := func() bool {
		d.tripMu.Lock()
		defer d.tripMu.Unlock()
		tb := d.table.Load()
		return d.trippedRev != tb.canary.rev.key.revision || tb.tripped && tb.canaryPercent == 0
	}
	if !consistent() {
		t.Fatalf("the canary is judged bad (tripped revision %d) but the table routes %d%% to it", d.trippedRev, d.table.Load().canaryPercent)
	}
	// The next check trips the new table if the first could not.
	r.Check(context.Background())
	if tb := d.table.Load(); !tb.tripped || tb.canaryPercent != 0 || !consistent() {
		t.Errorf("after another check: tripped %v, canary percent %d", tb.tripped, tb.canaryPercent)
	}
	for range 30 {
		if resp := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("", 0)); resp.status != 200 || resp.header.Get(deploy.RevisionHeader) != "1" {
			t.Fatalf("with a tripped canary: got %d from revision %q", resp.status, resp.header.Get(deploy.RevisionHeader))
		}
	}
}
