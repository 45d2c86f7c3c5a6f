package story_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/story"
)

// The fakes below hold the records of the services the story reads, as
// those services return them; the end-to-end test in cmd/mloop runs the
// story on the real ones.

type fakeAlerts struct {
	alerts     []*alert.Alert // newest first
	deliveries map[string][]*alert.Delivery
	rules      map[string]*alert.Rule
}

func (f *fakeAlerts) Alerts(_ context.Context, flt alert.AlertFilter) ([]*alert.Alert, error) {
	var out []*alert.Alert
	for _, a := range f.alerts {
		if flt.Deployment == "" || a.Deployment == flt.Deployment {
			out = append(out, a)
		}
	}
	if flt.Limit > 0 && len(out) > flt.Limit {
		out = out[:flt.Limit]
	}
	return out, nil
}

func (f *fakeAlerts) Alert(_ context.Context, id string) (*alert.Alert, []*alert.Delivery, error) {
	for _, a := range f.alerts {
		if a.ID == id {
			return a, f.deliveries[id], nil
		}
	}
	return nil, nil, mloop.Errorf(mloop.ENOTFOUND, "no alert %s", id)
}

func (f *fakeAlerts) GetRule(_ context.Context, name string) (*alert.Rule, error) {
	if r, ok := f.rules[name]; ok {
		return r, nil
	}
	return nil, mloop.Errorf(mloop.ENOTFOUND, "no rule %s", name)
}

type fakePipelines struct {
	triggers []*pipeline.Trigger
	events   map[string][]*pipeline.TriggerEvent // newest first
	runs     map[string]*pipeline.Run
}

func (f *fakePipelines) ListTriggers(context.Context) ([]*pipeline.Trigger, error) {
	return f.triggers, nil
}

func (f *fakePipelines) TriggerEvents(_ context.Context, name string, limit int) ([]*pipeline.TriggerEvent, error) {
	evs := f.events[name]
	if len(evs) > limit {
		evs = evs[:limit]
	}
	return evs, nil
}

func (f *fakePipelines) GetRun(_ context.Context, id string) (*pipeline.Run, error) {
	if r, ok := f.runs[id]; ok {
		return r, nil
	}
	return nil, mloop.Errorf(mloop.ENOTFOUND, "no run %s", id)
}

type fakeRegistry struct{ versions []*registry.ModelVersion }

func (f *fakeRegistry) GetModelVersion(_ context.Context, name, version string) (*registry.ModelVersion, error) {
	for _, mv := range f.versions {
		if mv.Name == name && strconv.FormatInt(mv.Version, 10) == version {
			return mv, nil
		}
	}
	return nil, mloop.Errorf(mloop.ENOTFOUND, "no version %s/%s", name, version)
}

// SearchModelVersions understands the one filter the story sends:
// tags.`mloop.pipeline_run` = 'ID'.
func (f *fakeRegistry) SearchModelVersions(_ context.Context, req registry.SearchRequest) ([]*registry.ModelVersion, string, error) {
	const prefix = "tags.`mloop.pipeline_run` = '"
	if !strings.HasPrefix(req.Filter, prefix) {
		return nil, "", fmt.Errorf("unexpected filter %q", req.Filter)
	}
	id := strings.TrimSuffix(strings.TrimPrefix(req.Filter, prefix), "'")
	var out []*registry.ModelVersion
	for _, mv := range f.versions {
		for _, t := range mv.Tags {
			if t.Key == "mloop.pipeline_run" && t.Value == id {
				out = append(out, mv)
			}
		}
	}
	return out, "", nil
}

type fakeDeployments struct {
	dep    *deploy.Deployment
	events []*deploy.Event // oldest first here; Events answers newest first
}

func (f *fakeDeployments) Get(_ context.Context, name string) (*deploy.Deployment, error) {
	if f.dep == nil || f.dep.Name != name {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "no deployment %s", name)
	}
	return f.dep, nil
}

