package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// dashboardPath is the Grafana dashboard shipped for mloop's metrics.
const dashboardPath = "../../deploy/grafana/mloop.json"

// metricNameRE finds mloop metric names in PromQL.
var metricNameRE = regexp.MustCompile(`mloop_[a-z0-9_]+`)

// registeredNameRE finds the names mloop's Go sources give their metrics.
var registeredNameRE = regexp.MustCompile(`(?:Name:\s*|NewDesc\()"(mloop_[a-z0-9_]+)"`)

// grafanaPanel is the part of a dashboard panel the test reads.
type grafanaPanel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource map[string]any `json:"datasource"`
	Targets    []struct {
		Expr string `json:"expr"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"`
}

// TestGrafanaDashboard keeps deploy/grafana/mloop.json honest: every
// metric its panels query is one the real server exports, and every metric
// mloop registers has a panel. It serves a model on the real server, sends
// requests and feedback and closes the monitoring window so that the
// metric families appear in GET /metrics; a family that only appears
// after rarer events (a rollback, a shadow, a firing alert, drift against
// a reference) must then at least be one the Go sources register.
func TestGrafanaDashboard(t *testing.T) {
	raw, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Inputs []struct {
			Name     string `json:"name"`
			PluginID string `json:"pluginId"`
		} `json:"__inputs"`
		SchemaVersion int            `json:"schemaVersion"`
		UID           string         `json:"uid"`
		Panels        []grafanaPanel `json:"panels"`
		Templating    struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s is not a dashboard: %v", dashboardPath, err)
	}
	if dash.SchemaVersion < 36 || dash.UID == "" {
		t.Errorf("schemaVersion %d uid %q: want 36 or later and a uid", dash.SchemaVersion, dash.UID)
	}
	if len(dash.Inputs) != 1 || dash.Inputs[0].Name != "DS_PROMETHEUS" || dash.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs %+v: want one Prometheus input named DS_PROMETHEUS", dash.Inputs)
	}

	// Every query: from the panels (rows may nest them) and the variables.
	var exprs []string
	where := map[string][]string{} // metric → panels using it
	ids := map[int]string{}
	var walk func([]grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if prev, dup := ids[p.ID]; dup {
				t.Errorf("panels %q and %q share id %d", prev, p.Title, p.ID)
			}
			ids[p.ID] = p.Title
			walk(p.Panels)
			if p.Type == "row" {
				continue
			}
			if uid, _ := p.Datasource["uid"].(string); uid != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q: datasource %v, want uid ${DS_PROMETHEUS}", p.Title, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if !metricNameRE.MatchString(tg.Expr) {
					t.Errorf("panel %q: query %q uses no mloop metric", p.Title, tg.Expr)
				}
				if err := checkBrackets(tg.Expr); err != nil {
					t.Errorf("panel %q: query %q: %v", p.Title, tg.Expr, err)
				}
				exprs = append(exprs, tg.Expr)
				for _, n := range metricNameRE.FindAllString(tg.Expr, -1) {
					where[n] = append(where[n], p.Title)
				}
			}
		}
	}
	walk(dash.Panels)
	vars := map[string]bool{}
	for _, v := range dash.Templating.List {
		vars[v.Name] = true
		for _, n := range metricNameRE.FindAllString(v.Definition, -1) {
			where[n] = append(where[n], "variable "+v.Name)
		}
	}
	for _, v := range []string{"deployment", "model_version"} {
		if !vars[v] {
			t.Errorf("no %s variable in the templating", v)
		}
	}
	for _, e := range exprs {
		for _, v := range regexp.MustCompile(`\$([a-z_]+)`).FindAllStringSubmatch(e, -1) {
			if !vars[v[1]] && !strings.HasPrefix(v[1], "__") {
				t.Errorf("query %q uses $%s, which the dashboard does not define", e, v[1])
			}
		}
	}

	registered := registeredMetricNames(t)
	exposed := exposedFamilies(t)
	if !exposed["mloop_serving_requests_total"] || !exposed["mloop_monitor_feedback_total"] {
		t.Fatalf("GET /metrics lacks the serving and feedback families after requests and feedback: %v", slices.Sorted(maps.Keys(exposed)))
	}

	used := map[string]bool{}
	for n, panels := range where {
		fam := n
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			base, ok := strings.CutSuffix(n, suffix)
			if ok && (exposed[base] || registered[base]) {
				fam = base
			}
		}
		used[fam] = true
		switch {
		case exposed[fam]:
		case registered[fam]:
			t.Logf("%s: not in GET /metrics after this test's traffic; registered in the sources", fam)
		default:
			t.Errorf("%s (panels %q): no such metric in GET /metrics nor in the Go sources", n, panels)
		}
	}
	for _, n := range slices.Sorted(maps.Keys(registered)) {
		if !used[n] {
			t.Errorf("%s is registered but no panel of %s shows it", n, dashboardPath)
		}
	}
}

