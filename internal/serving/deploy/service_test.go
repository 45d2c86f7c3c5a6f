package deploy_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// modelEnv returns an env with flights versions 1 to 4 (XGBoost, flavor
// tagged), other version 1 (no flavor tag), and flights@champion → 2.
func modelEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t)
	e.registerXGBoost(t, "flights", 4)
	e.registerSource(t, "other", "mlflow-artifacts:/elsewhere/other/1")
	e.setAlias(t, "flights", "champion", 2)
	return e
}

func TestCreate(t *testing.T) {
	e := modelEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		spec    deploy.Spec
		slots   string
		flavors []string
		next    int64
		message string
	}{
		{
			name: "pinned", spec: deploy.Spec{Model: ref(t, "flights@1")},
			slots: "primary r1 flights/1 flights@1 100%", flavors: []string{"xgboost"}, next: 2,
			message: "created: primary flights/1 (revision 1)",
		},
		{
			name:    "alias-canary-shadow",
			spec:    deploy.Spec{Model: ref(t, "flights@champion"), Canary: refp(t, "flights@3"), CanaryPercent: 10, Shadow: refp(t, "other@1")},
			slots:   "primary r1 flights/2 flights@champion 90%, canary r2 flights/3 flights@3 10%, shadow r3 other/1 other@1 0%",
			flavors: []string{"xgboost", "xgboost", ""}, next: 4,
			message: "created: primary flights@champion → flights/2 (revision 1), canary flights/3 (revision 2) at 10%, shadow other/1 (revision 3)",
		},
		{
			name: "all-to-canary", spec: deploy.Spec{Model: ref(t, "flights@1"), Canary: refp(t, "flights@4"), CanaryPercent: 100},
			slots: "primary r1 flights/1 flights@1 0%, canary r2 flights/4 flights@4 100%", flavors: []string{"xgboost", "xgboost"}, next: 3,
			message: "created: primary flights/1 (revision 1), canary flights/4 (revision 2) at 100%",
		},
		{
			name: "empty-canary-and-shadow-refs", spec: deploy.Spec{Model: ref(t, "other@1"), Canary: &deploy.Ref{}, Shadow: &deploy.Ref{}},
			slots: "primary r1 other/1 other@1 100%", flavors: []string{""}, next: 2,
			message: "created: primary other/1 (revision 1)",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := e.svc.Create(ctx, tc.name, tc.spec)
			must(t, "Create", err)
			if got := slotsText(d.Slots); got != tc.slots {
				t.Fatalf("slots:\ngot  %s\nwant %s", got, tc.slots)
			}
			for i, s := range d.Slots {
				if s.Flavor != tc.flavors[i] {
					t.Errorf("%s slot: got flavor %q, want %q", s.Role, s.Flavor, tc.flavors[i])
				}
			}
			if d.Generation != 1 || d.NextRevision != tc.next || d.CreatedAt == 0 || d.UpdatedAt != d.CreatedAt {
				t.Fatalf("got generation %d, next revision %d, created %d, updated %d; want 1, %d and both times set",
					d.Generation, d.NextRevision, d.CreatedAt, d.UpdatedAt, tc.next)
			}
			got := e.get(t, tc.name)
			if slotsText(got.Slots) != tc.slots || got.Generation != 1 {
				t.Fatalf("Get: got %s (generation %d), want what Create returned", slotsText(got.Slots), got.Generation)
			}
			evs := e.events(t, tc.name)
			if len(evs) != 1 || evs[0].Type != deploy.EventCreated || evs[0].Message != tc.message || evs[0].Generation != 1 {
				t.Fatalf("events: got %+v, want one created event %q", evs, tc.message)
			}
			det := decodeDetails(t, evs[0])
			if len(det.Before) != 0 || slotsText(det.After) != tc.slots {
				t.Fatalf("event details: got before %v, after %s; want none and the slots", det.Before, slotsText(det.After))
			}
		})
	}
	list, err := e.svc.List(ctx)
	must(t, "List", err)
	if len(list) != 4 || list[0].Name != "alias-canary-shadow" || list[3].Name != "pinned" {
		t.Fatalf("List: got %d deployments, want the 4 created, by name", len(list))
	}
}

