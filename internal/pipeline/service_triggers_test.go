package pipeline_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/pipeline/pipelinetest"
)

// trigEnv is a pipeline service with its trigger controller on a fresh
// SQLite database, a local artifact folder and a real dataset service.
type trigEnv struct {
	svc *pipeline.Service
	ds  *dataset.Service
	dir string
	// newService opens another pipeline service on the same stores, closed
	// when the test ends.
	newService func(tb testing.TB) *pipeline.Service
}

// fakeClock is a settable clock for the schedule tests.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// newTrigEnv opens a service polling every 20ms; now, when not nil, is its
// clock. The service is closed when the test ends.
func newTrigEnv(tb testing.TB, now func() time.Time) *trigEnv {
	tb.Helper()
	st := pipelinetest.NewStack(tb)
	open := func(tb testing.TB) *pipeline.Service {
		tb.Helper()
		svc := st.NewService(tb)
		if now != nil {
			svc.Now = now
		}
		if err := svc.Open(context.Background()); err != nil {
			tb.Fatalf("open pipeline service: %v", err)
		}
		var once sync.Once
		tb.Cleanup(func() {
			once.Do(func() {
				if err := svc.Close(); err != nil {
					tb.Errorf("close pipeline service: %v", err)
				}
			})
		})
		return svc
	}
	return &trigEnv{svc: open(tb), ds: st.Datasets, dir: st.Dir, newService: open}
}

// writeSpec writes a one-step pipeline spec running the shell command cmd
// (uncached) and returns its path. data, when set, adds a dataset input.
func (e *trigEnv) writeSpec(tb testing.TB, name, cmd, data string) string {
	tb.Helper()
	proj := filepath.Join(e.dir, "proj-"+name)
	if err := os.MkdirAll(proj, 0o755); err != nil {
		tb.Fatal(err)
	}
	spec := fmt.Sprintf("name: %s\nsteps:\n  work:\n    run: %q\n    cache: false\n", name, cmd)
	if data != "" {
		spec += "    inputs:\n      d: data://" + data + "\n"
	}
	p := filepath.Join(proj, "mloop.yaml")
	if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
		tb.Fatal(err)
	}
	return p
}

// push creates a new version of dataset name holding content.
func (e *trigEnv) push(tb testing.TB, name, content string) *dataset.Version {
	tb.Helper()
	ctx := context.Background()
	sum := sha256.Sum256([]byte(content))
	hx := hex.EncodeToString(sum[:])
	if _, _, err := e.ds.Blobs.Put(ctx, hx, strings.NewReader(content)); err != nil {
		tb.Fatalf("put blob: %v", err)
	}
	f := dataset.File{Path: "data.csv", SHA256: hx, Size: int64(len(content)), Format: dataset.FormatCSV,
		Rows: int64(strings.Count(content, "\n") - 1)}
	v, created, err := e.ds.CreateVersion(ctx, name, dataset.CreateRequest{Files: []dataset.File{f}, Profile: &dataset.Profile{Rows: f.Rows}})
	if err != nil || !created {
		tb.Fatalf("push %s: created %v, %v", name, created, err)
	}
	return v
}

// create creates a trigger or fails the test.
func (e *trigEnv) create(tb testing.TB, t pipeline.Trigger) *pipeline.Trigger {
	tb.Helper()
	got, err := e.svc.CreateTrigger(context.Background(), &t)
	if err != nil {
		tb.Fatalf("CreateTrigger(%s): %v", t.Name, err)
	}
	return got
}

// afterCreation waits until the clock has left the millisecond t was
// created in: versions created in it do not fire t.
func afterCreation(t *pipeline.Trigger) {
	for time.Now().UnixMilli() <= t.CreatedAt.UnixMilli() {
		time.Sleep(time.Millisecond)
	}
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(tb testing.TB, what string, cond func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	last := ""
	for time.Now().Before(deadline) {
		ok, state := cond()
		if ok {
			return
		}
		last = state
		time.Sleep(20 * time.Millisecond)
	}
	tb.Fatalf("timed out waiting for %s; last state: %s", what, last)
}

// events returns a trigger's events oldest first.
func (e *trigEnv) events(tb testing.TB, name string) []*pipeline.TriggerEvent {
	tb.Helper()
	evs, err := e.svc.TriggerEvents(context.Background(), name, 1000)
	if err != nil {
		tb.Fatalf("TriggerEvents(%s): %v", name, err)
	}
	for i, j := 0, len(evs)-1; i < j; i, j = i+1, j-1 {
		evs[i], evs[j] = evs[j], evs[i]
	}
	return evs
}

// runs returns a trigger's runs oldest first.
func (e *trigEnv) runs(tb testing.TB, name string) []*pipeline.Run {
	tb.Helper()
	rs, _, err := e.svc.ListRuns(context.Background(), pipeline.RunFilter{Trigger: name, MaxResults: 1000})
	if err != nil {
		tb.Fatalf("ListRuns(%s): %v", name, err)
	}
	for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
		rs[i], rs[j] = rs[j], rs[i]
	}
	return rs
}

