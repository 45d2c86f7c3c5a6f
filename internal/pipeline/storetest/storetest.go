// Package storetest is the conformance suite of pipeline.Store: every
// implementation (sqlstore on SQLite and on PostgreSQL) runs the same tests,
// so "works on both" is a test result. Call Run from a test of the
// implementation's package with a function that returns a fresh, empty store.
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/pipeline"
)

// Run runs the conformance suite; newStore returns a fresh, empty store for
// each subtest.
func Run(t *testing.T, newStore func(t *testing.T) pipeline.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, s pipeline.Store)
	}{
		{"CreateGetRun", testCreateGetRun},
		{"CreateRunErrors", testCreateRunErrors},
		{"ListRuns", testListRuns},
		{"ListRunsPaging", testListRunsPaging},
		{"ClaimRun", testClaimRun},
		{"ClaimRunRace", testClaimRunRace},
		{"UpdateRun", testUpdateRun},
		{"UpdateStep", testUpdateStep},
		{"Cache", testCache},
		{"EdgesChain", testEdgesChain},
		{"EdgesCycleAndDuplicates", testEdgesCycleAndDuplicates},
		{"Triggers", testTriggers},
		{"AddEvents", testAddEvents},
		{"ListEvents", testListEvents},
		{"Fire", testFire},
		{"FireRace", testFireRace},
		{"DecideEvents", testDecideEvents},
		{"DeleteTrigger", testDeleteTrigger},
		{"Lease", testLease},
		{"LeaseRace", testLeaseRace},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tc.fn(t, newStore(t))
		})
	}
}

// t0 is the base time of the tests, with millisecond precision as stored.
var t0 = time.Date(2025, 3, 4, 5, 6, 7, 8e6, time.UTC)

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

// ptr returns a pointer to v.
func ptr[T any](v T) *T { return &v }

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

// newRun returns a queued run of pipeline p created at created, with steps
// in a non-alphabetical plan order.
func newRun(id, p string, created time.Time) *pipeline.Run {
	return &pipeline.Run{
		ID:         id,
		Pipeline:   p,
		SpecFile:   "/project/mloop.yaml",
		ProjectDir: "/project",
		Spec:       "name: " + p + "\nsteps: {}\n",
		Params:     map[string]string{"lr": "0.1"},
		Datasets:   map[string]pipeline.InputHash{"flights@latest": {Ref: "flights@7", Hash: "sha256:aa"}},
		Status:     pipeline.RunQueued,
		Cause:      "mloop pipeline run by alice",
		InputsKey:  "sha256:" + id,
		CreatedAt:  created,
		Steps: []*pipeline.StepRun{
			{Name: "validate", Status: pipeline.StepPending},
			{Name: "train", Status: pipeline.StepPending},
			{Name: "evaluate", Status: pipeline.StepPending},
		},
	}
}

// withoutSpec returns a copy of r without its spec text, as ListRuns returns it.
func withoutSpec(r *pipeline.Run) *pipeline.Run {
	c := *r
	c.Spec = ""
	return &c
}

// stored returns r as a store returns it: its steps carry the run's id.
func stored(r *pipeline.Run) *pipeline.Run {
	c := *r
	c.Steps = make([]*pipeline.StepRun, len(r.Steps))
	for i, st := range r.Steps {
		sc := *st
		sc.RunID = r.ID
		c.Steps[i] = &sc
	}
	return &c
}

func testCreateGetRun(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	r := newRun("pr-000000000001", "flights", t0)
	r.Trigger, r.EventIDs, r.Explain = "nightly", []int64{3, 4}, true
	must(t, "CreateRun", s.CreateRun(ctx, r))
	got, err := s.GetRun(ctx, r.ID)
	must(t, "GetRun", err)
	diffJSON(t, "GetRun", got, stored(r))
	if !got.CreatedAt.Equal(t0) {
		t.Fatalf("CreatedAt: got %v, want %v", got.CreatedAt, t0)
	}
	if got.Spec != r.Spec {
		t.Fatalf("Spec: got %q, want %q", got.Spec, r.Spec)
	}
	var names []string
	for _, st := range got.Steps {
		names = append(names, st.Name)
	}
	if want := []string{"validate", "train", "evaluate"}; !slices.Equal(names, want) {
		t.Fatalf("step order: got %v, want %v (the plan's order)", names, want)
	}

	// A run given without statuses is queued with pending steps.
	bare := &pipeline.Run{ID: "pr-000000000002", Pipeline: "flights", CreatedAt: t0,
		Steps: []*pipeline.StepRun{{Name: "a"}}}
	must(t, "CreateRun without statuses", s.CreateRun(ctx, bare))
	got, err = s.GetRun(ctx, bare.ID)
	must(t, "GetRun", err)
	if got.Status != pipeline.RunQueued || got.Steps[0].Status != pipeline.StepPending {
		t.Fatalf("defaults: got run %q step %q, want %q and %q", got.Status, got.Steps[0].Status, pipeline.RunQueued, pipeline.StepPending)
	}
	if got.Steps[0].ExitCode != nil || !got.StartedAt.IsZero() || !got.FinishedAt.IsZero() {
		t.Fatalf("unset fields: got exit code %v, started %v, finished %v; want nil and zero times",
			got.Steps[0].ExitCode, got.StartedAt, got.FinishedAt)
	}

	// A run without steps reads back with an empty list.
	empty := &pipeline.Run{ID: "pr-000000000003", Pipeline: "flights", CreatedAt: t0}
	must(t, "CreateRun without steps", s.CreateRun(ctx, empty))
	got, err = s.GetRun(ctx, empty.ID)
	must(t, "GetRun", err)
	if got.Steps == nil || len(got.Steps) != 0 {
		t.Fatalf("steps of a run without steps: got %#v, want an empty non-nil list", got.Steps)
	}
}

func testCreateRunErrors(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	r := newRun("pr-000000000001", "flights", t0)
	must(t, "CreateRun", s.CreateRun(ctx, r))
	wantCode(t, "CreateRun of a taken id", s.CreateRun(ctx, newRun(r.ID, "other", t0)), mloop.EEXISTS)
	got, err := s.GetRun(ctx, r.ID)
	must(t, "GetRun", err)
	if got.Pipeline != "flights" {
		t.Fatalf("after a failed create: got pipeline %q, want the first run kept (flights)", got.Pipeline)
	}
	_, err = s.GetRun(ctx, "pr-ffffffffffff")
	wantCode(t, "GetRun of a missing run", err, mloop.ENOTFOUND)

	wantCode(t, "CreateRun without id", s.CreateRun(ctx, newRun("", "flights", t0)), mloop.EINVALID)
	dup := newRun("pr-000000000002", "flights", t0)
	dup.Steps = append(dup.Steps, &pipeline.StepRun{Name: "train"})
	wantCode(t, "CreateRun with two steps named train", s.CreateRun(ctx, dup), mloop.EINVALID)
	_, err = s.GetRun(ctx, dup.ID)
	wantCode(t, "GetRun of a run whose creation failed", err, mloop.ENOTFOUND)
}

