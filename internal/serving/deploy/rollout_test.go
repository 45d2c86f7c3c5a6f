package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// fakeHealth is a HealthSource answering set figures per model version
// ("flights/3"); a version without figures served nothing. during, when
// set, runs inside each call (to make a change concurrent with a
// judgement).
type fakeHealth struct {
	mu      sync.Mutex
	figures map[string]deploy.VersionHealth
	calls   []string // "deployment flights/3 since-ms"
	during  func()
}

func (f *fakeHealth) VersionHealth(ctx context.Context, deployment, model string, version int64, since time.Time) (deploy.VersionHealth, error) {
	f.mu.Lock()
	key := fmt.Sprintf("%s/%d", model, version)
	f.calls = append(f.calls, fmt.Sprintf("%s %s %d", deployment, key, since.UnixMilli()))
	h, during := f.figures[key], f.during
	f.during = nil // once
	f.mu.Unlock()
	if during != nil {
		during()
	}
	return h, nil
}

func (f *fakeHealth) set(key string, h deploy.VersionHealth) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.figures == nil {
		f.figures = map[string]deploy.VersionHealth{}
	}
	f.figures[key] = h
}

// testClock is a settable clock for Service.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rolloutEnv is modelEnv (flights 1 to 4, champion → 2) with a fake clock
// and a fake health source, and deployment "r" serving flights@champion
// under policy.
func rolloutEnv(t *testing.T, policy deploy.RolloutPolicy) (*env, *testClock, *fakeHealth) {
	t.Helper()
	e := modelEnv(t)
	clock := &testClock{t: time.UnixMilli(1_800_000_000_000)}
	health := &fakeHealth{}
	e.svc.Now, e.svc.Health = clock.now, health
	_, err := e.svc.Create(context.Background(), "r", deploy.Spec{Model: ref(t, "flights@champion"), Rollout: &policy})
	must(t, "Create", err)
	return e, clock, health
}

// champion returns the version flights@champion names.
func (e *env) champion(t *testing.T) int64 {
	t.Helper()
	v, err := e.reg.GetModelVersionByAlias(context.Background(), "flights", "champion")
	must(t, "get flights@champion", err)
	return v.Version
}

// healthy is a canary's or primary's figures that pass every check.
var healthy = deploy.VersionHealth{Requests: 500, Errors: 1, LatencyP99Ms: 8, Labels: 200, Metrics: map[string]float64{"accuracy": 0.9, "rmse": 1}}

func TestRolloutStartsCanary(t *testing.T) {
	e, clock, _ := rolloutEnv(t, deploy.RolloutPolicy{CanaryPercent: 25, Window: deploy.Duration(10 * time.Minute)})
	ctx := context.Background()
	must(t, "SyncAliases with nothing moved", e.svc.SyncAliases(ctx))
	if d := e.get(t, "r"); d.Generation != 1 {
		t.Fatalf("SyncAliases with the alias unmoved changed the deployment: generation %d", d.Generation)
	}
	steps := []struct {
		name    string
		alias   int64
		slots   string
		typ     string
		message string
		reason  string
	}{
		{"the alias moves: a canary starts", 3,
			"primary r1 flights/2 flights@champion 75%, canary r2 flights/3 flights@3 25%", deploy.EventRolloutStarted,
			"alias flights@champion moved to flights/3: canary flights/3 (revision 2) takes 25% of traffic; judged after 10m0s",
			"alias flights@champion moved to flights/3"},
		{"the alias moves again: the canary is replaced", 4,
			"primary r1 flights/2 flights@champion 75%, canary r3 flights/4 flights@4 25%", deploy.EventRolloutStarted,
			"alias flights@champion moved to flights/4: canary flights/4 (revision 3) takes 25% of traffic; judged after 10m0s (it replaces rollout canary flights/3 (revision 2))",
			"alias flights@champion moved to flights/4"},
		{"the alias moves back: the canary is removed", 2,
			"primary r1 flights/2 flights@champion 100%", deploy.EventRolledBack,
			"rolled back: alias flights@champion moved back to flights/2, which the primary serves: rollout canary flights/4 (revision 3) removed, all traffic to primary flights@champion → flights/2 (revision 1)",
			"alias moved back"},
	}
	for i, st := range steps {
		clock.advance(time.Minute)
		e.setAlias(t, "flights", "champion", st.alias)
		must(t, st.name, e.svc.SyncAliases(ctx))
		d := e.get(t, "r")
		if got := slotsText(d.Slots); got != st.slots {
			t.Fatalf("%s:\ngot  %s\nwant %s", st.name, got, st.slots)
		}
		if d.Generation != int64(i+2) || d.Spec.Model != ref(t, "flights@champion") {
			t.Fatalf("%s: got generation %d, model %s; want %d, flights@champion", st.name, d.Generation, d.Spec.Model, i+2)
		}
		if c := d.Slot(deploy.RoleCanary); c != nil && (!c.Rollout || c.Since != clock.now().UnixMilli() || c.Flavor != "xgboost") {
			t.Fatalf("%s: canary %+v: want rollout true, since now (%d), flavor xgboost", st.name, *c, clock.now().UnixMilli())
		}
		ev := e.events(t, "r")[0]
		if ev.Type != st.typ || !ev.Automatic || ev.Message != st.message {
			t.Fatalf("%s: event:\ngot  %s automatic=%v %q\nwant %s automatic=true %q", st.name, ev.Type, ev.Automatic, ev.Message, st.typ, st.message)
		}
		if det := decodeDetails(t, ev); det.Reason != st.reason || slotsText(det.After) != st.slots {
			t.Fatalf("%s: event details: got reason %q, after %s; want %q, the slots", st.name, det.Reason, slotsText(det.After), st.reason)
		}
		must(t, st.name+": SyncAliases again", e.svc.SyncAliases(ctx))
		if again := e.get(t, "r"); again.Generation != d.Generation {
			t.Fatalf("%s: a second SyncAliases changed the deployment again: generation %d → %d", st.name, d.Generation, again.Generation)
		}
	}
	// The canary's JSON carries since and rollout.
	e.setAlias(t, "flights", "champion", 3)
	must(t, "SyncAliases", e.svc.SyncAliases(ctx))
	b, err := json.Marshal(e.get(t, "r").Slot(deploy.RoleCanary))
	must(t, "encode the canary", err)
	if !strings.Contains(string(b), `"rollout":true`) || !strings.Contains(string(b), fmt.Sprintf(`"since":%d`, clock.now().UnixMilli())) {
		t.Fatalf("canary JSON %s: want rollout true and since", b)
	}
}