func (f *fakeDeployments) Events(_ context.Context, name string, limit int) ([]*deploy.Event, error) {
	var out []*deploy.Event
	for i := len(f.events) - 1; i >= 0 && (limit == 0 || len(out) < limit); i-- {
		if f.events[i].Deployment == name {
			out = append(out, f.events[i])
		}
	}
	return out, nil
}

// world is the records of one scenario.
type world struct {
	alerts *fakeAlerts
	pipes  *fakePipelines
	reg    *fakeRegistry
	deps   *fakeDeployments
	now    time.Time
	nextEv int64
}

func newWorld() *world {
	w := &world{
		alerts: &fakeAlerts{deliveries: map[string][]*alert.Delivery{}},
		pipes: &fakePipelines{events: map[string][]*pipeline.TriggerEvent{}, runs: map[string]*pipeline.Run{},
			triggers: []*pipeline.Trigger{
				{Name: "retrain", Kind: pipeline.OnEvent, Event: "monitoring.alert"},
				{Name: "nightly", Kind: pipeline.OnSchedule, Cron: "@daily"},
			}},
		reg:  &fakeRegistry{},
		deps: &fakeDeployments{dep: &deploy.Deployment{Name: "weather", Spec: deploy.Spec{Model: deploy.Ref{Model: "weather", Alias: "champion"}}}},
		now:  time.Date(2026, 11, 26, 7, 0, 0, 0, time.UTC),
	}
	// weather/1 was registered by hand and deployed at creation.
	w.version(1, "", "")
	w.deployEvent(deploy.EventCreated, "created", nil, []deploy.Slot{slot("primary", 1, 1, 100)}, "")
	return w
}

// tick returns a time one minute after the previous one.
func (w *world) tick() time.Time {
	w.now = w.now.Add(time.Minute)
	return w.now
}

func slot(role string, rev, version int64, percent int) deploy.Slot {
	return deploy.Slot{Role: role, Revision: rev, Model: "weather", Version: version, Percent: percent,
		Ref: deploy.Ref{Model: "weather", Version: version}}
}

func (w *world) deployEvent(typ, msg string, before, after []deploy.Slot, details string) {
	w.nextEv++
	det := deploy.EventDetails{Before: before, After: after}
	if details != "" {
		det.Details = json.RawMessage(details)
	}
	raw, err := json.Marshal(det)
	if err != nil {
		panic(err)
	}
	w.deps.events = append(w.deps.events, &deploy.Event{ID: w.nextEv, Deployment: "weather", Time: w.tick().UnixMilli(),
		Type: typ, Message: msg, Automatic: details != "" || typ == deploy.EventAliasMoved || typ == "rollout_started", Details: raw})
}

// alert fires an alert; its trigger event, when status is not "", is
// recorded by trigger retrain with run runID.
func (w *world) alert(id string, status pipeline.EventStatus, runID, reason string) {
	a := &alert.Alert{ID: id, Rule: "weather-drift", Deployment: "weather", ModelVersion: "weather/1", State: alert.StateFiring,
		StartedAt: w.tick(), Message: "dataset drift 0.75 ≥ 0.5"}
	w.alerts.alerts = append([]*alert.Alert{a}, w.alerts.alerts...)
	if status == "" {
		return
	}
	payload, _ := json.Marshal(alert.Payload{Event: alert.StateFiring, Alert: a})
	evs := w.pipes.events["retrain"]
	ev := &pipeline.TriggerEvent{ID: int64(len(evs) + 1), Trigger: "retrain", Source: "event", Subject: "alert/weather-drift/weather",
		Payload: payload, DedupKey: alert.DedupKey("weather-drift", "weather", "w-"+id), Status: status, RunID: runID, Reason: reason,
		CreatedAt: w.tick()}
	w.pipes.events["retrain"] = append([]*pipeline.TriggerEvent{ev}, evs...)
}