// ids returns the ids of runs.
func ids(runs []*pipeline.Run) []string {
	out := make([]string, len(runs))
	for i, r := range runs {
		out[i] = r.ID
	}
	return out
}

func testListRuns(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	var all []*pipeline.Run
	for i := range 5 {
		p := "flights"
		if i%2 == 1 {
			p = "taxis"
		}
		r := newRun(fmt.Sprintf("pr-00000000000%d", i), p, t0.Add(time.Duration(i)*time.Minute))
		if i >= 3 {
			r.Trigger = "nightly"
		}
		must(t, "CreateRun", s.CreateRun(ctx, r))
		all = append(all, r)
	}
	ok, err := s.ClaimRun(ctx, all[2].ID, "host:1:1", t0.Add(time.Hour))
	if err != nil || !ok {
		t.Fatalf("ClaimRun: got %v, %v; want true", ok, err)
	}

	runs, next, err := s.ListRuns(ctx, pipeline.RunFilter{})
	must(t, "ListRuns", err)
	if next != "" {
		t.Fatalf("ListRuns of 5 runs: got next page token %q, want none", next)
	}
	if got, want := ids(runs), []string{"pr-000000000004", "pr-000000000003", "pr-000000000002", "pr-000000000001", "pr-000000000000"}; !slices.Equal(got, want) {
		t.Fatalf("ListRuns: got %v, want %v (newest first)", got, want)
	}
	want := stored(withoutSpec(all[4]))
	diffJSON(t, "ListRuns first run", runs[0], want)
	for _, r := range runs {
		if r.Spec != "" {
			t.Fatalf("ListRuns: run %s has its spec text, want none", r.ID)
		}
		if len(r.Steps) != 3 {
			t.Fatalf("ListRuns: run %s has %d steps, want 3", r.ID, len(r.Steps))
		}
	}

	for _, tc := range []struct {
		f    pipeline.RunFilter
		want []string
	}{
		{pipeline.RunFilter{Pipeline: "taxis"}, []string{"pr-000000000003", "pr-000000000001"}},
		{pipeline.RunFilter{Trigger: "nightly"}, []string{"pr-000000000004", "pr-000000000003"}},
		{pipeline.RunFilter{Statuses: []pipeline.RunStatus{pipeline.RunRunning}}, []string{"pr-000000000002"}},
		{pipeline.RunFilter{Statuses: []pipeline.RunStatus{pipeline.RunRunning, pipeline.RunQueued}, Pipeline: "flights"},
			[]string{"pr-000000000004", "pr-000000000002", "pr-000000000000"}},
		{pipeline.RunFilter{Pipeline: "none"}, []string{}},
	} {
		runs, _, err := s.ListRuns(ctx, tc.f)
		must(t, "ListRuns", err)
		if got := ids(runs); !slices.Equal(got, tc.want) {
			t.Fatalf("ListRuns(%+v): got %v, want %v", tc.f, got, tc.want)
		}
	}

	_, _, err = s.ListRuns(ctx, pipeline.RunFilter{PageToken: "not a token"})
	wantCode(t, "ListRuns with a bad page token", err, mloop.EINVALID)
}

func testListRunsPaging(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	// Seven runs, three of them created in the same millisecond, so the
	// token must break ties.
	var want []string
	for i := range 7 {
		created := t0.Add(time.Duration(min(i, 4)) * time.Second)
		r := newRun(fmt.Sprintf("pr-00000000010%d", i), "flights", created)
		must(t, "CreateRun", s.CreateRun(ctx, r))
		want = append([]string{r.ID}, want...)
	}
	var got []string
	tok := ""
	for page := 0; ; page++ {
		if page > 10 {
			t.Fatalf("ListRuns paging: more than 10 pages of 2 runs for 7 runs")
		}
		runs, next, err := s.ListRuns(ctx, pipeline.RunFilter{MaxResults: 2, PageToken: tok})
		must(t, "ListRuns", err)
		if len(runs) > 2 {
			t.Fatalf("ListRuns page %d: got %d runs, want at most 2", page, len(runs))
		}
		got = append(got, ids(runs)...)
		if next == "" {
			break
		}
		tok = next
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ListRuns pages: got %v, want %v (each run once, newest first; ties by id)", got, want)
	}
}

func testClaimRun(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	r := newRun("pr-000000000001", "flights", t0)
	must(t, "CreateRun", s.CreateRun(ctx, r))
	claimedAt := t0.Add(time.Minute)
	ok, err := s.ClaimRun(ctx, r.ID, "host-a:1:1", claimedAt)
	if err != nil || !ok {
		t.Fatalf("ClaimRun of a queued run: got %v, %v; want true", ok, err)
	}
	got, err := s.GetRun(ctx, r.ID)
	must(t, "GetRun", err)
	if got.Status != pipeline.RunRunning || got.Owner != "host-a:1:1" || !got.StartedAt.Equal(claimedAt) {
		t.Fatalf("claimed run: got status %q owner %q started %v; want running, host-a:1:1, %v",
			got.Status, got.Owner, got.StartedAt, claimedAt)
	}
	ok, err = s.ClaimRun(ctx, r.ID, "host-b:2:2", claimedAt.Add(time.Minute))
	if err != nil || ok {
		t.Fatalf("second ClaimRun: got %v, %v; want false", ok, err)
	}
	got, err = s.GetRun(ctx, r.ID)
	must(t, "GetRun", err)
	if got.Owner != "host-a:1:1" || !got.StartedAt.Equal(claimedAt) {
		t.Fatalf("after a lost claim: got owner %q started %v; want the first claim kept", got.Owner, got.StartedAt)
	}
	_, err = s.ClaimRun(ctx, "pr-ffffffffffff", "host-a:1:1", claimedAt)
	wantCode(t, "ClaimRun of a missing run", err, mloop.ENOTFOUND)
}

