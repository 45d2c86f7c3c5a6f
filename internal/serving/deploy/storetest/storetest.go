// Package storetest is the conformance suite of deploy.Store: every
// implementation (sqlstore on SQLite and on PostgreSQL) runs the same tests,
// so "works on both" is a test result. Call Run from a test of the
// implementation's package with a function that returns a fresh, empty
// store.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// Run runs the conformance suite; newStore returns a fresh, empty store for
// each subtest.
func Run(t *testing.T, newStore func(t *testing.T) deploy.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s deploy.Store)
	}{
		{"CreateGet", testCreateGet},
		{"CreateExists", testCreateExists},
		{"GetNotFound", testGetNotFound},
		{"List", testList},
		{"Update", testUpdate},
		{"UpdateConflict", testUpdateConflict},
		{"UpdateRace", testUpdateRace},
		{"Delete", testDelete},
		{"History", testHistory},
		{"Events", testEvents},
		{"EventDetails", testEventDetails},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// t0 is the base time of the tests, in Unix milliseconds.
const t0 = int64(1_741_064_767_008)

// wantCode fails the test unless err is of the given mloop error kind.
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

// diffJSON fails the test unless got and want encode to the same JSON.
func diffJSON(t *testing.T, what string, got, want any) {
	t.Helper()
	g, err := json.MarshalIndent(got, "", "  ")
	must(t, "encode got", err)
	w, err := json.MarshalIndent(want, "", "  ")
	must(t, "encode want", err)
	if string(g) != string(w) {
		t.Fatalf("%s:\ngot  %s\nwant %s", what, g, w)
	}
}

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

// newDeployment returns a deployment serving flights@champion as revision 1
// and a canary flights@4 as revision 2, with every spec field set.
func newDeployment(name string) *deploy.Deployment {
	return &deploy.Deployment{
		Name: name,
		Spec: deploy.Spec{
			Model:         deploy.Ref{Model: "flights", Alias: "champion"},
			Canary:        &deploy.Ref{Model: "flights", Version: 4},
			CanaryPercent: 10,
			Shadow:        &deploy.Ref{Model: "flights-v2", Version: 1},
			Batching:      deploy.Batching{MaxBatchSize: 64, MaxDelay: deploy.Duration(2_000_000)},
			PayloadSample: ptr(0.25),
			MaxBatchRows:  500,
			Rollback:      deploy.RollbackPolicy{MinRequests: 50, MaxLatencyRatio: 1.5},
		},
		Slots: []deploy.Slot{
			{Role: deploy.RolePrimary, Revision: 1, Ref: deploy.Ref{Model: "flights", Alias: "champion"}, Model: "flights", Version: 3, Flavor: "xgboost", Percent: 90},
			{Role: deploy.RoleCanary, Revision: 2, Ref: deploy.Ref{Model: "flights", Version: 4}, Model: "flights", Version: 4, Flavor: "xgboost", Percent: 10},
			{Role: deploy.RoleShadow, Revision: 3, Ref: deploy.Ref{Model: "flights-v2", Version: 1}, Model: "flights-v2", Version: 1, Flavor: "process"},
		},
		NextRevision: 4,
		CreatedAt:    t0,
		UpdatedAt:    t0,
	}
}

// event returns an event of the given type at t0+offset.
func event(typ string, offset int64, msg string) *deploy.Event {
	return &deploy.Event{Type: typ, Time: t0 + offset, Message: msg}
}

// mustCreate creates d with a created event.
func mustCreate(t *testing.T, s deploy.Store, d *deploy.Deployment) {
	t.Helper()
	must(t, "CreateDeployment "+d.Name, s.CreateDeployment(context.Background(), d, event(deploy.EventCreated, 0, "created "+d.Name)))
}

// changed returns a copy of d whose primary serves version v as revision
// d.NextRevision, updated at t0+offset.
func changed(d *deploy.Deployment, v int64, offset int64) *deploy.Deployment {
	c := *d
	c.Slots = append([]deploy.Slot(nil), d.Slots...)
	c.Slots[0].Version = v
	c.Slots[0].Revision = d.NextRevision
	c.NextRevision = d.NextRevision + 1
	c.UpdatedAt = t0 + offset
	return &c
}

func testCreateGet(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	d := newDeployment("flights-prod")
	ev := event(deploy.EventCreated, 0, "created: primary flights@champion → flights/3 (revision 1)")
	must(t, "CreateDeployment", s.CreateDeployment(ctx, d, ev))
	if d.Generation != 1 {
		t.Fatalf("CreateDeployment: got generation %d in d, want 1", d.Generation)
	}
	if ev.ID <= 0 || ev.Deployment != d.Name || ev.Generation != 1 || ev.Time != t0 {
		t.Fatalf("CreateDeployment: got event %+v, want an id, deployment %q, generation 1, time %d", ev, d.Name, t0)
	}
	got, err := s.GetDeployment(ctx, d.Name)
	must(t, "GetDeployment", err)
	diffJSON(t, "GetDeployment", got, d)
	if got.Spec.PayloadSample == nil || *got.Spec.PayloadSample != 0.25 || got.Spec.Canary == nil || got.Spec.Shadow == nil {
		t.Fatalf("GetDeployment: got spec %+v, want the pointers of the spec kept", got.Spec)
	}

	// A minimal deployment: no canary, no shadow, zero times filled in.
	m := &deploy.Deployment{
		Name:         "minimal",
		Spec:         deploy.Spec{Model: deploy.Ref{Model: "m", Version: 1}},
		Slots:        []deploy.Slot{{Role: deploy.RolePrimary, Revision: 1, Ref: deploy.Ref{Model: "m", Version: 1}, Model: "m", Version: 1, Percent: 100}},
		NextRevision: 2,
	}
	must(t, "CreateDeployment minimal", s.CreateDeployment(ctx, m, &deploy.Event{Type: deploy.EventCreated}))
	if m.CreatedAt == 0 || m.UpdatedAt != m.CreatedAt {
		t.Fatalf("CreateDeployment: got created %d, updated %d; want both set to now", m.CreatedAt, m.UpdatedAt)
	}
	got, err = s.GetDeployment(ctx, "minimal")
	must(t, "GetDeployment minimal", err)
	diffJSON(t, "GetDeployment minimal", got, m)
	if got.Spec.Canary != nil || got.Spec.Shadow != nil || got.Spec.PayloadSample != nil {
		t.Fatalf("GetDeployment minimal: got spec %+v, want no canary, shadow or payload sample", got.Spec)
	}
}

func testCreateExists(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	mustCreate(t, s, newDeployment("a"))
	other := newDeployment("a")
	other.Slots[0].Version = 99
	wantCode(t, "CreateDeployment of a taken name", s.CreateDeployment(ctx, other, event(deploy.EventCreated, 5, "again")), mloop.EEXISTS)
	got, err := s.GetDeployment(ctx, "a")
	must(t, "GetDeployment", err)
	if got.Slots[0].Version != 3 {
		t.Fatalf("after a failed create: got primary version %d, want the first deployment's 3", got.Slots[0].Version)
	}
	evs, err := s.ListEvents(ctx, "a", 0)
	must(t, "ListEvents", err)
	if len(evs) != 1 {
		t.Fatalf("after a failed create: got %d events, want 1 (the failed create stores none)", len(evs))
	}
	wantCode(t, "CreateDeployment without event", s.CreateDeployment(ctx, newDeployment("b"), nil), mloop.EINVALID)
	wantCode(t, "GetDeployment after a create without event", func() error { _, err := s.GetDeployment(ctx, "b"); return err }(), mloop.ENOTFOUND)
}

func testGetNotFound(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	_, err := s.GetDeployment(ctx, "nope")
	wantCode(t, "GetDeployment of an unknown name", err, mloop.ENOTFOUND)
	_, err = s.History(ctx, "nope", 0)
	wantCode(t, "History of an unknown name", err, mloop.ENOTFOUND)
	wantCode(t, "UpdateDeployment of an unknown name", s.UpdateDeployment(ctx, newDeployment("nope"), 1, event(deploy.EventUpdated, 1, "")), mloop.ENOTFOUND)
	wantCode(t, "DeleteDeployment of an unknown name", s.DeleteDeployment(ctx, "nope", event(deploy.EventDeleted, 1, "")), mloop.ENOTFOUND)
	evs, err := s.ListEvents(ctx, "nope", 0)
	must(t, "ListEvents of an unknown name", err)
	if len(evs) != 0 {
		t.Fatalf("ListEvents of an unknown name: got %d events, want none (failed changes store none)", len(evs))
	}
}

func testList(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	got, err := s.ListDeployments(ctx)
	must(t, "ListDeployments of an empty store", err)
	if got == nil || len(got) != 0 {
		t.Fatalf("ListDeployments of an empty store: got %v, want an empty, non-nil list", got)
	}
	var want []*deploy.Deployment
	for _, name := range []string{"zeta", "alpha", "b-2", "b-10", "Upper"} {
		d := newDeployment(name)
		mustCreate(t, s, d)
		want = append(want, d)
	}
	got, err = s.ListDeployments(ctx)
	must(t, "ListDeployments", err)
	var names []string
	for _, d := range got {
		names = append(names, d.Name)
	}
	diffJSON(t, "ListDeployments names (bytewise order)", names, []string{"Upper", "alpha", "b-10", "b-2", "zeta"})
	diffJSON(t, "ListDeployments alpha", got[1], want[1])
}

func testUpdate(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	d := newDeployment("flights")
	mustCreate(t, s, d)
	next := changed(d, 5, 10)
	next.Spec.CanaryPercent = 20
	next.Slots[0].Percent, next.Slots[1].Percent = 80, 20
	next.CreatedAt = 0 // the store keeps the stored one
	ev := event(deploy.EventUpdated, 10, "updated")
	must(t, "UpdateDeployment", s.UpdateDeployment(ctx, next, 1, ev))
	if next.Generation != 2 || next.CreatedAt != t0 || next.UpdatedAt != t0+10 {
		t.Fatalf("UpdateDeployment: got generation %d, created %d, updated %d; want 2, %d, %d",
			next.Generation, next.CreatedAt, next.UpdatedAt, t0, t0+10)
	}
	if ev.Generation != 2 || ev.Deployment != "flights" || ev.ID <= 0 {
		t.Fatalf("UpdateDeployment: got event %+v, want generation 2 of flights with an id", ev)
	}
	got, err := s.GetDeployment(ctx, "flights")
	must(t, "GetDeployment", err)
	diffJSON(t, "GetDeployment after update", got, next)

	// A second update from the new generation.
	third := changed(got, 6, 20)
	third.Spec.Canary, third.Spec.CanaryPercent = nil, 0
	third.Slots = []deploy.Slot{third.Slots[0]}
	third.Slots[0].Percent = 100
	must(t, "UpdateDeployment 2→3", s.UpdateDeployment(ctx, third, 2, event(deploy.EventPromoted, 20, "promoted")))
	got, err = s.GetDeployment(ctx, "flights")
	must(t, "GetDeployment", err)
	diffJSON(t, "GetDeployment after the second update", got, third)
	if got.Spec.Canary != nil || len(got.Slots) != 1 {
		t.Fatalf("after removing the canary: got spec canary %v and %d slots, want none and 1", got.Spec.Canary, len(got.Slots))
	}
}

func testUpdateConflict(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	d := newDeployment("flights")
	mustCreate(t, s, d)
	must(t, "UpdateDeployment", s.UpdateDeployment(ctx, changed(d, 5, 1), 1, event(deploy.EventUpdated, 1, "first")))
	stale := changed(d, 6, 2)
	wantCode(t, "UpdateDeployment from a stale generation", s.UpdateDeployment(ctx, stale, 1, event(deploy.EventUpdated, 2, "stale")), mloop.ECONFLICT)
	wantCode(t, "UpdateDeployment from a future generation", s.UpdateDeployment(ctx, changed(d, 7, 3), 5, event(deploy.EventUpdated, 3, "future")), mloop.ECONFLICT)
	got, err := s.GetDeployment(ctx, "flights")
	must(t, "GetDeployment", err)
	if got.Generation != 2 || got.Slots[0].Version != 5 {
		t.Fatalf("after conflicting updates: got generation %d serving version %d, want generation 2 serving 5", got.Generation, got.Slots[0].Version)
	}
	evs, err := s.ListEvents(ctx, "flights", 0)
	must(t, "ListEvents", err)
	if len(evs) != 2 {
		t.Fatalf("after conflicting updates: got %d events, want 2 (a refused change records nothing)", len(evs))
	}
	h, err := s.History(ctx, "flights", 0)
	must(t, "History", err)
	if len(h) != 1 || h[0].Generation != 1 {
		t.Fatalf("after conflicting updates: got %d history entries, want generation 1 only", len(h))
	}
	wantCode(t, "UpdateDeployment with invalid details",
		s.UpdateDeployment(ctx, changed(got, 8, 4), 2, &deploy.Event{Type: deploy.EventUpdated, Details: json.RawMessage(`{"a":`)}), mloop.EINVALID)
	if got, err := s.GetDeployment(ctx, "flights"); err != nil || got.Generation != 2 {
		t.Fatalf("after an update with an invalid event: got %v, %v; want generation 2 unchanged (one transaction)", got, err)
	}
}

func testUpdateRace(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	d := newDeployment("flights")
	mustCreate(t, s, d)
	const writers = 8
	errs := make([]error, writers)
	var wg sync.WaitGroup
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.UpdateDeployment(ctx, changed(d, int64(10+i), int64(i+1)), 1,
				event(deploy.EventUpdated, int64(i+1), fmt.Sprintf("writer %d", i)))
		}()
	}
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch mloop.ErrorCode(err) {
		case "":
			if winner >= 0 {
				t.Fatalf("writers %d and %d both updated from generation 1, want exactly one", winner, i)
			}
			winner = i
		case mloop.ECONFLICT:
		default:
			t.Fatalf("writer %d: got %v, want success or a conflict", i, err)
		}
	}
	if winner < 0 {
		t.Fatalf("no writer of %d updated from generation 1, want exactly one", writers)
	}
	got, err := s.GetDeployment(ctx, "flights")
	must(t, "GetDeployment", err)
	if got.Generation != 2 || got.Slots[0].Version != int64(10+winner) {
		t.Fatalf("after the race: got generation %d serving version %d, want 2 serving the winner's %d", got.Generation, got.Slots[0].Version, 10+winner)
	}
	evs, err := s.ListEvents(ctx, "flights", 0)
	must(t, "ListEvents", err)
	if len(evs) != 2 || evs[0].Message != fmt.Sprintf("writer %d", winner) {
		t.Fatalf("after the race: got %d events (newest %+v), want the created event and the winner's", len(evs), evs[0])
	}
	h, err := s.History(ctx, "flights", 0)
	must(t, "History", err)
	if len(h) != 1 {
		t.Fatalf("after the race: got %d history entries, want 1", len(h))
	}
}