// run records a run with a train step, a gate step judging blessed (nil:
// no gate) and its status.
func (w *world) run(id string, status pipeline.RunStatus, blessed *bool, cause string) {
	r := &pipeline.Run{ID: id, Pipeline: "weather-retrain", Status: status, Cause: cause, CreatedAt: w.tick(),
		Spec:  "name: weather-retrain\nsteps:\n  train:\n    run: echo\n    outputs: {metrics: {path: m.json, type: metrics}}\n  gate:\n    uses: gate\n    inputs: {metrics: steps.train.outputs.metrics}\n",
		Steps: []*pipeline.StepRun{{Name: "train", Status: pipeline.StepSucceeded}}}
	if status == pipeline.RunFailed {
		r.Steps[0].Status, r.Error = pipeline.StepFailed, "step train failed: exit status 1"
	}
	if blessed != nil {
		g := &pipeline.StepRun{Name: "gate", Status: pipeline.StepSucceeded, FinishedAt: w.tick(),
			Metrics: map[string]float64{"gate.blessed": 1, "gate.passed": 2}}
		if !*blessed {
			g.Metrics = map[string]float64{"gate.blessed": 0, "gate.passed": 1, "gate.failed": 1}
		}
		r.Steps = append(r.Steps, g)
	}
	w.pipes.runs[id] = r
}

// version registers weather/N from run runID ("" by hand) with the
// blessed tag ("" none).
func (w *world) version(n int64, runID, blessed string) {
	mv := &registry.ModelVersion{Name: "weather", Version: n, CreationTimestamp: w.tick().UnixMilli(),
		Tags: []registry.Tag{{Key: "mloop.metrics", Value: `{"values":{"auc":0.91,"rows":120},"champion":{"model":"weather"}}`}}}
	if runID != "" {
		mv.Tags = append(mv.Tags, registry.Tag{Key: "mloop.pipeline_run", Value: runID}, registry.Tag{Key: "mloop.gate.champion", Value: "weather/1"})
	}
	if blessed != "" {
		mv.Tags = append(mv.Tags, registry.Tag{Key: "mloop.blessed", Value: blessed})
	}
	w.reg.versions = append(w.reg.versions, mv)
}

func (w *world) service(withAlerts bool) *story.Service {
	if !withAlerts {
		return story.New(w.deps, w.pipes, w.reg, nil)
	}
	return story.New(w.deps, w.pipes, w.reg, w.alerts)
}

// summary writes each chain as "OUTCOME: KIND(STATUS) > …".
func summary(st *story.Story) []string {
	var out []string
	for _, c := range st.Chains {
		kinds := make([]string, len(c.Links))
		for i, l := range c.Links {
			kinds[i] = l.Kind + "(" + l.Status + ")"
		}
		out = append(out, c.Outcome+": "+strings.Join(kinds, " > "))
	}
	return out
}

var yes, no = true, false

// rolloutStarted starts a rollout canary of weather/N as revision rev
// beside the primary revision 1 (weather/1).
func (w *world) rolloutStarted(n, rev int64) {
	w.deployEvent("rollout_started", fmt.Sprintf("alias weather@champion moved to weather/%d: canary weather/%d (revision %d) takes 20%% of traffic", n, n, rev),
		[]deploy.Slot{slot("primary", 1, 1, 100)}, []deploy.Slot{slot("primary", 1, 1, 80), slot("canary", rev, n, 20)}, "")
}