// TestRolloutNotJudgedWithoutMonitoring: a server without figures leaves
// rollout canaries to a server that has them.
func TestRolloutNotJudgedWithoutMonitoring(t *testing.T) {
	e, clock, _ := rolloutEnv(t, deploy.RolloutPolicy{Window: deploy.Duration(10 * time.Minute), Metric: "accuracy"})
	e.svc.Health = nil
	ctx := context.Background()
	e.setAlias(t, "flights", "champion", 3)
	must(t, "SyncAliases", e.svc.SyncAliases(ctx))
	started := e.get(t, "r")
	clock.advance(2 * time.Hour) // past the window and max_wait
	must(t, "ReconcileRollouts", e.svc.ReconcileRollouts(ctx))
	d := e.get(t, "r")
	if d.Generation != started.Generation {
		t.Fatalf("a server without monitoring judged the canary: %s", slotsText(d.Slots))
	}
}

func TestRolloutPromoted(t *testing.T) {
	for _, tc := range []struct {
		name    string
		health  bool
		message string // a substring of the promotion's message
	}{
		{"healthy", true, "(healthy after 10m0s: 500 requests, error rate 0.002 vs primary 0.002, p99 8.0ms vs 8.0ms, live accuracy 0.9000 vs primary 0.9000 over 200 and 200 labels)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, clock, health := rolloutEnv(t, deploy.RolloutPolicy{Window: deploy.Duration(10 * time.Minute), Metric: "accuracy"})
			if !tc.health {
				e.svc.Health = nil
			}
			ctx := context.Background()
			health.set("flights/2", healthy)
			health.set("flights/3", healthy)
			e.setAlias(t, "flights", "champion", 3)
			must(t, "SyncAliases", e.svc.SyncAliases(ctx))
			started := e.get(t, "r")
			since := started.Slot(deploy.RoleCanary).Since

			clock.advance(10*time.Minute - time.Millisecond)
			must(t, "ReconcileRollouts before the window", e.svc.ReconcileRollouts(ctx))
			if d := e.get(t, "r"); d.Generation != started.Generation {
				t.Fatalf("a canary younger than its window was judged: generation %d → %d", started.Generation, d.Generation)
			}
			clock.advance(time.Millisecond)
			must(t, "ReconcileRollouts", e.svc.ReconcileRollouts(ctx))
			d := e.get(t, "r")
			if got, want := slotsText(d.Slots), "primary r2 flights/3 flights@champion 100%"; got != want {
				t.Fatalf("after the promotion:\ngot  %s\nwant %s", got, want)
			}
			p := d.Slot(deploy.RolePrimary)
			if d.Spec.Model != ref(t, "flights@champion") || d.Spec.Canary != nil || d.NextRevision != started.NextRevision ||
				p.Rollout || p.Since != clock.now().UnixMilli() {
				t.Fatalf("after the promotion: spec %+v, next revision %d (was %d), primary %+v; want the primary following flights@champion, no new revision, since now",
					d.Spec, d.NextRevision, started.NextRevision, *p)
			}
			ev := e.events(t, "r")[0]
			if ev.Type != deploy.EventPromoted || !ev.Automatic || !strings.Contains(ev.Message, tc.message) ||
				!strings.Contains(ev.Message, "promoted automatically: canary flights/3 (revision 2) now serves all traffic as primary, replacing flights@champion → flights/2 (revision 1); the primary follows flights@champion again") {
				t.Fatalf("promotion event: got %s automatic=%v %q", ev.Type, ev.Automatic, ev.Message)
			}
			var v deploy.RolloutVerdict
			must(t, "decode the verdict", json.Unmarshal(decodeDetails(t, ev).Details, &v))
			if v.Decision != deploy.DecisionPromote || v.CanaryRevision != 2 || v.Since != since || v.Policy.MinRequests != deploy.DefaultRolloutMinRequests ||
				(v.Canary != nil) != tc.health || (v.Primary != nil) != tc.health {
				t.Fatalf("verdict: got %+v", v)
			}
			if tc.health {
				health.mu.Lock()
				calls := strings.Join(health.calls, ", ")
				health.mu.Unlock()
				if want := fmt.Sprintf("r flights/3 %d, r flights/2 %d", since, since); calls != want {
					t.Fatalf("health calls: got %s, want %s", calls, want)
				}
			}
			// The primary follows the alias, which names what it serves.
			must(t, "SyncAliases after the promotion", e.svc.SyncAliases(ctx))
			must(t, "ReconcileRollouts after the promotion", e.svc.ReconcileRollouts(ctx))
			if again := e.get(t, "r"); again.Generation != d.Generation {
				t.Fatalf("after the promotion, the controllers changed the deployment again: generation %d → %d", d.Generation, again.Generation)
			}
			if v := e.champion(t); v != 3 {
				t.Fatalf("flights@champion: got %d, want 3 (promotion keeps the alias)", v)
			}
		})
	}
}