func testDelete(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	d := newDeployment("flights")
	mustCreate(t, s, d)
	mustCreate(t, s, newDeployment("other"))
	must(t, "UpdateDeployment", s.UpdateDeployment(ctx, changed(d, 5, 1), 1, event(deploy.EventUpdated, 1, "updated")))
	ev := event(deploy.EventDeleted, 2, "deleted")
	must(t, "DeleteDeployment", s.DeleteDeployment(ctx, "flights", ev))
	if ev.ID <= 0 || ev.Generation != 3 || ev.Deployment != "flights" {
		t.Fatalf("DeleteDeployment: got event %+v, want an id and generation 3 (after the deleted 2)", ev)
	}
	_, err := s.GetDeployment(ctx, "flights")
	wantCode(t, "GetDeployment after delete", err, mloop.ENOTFOUND)
	_, err = s.History(ctx, "flights", 0)
	wantCode(t, "History after delete", err, mloop.ENOTFOUND)
	wantCode(t, "DeleteDeployment again", s.DeleteDeployment(ctx, "flights", event(deploy.EventDeleted, 3, "again")), mloop.ENOTFOUND)
	list, err := s.ListDeployments(ctx)
	must(t, "ListDeployments", err)
	if len(list) != 1 || list[0].Name != "other" {
		t.Fatalf("ListDeployments after delete: got %d deployments, want only other", len(list))
	}
	evs, err := s.ListEvents(ctx, "flights", 0)
	must(t, "ListEvents after delete", err)
	var types []string
	for _, e := range evs {
		types = append(types, e.Type)
	}
	diffJSON(t, "events kept after delete", types, []string{deploy.EventDeleted, deploy.EventUpdated, deploy.EventCreated})

	// The name can be used again, with a fresh history.
	again := newDeployment("flights")
	mustCreate(t, s, again)
	if again.Generation != 1 {
		t.Fatalf("re-created deployment: got generation %d, want 1", again.Generation)
	}
	h, err := s.History(ctx, "flights", 0)
	must(t, "History of the re-created deployment", err)
	if len(h) != 0 {
		t.Fatalf("History of the re-created deployment: got %d entries, want none (the old history went with it)", len(h))
	}
	must(t, "UpdateDeployment of the re-created deployment", s.UpdateDeployment(ctx, changed(again, 9, 5), 1, event(deploy.EventUpdated, 5, "")))
}