func testClaimRunRace(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	const runs = 10
	for i := range runs {
		must(t, "CreateRun", s.CreateRun(ctx, newRun(fmt.Sprintf("pr-00000000020%d", i), "flights", t0)))
	}
	owners := []string{"host-a:1:1", "host-b:2:2"}
	wins := make([][]bool, len(owners))
	errs := make([]error, len(owners))
	var wg sync.WaitGroup
	for o := range owners {
		wins[o] = make([]bool, runs)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range runs {
				ok, err := s.ClaimRun(ctx, fmt.Sprintf("pr-00000000020%d", i), owners[o], t0)
				if err != nil {
					errs[o] = err
					return
				}
				wins[o][i] = ok
			}
		}()
	}
	wg.Wait()
	must(t, "concurrent ClaimRun", errors.Join(errs...))
	for i := range runs {
		id := fmt.Sprintf("pr-00000000020%d", i)
		if wins[0][i] == wins[1][i] {
			t.Fatalf("run %s: claims by two controllers returned %v and %v, want exactly one true", id, wins[0][i], wins[1][i])
		}
		winner := owners[0]
		if wins[1][i] {
			winner = owners[1]
		}
		got, err := s.GetRun(ctx, id)
		must(t, "GetRun", err)
		if got.Owner != winner {
			t.Fatalf("run %s: got owner %q, want the winner %q", id, got.Owner, winner)
		}
	}
}

func testUpdateRun(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	r := newRun("pr-000000000001", "flights", t0)
	must(t, "CreateRun", s.CreateRun(ctx, r))
	must(t, "UpdateRun", s.UpdateRun(ctx, r.ID, pipeline.RunUpdate{
		Status:          ptr(pipeline.RunFailed),
		Error:           ptr("step train failed"),
		ExperimentID:    ptr("7"),
		MLflowRunID:     ptr("abc"),
		CancelRequested: ptr(true),
		StartedAt:       ptr(t0.Add(time.Second)),
		FinishedAt:      ptr(t0.Add(time.Minute)),
	}))
	want := stored(r)
	want.Status, want.Error, want.ExperimentID, want.MLflowRunID = pipeline.RunFailed, "step train failed", "7", "abc"
	want.CancelRequested, want.StartedAt, want.FinishedAt = true, t0.Add(time.Second), t0.Add(time.Minute)
	got, err := s.GetRun(ctx, r.ID)
	must(t, "GetRun", err)
	diffJSON(t, "updated run", got, want)

	// Nil fields are left alone; a zero time clears.
	must(t, "UpdateRun", s.UpdateRun(ctx, r.ID, pipeline.RunUpdate{FinishedAt: ptr(time.Time{})}))
	want.FinishedAt = time.Time{}
	got, err = s.GetRun(ctx, r.ID)
	must(t, "GetRun", err)
	diffJSON(t, "run after clearing FinishedAt", got, want)
	must(t, "empty UpdateRun", s.UpdateRun(ctx, r.ID, pipeline.RunUpdate{}))

	wantCode(t, "UpdateRun of a missing run", s.UpdateRun(ctx, "pr-ffffffffffff", pipeline.RunUpdate{Error: ptr("x")}), mloop.ENOTFOUND)
	wantCode(t, "empty UpdateRun of a missing run", s.UpdateRun(ctx, "pr-ffffffffffff", pipeline.RunUpdate{}), mloop.ENOTFOUND)
}

func testUpdateStep(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	r := newRun("pr-000000000001", "flights", t0)
	must(t, "CreateRun", s.CreateRun(ctx, r))
	outputs := map[string]pipeline.OutputRecord{
		"model": {URI: "file:///a/outputs/model", Hash: "sha256:bb", Size: 10, Dir: true, Type: "model", Flavor: "xgboost"},
	}
	must(t, "UpdateStep", s.UpdateStep(ctx, r.ID, "train", pipeline.StepUpdate{
		Status:      ptr(pipeline.StepFailed),
		Attempt:     ptr(2),
		CacheKey:    ptr("sha256:cc"),
		CachedFrom:  ptr("pr-000000000000"),
		Explain:     []string{"no earlier result"},
		MLflowRunID: ptr("def"),
		Executor:    ptr("local"),
		TaskID:      ptr("task-1"),
		Handle:      ptr("4242"),
		ExitCode:    ptr(-1),
		Error:       ptr("killed"),
		Outputs:     outputs,
		Metrics:     map[string]float64{"auc": 0.75},
		StartedAt:   ptr(t0.Add(time.Second)),
		FinishedAt:  ptr(t0.Add(time.Minute)),
	}))
	want := stored(r)
	st := want.Step("train")
	st.Status, st.Attempt, st.CacheKey, st.CachedFrom = pipeline.StepFailed, 2, "sha256:cc", "pr-000000000000"
	st.Explain, st.MLflowRunID, st.Executor, st.TaskID, st.Handle = []string{"no earlier result"}, "def", "local", "task-1", "4242"
	st.ExitCode, st.Error, st.Outputs, st.Metrics = ptr(-1), "killed", outputs, map[string]float64{"auc": 0.75}
	st.StartedAt, st.FinishedAt = t0.Add(time.Second), t0.Add(time.Minute)
	got, err := s.GetRun(ctx, r.ID)
	must(t, "GetRun", err)
	diffJSON(t, "run after UpdateStep", got, want)

	// Non-nil lists replace; nil fields are left alone.
	must(t, "UpdateStep", s.UpdateStep(ctx, r.ID, "train", pipeline.StepUpdate{
		Explain: []string{"code input train.py changed"}, ExitCode: ptr(0)}))
	st.Explain, st.ExitCode = []string{"code input train.py changed"}, ptr(0)
	got, err = s.GetRun(ctx, r.ID)
	must(t, "GetRun", err)
	diffJSON(t, "run after a second UpdateStep", got, want)

	wantCode(t, "UpdateStep of a missing step", s.UpdateStep(ctx, r.ID, "deploy", pipeline.StepUpdate{Error: ptr("x")}), mloop.ENOTFOUND)
	wantCode(t, "UpdateStep of a missing run", s.UpdateStep(ctx, "pr-ffffffffffff", "train", pipeline.StepUpdate{Error: ptr("x")}), mloop.ENOTFOUND)
	wantCode(t, "empty UpdateStep of a missing step", s.UpdateStep(ctx, r.ID, "deploy", pipeline.StepUpdate{}), mloop.ENOTFOUND)
	must(t, "empty UpdateStep", s.UpdateStep(ctx, r.ID, "train", pipeline.StepUpdate{}))
}

