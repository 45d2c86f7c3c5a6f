package main

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// The "done when" for safe releases, through the real server: a
// failing canary is rolled back on its own while only its share of clients
// sees errors, and an alias move swaps the model under load without a single
// failed request.

// failingServer is a process model that is ready at once and answers every
// inference with a 500, as a broken release would.
const failingServer = `import json, os
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

class H(BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def answer(self, code, body):
        b = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(b)))
        self.end_headers()
        self.wfile.write(b)
    def do_GET(self):
        self.answer(200, {"ready": True})
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.answer(500, {"error": "the model crashed"})

ThreadingHTTPServer(("127.0.0.1", int(os.environ["PORT"])), H).serve_forever()
`

// registerFixture registers an XGBoost test model as a new version of name.
func registerFixture(t *testing.T, m *Main, name, fixture string) {
	t.Helper()
	dir := t.TempDir()
	xgbFixture(t, fixture, dir, "model.json")
	if code, out, errs := execModel(t, m, "register", name, dir); code != exitOK {
		t.Fatalf("register %s: exit %d\n%s%s", fixture, code, out, errs)
	}
}

// infer sends one single-row OIP request for the weather fixtures' seven
// features and returns the status and the revision that answered.
func infer(client *http.Client, url, deployment string, row int) (int, string, error) {
	body := fmt.Sprintf(`{"id": "r%d", "inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 7], "data": [%d, 12.5, 3.1, 4.0, 0.5, 1, 2]}]}`, row, row%30)
	resp, err := client.Post(url+"/v2/models/"+deployment+"/infer", "application/json", strings.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, resp.Header.Get("X-Mloop-Revision"), nil
}

// loadResult counts a load run's answers by status and revision.
type loadResult struct {
	mu     sync.Mutex
	byRev  map[string]map[int]int // revision → status → count
	errors []string
}

func (l *loadResult) add(status int, rev string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errors = append(l.errors, err.Error())
		return
	}
	if l.byRev == nil {
		l.byRev = map[string]map[int]int{}
	}
	if l.byRev[rev] == nil {
		l.byRev[rev] = map[int]int{}
	}
	l.byRev[rev][status]++
}

// load sends requests from workers goroutines until stop is closed.
func load(url, deployment string, workers int, stop <-chan struct{}, res *loadResult) *sync.WaitGroup {
	var wg sync.WaitGroup
	var seq atomic.Int64
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: workers}, Timeout: 30 * time.Second}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				status, rev, err := infer(client, url, deployment, int(seq.Add(1)))
				res.add(status, rev, err)
			}
		}()
	}
	return &wg
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// deployment returns GET /api/v1/deployments/NAME's answer.
func deployment(t *testing.T, m *Main, name string) map[string]any {
	t.Helper()
	return mustCall(t, m, "GET", "/api/v1/deployments/"+name, nil)
}

// slotsOf returns role → revision of a deployment answer.
func slotsOf(d map[string]any) map[string]string {
	out := map[string]string{}
	dep, _ := d["deployment"].(map[string]any)
	slots, _ := dep["slots"].([]any)
	for _, s := range slots {
		s, _ := s.(map[string]any)
		out[fmt.Sprint(s["role"])] = fmt.Sprint(s["revision"])
	}
	return out
}