func TestCreateErrors(t *testing.T) {
	e := modelEnv(t)
	ctx := context.Background()
	ok := deploy.Spec{Model: ref(t, "flights@1")}
	with := func(f func(s *deploy.Spec)) deploy.Spec {
		s := ok
		f(&s)
		return s
	}
	for _, tc := range []struct {
		name     string
		depName  string
		spec     deploy.Spec
		code     string
		contains string
	}{
		{"uppercase name", "Flights", ok, mloop.EINVALID, "lowercase letters, digits and '-'"},
		{"empty name", "", ok, mloop.EINVALID, "deployment name"},
		{"leading dash", "-a", ok, mloop.EINVALID, "starting and ending"},
		{"trailing dash", "a-", ok, mloop.EINVALID, "starting and ending"},
		{"underscore", "a_b", ok, mloop.EINVALID, "deployment name"},
		{"dot", "a.b", ok, mloop.EINVALID, "deployment name"},
		{"slash", "a/b", ok, mloop.EINVALID, "deployment name"},
		{"too long", strings.Repeat("a", 64), ok, mloop.EINVALID, "1 to 63"},
		{"no model", "d", deploy.Spec{}, mloop.EINVALID, "needs a model"},
		{"ref with version and alias", "d", deploy.Spec{Model: deploy.Ref{Model: "flights", Version: 1, Alias: "x"}}, mloop.EINVALID, "either a version"},
		{"ref without model", "d", deploy.Spec{Model: deploy.Ref{Version: 1}}, mloop.EINVALID, "needs a model"},
		{"ref with a negative version", "d", deploy.Spec{Model: deploy.Ref{Model: "flights", Version: -1}}, mloop.EINVALID, "either a version"},
		{"canary without percent", "d", with(func(s *deploy.Spec) { s.Canary = refp(t, "flights@2") }), mloop.EINVALID, "canary_percent 0"},
		{"canary over 100", "d", with(func(s *deploy.Spec) { s.Canary, s.CanaryPercent = refp(t, "flights@2"), 101 }), mloop.EINVALID, "from 1 to 100"},
		{"negative percent", "d", with(func(s *deploy.Spec) { s.Canary, s.CanaryPercent = refp(t, "flights@2"), -1 }), mloop.EINVALID, "canary_percent -1"},
		{"percent without canary", "d", with(func(s *deploy.Spec) { s.CanaryPercent = 5 }), mloop.EINVALID, "without a canary"},
		{"canary is the primary ref", "d", with(func(s *deploy.Spec) { s.Canary, s.CanaryPercent = refp(t, "flights@1"), 5 }), mloop.EINVALID, "is the primary model reference"},
		{"canary resolves to the primary version", "d",
			deploy.Spec{Model: ref(t, "flights@2"), Canary: refp(t, "flights@champion"), CanaryPercent: 5}, mloop.EINVALID, "resolves to flights/2"},
		{"payload sample above 1", "d", with(func(s *deploy.Spec) { s.PayloadSample = ptr(1.5) }), mloop.EINVALID, "payload_sample"},
		{"payload sample negative", "d", with(func(s *deploy.Spec) { s.PayloadSample = ptr(-0.1) }), mloop.EINVALID, "payload_sample"},
		{"payload sample NaN", "d", with(func(s *deploy.Spec) { s.PayloadSample = ptr(math.NaN()) }), mloop.EINVALID, "payload_sample"},
		{"max batch rows negative", "d", with(func(s *deploy.Spec) { s.MaxBatchRows = -1 }), mloop.EINVALID, "max_batch_rows"},
		{"max batch rows too many", "d", with(func(s *deploy.Spec) { s.MaxBatchRows = 1_000_001 }), mloop.EINVALID, "max_batch_rows"},
		{"batch size too big", "d", with(func(s *deploy.Spec) { s.Batching.MaxBatchSize = 10_001 }), mloop.EINVALID, "max_batch_size"},
		{"batch size negative", "d", with(func(s *deploy.Spec) { s.Batching.MaxBatchSize = -1 }), mloop.EINVALID, "max_batch_size"},
		{"batch delay too long", "d", with(func(s *deploy.Spec) { s.Batching.MaxDelay = deploy.Duration(2 * time.Second) }), mloop.EINVALID, "max_delay"},
		{"rollback window negative", "d", with(func(s *deploy.Spec) { s.Rollback.Window = -1 }), mloop.EINVALID, "rollback.window"},
		{"rollback window over an hour", "d", with(func(s *deploy.Spec) { s.Rollback.Window = deploy.Duration(2 * time.Hour) }), mloop.EINVALID, "up to 1h0m0s"},
		{"rollback min requests negative", "d", with(func(s *deploy.Spec) { s.Rollback.MinRequests = -1 }), mloop.EINVALID, "rollback.min_requests"},
		{"rollback error rate above 1", "d", with(func(s *deploy.Spec) { s.Rollback.MaxErrorRateIncrease = 2 }), mloop.EINVALID, "max_error_rate_increase"},
		{"rollback latency ratio below 1", "d", with(func(s *deploy.Spec) { s.Rollback.MaxLatencyRatio = 0.5 }), mloop.EINVALID, "max_latency_ratio"},
		{"rollback latency increase negative", "d", with(func(s *deploy.Spec) { s.Rollback.MinLatencyIncrease = -1 }), mloop.EINVALID, "min_latency_increase"},
		{"unknown version", "d", deploy.Spec{Model: ref(t, "flights@99")}, mloop.ENOTFOUND, "model flights@99 does not resolve"},
		{"unknown model", "d", deploy.Spec{Model: ref(t, "nope@1")}, mloop.ENOTFOUND, "mloop model register"},
		{"unknown alias", "d", deploy.Spec{Model: ref(t, "flights@nope")}, mloop.ENOTFOUND, "set alias nope of model flights"},
		{"unknown canary alias", "d", with(func(s *deploy.Spec) { s.Canary, s.CanaryPercent = refp(t, "flights@gone"), 5 }), mloop.ENOTFOUND, "canary flights@gone"},
		{"unknown shadow", "d", with(func(s *deploy.Spec) { s.Shadow = refp(t, "other@7") }), mloop.ENOTFOUND, "shadow other@7"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := e.svc.Create(ctx, tc.depName, tc.spec)
			wantCode(t, "Create", err, tc.code)
			if msg := mloop.ErrorMessage(err); !strings.Contains(msg, tc.contains) {
				t.Fatalf("Create: got message %q, want it to contain %q", msg, tc.contains)
			}
		})
	}
	list, err := e.svc.List(ctx)
	must(t, "List", err)
	evs := e.events(t, "")
	if len(list) != 0 || len(evs) != 0 {
		t.Fatalf("after refused creates: got %d deployments and %d events, want none", len(list), len(evs))
	}
	_, err = e.svc.Create(ctx, "dup", ok)
	must(t, "Create dup", err)
	_, err = e.svc.Create(ctx, "dup", deploy.Spec{Model: ref(t, "flights@2")})
	wantCode(t, "Create of a taken name", err, mloop.EEXISTS)
	if d := e.get(t, "dup"); d.Slots[0].Version != 1 {
		t.Fatalf("after a refused create: got version %d, want the first create's 1", d.Slots[0].Version)
	}
}