func testCache(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	_, err := s.GetCache(ctx, "sha256:00")
	wantCode(t, "GetCache of a missing key", err, mloop.ENOTFOUND)
	_, err = s.LatestCache(ctx, "flights", "train")
	wantCode(t, "LatestCache without entries", err, mloop.ENOTFOUND)

	e1 := &pipeline.CacheEntry{
		Key: "sha256:01", Pipeline: "flights", Step: "train", RunID: "pr-000000000001", MLflowRunID: "m1",
		Input: pipeline.CacheInput{Command: []string{"python", "train.py"}, Params: map[string]string{"lr": "0.1"},
			Code: map[string]pipeline.InputHash{"train.py": {Ref: "train.py", Hash: "sha256:c1"}}},
		Outputs:   map[string]pipeline.OutputRecord{"model": {URI: "file:///m1", Hash: "sha256:o1", Size: 3}},
		Metrics:   map[string]float64{"auc": 0.5},
		CreatedAt: t0,
	}
	e2 := &pipeline.CacheEntry{
		Key: "sha256:02", Pipeline: "flights", Step: "train", RunID: "pr-000000000002", MLflowRunID: "m2",
		Input:     pipeline.CacheInput{Command: []string{"python", "train.py"}},
		Outputs:   map[string]pipeline.OutputRecord{"model": {URI: "file:///m2", Hash: "sha256:o2", Size: 4}},
		CreatedAt: t0.Add(time.Minute),
	}
	other := &pipeline.CacheEntry{Key: "sha256:03", Pipeline: "flights", Step: "evaluate", RunID: "pr-000000000003",
		Input: pipeline.CacheInput{Command: []string{"true"}}, CreatedAt: t0.Add(time.Hour)}
	for _, e := range []*pipeline.CacheEntry{e1, e2, other} {
		must(t, "PutCache", s.PutCache(ctx, e))
	}
	got, err := s.GetCache(ctx, e1.Key)
	must(t, "GetCache", err)
	diffJSON(t, "GetCache", got, e1)
	got, err = s.LatestCache(ctx, "flights", "train")
	must(t, "LatestCache", err)
	diffJSON(t, "LatestCache", got, e2)

	// PutCache replaces an entry with the same key.
	e1b := *e1
	e1b.RunID, e1b.CreatedAt = "pr-000000000009", t0.Add(2*time.Minute)
	must(t, "PutCache of an existing key", s.PutCache(ctx, &e1b))
	got, err = s.GetCache(ctx, e1.Key)
	must(t, "GetCache", err)
	diffJSON(t, "GetCache after replace", got, &e1b)
	got, err = s.LatestCache(ctx, "flights", "train")
	must(t, "LatestCache", err)
	if got.Key != e1.Key {
		t.Fatalf("LatestCache after replacing %s with a newer entry: got %s, want %s", e1.Key, got.Key, e1.Key)
	}
}

// chain is the lineage of a model: a dataset version read by a validation
// step that produced an artifact, read by a training step that produced the
// model artifact, registered as a model version.
var (
	nDataset  = pipeline.Node{Kind: pipeline.NodeDataset, ID: "flights@7"}
	nValidate = pipeline.Node{Kind: pipeline.NodeStepRun, ID: "run-validate"}
	nClean    = pipeline.Node{Kind: pipeline.NodeArtifact, ID: "file:///a/clean"}
	nTrain    = pipeline.Node{Kind: pipeline.NodeStepRun, ID: "run-train"}
	nModelArt = pipeline.Node{Kind: pipeline.NodeArtifact, ID: "file:///a/model"}
	nModel    = pipeline.Node{Kind: pipeline.NodeModel, ID: "delays/1"}
)

func chainEdges() []pipeline.Edge {
	return []pipeline.Edge{
		{From: nDataset, To: nValidate, Relation: "input", Name: "data", CreatedAt: t0},
		{From: nValidate, To: nClean, Relation: "output", Name: "clean", CreatedAt: t0.Add(1 * time.Second)},
		{From: nClean, To: nTrain, Relation: "input", Name: "train", CreatedAt: t0.Add(2 * time.Second)},
		{From: nTrain, To: nModelArt, Relation: "output", Name: "model", CreatedAt: t0.Add(3 * time.Second)},
		{From: nModelArt, To: nModel, Relation: "registered", CreatedAt: t0.Add(4 * time.Second)},
	}
}

// edgeSet returns the edges as "from -relation-> to" strings, sorted.
func edgeSet(edges []pipeline.Edge) []string {
	out := make([]string, len(edges))
	for i, e := range edges {
		out[i] = e.From.String() + " -" + e.Relation + "-> " + e.To.String()
	}
	slices.Sort(out)
	return out
}

func testEdgesChain(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	chain := chainEdges()
	must(t, "AddEdges", s.AddEdges(ctx, chain))
	// An unrelated edge that no walk from the chain reaches.
	must(t, "AddEdges", s.AddEdges(ctx, []pipeline.Edge{{From: pipeline.Node{Kind: pipeline.NodeDataset, ID: "other@1"},
		To: pipeline.Node{Kind: pipeline.NodeStepRun, ID: "run-other"}, Relation: "input", CreatedAt: t0}}))

	for _, tc := range []struct {
		name  string
		n     pipeline.Node
		d     pipeline.Direction
		depth int
		want  []pipeline.Edge
	}{
		{"up from the model", nModel, pipeline.Up, 0, chain},
		{"down from the dataset", nDataset, pipeline.Down, 0, chain},
		{"down from the model", nModel, pipeline.Down, 0, nil},
		{"up from the dataset", nDataset, pipeline.Up, 0, nil},
		{"up from the model, depth 1", nModel, pipeline.Up, 1, chain[4:]},
		{"up from the model, depth 2", nModel, pipeline.Up, 2, chain[3:]},
		{"down from the dataset, depth 3", nDataset, pipeline.Down, 3, chain[:3]},
		{"both from the clean artifact", nClean, pipeline.Both, 0, chain},
		{"both from the clean artifact, depth 1", nClean, pipeline.Both, 1, chain[1:3]},
		{"up from an unknown node", pipeline.Node{Kind: pipeline.NodeModel, ID: "none/1"}, pipeline.Up, 0, nil},
	} {
		got, err := s.Edges(ctx, tc.n, tc.d, tc.depth)
		must(t, tc.name, err)
		if g, w := edgeSet(got), edgeSet(tc.want); !slices.Equal(g, w) {
			t.Fatalf("%s: got edges\n%v\nwant\n%v", tc.name, g, w)
		}
	}

	// Edges come back whole, in breadth-first order.
	got, err := s.Edges(ctx, nModel, pipeline.Up, 0)
	must(t, "Edges", err)
	want := slices.Clone(chain)
	slices.Reverse(want)
	diffJSON(t, "Edges up from the model", got, want)

	_, err = s.Edges(ctx, nModel, pipeline.Direction("sideways"), 0)
	wantCode(t, "Edges with an unknown direction", err, mloop.EINVALID)
}

