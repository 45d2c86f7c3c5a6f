package client

// Alert rules and alerts (docs/alerts.md): rules are sent one at a time as
// JSON, answered with their webhook secrets redacted; alerts are read with
// their delivery attempts.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/httpapi"
)

// alertRulePath returns /api/v1/alerts/rules/{name}.
func alertRulePath(name string) string {
	return "/api/v1/alerts/rules/" + url.PathEscape(name)
}

// AlertRules returns every alert rule by name, secrets redacted.
// ENOTIMPLEMENTED when the server does not evaluate alerts.
func (c *Client) AlertRules(ctx context.Context) ([]*alert.Rule, error) {
	var out struct {
		Rules []*alert.Rule `json:"rules"`
	}
	if _, err := c.callJSON(ctx, http.MethodGet, "/api/v1/alerts/rules", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list alert rules: %w", err)
	}
	return out.Rules, nil
}

// AlertRule returns one alert rule, secrets redacted; ENOTFOUND when there
// is none.
func (c *Client) AlertRule(ctx context.Context, name string) (*alert.Rule, error) {
	var out alert.Rule
	if _, err := c.callJSON(ctx, http.MethodGet, alertRulePath(name), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get alert rule %s: %w", name, err)
	}
	return &out, nil
}

// CreateAlertRule creates a rule; EEXISTS when its name is taken. It
// returns the stored rule, secrets redacted.
func (c *Client) CreateAlertRule(ctx context.Context, r *alert.Rule) (*alert.Rule, error) {
	var out alert.Rule
	if _, err := c.callJSON(ctx, http.MethodPost, "/api/v1/alerts/rules", nil, r, &out); err != nil {
		return nil, fmt.Errorf("create alert rule %s: %w", r.Name, err)
	}
	return &out, nil
}

// PutAlertRule creates r or replaces the rule of its name, and returns the
// stored rule, secrets redacted.
func (c *Client) PutAlertRule(ctx context.Context, r *alert.Rule) (*alert.Rule, error) {
	var out alert.Rule
	if _, err := c.callJSON(ctx, http.MethodPut, alertRulePath(r.Name), nil, r, &out); err != nil {
		return nil, fmt.Errorf("put alert rule %s: %w", r.Name, err)
	}
	return &out, nil
}

// ApplyAlertRules sends a YAML rules document as it is: the server creates
// or replaces each of its rules and returns them, secrets redacted. A bad
// document is EINVALID with the line and column, and changes nothing.
func (c *Client) ApplyAlertRules(ctx context.Context, yaml []byte) ([]*alert.Rule, error) {
	resp, err := c.send(ctx, request{method: http.MethodPost, path: "/api/v1/alerts/rules",
		body: bytes.NewReader(yaml), size: int64(len(yaml)), contentType: "application/yaml"})
	if err != nil {
		return nil, fmt.Errorf("apply alert rules: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		Rules []*alert.Rule `json:"rules"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, fmt.Errorf("apply alert rules: decode the answer: %w", err)
	}
	return out.Rules, nil
}

// DeleteAlertRule deletes a rule and its states (its alerts stay);
// ENOTFOUND when there is none.
func (c *Client) DeleteAlertRule(ctx context.Context, name string) error {
	if _, err := c.callJSON(ctx, http.MethodDelete, alertRulePath(name), nil, nil, nil); err != nil {
		return fmt.Errorf("delete alert rule %s: %w", name, err)
	}
	return nil
}

// Alerts returns the alerts matching f, newest first.
func (c *Client) Alerts(ctx context.Context, f alert.AlertFilter) ([]*alert.Alert, error) {
	q := url.Values{}
	if f.Rule != "" {
		q.Set("rule", f.Rule)
	}
	if f.Deployment != "" {
		q.Set("deployment", f.Deployment)
	}
	if f.State != "" {
		q.Set("state", string(f.State))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	var out struct {
		Alerts []*alert.Alert `json:"alerts"`
	}
	if _, err := c.callJSON(ctx, http.MethodGet, "/api/v1/alerts", q, nil, &out); err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out.Alerts, nil
}

// Alert returns an alert with its deliveries, oldest first; ENOTFOUND when
// there is none.
func (c *Client) Alert(ctx context.Context, id string) (*httpapi.AlertDetail, error) {
	var out httpapi.AlertDetail
	if _, err := c.callJSON(ctx, http.MethodGet, "/api/v1/alerts/"+url.PathEscape(id), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get alert %s: %w", id, err)
	}
	return &out, nil
}
