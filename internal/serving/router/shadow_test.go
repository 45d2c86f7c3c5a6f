package router

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/xgboost"
)

// predictFixture predicts rows of a fixture with the native runtime
// directly.
func predictFixture(t *testing.T, model string, fx fixture, rows []int) []float32 {
	t.Helper()
	m, err := xgboost.LoadFile(filepath.Join("..", "xgboost", "testdata", model))
	if err != nil {
		t.Fatal(err)
	}
	var vals []float32
	for _, i := range rows {
		for _, v := range fx.Rows[i] {
			if v == nil {
				vals = append(vals, float32(math.NaN()))
			} else {
				vals = append(vals, float32(*v))
			}
		}
	}
	out := make([]float32, len(rows))
	if err := m.Predict(context.Background(), serving.Batch{Rows: len(rows), Cols: len(fx.Features), Values: vals}, out); err != nil {
		t.Fatal(err)
	}
	return out
}

// shadowStatus returns the status of the deployment's shadow revision.
func shadowStatus(t *testing.T, r *Router, name string) RevisionStatus {
	t.Helper()
	st, ok := r.Status(name)
	if !ok {
		t.Fatalf("no deployment %s", name)
	}
	for _, rs := range st.Revisions {
		if rs.Role == deploy.RoleShadow {
			return rs
		}
	}
	t.Fatalf("no shadow in %+v", st)
	return RevisionStatus{}
}

// TestShadowComparison mirrors traffic to a native shadow and checks the
// recorded agreement and mean absolute difference against the two models'
// own predictions.
func TestShadowComparison(t *testing.T) {
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("weather", 2, xgbFiles("missing.json"))
	cp.put(newDep("weather",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100),
		slot(deploy.RoleShadow, 2, "weather", 2, "xgboost", 0)))
	r, srv := newRouter(t, cp, Config{}, false)
	fx := loadFixture(t, "binary_logistic")
	var rows []int
	for i := range 40 {
		rows = append(rows, i)
		resp := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("", i))
		if resp.status != 200 || resp.header.Get(deploy.RevisionHeader) != "1" {
			t.Fatalf("got %d %s from revision %q", resp.status, resp.body, resp.header.Get(deploy.RevisionHeader))
		}
	}
	waitFor(t, "40 rows compared", func() bool { return shadowStatus(t, r, "weather").Compared == 40 })
	primary := predictFixture(t, "binary_logistic.json", fx, rows)
	shadow := predictFixture(t, "missing.json", fx, rows)
	agreed, sum := 0, 0.0
	for i := range primary {
		if (primary[i] >= 0.5) == (shadow[i] >= 0.5) {
			agreed++
		}
		sum += math.Abs(float64(primary[i]) - float64(shadow[i]))
	}
	rs := shadowStatus(t, r, "weather")
	if want := float64(agreed) / 40; math.Abs(rs.Agreement-want) > 1e-9 {
		t.Errorf("agreement: got %v, want %v", rs.Agreement, want)
	}
	if want := sum / 40; math.Abs(rs.MeanAbsDiff-want) > 1e-6 {
		t.Errorf("mean absolute difference: got %v, want %v", rs.MeanAbsDiff, want)
	}
	if rs.Requests != 40 || rs.Errors != 0 || rs.ShadowErrors != 0 || rs.Revision != 2 || !rs.Serving {
		t.Errorf("shadow status: %+v", rs)
	}
	// A request pinned to the shadow is answered by it.
	resp := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("", 0), deploy.RevisionHeader, "shadow")
	if resp.status != 200 || resp.header.Get(deploy.RevisionHeader) != "2" || !near(oipOutputs(t, resp.body), []float64{float64(shadow[0])}) {
		t.Errorf("pinned to the shadow: got %d %s from %q", resp.status, resp.body, resp.header.Get(deploy.RevisionHeader))
	}
}

