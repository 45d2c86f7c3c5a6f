package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/sqlstore"
)

// newAlertServer is the real API with an alert engine keeping its rules
// and alerts in a fresh SQLite database.
func newAlertServer(t *testing.T) (*httptest.Server, *alert.Engine) {
	t.Helper()
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "alerts.db"))
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	e := alert.NewEngine(sqlstore.NewAlertStore(db), nil, alert.Config{})
	if err := e.Open(ctx); err != nil {
		t.Fatalf("open engine: %v", err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	srv, _ := newTestServer(t, func(s *Server) { s.Alerts = e })
	return srv, e
}

// alertCall sends body (when not empty) with contentType and decodes the
// JSON answer.
func alertCall(t *testing.T, srv *httptest.Server, method, path, contentType, body string) (int, map[string]any) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("%s %s: %d, not a JSON object: %s", method, path, resp.StatusCode, raw)
	}
	return resp.StatusCode, out
}

// mustAlertCall is alertCall failing the test unless the status is want.
func mustAlertCall(t *testing.T, srv *httptest.Server, want int, method, path, contentType, body string) map[string]any {
	t.Helper()
	status, out := alertCall(t, srv, method, path, contentType, body)
	if status != want {
		t.Fatalf("%s %s: %d %v, want %d", method, path, status, out, want)
	}
	return out
}

// as re-decodes a decoded JSON value into T.
func as[T any](t *testing.T, v any) T {
	t.Helper()
	b, _ := json.Marshal(v)
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return out
}

const rulesYAML = `rules:
  - name: flights-errors
    deployment: flights
    condition: {kind: error_rate_above, threshold: 0.1}
    min_samples: 10
    actions:
      - webhook:
          url: %URL%
          secret: s3cret
          retries: 0
  - name: any-latency
    deployment: "*"
    condition: {kind: latency_p99_above, threshold: 250}
`

