// Package storetest is the conformance suite of alert.Store: every
// implementation (sqlstore on SQLite and on PostgreSQL) runs the same tests.
// Call Run from a test of the implementation's package with a function that
// returns a fresh, empty store.
package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/alert"
)

// Run runs the conformance suite; newStore returns a fresh, empty store for
// each subtest.
func Run(t *testing.T, newStore func(t *testing.T) alert.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s alert.Store)
	}{
		{"Rules", testRules},
		{"StatesAndAlerts", testStatesAndAlerts},
		{"Deliveries", testDeliveries},
		{"DeleteRule", testDeleteRule},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

var t0 = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := mloop.ErrorCode(err); got != code {
		t.Fatalf("%s: got error %v (kind %q), want kind %q", what, err, got, code)
	}
}

func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func rule(t *testing.T, name string) *alert.Rule {
	th := 0.65
	r := &alert.Rule{Name: name, Deployment: "flights", Condition: alert.Condition{Kind: alert.QualityBelow, Metric: "roc_auc", Threshold: &th},
		Windows: 2, MinSamples: 10, Actions: []alert.Action{{Webhook: &alert.Webhook{URL: "http://127.0.0.1:1/hook", Secret: "s"}}, {Trigger: &alert.TriggerAction{}}},
		CreatedAt: t0, UpdatedAt: t0}
	must(t, "check rule", r.Check())
	return r
}

func testRules(t *testing.T, s alert.Store) {
	ctx := context.Background()
	must(t, "create b", s.CreateRule(ctx, rule(t, "b")))
	must(t, "create a", s.CreateRule(ctx, rule(t, "a")))
	wantCode(t, "create a again", s.CreateRule(ctx, rule(t, "a")), mloop.EEXISTS)
	got, err := s.GetRule(ctx, "a")
	must(t, "get a", err)
	if got.Condition.Kind != alert.QualityBelow || *got.Condition.Threshold != 0.65 || got.Windows != 2 || got.MinSamples != 10 ||
		len(got.Actions) != 2 || got.Actions[0].Webhook.Secret != "s" || *got.Actions[0].Webhook.Retries != alert.DefaultWebhookRetries ||
		got.Actions[1].Trigger.EventType != alert.DefaultEventType || !got.CreatedAt.Equal(t0) {
		t.Fatalf("get a: got %+v", got)
	}
	_, err = s.GetRule(ctx, "nope")
	wantCode(t, "get unknown", err, mloop.ENOTFOUND)
	upd := rule(t, "a")
	upd.Windows, upd.UpdatedAt = 5, t0.Add(time.Hour)
	must(t, "update a", s.UpdateRule(ctx, upd))
	if got, _ := s.GetRule(ctx, "a"); got.Windows != 5 {
		t.Fatalf("after update: windows %d, want 5", got.Windows)
	}
	wantCode(t, "update unknown", s.UpdateRule(ctx, rule(t, "zz")), mloop.ENOTFOUND)
	list, err := s.ListRules(ctx)
	must(t, "list", err)
	if len(list) != 2 || list[0].Name != "a" || list[1].Name != "b" {
		t.Fatalf("list: got %d rules, want a, b", len(list))
	}
}