// TestShadowNeverDelays mirrors traffic to a process shadow that does not
// answer until released: the clients get every answer meanwhile, copies
// beyond the queue are dropped and counted, and the queued ones are
// compared once the shadow answers.
func TestShadowNeverDelays(t *testing.T) {
	release := filepath.Join(t.TempDir(), "release")
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("adder", 1, procFiles("block", map[string]string{"RELEASE_FILE": release}))
	cp.put(newDep("weather",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100),
		slot(deploy.RoleShadow, 2, "adder", 1, "process", 0)))
	r, srv := newRouter(t, cp, Config{ShadowQueue: 4, ShadowWorkers: 1}, false)
	fx := loadFixture(t, "binary_logistic")
	shadowRev := r.lookup("weather").table.Load().shadow.rev
	const n = 20
	for i := range n {
		resp := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("", i%4))
		if resp.status != 200 || resp.header.Get(deploy.RevisionHeader) != "1" {
			t.Fatalf("got %d %s", resp.status, resp.body)
		}
	}
	// Every answer came back while the shadow had answered nothing.
	if rs := shadowStatus(t, r, "weather"); rs.Compared != 0 || rs.Requests != 0 {
		t.Fatalf("the shadow answered before its release: %+v", rs)
	}
	waitFor(t, "the shadow busy", func() bool { return shadowRev.inflight.Load() == 1 })
	rs := shadowStatus(t, r, "weather")
	if rs.ShadowDropped < n-5 || rs.ShadowDropped > n-4 {
		t.Errorf("dropped: got %d of %d copies, want %d or %d (a queue of 4 and one in the shadow)", rs.ShadowDropped, n, n-5, n-4)
	}
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	sent := n - rs.ShadowDropped
	waitFor(t, "the queued copies compared", func() bool { return shadowStatus(t, r, "weather").Compared == sent })
	rs = shadowStatus(t, r, "weather")
	if rs.Requests != sent || rs.ShadowErrors != 0 {
		t.Errorf("shadow status: %+v", rs)
	}
	// The shadow sums the rows (features of weather rows sum far above
	// 0.5) while the primary says no rain for rows 0-2: they disagree
	// on those rows.
	if rs.Agreement >= 1 {
		t.Errorf("agreement: got %v, want below 1", rs.Agreement)
	}
}

// TestAutoRollback serves a canary that fails every request: the clients
// see errors only from the canary, the router asks the control plane to
// roll it back (conditionally, automatically, with the figures) and
// traffic returns to the primary.
func TestAutoRollback(t *testing.T) {
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("adder", 1, procFiles("fail", nil))
	d := newDep("weather",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 50),
		slot(deploy.RoleCanary, 2, "adder", 1, "process", 50))
	d.Spec.Rollback = deploy.RollbackPolicy{MinRequests: 10}
	cp.put(d)
	r, srv := newRouter(t, cp, Config{CheckInterval: 10 * time.Millisecond}, true)
	fx := loadFixture(t, "binary_logistic")
	body := fx.oipBody("", 0)
	url := srv.URL + "/v2/models/weather/infer"
	canaryErrors := 0
	for len(cp.rollbackCalls()) == 0 {
		resp := do(t, nil, "POST", url, body)
		switch rev := resp.header.Get(deploy.RevisionHeader); {
		case resp.status == 200 && rev == "1":
		case resp.status == 500 && rev == "2" && strings.Contains(resp.body, "model exploded"):
			canaryErrors++
		default:
			t.Fatalf("got %d %s from revision %q", resp.status, resp.body, rev)
		}
		if canaryErrors > 10000 {
			t.Fatal("no rollback after 10000 canary errors")
		}
	}
	calls := cp.rollbackCalls()
	c := calls[0]
	if c.Name != "weather" || c.Req.IfCanaryRevision != 2 || !c.Req.Automatic || !strings.Contains(c.Req.Reason, "error rate") {
		t.Errorf("rollback call: %+v", c)
	}
	var details struct {
		Rule   string `json:"rule"`
		Canary struct {
			Requests  int64   `json:"requests"`
			ErrorRate float64 `json:"error_rate"`
		} `json:"canary"`
	}
	if err := json.Unmarshal(c.Req.Details, &details); err != nil || details.Rule != RuleErrorRate ||
		details.Canary.ErrorRate != 1 || details.Canary.Requests < 10 {
		t.Errorf("rollback details: %s (%v)", c.Req.Details, err)
	}
	waitFor(t, "the canary gone", func() bool {
		st, _ := r.Status("weather")
		return len(st.Revisions) == 1
	})
	for range 50 {
		resp := do(t, nil, "POST", url, body)
		if resp.status != 200 || resp.header.Get(deploy.RevisionHeader) != "1" {
			t.Fatalf("after the rollback: got %d %s from revision %q", resp.status, resp.body, resp.header.Get(deploy.RevisionHeader))
		}
	}
	if n := len(cp.rollbackCalls()); n != 1 {
		t.Errorf("got %d rollback calls, want 1", n)
	}
}