func describeEvents(evs []*pipeline.TriggerEvent) string {
	var b strings.Builder
	for _, e := range evs {
		fmt.Fprintf(&b, "[%d %s %s %s %s] ", e.ID, e.Subject, e.Status, e.RunID, e.Reason)
	}
	return b.String()
}

func describeRuns(rs []*pipeline.Run) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "[%s %s %q %v] ", r.ID, r.Status, r.Cause, r.EventIDs)
	}
	return b.String()
}

// countStatus counts events by status.
func countStatus(evs []*pipeline.TriggerEvent) map[pipeline.EventStatus]int {
	n := map[pipeline.EventStatus]int{}
	for _, e := range evs {
		n[e.Status]++
	}
	return n
}

// allDone reports whether every run has ended.
func allDone(rs []*pipeline.Run) bool {
	for _, r := range rs {
		if !r.Status.Done() {
			return false
		}
	}
	return true
}

func TestCreateTriggerValidation(t *testing.T) {
	e := newTrigEnv(t, nil)
	ctx := context.Background()
	spec := e.writeSpec(t, "valid", "true", "")
	bad := filepath.Join(e.dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("name: x\nsteps: {a: {bogus: 1}}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		t    pipeline.Trigger
		want string // error code, "" for success
	}{
		{"event", pipeline.Trigger{Name: "ok-event", SpecFile: spec, Event: "drift"}, ""},
		{"manual", pipeline.Trigger{Name: "ok-manual", SpecFile: spec, Kind: pipeline.OnManual}, ""},
		{"bad name", pipeline.Trigger{Name: "9 lives", SpecFile: spec, Event: "drift"}, mloop.EINVALID},
		{"no kind", pipeline.Trigger{Name: "t", SpecFile: spec}, mloop.EINVALID},
		{"two kinds", pipeline.Trigger{Name: "t", SpecFile: spec, Event: "drift", Cron: "@hourly"}, mloop.EINVALID},
		{"kind without field", pipeline.Trigger{Name: "t", SpecFile: spec, Kind: pipeline.OnDataset}, mloop.EINVALID},
		{"kind with another field", pipeline.Trigger{Name: "t", SpecFile: spec, Kind: pipeline.OnEvent, Event: "x", Dataset: "d"}, mloop.EINVALID},
		{"manual with field", pipeline.Trigger{Name: "t", SpecFile: spec, Kind: pipeline.OnManual, Event: "x"}, mloop.EINVALID},
		{"unknown kind", pipeline.Trigger{Name: "t", SpecFile: spec, Kind: "webhook"}, mloop.EINVALID},
		{"bad cron", pipeline.Trigger{Name: "t", SpecFile: spec, Cron: "every day"}, mloop.EINVALID},
		{"never fires", pipeline.Trigger{Name: "t", SpecFile: spec, Cron: "0 0 31 2 *"}, mloop.EINVALID},
		{"bad timezone", pipeline.Trigger{Name: "t", SpecFile: spec, Cron: "@daily", Timezone: "Nowhere/City"}, mloop.EINVALID},
		{"timezone without cron", pipeline.Trigger{Name: "t", SpecFile: spec, Event: "x", Timezone: "UTC"}, mloop.EINVALID},
		{"bad pattern", pipeline.Trigger{Name: "t", SpecFile: spec, Dataset: "flights-["}, mloop.EINVALID},
		{"bad event type", pipeline.Trigger{Name: "t", SpecFile: spec, Event: "two words"}, mloop.EINVALID},
		{"negative cooldown", pipeline.Trigger{Name: "t", SpecFile: spec, Event: "x", Cooldown: -time.Second}, mloop.EINVALID},
		{"negative batch", pipeline.Trigger{Name: "t", SpecFile: spec, Event: "x", BatchWindow: -time.Second}, mloop.EINVALID},
		{"negative concurrency", pipeline.Trigger{Name: "t", SpecFile: spec, Event: "x", MaxConcurrent: -1}, mloop.EINVALID},
		{"negative failures", pipeline.Trigger{Name: "t", SpecFile: spec, Event: "x", MaxFailures: -1}, mloop.EINVALID},
		{"bad overlap", pipeline.Trigger{Name: "t", SpecFile: spec, Event: "x", Overlap: "replace"}, mloop.EINVALID},
		{"no spec", pipeline.Trigger{Name: "t", Event: "x"}, mloop.EINVALID},
		{"missing spec", pipeline.Trigger{Name: "t", SpecFile: filepath.Join(e.dir, "none.yaml"), Event: "x"}, mloop.EINVALID},
		{"invalid spec", pipeline.Trigger{Name: "t", SpecFile: bad, Event: "x"}, mloop.EINVALID},
		{"unknown param", pipeline.Trigger{Name: "t", SpecFile: spec, Event: "x", Params: map[string]string{"lr": "1"}}, mloop.EINVALID},
		{"duplicate", pipeline.Trigger{Name: "ok-event", SpecFile: spec, Event: "drift"}, mloop.EEXISTS},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := e.svc.CreateTrigger(ctx, &tt.t)
			if code := mloop.ErrorCode(err); code != tt.want {
				t.Fatalf("CreateTrigger: error %v (kind %q), want kind %q", err, code, tt.want)
			}
			if err != nil {
				return
			}
			if got.Pipeline != "valid" || got.ProjectDir != filepath.Dir(spec) || got.MaxConcurrent != 1 || got.Overlap != pipeline.OverlapQueue {
				t.Errorf("CreateTrigger filled %+v; want pipeline valid, project dir %s, max concurrent 1, overlap queue", got, filepath.Dir(spec))
			}
			stored, err := e.svc.GetTrigger(ctx, tt.t.Name)
			if err != nil || stored.Kind != got.Kind || stored.Pipeline != got.Pipeline {
				t.Errorf("GetTrigger = %+v, %v; want the created trigger %+v", stored, err, got)
			}
		})
	}
	if _, err := e.svc.GetTrigger(ctx, "t"); !mloop.IsNotFound(err) {
		t.Errorf("GetTrigger(t) after failed creations = %v, want not found", err)
	}
}