func testStatesAndAlerts(t *testing.T, s alert.Store) {
	ctx := context.Background()
	must(t, "create rule", s.CreateRule(ctx, rule(t, "r")))
	_, err := s.GetState(ctx, "r", "flights", "m/1")
	wantCode(t, "state before evaluation", err, mloop.ENOTFOUND)
	st := &alert.RuleState{Rule: "r", Deployment: "flights", ModelVersion: "m/1", Streak: 1, Since: t0, Windows: []string{"w1"}, LastWindow: "w1", LastEnd: t0.Add(time.Hour)}
	must(t, "save state", s.SaveState(ctx, st, nil))
	a := &alert.Alert{ID: "al-1", Rule: "r", Deployment: "flights", ModelVersion: "m/1", State: alert.StateFiring, StartedAt: t0.Add(2 * time.Hour),
		Value: 0.6, Threshold: 0.65, Message: "low", Windows: []string{"w1", "w2"}}
	st.Streak, st.AlertID, st.LastWindow = 2, a.ID, "w2"
	must(t, "save state with alert", s.SaveState(ctx, st, a))
	got, err := s.GetState(ctx, "r", "flights", "m/1")
	must(t, "get state", err)
	if got.Streak != 2 || got.AlertID != "al-1" || got.LastWindow != "w2" || !got.Since.Equal(t0) {
		t.Fatalf("state: got %+v", got)
	}
	b := &alert.Alert{ID: "al-2", Rule: "r", Deployment: "other", ModelVersion: "m/1", State: alert.StateFiring, StartedAt: t0.Add(3 * time.Hour), Windows: []string{"w9"}}
	must(t, "save other", s.SaveState(ctx, &alert.RuleState{Rule: "r", Deployment: "other", ModelVersion: "m/1", AlertID: b.ID}, b))
	a.State, a.ResolvedAt, a.ResolvedBy = alert.StateResolved, t0.Add(4*time.Hour), "w3"
	must(t, "resolve", s.SaveState(ctx, &alert.RuleState{Rule: "r", Deployment: "flights", ModelVersion: "m/1", LastWindow: "w3"}, a))
	ga, err := s.GetAlert(ctx, "al-1")
	must(t, "get alert", err)
	if ga.State != alert.StateResolved || !ga.ResolvedAt.Equal(t0.Add(4*time.Hour)) || ga.ResolvedBy != "w3" || ga.Value != 0.6 || len(ga.Windows) != 2 {
		t.Fatalf("alert: got %+v", ga)
	}
	_, err = s.GetAlert(ctx, "al-x")
	wantCode(t, "get unknown alert", err, mloop.ENOTFOUND)
	all, err := s.ListAlerts(ctx, alert.AlertFilter{})
	must(t, "list", err)
	if len(all) != 2 || all[0].ID != "al-2" || all[1].ID != "al-1" {
		t.Fatalf("list: got %v, want al-2, al-1", ids(all))
	}
	for _, tc := range []struct {
		f    alert.AlertFilter
		want []string
	}{
		{alert.AlertFilter{State: alert.StateFiring}, []string{"al-2"}},
		{alert.AlertFilter{Deployment: "flights"}, []string{"al-1"}},
		{alert.AlertFilter{Rule: "nope"}, nil},
		{alert.AlertFilter{Limit: 1}, []string{"al-2"}},
	} {
		got, err := s.ListAlerts(ctx, tc.f)
		must(t, "list filtered", err)
		if g := ids(got); len(g) != len(tc.want) || (len(g) > 0 && g[0] != tc.want[0]) {
			t.Fatalf("list %+v: got %v, want %v", tc.f, g, tc.want)
		}
	}
	wantCode(t, "state of unknown rule", s.SaveState(ctx, &alert.RuleState{Rule: "nope", Deployment: "d"}, nil), mloop.ENOTFOUND)
}

func ids(as []*alert.Alert) []string {
	var out []string
	for _, a := range as {
		out = append(out, a.ID)
	}
	return out
}

func testDeliveries(t *testing.T, s alert.Store) {
	ctx := context.Background()
	for i, o := range []string{alert.OutcomeRetry, alert.OutcomeFailed} {
		d := &alert.Delivery{AlertID: "al-1", Rule: "r", Kind: "webhook", Event: alert.StateFiring, Attempt: i + 1, StatusCode: 503, Error: "boom", Outcome: o, Time: t0.Add(time.Duration(i) * time.Second)}
		must(t, "add delivery", s.AddDelivery(ctx, d))
		if d.ID == 0 {
			t.Fatalf("delivery %d: no id set", i)
		}
	}
	must(t, "add other", s.AddDelivery(ctx, &alert.Delivery{AlertID: "al-2", Outcome: alert.OutcomeOK, Kind: "trigger", Detail: "1 event", Time: t0}))
	ds, err := s.ListDeliveries(ctx, "al-1")
	must(t, "list", err)
	if len(ds) != 2 || ds[0].Attempt != 1 || ds[1].Outcome != alert.OutcomeFailed || ds[1].StatusCode != 503 || ds[1].Error != "boom" ||
		!ds[1].Time.Equal(t0.Add(time.Second)) || ds[0].ID >= ds[1].ID {
		t.Fatalf("deliveries: got %+v", ds)
	}
	if ds, _ := s.ListDeliveries(ctx, "none"); len(ds) != 0 {
		t.Fatalf("unknown alert: got %d deliveries", len(ds))
	}
	wantCode(t, "bad delivery", s.AddDelivery(ctx, &alert.Delivery{}), mloop.EINVALID)
}

func testDeleteRule(t *testing.T, s alert.Store) {
	ctx := context.Background()
	must(t, "create", s.CreateRule(ctx, rule(t, "r")))
	a := &alert.Alert{ID: "al-1", Rule: "r", Deployment: "flights", ModelVersion: "m/1", State: alert.StateFiring, StartedAt: t0}
	must(t, "save", s.SaveState(ctx, &alert.RuleState{Rule: "r", Deployment: "flights", ModelVersion: "m/1", AlertID: a.ID}, a))
	must(t, "delete", s.DeleteRule(ctx, "r"))
	wantCode(t, "delete again", s.DeleteRule(ctx, "r"), mloop.ENOTFOUND)
	_, err := s.GetState(ctx, "r", "flights", "m/1")
	wantCode(t, "state after delete", err, mloop.ENOTFOUND)
	got, err := s.GetAlert(ctx, "al-1")
	must(t, "alert kept", err)
	if got.State != alert.StateResolved || got.ResolvedAt.IsZero() {
		t.Fatalf("alert of deleted rule: got state %s, resolved %v; want resolved", got.State, got.ResolvedAt)
	}
	// The name can be used again, with a fresh state.
	must(t, "create again", s.CreateRule(ctx, rule(t, "r")))
}