// TestUpdate walks one deployment through a sequence of updates, checking
// the revision numbering rules: a slot keeps its revision while its model
// version is unchanged, takes over the revision of another slot serving
// its new version, and gets a new one otherwise.
func TestUpdate(t *testing.T) {
	e := modelEnv(t)
	ctx := context.Background()
	e.svc.Now = func() time.Time { return time.UnixMilli(1_700_000_000_000) }
	_, err := e.svc.Create(ctx, "svc", deploy.Spec{Model: ref(t, "flights@1")})
	must(t, "Create", err)
	steps := []struct {
		name    string
		update  deploy.Update
		slots   string
		gen     int64
		message string // a substring of the event's message; "" for no event
	}{
		{"add a canary", deploy.Update{Canary: refp(t, "flights@2"), CanaryPercent: ptr(10)},
			"primary r1 flights/1 flights@1 90%, canary r2 flights/2 flights@2 10%", 2,
			"updated: canary flights/2 (revision 2) added with 10% of traffic"},
		{"canary percent", deploy.Update{CanaryPercent: ptr(30)},
			"primary r1 flights/1 flights@1 70%, canary r2 flights/2 flights@2 30%", 3, "updated: canary traffic 10% → 30%"},
		{"same percent is a no-op", deploy.Update{CanaryPercent: ptr(30)},
			"primary r1 flights/1 flights@1 70%, canary r2 flights/2 flights@2 30%", 3, ""},
		{"empty update is a no-op", deploy.Update{},
			"primary r1 flights/1 flights@1 70%, canary r2 flights/2 flights@2 30%", 3, ""},
		{"new canary version", deploy.Update{Canary: refp(t, "flights@3")},
			"primary r1 flights/1 flights@1 70%, canary r3 flights/3 flights@3 30%", 4,
			"canary flights/2 (revision 2) replaced by flights/3 (revision 3)"},
		{"add a shadow", deploy.Update{Shadow: refp(t, "other@1")},
			"primary r1 flights/1 flights@1 70%, canary r3 flights/3 flights@3 30%, shadow r4 other/1 other@1 0%", 5,
			"shadow other/1 (revision 4) added"},
		{"primary to the canary's version", deploy.Update{Model: refp(t, "flights@3"), Canary: refp(t, "")},
			"primary r3 flights/3 flights@3 100%, shadow r4 other/1 other@1 0%", 6,
			"primary flights/1 (revision 1) replaced by flights/3 (revision 3); canary flights/3 (revision 3) removed"},
		{"follow an alias naming the same version", deploy.Update{Model: refp(t, "flights@prod")},
			"primary r3 flights/3 flights@prod 100%, shadow r4 other/1 other@1 0%", 7,
			"primary now follows flights@prod (serving flights/3, revision 3)"},
		{"remove the shadow", deploy.Update{Shadow: refp(t, "")},
			"primary r3 flights/3 flights@prod 100%", 8, "shadow other/1 (revision 4) removed"},
		{"serving settings", deploy.Update{Batching: &deploy.Batching{MaxBatchSize: 64, MaxDelay: deploy.Duration(2 * time.Millisecond)},
			PayloadSample: ptr(0.5), MaxBatchRows: ptr(100), Rollback: &deploy.RollbackPolicy{MinRequests: 50}},
			"primary r3 flights/3 flights@prod 100%", 9,
			"updated: batching off → 64 rows / 2ms; payload sample 1 → 0.5; max batch rows default (10000) → 100; rollback policy window 1m0s, min 20 requests"},
		{"a canary on a version served before gets a new revision", deploy.Update{Canary: refp(t, "flights@1"), CanaryPercent: ptr(5)},
			"primary r3 flights/3 flights@prod 95%, canary r5 flights/1 flights@1 5%", 10, "canary flights/1 (revision 5) added"},
	}
	e.setAlias(t, "flights", "prod", 3)
	for _, st := range steps {
		before := len(e.events(t, "svc"))
		d, err := e.svc.Update(ctx, "svc", st.update)
		must(t, st.name, err)
		if got := slotsText(d.Slots); got != st.slots || d.Generation != st.gen {
			t.Fatalf("%s:\ngot  %s (generation %d)\nwant %s (generation %d)", st.name, got, d.Generation, st.slots, st.gen)
		}
		if got := e.get(t, "svc"); slotsText(got.Slots) != st.slots || got.Generation != st.gen {
			t.Fatalf("%s: Get returned %s (generation %d), want what Update returned", st.name, slotsText(got.Slots), got.Generation)
		}
		evs := e.events(t, "svc")
		if st.message == "" {
			if len(evs) != before {
				t.Fatalf("%s: got a new event %q, want none for a no-op", st.name, evs[0].Message)
			}
			continue
		}
		if len(evs) != before+1 || evs[0].Type != deploy.EventUpdated || evs[0].Generation != st.gen || !strings.Contains(evs[0].Message, st.message) {
			t.Fatalf("%s: got newest event %+v, want an updated event at generation %d containing %q", st.name, evs[0], st.gen, st.message)
		}
		det := decodeDetails(t, evs[0])
		if slotsText(det.After) != st.slots {
			t.Fatalf("%s: event details after = %s, want %s", st.name, slotsText(det.After), st.slots)
		}
	}
	d := e.get(t, "svc")
	if d.Spec.PayloadSample == nil || *d.Spec.PayloadSample != 0.5 || d.Spec.MaxBatchRows != 100 || d.Spec.Batching.MaxBatchSize != 64 ||
		d.Spec.Rollback.MinRequests != 50 || d.NextRevision != 6 {
		t.Fatalf("spec after the updates: got %+v (next revision %d)", d.Spec, d.NextRevision)
	}

	// Explicitly setting an alias re-resolves it.
	e.setAlias(t, "flights", "prod", 4)
	d, err = e.svc.Update(ctx, "svc", deploy.Update{Model: refp(t, "flights@prod")})
	must(t, "re-set the primary's alias", err)
	if got, want := slotsText(d.Slots), "primary r6 flights/4 flights@prod 95%, canary r5 flights/1 flights@1 5%"; got != want {
		t.Fatalf("re-set the primary's alias:\ngot  %s\nwant %s", got, want)
	}

	for _, tc := range []struct {
		name   string
		update deploy.Update
		code   string
	}{
		{"canary on the primary's version", deploy.Update{Canary: refp(t, "flights@prod")}, mloop.EINVALID},
		{"percent out of range", deploy.Update{CanaryPercent: ptr(0)}, mloop.EINVALID},
		{"remove the canary but keep a percent", deploy.Update{Canary: refp(t, ""), CanaryPercent: ptr(10)}, mloop.EINVALID},
		{"remove the model", deploy.Update{Model: refp(t, "")}, mloop.EINVALID},
		{"unknown version", deploy.Update{Model: refp(t, "flights@99")}, mloop.ENOTFOUND},
		{"bad payload sample", deploy.Update{PayloadSample: ptr(2.0)}, mloop.EINVALID},
	} {
		_, err := e.svc.Update(ctx, "svc", tc.update)
		wantCode(t, tc.name, err, tc.code)
	}
	if got := e.get(t, "svc"); got.Generation != 11 {
		t.Fatalf("after refused updates: got generation %d, want 11", got.Generation)
	}
	_, err = e.svc.Update(ctx, "nope", deploy.Update{CanaryPercent: ptr(5)})
	wantCode(t, "Update of an unknown deployment", err, mloop.ENOTFOUND)

	h, err := e.svc.History(ctx, "svc", 0)
	must(t, "History", err)
	if len(h) != 10 || h[0].Generation != 10 || h[9].Generation != 1 {
		t.Fatalf("History: got %d generations, want 10, newest (10) first", len(h))
	}
	h, err = e.svc.History(ctx, "svc", 3)
	must(t, "History limit 3", err)
	if len(h) != 3 || h[2].Generation != 8 {
		t.Fatalf("History limit 3: got %d generations, want 10, 9, 8", len(h))
	}
	_, err = e.svc.History(ctx, "svc", -1)
	wantCode(t, "History with a negative limit", err, mloop.EINVALID)
	_, err = e.svc.History(ctx, "nope", 0)
	wantCode(t, "History of an unknown deployment", err, mloop.ENOTFOUND)
}