func testEdgesCycleAndDuplicates(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	a := pipeline.Node{Kind: pipeline.NodeArtifact, ID: "a"}
	b := pipeline.Node{Kind: pipeline.NodeStepRun, ID: "b"}
	c := pipeline.Node{Kind: pipeline.NodeArtifact, ID: "c"}
	edges := []pipeline.Edge{
		{From: a, To: b, Relation: "input", CreatedAt: t0},
		{From: b, To: c, Relation: "output", CreatedAt: t0},
		{From: c, To: a, Relation: "input", CreatedAt: t0},
		// The same link twice in one call, and a second relation between
		// the same nodes.
		{From: a, To: b, Relation: "input", Name: "again", CreatedAt: t0.Add(time.Hour)},
		{From: a, To: b, Relation: "step", CreatedAt: t0},
	}
	must(t, "AddEdges", s.AddEdges(ctx, edges))
	must(t, "AddEdges again", s.AddEdges(ctx, edges[:2]))
	wantSet := edgeSet([]pipeline.Edge{edges[0], edges[1], edges[2], edges[4]})
	for _, d := range []pipeline.Direction{pipeline.Up, pipeline.Down, pipeline.Both} {
		got, err := s.Edges(ctx, a, d, 0)
		must(t, "Edges in a cycle", err)
		if g := edgeSet(got); !slices.Equal(g, wantSet) {
			t.Fatalf("Edges %s from a in a cycle: got\n%v\nwant\n%v (each edge once)", d, g, wantSet)
		}
	}
	got, err := s.Edges(ctx, b, pipeline.Up, 1)
	must(t, "Edges", err)
	for _, e := range got {
		if e.Relation == "input" && e.Name != "" {
			t.Fatalf("a repeated edge: got name %q, want the first recording kept", e.Name)
		}
	}
	wantCode(t, "AddEdges of an edge without relation",
		s.AddEdges(ctx, []pipeline.Edge{{From: a, To: b}}), mloop.EINVALID)
}

// newTrigger returns a dataset trigger.
func newTrigger(name string) *pipeline.Trigger {
	return &pipeline.Trigger{
		Name: name, SpecFile: "/project/mloop.yaml", ProjectDir: "/project", Params: map[string]string{"lr": "0.2"},
		Pipeline: "flights", Kind: pipeline.OnDataset, Dataset: "flights-*",
		Cooldown: 10 * time.Minute, BatchWindow: 90 * time.Second, MaxConcurrent: 1, Overlap: pipeline.OverlapQueue,
		Dedup: true, MaxFailures: 3, CreatedAt: t0, UpdatedAt: t0,
	}
}

func testTriggers(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	list, err := s.ListTriggers(ctx)
	must(t, "ListTriggers", err)
	if len(list) != 0 {
		t.Fatalf("ListTriggers of an empty store: got %d, want 0", len(list))
	}
	b := newTrigger("b-nightly")
	b.Kind, b.Dataset, b.Cron, b.Timezone, b.NextFire = pipeline.OnSchedule, "", "0 * * * *", "Europe/Paris", t0.Add(time.Hour)
	a := newTrigger("a-data")
	must(t, "CreateTrigger", s.CreateTrigger(ctx, b))
	must(t, "CreateTrigger", s.CreateTrigger(ctx, a))
	wantCode(t, "CreateTrigger of a taken name", s.CreateTrigger(ctx, newTrigger("a-data")), mloop.EEXISTS)

	got, err := s.GetTrigger(ctx, "b-nightly")
	must(t, "GetTrigger", err)
	diffJSON(t, "GetTrigger", got, b)
	_, err = s.GetTrigger(ctx, "none")
	wantCode(t, "GetTrigger of a missing trigger", err, mloop.ENOTFOUND)
	list, err = s.ListTriggers(ctx)
	must(t, "ListTriggers", err)
	diffJSON(t, "ListTriggers", list, []*pipeline.Trigger{a, b})

	must(t, "UpdateTrigger", s.UpdateTrigger(ctx, "a-data", pipeline.TriggerUpdate{
		Paused: ptr(true), PauseReason: ptr("3 consecutive failures"), ConsecutiveFailures: ptr(3),
		DatasetCursor: ptr(int64(12345)), NextFire: ptr(t0.Add(time.Minute)), LastFired: ptr(t0.Add(time.Second)),
		LastError: ptr("spec unreadable"),
	}))
	got, err = s.GetTrigger(ctx, "a-data")
	must(t, "GetTrigger", err)
	if !got.Paused || got.PauseReason != "3 consecutive failures" || got.ConsecutiveFailures != 3 || got.LastError != "spec unreadable" ||
		got.DatasetCursor != 12345 || !got.NextFire.Equal(t0.Add(time.Minute)) || !got.LastFired.Equal(t0.Add(time.Second)) {
		t.Fatalf("updated trigger: got %+v", got)
	}
	if got.UpdatedAt.Equal(t0) {
		t.Fatalf("updated trigger: UpdatedAt stayed %v, want the time of the update", got.UpdatedAt)
	}
	if got.Dataset != a.Dataset || got.MaxFailures != a.MaxFailures {
		t.Fatalf("UpdateTrigger changed fields it was not given: got %+v", got)
	}
	must(t, "UpdateTrigger", s.UpdateTrigger(ctx, "a-data", pipeline.TriggerUpdate{Paused: ptr(false), NextFire: ptr(time.Time{})}))
	got, err = s.GetTrigger(ctx, "a-data")
	must(t, "GetTrigger", err)
	if got.Paused || !got.NextFire.IsZero() || got.ConsecutiveFailures != 3 {
		t.Fatalf("after resuming: got paused %v, next fire %v, failures %d; want false, zero, 3", got.Paused, got.NextFire, got.ConsecutiveFailures)
	}
	wantCode(t, "UpdateTrigger of a missing trigger", s.UpdateTrigger(ctx, "none", pipeline.TriggerUpdate{Paused: ptr(true)}), mloop.ENOTFOUND)
	wantCode(t, "DeleteTrigger of a missing trigger", s.DeleteTrigger(ctx, "none"), mloop.ENOTFOUND)
	must(t, "DeleteTrigger", s.DeleteTrigger(ctx, "b-nightly"))
	_, err = s.GetTrigger(ctx, "b-nightly")
	wantCode(t, "GetTrigger of a deleted trigger", err, mloop.ENOTFOUND)
}