func TestStory(t *testing.T) {
	const created = "deployed: model_version(registered) > created(primary)"
	tests := []struct {
		name  string
		setup func(w *world)
		want  []string
	}{
		{"alert, run, gate, canary promoted", func(w *world) {
			w.alert("al-1", pipeline.EventFired, "pr-1", "")
			w.run("pr-1", pipeline.RunSucceeded, &yes, "event monitoring.alert")
			w.version(2, "pr-1", "true")
			w.rolloutStarted(2, 2)
			w.deployEvent(deploy.EventPromoted, "canary weather/2 (revision 2) promoted: healthy",
				[]deploy.Slot{slot("primary", 1, 1, 80), slot("canary", 2, 2, 20)}, []deploy.Slot{slot("primary", 2, 2, 100)},
				`{"decision":"promote","reason":"error rate 0.00 vs 0.00","canary":{"requests":150}}`)
		}, []string{
			"promoted: alert(firing) > trigger(fired) > run(succeeded) > gate(blessed) > model_version(blessed) > rollout_started(canary 20%, automatic) > promoted(promote, automatic)",
			created,
		}},
		{"canary rolled back automatically", func(w *world) {
			w.alert("al-1", pipeline.EventFired, "pr-1", "")
			w.run("pr-1", pipeline.RunSucceeded, &yes, "event monitoring.alert")
			w.version(2, "pr-1", "true")
			w.rolloutStarted(2, 2)
			w.deployEvent(deploy.EventAutoRolledBack, "canary weather/2 (revision 2) rolled back; alias champion moved back to weather/1",
				[]deploy.Slot{slot("primary", 1, 1, 80), slot("canary", 2, 2, 20)}, []deploy.Slot{slot("primary", 1, 1, 100)},
				`{"decision":"rollback","reason":"accuracy 0.61 vs primary 0.83"}`)
		}, []string{
			"rolled back: alert(firing) > trigger(fired) > run(succeeded) > gate(blessed) > model_version(blessed) > rollout_started(canary 20%, automatic) > auto_rolled_back(rollback, automatic)",
			created,
		}},
		{"canary still judged", func(w *world) {
			w.alert("al-1", pipeline.EventFired, "pr-1", "")
			w.run("pr-1", pipeline.RunSucceeded, &yes, "event monitoring.alert")
			w.version(2, "pr-1", "true")
			w.rolloutStarted(2, 2)
		}, []string{
			"in progress: alert(firing) > trigger(fired) > run(succeeded) > gate(blessed) > model_version(blessed) > rollout_started(canary 20%, automatic)",
			created,
		}},
		{"a canary replaced by a newer release", func(w *world) {
			w.alert("al-1", pipeline.EventFired, "pr-1", "")
			w.run("pr-1", pipeline.RunSucceeded, &yes, "event monitoring.alert")
			w.version(2, "pr-1", "true")
			w.rolloutStarted(2, 2)
			w.alert("al-2", pipeline.EventFired, "pr-2", "")
			w.run("pr-2", pipeline.RunSucceeded, &yes, "event monitoring.alert")
			w.version(3, "pr-2", "true")
			w.deployEvent("rollout_started", "alias weather@champion moved to weather/3",
				[]deploy.Slot{slot("primary", 1, 1, 80), slot("canary", 2, 2, 20)}, []deploy.Slot{slot("primary", 1, 1, 80), slot("canary", 3, 3, 20)}, "")
		}, []string{
			"in progress: alert(firing) > trigger(fired) > run(succeeded) > gate(blessed) > model_version(blessed) > rollout_started(canary 20%, automatic)",
			"replaced: alert(firing) > trigger(fired) > run(succeeded) > gate(blessed) > model_version(blessed) > rollout_started(canary 20%, automatic) > rollout_started(replaced, automatic)",
			created,
		}},
		{"deduplicated and skipped events", func(w *world) {
			w.alert("al-1", pipeline.EventDeduped, "", "a run with the same inputs succeeded: pr-0")
			w.alert("al-2", pipeline.EventSkipped, "", "overlap policy skip: 1 run active")
		}, []string{"skipped: alert(firing) > trigger(skipped)", "deduplicated: alert(firing) > trigger(deduplicated)", created}},
		{"pending event", func(w *world) {
			w.alert("al-1", pipeline.EventPending, "", "")
		}, []string{"in progress: alert(firing) > trigger(pending)", created}},
		{"run failed", func(w *world) {
			w.alert("al-1", pipeline.EventFired, "pr-1", "")
			w.run("pr-1", pipeline.RunFailed, nil, "event monitoring.alert")
		}, []string{"run failed: alert(firing) > trigger(fired) > run(failed)", created}},
		{"run still running", func(w *world) {
			w.alert("al-1", pipeline.EventFired, "pr-1", "")
			w.run("pr-1", pipeline.RunRunning, nil, "event monitoring.alert")
		}, []string{"in progress: alert(firing) > trigger(fired) > run(running)", created}},
		{"gate rejected", func(w *world) {
			w.alert("al-1", pipeline.EventFired, "pr-1", "")
			w.run("pr-1", pipeline.RunSucceeded, &no, "event monitoring.alert")
			w.version(2, "pr-1", "false")
		}, []string{"gate rejected: alert(firing) > trigger(fired) > run(succeeded) > gate(rejected) > model_version(not blessed)", created}},
		{"gate failing its step", func(w *world) {
			w.alert("al-1", pipeline.EventFired, "pr-1", "")
			w.run("pr-1", pipeline.RunFailed, nil, "event monitoring.alert")
			r := w.pipes.runs["pr-1"]
			r.Steps[0].Status = pipeline.StepSucceeded
			r.Steps = append(r.Steps, &pipeline.StepRun{Name: "gate", Status: pipeline.StepFailed, FinishedAt: w.tick(),
				Error: "candidate not blessed: 1 of 2 thresholds failed: auc 0.61 < 0.8"})
		}, []string{"gate rejected: alert(firing) > trigger(fired) > run(failed) > gate(rejected)", created}},
		{"blessed, alias moved, follower not yet", func(w *world) {
			w.alert("al-1", pipeline.EventFired, "pr-1", "")
			w.run("pr-1", pipeline.RunSucceeded, &yes, "event monitoring.alert")
			w.version(2, "pr-1", "true")
			w.reg.versions[1].Aliases = []string{"champion"}
		}, []string{"in progress: alert(firing) > trigger(fired) > run(succeeded) > gate(blessed) > model_version(blessed)", created}},
		{"blessed, never served", func(w *world) {
			w.alert("al-1", pipeline.EventFired, "pr-1", "")
			w.run("pr-1", pipeline.RunSucceeded, &yes, "event monitoring.alert")
			w.version(2, "pr-1", "true")
		}, []string{"not deployed: alert(firing) > trigger(fired) > run(succeeded) > gate(blessed) > model_version(blessed)", created}},
		{"two alerts, one run, alias followed without canary", func(w *world) {
			w.alert("al-1", pipeline.EventFired, "pr-1", "")
			w.alert("al-2", pipeline.EventFired, "pr-1", "")
			w.run("pr-1", pipeline.RunSucceeded, nil, "2 events monitoring.alert")
			w.version(2, "pr-1", "")
			w.deployEvent(deploy.EventAliasMoved, "alias weather@champion moved: weather/1 → weather/2; revision 2 replaces revision 1",
				[]deploy.Slot{slot("primary", 1, 1, 100)}, []deploy.Slot{slot("primary", 2, 2, 100)}, "")
		}, []string{
			"deployed: alert(firing) > trigger(fired) > alert(firing) > trigger(fired) > run(succeeded) > model_version(registered) > alias_moved(primary, automatic)",
			created,
		}},
		{"a run started by hand", func(w *world) {
			w.run("pr-9", pipeline.RunSucceeded, &yes, "mloop pipeline run by alice")
			w.version(2, "pr-9", "true")
			w.rolloutStarted(2, 2)
			w.deployEvent(deploy.EventRolledBack, "canary weather/2 (revision 2) rolled back by hand",
				[]deploy.Slot{slot("primary", 1, 1, 80), slot("canary", 2, 2, 20)}, []deploy.Slot{slot("primary", 1, 1, 100)}, "")
		}, []string{
			"rolled back: run(succeeded) > gate(blessed) > model_version(blessed) > rollout_started(canary 20%, automatic) > rolled_back(rolled back)",
			created,
		}},
		{"no trigger listening", func(w *world) {
			w.alert("al-1", "", "", "")
			w.alerts.deliveries["al-1"] = []*alert.Delivery{{AlertID: "al-1", Kind: "trigger", Event: alert.StateFiring, Attempt: 1,
				Outcome: alert.OutcomeOK, Detail: "0 trigger event(s) of type monitoring.alert", Time: w.tick()}}
		}, []string{"not triggered: alert(firing) > trigger(none)", created}},
		{"trigger action failed", func(w *world) {
			w.alert("al-1", "", "", "")
			w.alerts.deliveries["al-1"] = []*alert.Delivery{
				{AlertID: "al-1", Kind: "webhook", Event: alert.StateFiring, Attempt: 1, Outcome: alert.OutcomeOK, Time: w.tick()},
				{AlertID: "al-1", Kind: "trigger", Event: alert.StateFiring, Attempt: 4, Outcome: alert.OutcomeFailed, Error: "database is locked", Time: w.tick()},
			}
		}, []string{"trigger failed: alert(firing) > trigger(failed)", created}},
		{"an alert without trigger action", func(w *world) {
			w.alert("al-1", "", "", "")
		}, []string{"not triggered: alert(firing) > trigger(none)", created}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld()
			tt.setup(w)
			st, err := w.service(true).Story(context.Background(), "weather", 0)
			if err != nil {
				t.Fatalf("Story: %v", err)
			}
			got := summary(st)
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("got chains\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(tt.want, "\n  "))
			}
			if st.Deployment != "weather" || st.Model != "weather@champion" || len(st.Notes) != 0 {
				t.Errorf("got deployment %q model %q notes %q, want weather, weather@champion and no notes", st.Deployment, st.Model, st.Notes)
			}
			for _, c := range st.Chains {
				for _, l := range c.Links {
					if l.Ref == "" || l.Title == "" || l.Time.IsZero() || (l.Kind != story.KindTrigger && (l.Link == "" || l.Command == "")) {
						t.Errorf("link %+v lacks a ref, title, time, link or command", l)
					}
				}
			}
		})
	}
}

