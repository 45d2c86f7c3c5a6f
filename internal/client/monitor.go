package client

// Monitoring and feedback (docs/monitoring.md): the windows a server's
// monitor saved for a deployment, its open window, the live quality of its
// model versions, and ground-truth labels posted by request id.

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/httpapi"
	"github.com/mloop/mloop/internal/monitor"
)

// monitoringPath returns /api/v1/monitoring/{deployment}/{what}.
func monitoringPath(deployment, what string) string {
	return "/api/v1/monitoring/" + url.PathEscape(deployment) + "/" + what
}

// windowsAnswer is the body of the window listings.
type windowsAnswer struct {
	Windows []*monitor.WindowSummary `json:"windows"`
}

// MonitoringWindows returns the deployment's saved windows matching f,
// newest first (f.Oldest is not sent: the server lists newest first).
// ENOTIMPLEMENTED when the server does not monitor.
func (c *Client) MonitoringWindows(ctx context.Context, deployment string, f monitor.WindowFilter) ([]*monitor.WindowSummary, error) {
	q := url.Values{}
	if !f.Since.IsZero() {
		q.Set("since", f.Since.UTC().Format(time.RFC3339Nano))
	}
	if !f.Until.IsZero() {
		q.Set("until", f.Until.UTC().Format(time.RFC3339Nano))
	}
	if f.ModelVersion != "" {
		q.Set("model_version", f.ModelVersion)
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.WithProfiles {
		q.Set("profiles", "true")
	}
	var out windowsAnswer
	if _, err := c.callJSON(ctx, http.MethodGet, monitoringPath(deployment, "windows"), q, nil, &out); err != nil {
		return nil, fmt.Errorf("list monitoring windows of %s: %w", deployment, err)
	}
	return out.Windows, nil
}

// CurrentWindow returns the deployment's open window, one summary per model
// version (none when no window is open).
func (c *Client) CurrentWindow(ctx context.Context, deployment string) ([]*monitor.WindowSummary, error) {
	var out windowsAnswer
	if _, err := c.callJSON(ctx, http.MethodGet, monitoringPath(deployment, "current"), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get the open monitoring window of %s: %w", deployment, err)
	}
	return out.Windows, nil
}

// ModelQuality returns the live quality of each model version the
// deployment served (Quality nil for one no label joined yet).
func (c *Client) ModelQuality(ctx context.Context, deployment string) ([]httpapi.ModelVersionQuality, error) {
	var out struct {
		ModelVersions []httpapi.ModelVersionQuality `json:"model_versions"`
	}
	if _, err := c.callJSON(ctx, http.MethodGet, monitoringPath(deployment, "quality"), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get the quality of %s: %w", deployment, err)
	}
	return out.ModelVersions, nil
}

// PushFeedback posts labels in one request (at most
// httpapi.MaxFeedbackLabels) and returns their counts by outcome.
// EINVALID names a bad label; ENOTIMPLEMENTED when the server does not
// monitor.
func (c *Client) PushFeedback(ctx context.Context, labels []monitor.Label) (monitor.FeedbackResult, error) {
	items := make([]httpapi.FeedbackLabel, len(labels))
	for i, l := range labels {
		if math.IsNaN(l.Value) || math.IsInf(l.Value, 0) {
			return monitor.FeedbackResult{}, mloop.Errorf(mloop.EINVALID, "push feedback: label %d (request %s) is %v: give a finite number", i, l.RequestID, l.Value)
		}
		items[i] = httpapi.FeedbackLabel{RequestID: l.RequestID, Label: strconv.AppendFloat(nil, l.Value, 'g', -1, 64)}
		if !l.Time.IsZero() {
			items[i].Time = l.Time.UTC().Format(time.RFC3339Nano)
		}
	}
	var out monitor.FeedbackResult
	if _, err := c.callJSON(ctx, http.MethodPost, "/api/v1/feedback", nil, map[string]any{"labels": items}, &out); err != nil {
		return monitor.FeedbackResult{}, fmt.Errorf("push feedback: %w", err)
	}
	return out, nil
}

// PostObservations posts one batch of encoded observations (what
// monitor.Forwarder builds) to the server's monitor. EINVALID when the
// server cannot read the batch, ETOOLARGE when it is over
// monitor.MaxObservationsBody, ENOTIMPLEMENTED when the server does not
// monitor, EUNAVAILABLE when it cannot be reached.
func (c *Client) PostObservations(ctx context.Context, body []byte) error {
	resp, err := c.send(ctx, request{method: http.MethodPost, path: "/api/v1/monitoring/observations",
		body: bytes.NewReader(body), size: int64(len(body)), contentType: monitor.ObservationsContentType})
	if err != nil {
		return fmt.Errorf("forward observations: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}

var _ monitor.Sink = (*Client)(nil)