// datasetEvent returns a pending event about a dataset version.
func datasetEvent(ref string) *pipeline.TriggerEvent {
	return &pipeline.TriggerEvent{Source: "dataset", Subject: ref, DedupKey: "dataset:" + ref,
		Payload: json.RawMessage(`{"ref":"` + ref + `"}`)}
}

// eventIDs returns the ids of events.
func eventIDs(events []*pipeline.TriggerEvent) []int64 {
	out := make([]int64, len(events))
	for i, e := range events {
		out[i] = e.ID
	}
	return out
}

func testAddEvents(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	must(t, "CreateTrigger", s.CreateTrigger(ctx, newTrigger("data")))
	evs := []*pipeline.TriggerEvent{datasetEvent("flights-a@1"), datasetEvent("flights-a@2"), datasetEvent("flights-a@1"),
		{Source: "manual", Subject: "fire by alice"}}
	got, err := s.AddEvents(ctx, "data", evs, pipeline.TriggerUpdate{DatasetCursor: ptr(int64(1000))})
	must(t, "AddEvents", err)
	if len(got) != 3 {
		t.Fatalf("AddEvents of 4 events, one repeating a dedup key: got %d stored, want 3", len(got))
	}
	seen := map[int64]bool{}
	for _, e := range got {
		if e.ID == 0 || seen[e.ID] || e.CreatedAt.IsZero() || e.Status != pipeline.EventPending || e.Trigger != "data" {
			t.Fatalf("stored event: got %+v, want a new id, a creation time, pending, trigger data", e)
		}
		seen[e.ID] = true
	}
	tr, err := s.GetTrigger(ctx, "data")
	must(t, "GetTrigger", err)
	if tr.DatasetCursor != 1000 {
		t.Fatalf("AddEvents did not apply its update: got cursor %d, want 1000", tr.DatasetCursor)
	}

	// A rescan: the stored versions make no second event, the new one does.
	got2, err := s.AddEvents(ctx, "data", []*pipeline.TriggerEvent{datasetEvent("flights-a@2"), datasetEvent("flights-a@3")},
		pipeline.TriggerUpdate{DatasetCursor: ptr(int64(2000))})
	must(t, "AddEvents", err)
	if len(got2) != 1 || got2[0].Subject != "flights-a@3" {
		t.Fatalf("AddEvents of a known and a new version: got %d stored (%v), want only flights-a@3", len(got2), got2)
	}
	// Another trigger may use the same dedup key.
	must(t, "CreateTrigger", s.CreateTrigger(ctx, newTrigger("data2")))
	got3, err := s.AddEvents(ctx, "data2", []*pipeline.TriggerEvent{datasetEvent("flights-a@1")}, pipeline.TriggerUpdate{})
	must(t, "AddEvents", err)
	if len(got3) != 1 {
		t.Fatalf("AddEvents of a key used by another trigger: got %d stored, want 1", len(got3))
	}

	all, err := s.ListEvents(ctx, "data", nil, 0)
	must(t, "ListEvents", err)
	if len(all) != 4 {
		t.Fatalf("ListEvents: got %d events, want 4", len(all))
	}
	byID := map[int64]*pipeline.TriggerEvent{}
	for _, e := range all {
		byID[e.ID] = e
	}
	for _, e := range append(got, got2...) {
		diffJSON(t, "listed event", byID[e.ID], e)
	}

	_, err = s.AddEvents(ctx, "none", []*pipeline.TriggerEvent{datasetEvent("x@1")}, pipeline.TriggerUpdate{})
	wantCode(t, "AddEvents to a missing trigger", err, mloop.ENOTFOUND)
	none, err := s.ListEvents(ctx, "none", nil, 0)
	must(t, "ListEvents", err)
	if len(none) != 0 {
		t.Fatalf("AddEvents to a missing trigger stored %d events, want none", len(none))
	}
}

func testListEvents(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	must(t, "CreateTrigger", s.CreateTrigger(ctx, newTrigger("data")))
	var all []*pipeline.TriggerEvent
	for i := range 5 {
		got, err := s.AddEvents(ctx, "data", []*pipeline.TriggerEvent{datasetEvent(fmt.Sprintf("flights-a@%d", i))}, pipeline.TriggerUpdate{})
		must(t, "AddEvents", err)
		all = append(all, got...)
	}
	must(t, "DecideEvents", s.DecideEvents(ctx, []int64{all[1].ID, all[3].ID}, pipeline.EventSkipped, "overlap policy skip", t0))

	got, err := s.ListEvents(ctx, "data", nil, 0)
	must(t, "ListEvents", err)
	if g, w := eventIDs(got), []int64{all[4].ID, all[3].ID, all[2].ID, all[1].ID, all[0].ID}; !slices.Equal(g, w) {
		t.Fatalf("ListEvents: got %v, want %v (newest first)", g, w)
	}
	got, err = s.ListEvents(ctx, "data", []pipeline.EventStatus{pipeline.EventPending}, 0)
	must(t, "ListEvents", err)
	if g, w := eventIDs(got), []int64{all[4].ID, all[2].ID, all[0].ID}; !slices.Equal(g, w) {
		t.Fatalf("ListEvents pending: got %v, want %v", g, w)
	}
	got, err = s.ListEvents(ctx, "data", []pipeline.EventStatus{pipeline.EventSkipped, pipeline.EventFired}, 1)
	must(t, "ListEvents", err)
	if g, w := eventIDs(got), []int64{all[3].ID}; !slices.Equal(g, w) {
		t.Fatalf("ListEvents skipped or fired, limit 1: got %v, want %v", g, w)
	}
	if got[0].Reason != "overlap policy skip" || !got[0].DecidedAt.Equal(t0) {
		t.Fatalf("decided event: got reason %q decided %v, want %q and %v", got[0].Reason, got[0].DecidedAt, "overlap policy skip", t0)
	}
}

// triggeredRun returns a queued run of trigger tr answering events.
func triggeredRun(id, tr string) *pipeline.Run {
	r := newRun(id, "flights", t0)
	r.Trigger, r.Cause = tr, "new dataset version"
	return r
}