// TestAlertRulesAPI creates rules as JSON and as YAML, reads, replaces and
// deletes them, and checks every answer hides webhook secrets and bad
// input is a 400 that says where.
func TestAlertRulesAPI(t *testing.T) {
	srv, _ := newAlertServer(t)
	out := mustAlertCall(t, srv, http.StatusOK, "GET", "/api/v1/alerts/rules", "", "")
	if rs := as[[]*alert.Rule](t, out["rules"]); len(rs) != 0 {
		t.Fatalf("rules of a new server: %v", out)
	}

	// One rule as JSON.
	jsonRule := `{"name": "low-auc", "deployment": "weather", "condition": {"kind": "quality_below", "metric": "roc_auc", "threshold": 0.7},
		"for": "30m", "actions": [{"webhook": {"url": "https://hooks.example.com/x", "secret": "topsecret"}}, {"trigger": {}}]}`
	out = mustAlertCall(t, srv, http.StatusCreated, "POST", "/api/v1/alerts/rules", "application/json", jsonRule)
	r := as[*alert.Rule](t, out)
	if r.Name != "low-auc" || r.For.D() != 30*time.Minute || len(r.Actions) != 2 || r.Actions[0].Webhook == nil ||
		r.Actions[0].Webhook.Secret != "redacted" || r.Actions[1].Trigger == nil || r.CreatedAt.IsZero() {
		t.Fatalf("created rule: %+v", out)
	}
	status, out := alertCall(t, srv, "POST", "/api/v1/alerts/rules", "application/json", jsonRule)
	if status != http.StatusBadRequest || out["error_code"] != "RESOURCE_ALREADY_EXISTS" {
		t.Errorf("creating it again: %d %v", status, out)
	}

	// A rules document as YAML: created, and applying it again replaces.
	doc := strings.ReplaceAll(rulesYAML, "%URL%", "https://hooks.example.com/y")
	for range 2 {
		out = mustAlertCall(t, srv, http.StatusOK, "POST", "/api/v1/alerts/rules", "application/yaml; charset=utf-8", doc)
		rs := as[[]*alert.Rule](t, out["rules"])
		if len(rs) != 2 || rs[0].Name != "flights-errors" || rs[0].Actions[0].Webhook.Secret != "redacted" ||
			rs[1].Name != "any-latency" || rs[1].Deployment != "*" {
			t.Fatalf("applied document: %v", out)
		}
	}
	out = mustAlertCall(t, srv, http.StatusOK, "GET", "/api/v1/alerts/rules", "", "")
	rs := as[[]*alert.Rule](t, out["rules"])
	if len(rs) != 3 || rs[0].Name != "any-latency" || rs[1].Name != "flights-errors" || rs[2].Name != "low-auc" {
		t.Fatalf("rules: %v", out)
	}
	for _, r := range rs {
		for _, a := range r.Actions {
			if a.Webhook != nil && a.Webhook.Secret != "redacted" {
				t.Errorf("rule %s shows its secret %q", r.Name, a.Webhook.Secret)
			}
		}
	}
	out = mustAlertCall(t, srv, http.StatusOK, "GET", "/api/v1/alerts/rules/low-auc", "", "")
	if r := as[*alert.Rule](t, out); r.Actions[0].Webhook.Secret != "redacted" || *r.Condition.Threshold != 0.7 {
		t.Errorf("get low-auc: %v", out)
	}

	// Bad YAML names the line and column; nothing of the document is kept.
	bad := "rules:\n  - name: fine\n    deployment: x\n    condition: {kind: error_rate_above, threshold: 0.2}\n  - name: broken\n    deployment: x\n    condition: {kind: nope}\n"
	status, out = alertCall(t, srv, "POST", "/api/v1/alerts/rules", "text/yaml", bad)
	if msg, _ := out["message"].(string); status != http.StatusBadRequest || !strings.HasPrefix(msg, "line 7:") || !strings.Contains(msg, "nope") {
		t.Errorf("bad YAML: %d %v, want 400 naming line 7", status, out)
	}
	if status, _ := alertCall(t, srv, "GET", "/api/v1/alerts/rules/fine", "", ""); status != http.StatusNotFound {
		t.Errorf("a rule of a rejected document was stored: %d", status)
	}
	for _, c := range []struct{ method, path, body, want string }{
		{"POST", "/api/v1/alerts/rules", `{"name": "x", "deployment": "d", "condition": {"kind": "error_rate_above"}}`, "threshold"},
		{"POST", "/api/v1/alerts/rules", `{"name": "x", "deployment": "d", "surprise": 1}`, "surprise"},
		{"POST", "/api/v1/alerts/rules", ``, ""},
		{"PUT", "/api/v1/alerts/rules/other", jsonRule, `named "low-auc" but the path names "other"`},
	} {
		status, out := alertCall(t, srv, c.method, c.path, "application/json", c.body)
		if msg, _ := out["message"].(string); status != http.StatusBadRequest || !strings.Contains(msg, c.want) {
			t.Errorf("%s %s %s: %d %v, want 400 saying %q", c.method, c.path, c.body, status, out, c.want)
		}
	}

	// PUT replaces (and creates); the secret stays hidden.
	replaced := strings.Replace(jsonRule, `"threshold": 0.7`, `"threshold": 0.6`, 1)
	out = mustAlertCall(t, srv, http.StatusOK, "PUT", "/api/v1/alerts/rules/low-auc", "application/json", replaced)
	if r := as[*alert.Rule](t, out); *r.Condition.Threshold != 0.6 || r.Actions[0].Webhook.Secret != "redacted" {
		t.Errorf("put low-auc: %v", out)
	}
	newRule := `{"name": "fresh", "deployment": "d", "condition": {"kind": "dataset_drift"}}`
	mustAlertCall(t, srv, http.StatusOK, "PUT", "/api/v1/alerts/rules/fresh", "application/json", newRule)

	// Delete, then 404s.
	mustAlertCall(t, srv, http.StatusOK, "DELETE", "/api/v1/alerts/rules/fresh", "", "")
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/alerts/rules/fresh"},
		{"DELETE", "/api/v1/alerts/rules/fresh"},
		{"GET", "/api/v1/alerts/al-0000000000000000"},
	} {
		if status, out := alertCall(t, srv, c.method, c.path, "", ""); status != http.StatusNotFound || out["error_code"] != "RESOURCE_DOES_NOT_EXIST" {
			t.Errorf("%s %s: %d %v, want 404", c.method, c.path, status, out)
		}
	}
}

