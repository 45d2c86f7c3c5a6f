package client

// Deployments and the serving control plane (docs/deployments-api.md).
// *Client implements deploy.ControlPlane, so that an mloop serve replica
// follows a remote server exactly as the server's own data plane follows
// its in-process deploy.Service.

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/modelcheck"
	"github.com/mloop/mloop/internal/serving/router"
)

var _ deploy.ControlPlane = (*Client)(nil)

// stateTimeoutMargin is how much longer than its wait a long poll of the
// serving state may take before the client gives up on the server (a
// variable for tests).
var stateTimeoutMargin = 30 * time.Second

// DeploymentDetails is a deployment with its newest events and what the
// server's own data plane serves of it (nil when the server serves no
// models, or has not loaded this deployment yet).
type DeploymentDetails struct {
	Deployment *deploy.Deployment       `json:"deployment"`
	Events     []*deploy.Event          `json:"events"`
	Serving    *router.DeploymentStatus `json:"serving"`
}

// deploymentPath returns /api/v1/deployments/{name} followed by suffix.
func deploymentPath(name, suffix string) string {
	return "/api/v1/deployments/" + url.PathEscape(name) + suffix
}

// deploymentAnswer is the body of the calls that change a deployment.
type deploymentAnswer struct {
	Deployment *deploy.Deployment `json:"deployment"`
}

// changeDeployment sends a change of deployment name (in, the body, to
// method path) and returns the deployment answered; what names the change
// in the error ("update").
func (c *Client) changeDeployment(ctx context.Context, what, name, method, path string, in any) (*deploy.Deployment, error) {
	var out deploymentAnswer
	if _, err := c.callJSON(ctx, method, path, nil, in, &out); err != nil {
		return nil, fmt.Errorf("%s deployment %s: %w", what, name, err)
	}
	return out.Deployment, nil
}

// CreateDeployment creates deployment name serving spec: EEXISTS when the
// name is taken, EINVALID for a bad spec, ENOTFOUND for a model version
// that does not exist.
func (c *Client) CreateDeployment(ctx context.Context, name string, spec deploy.Spec) (*deploy.Deployment, error) {
	in := map[string]any{"name": name, "spec": spec}
	return c.changeDeployment(ctx, "create", name, http.MethodPost, "/api/v1/deployments", in)
}

// GetDeployment returns a deployment with its newest events and the
// server's serving status of it; ENOTFOUND for an unknown name.
func (c *Client) GetDeployment(ctx context.Context, name string) (*DeploymentDetails, error) {
	var out DeploymentDetails
	if _, err := c.callJSON(ctx, http.MethodGet, deploymentPath(name, ""), nil, nil, &out); err != nil {
		return nil, fmt.Errorf("get deployment %s: %w", name, err)
	}
	if out.Deployment == nil {
		return nil, fmt.Errorf("get deployment %s: the answer holds no deployment", name)
	}
	return &out, nil
}

// ListDeployments returns every deployment by name.
func (c *Client) ListDeployments(ctx context.Context) ([]*deploy.Deployment, error) {
	var out struct {
		Deployments []*deploy.Deployment `json:"deployments"`
	}
	if _, err := c.callJSON(ctx, http.MethodGet, "/api/v1/deployments", nil, nil, &out); err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	return out.Deployments, nil
}

// UpdateDeployment applies u to the deployment atomically and returns it.
func (c *Client) UpdateDeployment(ctx context.Context, name string, u deploy.Update) (*deploy.Deployment, error) {
	return c.changeDeployment(ctx, "update", name, http.MethodPatch, deploymentPath(name, ""), u)
}

// PromoteDeployment makes the canary the primary; ECONFLICT when there is
// no canary.
func (c *Client) PromoteDeployment(ctx context.Context, name string) (*deploy.Deployment, error) {
	return c.changeDeployment(ctx, "promote", name, http.MethodPost, deploymentPath(name, "/promote"), struct{}{})
}

// RollbackDeployment removes the canary, or returns the primary to the
// model version it served before (ECONFLICT when there was none).
func (c *Client) RollbackDeployment(ctx context.Context, name string, req deploy.RollbackRequest) (*deploy.Deployment, error) {
	return c.changeDeployment(ctx, "roll back", name, http.MethodPost, deploymentPath(name, "/rollback"), req)
}