func TestDatasetTriggerFiresOncePerVersion(t *testing.T) {
	e := newTrigEnv(t, nil)
	ctx := context.Background()
	e.push(t, "flights-jan", "a,b\n1,2\n") // before the trigger: never fires it
	spec := e.writeSpec(t, "retrain", "true", "flights-jan@latest")
	afterCreation(e.create(t, pipeline.Trigger{Name: "on-flights", SpecFile: spec, Dataset: "flights-*"}))
	e.push(t, "other", "a,b\n0,0\n") // does not match
	v2 := e.push(t, "flights-jan", "a,b\n1,2\n3,4\n")
	waitFor(t, "one succeeded run for flights-jan@2", func() (bool, string) {
		rs := e.runs(t, "on-flights")
		return len(rs) == 1 && rs[0].Status == pipeline.RunSucceeded, describeRuns(rs)
	})
	rs := e.runs(t, "on-flights")
	if want := "new dataset version " + v2.Ref(); !strings.Contains(rs[0].Cause, want) {
		t.Errorf("run cause = %q, want it to contain %q", rs[0].Cause, want)
	}
	if got := rs[0].Datasets["flights-jan@latest"].Ref; got != v2.Ref() {
		t.Errorf("run pinned flights-jan@latest to %q, want %s", got, v2.Ref())
	}
	evs := e.events(t, "on-flights")
	if len(evs) != 1 || evs[0].Subject != v2.Ref() || evs[0].Status != pipeline.EventFired || evs[0].RunID != rs[0].ID ||
		evs[0].DedupKey != "dataset:"+v2.Ref() || evs[0].Source != "dataset" {
		t.Fatalf("events = %s; want one fired event for %s by run %s", describeEvents(evs), v2.Ref(), rs[0].ID)
	}
	// A second matching dataset gets its own event and run.
	v3 := e.push(t, "flights-feb", "a,b\n5,6\n")
	waitFor(t, "a run for flights-feb@1", func() (bool, string) {
		evs := e.events(t, "on-flights")
		rs := e.runs(t, "on-flights")
		return len(evs) == 2 && evs[1].Subject == v3.Ref() && evs[1].Status == pipeline.EventFired && len(rs) == 2 && allDone(rs),
			describeEvents(evs) + describeRuns(rs)
	})
	// The controller keeps polling: no version makes a second event.
	time.Sleep(10 * e.svc.PollInterval)
	if evs := e.events(t, "on-flights"); len(evs) != 2 {
		t.Fatalf("events after more polls = %s; want still 2", describeEvents(evs))
	}
	tr, err := e.svc.GetTrigger(ctx, "on-flights")
	if err != nil || tr.DatasetCursor < v3.CreatedAt.UnixMilli() || tr.LastFired.IsZero() {
		t.Errorf("trigger = %+v, %v; want the cursor at %d or later and LastFired set", tr, err, v3.CreatedAt.UnixMilli())
	}
}