// TestStoryLinks checks what each kind of link points to.
// TestStoryNoTriggerTitle: an alert that posted no event says why, from
// its rule.
func TestStoryNoTriggerTitle(t *testing.T) {
	for _, tc := range []struct {
		name string
		rule *alert.Rule
		want string
	}{
		{"rule gone", nil, "no trigger event: rule RULE no longer exists"},
		{"no trigger action", &alert.Rule{Name: "RULE", Actions: []alert.Action{{Webhook: &alert.Webhook{URL: "http://x"}}}},
			"no trigger event: rule RULE has no trigger action (it records alerts and sends webhooks only)"},
		{"not run yet", &alert.Rule{Name: "RULE", Actions: []alert.Action{{Trigger: &alert.TriggerAction{}}}},
			"no trigger event: rule RULE posted none (its trigger action has not run yet)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld()
			w.alert("al-1", "", "", "")
			rule := w.alerts.alerts[0].Rule
			if tc.rule != nil {
				r := *tc.rule
				r.Name = rule
				w.alerts.rules = map[string]*alert.Rule{rule: &r}
			}
			st, err := w.service(true).Story(context.Background(), "weather", 0)
			if err != nil {
				t.Fatalf("Story: %v", err)
			}
			want := strings.ReplaceAll(tc.want, "RULE", rule)
			for _, c := range st.Chains {
				for _, l := range c.Links {
					if l.Kind == story.KindTrigger {
						if l.Title != want {
							t.Fatalf("trigger link title:\ngot  %q\nwant %q", l.Title, want)
						}
						return
					}
				}
			}
			t.Fatalf("no trigger link in %+v", st.Chains)
		})
	}
}

