package main

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/story"
)

// storyPipeline retrains weather: its train step hands over a prepared
// XGBoost model with its metrics, the gate blesses an AUC of at least 0.5,
// and the register step adds the version and moves the champion alias.
const storyPipeline = `name: weather-retrain
steps:
  train:
    run: cp %q "$MLOOP_OUTPUT_MODEL" && echo '{"auc":0.91}' > "$MLOOP_OUTPUT_METRICS"
    outputs:
      model: {path: model.json, type: model, flavor: xgboost}
      metrics: {path: metrics.json, type: metrics}
  gate:
    uses: gate
    inputs: {metrics: steps.train.outputs.metrics}
    outputs: {verdict: {path: verdict.json}}
    with: {model: weather, thresholds: [{metric: auc, lower: 0.5}]}
  register:
    uses: register
    inputs: {model: steps.train.outputs.model, verdict: steps.gate.outputs.verdict}
    with: {model: weather}
`

// storyRules fires on any served request and posts a retraining event.
const storyRules = `rules:
  - name: weather-slow
    deployment: weather
    condition: {kind: latency_p99_above, threshold: 0.000001}
    min_samples: 1
    actions:
      - trigger: {}
`

// storyOf reads the story of deployment name with `mloop story --json`.
func storyOf(t *testing.T, m *Main, name string) *story.Story {
	t.Helper()
	out, _ := mustCLI(t, m, exitOK, "story", name, "--json")
	s := decodeJSON[story.Story](t, out)
	return &s
}

// chainText writes a chain as "OUTCOME: KIND REF (STATUS) > …".
func chainText(c story.Chain) string {
	parts := make([]string, len(c.Links))
	for i, l := range c.Links {
		parts[i] = fmt.Sprintf("%s %s (%s)", l.Kind, l.Ref, l.Status)
	}
	return c.Outcome + ": " + strings.Join(parts, " > ")
}