func TestDatasetTriggerBatchingAndCooldownCoalesce(t *testing.T) {
	e := newTrigEnv(t, nil)
	spec := e.writeSpec(t, "batched", "true", "flights@latest")
	e.push(t, "flights", "a\n0\n")
	// A long batch window: three pushes coalesce into one pending set.
	afterCreation(e.create(t, pipeline.Trigger{Name: "batched", SpecFile: spec, Dataset: "flights", BatchWindow: time.Hour}))
	for i := 1; i <= 3; i++ {
		e.push(t, "flights", fmt.Sprintf("a\n%d\n", i))
	}
	waitFor(t, "three pending events", func() (bool, string) {
		evs := e.events(t, "batched")
		return countStatus(evs)[pipeline.EventPending] == 3, describeEvents(evs)
	})
	if rs := e.runs(t, "batched"); len(rs) != 0 {
		t.Fatalf("runs inside the batch window = %s; want none", describeRuns(rs))
	}
	// A trigger with a short window and a long cooldown: the first batch
	// fires one run for all its events; later versions wait for the
	// cooldown.
	spec2 := e.writeSpec(t, "cooled", "true", "flights@latest")
	afterCreation(e.create(t, pipeline.Trigger{Name: "cooled", SpecFile: spec2, Dataset: "flights", BatchWindow: 300 * time.Millisecond, Cooldown: time.Hour}))
	e.push(t, "flights", "a\n4\n")
	e.push(t, "flights", "a\n5\n")
	waitFor(t, "one run for the first batch", func() (bool, string) {
		rs := e.runs(t, "cooled")
		return len(rs) == 1 && allDone(rs), describeRuns(rs)
	})
	rs := e.runs(t, "cooled")
	evs := e.events(t, "cooled")
	if n := countStatus(evs)[pipeline.EventFired]; n < 1 || n != len(rs[0].EventIDs) {
		t.Fatalf("fired events = %s, run %s answers %v; want the run to answer every fired event", describeEvents(evs), rs[0].ID, rs[0].EventIDs)
	}
	if len(evs) == 2 && countStatus(evs)[pipeline.EventFired] == 2 && !strings.Contains(rs[0].Cause, "(+1 more)") {
		t.Errorf("cause = %q; want it to count the coalesced event", rs[0].Cause)
	}
	e.push(t, "flights", "a\n6\n")
	waitFor(t, "the new version pending in the cooldown", func() (bool, string) {
		evs := e.events(t, "cooled")
		return len(evs) >= 3 && evs[len(evs)-1].Status == pipeline.EventPending, describeEvents(evs)
	})
	time.Sleep(10 * e.svc.PollInterval)
	if rs := e.runs(t, "cooled"); len(rs) != 1 {
		t.Fatalf("runs during the cooldown = %s; want 1", describeRuns(rs))
	}
}

func TestScheduleTrigger(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 11, 26, 10, 30, 0, 0, time.UTC)}
	e := newTrigEnv(t, clock.Now)
	ctx := context.Background()
	spec := e.writeSpec(t, "nightly", "true", "")
	tr := e.create(t, pipeline.Trigger{Name: "nightly", SpecFile: spec, Cron: "0 3 * * *", Timezone: "Europe/Paris", Overlap: pipeline.OverlapSkip})
	if want := time.Date(2026, 11, 27, 2, 0, 0, 0, time.UTC); !tr.NextFire.Equal(want) {
		t.Fatalf("NextFire = %s, want %s (03:00 in Paris)", tr.NextFire, want)
	}
	time.Sleep(5 * e.svc.PollInterval)
	if evs := e.events(t, "nightly"); len(evs) != 0 {
		t.Fatalf("events before the schedule time = %s; want none", describeEvents(evs))
	}
	// Three days later: the missed ticks coalesce into one event.
	clock.Set(time.Date(2026, 11, 29, 12, 0, 0, 0, time.UTC))
	waitFor(t, "one schedule event and its run", func() (bool, string) {
		evs := e.events(t, "nightly")
		rs := e.runs(t, "nightly")
		return len(evs) == 1 && evs[0].Status == pipeline.EventFired && len(rs) == 1, describeEvents(evs) + describeRuns(rs)
	})
	evs := e.events(t, "nightly")
	if evs[0].Subject != "2026-11-27T03:00:00+01:00" || evs[0].DedupKey != "cron:2026-11-27T03:00:00" || evs[0].Source != "cron" {
		t.Errorf("event = %+v; want subject 2026-11-27T03:00:00+01:00 and dedup key cron:2026-11-27T03:00:00", evs[0])
	}
	tr, err := e.svc.GetTrigger(ctx, "nightly")
	if want := time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC); err != nil || !tr.NextFire.Equal(want) {
		t.Fatalf("NextFire = %v, %v; want %s", tr.NextFire, err, want)
	}
	if rs := e.runs(t, "nightly"); !strings.Contains(rs[0].Cause, "schedule 2026-11-27T03:00:00+01:00") {
		t.Errorf("cause = %q, want the schedule time", rs[0].Cause)
	}
	clock.Set(time.Date(2026, 11, 30, 2, 0, 0, 0, time.UTC))
	waitFor(t, "the next schedule event", func() (bool, string) {
		evs := e.events(t, "nightly")
		return len(evs) == 2 && evs[1].Subject == "2026-11-30T03:00:00+01:00", describeEvents(evs)
	})
}