func TestRolloutRolledBack(t *testing.T) {
	bad := func(f func(h *deploy.VersionHealth)) deploy.VersionHealth {
		h := healthy
		h.Metrics = map[string]float64{"accuracy": 0.9, "rmse": 1}
		f(&h)
		return h
	}
	for _, tc := range []struct {
		name   string
		policy deploy.RolloutPolicy
		canary deploy.VersionHealth
		// waits: how long after the window the canary still waits.
		waits  time.Duration
		reason string
	}{
		{"errors", deploy.RolloutPolicy{}, bad(func(h *deploy.VersionHealth) { h.Errors = 50 }), 0,
			"error rate 0.100 vs primary 0.002 over 500 canary requests (more than +0.02)"},
		{"latency", deploy.RolloutPolicy{}, bad(func(h *deploy.VersionHealth) { h.LatencyP99Ms = 30 }), 0,
			"p99 latency 30.0ms vs primary 8.0ms (over 2×)"},
		{"accuracy", deploy.RolloutPolicy{Metric: "accuracy"}, bad(func(h *deploy.VersionHealth) { h.Metrics["accuracy"] = 0.8 }), 0,
			"live accuracy 0.8000 vs primary 0.9000 over 200 and 200 labels (worse by more than 0.02)"},
		{"rmse (lower is better)", deploy.RolloutPolicy{Metric: "rmse", MaxDegradation: 0.1}, bad(func(h *deploy.VersionHealth) { h.Metrics["rmse"] = 1.2 }), 0,
			"live rmse 1.2000 vs primary 1.0000 over 200 and 200 labels (worse by more than 0.1)"},
		{"not enough requests", deploy.RolloutPolicy{MaxWait: deploy.Duration(30 * time.Minute)}, bad(func(h *deploy.VersionHealth) { h.Requests = 40 }), 20 * time.Minute,
			"not enough evidence within 30m0s: the canary answered 40 requests of the 100 needed"},
		{"not enough labels", deploy.RolloutPolicy{Metric: "accuracy"}, bad(func(h *deploy.VersionHealth) { h.Labels = 3 }), 50 * time.Minute,
			"not enough evidence within 1h0m0s: the canary has 3 feedback labels of the 100 needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.policy.Window = deploy.Duration(10 * time.Minute)
			e, clock, health := rolloutEnv(t, tc.policy)
			ctx := context.Background()
			health.set("flights/2", healthy)
			health.set("flights/3", tc.canary)
			e.setAlias(t, "flights", "champion", 3)
			must(t, "SyncAliases", e.svc.SyncAliases(ctx))
			started := e.get(t, "r")
			clock.advance(10 * time.Minute)
			if tc.waits > 0 {
				must(t, "ReconcileRollouts at the window", e.svc.ReconcileRollouts(ctx))
				clock.advance(tc.waits - time.Millisecond)
				must(t, "ReconcileRollouts before max wait", e.svc.ReconcileRollouts(ctx))
				if d := e.get(t, "r"); d.Generation != started.Generation {
					t.Fatalf("a canary lacking evidence before max wait was judged: %s", e.events(t, "r")[0].Message)
				}
				clock.advance(time.Millisecond)
			}
			must(t, "ReconcileRollouts", e.svc.ReconcileRollouts(ctx))
			d := e.get(t, "r")
			if got, want := slotsText(d.Slots), "primary r1 flights/2 flights@champion 100%"; got != want || d.Spec.Canary != nil {
				t.Fatalf("after the rollback:\ngot  %s\nwant %s", got, want)
			}
			ev := e.events(t, "r")[0]
			want := "rolled back automatically: canary flights/3 (revision 2) removed, all traffic to primary flights@champion → flights/2 (revision 1); alias flights@champion set back to flights/2 so that flights/3 is not rolled out again (" + tc.reason + ")"
			if ev.Type != deploy.EventAutoRolledBack || !ev.Automatic || ev.Message != want {
				t.Fatalf("rollback event:\ngot  %s %q\nwant %s %q", ev.Type, ev.Message, deploy.EventAutoRolledBack, want)
			}
			det := decodeDetails(t, ev)
			var v deploy.RolloutVerdict
			must(t, "decode the verdict", json.Unmarshal(det.Details, &v))
			if det.Reason != tc.reason || v.Decision != deploy.DecisionRollback || v.Reason != tc.reason || v.Canary == nil || v.Canary.Requests != tc.canary.Requests {
				t.Fatalf("event details: got reason %q, verdict %+v", det.Reason, v)
			}
			if v := e.champion(t); v != 2 {
				t.Fatalf("flights@champion: got %d, want 2 (set back to the primary's version)", v)
			}
			// The rejected version is not rolled out again.
			must(t, "SyncAliases after the rollback", e.svc.SyncAliases(ctx))
			if again := e.get(t, "r"); again.Generation != d.Generation {
				t.Fatalf("after the rollback, SyncAliases changed the deployment: %s", e.events(t, "r")[0].Message)
			}
		})
	}
}