func TestPromote(t *testing.T) {
	e := modelEnv(t)
	ctx := context.Background()
	_, err := e.svc.Create(ctx, "p", deploy.Spec{Model: ref(t, "flights@1"), Canary: refp(t, "flights@champion"), CanaryPercent: 20, Shadow: refp(t, "other@1")})
	must(t, "Create", err)
	d, err := e.svc.Promote(ctx, "p")
	must(t, "Promote", err)
	if got, want := slotsText(d.Slots), "primary r2 flights/2 flights@champion 100%, shadow r3 other/1 other@1 0%"; got != want || d.Generation != 2 {
		t.Fatalf("Promote:\ngot  %s (generation %d)\nwant %s (generation 2)", got, d.Generation, want)
	}
	if d.Spec.Model != ref(t, "flights@champion") || d.Spec.Canary != nil || d.Spec.CanaryPercent != 0 || d.NextRevision != 4 {
		t.Fatalf("Promote: got spec %+v, next revision %d; want the canary's reference as model, no canary, next revision 4", d.Spec, d.NextRevision)
	}
	evs := e.events(t, "p")
	if evs[0].Type != deploy.EventPromoted ||
		evs[0].Message != "promoted: canary flights@champion → flights/2 (revision 2) now serves all traffic as primary, replacing flights/1 (revision 1)" {
		t.Fatalf("Promote event: got %q (%s)", evs[0].Message, evs[0].Type)
	}
	_, err = e.svc.Promote(ctx, "p")
	wantCode(t, "Promote without a canary", err, mloop.ECONFLICT)
	if !strings.Contains(mloop.ErrorMessage(err), "no canary to promote") {
		t.Fatalf("Promote without a canary: got %q", mloop.ErrorMessage(err))
	}
	_, err = e.svc.Promote(ctx, "nope")
	wantCode(t, "Promote of an unknown deployment", err, mloop.ENOTFOUND)
}