func TestEventTriggerAndManualFire(t *testing.T) {
	e := newTrigEnv(t, nil)
	ctx := context.Background()
	spec := e.writeSpec(t, "on-drift", "true", "")
	e.create(t, pipeline.Trigger{Name: "a", SpecFile: spec, Event: "drift"})
	e.create(t, pipeline.Trigger{Name: "b", SpecFile: spec, Event: "drift"})
	e.create(t, pipeline.Trigger{Name: "c", SpecFile: spec, Event: "quality"})
	none, err := e.svc.PostEvent(ctx, "unheard", "x", nil, "")
	if err != nil || len(none) != 0 {
		t.Fatalf("PostEvent(unheard) = %v, %v; want no events and no error", none, err)
	}
	payload := json.RawMessage(`{"psi":0.4}`)
	got, err := e.svc.PostEvent(ctx, "drift", "monitoring", payload, "alert-1")
	if err != nil || len(got) != 2 || got[0].ID == 0 || got[0].Status != pipeline.EventPending {
		t.Fatalf("PostEvent(drift) = %v, %v; want two stored pending events", got, err)
	}
	again, err := e.svc.PostEvent(ctx, "drift", "monitoring", payload, "alert-1")
	if err != nil || len(again) != 0 {
		t.Fatalf("PostEvent retried with the same dedup key = %v, %v; want no new events", again, err)
	}
	for _, name := range []string{"a", "b"} {
		waitFor(t, "a run of trigger "+name, func() (bool, string) {
			rs := e.runs(t, name)
			return len(rs) == 1 && rs[0].Status == pipeline.RunSucceeded, describeRuns(rs)
		})
		rs := e.runs(t, name)
		if rs[0].Cause != "event drift from monitoring (trigger "+name+")" || rs[0].Trigger != name {
			t.Errorf("run = %+v; want cause \"event drift from monitoring\" and trigger %s", rs[0], name)
		}
		evs := e.events(t, name)
		if len(evs) != 1 || string(evs[0].Payload) != string(payload) || evs[0].DedupKey != "alert-1" {
			t.Errorf("events of %s = %s; want one with the payload", name, describeEvents(evs))
		}
	}
	if evs := e.events(t, "c"); len(evs) != 0 {
		t.Errorf("events of c = %s; want none", describeEvents(evs))
	}
	ev, err := e.svc.FireTrigger(ctx, "c", json.RawMessage(`{"user":"alice"}`))
	if err != nil || ev.Source != "manual" || ev.Subject != "alice" {
		t.Fatalf("FireTrigger = %+v, %v; want a manual event by alice", ev, err)
	}
	waitFor(t, "the manual run", func() (bool, string) {
		rs := e.runs(t, "c")
		return len(rs) == 1 && rs[0].Cause == "manual fire by alice (trigger c)", describeRuns(rs)
	})
	if _, err := e.svc.FireTrigger(ctx, "nope", nil); !mloop.IsNotFound(err) {
		t.Errorf("FireTrigger(nope) = %v, want not found", err)
	}
	if _, err := e.svc.PostEvent(ctx, "drift", "", json.RawMessage(`{bad`), ""); mloop.ErrorCode(err) != mloop.EINVALID {
		t.Errorf("PostEvent with a bad payload = %v, want invalid", err)
	}
	if _, err := e.svc.PostEvent(ctx, "bad type", "", nil, ""); mloop.ErrorCode(err) != mloop.EINVALID {
		t.Errorf("PostEvent with a bad type = %v, want invalid", err)
	}
}