// TestRolloutRemovedByHand: removing a rollout canary by hand (rollback or
// update) also sets the alias back; promoting it by hand keeps the primary
// following the alias.
func TestRolloutRemovedByHand(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		change   func(e *env) (*deploy.Deployment, error)
		slots    string
		champion int64
		message  string
	}{
		{"rollback", func(e *env) (*deploy.Deployment, error) {
			return e.svc.Rollback(ctx, "r", deploy.RollbackRequest{Reason: "by hand"})
		}, "primary r1 flights/2 flights@champion 100%", 2,
			"rolled back: canary flights/3 (revision 2) removed, all traffic to primary flights@champion → flights/2 (revision 1); alias flights@champion set back to flights/2 so that flights/3 is not rolled out again (by hand)"},
		{"update --no-canary", func(e *env) (*deploy.Deployment, error) {
			return e.svc.Update(ctx, "r", deploy.Update{Canary: &deploy.Ref{}})
		}, "primary r1 flights/2 flights@champion 100%", 2,
			"updated: canary flights/3 (revision 2) removed; alias flights@champion set back to flights/2 so that flights/3 is not rolled out again"},
		{"update --no-rollout", func(e *env) (*deploy.Deployment, error) {
			return e.svc.Update(ctx, "r", deploy.Update{Rollout: &deploy.RolloutPolicy{Disabled: true}})
		}, "primary r1 flights/2 flights@champion 100%", 2,
			"updated: canary flights/3 (revision 2) removed; rollout policy canary 20%, judged after 10m0s once it has 100 requests (rolled back without them after 1h0m0s), max error rate +0.02, max p99 ×2 (and +5ms) → off; alias flights@champion set back to flights/2 so that flights/3 is not rolled out again"},
		{"promote", func(e *env) (*deploy.Deployment, error) {
			return e.svc.Promote(ctx, "r")
		}, "primary r2 flights/3 flights@champion 100%", 3,
			"promoted: canary flights/3 (revision 2) now serves all traffic as primary, replacing flights@champion → flights/2 (revision 1); the primary follows flights@champion again"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, _, _ := rolloutEnv(t, deploy.RolloutPolicy{})
			e.setAlias(t, "flights", "champion", 3)
			must(t, "SyncAliases", e.svc.SyncAliases(ctx))
			d, err := tc.change(e)
			must(t, tc.name, err)
			if got := slotsText(d.Slots); got != tc.slots {
				t.Fatalf("slots:\ngot  %s\nwant %s", got, tc.slots)
			}
			if ev := e.events(t, "r")[0]; ev.Message != tc.message {
				t.Fatalf("event:\ngot  %q\nwant %q", ev.Message, tc.message)
			}
			if v := e.champion(t); v != tc.champion {
				t.Fatalf("flights@champion: got %d, want %d", v, tc.champion)
			}
			must(t, "SyncAliases after", e.svc.SyncAliases(ctx))
			if again := e.get(t, "r"); again.Generation != d.Generation {
				t.Fatalf("SyncAliases changed the deployment after %s: %s", tc.name, e.events(t, "r")[0].Message)
			}
		})
	}
}