// TestRollbackRetry judges a bad canary while the control plane fails the
// first rollback call: traffic leaves the canary at once all the same, and
// the next check calls again.
func TestRollbackRetry(t *testing.T) {
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("adder", 1, procFiles("fail", nil))
	d := newDep("weather",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 50),
		slot(deploy.RoleCanary, 2, "adder", 1, "process", 50))
	d.Spec.Rollback = deploy.RollbackPolicy{MinRequests: 5}
	cp.put(d)
	cp.rollbackErr = []error{errors.New("control plane unreachable")}
	r, srv := newRouter(t, cp, Config{}, false)
	fx := loadFixture(t, "binary_logistic")
	body := fx.oipBody("", 0)
	url := srv.URL + "/v2/models/weather/infer"
	for range 5 {
		if resp := do(t, nil, "POST", url, body, deploy.RevisionHeader, "canary"); resp.status != 500 {
			t.Fatalf("canary: got %d %s", resp.status, resp.body)
		}
	}
	ctx := context.Background()
	r.Check(ctx)
	if n := len(cp.rollbackCalls()); n != 1 {
		t.Fatalf("got %d rollback calls, want 1", n)
	}
	st, _ := r.Status("weather")
	if len(st.Revisions) != 2 || !st.Revisions[1].Tripped {
		t.Errorf("status after the failed call: %+v", st)
	}
	for range 50 {
		resp := do(t, nil, "POST", url, body)
		if resp.status != 200 || resp.header.Get(deploy.RevisionHeader) != "1" {
			t.Fatalf("with a tripped canary: got %d from revision %q", resp.status, resp.header.Get(deploy.RevisionHeader))
		}
	}
	r.Check(ctx)
	if calls := cp.rollbackCalls(); len(calls) != 2 || calls[1].Req.IfCanaryRevision != 2 {
		t.Fatalf("rollback calls: %+v", calls)
	}
	// Check applies the new state in the background.
	waitFor(t, "the canary gone after the rollback", func() bool {
		st, _ := r.Status("weather")
		return len(st.Revisions) == 1 && st.Revisions[0].Revision == 1
	})
	r.Check(ctx)
	if n := len(cp.rollbackCalls()); n != 2 {
		t.Errorf("got %d rollback calls after the canary left, want 2", n)
	}
}

// TestProcessShadowTakesOIPOnly mirrors a native primary's traffic over
// the three protocols to a process shadow: only OIP requests reach it
// (the others could not be compared), and none counts as a shadow error.
func TestProcessShadowTakesOIPOnly(t *testing.T) {
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("adder", 1, procFiles("serve", nil))
	cp.put(newDep("weather",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100),
		slot(deploy.RoleShadow, 2, "adder", 1, "process", 0)))
	r, srv := newRouter(t, cp, Config{ShadowWorkers: 1}, false)
	fx := loadFixture(t, "binary_logistic")
	var vals []string
	for _, v := range fx.Rows[0] {
		if v == nil {
			vals = append(vals, "null")
		} else {
			vals = append(vals, strconv.FormatFloat(*v, 'g', -1, 64))
		}
	}
	row := "[" + strings.Join(vals, ",") + "]"
	cols, _ := json.Marshal(fx.Features)
	for range 3 {
		if resp := do(t, nil, "POST", srv.URL+"/v1/models/weather:predict", `{"instances":[`+row+`]}`); resp.status != 200 {
			t.Fatalf("KServe V1: got %d %s", resp.status, resp.body)
		}
		if resp := do(t, nil, "POST", srv.URL+"/serving-endpoints/weather/invocations",
			`{"dataframe_split":{"columns":`+string(cols)+`,"data":[`+row+`]}}`); resp.status != 200 {
			t.Fatalf("MLflow: got %d %s", resp.status, resp.body)
		}
	}
	if resp := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("", 0)); resp.status != 200 {
		t.Fatalf("OIP: got %d %s", resp.status, resp.body)
	}
	// One worker takes the copies in order: once the OIP copy is
	// compared, any copy before it has run.
	waitFor(t, "the OIP copy compared", func() bool {
		rs := shadowStatus(t, r, "weather")
		return rs.Compared+rs.ShadowErrors >= 1
	})
	if rs := shadowStatus(t, r, "weather"); rs.ShadowErrors != 0 || rs.Requests != 1 || rs.Compared != 1 {
		t.Errorf("shadow status: %+v, want one OIP copy compared and no error", rs)
	}
}