// TestAlertsAPI evaluates windows through the engine, fires and resolves
// alerts, and reads them (filtered) with their webhook deliveries.
func TestAlertsAPI(t *testing.T) {
	srv, e := newAlertServer(t)
	var mu sync.Mutex
	var got []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get(alert.SignatureHeader) == alert.Sign("s3cret", body) {
			got = append(got, r.Header.Get("X-Mloop-Event"))
		}
	}))
	defer hook.Close()
	mustAlertCall(t, srv, http.StatusOK, "POST", "/api/v1/alerts/rules", "application/yaml",
		strings.ReplaceAll(rulesYAML, "%URL%", hook.URL))

	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	win := func(id, deployment string, i int, requests, errors int64, p99 float64) *monitor.WindowSummary {
		return &monitor.WindowSummary{ID: id, Deployment: deployment, ModelVersion: "m/1", Model: "m", Version: 1,
			Start: t0.Add(time.Duration(i) * time.Hour), End: t0.Add(time.Duration(i+1) * time.Hour),
			Rows: requests, Requests: requests, Errors: errors, LatencyP99: p99}
	}
	ctx := context.Background()
	for _, w := range []*monitor.WindowSummary{
		win("mw-1", "flights", 0, 100, 50, 10), // flights-errors fires
		win("mw-2", "weather", 0, 100, 0, 900), // any-latency fires on weather
		win("mw-3", "flights", 1, 100, 0, 10),  // flights-errors resolves
	} {
		if err := e.Evaluate(ctx, w); err != nil {
			t.Fatalf("evaluate %s: %v", w.ID, err)
		}
	}
	out := mustAlertCall(t, srv, http.StatusOK, "GET", "/api/v1/alerts", "", "")
	all := as[[]*alert.Alert](t, out["alerts"])
	if len(all) != 2 {
		t.Fatalf("alerts: %v, want 2", out)
	}
	out = mustAlertCall(t, srv, http.StatusOK, "GET", "/api/v1/alerts?deployment=flights", "", "")
	fl := as[[]*alert.Alert](t, out["alerts"])
	if len(fl) != 1 || fl[0].Rule != "flights-errors" || fl[0].State != alert.StateResolved || fl[0].Value != 0.5 ||
		fl[0].ResolvedBy != "mw-3" || len(fl[0].Windows) != 1 || fl[0].Windows[0] != "mw-1" {
		t.Fatalf("flights alerts: %v", out)
	}
	out = mustAlertCall(t, srv, http.StatusOK, "GET", "/api/v1/alerts?state=firing", "", "")
	if f := as[[]*alert.Alert](t, out["alerts"]); len(f) != 1 || f[0].Rule != "any-latency" || f[0].Deployment != "weather" || f[0].Value != 900 {
		t.Errorf("firing alerts: %v", out)
	}
	out = mustAlertCall(t, srv, http.StatusOK, "GET", "/api/v1/alerts?rule=any-latency&state=resolved", "", "")
	if f := as[[]*alert.Alert](t, out["alerts"]); len(f) != 0 {
		t.Errorf("resolved any-latency alerts: %v", out)
	}
	out = mustAlertCall(t, srv, http.StatusOK, "GET", "/api/v1/alerts?limit=1", "", "")
	if f := as[[]*alert.Alert](t, out["alerts"]); len(f) != 1 {
		t.Errorf("limit=1: %v", out)
	}
	for _, q := range []string{"state=open", "limit=0", "limit=x"} {
		if status, out := alertCall(t, srv, "GET", "/api/v1/alerts?"+q, "", ""); status != http.StatusBadRequest {
			t.Errorf("?%s: %d %v, want 400", q, status, out)
		}
	}

	// The firing webhook was delivered, signed; its delivery is recorded.
	deadline := time.Now().Add(30 * time.Second)
	var detail AlertDetail
	for {
		detail = as[AlertDetail](t, mustAlertCall(t, srv, http.StatusOK, "GET", "/api/v1/alerts/"+fl[0].ID, "", ""))
		if len(detail.Deliveries) > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no delivery recorded for %s after 30s: %+v", fl[0].ID, detail)
		}
		time.Sleep(20 * time.Millisecond)
	}
	d := detail.Deliveries[0]
	if detail.Alert.ID != fl[0].ID || d.Kind != "webhook" || d.Event != alert.StateFiring || d.Outcome != alert.OutcomeOK || d.StatusCode != 200 {
		t.Errorf("alert detail: %+v, delivery %+v", detail.Alert, d)
	}
	mu.Lock()
	if len(got) != 1 || got[0] != "firing" {
		t.Errorf("webhook received %v, want one signed firing post", got)
	}
	mu.Unlock()
}