// aliasFailing is a registry whose alias changes fail while fail is set.
type aliasFailing struct {
	deploy.Registry
	fail bool
}

func (r *aliasFailing) SetRegisteredModelAlias(ctx context.Context, name, alias, version string) error {
	if r.fail {
		return errors.New("registry unreachable")
	}
	return r.Registry.SetRegisteredModelAlias(ctx, name, alias, version)
}

// TestRolloutRejectedWhenAliasRevertFails: the rejection is stored with the
// rollback, so a set-back that fails (or a crash before it) never rolls the
// version out again, and the follower sets the alias back later.
func TestRolloutRejectedWhenAliasRevertFails(t *testing.T) {
	e, clock, health := rolloutEnv(t, deploy.RolloutPolicy{Window: deploy.Duration(time.Minute)})
	ctx := context.Background()
	reg := &aliasFailing{Registry: e.svc.Registry}
	e.svc.Registry = reg
	health.set("flights/2", healthy)
	health.set("flights/3", deploy.VersionHealth{Requests: 500, Errors: 400, LatencyP99Ms: 8})
	e.setAlias(t, "flights", "champion", 3)
	must(t, "SyncAliases", e.svc.SyncAliases(ctx))
	clock.advance(time.Minute)
	reg.fail = true
	must(t, "ReconcileRollouts", e.svc.ReconcileRollouts(ctx))
	d := e.get(t, "r")
	if got, want := slotsText(d.Slots), "primary r1 flights/2 flights@champion 100%"; got != want {
		t.Fatalf("after the rollback:\ngot  %s\nwant %s", got, want)
	}
	if got := d.Spec.Rollout.Rejected; len(got) != 1 || got[0] != 3 {
		t.Fatalf("rejected versions: got %v, want [3]", got)
	}
	if v := e.champion(t); v != 3 {
		t.Fatalf("flights@champion: got %d, want 3 (the set-back failed)", v)
	}
	for range 3 {
		must(t, "SyncAliases while the registry fails", e.svc.SyncAliases(ctx))
	}
	if again := e.get(t, "r"); again.Generation != d.Generation {
		t.Fatalf("the rejected version was rolled out again: %s", e.events(t, "r")[0].Message)
	}
	reg.fail = false
	must(t, "SyncAliases once the registry works", e.svc.SyncAliases(ctx))
	if v := e.champion(t); v != 2 {
		t.Fatalf("flights@champion after the retry: got %d, want 2", v)
	}
	// A new version rolls out as usual.
	e.setAlias(t, "flights", "champion", 4)
	must(t, "SyncAliases", e.svc.SyncAliases(ctx))
	if got, want := slotsText(e.get(t, "r").Slots), "primary r1 flights/2 flights@champion 80%, canary r3 flights/4 flights@4 20%"; got != want {
		t.Fatalf("after a new version:\ngot  %s\nwant %s", got, want)
	}
}

// TestRolloutPromotionChecksTheAlias: a promotion decided while the alias
// moved elsewhere is not applied.
func TestRolloutPromotionChecksTheAlias(t *testing.T) {
	e, clock, health := rolloutEnv(t, deploy.RolloutPolicy{Window: deploy.Duration(time.Minute)})
	ctx := context.Background()
	health.set("flights/2", healthy)
	health.set("flights/3", healthy)
	e.setAlias(t, "flights", "champion", 3)
	must(t, "SyncAliases", e.svc.SyncAliases(ctx))
	started := e.get(t, "r")
	clock.advance(time.Minute)
	// The alias moves to 4 after the last sync: the controller must not
	// promote 3, which the alias no longer names.
	e.setAlias(t, "flights", "champion", 4)
	must(t, "ReconcileRollouts", e.svc.ReconcileRollouts(ctx))
	if d := e.get(t, "r"); d.Generation != started.Generation {
		t.Fatalf("promoted a canary the alias no longer names: %s", e.events(t, "r")[0].Message)
	}
}