// serveAndClose sends requests to weather until one is answered by
// revision rev, then closes the monitoring window.
func serveAndClose(t *testing.T, m *Main, rev string) {
	t.Helper()
	waitFor(t, "weather served by revision "+rev, 60*time.Second, func() bool {
		status, got, err := infer(http.DefaultClient, m.URL(), "weather", 1)
		return err == nil && status == http.StatusOK && got == rev
	})
	for i := range 5 {
		if status, _, err := infer(http.DefaultClient, m.URL(), "weather", i); err != nil || status != http.StatusOK {
			t.Fatalf("infer %d: %d %v", i, status, err)
		}
	}
	if err := m.Monitor.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// TestStoryEndToEnd runs the loop on the real server: an alert rule with a
// trigger action fires on the deployment's first window, its event starts
// the retraining pipeline, whose gate blesses the candidate and whose
// register step moves the champion alias the deployment follows — directly
// (alias_moved), or through a canary the rollout controller judges on the
// monitor's figures and promotes. `mloop story` tells it as one chain from
// the alert to the deployment's change. The next window's alert (on the
// new version) posts an event the trigger deduplicates (same pipeline
// inputs): its chain ends there, and says so.
func TestStoryEndToEnd(t *testing.T) {
	for _, tt := range []struct {
		name    string
		rollout map[string]any // the deployment's rollout policy, nil for none
		outcome string
		tail    string // the chain's deployment links
	}{
		{"alias followed", nil, story.OutcomeDeployed, "alias_moved weather#2 (primary, automatic)"},
		{"canary promoted", map[string]any{"window": "1s", "min_requests": 1, "canary_percent": 50}, story.OutcomePromoted,
			"rollout_started weather#2 (canary 50%, automatic) > promoted weather#3 (promote, automatic)"},
	} {
		t.Run(tt.name, func(t *testing.T) { storyEndToEnd(t, tt.rollout, tt.outcome, tt.tail) })
	}
}

// storyEndToEnd runs TestStoryEndToEnd with a deployment of the rollout
// policy given (nil: none); the retraining chain ends in outcome with the
// deployment links tail.
func storyEndToEnd(t *testing.T, rollout map[string]any, outcome, tail string) {
	m := MustOpenMain(t)
	dir := t.TempDir()
	candidate := xgbFixture(t, "binary_logistic.json", dir, "candidate.json")
	spec := writeSpec(t, dir, fmt.Sprintf(storyPipeline, candidate))
	rules := filepath.Join(dir, "alerts.yaml")
	if err := os.WriteFile(rules, []byte(storyRules), 0o644); err != nil {
		t.Fatal(err)
	}

	registerFixture(t, m, "weather", "binary_logistic.json")
	mustCall(t, m, "POST", "/api/2.0/mlflow/registered-models/alias", map[string]any{"name": "weather", "alias": "champion", "version": "1"})
	depSpec := map[string]any{"model": "weather@champion"}
	if rollout != nil {
		depSpec["rollout"] = rollout
	}
	mustCreate(t, m, map[string]any{"name": "weather", "spec": depSpec})
	mustCLI(t, m, exitOK, "trigger", "create", "retrain", "--pipeline", spec, "--on-event", "monitoring.alert", "--dedup")
	mustCLI(t, m, exitOK, "alert", "apply", rules)

	// Before any alert: the version deployed at creation.
	s := storyOf(t, m, "weather")
	if len(s.Chains) != 1 || chainText(s.Chains[0]) != "deployed: model_version weather/1 (registered) > created weather#1 (primary)" || s.Model != "weather@champion" {
		t.Fatalf("story before any alert: got %+v", s)
	}

	// Window 1 on weather/1: the alert, its run, weather/2 deployed. A
	// canary needs requests to be judged: traffic flows meanwhile.
	serveAndClose(t, m, "1")
	waitFor(t, "weather/2 primary", 90*time.Second, func() bool {
		infer(http.DefaultClient, m.URL(), "weather", 2)
		return slotsOf(deployment(t, m, "weather"))["primary"] == "2" // revision 2 serves weather/2
	})
	s = storyOf(t, m, "weather")
	if len(s.Chains) != 2 {
		t.Fatalf("story after the retraining: got %d chains, want 2:\n%s", len(s.Chains), storyText(t, m))
	}
	c := s.Chains[0]
	alertID, runID := c.Links[0].Ref, ""
	if len(c.Links) > 2 {
		runID = c.Links[2].Ref
	}
	want := fmt.Sprintf("%s: alert %s (firing) > trigger retrain#1 (fired) > run %s (succeeded) > gate %s/gate (blessed) > "+
		"model_version weather/2 (blessed) > %s", outcome, alertID, runID, runID, tail)
	if got := chainText(c); got != want || !strings.HasPrefix(alertID, "al-") || !strings.HasPrefix(runID, "pr-") {
		t.Fatalf("retraining chain:\n got %s\nwant %s", got, want)
	}
	if c.Links[3].Title != "step gate blessed the candidate (1 passed, 0 failed, 0 skipped) against champion weather/1" {
		t.Errorf("gate title: got %q", c.Links[3].Title)
	}
	// The links lead to the records.
	for _, l := range c.Links {
		if status, out := call(t, m, "GET", l.Link, nil); status != http.StatusOK {
			t.Errorf("%s link %s: got %d %v, want 200", l.Kind, l.Link, status, out)
		}
	}

	// Window 2 on weather/2: a new alert, whose event is deduplicated.
	serveAndClose(t, m, "2")
	waitFor(t, "the deduplicated chain", 60*time.Second, func() bool {
		s = storyOf(t, m, "weather")
		return len(s.Chains) == 3 && s.Chains[0].Outcome == story.OutcomeDeduplicated
	})
	c = s.Chains[0]
	if len(c.Links) != 2 || c.Links[0].Kind != story.KindAlert || c.Links[0].Ref == alertID || c.Links[1].Ref != "retrain#2" ||
		!strings.Contains(c.Links[1].Title, "deduplicated") {
		t.Errorf("deduplicated chain: got %s (%q)", chainText(c), c.Links[1].Title)
	}
	if s.Chains[1].Links[0].Ref != alertID || s.Chains[1].Outcome != outcome || s.Chains[2].Outcome != story.OutcomeDeployed {
		t.Errorf("older chains: got\n%s\n%s", chainText(s.Chains[1]), chainText(s.Chains[2]))
	}

	// The human output: chains newest first, one line per link with the
	// command that shows more.
	out := storyText(t, m)
	for _, want := range []string{
		"story of weather (serves weather@champion): 3 chains, newest first\n",
		"\n1. deduplicated\n", "\n2. " + outcome + "\n", "\n3. deployed\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("mloop story: output lacks %q:\n%s", want, out)
		}
	}
	for _, want := range [][]string{
		{"alert", alertID, "weather-slow: p99 latency", "mloop alert show " + alertID},
		{"trigger", "retrain#1", "fired run " + runID, "mloop trigger events retrain"},
		{"run", runID, "succeeded", "mloop pipeline show " + runID},
		{"gate", runID + "/gate", "blessed", "mloop pipeline logs " + runID + " gate"},
		{"model_version", "weather/2", "blessed", "mloop lineage models:/weather/2 --up"},
		{strings.Fields(tail)[0], "weather#2", "weather/2", "mloop deploy events weather"},
	} {
		if !hasLine(out, want...) {
			t.Errorf("mloop story: no line with %q:\n%s", want, out)
		}
	}
	if out, _ := mustCLI(t, m, exitOK, "story", "weather", "--limit", "1"); !strings.Contains(out, "1 chain\n") || strings.Contains(out, "2. ") {
		t.Errorf("mloop story --limit 1: got\n%s", out)
	}

	// Errors.
	if _, errs := mustCLI(t, m, exitFailure, "story", "nope"); !strings.Contains(errs, "mloop deploy list") {
		t.Errorf("story of an unknown deployment: got %q, want a pointer to mloop deploy list", errs)
	}
	for _, args := range [][]string{{"story"}, {"story", "a", "b"}, {"story", "weather", "--limit", "0"}, {"story", "weather", "--limit", "101"}} {
		mustCLI(t, m, exitUsage, args...)
	}
}