// gate returns a shell command that blocks until the file release exists,
// and the function that creates it.
func gate(tb testing.TB, dir, name string) (string, func()) {
	p := filepath.Join(dir, name+".release")
	return fmt.Sprintf("while [ ! -f %s ]; do sleep 0.02; done", p), func() {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

func TestOverlapPolicies(t *testing.T) {
	e := newTrigEnv(t, nil)
	ctx := context.Background()
	post := func(typ string) {
		t.Helper()
		if evs, err := e.svc.PostEvent(ctx, typ, "", nil, ""); err != nil || len(evs) != 1 {
			t.Fatalf("PostEvent(%s) = %v, %v; want one event", typ, evs, err)
		}
	}
	waitRunning := func(name string, n int) {
		t.Helper()
		waitFor(t, fmt.Sprintf("%d running runs of %s", n, name), func() (bool, string) {
			rs := e.runs(t, name)
			k := 0
			for _, r := range rs {
				if r.Status == pipeline.RunRunning {
					k++
				}
			}
			return k == n, describeRuns(rs)
		})
	}

	t.Run("skip", func(t *testing.T) {
		cmd, release := gate(t, e.dir, "skip")
		e.create(t, pipeline.Trigger{Name: "skip", SpecFile: e.writeSpec(t, "skip", cmd, ""), Event: "skip", Overlap: pipeline.OverlapSkip})
		post("skip")
		waitRunning("skip", 1)
		post("skip")
		waitFor(t, "the second event skipped", func() (bool, string) {
			evs := e.events(t, "skip")
			return len(evs) == 2 && evs[1].Status == pipeline.EventSkipped, describeEvents(evs)
		})
		if evs := e.events(t, "skip"); evs[1].Reason != "1 run already active (overlap policy skip)" {
			t.Errorf("skip reason = %q", evs[1].Reason)
		}
		release()
		waitFor(t, "the run to end", func() (bool, string) { rs := e.runs(t, "skip"); return len(rs) == 1 && allDone(rs), describeRuns(rs) })
	})

	t.Run("queue", func(t *testing.T) {
		cmd, release := gate(t, e.dir, "queue")
		e.create(t, pipeline.Trigger{Name: "queue", SpecFile: e.writeSpec(t, "queue", cmd, ""), Event: "queue"})
		post("queue")
		waitRunning("queue", 1)
		post("queue")
		post("queue")
		waitFor(t, "two queued events", func() (bool, string) {
			evs := e.events(t, "queue")
			return len(evs) == 3 && countStatus(evs)[pipeline.EventPending] == 2, describeEvents(evs)
		})
		time.Sleep(5 * e.svc.PollInterval)
		if rs := e.runs(t, "queue"); len(rs) != 1 {
			t.Fatalf("runs while one is active = %s; want 1", describeRuns(rs))
		}
		release()
		waitFor(t, "one more run for both queued events", func() (bool, string) {
			rs := e.runs(t, "queue")
			return len(rs) == 2 && allDone(rs) && len(rs[1].EventIDs) == 2, describeRuns(rs)
		})
		if evs := e.events(t, "queue"); countStatus(evs)[pipeline.EventFired] != 3 {
			t.Errorf("events = %s; want all fired", describeEvents(evs))
		}
	})

	t.Run("cancel", func(t *testing.T) {
		cmd, release := gate(t, e.dir, "cancel")
		e.create(t, pipeline.Trigger{Name: "cancel", SpecFile: e.writeSpec(t, "cancel", cmd, ""), Event: "cancel", Overlap: pipeline.OverlapCancel})
		post("cancel")
		waitRunning("cancel", 1)
		first := e.runs(t, "cancel")[0]
		post("cancel")
		waitFor(t, "the first run canceled and a second one running", func() (bool, string) {
			rs := e.runs(t, "cancel")
			return len(rs) == 2 && rs[0].ID == first.ID && rs[0].Status == pipeline.RunCanceled && rs[1].Status == pipeline.RunRunning, describeRuns(rs)
		})
		release()
		waitFor(t, "the second run to succeed", func() (bool, string) {
			rs := e.runs(t, "cancel")
			return len(rs) == 2 && rs[1].Status == pipeline.RunSucceeded, describeRuns(rs)
		})
	})
}

func TestDedupTrigger(t *testing.T) {
	e := newTrigEnv(t, nil)
	ctx := context.Background()
	spec := e.writeSpec(t, "dedup", "true", "")
	e.create(t, pipeline.Trigger{Name: "dedup", SpecFile: spec, Event: "go", Dedup: true})
	if _, err := e.svc.PostEvent(ctx, "go", "", nil, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first run to succeed", func() (bool, string) {
		rs := e.runs(t, "dedup")
		return len(rs) == 1 && rs[0].Status == pipeline.RunSucceeded, describeRuns(rs)
	})
	first := e.runs(t, "dedup")[0]
	if _, err := e.svc.PostEvent(ctx, "go", "", nil, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the second event deduplicated", func() (bool, string) {
		evs := e.events(t, "dedup")
		return len(evs) == 2 && evs[1].Status == pipeline.EventDeduped, describeEvents(evs)
	})
	if evs := e.events(t, "dedup"); evs[1].Reason != "same inputs as run "+first.ID {
		t.Errorf("dedup reason = %q, want %q", evs[1].Reason, "same inputs as run "+first.ID)
	}
	// New inputs (a changed spec) fire again.
	if err := os.WriteFile(spec, []byte("name: dedup\nsteps:\n  work:\n    run: \"true && true\"\n    cache: false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PostEvent(ctx, "go", "", nil, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a run for the new inputs", func() (bool, string) {
		rs := e.runs(t, "dedup")
		return len(rs) == 2 && rs[1].InputsKey != first.InputsKey && allDone(rs), describeRuns(rs)
	})
	if rs := e.runs(t, "dedup"); len(rs) != 2 {
		t.Fatalf("runs = %s; want 2", describeRuns(rs))
	}
}

func TestPauseAfterFailuresAndResume(t *testing.T) {
	e := newTrigEnv(t, nil)
	ctx := context.Background()
	flag := filepath.Join(e.dir, "healthy")
	spec := e.writeSpec(t, "flaky", fmt.Sprintf("test -f %s", flag), "")
	e.create(t, pipeline.Trigger{Name: "flaky", SpecFile: spec, Event: "go", MaxFailures: 2})
	post := func() {
		t.Helper()
		if _, err := e.svc.PostEvent(ctx, "go", "", nil, ""); err != nil {
			t.Fatal(err)
		}
	}
	for i := 1; i <= 2; i++ {
		post()
		waitFor(t, fmt.Sprintf("failed run %d", i), func() (bool, string) {
			rs := e.runs(t, "flaky")
			tr, err := e.svc.GetTrigger(ctx, "flaky")
			return err == nil && len(rs) == i && allDone(rs) && tr.ConsecutiveFailures == i, fmt.Sprintf("%s failures %d", describeRuns(e.runs(t, "flaky")), tr.ConsecutiveFailures)
		})
	}
	rs := e.runs(t, "flaky")
	tr, err := e.svc.GetTrigger(ctx, "flaky")
	if err != nil || !tr.Paused || tr.PauseReason != "paused after 2 consecutive failed runs (last: "+rs[1].ID+")" {
		t.Fatalf("trigger = %+v, %v; want paused after 2 consecutive failed runs (last: %s)", tr, err, rs[1].ID)
	}
	// Paused: events arrive and wait.
	post()
	post()
	time.Sleep(10 * e.svc.PollInterval)
	evs := e.events(t, "flaky")
	if countStatus(evs)[pipeline.EventPending] != 2 || len(e.runs(t, "flaky")) != 2 {
		t.Fatalf("paused trigger: events %s runs %s; want 2 pending events and no new run", describeEvents(evs), describeRuns(e.runs(t, "flaky")))
	}
	if err := os.WriteFile(flag, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	tr, err = e.svc.ResumeTrigger(ctx, "flaky")
	if err != nil || tr.Paused || tr.ConsecutiveFailures != 0 || tr.PauseReason != "" {
		t.Fatalf("ResumeTrigger = %+v, %v; want resumed with no failures", tr, err)
	}
	waitFor(t, "one run for both waiting events, succeeded", func() (bool, string) {
		rs := e.runs(t, "flaky")
		return len(rs) == 3 && rs[2].Status == pipeline.RunSucceeded && len(rs[2].EventIDs) == 2, describeRuns(rs)
	})
	// Pausing by hand keeps the reason given.
	tr, err = e.svc.PauseTrigger(ctx, "flaky", "paused by alice")
	if err != nil || !tr.Paused || tr.PauseReason != "paused by alice" {
		t.Fatalf("PauseTrigger = %+v, %v", tr, err)
	}
	if err := e.svc.DeleteTrigger(ctx, "flaky"); err != nil {
		t.Fatalf("DeleteTrigger: %v", err)
	}
	if _, err := e.svc.GetTrigger(ctx, "flaky"); !mloop.IsNotFound(err) {
		t.Fatalf("GetTrigger after delete = %v, want not found", err)
	}
	if err := e.svc.DeleteTrigger(ctx, "flaky"); !mloop.IsNotFound(err) {
		t.Fatalf("DeleteTrigger again = %v, want not found", err)
	}
}

func TestTriggerStateSurvivesRestart(t *testing.T) {
	e := newTrigEnv(t, nil)
	ctx := context.Background()
	spec := e.writeSpec(t, "restart", "true", "")
	e.create(t, pipeline.Trigger{Name: "restart", SpecFile: spec, Event: "go", Paused: true})
	var posted []int64
	for i := range 3 {
		evs, err := e.svc.PostEvent(ctx, "go", "", nil, fmt.Sprintf("k%d", i))
		if err != nil || len(evs) != 1 {
			t.Fatalf("PostEvent = %v, %v", evs, err)
		}
		posted = append(posted, evs[0].ID)
	}
	if err := e.svc.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// A new service on the same database finds the pending events; a
	// retried post with a used dedup key stores nothing.
	e.svc = e.newService(t)
	if evs, err := e.svc.PostEvent(ctx, "go", "", nil, "k1"); err != nil || len(evs) != 0 {
		t.Fatalf("PostEvent retried after a restart = %v, %v; want no new event", evs, err)
	}
	tr, err := e.svc.GetTrigger(ctx, "restart")
	if err != nil || !tr.Paused || tr.PauseReason != "created paused" {
		t.Fatalf("trigger after restart = %+v, %v; want paused", tr, err)
	}
	if _, err := e.svc.ResumeTrigger(ctx, "restart"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "one run for the three events", func() (bool, string) {
		rs := e.runs(t, "restart")
		return len(rs) == 1 && rs[0].Status == pipeline.RunSucceeded && len(rs[0].EventIDs) == 3, describeRuns(rs)
	})
	if evs := e.events(t, "restart"); len(evs) != 3 || countStatus(evs)[pipeline.EventFired] != 3 {
		t.Fatalf("events = %s; want the 3 posted, fired", describeEvents(evs))
	}
}

func TestTwoControllersNeverFireAnEventTwice(t *testing.T) {
	e := newTrigEnv(t, nil)
	ctx := context.Background()
	other := e.newService(t) // a second server on the same database
	spec := e.writeSpec(t, "shared", "true", "")
	e.create(t, pipeline.Trigger{Name: "shared", SpecFile: spec, Event: "go", MaxConcurrent: 100})
	var posted []int64
	for i := range 20 {
		svc := e.svc
		if i%2 == 1 {
			svc = other
		}
		evs, err := svc.PostEvent(ctx, "go", "", nil, "")
		if err != nil || len(evs) != 1 {
			t.Fatalf("PostEvent = %v, %v", evs, err)
		}
		posted = append(posted, evs[0].ID)
	}
	waitFor(t, "every event fired and every run ended", func() (bool, string) {
		evs := e.events(t, "shared")
		rs := e.runs(t, "shared")
		return countStatus(evs)[pipeline.EventFired] == len(posted) && allDone(rs), describeEvents(evs) + describeRuns(rs)
	})
	runOf := map[int64]string{}
	rs := e.runs(t, "shared")
	for _, r := range rs {
		if r.Status != pipeline.RunSucceeded {
			t.Errorf("run %s ended %s, want succeeded", r.ID, r.Status)
		}
		for _, id := range r.EventIDs {
			if prev, ok := runOf[id]; ok {
				t.Errorf("event %d answered by runs %s and %s", id, prev, r.ID)
			}
			runOf[id] = r.ID
		}
	}
	for _, ev := range e.events(t, "shared") {
		if runOf[ev.ID] != ev.RunID {
			t.Errorf("event %d fired by %s, but run %q answers it", ev.ID, ev.RunID, runOf[ev.ID])
		}
	}
	if len(runOf) != len(posted) {
		t.Errorf("runs answer %d events, want %d: %s", len(runOf), len(posted), describeRuns(rs))
	}
}

// A trigger deleted and created again under its name starts fresh: the
// runs of its predecessor neither deduplicate its events nor count as its
// own.
func TestRecreatedTriggerStartsFresh(t *testing.T) {
	e := newTrigEnv(t, nil)
	ctx := context.Background()
	spec := e.writeSpec(t, "again", "true", "")
	e.create(t, pipeline.Trigger{Name: "again", SpecFile: spec, Event: "go", Dedup: true})
	if _, err := e.svc.PostEvent(ctx, "go", "", nil, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the first run to succeed", func() (bool, string) {
		rs := e.runs(t, "again")
		return len(rs) == 1 && rs[0].Status == pipeline.RunSucceeded, describeRuns(rs)
	})
	if err := e.svc.DeleteTrigger(ctx, "again"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(5 * time.Millisecond) // creation times are in milliseconds
	e.create(t, pipeline.Trigger{Name: "again", SpecFile: spec, Event: "go", Dedup: true})
	if _, err := e.svc.PostEvent(ctx, "go", "", nil, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a run of the new trigger", func() (bool, string) {
		rs := e.runs(t, "again")
		return len(rs) == 2 && allDone(rs), describeRuns(rs)
	})
}

// A trigger whose run cannot be built (its spec no longer reads) keeps its
// events pending and says why in LastError, until the spec is fixed.
func TestTriggerRecordsWhyEventsWait(t *testing.T) {
	e := newTrigEnv(t, nil)
	ctx := context.Background()
	spec := e.writeSpec(t, "broken", "true", "")
	e.create(t, pipeline.Trigger{Name: "broken", SpecFile: spec, Event: "go"})
	good, err := os.ReadFile(spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(spec, []byte("name: broken\nsteps: [\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PostEvent(ctx, "go", "", nil, ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the trigger to record its error", func() (bool, string) {
		tr, err := e.svc.GetTrigger(ctx, "broken")
		if err != nil {
			return false, err.Error()
		}
		return tr.LastError != "", "last error: " + tr.LastError
	})
	if evs := e.events(t, "broken"); len(evs) != 1 || evs[0].Status != pipeline.EventPending {
		t.Fatalf("events of a trigger that cannot build its run: %s, want one pending", describeEvents(evs))
	}
	if err := os.WriteFile(spec, good, 0o644); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the run once the spec is fixed, and the error cleared", func() (bool, string) {
		tr, err := e.svc.GetTrigger(ctx, "broken")
		if err != nil {
			return false, err.Error()
		}
		rs := e.runs(t, "broken")
		return len(rs) == 1 && tr.LastError == "", describeRuns(rs) + " last error: " + tr.LastError
	})
}