func TestCanaryRolledBackAutomatically(t *testing.T) {
	m := MustOpenMain(t)
	registerFixture(t, m, "weather", "binary_logistic.json")
	bad := t.TempDir()
	writeFiles(t, bad, map[string]string{
		"serve.json": `{"command": ["/usr/bin/python3", "server.py"]}`,
		"server.py":  failingServer,
	})
	if code, out, errs := execModel(t, m, "register", "weather-broken", bad, "--flavor", "process"); code != exitOK {
		t.Fatalf("register the failing model: exit %d\n%s%s", code, out, errs)
	}
	mustCreate(t, m, map[string]any{
		"name": "weather", "spec": map[string]any{"model": "weather@1"},
	})
	waitFor(t, "the primary to be ready", time.Minute, func() bool {
		resp, err := http.Get(m.URL() + "/v2/models/weather/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	const workers = 4
	res := &loadResult{}
	stop := make(chan struct{})
	wg := load(m.URL(), "weather", workers, stop, res)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	time.Sleep(300 * time.Millisecond) // the primary's figures fill the window first

	mustCall(t, m, "PATCH", "/api/v1/deployments/weather", map[string]any{
		"canary": "weather-broken@1", "canary_percent": 30,
		"rollback": map[string]any{"window": "30s", "min_requests": 20},
	})
	canary := slotsOf(deployment(t, m, "weather"))["canary"]
	if canary == "" {
		t.Fatalf("no canary after the update: %v", deployment(t, m, "weather"))
	}
	waitFor(t, "the canary to be rolled back", 90*time.Second, func() bool {
		return slotsOf(deployment(t, m, "weather"))["canary"] == ""
	})
	// Answers after the rollback all come from the primary.
	res.mu.Lock()
	before := res.byRev[canary][http.StatusInternalServerError]
	res.mu.Unlock()
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()

	res.mu.Lock()
	defer res.mu.Unlock()
	if len(res.errors) > 0 {
		t.Errorf("%d requests failed at the HTTP level, first: %s", len(res.errors), res.errors[0])
	}
	failed := 0
	for rev, byStatus := range res.byRev {
		for status, n := range byStatus {
			if status == http.StatusOK {
				continue
			}
			failed += n
			if rev != canary {
				t.Errorf("revision %q answered %d × %d; errors are allowed only on the canary (revision %s)", rev, n, status, canary)
			}
		}
	}
	if failed == 0 {
		t.Errorf("the canary never failed: %v", res.byRev)
	}
	// Requests already routed to the canary when the rollback was seen
	// (at most one per client) may still answer with its error; none
	// sent later may.
	if after := res.byRev[canary][http.StatusInternalServerError]; after-before > workers {
		t.Errorf("the canary answered %d more errors after its rollback was recorded; at most %d (the requests in flight) may", after-before, workers)
	}
	t.Logf("answers by revision and status: %v (canary revision %s)", res.byRev, canary)

	// The automatic rollback is recorded with its reason.
	ev := mustCall(t, m, "GET", "/api/v1/deployments/weather/events", nil)
	events, _ := ev["events"].([]any)
	found := false
	for _, e := range events {
		e, _ := e.(map[string]any)
		if e["type"] == "auto_rolled_back" && e["automatic"] == true && strings.Contains(fmt.Sprint(e["message"]), "error rate") {
			found = true
		}
	}
	if !found {
		t.Errorf("no automatic rollback event naming the error rate in %v", events)
	}
}

func TestAliasMoveUnderLoad(t *testing.T) {
	m := MustOpenMain(t)
	registerFixture(t, m, "weather", "binary_logistic.json")
	registerFixture(t, m, "weather", "missing.json")
	setAlias := func(version string) {
		mustCall(t, m, "POST", "/api/2.0/mlflow/registered-models/alias",
			map[string]any{"name": "weather", "alias": "champion", "version": version})
	}
	setAlias("1")
	mustCreate(t, m, map[string]any{
		"name": "weather", "spec": map[string]any{"model": "weather@champion"},
	})
	waitFor(t, "the deployment to be ready", time.Minute, func() bool {
		resp, err := http.Get(m.URL() + "/v2/models/weather/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	first := slotsOf(deployment(t, m, "weather"))["primary"]

	res := &loadResult{}
	stop := make(chan struct{})
	wg := load(m.URL(), "weather", 4, stop, res)
	time.Sleep(500 * time.Millisecond)
	setAlias("2")
	var second string
	waitFor(t, "the new revision to answer", time.Minute, func() bool {
		second = slotsOf(deployment(t, m, "weather"))["primary"]
		if second == first {
			return false
		}
		res.mu.Lock()
		defer res.mu.Unlock()
		return res.byRev[second][http.StatusOK] > 50
	})
	close(stop)
	wg.Wait()

	res.mu.Lock()
	defer res.mu.Unlock()
	if len(res.errors) > 0 {
		t.Errorf("%d requests failed at the HTTP level, first: %s", len(res.errors), res.errors[0])
	}
	total := 0
	for rev, byStatus := range res.byRev {
		for status, n := range byStatus {
			total += n
			if status != http.StatusOK {
				t.Errorf("revision %q answered %d × %d during the alias move; want only 200", rev, n, status)
			}
		}
	}
	if res.byRev[first][http.StatusOK] == 0 || res.byRev[second][http.StatusOK] == 0 {
		t.Errorf("want answers from both revisions %s and %s, got %v", first, second, res.byRev)
	}
	t.Logf("%d requests during the move, by revision: %v", total, res.byRev)

	if !hasEvent(t, m, "weather", "alias_moved") {
		t.Errorf("no alias_moved event recorded")
	}
}

// hasEvent reports whether the deployment recorded an event of type typ.
func hasEvent(t *testing.T, m *Main, name, typ string) bool {
	t.Helper()
	ev := mustCall(t, m, "GET", "/api/v1/deployments/"+name+"/events", nil)
	events, _ := ev["events"].([]any)
	for _, e := range events {
		if e, _ := e.(map[string]any); e["type"] == typ {
			return true
		}
	}
	return false
}

// mustCreate creates a deployment through POST /api/v1/deployments.
func mustCreate(t *testing.T, m *Main, body map[string]any) {
	t.Helper()
	if status, out := call(t, m, "POST", "/api/v1/deployments", body); status != http.StatusCreated {
		t.Fatalf("create deployment: got status %d %v, want 201", status, out)
	}
}
