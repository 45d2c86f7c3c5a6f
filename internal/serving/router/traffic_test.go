package router

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/serving/deploy"
)

// TestCanarySplitAndPinning sends traffic to a deployment with a 30%
// canary and checks the split, the pins by header and by version.
func TestCanarySplitAndPinning(t *testing.T) {
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("weather", 2, xgbFiles("missing.json"))
	cp.put(newDep("weather",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 70),
		slot(deploy.RoleCanary, 2, "weather", 2, "xgboost", 30)))
	_, srv := newRouter(t, cp, Config{}, false)
	fx := loadFixture(t, "binary_logistic")
	body := fx.oipBody("", 0)
	url := srv.URL + "/v2/models/weather/infer"

	counts := map[string]int{}
	const n = 1000
	for range n {
		r := do(t, nil, "POST", url, body)
		if r.status != 200 {
			t.Fatalf("got %d %s", r.status, r.body)
		}
		counts[r.header.Get(deploy.RevisionHeader)]++
	}
	// 30% of 1000: the standard deviation is about 14.5; the bounds are
	// more than 6 of them away.
	if c := counts["2"]; c < 200 || c > 400 || counts["1"]+c != n {
		t.Errorf("got %v, want about 300 requests on revision 2 and the rest on 1", counts)
	}

	for _, c := range []struct {
		pin, path, rev, mv string
	}{
		{"2", "/v2/models/weather/infer", "2", "weather/2"},
		{"canary", "/v2/models/weather/infer", "2", "weather/2"},
		{"1", "/v2/models/weather/infer", "1", "weather/1"},
		{"Primary", "/v2/models/weather/infer", "1", "weather/1"},
		{"", "/v2/models/weather/versions/2/infer", "2", "weather/2"},
		{"", "/v2/models/weather/versions/1/infer", "1", "weather/1"},
		{"2", "/v2/models/weather/versions/1/infer", "1", "weather/1"}, // the path wins
	} {
		var headers []string
		if c.pin != "" {
			headers = []string{deploy.RevisionHeader, c.pin}
		}
		for range 20 {
			r := do(t, nil, "POST", srv.URL+c.path, body, headers...)
			if r.status != 200 || r.header.Get(deploy.RevisionHeader) != c.rev || r.header.Get(deploy.ModelVersionHeader) != c.mv {
				t.Fatalf("pin %q %s: got %d %s (revision %q, %q), want revision %s", c.pin, c.path, r.status, r.body,
					r.header.Get(deploy.RevisionHeader), r.header.Get(deploy.ModelVersionHeader), c.rev)
			}
		}
	}
	r := do(t, nil, "POST", url, body, deploy.RevisionHeader, "shadow")
	if r.status != 404 || !strings.Contains(r.body, `1 (primary, weather/1), 2 (canary, weather/2)`) {
		t.Errorf("pin shadow without one: got %d %s", r.status, r.body)
	}
	// Metadata follows the pin too.
	r = do(t, nil, "GET", srv.URL+"/v2/models/weather", "", deploy.RevisionHeader, "canary")
	if r.status != 200 || !strings.Contains(r.body, `"model_version":"weather/2"`) || !strings.Contains(r.body, `"versions":["1","2"]`) {
		t.Errorf("metadata pinned to the canary: got %d %s", r.status, r.body)
	}
}