// TestShadowQueueBytes bounds the memory of shadow copies: over the
// budget they are dropped and counted, and the budget is given back once
// the shadow ran them.
func TestShadowQueueBytes(t *testing.T) {
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("weather", 2, xgbFiles("missing.json"))
	cp.put(newDep("weather",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100),
		slot(deploy.RoleShadow, 2, "weather", 2, "xgboost", 0)))
	cp.put(newDep("roomy",
		slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 100),
		slot(deploy.RoleShadow, 2, "weather", 2, "xgboost", 0)))
	r, srv := newRouter(t, cp, Config{ShadowQueueBytes: 1}, false)
	fx := loadFixture(t, "binary_logistic")
	const n = 10
	for i := range n {
		if resp := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("", i)); resp.status != 200 {
			t.Fatalf("got %d %s", resp.status, resp.body)
		}
	}
	if rs := shadowStatus(t, r, "weather"); rs.ShadowDropped != n || rs.Requests != 0 {
		t.Errorf("a budget of 1 byte: got %d copies dropped and %d run, want %d and 0", rs.ShadowDropped, rs.Requests, n)
	}
	if got := r.lookup("weather").shadowBytes.Load(); got != 0 {
		t.Errorf("bytes held: got %d, want 0", got)
	}

	r2, srv2 := newRouter(t, cp, Config{}, false)
	for i := range n {
		if resp := do(t, nil, "POST", srv2.URL+"/v2/models/roomy/infer", fx.oipBody("", i)); resp.status != 200 {
			t.Fatalf("got %d %s", resp.status, resp.body)
		}
	}
	waitFor(t, "every copy compared", func() bool { return shadowStatus(t, r2, "roomy").Compared == n })
	waitFor(t, "the budget given back", func() bool { return r2.lookup("roomy").shadowBytes.Load() == 0 })
	if rs := shadowStatus(t, r2, "roomy"); rs.ShadowDropped != 0 {
		t.Errorf("default budget: %d copies dropped", rs.ShadowDropped)
	}
}

// TestRollbackWindowChange grows a deployment's rollback window: its
// revisions' windows follow (in 60 buckets), and the verdict names the
// span the figures cover, not the new window they do not cover yet.
func TestRollbackWindowChange(t *testing.T) {
	cp := newFakeCP()
	cp.model("weather", 1, xgbFiles("binary_logistic.json"))
	cp.model("adder", 1, procFiles("fail", nil))
	dep := func(window time.Duration) *deploy.Deployment {
		d := newDep("weather",
			slot(deploy.RolePrimary, 1, "weather", 1, "xgboost", 50),
			slot(deploy.RoleCanary, 2, "adder", 1, "process", 50))
		d.Spec.Rollback = deploy.RollbackPolicy{MinRequests: 5, Window: deploy.Duration(window)}
		return d
	}
	cp.put(dep(time.Minute))
	r, srv := newRouter(t, cp, Config{}, false)
	tb := r.lookup("weather").table.Load()
	if got := tb.canary.rev.window.Span(); got != time.Minute {
		t.Fatalf("canary window %v, want 1m", got)
	}
	cp.put(dep(10 * time.Minute))
	mustSync(t, r)
	tb = r.lookup("weather").table.Load()
	for _, e := range tb.entries {
		if got := e.rev.window.Span(); got != 10*time.Minute || len(e.rev.window.buckets) != windowBuckets {
			t.Errorf("%s window after the change: %v in %d buckets, want 10m in %d", e.role, got, len(e.rev.window.buckets), windowBuckets)
		}
	}
	fx := loadFixture(t, "binary_logistic")
	for range 5 {
		if resp := do(t, nil, "POST", srv.URL+"/v2/models/weather/infer", fx.oipBody("", 0), deploy.RevisionHeader, "canary"); resp.status != 500 {
			t.Fatalf("canary: got %d %s", resp.status, resp.body)
		}
	}
	r.Check(context.Background())
	calls := cp.rollbackCalls()
	if len(calls) != 1 {
		t.Fatalf("got %d rollback calls, want 1", len(calls))
	}
	var d struct{ Window string }
	if err := json.Unmarshal(calls[0].Req.Details, &d); err != nil {
		t.Fatal(err)
	}
	covered, err := time.ParseDuration(d.Window)
	if err != nil || covered < time.Minute || covered > 5*time.Minute || strings.Contains(calls[0].Req.Reason, "10m0s") {
		t.Errorf("verdict over %q (%s), want the minute or so the window covers", d.Window, calls[0].Req.Reason)
	}
}