// hasLine reports whether a line of out holds every part, in order.
func hasLine(out string, parts ...string) bool {
	for line := range strings.Lines(out) {
		rest, ok := line, true
		for _, p := range parts {
			i := strings.Index(rest, p)
			if i < 0 {
				ok = false
				break
			}
			rest = rest[i+len(p):]
		}
		if ok {
			return true
		}
	}
	return false
}

// storyText returns the output of `mloop story weather`.
func storyText(t *testing.T, m *Main) string {
	t.Helper()
	out, _ := mustCLI(t, m, exitOK, "story", "weather")
	return out
}

// TestWriteStory checks the human output of a story, line by line.
func TestWriteStory(t *testing.T) {
	at := time.Date(2026, 11, 26, 7, 1, 2, 0, time.UTC)
	s := &story.Story{Deployment: "weather", Model: "weather@champion", Chains: []story.Chain{
		{Outcome: story.OutcomeRolledBack, Links: []story.Link{
			{Time: at, Kind: "alert", Ref: "al-1", Title: "weather-drift: dataset drift 0.75 ≥ 0.5\non weather/1", Command: "mloop alert show al-1"},
			{Time: at.Add(time.Second), Kind: "auto_rolled_back", Ref: "weather#4", Title: "canary rolled back", Command: "mloop deploy events weather"},
		}},
		{Outcome: story.OutcomeDeduplicated, Links: []story.Link{
			{Time: at.Add(-time.Hour), Kind: "alert", Ref: "al-0", Title: "x", Command: "mloop alert show al-0"},
		}},
	}, Notes: []string{"something is off"}}
	var b bytes.Buffer
	if err := writeStory(&b, s); err != nil {
		t.Fatal(err)
	}
	want := "story of weather (serves weather@champion): 2 chains, newest first\n" +
		"\n1. rolled back\n" +
		"  " + timeCell(at) + "  alert             al-1       weather-drift: dataset drift 0.75 ≥ 0.5 on weather/1  mloop alert show al-1\n" +
		"  " + timeCell(at.Add(time.Second)) + "  auto_rolled_back  weather#4  canary rolled back" + strings.Repeat(" ", 36) + "mloop deploy events weather\n" +
		"\n2. deduplicated\n" +
		"  " + timeCell(at.Add(-time.Hour)) + "  alert  al-0  x  mloop alert show al-0\n" +
		"\nnote: something is off\n"
	if got := b.String(); got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	// Long titles are clipped in the table (--json has them whole).
	b.Reset()
	long := strings.Repeat("é", 99) + "xyz"
	if err := writeStory(&b, &story.Story{Deployment: "weather", Chains: []story.Chain{{Outcome: "promoted",
		Links: []story.Link{{Time: at, Kind: "promoted", Ref: "weather#3", Title: long, Command: "mloop deploy events weather"}}}}}); err != nil {
		t.Fatal(err)
	}
	if got := b.String(); !strings.Contains(got, strings.Repeat("é", 99)+"…  mloop deploy events weather\n") || strings.Contains(got, "xyz") {
		t.Errorf("long title: got\n%s\nwant it clipped to 100 characters", got)
	}
	b.Reset()
	if err := writeStory(&b, &story.Story{Deployment: "weather"}); err != nil || !strings.Contains(b.String(), "story of weather: nothing yet") {
		t.Errorf("empty story: got %q, %v", b.String(), err)
	}
}