// TestAlertsAPIWithoutEngine answers 501 on every alert route of a
// server without an alert engine.
func TestAlertsAPIWithoutEngine(t *testing.T) {
	srv, _ := newTestServer(t)
	for _, c := range []struct{ method, path string }{
		{"GET", "/api/v1/alerts/rules"}, {"POST", "/api/v1/alerts/rules"}, {"GET", "/api/v1/alerts/rules/x"},
		{"PUT", "/api/v1/alerts/rules/x"}, {"DELETE", "/api/v1/alerts/rules/x"}, {"GET", "/api/v1/alerts"},
		{"GET", "/api/v1/alerts/al-1"},
	} {
		if status, out := alertCall(t, srv, c.method, c.path, "application/json", "{}"); status != http.StatusNotImplemented || out["error_code"] != "NOT_IMPLEMENTED" {
			t.Errorf("%s %s: %d %v, want 501", c.method, c.path, status, out)
		}
	}
}

// FuzzAlertRuleBody posts arbitrary rule bodies, as JSON and as YAML: the
// answer is a rule, a rules list or a 4xx error, never a server error.
func FuzzAlertRuleBody(f *testing.F) {
	f.Add([]byte(`{"name": "a", "deployment": "d", "condition": {"kind": "error_rate_above", "threshold": 0.1}}`), false)
	f.Add([]byte(strings.ReplaceAll(rulesYAML, "%URL%", "https://h.example.com")), true)
	f.Add([]byte("rules:\n  - name: x\n    condition: {kind: nope}\n"), true)
	f.Add([]byte(`{"name": "b", "deployment": "*", "for": "1h", "actions": [{"trigger": {}}]}`), false)
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(f.TempDir(), "alerts.db"))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { db.Close() })
	e := alert.NewEngine(sqlstore.NewAlertStore(db), nil, alert.Config{})
	if err := e.Open(ctx); err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close(context.Background()) })
	_, s := newTestServer(f, func(s *Server) { s.Alerts = e })
	h := s.Handler()
	f.Fuzz(func(t *testing.T, body []byte, yaml bool) {
		req := httptest.NewRequest("POST", "/api/v1/alerts/rules", strings.NewReader(string(body)))
		if yaml {
			req.Header.Set("Content-Type", "application/yaml")
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%q (yaml %t): %d %s", body, yaml, rec.Code, rec.Body)
		}
		if rec.Code < 300 {
			var out map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
				t.Fatalf("%q: answer is not JSON: %s", body, rec.Body)
			}
			if strings.Contains(rec.Body.String(), `"secret":"`) && !strings.Contains(rec.Body.String(), `"secret":"redacted"`) {
				t.Fatalf("%q: answer shows a secret: %s", body, rec.Body)
			}
		}
	})
}
