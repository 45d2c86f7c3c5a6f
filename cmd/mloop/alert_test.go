package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/httpapi"
)

// TestAlertEndToEnd applies a rules document with `mloop alert apply` on
// the real server, serves requests through a deployment, closes the
// monitoring window, and sees the latency rule fire: `mloop alert list`
// shows the alert, a signed webhook reaches an HTTP server, and `mloop
// alert show` lists its delivery.
func TestAlertEndToEnd(t *testing.T) {
	m := MustOpenMain(t)
	if m.Alerts == nil {
		t.Fatal("the server runs without an alert engine by default")
	}
	type post struct {
		event, alertID string
		payload        alert.Payload
	}
	var mu sync.Mutex
	var posts []post
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if r.Header.Get(alert.SignatureHeader) != alert.Sign("hook-secret", body) {
			http.Error(w, "bad signature", http.StatusUnauthorized)
			return
		}
		var p alert.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		posts = append(posts, post{r.Header.Get("X-Mloop-Event"), r.Header.Get("X-Mloop-Alert"), p})
		mu.Unlock()
	}))
	defer hook.Close()

	dir := t.TempDir()
	rulesFile := filepath.Join(dir, "alerts.yaml")
	// Any served request takes more than a nanosecond, so the latency
	// rule holds on every window with a request.
	doc := `rules:
  - name: weather-slow
    deployment: weather
    condition: {kind: latency_p99_above, threshold: 0.000001}
    min_samples: 1
    actions:
      - webhook:
          url: ` + hook.URL + `
          secret: hook-secret
          retries: 1
          backoff: 10ms
  - name: weather-errors
    deployment: "*"
    condition: {kind: error_rate_above, threshold: 0.5}
`
	if err := os.WriteFile(rulesFile, []byte(doc), 0o644); err != nil {
		t.Fatal(err)
	}
	code, out, errs := runCLI(t, "alert", "apply", rulesFile, "--server", m.URL())
	if code != exitOK || !strings.Contains(out, "applied 2 rules: weather-slow, weather-errors") {
		t.Fatalf("alert apply: exit %d\n%s%s", code, out, errs)
	}
	// Applying again replaces them.
	if code, out, errs := runCLI(t, "alert", "apply", rulesFile, "--json", "--server", m.URL()); code != exitOK || !strings.Contains(out, `"redacted"`) || strings.Contains(out, "hook-secret") {
		t.Fatalf("alert apply --json: exit %d\n%s%s", code, out, errs)
	}

	// A bad document is refused here, with its line and column, and
	// nothing is sent.
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("rules:\n  - name: oops\n    deployment: weather\n    condition: {kind: error_rate_above, threshold: 3}\n"), 0o644)
	if code, out, errs := runCLI(t, "alert", "apply", bad, "--server", m.URL()); code != exitFailure || !strings.Contains(errs, "bad.yaml: line 4:") {
		t.Errorf("alert apply bad.yaml: exit %d\n%s%s", code, out, errs)
	}

	code, out, errs = runCLI(t, "alert", "rules", "--server", m.URL())
	if code != exitOK || !strings.Contains(out, "weather-slow") || !strings.Contains(out, "latency_p99_above > 1e-06 ms") ||
		!strings.Contains(out, "weather-errors") || strings.Contains(out, "oops") {
		t.Errorf("alert rules: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "alert", "rules", "weather-slow", "--server", m.URL())
	if code != exitOK || !strings.Contains(out, "webhook "+hook.URL+" (signed)") || strings.Contains(out, "hook-secret") {
		t.Errorf("alert rules weather-slow: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, "alert", "rules", "weather-slow", "--json", "--server", m.URL())
	var r alert.Rule
	if err := json.Unmarshal([]byte(out), &r); code != exitOK || err != nil || r.Actions[0].Webhook.Secret != "redacted" {
		t.Errorf("alert rules weather-slow --json: exit %d %v\n%s%s", code, err, out, errs)
	}
	if code, _, errs := runCLI(t, "alert", "rules", "nope", "--server", m.URL()); code != exitFailure || !strings.Contains(errs, "mloop alert rules") {
		t.Errorf("alert rules nope: exit %d %s", code, errs)
	}
	if code, _, errs := runCLI(t, "alert", "delete", "weather-errors", "--server", m.URL()); code != exitOK {
		t.Errorf("alert delete: exit %d %s", code, errs)
	}
	if code, _, _ := runCLI(t, "alert", "delete", "weather-errors", "--server", m.URL()); code != exitFailure {
		t.Errorf("alert delete again: exit %d, want 1", code)
	}

	// Serve requests, then close the window: the latency rule fires.
	registerFixture(t, m, "weather", "binary_logistic.json")
	mustCreate(t, m, map[string]any{"name": "weather", "spec": map[string]any{"model": "weather@1"}})
	waitFor(t, "weather ready", 60*time.Second, func() bool {
		resp, err := http.Get(m.URL() + "/v2/models/weather/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	for i := range 5 {
		if status, _, err := infer(http.DefaultClient, m.URL(), "weather", i); err != nil || status != 200 {
			t.Fatalf("infer %d: %d %v", i, status, err)
		}
	}
	if code, out, _ := runCLI(t, "alert", "list", "--server", m.URL()); code != exitOK || !strings.Contains(out, "no alerts") {
		t.Errorf("alert list before the window closed: exit %d\n%s", code, out)
	}
	if err := m.Monitor.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	var alerts []*alert.Alert
	waitFor(t, "the alert", 30*time.Second, func() bool {
		code, out, errs := runCLI(t, "alert", "list", "--deployment", "weather", "--state", "firing", "--json", "--server", m.URL())
		if code != exitOK {
			t.Fatalf("alert list: exit %d\n%s%s", code, out, errs)
		}
		var got struct {
			Alerts []*alert.Alert `json:"alerts"`
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil {
			t.Fatalf("alert list --json: %v\n%s", err, out)
		}
		alerts = got.Alerts
		return len(alerts) > 0
	})
	a := alerts[0]
	if len(alerts) != 1 || a.Rule != "weather-slow" || a.ModelVersion != "weather/1" || a.Value <= 0 || len(a.Windows) != 1 {
		t.Fatalf("alerts: %+v", alerts)
	}
	code, out, errs = runCLI(t, "alert", "list", "--server", m.URL())
	if code != exitOK || !strings.Contains(out, a.ID) || !strings.Contains(out, "firing") || !strings.Contains(out, "weather/1") {
		t.Errorf("alert list: exit %d\n%s%s", code, out, errs)
	}
	if code, out, _ := runCLI(t, "alert", "list", "--state", "resolved", "--server", m.URL()); code != exitOK || !strings.Contains(out, "no alerts") {
		t.Errorf("alert list --state resolved: exit %d\n%s", code, out)
	}

	waitFor(t, "the webhook", 30*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(posts) > 0
	})
	mu.Lock()
	p := posts[0]
	mu.Unlock()
	if p.event != "firing" || p.alertID != a.ID || p.payload.Alert == nil || p.payload.Alert.ID != a.ID ||
		p.payload.Rule.Name != "weather-slow" || p.payload.Window.ID != a.Windows[0] || p.payload.Window.Deployment != "weather" {
		t.Errorf("webhook post: %+v", p)
	}
	var det httpapi.AlertDetail
	waitFor(t, "the delivery", 30*time.Second, func() bool {
		code, out, errs := runCLI(t, "alert", "show", a.ID, "--json", "--server", m.URL())
		if code != exitOK {
			t.Fatalf("alert show --json: exit %d\n%s%s", code, out, errs)
		}
		det = httpapi.AlertDetail{}
		if err := json.Unmarshal([]byte(out), &det); err != nil {
			t.Fatalf("alert show --json: %v\n%s", err, out)
		}
		return len(det.Deliveries) > 0
	})
	if d := det.Deliveries[0]; d.Outcome != alert.OutcomeOK || d.StatusCode != 200 || d.Kind != "webhook" || d.Attempt != 1 {
		t.Errorf("delivery: %+v", d)
	}
	code, out, errs = runCLI(t, "alert", "show", a.ID, "--server", m.URL())
	if code != exitOK || !strings.Contains(out, "weather-slow") || !strings.Contains(out, "Deliveries:") || !strings.Contains(out, "0 webhook") {
		t.Errorf("alert show: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := runCLI(t, "alert", "show", "al-0000000000000000", "--server", m.URL()); code != exitFailure || !strings.Contains(errs, "mloop alert list") {
		t.Errorf("alert show unknown: exit %d %s", code, errs)
	}

	// Usage errors.
	for _, args := range [][]string{
		{"alert"}, {"alert", "frobnicate"}, {"alert", "apply"}, {"alert", "show"},
		{"alert", "list", "--state", "open"}, {"alert", "list", "--limit", "-1"}, {"alert", "rules", "a", "b"},
	} {
		if code, _, _ := runCLI(t, append(args, "--server", m.URL())...); code != exitUsage {
			t.Errorf("%v: exit %d, want %d", args, code, exitUsage)
		}
	}
}