func TestRollback(t *testing.T) {
	e := modelEnv(t)
	ctx := context.Background()
	e.setAlias(t, "flights", "champion", 1)
	_, err := e.svc.Create(ctx, "r", deploy.Spec{Model: ref(t, "flights@champion")})
	must(t, "Create", err)
	_, err = e.svc.Rollback(ctx, "r", deploy.RollbackRequest{})
	wantCode(t, "Rollback of a new deployment", err, mloop.ECONFLICT)
	if !strings.Contains(mloop.ErrorMessage(err), "nothing to roll back to") {
		t.Fatalf("Rollback of a new deployment: got %q", mloop.ErrorMessage(err))
	}
	_, err = e.svc.Update(ctx, "r", deploy.Update{Canary: refp(t, "flights@2"), CanaryPercent: ptr(10)})
	must(t, "add a canary", err)

	_, err = e.svc.Rollback(ctx, "r", deploy.RollbackRequest{IfCanaryRevision: 99, Automatic: true})
	wantCode(t, "Rollback of another canary revision", err, mloop.ECONFLICT)
	_, err = e.svc.Rollback(ctx, "r", deploy.RollbackRequest{Details: json.RawMessage(`{"a":`)})
	wantCode(t, "Rollback with invalid details", err, mloop.EINVALID)
	_, err = e.svc.Rollback(ctx, "r", deploy.RollbackRequest{Reason: strings.Repeat("x", 1001)})
	wantCode(t, "Rollback with a huge reason", err, mloop.EINVALID)

	// The automatic rollback of the canary.
	reason := "error rate 0.52 vs primary 0.00 over 1m0s (120 requests)"
	d, err := e.svc.Rollback(ctx, "r", deploy.RollbackRequest{IfCanaryRevision: 2, Automatic: true, Reason: reason,
		Details: json.RawMessage(`{"canary_error_rate":0.52,"requests":120}`)})
	must(t, "automatic Rollback", err)
	if got, want := slotsText(d.Slots), "primary r1 flights/1 flights@champion 100%"; got != want || d.Generation != 3 || d.Spec.Canary != nil || d.Spec.CanaryPercent != 0 {
		t.Fatalf("automatic Rollback:\ngot  %s (generation %d, spec %+v)\nwant %s (generation 3, no canary)", got, d.Generation, d.Spec, want)
	}
	ev := e.events(t, "r")[0]
	wantMsg := "rolled back automatically: canary flights/2 (revision 2) removed, all traffic to primary flights@champion → flights/1 (revision 1) (" + reason + ")"
	if ev.Type != deploy.EventAutoRolledBack || !ev.Automatic || ev.Message != wantMsg {
		t.Fatalf("automatic rollback event: got %s %v %q\nwant %s true %q", ev.Type, ev.Automatic, ev.Message, deploy.EventAutoRolledBack, wantMsg)
	}
	det := decodeDetails(t, ev)
	var figures struct {
		Rate     float64 `json:"canary_error_rate"`
		Requests int     `json:"requests"`
	}
	must(t, "decode the measured figures", json.Unmarshal(det.Details, &figures))
	if len(det.Before) != 2 || len(det.After) != 1 || det.Reason != reason || figures.Rate != 0.52 || figures.Requests != 120 {
		t.Fatalf("automatic rollback details: got %+v", det)
	}
	_, err = e.svc.Rollback(ctx, "r", deploy.RollbackRequest{IfCanaryRevision: 2, Automatic: true})
	wantCode(t, "a second automatic rollback of the same canary", err, mloop.ECONFLICT)

	// The alias moves; rolling back the primary pins the version before.
	e.setAlias(t, "flights", "champion", 3)
	must(t, "SyncAliases", e.svc.SyncAliases(ctx))
	d = e.get(t, "r")
	if got, want := slotsText(d.Slots), "primary r3 flights/3 flights@champion 100%"; got != want || d.Generation != 4 {
		t.Fatalf("after the alias moved:\ngot  %s (generation %d)\nwant %s (generation 4)", got, d.Generation, want)
	}
	d, err = e.svc.Rollback(ctx, "r", deploy.RollbackRequest{Reason: "bad predictions"})
	must(t, "Rollback of the primary", err)
	if got, want := slotsText(d.Slots), "primary r4 flights/1 flights@1 100%"; got != want || d.Spec.Model != ref(t, "flights@1") {
		t.Fatalf("Rollback of the primary:\ngot  %s (model %s)\nwant %s (model flights@1)", got, d.Spec.Model, want)
	}
	ev = e.events(t, "r")[0]
	wantMsg = "rolled back: primary flights@champion → flights/3 (revision 3) replaced by flights/1 (revision 4), the version it served before; " +
		"it no longer follows flights@champion: to follow the alias again, run mloop deploy update r --model flights@champion (bad predictions)"
	if ev.Type != deploy.EventRolledBack || ev.Automatic || ev.Message != wantMsg {
		t.Fatalf("primary rollback event: got %s %v\n%q\nwant %s false\n%q", ev.Type, ev.Automatic, ev.Message, deploy.EventRolledBack, wantMsg)
	}
	must(t, "SyncAliases after the rollback", e.svc.SyncAliases(ctx))
	if got := e.get(t, "r"); got.Generation != d.Generation {
		t.Fatalf("SyncAliases moved a pinned primary: generation %d → %d", d.Generation, got.Generation)
	}
	// A second rollback undoes the first.
	d, err = e.svc.Rollback(ctx, "r", deploy.RollbackRequest{})
	must(t, "second Rollback", err)
	if got, want := slotsText(d.Slots), "primary r5 flights/3 flights@3 100%"; got != want {
		t.Fatalf("second Rollback:\ngot  %s\nwant %s", got, want)
	}
	_, err = e.svc.Rollback(ctx, "nope", deploy.RollbackRequest{})
	wantCode(t, "Rollback of an unknown deployment", err, mloop.ENOTFOUND)
}