func testHistory(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	d := newDeployment("flights")
	mustCreate(t, s, d)
	mustCreate(t, s, newDeployment("other"))
	want := []*deploy.Deployment{}
	cur := d
	for i := range 4 {
		want = append([]*deploy.Deployment{cur}, want...)
		next := changed(cur, int64(10+i), int64(i+1))
		must(t, "UpdateDeployment", s.UpdateDeployment(ctx, next, cur.Generation, event(deploy.EventUpdated, int64(i+1), "")))
		cur = next
	}
	h, err := s.History(ctx, "flights", 0)
	must(t, "History", err)
	diffJSON(t, "History (newest first)", h, want)
	h, err = s.History(ctx, "flights", 2)
	must(t, "History limit 2", err)
	diffJSON(t, "History limit 2", h, want[:2])
	h, err = s.History(ctx, "other", 0)
	must(t, "History of an unchanged deployment", err)
	if h == nil || len(h) != 0 {
		t.Fatalf("History of an unchanged deployment: got %v, want an empty, non-nil list", h)
	}
}

func testEvents(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	a, b := newDeployment("a"), newDeployment("b")
	mustCreate(t, s, a)
	mustCreate(t, s, b)
	must(t, "UpdateDeployment a", s.UpdateDeployment(ctx, changed(a, 5, 1), 1, event(deploy.EventUpdated, 1, "a updated")))
	must(t, "UpdateDeployment b", s.UpdateDeployment(ctx, changed(b, 5, 2), 1, event(deploy.EventPromoted, 2, "b promoted")))
	must(t, "DeleteDeployment a", s.DeleteDeployment(ctx, "a", event(deploy.EventDeleted, 3, "a deleted")))

	all, err := s.ListEvents(ctx, "", 0)
	must(t, "ListEvents of every deployment", err)
	var msgs []string
	for i, e := range all {
		msgs = append(msgs, e.Message)
		if i > 0 && e.ID >= all[i-1].ID {
			t.Fatalf("ListEvents: ids %d then %d, want newest (highest id) first", all[i-1].ID, e.ID)
		}
	}
	diffJSON(t, "ListEvents of every deployment", msgs, []string{"a deleted", "b promoted", "a updated", "created b", "created a"})
	if all[0].Time != t0+3 || all[0].Generation != 3 || all[1].Generation != 2 || all[1].Deployment != "b" {
		t.Fatalf("ListEvents: got %+v and %+v, want a's delete at t0+3 (generation 3) and b's promotion (generation 2)", all[0], all[1])
	}
	some, err := s.ListEvents(ctx, "", 2)
	must(t, "ListEvents limit 2", err)
	diffJSON(t, "ListEvents limit 2", some, all[:2])
	bs, err := s.ListEvents(ctx, "b", 0)
	must(t, "ListEvents of b", err)
	diffJSON(t, "ListEvents of b", bs, []*deploy.Event{all[1], all[3]})
	bs, err = s.ListEvents(ctx, "b", 1)
	must(t, "ListEvents of b, limit 1", err)
	diffJSON(t, "ListEvents of b, limit 1", bs, []*deploy.Event{all[1]})
}