// TestRolloutCanaryEndsWithItsAlias: pointing the primary at another alias
// ends the rollout of the old one.
func TestRolloutCanaryEndsWithItsAlias(t *testing.T) {
	e, _, _ := rolloutEnv(t, deploy.RolloutPolicy{})
	ctx := context.Background()
	e.setAlias(t, "flights", "champion", 3)
	e.setAlias(t, "flights", "stable", 2)
	must(t, "SyncAliases", e.svc.SyncAliases(ctx))
	d, err := e.svc.Update(ctx, "r", deploy.Update{Model: refp(t, "flights@stable")})
	must(t, "update --model flights@stable", err)
	if got, want := slotsText(d.Slots), "primary r1 flights/2 flights@stable 100%"; got != want {
		t.Fatalf("slots:\ngot  %s\nwant %s", got, want)
	}
	must(t, "SyncAliases", e.svc.SyncAliases(ctx))
	if again := e.get(t, "r"); again.Generation != d.Generation {
		t.Fatalf("SyncAliases changed the deployment: %s", e.events(t, "r")[0].Message)
	}
}

func TestRolloutManualCanaryUntouched(t *testing.T) {
	e, clock, health := rolloutEnv(t, deploy.RolloutPolicy{Window: deploy.Duration(time.Minute)})
	ctx := context.Background()
	health.set("flights/4", deploy.VersionHealth{Requests: 1000, Errors: 1000})
	d, err := e.svc.Update(ctx, "r", deploy.Update{Canary: refp(t, "flights@4"), CanaryPercent: ptr(10)})
	must(t, "add a manual canary", err)
	if c := d.Slot(deploy.RoleCanary); c.Rollout || c.Since != clock.now().UnixMilli() {
		t.Fatalf("manual canary %+v: want rollout false, since now", *c)
	}
	for range 3 {
		e.setAlias(t, "flights", "champion", 3)
		must(t, "SyncAliases", e.svc.SyncAliases(ctx))
		clock.advance(time.Hour)
		must(t, "ReconcileRollouts", e.svc.ReconcileRollouts(ctx))
	}
	if got := e.get(t, "r"); got.Generation != d.Generation {
		t.Fatalf("the controllers changed a deployment with a manual canary: %s", e.events(t, "r")[0].Message)
	}
	if n := strings.Count(e.logs.String(), "manual canary holds the rollout back"); n != 1 {
		t.Fatalf("the held rollout was logged %d times over 3 syncs, want once; logs:\n%s", n, e.logs.String())
	}
	// Once the manual canary is gone, the rollout starts.
	_, err = e.svc.Rollback(ctx, "r", deploy.RollbackRequest{})
	must(t, "roll the manual canary back", err)
	must(t, "SyncAliases", e.svc.SyncAliases(ctx))
	if got, want := slotsText(e.get(t, "r").Slots), "primary r1 flights/2 flights@champion 80%, canary r3 flights/3 flights@3 20%"; got != want {
		t.Fatalf("after the manual canary was removed:\ngot  %s\nwant %s", got, want)
	}
}

// TestRolloutConcurrentChange: a decision taken on a canary that changed
// while it was measured is not applied, and is no error.
func TestRolloutConcurrentChange(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name     string
		canary   deploy.VersionHealth
		change   func(t *testing.T, e *env)
		slots    string
		champion int64
	}{
		{"promotion after the alias moved on", healthy, func(t *testing.T, e *env) {
			e.setAlias(t, "flights", "champion", 4)
			must(t, "SyncAliases by another server", e.newService(t).SyncAliases(ctx))
		}, "primary r1 flights/2 flights@champion 80%, canary r3 flights/4 flights@4 20%", 4},
		{"rollback after a promotion by hand", deploy.VersionHealth{Requests: 500, Errors: 500}, func(t *testing.T, e *env) {
			_, err := e.newService(t).Promote(ctx, "r")
			must(t, "Promote by another server", err)
		}, "primary r2 flights/3 flights@champion 100%", 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, clock, health := rolloutEnv(t, deploy.RolloutPolicy{Window: deploy.Duration(time.Minute)})
			health.set("flights/2", healthy)
			health.set("flights/3", tc.canary)
			e.setAlias(t, "flights", "champion", 3)
			must(t, "SyncAliases", e.svc.SyncAliases(ctx))
			clock.advance(time.Minute)
			health.mu.Lock()
			health.during = func() { tc.change(t, e) }
			health.mu.Unlock()
			must(t, "ReconcileRollouts", e.svc.ReconcileRollouts(ctx))
			d := e.get(t, "r")
			if got := slotsText(d.Slots); got != tc.slots {
				t.Fatalf("slots:\ngot  %s\nwant %s", got, tc.slots)
			}
			for _, ev := range e.events(t, "r") {
				if ev.Automatic && (ev.Type == deploy.EventPromoted || ev.Type == deploy.EventAutoRolledBack) {
					t.Fatalf("the stale decision was applied: %s %q", ev.Type, ev.Message)
				}
			}
			if v := e.champion(t); v != tc.champion {
				t.Fatalf("flights@champion: got %d, want %d", v, tc.champion)
			}
		})
	}
}