func TestStoryLinks(t *testing.T) {
	w := newWorld()
	w.alert("al-00000000000000aa", pipeline.EventFired, "pr-0000000000aa", "")
	w.run("pr-0000000000aa", pipeline.RunSucceeded, &yes, "event monitoring.alert")
	w.version(2, "pr-0000000000aa", "true")
	w.rolloutStarted(2, 2)
	st, err := w.service(true).Story(context.Background(), "weather", 1)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Chains) != 1 {
		t.Fatalf("got %d chains with limit 1, want 1", len(st.Chains))
	}
	type want struct{ ref, link, command, title string }
	wants := []want{
		{"al-00000000000000aa", "/api/v1/alerts/al-00000000000000aa", "mloop alert show al-00000000000000aa", "weather-drift: dataset drift 0.75 ≥ 0.5 on weather/1"},
		{"retrain#1", "/api/v1/triggers/retrain/events", "mloop trigger events retrain", "trigger retrain fired run pr-0000000000aa"},
		{"pr-0000000000aa", "/api/v1/pipeline-runs/pr-0000000000aa", "mloop pipeline show pr-0000000000aa", "pipeline weather-retrain succeeded (event monitoring.alert)"},
		{"pr-0000000000aa/gate", "/api/v1/pipeline-runs/pr-0000000000aa", "mloop pipeline logs pr-0000000000aa gate", "step gate blessed the candidate (2 passed, 0 failed, 0 skipped) against champion weather/1"},
		{"weather/2", "/api/2.0/mlflow/model-versions/get?name=weather&version=2", "mloop lineage models:/weather/2 --up", "registered weather/2, blessed (auc 0.91, rows 120)"},
		{"weather#2", "/api/v1/deployments/weather/events", "mloop deploy events weather", "alias weather@champion moved to weather/2: canary weather/2 (revision 2) takes 20% of traffic"},
	}
	links := st.Chains[0].Links
	if len(links) != len(wants) {
		t.Fatalf("got %d links %+v, want %d", len(links), links, len(wants))
	}
	for i, l := range links {
		if got := (want{l.Ref, l.Link, l.Command, l.Title}); got != wants[i] {
			t.Errorf("link %d (%s):\n got %+v\nwant %+v", i, l.Kind, got, wants[i])
		}
		if i > 0 && l.Time.Before(links[i-1].Time) {
			t.Errorf("link %d (%s) at %s is before link %d at %s", i, l.Kind, l.Time, i-1, links[i-1].Time)
		}
	}
}