// TestSwapUnderLoad moves the primary from one model to another, twice,
// while clients send requests: every request succeeds, and the answers
// move to the new revision.
func TestSwapUnderLoad(t *testing.T) {
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("weather", 2, xgbFiles("missing.json"))
	cp.put(newDep("weather", slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100)))
	r, srv := newRouter(t, cp, Config{DrainTimeout: time.Minute}, true)
	fx := loadFixture(t, "binary_logistic")
	body := fx.oipBody("", 0, 1)
	url := srv.URL + "/v2/models/weather/infer"

	var (
		stop     atomic.Bool
		wg       sync.WaitGroup
		mu       sync.Mutex
		seen     = map[string]int{}
		failures []string
		total    atomic.Int64
		client   = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	)
	defer client.CloseIdleConnections()
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				req, _ := http.NewRequest("POST", url, strings.NewReader(body))
				resp, err := client.Do(req)
				if err != nil {
					mu.Lock()
					failures = append(failures, err.Error())
					mu.Unlock()
					continue
				}
				resp.Body.Close()
				total.Add(1)
				mu.Lock()
				if resp.StatusCode != 200 {
					failures = append(failures, fmt.Sprintf("status %d on revision %s", resp.StatusCode, resp.Header.Get(deploy.RevisionHeader)))
				}
				seen[resp.Header.Get(deploy.RevisionHeader)]++
				mu.Unlock()
			}
		}()
	}
	count := func(rev string) int {
		mu.Lock()
		defer mu.Unlock()
		return seen[rev]
	}
	waitFor(t, "requests on revision 1", func() bool { return count("1") > 200 })
	// Alias moved: a new revision; the data plane follows by long poll.
	cp.put(newDep("weather", slot(deploy.RolePrimary, 2, "weather", 2, "xgboost", 100)))
	waitFor(t, "requests on revision 2", func() bool { return count("2") > 200 })
	// And back, to a new revision of the first model; by an explicit Sync.
	cp.put(newDep("weather", slot(deploy.RolePrimary, 3, "weather", 1, "xgboost", 100)))
	mustSync(t, r)
	waitFor(t, "requests on revision 3", func() bool { return count("3") > 200 })
	stop.Store(true)
	wg.Wait()
	if len(failures) > 0 {
		t.Fatalf("%d of %d requests failed, first: %s", len(failures), total.Load(), failures[0])
	}
	// The replaced revisions are closed and gone.
	waitFor(t, "the old revisions retired", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.revs) == 1
	})
	st, ok := r.Status("weather")
	if !ok || !st.Ready || len(st.Revisions) != 1 || st.Revisions[0].Revision != 3 || st.Revisions[0].State != "ready" {
		t.Errorf("status: got %+v", st)
	}
	// Model files were fetched once per version (revision 3 reuses the
	// cache of version 1).
	cp.mu.Lock()
	defer cp.mu.Unlock()
	if cp.fetches["weather/1"] != 1 || cp.fetches["weather/2"] != 1 {
		t.Errorf("fetches: got %v, want one per version", cp.fetches)
	}
}

