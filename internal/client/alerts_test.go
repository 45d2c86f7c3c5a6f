package client

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/httpapi"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/sqlstore"
)

// TestAlertCalls manages rules and reads alerts through the client against
// the real API with an alert engine on SQLite.
func TestAlertCalls(t *testing.T) {
	ctx := context.Background()
	db, err := sqlstore.Open(ctx, filepath.Join(t.TempDir(), "alerts.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	e := alert.NewEngine(sqlstore.NewAlertStore(db), nil, alert.Config{Logger: logger})
	if err := e.Open(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close(context.Background()) })
	srv := httptest.NewServer((&httpapi.Server{Alerts: e, Logger: logger, Version: "test"}).Handler())
	t.Cleanup(srv.Close)
	c := New(srv.URL, nil)

	rs, err := alert.ParseRules([]byte(`rules:
  - name: errs
    deployment: flights
    condition: {kind: error_rate_above, threshold: 0.2}
    actions: [{webhook: {url: "https://hooks.example.com/a", secret: hush}}]
`))
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.CreateAlertRule(ctx, rs[0])
	if err != nil || got.Name != "errs" || got.Actions[0].Webhook.Secret != "redacted" || got.CreatedAt.IsZero() {
		t.Fatalf("create: %+v %v", got, err)
	}
	if _, err := c.CreateAlertRule(ctx, rs[0]); mloop.ErrorCode(err) != mloop.EEXISTS {
		t.Errorf("create again: %v, want EEXISTS", err)
	}
	th := 0.4
	rs[0].Condition.Threshold = &th
	if got, err = c.PutAlertRule(ctx, rs[0]); err != nil || *got.Condition.Threshold != 0.4 {
		t.Fatalf("put: %+v %v", got, err)
	}
	// The stored secret is the real one, though never shown.
	if stored, err := e.GetRule(ctx, "errs"); err != nil || stored.Actions[0].Webhook.Secret != "hush" {
		t.Errorf("stored rule: %+v %v", stored, err)
	}
	applied, err := c.ApplyAlertRules(ctx, []byte("rules:\n  - name: slow\n    deployment: \"*\"\n    condition: {kind: latency_p99_above, threshold: 100}\n"))
	if err != nil || len(applied) != 1 || applied[0].Name != "slow" {
		t.Fatalf("apply: %+v %v", applied, err)
	}
	_, err = c.ApplyAlertRules(ctx, []byte("rules:\n  - name: bad\n    deployment: x\n    condition: {kind: error_rate_above, threshold: 2}\n"))
	if mloop.ErrorCode(err) != mloop.EINVALID || !strings.Contains(err.Error(), "line 4:") {
		t.Errorf("apply a bad document: %v, want EINVALID at line 4", err)
	}
	all, err := c.AlertRules(ctx)
	if err != nil || len(all) != 2 || all[0].Name != "errs" || all[1].Name != "slow" {
		t.Fatalf("rules: %+v %v", all, err)
	}
	if r, err := c.AlertRule(ctx, "slow"); err != nil || r.Deployment != "*" {
		t.Errorf("rule slow: %+v %v", r, err)
	}

	t0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	w := &monitor.WindowSummary{ID: "mw-x", Deployment: "flights", ModelVersion: "m/2", Model: "m", Version: 2,
		Start: t0, End: t0.Add(time.Hour), Rows: 10, Requests: 10, Errors: 5, LatencyP99: 20}
	if err := e.Evaluate(ctx, w); err != nil {
		t.Fatal(err)
	}
	as, err := c.Alerts(ctx, alert.AlertFilter{Deployment: "flights", State: alert.StateFiring, Limit: 5})
	if err != nil || len(as) != 1 || as[0].Rule != "errs" || as[0].ModelVersion != "m/2" || as[0].Value != 0.5 {
		t.Fatalf("alerts: %+v %v", as, err)
	}
	if none, err := c.Alerts(ctx, alert.AlertFilter{Rule: "slow"}); err != nil || len(none) != 0 {
		t.Errorf("alerts of slow: %+v %v", none, err)
	}
	detail, err := c.Alert(ctx, as[0].ID)
	if err != nil || detail.Alert.ID != as[0].ID || detail.Alert.Windows[0] != "mw-x" {
		t.Fatalf("alert: %+v %v", detail, err)
	}
	if _, err := c.Alert(ctx, "al-ffffffffffffffff"); mloop.ErrorCode(err) != mloop.ENOTFOUND {
		t.Errorf("unknown alert: %v, want ENOTFOUND", err)
	}

	if err := c.DeleteAlertRule(ctx, "errs"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeleteAlertRule(ctx, "errs"); mloop.ErrorCode(err) != mloop.ENOTFOUND {
		t.Errorf("delete again: %v, want ENOTFOUND", err)
	}
	if _, err := c.AlertRule(ctx, "errs"); mloop.ErrorCode(err) != mloop.ENOTFOUND {
		t.Errorf("deleted rule: %v, want ENOTFOUND", err)
	}
	// Its alert stays as history, resolved.
	if as, err := c.Alerts(ctx, alert.AlertFilter{Rule: "errs"}); err != nil || len(as) != 1 || as[0].State != alert.StateResolved {
		t.Errorf("alerts of the deleted rule: %+v %v", as, err)
	}
}