func TestStoryLimitAndOrder(t *testing.T) {
	w := newWorld()
	for i := range 5 {
		w.alert(fmt.Sprintf("al-%d", i), pipeline.EventDeduped, "", "same inputs")
	}
	st, err := w.service(true).Story(context.Background(), "weather", 3)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range st.Chains {
		got = append(got, c.Links[0].Ref)
	}
	if want := "al-4 al-3 al-2"; strings.Join(got, " ") != want {
		t.Errorf("got chains starting at %v, want %s (newest first, at most 3)", got, want)
	}
}

func TestStoryWithoutAlerting(t *testing.T) {
	w := newWorld()
	w.alert("al-1", pipeline.EventFired, "pr-1", "")
	w.run("pr-1", pipeline.RunSucceeded, nil, "event monitoring.alert")
	w.version(2, "pr-1", "")
	w.deployEvent(deploy.EventAliasMoved, "alias moved", []deploy.Slot{slot("primary", 1, 1, 100)}, []deploy.Slot{slot("primary", 2, 2, 100)}, "")
	st, err := w.service(false).Story(context.Background(), "weather", 0)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"deployed: run(succeeded) > model_version(registered) > alias_moved(primary, automatic)", "deployed: model_version(registered) > created(primary)"}
	if got := summary(st); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got %q, want %q", got, want)
	}
	if len(st.Notes) != 1 || !strings.Contains(st.Notes[0], "alert") {
		t.Errorf("got notes %q, want one saying alerting is off", st.Notes)
	}
}

func TestStoryErrors(t *testing.T) {
	w := newWorld()
	svc := w.service(true)
	for _, tt := range []struct {
		name, deployment string
		limit            int
		code             string
	}{
		{"unknown deployment", "nope", 0, mloop.ENOTFOUND},
		{"negative limit", "weather", -1, mloop.EINVALID},
		{"limit too large", "weather", story.MaxLimit + 1, mloop.EINVALID},
	} {
		if _, err := svc.Story(context.Background(), tt.deployment, tt.limit); mloop.ErrorCode(err) != tt.code {
			t.Errorf("%s: got %v, want %s", tt.name, err, tt.code)
		}
	}
	// A deleted deployment keeps its story.
	w.deps.dep = nil
	st, err := svc.Story(context.Background(), "weather", 0)
	if err != nil || len(st.Chains) != 1 || st.Model != "" {
		t.Errorf("deleted deployment: got %+v, %v; want its one chain and no model", st, err)
	}
}