// TestPromoteRollbackRace runs a promotion and a rollback of the same
// canary at once, from two servers sharing the database. A rollback of
// canary revision 2 (IfCanaryRevision, as the automatic rollback sends
// it): exactly one applies, the other fails with a conflict, whatever the
// order. An unconditional rollback: either exactly one applies, or the
// promotion applied first and the rollback, coming after it, returned the
// primary to the version before (it never removes a canary that was
// promoted meanwhile, nor promotes a canary that was removed).
func TestPromoteRollbackRace(t *testing.T) {
	e := modelEnv(t)
	ctx := context.Background()
	other := e.newService(t)
	outcomes := map[string]int{}
	for i := range 16 {
		name := "race-" + string(rune('a'+i))
		_, err := e.svc.Create(ctx, name, deploy.Spec{Model: ref(t, "flights@1"), Canary: refp(t, "flights@2"), CanaryPercent: 50})
		must(t, "Create", err)
		conditional := i%4 != 3
		req := deploy.RollbackRequest{IfCanaryRevision: 2, Automatic: i%2 == 0, Reason: "errors"}
		if !conditional {
			req = deploy.RollbackRequest{}
		}
		var (
			wg         sync.WaitGroup
			perr, rerr error
			start      = make(chan struct{})
		)
		wg.Add(2)
		go func() { defer wg.Done(); <-start; _, perr = e.svc.Promote(ctx, name) }()
		go func() { defer wg.Done(); <-start; _, rerr = other.Rollback(ctx, name, req) }()
		close(start)
		wg.Wait()
		d := e.get(t, name)
		evs := len(e.events(t, name))
		switch got := slotsText(d.Slots); {
		case perr == nil && mloop.ErrorCode(rerr) == mloop.ECONFLICT:
			outcomes["promoted"]++
			if got != "primary r2 flights/2 flights@2 100%" || d.Generation != 2 || evs != 2 {
				t.Fatalf("%s: promotion won but the deployment serves %s (generation %d, %d events)", name, got, d.Generation, evs)
			}
		case rerr == nil && mloop.ErrorCode(perr) == mloop.ECONFLICT:
			outcomes["rolled back"]++
			if got != "primary r1 flights/1 flights@1 100%" || d.Generation != 2 || evs != 2 {
				t.Fatalf("%s: rollback won but the deployment serves %s (generation %d, %d events)", name, got, d.Generation, evs)
			}
		case !conditional && perr == nil && rerr == nil:
			outcomes["promoted, then primary rolled back"]++
			if got != "primary r3 flights/1 flights@1 100%" || d.Generation != 3 || evs != 3 {
				t.Fatalf("%s: both applied but the deployment serves %s (generation %d, %d events), want the promotion undone", name, got, d.Generation, evs)
			}
		default:
			t.Fatalf("%s (conditional %v): got promote error %v and rollback error %v, want one to apply and the other a conflict", name, conditional, perr, rerr)
		}
	}
	t.Logf("outcomes: %v", outcomes)
}

func TestDeleteKeepsEvents(t *testing.T) {
	e := modelEnv(t)
	ctx := context.Background()
	_, err := e.svc.Create(ctx, "gone", deploy.Spec{Model: ref(t, "flights@1"), Canary: refp(t, "flights@2"), CanaryPercent: 10})
	must(t, "Create", err)
	must(t, "Delete", e.svc.Delete(ctx, "gone"))
	_, err = e.svc.Get(ctx, "gone")
	wantCode(t, "Get after Delete", err, mloop.ENOTFOUND)
	wantCode(t, "Delete again", e.svc.Delete(ctx, "gone"), mloop.ENOTFOUND)
	evs := e.events(t, "gone")
	if len(evs) != 2 || evs[0].Type != deploy.EventDeleted ||
		evs[0].Message != "deleted: it served primary flights/1 (revision 1), canary flights/2 (revision 2) at 10%" {
		t.Fatalf("events after Delete: got %d, newest %+v", len(evs), evs[0])
	}
	det := decodeDetails(t, evs[0])
	if len(det.Before) != 2 || len(det.After) != 0 {
		t.Fatalf("delete event details: got %+v, want the two slots before and none after", det)
	}
	_, err = e.svc.Events(ctx, "gone", -1)
	wantCode(t, "Events with a negative limit", err, mloop.EINVALID)
	some, err := e.svc.Events(ctx, "", 1)
	must(t, "Events limit 1", err)
	if len(some) != 1 || some[0].ID != evs[0].ID {
		t.Fatalf("Events of every deployment, limit 1: got %+v, want the delete event", some)
	}
}