func testFire(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	must(t, "CreateTrigger", s.CreateTrigger(ctx, newTrigger("data")))
	evs, err := s.AddEvents(ctx, "data", []*pipeline.TriggerEvent{datasetEvent("flights-a@1"), datasetEvent("flights-a@2"),
		datasetEvent("flights-a@3")}, pipeline.TriggerUpdate{})
	must(t, "AddEvents", err)
	firedAt := t0.Add(time.Hour)
	r := triggeredRun("pr-000000000001", "data")
	must(t, "Fire", s.Fire(ctx, r, []int64{evs[0].ID, evs[1].ID}, firedAt))

	got, err := s.GetRun(ctx, r.ID)
	must(t, "GetRun", err)
	if got.Trigger != "data" || got.Status != pipeline.RunQueued || !slices.Equal(got.EventIDs, []int64{evs[0].ID, evs[1].ID}) {
		t.Fatalf("fired run: got trigger %q status %q events %v", got.Trigger, got.Status, got.EventIDs)
	}
	listed, err := s.ListEvents(ctx, "data", nil, 0)
	must(t, "ListEvents", err)
	for _, e := range listed {
		fired := e.ID == evs[0].ID || e.ID == evs[1].ID
		if fired && (e.Status != pipeline.EventFired || e.RunID != r.ID || !e.DecidedAt.Equal(firedAt)) {
			t.Fatalf("fired event: got %+v, want fired by %s at %v", e, r.ID, firedAt)
		}
		if !fired && e.Status != pipeline.EventPending {
			t.Fatalf("event not fired: got status %q, want pending", e.Status)
		}
	}
	tr, err := s.GetTrigger(ctx, "data")
	must(t, "GetTrigger", err)
	if !tr.LastFired.Equal(firedAt) {
		t.Fatalf("LastFired: got %v, want %v", tr.LastFired, firedAt)
	}

	// A trigger paused since the decision: ECONFLICT, the event stays pending.
	yes, no := true, false
	must(t, "pause", s.UpdateTrigger(ctx, "data", pipeline.TriggerUpdate{Paused: &yes}))
	wantCode(t, "Fire of a paused trigger", s.Fire(ctx, triggeredRun("pr-0000000000aa", "data"), []int64{evs[2].ID}, firedAt), mloop.ECONFLICT)
	if _, err := s.GetRun(ctx, "pr-0000000000aa"); !mloop.IsNotFound(err) {
		t.Fatalf("run of a paused trigger's Fire: got %v, want none", err)
	}
	must(t, "resume", s.UpdateTrigger(ctx, "data", pipeline.TriggerUpdate{Paused: &no}))

	// An event already fired: ECONFLICT and nothing changes.
	r2 := triggeredRun("pr-000000000002", "data")
	err = s.Fire(ctx, r2, []int64{evs[1].ID, evs[2].ID}, firedAt.Add(time.Hour))
	wantCode(t, "Fire of a fired event", err, mloop.ECONFLICT)
	_, err = s.GetRun(ctx, r2.ID)
	wantCode(t, "GetRun of a run whose firing conflicted", err, mloop.ENOTFOUND)
	pending, err := s.ListEvents(ctx, "data", []pipeline.EventStatus{pipeline.EventPending}, 0)
	must(t, "ListEvents", err)
	if g := eventIDs(pending); !slices.Equal(g, []int64{evs[2].ID}) {
		t.Fatalf("pending events after a conflicting Fire: got %v, want %v", g, []int64{evs[2].ID})
	}
	tr, err = s.GetTrigger(ctx, "data")
	must(t, "GetTrigger", err)
	if !tr.LastFired.Equal(firedAt) {
		t.Fatalf("LastFired after a conflicting Fire: got %v, want %v unchanged", tr.LastFired, firedAt)
	}

	// An event of another trigger conflicts too; a taken run id exists.
	must(t, "CreateTrigger", s.CreateTrigger(ctx, newTrigger("other")))
	oev, err := s.AddEvents(ctx, "other", []*pipeline.TriggerEvent{datasetEvent("flights-b@1")}, pipeline.TriggerUpdate{})
	must(t, "AddEvents", err)
	wantCode(t, "Fire of another trigger's event", s.Fire(ctx, triggeredRun("pr-000000000003", "data"), []int64{oev[0].ID}, firedAt), mloop.ECONFLICT)
	wantCode(t, "Fire with a taken run id", s.Fire(ctx, triggeredRun(r.ID, "data"), []int64{evs[2].ID}, firedAt), mloop.EEXISTS)
	pending, err = s.ListEvents(ctx, "data", []pipeline.EventStatus{pipeline.EventPending}, 0)
	must(t, "ListEvents", err)
	if len(pending) != 1 {
		t.Fatalf("pending events after a Fire that failed with EEXISTS: got %d, want 1 (nothing changed)", len(pending))
	}
	wantCode(t, "Fire of a missing trigger", s.Fire(ctx, triggeredRun("pr-000000000004", "none"), nil, firedAt), mloop.ENOTFOUND)

	// A manual firing without events.
	must(t, "Fire without events", s.Fire(ctx, triggeredRun("pr-000000000005", "data"), nil, firedAt))
}

func testFireRace(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	must(t, "CreateTrigger", s.CreateTrigger(ctx, newTrigger("data")))
	evs, err := s.AddEvents(ctx, "data", []*pipeline.TriggerEvent{datasetEvent("flights-a@1"), datasetEvent("flights-a@2")},
		pipeline.TriggerUpdate{})
	must(t, "AddEvents", err)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids := eventIDs(evs)
			if i == 1 {
				slices.Reverse(ids)
			}
			errs[i] = s.Fire(ctx, triggeredRun(fmt.Sprintf("pr-00000000030%d", i), "data"), ids, t0)
		}()
	}
	wg.Wait()
	won := -1
	for i, err := range errs {
		switch mloop.ErrorCode(err) {
		case "":
			if won >= 0 {
				t.Fatalf("two Fires of the same events both succeeded")
			}
			won = i
		case mloop.ECONFLICT:
		default:
			t.Fatalf("concurrent Fire: got %v, want success or ECONFLICT", err)
		}
	}
	if won < 0 {
		t.Fatalf("concurrent Fires: both failed (%v), want one to succeed", errs)
	}
	runs, _, err := s.ListRuns(ctx, pipeline.RunFilter{Trigger: "data"})
	must(t, "ListRuns", err)
	if g, w := ids(runs), []string{fmt.Sprintf("pr-00000000030%d", won)}; !slices.Equal(g, w) {
		t.Fatalf("runs after concurrent Fires: got %v, want %v", g, w)
	}
}