func testEventDetails(t *testing.T, s deploy.Store) {
	ctx := context.Background()
	d := newDeployment("flights")
	mustCreate(t, s, d)
	details := json.RawMessage(`{"before":[{"role":"canary","revision":2}],"after":[],"error_rate":0.52}`)
	ev := &deploy.Event{Type: deploy.EventAutoRolledBack, Time: t0 + 1, Automatic: true,
		Message: "canary flights@4 (revision 2) rolled back: error rate 0.52 vs primary 0.00", Details: details}
	next := changed(d, 3, 1)
	next.Slots = next.Slots[:1]
	must(t, "UpdateDeployment", s.UpdateDeployment(ctx, next, 1, ev))
	evs, err := s.ListEvents(ctx, "flights", 1)
	must(t, "ListEvents", err)
	got := evs[0]
	if !got.Automatic || got.Type != deploy.EventAutoRolledBack || got.Message != ev.Message || got.ID != ev.ID {
		t.Fatalf("ListEvents: got %+v, want %+v", got, ev)
	}
	var g, w any
	must(t, "decode stored details", json.Unmarshal(got.Details, &g))
	must(t, "decode details", json.Unmarshal(details, &w))
	diffJSON(t, "event details", g, w)
	evs, err = s.ListEvents(ctx, "flights", 0)
	must(t, "ListEvents", err)
	if created := evs[1]; created.Automatic || created.Details != nil {
		t.Fatalf("created event: got automatic %v and details %s, want neither", created.Automatic, created.Details)
	}
}