// Rollback is RollbackDeployment under the name deploy.ControlPlane uses:
// the data plane of an mloop serve replica rolls failing canaries back
// through it.
func (c *Client) Rollback(ctx context.Context, name string, req deploy.RollbackRequest) (*deploy.Deployment, error) {
	return c.RollbackDeployment(ctx, name, req)
}

// DeleteDeployment removes a deployment; ENOTFOUND for an unknown name.
func (c *Client) DeleteDeployment(ctx context.Context, name string) error {
	if _, err := c.callJSON(ctx, http.MethodDelete, deploymentPath(name, ""), nil, nil, nil); err != nil {
		return fmt.Errorf("delete deployment %s: %w", name, err)
	}
	return nil
}

// limitQuery returns ?limit=N, or nothing for limit 0.
func limitQuery(limit int) url.Values {
	if limit <= 0 {
		return nil
	}
	return url.Values{"limit": {strconv.Itoa(limit)}}
}

// DeploymentEvents returns a deployment's events, newest first, at most
// limit (0: all).
func (c *Client) DeploymentEvents(ctx context.Context, name string, limit int) ([]*deploy.Event, error) {
	var out struct {
		Events []*deploy.Event `json:"events"`
	}
	if _, err := c.callJSON(ctx, http.MethodGet, deploymentPath(name, "/events"), limitQuery(limit), nil, &out); err != nil {
		return nil, fmt.Errorf("events of deployment %s: %w", name, err)
	}
	return out.Events, nil
}

// DeploymentHistory returns a deployment's past generations, newest first,
// at most limit (0: all).
func (c *Client) DeploymentHistory(ctx context.Context, name string, limit int) ([]*deploy.Deployment, error) {
	var out struct {
		Deployments []*deploy.Deployment `json:"deployments"`
	}
	if _, err := c.callJSON(ctx, http.MethodGet, deploymentPath(name, "/history"), limitQuery(limit), nil, &out); err != nil {
		return nil, fmt.Errorf("history of deployment %s: %w", name, err)
	}
	return out.Deployments, nil
}

// State returns the serving state. When etag is the current state's ETag,
// the server waits up to wait for a change first (a long poll); the call
// gives up 30 seconds after wait if the server does not answer.
func (c *Client) State(ctx context.Context, etag string, wait time.Duration) (*deploy.State, error) {
	q := url.Values{}
	if etag != "" {
		q.Set("etag", etag)
	}
	if wait < 0 {
		wait = 0
	}
	q.Set("wait", wait.String())
	ctx, cancel := context.WithTimeout(ctx, wait+stateTimeoutMargin)
	defer cancel()
	var st deploy.State
	if _, err := c.callJSON(ctx, http.MethodGet, "/api/v1/serving/state", q, nil, &st); err != nil {
		return nil, fmt.Errorf("serving state: %w", err)
	}
	return &st, nil
}

// ModelFilesLimits bound what FetchModel accepts from the server.
var ModelFilesLimits = modelcheck.DefaultLimits

// FetchModel downloads the files of a model version into dir (which exists
// and is empty), checking every name as model uploads are checked;
// ENOTFOUND for an unknown version. A failed download may leave files in
// dir: the caller removes it.
func (c *Client) FetchModel(ctx context.Context, model string, version int64, dir string) error {
	p := "/api/v1/models/" + url.PathEscape(model) + "/versions/" + strconv.FormatInt(version, 10) + "/files"
	resp, err := c.send(ctx, request{method: http.MethodGet, path: p})
	if err != nil {
		return fmt.Errorf("fetch model %s/%d: %w", model, version, err)
	}
	defer resp.Body.Close()
	if _, err := modelcheck.ExtractTar(ctx, resp.Body, dir, ModelFilesLimits); err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return fmt.Errorf("fetch model %s/%d: %w", model, version, ctxErr)
		}
		// A connection cut mid-archive shows as a truncated tar.
		return fmt.Errorf("fetch model %s/%d: %w", model, version, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return nil
}