// TestRolloutFollower runs the whole loop through Open: the alias moves,
// the follower starts the canary and, once its window has passed, the
// controller promotes it.
func TestRolloutFollower(t *testing.T) {
	e := modelEnv(t)
	ctx := context.Background()
	health := &fakeHealth{}
	health.set("flights/2", healthy)
	health.set("flights/3", healthy)
	e.svc.Health = health
	e.svc.AliasInterval = 10 * time.Millisecond
	_, err := e.svc.Create(ctx, "f", deploy.Spec{Model: ref(t, "flights@champion"),
		Rollout: &deploy.RolloutPolicy{Window: deploy.Duration(200 * time.Millisecond)}})
	must(t, "Create", err)
	must(t, "Open", e.svc.Open(ctx))
	e.setAlias(t, "flights", "champion", 3)
	eventually(t, "the canary promoted", func() bool {
		p := e.get(t, "f").Slot(deploy.RolePrimary)
		return p.Version == 3
	})
	var types []string
	for _, ev := range e.events(t, "f") {
		types = append(types, ev.Type)
	}
	if got, want := strings.Join(types, " "), "promoted rollout_started created"; got != want {
		t.Fatalf("events: got %s, want %s", got, want)
	}
}

func TestRolloutPolicyValidation(t *testing.T) {
	e := modelEnv(t)
	ctx := context.Background()
	with := func(p deploy.RolloutPolicy) deploy.Spec {
		return deploy.Spec{Model: ref(t, "flights@champion"), Rollout: &p}
	}
	for _, tc := range []struct {
		name     string
		spec     deploy.Spec
		contains string
	}{
		{"pinned primary", deploy.Spec{Model: ref(t, "flights@2"), Rollout: &deploy.RolloutPolicy{}}, "model flights@2 follows no alias"},
		{"percent 100", with(deploy.RolloutPolicy{CanaryPercent: 100}), "rollout.canary_percent 100"},
		{"negative percent", with(deploy.RolloutPolicy{CanaryPercent: -1}), "rollout.canary_percent -1"},
		{"negative window", with(deploy.RolloutPolicy{Window: -1}), "rollout.window"},
		{"max wait under the window", with(deploy.RolloutPolicy{Window: deploy.Duration(time.Hour), MaxWait: deploy.Duration(time.Minute)}), "shorter than the window"},
		{"max wait under the default window", with(deploy.RolloutPolicy{MaxWait: deploy.Duration(time.Minute)}), "shorter than the window 10m0s"},
		{"negative min requests", with(deploy.RolloutPolicy{MinRequests: -1}), "rollout.min_requests"},
		{"negative min labels", with(deploy.RolloutPolicy{MinLabels: -1}), "rollout.min_labels"},
		{"error rate above 1", with(deploy.RolloutPolicy{MaxErrorRateIncrease: 1.5}), "rollout.max_error_rate_increase"},
		{"latency ratio below 1", with(deploy.RolloutPolicy{MaxLatencyRatio: 0.5}), "rollout.max_latency_ratio"},
		{"negative degradation", with(deploy.RolloutPolicy{MaxDegradation: -0.1}), "rollout.max_degradation"},
		{"unknown metric", with(deploy.RolloutPolicy{Metric: "auc"}), `rollout.metric "auc" (the monitor calls it roc_auc): give one of accuracy, f1, log_loss`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Create(ctx, "v", tc.spec)
			wantCode(t, "Create", err, mloop.EINVALID)
			if msg := mloop.ErrorMessage(err); !strings.Contains(msg, tc.contains) {
				t.Fatalf("Create: got message %q, want it to contain %q", msg, tc.contains)
			}
		})
	}
	// A disabled policy is no policy.
	d, err := e.svc.Create(ctx, "v", with(deploy.RolloutPolicy{Disabled: true}))
	must(t, "Create with a disabled policy", err)
	if d.Spec.Rollout != nil {
		t.Fatalf("Create with a disabled policy: got rollout %+v, want none", *d.Spec.Rollout)
	}
	// Update adds, changes and removes the policy.
	d, err = e.svc.Update(ctx, "v", deploy.Update{Rollout: &deploy.RolloutPolicy{CanaryPercent: 50, Window: deploy.Duration(3 * time.Second)}})
	must(t, "Update adding a policy", err)
	if d.Spec.Rollout == nil || d.Spec.Rollout.CanaryPercent != 50 {
		t.Fatalf("Update adding a policy: got %+v", d.Spec.Rollout)
	}
	if ev := e.events(t, "v")[0]; !strings.Contains(ev.Message, "rollout policy off → canary 50%, judged after 3s once it has 100 requests (rolled back without them after 18s)") {
		t.Fatalf("update event: got %q", ev.Message)
	}
	_, err = e.svc.Update(ctx, "v", deploy.Update{Model: refp(t, "flights@3")})
	wantCode(t, "Update pinning the primary under a rollout policy", err, mloop.EINVALID)
	d, err = e.svc.Update(ctx, "v", deploy.Update{Rollout: &deploy.RolloutPolicy{Disabled: true}})
	must(t, "Update removing the policy", err)
	if d.Spec.Rollout != nil {
		t.Fatalf("Update removing the policy: got %+v", *d.Spec.Rollout)
	}
	// Without a policy an alias move swaps the primary, as before.
	e.setAlias(t, "flights", "champion", 4)
	must(t, "SyncAliases", e.svc.SyncAliases(ctx))
	if ev := e.events(t, "v")[0]; ev.Type != deploy.EventAliasMoved || e.get(t, "v").Slot(deploy.RolePrimary).Version != 4 {
		t.Fatalf("without a policy: got event %s %q, want alias_moved to flights/4", ev.Type, ev.Message)
	}
}