// TestDrain checks that a replaced revision is closed only after its
// in-flight requests have finished: a process revision blocks its answer
// until the test releases it.
func TestDrain(t *testing.T) {
	release := filepath.Join(t.TempDir(), "release")
	cp := newFakeCP()
	cp.model("adder", 1, procFiles("block", map[string]string{"RELEASE_FILE": release}))
	cp.model("adder", 2, procFiles("serve", nil))
	cp.put(newDep("sum", slot(deploy.RolePrimary, 1, "adder", 1, "process", 100)))
	r, srv := newRouter(t, cp, Config{ProcessOutput: os.Stderr}, false)
	old := r.lookup("sum").table.Load().primary.rev
	if old.proc == nil || !old.proc.Ready() {
		t.Fatal("revision 1 is not a ready process")
	}
	body := `{"id":"slow","inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}`
	done := make(chan response, 1)
	go func() { done <- do(t, nil, "POST", srv.URL+"/v2/models/sum/infer", body) }()
	waitFor(t, "the request in flight", func() bool { return old.inflight.Load() == 1 })

	cp.put(newDep("sum", slot(deploy.RolePrimary, 2, "adder", 2, "process", 100)))
	mustSync(t, r)
	// New requests go to revision 2 while revision 1 drains.
	resp := do(t, nil, "POST", srv.URL+"/v2/models/sum/infer", body)
	if resp.status != 200 || resp.header.Get(deploy.RevisionHeader) != "2" {
		t.Fatalf("after the swap: got %d %s on revision %q", resp.status, resp.body, resp.header.Get(deploy.RevisionHeader))
	}
	if !old.closing.Load() {
		t.Fatal("revision 1 is not draining")
	}
	if !old.proc.Ready() {
		t.Fatal("revision 1 was closed with a request in flight")
	}
	select {
	case r := <-done:
		t.Fatalf("the blocked request answered early: %d %s", r.status, r.body)
	default:
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	got := <-done
	if got.status != 200 || got.header.Get(deploy.RevisionHeader) != "1" || !near(oipOutputs(t, got.body), []float64{6}) {
		t.Fatalf("the drained request: got %d %s (revision %q)", got.status, got.body, got.header.Get(deploy.RevisionHeader))
	}
	waitFor(t, "revision 1 closed", func() bool { return !old.proc.Ready() && old.proc.PID() == 0 })
}

// TestDeleteAndFailedLoads covers a deployment whose primary cannot load
// (503 with the reason), an update whose new primary fails (the old one
// keeps serving), the retry on the next change, and a deleted deployment.
func TestDeleteAndFailedLoads(t *testing.T) {
	cp := weatherCP(t)
	cp.model("broken", 1, func(dir string) error {
		return os.WriteFile(filepath.Join(dir, "model.json"), []byte(`{"learner": 5}`), 0o644)
	})
	cp.put(newDep("nomodel", slot(deploy.RolePrimary, 1, "ghost", 3, "xgboost", 100)))
	r, srv := newRouter(t, cp, Config{LoadRetry: time.Hour}, false)
	fx := loadFixture(t, "binary_logistic")
	body := fx.oipBody("", 0)

	resp := do(t, nil, "POST", srv.URL+"/v2/models/nomodel/infer", body)
	if resp.status != 503 || !strings.Contains(resp.body, "revision 1 (ghost/3) failed to load") || !strings.Contains(resp.body, "does not exist") {
		t.Errorf("failed primary: got %d %s", resp.status, resp.body)
	}
	// The replica is ready (it serves weather); the deployment is not.
	if resp := do(t, nil, "GET", srv.URL+"/v2/health/ready", ""); resp.status != 200 {
		t.Errorf("replica ready with a failed deployment: got %d %s", resp.status, resp.body)
	}
	if resp := do(t, nil, "GET", srv.URL+"/v2/models/nomodel/ready", ""); resp.status != 503 || resp.header.Get("Retry-After") == "" {
		t.Errorf("ready of the failed deployment: got %d %s", resp.status, resp.body)
	}
	st, _ := r.Status("nomodel")
	if st.Ready || len(st.Revisions) != 1 || st.Revisions[0].State != "failed" || !strings.Contains(st.Revisions[0].Error, "does not exist") {
		t.Errorf("status of the failed deployment: %+v", st)
	}

	// A new primary that fails to load: the old one keeps serving.
	cp.put(newDep("weather", slot(deploy.RolePrimary, 2, "broken", 1, "xgboost", 100)))
	mustSync(t, r)
	resp = do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", body)
	if resp.status != 200 || resp.header.Get(deploy.RevisionHeader) != "1" {
		t.Errorf("after a failed update: got %d %s from revision %q", resp.status, resp.body, resp.header.Get(deploy.RevisionHeader))
	}
	st, _ = r.Status("weather")
	if !st.Ready || st.Generation != 1 || len(st.Revisions) != 2 ||
		st.Revisions[0].Revision != 2 || st.Revisions[0].State != "failed" || !strings.Contains(st.Revisions[0].Error, "not a model mloop can serve") ||
		st.Revisions[1].Revision != 1 || !st.Revisions[1].Serving {
		t.Errorf("status after a failed update: %+v", st)
	}

	// The missing model appears. A change of another deployment does not
	// load it again (its backoff is an hour); the next change of its own
	// deployment does.
	cp.model("ghost", 3, xgbFiles("binary_logistic.json"))
	cp.del("weather")
	mustSync(t, r)
	resp = do(t, nil, "POST", srv.URL+"/v2/models/nomodel/infer", body)
	if resp.status != 503 {
		t.Errorf("after another deployment changed: got %d %s, want the failed load still", resp.status, resp.body)
	}
	cp.mu.Lock()
	fetches := cp.fetches["ghost/3"]
	cp.mu.Unlock()
	if fetches != 1 {
		t.Errorf("ghost/3 fetched %d times after another deployment changed, want 1", fetches)
	}
	cp.put(newDep("nomodel", slot(deploy.RolePrimary, 1, "ghost", 3, "xgboost", 100)))
	mustSync(t, r)
	resp = do(t, nil, "POST", srv.URL+"/v2/models/nomodel/infer", body)
	if resp.status != 200 {
		t.Errorf("after the retry: got %d %s", resp.status, resp.body)
	}
	resp = do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", body)
	if resp.status != 404 || !strings.Contains(resp.body, `no deployment \"weather\"`) {
		t.Errorf("deleted deployment: got %d %s", resp.status, resp.body)
	}
	if _, ok := r.Status("weather"); ok {
		t.Error("the deleted deployment still has a status")
	}
	waitFor(t, "revisions of the deleted deployment retired", func() bool {
		r.mu.Lock()
		defer r.mu.Unlock()
		return len(r.revs) == 1
	})
	if resp := do(t, nil, "GET", srv.URL+"/v2/health/ready", ""); resp.status != 200 {
		t.Errorf("ready: got %d %s", resp.status, resp.body)
	}
}

// TestLoadRetryBackoff checks that a failed revision is loaded again after
// the backoff, without a state change, by the follow loop.
func TestLoadRetryBackoff(t *testing.T) {
	cp := newFakeCP()
	cp.put(newDep("late", slot(deploy.RolePrimary, 1, "late", 1, "xgboost", 100)))
	r, srv := newRouter(t, cp, Config{LoadRetry: 50 * time.Millisecond, Wait: time.Minute}, true)
	st, _ := r.Status("late")
	if st.Ready || st.Revisions[0].State != "failed" {
		t.Fatalf("got %+v, want a failed revision", st)
	}
	cp.model("late", 1, xgbFiles("binary_logistic.json"))
	waitFor(t, "the revision loaded on retry", func() bool {
		st, _ := r.Status("late")
		return st.Ready
	})
	fx := loadFixture(t, "binary_logistic")
	if resp := do(t, nil, "POST", srv.URL+"/v2/models/late/infer", fx.oipBody("", 0)); resp.status != 200 {
		t.Errorf("got %d %s", resp.status, resp.body)
	}
}

// TestProcessProtocols serves a process model over OIP and KServe V1.
func TestProcessProtocols(t *testing.T) {
	cp := newFakeCP()
	cp.model("adder", 4, procFiles("serve", nil))
	cp.put(newDep("sum", slot(deploy.RolePrimary, 3, "adder", 4, "", 100)))
	_, srv := newRouter(t, cp, Config{}, false)
	resp := do(t, nil, "POST", srv.URL+"/v2/models/sum/versions/4/infer",
		`{"id":"p-1","inputs":[{"name":"x","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]}`)
	if resp.status != 200 || !near(oipOutputs(t, resp.body), []float64{6, 15}) || resp.header.Get(deploy.RevisionHeader) != "3" ||
		resp.header.Get(deploy.ModelVersionHeader) != "adder/4" || resp.header.Get("X-Request-Id") != "p-1" {
		t.Errorf("OIP: got %d %s %v", resp.status, resp.body, resp.header)
	}
	resp = do(t, nil, "POST", srv.URL+"/v1/models/sum:predict", `{"instances":[[1,1],[2,2]]}`)
	if resp.status != 200 || !strings.Contains(resp.body, `"predictions":[2,4]`) {
		t.Errorf("KServe V1: got %d %s", resp.status, resp.body)
	}
	resp = do(t, nil, "POST", srv.URL+"/v2/models/sum/infer", `{"inputs":[]}`)
	if resp.status != 400 || !strings.Contains(resp.body, "want one 2-D input") {
		t.Errorf("the process's 400: got %d %s", resp.status, resp.body)
	}
	resp = do(t, nil, "GET", srv.URL+"/v2/models/sum", "")
	if resp.status != 200 || !strings.Contains(resp.body, `"platform":"test-sum"`) {
		t.Errorf("metadata: got %d %s", resp.status, resp.body)
	}
	resp = do(t, nil, "GET", srv.URL+"/v2/models/sum/ready", "")
	if resp.status != 200 {
		t.Errorf("ready: got %d %s", resp.status, resp.body)
	}
}

// TestCloseStopsProcesses checks that Close stops every runtime.
func TestCloseStopsProcesses(t *testing.T) {
	cp := newFakeCP()
	cp.model("adder", 1, procFiles("serve", nil))
	cp.put(newDep("sum", slot(deploy.RolePrimary, 1, "adder", 1, "process", 100)))
	r := New(cp, Config{CacheDir: t.TempDir(), Logger: quiet()})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.Open(ctx); err != nil {
		t.Fatal(err)
	}
	p := r.lookup("sum").table.Load().primary.rev.proc
	if p.PID() == 0 {
		t.Fatal("no process")
	}
	if err := r.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if p.Ready() || p.PID() != 0 {
		t.Errorf("the process survived Close")
	}
	if err := r.Sync(ctx); err == nil {
		t.Error("Sync after Close succeeded")
	}
}
