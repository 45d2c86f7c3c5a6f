package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/serving/deploy"
)

// Automatic rollouts through the real server: a deployment following
// weather@champion under a rollout policy serves a new champion as a
// canary, judged on the monitor's figures, then promoted without a failed
// request, or rolled back with the alias set back.

// openRolloutMain opens a server whose monitoring windows last 2s, so that
// a canary is judged over saved windows and the open one.
func openRolloutMain(t *testing.T) *Main {
	t.Helper()
	m := NewMain()
	m.Config.Addr = "127.0.0.1:0"
	m.Config.DataDir = t.TempDir()
	m.Config.MonitorWindow = 2 * time.Second
	m.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	if err := m.Open(context.Background()); err != nil {
		t.Fatalf("open main: %v", err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// setChampion points weather@champion at version.
func setChampion(t *testing.T, m *Main, version string) {
	t.Helper()
	mustCall(t, m, "POST", "/api/2.0/mlflow/registered-models/alias",
		map[string]any{"name": "weather", "alias": "champion", "version": version})
}

// champion returns the version weather@champion names.
func champion(t *testing.T, m *Main) string {
	t.Helper()
	out := mustCall(t, m, "GET", "/api/2.0/mlflow/registered-models/alias?name=weather&alias=champion", nil)
	mv, _ := out["model_version"].(map[string]any)
	return fmt.Sprint(mv["version"])
}

// deploymentOf returns the deployment as the API answers it.
func deploymentOf(t *testing.T, m *Main, name string) *deploy.Deployment {
	t.Helper()
	out := mustCall(t, m, "GET", "/api/v1/deployments/"+name, nil)
	b, _ := json.Marshal(out["deployment"])
	var d deploy.Deployment
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("decode deployment %s: %v", b, err)
	}
	return &d
}

// eventsOf returns the deployment's events, oldest first.
func eventsOf(t *testing.T, m *Main, name string) []deploy.Event {
	t.Helper()
	out := mustCall(t, m, "GET", "/api/v1/deployments/"+name+"/events", nil)
	b, _ := json.Marshal(out["events"])
	var evs []deploy.Event
	if err := json.Unmarshal(b, &evs); err != nil {
		t.Fatalf("decode events %s: %v", b, err)
	}
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs
}

// eventTypes lists the events' types, oldest first, automatic ones marked.
func eventTypes(evs []deploy.Event) string {
	var out []string
	for _, e := range evs {
		s := e.Type
		if e.Automatic {
			s += "(auto)"
		}
		out = append(out, s)
	}
	return strings.Join(out, " ")
}

// waitReady waits until the deployment answers ready.
func waitReady(t *testing.T, m *Main, name string) {
	t.Helper()
	waitFor(t, name+" to be ready", time.Minute, func() bool {
		resp, err := http.Get(m.URL() + "/v2/models/" + name + "/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func TestRolloutPromotedUnderLoad(t *testing.T) {
	m := openRolloutMain(t)
	registerFixture(t, m, "weather", "binary_logistic.json")
	registerFixture(t, m, "weather", "missing.json")
	setChampion(t, m, "1")
	// With tens of requests a p99 is their slowest one: a GC pause must
	// not pass for a slow canary (--rollout-min-latency-increase).
	mustCLI(t, m, exitOK, "deploy", "create", "weather", "--model", "weather@champion", "--rollout-percent", "50",
		"--rollout-window", "4s", "--rollout-min-requests", "10", "--rollout-max-wait", "1m",
		"--rollout-min-latency-increase", "250ms", "--rollback-min-latency-increase", "250ms", "--wait-timeout", "2m")
	out, _ := mustCLI(t, m, exitOK, "deploy", "show", "weather")
	if want := "rollout:    releases of weather@champion go through a canary taking 50%, judged after 4s once it has 10 requests"; !strings.Contains(out, want) {
		t.Fatalf("deploy show:\n%s\nwant a line containing %q", out, want)
	}
	waitReady(t, m, "weather")
	first := deploymentOf(t, m, "weather").Slot(deploy.RolePrimary).Revision

	res := &loadResult{}
	stop := make(chan struct{})
	wg := load(m.URL(), "weather", 4, stop, res)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	time.Sleep(500 * time.Millisecond) // the primary serves alone first
	setChampion(t, m, "2")

	var canary deploy.Slot
	waitFor(t, "the rollout canary", 30*time.Second, func() bool {
		c := deploymentOf(t, m, "weather").Slot(deploy.RoleCanary)
		if c != nil {
			canary = *c
		}
		return c != nil
	})
	if !canary.Rollout || canary.Version != 2 || canary.Percent != 50 || canary.Since == 0 {
		t.Fatalf("canary: got %+v, want a rollout canary of weather/2 at 50%% with its start", canary)
	}
	out, _ = mustCLI(t, m, exitOK, "deploy", "show", "weather")
	if want := fmt.Sprintf("rollout canary revision %d (weather/2) started", canary.Revision); !strings.Contains(out, want) || !strings.Contains(out, "judged at") {
		t.Errorf("deploy show during the rollout:\n%s\nwant %q and its judgement time", out, want)
	}
	for deadline := time.Now().Add(time.Minute); deploymentOf(t, m, "weather").Slot(deploy.RolePrimary).Revision != canary.Revision; {
		if time.Now().After(deadline) {
			evs := mustCall(t, m, "GET", "/api/v1/deployments/weather/events", nil)
			t.Fatalf("the canary was not promoted within 1m; deployment events: %v", evs["events"])
		}
		time.Sleep(100 * time.Millisecond)
	}
	// Requests answered by the promoted revision after the promotion.
	res.mu.Lock()
	before := res.byRev[fmt.Sprint(canary.Revision)][http.StatusOK]
	res.mu.Unlock()
	waitFor(t, "the promoted revision to answer", 30*time.Second, func() bool {
		res.mu.Lock()
		defer res.mu.Unlock()
		return res.byRev[fmt.Sprint(canary.Revision)][http.StatusOK] > before+50
	})
	close(stop)
	wg.Wait()

	res.mu.Lock()
	if len(res.errors) > 0 {
		t.Errorf("%d requests failed at the HTTP level, first: %s", len(res.errors), res.errors[0])
	}
	for rev, byStatus := range res.byRev {
		for status, n := range byStatus {
			if status != http.StatusOK {
				t.Errorf("revision %q answered %d × %d during the rollout; want only 200", rev, n, status)
			}
		}
	}
	if res.byRev[fmt.Sprint(first)][http.StatusOK] == 0 {
		t.Errorf("the first revision %d never answered: %v", first, res.byRev)
	}
	t.Logf("answers by revision: %v", res.byRev)
	res.mu.Unlock()

	d := deploymentOf(t, m, "weather")
	if d.Spec.Model.String() != "weather@champion" || d.Spec.Canary != nil || len(d.Slots) != 1 || d.Slots[0].Version != 2 {
		t.Errorf("after the promotion: spec %+v, slots %+v; want weather/2 alone, following weather@champion", d.Spec, d.Slots)
	}
	evs := eventsOf(t, m, "weather")
	if got, want := eventTypes(evs), "created rollout_started(auto) promoted(auto)"; got != want {
		t.Fatalf("events: got %s, want %s", got, want)
	}
	var det deploy.EventDetails
	if err := json.Unmarshal(evs[2].Details, &det); err != nil {
		t.Fatal(err)
	}
	var v deploy.RolloutVerdict
	if err := json.Unmarshal(det.Details, &v); err != nil {
		t.Fatalf("decode the verdict of %s: %v", det.Details, err)
	}
	if v.Decision != deploy.DecisionPromote || v.CanaryRevision != canary.Revision || v.Canary == nil || v.Canary.Requests < 10 ||
		v.Primary == nil || v.Primary.Requests == 0 || v.Canary.Errors != 0 {
		t.Errorf("promotion verdict: got %+v (canary %+v, primary %+v), want a promotion measured on both", v, v.Canary, v.Primary)
	}
	t.Logf("promotion: %s", evs[2].Message)
	if c := champion(t, m); c != "2" {
		t.Errorf("weather@champion: got %s, want 2", c)
	}
}

func TestRolloutRolledBackAliasRevert(t *testing.T) {
	m := openRolloutMain(t)
	registerFixture(t, m, "weather", "binary_logistic.json")
	bad := t.TempDir()
	writeFiles(t, bad, map[string]string{
		"serve.json": `{"command": ["/usr/bin/python3", "server.py"]}`,
		"server.py":  failingServer,
	})
	if code, out, errs := execModel(t, m, "register", "weather", bad, "--flavor", "process"); code != exitOK {
		t.Fatalf("register the failing version: exit %d\n%s%s", code, out, errs)
	}
	setChampion(t, m, "1")
	mustCreate(t, m, map[string]any{"name": "weather", "spec": map[string]any{
		"model":   "weather@champion",
		"rollout": map[string]any{"canary_percent": 30, "window": "3s", "min_requests": 10, "max_wait": "1m"},
	}})
	waitReady(t, m, "weather")

	res := &loadResult{}
	stop := make(chan struct{})
	wg := load(m.URL(), "weather", 4, stop, res)
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}()
	setChampion(t, m, "2")
	waitFor(t, "the rollout canary", 30*time.Second, func() bool {
		return deploymentOf(t, m, "weather").Slot(deploy.RoleCanary) != nil
	})
	waitFor(t, "the canary to be rolled back and the alias set back", 90*time.Second, func() bool {
		return deploymentOf(t, m, "weather").Slot(deploy.RoleCanary) == nil && champion(t, m) == "1"
	})
	close(stop)
	wg.Wait()

	evs := eventsOf(t, m, "weather")
	if got, want := eventTypes(evs), "created rollout_started(auto) auto_rolled_back(auto)"; got != want {
		t.Fatalf("events: got %s, want %s", got, want)
	}
	if msg := evs[2].Message; !strings.Contains(msg, "alias weather@champion set back to weather/1 so that weather/2 is not rolled out again") ||
		!strings.Contains(msg, "error rate") {
		t.Errorf("rollback message %q: want the error rate and the alias set back", msg)
	}
	// The follower does not start the rejected version again: the alias
	// names what the primary serves.
	d := deploymentOf(t, m, "weather")
	if d.Slot(deploy.RolePrimary).Version != 1 || d.Spec.Model.String() != "weather@champion" {
		t.Errorf("after the rollback: got %+v, want weather/1 following weather@champion", d)
	}
	res.mu.Lock()
	defer res.mu.Unlock()
	if len(res.errors) > 0 {
		t.Errorf("%d requests failed at the HTTP level, first: %s", len(res.errors), res.errors[0])
	}
	t.Logf("answers by revision and status: %v", res.byRev)
}

func TestRolloutFlags(t *testing.T) {
	m := MustOpenMain(t)
	registerFixture(t, m, "weather", "binary_logistic.json")
	setChampion(t, m, "1")
	policy := func() *deploy.RolloutPolicy { return deploymentOf(t, m, "w").Spec.Rollout }
	for _, tc := range []struct {
		args     []string
		code     int
		contains string // in stderr
	}{
		{[]string{"deploy", "create", "w", "--model", "weather@1", "--rollout"}, exitUsage, "--rollout needs --model MODEL@ALIAS"},
		{[]string{"deploy", "create", "w", "--model", "weather@champion", "--rollout-percent", "100"}, exitUsage, "invalid --rollout-percent 100: use 1 to 99"},
		{[]string{"deploy", "create", "w", "--model", "weather@champion", "--rollout-metric", "auc"}, exitFailure, "the monitor calls it roc_auc"},
		{[]string{"deploy", "create", "w", "--model", "weather@champion", "--rollout", "--wait=false"}, exitOK, ""},
		{[]string{"deploy", "update", "w", "--no-rollout", "--rollout-window", "1m"}, exitUsage, "--no-rollout cannot be combined"},
	} {
		code, _, errs := execCLI(context.Background(), m, tc.args...)
		if code != tc.code || !strings.Contains(errs, tc.contains) {
			t.Fatalf("mloop %s: got exit %d, stderr %q; want exit %d and %q", strings.Join(tc.args, " "), code, errs, tc.code, tc.contains)
		}
	}
	if p := policy(); p == nil || !reflect.DeepEqual(*p, deploy.RolloutPolicy{}) {
		t.Fatalf("after create --rollout: got policy %+v, want the defaults", p)
	}
	mustCLI(t, m, exitOK, "deploy", "update", "w", "--rollout-percent", "30", "--rollout-metric", "accuracy", "--wait=false")
	mustCLI(t, m, exitOK, "deploy", "update", "w", "--rollout-window", "5s", "--rollout-min-labels", "7", "--wait=false")
	want := deploy.RolloutPolicy{CanaryPercent: 30, Metric: "accuracy", Window: deploy.Duration(5 * time.Second), MinLabels: 7}
	if p := policy(); p == nil || !reflect.DeepEqual(*p, want) {
		t.Fatalf("after the updates: got policy %+v, want %+v (flags not given keep their value)", p, want)
	}
	mustCLI(t, m, exitOK, "deploy", "update", "w", "--no-rollout", "--wait=false")
	if p := policy(); p != nil {
		t.Fatalf("after --no-rollout: got policy %+v, want none", *p)
	}
	out, _ := mustCLI(t, m, exitOK, "deploy", "show", "w")
	if !strings.Contains(out, "rollout:    off") {
		t.Fatalf("deploy show without a policy:\n%s", out)
	}
}