func TestRolloutJudge(t *testing.T) {
	p := deploy.RolloutPolicy{Window: deploy.Duration(time.Minute), MinRequests: 10, Metric: "roc_auc", MinLabels: 5}
	primary := deploy.VersionHealth{Requests: 100, Errors: 1, LatencyP99Ms: 4, Labels: 50, Metrics: map[string]float64{"roc_auc": 0.8}}
	canary := func(f func(h *deploy.VersionHealth)) deploy.VersionHealth {
		h := deploy.VersionHealth{Requests: 20, Errors: 0, LatencyP99Ms: 6, Labels: 10, Metrics: map[string]float64{"roc_auc": 0.79}}
		f(&h)
		return h
	}
	same := func(*deploy.VersionHealth) {}
	for _, tc := range []struct {
		name     string
		age      time.Duration
		canary   deploy.VersionHealth
		decision string
		reason   string
	}{
		{"before the window", 59 * time.Second, canary(same), deploy.DecisionWait, "the canary is judged after 1m0s (it has served 59s)"},
		{"healthy", time.Minute, canary(same), deploy.DecisionPromote,
			"healthy after 1m0s: 20 requests, error rate 0.000 vs primary 0.010, p99 6.0ms vs 4.0ms, live roc_auc 0.7900 vs primary 0.8000 over 10 and 50 labels"},
		{"p99 over 2x but under 5ms more", time.Minute, canary(func(h *deploy.VersionHealth) { h.LatencyP99Ms = 8.9 }), deploy.DecisionPromote, ""},
		{"p99 over 2x and 5ms more", time.Minute, canary(func(h *deploy.VersionHealth) { h.LatencyP99Ms = 9 }), deploy.DecisionRollback,
			"p99 latency 9.0ms vs primary 4.0ms (over 2×)"},
		{"error rate just within", time.Minute, canary(func(h *deploy.VersionHealth) { h.Requests, h.Errors = 100, 3 }), deploy.DecisionPromote, ""},
		{"error rate beyond", time.Minute, canary(func(h *deploy.VersionHealth) { h.Requests, h.Errors = 100, 4 }), deploy.DecisionRollback,
			"error rate 0.040 vs primary 0.010 over 100 canary requests (more than +0.02)"},
		{"quality within", time.Minute, canary(func(h *deploy.VersionHealth) { h.Metrics["roc_auc"] = 0.781 }), deploy.DecisionPromote, ""},
		{"quality beyond", time.Minute, canary(func(h *deploy.VersionHealth) { h.Metrics["roc_auc"] = 0.77 }), deploy.DecisionRollback,
			"live roc_auc 0.7700 vs primary 0.8000 over 10 and 50 labels (worse by more than 0.02)"},
		{"metric missing", time.Minute, canary(func(h *deploy.VersionHealth) { h.Metrics = nil }), deploy.DecisionWait,
			"waiting for evidence: the canary's live quality has no roc_auc"},
		{"few requests and labels", time.Minute, canary(func(h *deploy.VersionHealth) { h.Requests, h.Labels = 9, 4 }), deploy.DecisionWait,
			"waiting for evidence: the canary answered 9 requests of the 10 needed; the canary has 4 feedback labels of the 5 needed"},
		{"few requests at max wait", 6 * time.Minute, canary(func(h *deploy.VersionHealth) { h.Requests = 9 }), deploy.DecisionRollback,
			"not enough evidence within 6m0s: the canary answered 9 requests of the 10 needed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			decision, reason := p.Judge(tc.age, tc.canary, primary)
			if decision != tc.decision || tc.reason != "" && reason != tc.reason {
				t.Fatalf("got %s %q\nwant %s %q", decision, reason, tc.decision, tc.reason)
			}
		})
	}
}
