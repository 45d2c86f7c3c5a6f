// Package router is the serving data plane: it follows the control plane's
// deployment State, loads each revision's model (native XGBoost, or a
// supervised process), and answers prediction requests over the Open
// Inference Protocol, KServe V1 and MLflow scoring. It splits traffic
// between a primary and a canary, mirrors it to a shadow (whose answers are
// compared with the primary's and discarded), honours a header that pins a
// request to a revision, logs payloads, exports Prometheus metrics, and
// rolls a failing canary back on its own.
//
// Model switches drop no request: a new revision is loaded and warmed
// before the routing table is swapped atomically; the old one is closed
// once its in-flight requests have drained.
package router

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/payloadlog"
)

// Config adjusts a Router. Zero values take the defaults.
type Config struct {
	// CacheDir is where model files are fetched to (required).
	CacheDir string
	// Wait is how long one long poll of the control plane may wait for a
	// change (default 30s).
	Wait time.Duration
	// RetryInterval is the pause after a failed poll (default 1s).
	RetryInterval time.Duration
	// CheckInterval is how often canaries are judged (default 1s).
	CheckInterval time.Duration
	// DrainTimeout bounds how long a replaced revision waits for its
	// in-flight requests before it is closed (default 30s).
	DrainTimeout time.Duration
	// Payloads, when set, receives payload records; nil logs nothing.
	Payloads *payloadlog.Logger
	// Registerer receives the router's metrics; nil registers nothing.
	Registerer prometheus.Registerer
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// ProcessOutput receives process runtimes' output; nil discards it.
	ProcessOutput io.Writer
}

// Router serves the deployments of a control plane.
type Router struct {
	cp  deploy.ControlPlane
	cfg Config
}

// New returns a Router following cp. Call Open to start it.
func New(cp deploy.ControlPlane, cfg Config) *Router {
	return &Router{cp: cp, cfg: cfg}
}

// Open loads the current state (a deployment that fails to load is
// reported in its status and retried, it does not fail Open) and starts
// following changes and judging canaries in the background until Close.
func (r *Router) Open(ctx context.Context) error { return nil }

// Close stops following, drains in-flight requests (up to ctx) and stops
// every runtime.
func (r *Router) Close(ctx context.Context) error { return nil }

// Sync fetches the current state without waiting and applies it; it
// returns once every revision in it is loaded (or failed to load).
func (r *Router) Sync(ctx context.Context) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "serving is being built")
}

// Handler serves /v2/…, /v1/models/… and /serving-endpoints/{name}/invocations.
func (r *Router) Handler() http.Handler { return http.NotFoundHandler() }

// RevisionStatus describes one loaded (or loading) revision.
type RevisionStatus struct {
	Role     string `json:"role"`
	Revision int64  `json:"revision"`
	Model    string `json:"model"`
	Version  int64  `json:"version"`
	Flavor   string `json:"flavor"`
	Percent  int    `json:"percent"`
	// State is loading, ready or failed.
	State string `json:"state"`
	// Error says why a revision failed to load.
	Error string `json:"error,omitempty"`
	// Requests, Errors and latency figures over the rollback window.
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	P50Millis  float64 `json:"p50_ms"`
	P99Millis  float64 `json:"p99_ms"`
	InFlight   int64   `json:"in_flight"`
	// Agreement is, for a shadow, the share of compared rows whose
	// prediction agreed with the primary's; MeanAbsDiff the mean
	// absolute difference of their outputs.
	Compared    int64   `json:"compared,omitempty"`
	Agreement   float64 `json:"agreement,omitempty"`
	MeanAbsDiff float64 `json:"mean_abs_diff,omitempty"`
	// ShadowDropped counts copies not sent because the shadow was behind.
	ShadowDropped int64 `json:"shadow_dropped,omitempty"`
}

// DeploymentStatus is what this replica serves of one deployment.
type DeploymentStatus struct {
	Name       string           `json:"name"`
	Generation int64            `json:"generation"`
	Ready      bool             `json:"ready"`
	Revisions  []RevisionStatus `json:"revisions"`
}

// Status returns what this replica serves of the named deployment.
func (r *Router) Status(name string) (*DeploymentStatus, bool) { return nil, false }

// Statuses returns every deployment this replica serves, by name.
func (r *Router) Statuses() []*DeploymentStatus { return nil }