// registeredMetricNames returns the mloop metric names the non-test Go
// sources of the module register.
func registeredMetricNames(t *testing.T) map[string]bool {
	t.Helper()
	names := map[string]bool{}
	for _, root := range []string{"../../internal", "."} {
		err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			for _, m := range registeredNameRE.FindAllSubmatch(src, -1) {
				names[string(m[1])] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if len(names) < 20 {
		t.Fatalf("found only %d registered mloop metrics in the sources (%v): the pattern no longer matches how they are declared", len(names), names)
	}
	return names
}

// exposedFamilies runs the real server with a served model and a shadow,
// sends requests and feedback until the serving, shadow, payload log and
// open-window families show, closes the monitoring window and returns the
// metric families GET /metrics exposed along the way.
func exposedFamilies(t *testing.T) map[string]bool {
	t.Helper()
	m := MustOpenMain(t)
	registerFixture(t, m, "weather", "binary_logistic.json")
	registerFixture(t, m, "weather", "binary_logistic.json")
	mustCreate(t, m, map[string]any{"name": "weather", "spec": map[string]any{"model": "weather@1", "shadow": "weather@2"}})
	waitFor(t, "weather ready", time.Minute, func() bool {
		resp, err := http.Get(m.URL() + "/v2/models/weather/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	fams := map[string]bool{}
	want := []string{"mloop_serving_requests_total", "mloop_serving_request_duration_seconds", "mloop_serving_in_flight",
		"mloop_serving_revision_ready", "mloop_serving_shadow_compared_rows_total", "mloop_payload_log_written_total",
		"mloop_monitor_window_rows", "mloop_monitor_dropped_total"}
	var labels []map[string]any
	sent := 0
	waitFor(t, "the serving, shadow, payload log and window families in GET /metrics", time.Minute, func() bool {
		status, _, err := infer(http.DefaultClient, m.URL(), "weather", sent)
		if err != nil || status != http.StatusOK {
			t.Fatalf("infer %d: %d %v", sent, status, err)
		}
		labels = append(labels, map[string]any{"request_id": fmt.Sprintf("r%d", sent), "label": sent % 2})
		sent++
		scrapeFamilies(t, m, fams)
		for _, n := range want {
			if !fams[n] {
				return false
			}
		}
		return true
	})
	labels = append(labels, map[string]any{"request_id": "nobody-sent-this", "label": 1})
	mustCall(t, m, "POST", "/api/v1/feedback", map[string]any{"labels": labels})
	if err := m.Monitor.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	scrapeFamilies(t, m, fams)
	return fams
}

// scrapeFamilies adds the metric families GET /metrics exposes to fams.
func scrapeFamilies(t *testing.T, m *Main, fams map[string]bool) {
	t.Helper()
	resp, err := http.Get(m.URL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	for line := range strings.Lines(string(body)) {
		// "# TYPE name kind": one line per family that has samples.
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			fams[f[2]] = true
		}
	}
}

// checkBrackets reports unbalanced (), [] and {} in a PromQL expression,
// ignoring those inside double-quoted strings.
func checkBrackets(expr string) error {
	var stack []rune
	pair := map[rune]rune{')': '(', ']': '[', '}': '{'}
	inString := false
	for i, r := range expr {
		switch {
		case inString:
			if r == '"' && (i == 0 || expr[i-1] != '\\') {
				inString = false
			}
		case r == '"':
			inString = true
		case r == '(' || r == '[' || r == '{':
			stack = append(stack, r)
		case r == ')' || r == ']' || r == '}':
			if len(stack) == 0 || stack[len(stack)-1] != pair[r] {
				return fmt.Errorf("unbalanced %q at byte %d", r, i)
			}
			stack = stack[:len(stack)-1]
		}
	}
	if inString || len(stack) > 0 {
		return fmt.Errorf("unclosed %q", stack)
	}
	return nil
}