func testDecideEvents(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	must(t, "CreateTrigger", s.CreateTrigger(ctx, newTrigger("data")))
	evs, err := s.AddEvents(ctx, "data", []*pipeline.TriggerEvent{datasetEvent("flights-a@1"), datasetEvent("flights-a@2")},
		pipeline.TriggerUpdate{})
	must(t, "AddEvents", err)
	must(t, "Fire", s.Fire(ctx, triggeredRun("pr-000000000001", "data"), []int64{evs[0].ID}, t0))
	must(t, "DecideEvents", s.DecideEvents(ctx, eventIDs(evs), pipeline.EventDeduped, "same inputs as pr-000000000001", t0.Add(time.Minute)))
	got, err := s.ListEvents(ctx, "data", nil, 0)
	must(t, "ListEvents", err)
	status := map[int64]pipeline.EventStatus{}
	for _, e := range got {
		status[e.ID] = e.Status
	}
	if status[evs[0].ID] != pipeline.EventFired || status[evs[1].ID] != pipeline.EventDeduped {
		t.Fatalf("after DecideEvents: got statuses %v, want the fired event kept and the pending one deduplicated", status)
	}
	wantCode(t, "DecideEvents to pending", s.DecideEvents(ctx, eventIDs(evs), pipeline.EventPending, "", t0), mloop.EINVALID)
}

func testDeleteTrigger(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	must(t, "CreateTrigger", s.CreateTrigger(ctx, newTrigger("data")))
	evs, err := s.AddEvents(ctx, "data", []*pipeline.TriggerEvent{datasetEvent("flights-a@1"), datasetEvent("flights-a@2")},
		pipeline.TriggerUpdate{})
	must(t, "AddEvents", err)
	must(t, "Fire", s.Fire(ctx, triggeredRun("pr-000000000001", "data"), []int64{evs[0].ID}, t0))
	must(t, "DeleteTrigger", s.DeleteTrigger(ctx, "data"))
	got, err := s.ListEvents(ctx, "data", nil, 0)
	must(t, "ListEvents", err)
	if len(got) != 2 {
		t.Fatalf("events of a deleted trigger: got %d, want both kept as a record", len(got))
	}
	for _, e := range got {
		want := pipeline.EventSkipped
		if e.ID == evs[0].ID {
			want = pipeline.EventFired
		}
		if e.Status != want {
			t.Fatalf("event %d of a deleted trigger: got %q, want %q", e.ID, e.Status, want)
		}
		if want == pipeline.EventSkipped && (e.Reason != "trigger deleted" || e.DecidedAt.IsZero()) {
			t.Fatalf("skipped event of a deleted trigger: got reason %q decided %v, want %q and a time", e.Reason, e.DecidedAt, "trigger deleted")
		}
	}
	if _, err := s.GetRun(ctx, "pr-000000000001"); err != nil {
		t.Fatalf("run of a deleted trigger: %v, want it kept", err)
	}
	runs, _, err := s.ListRuns(ctx, pipeline.RunFilter{Trigger: "data"})
	must(t, "ListRuns", err)
	if !slices.Equal(ids(runs), []string{"pr-000000000001"}) {
		t.Fatalf("runs of a deleted trigger: got %v, want [pr-000000000001]", ids(runs))
	}
	// A trigger created again under the name starts fresh: the events its
	// predecessor saw do not block the same events now.
	must(t, "CreateTrigger again", s.CreateTrigger(ctx, newTrigger("data")))
	again, err := s.AddEvents(ctx, "data", []*pipeline.TriggerEvent{datasetEvent("flights-a@1")}, pipeline.TriggerUpdate{})
	must(t, "AddEvents after re-creation", err)
	if len(again) != 1 {
		t.Fatalf("AddEvents after re-creation: got %d events stored, want 1 (the dedup keys of a deleted trigger are released)", len(again))
	}
}

func testLease(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	const name = "pipeline-controllers"
	_, _, err := s.Lease(ctx, name)
	wantCode(t, "Lease before anyone took it", err, mloop.ENOTFOUND)
	acquire := func(owner string, now time.Time, takeOver string) bool {
		t.Helper()
		ok, err := s.AcquireLease(ctx, name, owner, now.Add(15*time.Second), now, takeOver)
		must(t, "AcquireLease "+owner, err)
		return ok
	}
	if !acquire("a", t0, "") {
		t.Fatal("a free lease: not acquired")
	}
	if acquire("b", t0.Add(time.Second), "") {
		t.Fatal("b acquired a lease a holds")
	}
	if !acquire("a", t0.Add(5*time.Second), "") {
		t.Fatal("a could not renew its lease")
	}
	if owner, until, err := s.Lease(ctx, name); err != nil || owner != "a" || !until.Equal(t0.Add(20*time.Second)) {
		t.Fatalf("Lease: got %q %v %v, want a until %v", owner, until, err, t0.Add(20*time.Second))
	}
	if acquire("b", t0.Add(19*time.Second), "") {
		t.Fatal("b acquired a's lease before it expired")
	}
	if !acquire("b", t0.Add(20*time.Second), "") {
		t.Fatal("b could not take an expired lease")
	}
	if acquire("a", t0.Add(21*time.Second), "") {
		t.Fatal("a took back a lease b holds")
	}
	if !acquire("c", t0.Add(22*time.Second), "b") {
		t.Fatal("c could not take over the lease of b, known dead")
	}
	if acquire("d", t0.Add(23*time.Second), "b") {
		t.Fatal("d took over from b, which no longer holds the lease")
	}
	must(t, "ReleaseLease by another owner", s.ReleaseLease(ctx, name, "a"))
	if owner, _, err := s.Lease(ctx, name); err != nil || owner != "c" {
		t.Fatalf("after a release by another owner: got %q %v, want c", owner, err)
	}
	must(t, "ReleaseLease", s.ReleaseLease(ctx, name, "c"))
	_, _, err = s.Lease(ctx, name)
	wantCode(t, "Lease after release", err, mloop.ENOTFOUND)
	if !acquire("d", t0.Add(24*time.Second), "") {
		t.Fatal("d could not take a released lease")
	}
}

func testLeaseRace(t *testing.T, s pipeline.Store) {
	ctx := context.Background()
	for round := range 10 {
		name := fmt.Sprintf("lease-%d", round)
		var wg sync.WaitGroup
		won := make([]bool, 2)
		for i := range won {
			wg.Add(1)
			go func() {
				defer wg.Done()
				ok, err := s.AcquireLease(ctx, name, fmt.Sprintf("owner-%d", i), t0.Add(time.Minute), t0, "")
				if err != nil {
					t.Errorf("AcquireLease: %v", err)
				}
				won[i] = ok
			}()
		}
		wg.Wait()
		if won[0] == won[1] {
			t.Fatalf("round %d: got winners %v, want exactly one", round, won)
		}
	}
}