func TestSyncAliases(t *testing.T) {
	e := modelEnv(t)
	ctx := context.Background()
	e.setAlias(t, "flights", "champion", 1)
	e.setAlias(t, "flights", "challenger", 2)
	_, err := e.svc.Create(ctx, "a", deploy.Spec{Model: ref(t, "flights@champion"), Canary: refp(t, "flights@challenger"), CanaryPercent: 10})
	must(t, "Create a", err)
	_, err = e.svc.Create(ctx, "b", deploy.Spec{Model: ref(t, "flights@1")})
	must(t, "Create b", err)

	must(t, "SyncAliases with nothing moved", e.svc.SyncAliases(ctx))
	if len(e.events(t, "")) != 2 {
		t.Fatalf("SyncAliases with nothing moved recorded events")
	}
	e.setAlias(t, "flights", "champion", 3)
	must(t, "SyncAliases", e.svc.SyncAliases(ctx))
	a := e.get(t, "a")
	if got, want := slotsText(a.Slots), "primary r3 flights/3 flights@champion 90%, canary r2 flights/2 flights@challenger 10%"; got != want || a.Generation != 2 {
		t.Fatalf("after the alias moved:\ngot  %s (generation %d)\nwant %s (generation 2)", got, a.Generation, want)
	}
	if a.Slots[0].Flavor != "xgboost" {
		t.Fatalf("moved slot: got flavor %q, want xgboost", a.Slots[0].Flavor)
	}
	ev := e.events(t, "a")[0]
	if ev.Type != deploy.EventAliasMoved || !ev.Automatic || ev.Message != "alias flights@champion moved: flights/1 → flights/3; revision 3 replaces revision 1" {
		t.Fatalf("alias event: got %s %v %q", ev.Type, ev.Automatic, ev.Message)
	}
	if b := e.get(t, "b"); b.Generation != 1 {
		t.Fatalf("a pinned deployment changed on an alias move: generation %d", b.Generation)
	}
	must(t, "SyncAliases again", e.svc.SyncAliases(ctx))
	if got := e.get(t, "a"); got.Generation != 2 {
		t.Fatalf("a second sync changed the deployment again: generation %d", got.Generation)
	}

	// Several servers sync at once: one records the move.
	e.setAlias(t, "flights", "champion", 4)
	e.setAlias(t, "flights", "challenger", 1)
	servers := []*deploy.Service{e.svc, e.newService(t), e.newService(t), e.newService(t)}
	var wg sync.WaitGroup
	errs := make([]error, len(servers))
	for i, s := range servers {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = s.SyncAliases(ctx) }()
	}
	wg.Wait()
	for i, err := range errs {
		must(t, "concurrent SyncAliases", err)
		_ = i
	}
	a = e.get(t, "a")
	if got, want := slotsText(a.Slots), "primary r4 flights/4 flights@champion 90%, canary r5 flights/1 flights@challenger 10%"; got != want || a.Generation != 3 {
		t.Fatalf("after concurrent syncs:\ngot  %s (generation %d)\nwant %s (generation 3: one change)", got, a.Generation, want)
	}
	ev = e.events(t, "a")[0]
	if want := "alias flights@champion moved: flights/3 → flights/4; revision 4 replaces revision 3; alias flights@challenger moved: flights/2 → flights/1; canary revision 5 replaces revision 2"; ev.Message != want {
		t.Fatalf("alias event:\ngot  %q\nwant %q", ev.Message, want)
	}

	// A deleted alias keeps the slot serving, with one warning.
	must(t, "delete alias", e.reg.DeleteRegisteredModelAlias(ctx, "flights", "champion"))
	for range 3 {
		must(t, "SyncAliases with a deleted alias", e.svc.SyncAliases(ctx))
	}
	if got := e.get(t, "a"); got.Generation != 3 || got.Slots[0].Version != 4 {
		t.Fatalf("after the alias was deleted: got generation %d serving flights/%d, want 3 serving flights/4", got.Generation, got.Slots[0].Version)
	}
	if n := strings.Count(e.logs.String(), "no longer resolves"); n != 1 {
		t.Fatalf("a deleted alias was warned about %d times over 3 syncs, want once; logs:\n%s", n, e.logs.String())
	}
	e.setAlias(t, "flights", "champion", 4)
	must(t, "SyncAliases with the alias back", e.svc.SyncAliases(ctx))
	if !strings.Contains(e.logs.String(), "resolves again") {
		t.Fatalf("logs do not say the alias resolves again:\n%s", e.logs.String())
	}
	if got := e.get(t, "a"); got.Generation != 3 {
		t.Fatalf("the alias set back to the served version changed the deployment: generation %d", got.Generation)
	}
}

