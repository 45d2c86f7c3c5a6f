package main

import (
	"bytes"
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/quickstart"
)

// runQuickstartScenario runs `mloop quickstart --exit --json` on a free
// port and returns its summary.
func runQuickstartScenario(t *testing.T, scenario string) *quickstart.Summary {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"quickstart", "--exit", "--json", "--addr", "127.0.0.1:0",
		"--data", filepath.Join(t.TempDir(), "qs"), "--scenario", scenario}, &stdout, &stderr)
	t.Logf("narration:\n%s", stderr.String())
	if code != exitOK {
		t.Fatalf("mloop quickstart --scenario %s: exit %d", scenario, code)
	}
	var sum quickstart.Summary
	if err := json.Unmarshal(stdout.Bytes(), &sum); err != nil {
		t.Fatalf("summary: %v\n%s", err, stdout.String())
	}
	var text bytes.Buffer
	if err := sum.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	t.Logf("summary:%s", text.String())
	return &sum
}

// TestQuickstartRetrain is the README's first command: the loop closes on
// its own — a quality alert retrains, the candidate beats the champion on
// the same month, serves as a canary and is promoted.
func TestQuickstartRetrain(t *testing.T) {
	sum := runQuickstartScenario(t, string(quickstart.ScenarioRetrain))
	if !sum.RetrainPromoted {
		t.Fatalf("no retrain caused by an alert was promoted: models %+v", sum.Models)
	}
	var promoted *quickstart.ModelRow
	for _, m := range sum.Models {
		if m.CausedBy != "" && m.Outcome == "promoted" {
			promoted = m
		}
	}
	if promoted == nil {
		t.Fatalf("no promoted model in %+v", sum.Models)
	}
	if !strings.Contains(promoted.CausedBy, quickstart.QualityRule) || !promoted.Blessed || promoted.ChampionAccuracy == nil ||
		promoted.TestAccuracy < *promoted.ChampionAccuracy {
		t.Errorf("promoted model %+v: want one caused by %s, blessed, at least as accurate as the champion on the same month", promoted, quickstart.QualityRule)
	}
	if sum.Serving != "weather/"+strconv.FormatInt(promoted.Version, 10) {
		t.Errorf("serving %s at the end, want the promoted weather/%d", sum.Serving, promoted.Version)
	}
	drift := false
	for _, w := range sum.Windows {
		drift = drift || w.DatasetDrift
	}
	if !drift {
		t.Errorf("no window showed dataset drift: %+v", sum.Windows)
	}
}

// TestQuickstartBrokenLabels is the second scenario: a retrained model
// that is worse in production is stopped by its canary, and the champion
// alias returns to the version served.
func TestQuickstartBrokenLabels(t *testing.T) {
	sum := runQuickstartScenario(t, string(quickstart.ScenarioBrokenLabels))
	if !sum.RetrainStopped {
		t.Fatalf("no retrain was stopped: models %+v", sum.Models)
	}
	for _, m := range sum.Models {
		if m.CausedBy != "" && m.Outcome == "promoted" {
			t.Errorf("model %+v, trained on inverted labels, was promoted", m)
		}
	}
	if sum.Serving != "weather/1" {
		t.Errorf("serving %s at the end, want weather/1 (the only model trained on true labels)", sum.Serving)
	}
}