func TestOpenFollowsAliases(t *testing.T) {
	e := modelEnv(t)
	ctx := context.Background()
	e.setAlias(t, "flights", "champion", 1)
	_, err := e.svc.Create(ctx, "f", deploy.Spec{Model: ref(t, "flights@champion")})
	must(t, "Create", err)
	servedVersion := func() int64 { return e.get(t, "f").Slots[0].Version }

	// A long interval: AliasesChanged makes it sync at once.
	e.svc.AliasInterval = time.Hour
	must(t, "Open", e.svc.Open(ctx))
	wantCode(t, "Open twice", e.svc.Open(ctx), mloop.ECONFLICT)
	e.setAlias(t, "flights", "champion", 2)
	e.svc.AliasesChanged()
	eventually(t, "the alias move followed after AliasesChanged", func() bool { return servedVersion() == 2 })
	must(t, "Close", e.svc.Close())
	must(t, "Close twice", e.svc.Close())

	// A short interval on another server follows by itself.
	other := e.newService(t)
	other.AliasInterval = 10 * time.Millisecond
	cctx, cancel := context.WithCancel(ctx)
	must(t, "Open", other.Open(cctx))
	cancel() // the follower outlives Open's context
	e.setAlias(t, "flights", "champion", 3)
	eventually(t, "the alias move followed on the interval", func() bool { return servedVersion() == 3 })
	must(t, "Close", other.Close())
	if evs := e.events(t, "f"); len(evs) != 3 || evs[0].Type != deploy.EventAliasMoved || evs[1].Type != deploy.EventAliasMoved {
		t.Fatalf("events: got %d, want the created event and two alias moves", len(evs))
	}
}

func TestState(t *testing.T) {
	e := modelEnv(t)
	ctx := context.Background()
	st, err := e.svc.State(ctx, "", 0)
	must(t, "State", err)
	if st.ETag == "" || st.Deployments == nil || len(st.Deployments) != 0 {
		t.Fatalf("State of no deployments: got %+v, want an ETag and an empty list", st)
	}
	again, err := e.svc.State(ctx, st.ETag, 0)
	must(t, "State without wait", err)
	if again.ETag != st.ETag {
		t.Fatalf("State without a change: ETag %q, then %q", st.ETag, again.ETag)
	}
	again, err = e.svc.State(ctx, st.ETag, 30*time.Millisecond)
	must(t, "State with a short wait", err)
	if again.ETag != st.ETag {
		t.Fatalf("State after a wait without change: ETag %q, then %q", st.ETag, again.ETag)
	}

	// A waiter is woken by a change made through the same Service.
	type result struct {
		st  *deploy.State
		err error
	}
	wait := func(s *deploy.Service, ctx context.Context, etag string) chan result {
		ch := make(chan result, 1)
		go func() {
			st, err := s.State(ctx, etag, time.Minute)
			ch <- result{st, err}
		}()
		return ch
	}
	receive := func(what string, ch chan result) result {
		t.Helper()
		select {
		case r := <-ch:
			return r
		case <-time.After(30 * time.Second):
			t.Fatalf("%s: State did not return within 30s of a change (its wait was 1m)", what)
		}
		return result{}
	}
	ch := wait(e.svc, ctx, st.ETag)
	_, err = e.svc.Create(ctx, "s", deploy.Spec{Model: ref(t, "flights@1")})
	must(t, "Create", err)
	r := receive("local change", ch)
	must(t, "State woken by a local change", r.err)
	if r.st.ETag == st.ETag || len(r.st.Deployments) != 1 || r.st.Deployments[0].Name != "s" {
		t.Fatalf("State woken by a local change: got %+v, want a new ETag and deployment s", r.st)
	}
	st = r.st

	// A change made by another server is noticed by re-reading.
	other := e.newService(t)
	ch = wait(e.svc, ctx, st.ETag)
	_, err = other.Update(ctx, "s", deploy.Update{Canary: refp(t, "flights@2"), CanaryPercent: ptr(5)})
	must(t, "Update on another server", err)
	r = receive("remote change", ch)
	must(t, "State after a remote change", r.err)
	if r.st.ETag == st.ETag || r.st.Deployments[0].Generation != 2 {
		t.Fatalf("State after a remote change: got ETag %q (was %q), generation %d; want a new ETag and generation 2",
			r.st.ETag, st.ETag, r.st.Deployments[0].Generation)
	}
	st = r.st

	// A no-op change leaves the ETag alone.
	_, err = e.svc.Update(ctx, "s", deploy.Update{CanaryPercent: ptr(5)})
	must(t, "no-op Update", err)
	if again, err := e.svc.State(ctx, "", 0); err != nil || again.ETag != st.ETag {
		t.Fatalf("State after a no-op update: got %v, %v; want ETag %q", again, err, st.ETag)
	}

	// Cancelling the context ends the wait.
	cctx, cancel := context.WithCancel(ctx)
	ch = wait(e.svc, cctx, st.ETag)
	cancel()
	r = receive("cancel", ch)
	if !errors.Is(r.err, context.Canceled) {
		t.Fatalf("State with a cancelled context: got %v, %v; want context.Canceled", r.st, r.err)
	}

	// A stale ETag returns at once.
	r = receive("stale etag", wait(e.svc, ctx, "stale"))
	must(t, "State with a stale ETag", r.err)
	if r.st.ETag != st.ETag {
		t.Fatalf("State with a stale ETag: got %q, want the current %q", r.st.ETag, st.ETag)
	}
	must(t, "Delete", e.svc.Delete(ctx, "s"))
	if again, err := e.svc.State(ctx, st.ETag, 0); err != nil || again.ETag == st.ETag || len(again.Deployments) != 0 {
		t.Fatalf("State after Delete: got %+v, %v; want a new ETag and no deployments", again, err)
	}
}
