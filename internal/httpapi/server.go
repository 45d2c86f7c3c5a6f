// Package httpapi is mloop's HTTP surface: one route table (routes.go) for the
// MLflow REST API (under /api/2.0/mlflow/ and /ajax-api/2.0/mlflow/), MLflow's
// proxied artifact API (/api/2.0/mlflow-artifacts/), health endpoints and
// mloop's own /api/v1 (dataset versions and their blobs,
// docs/datasets-api.md; pipeline runs, triggers, events and lineage,
// docs/pipelines-api.md; deployments, docs/deployments-api.md; monitoring,
// docs/monitoring.md; alert rules and alerts, docs/alerts.md), Prometheus
// /metrics, and in front of them all the serving data plane's protocol
// routes (Server.Serving). Handlers only decode, call a domain service and
// encode: business rules live in the domain packages.
//
// Errors travel as *mloop.Error and are mapped once, in writeError, to an HTTP
// status and MLflow's {"error_code": …, "message": …} body.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/monitor"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/router"
	"github.com/mloop/mloop/internal/story"
	"github.com/mloop/mloop/internal/tracking"
)

// DefaultMaxBodyBytes is the largest request body accepted by JSON endpoints
// (artifact uploads stream and are not limited by it).
const DefaultMaxBodyBytes = 16 << 20

// Server serves the HTTP API. Fill its fields, then call Handler.
type Server struct {
	Tracking *tracking.Service
	// LoggedModels serves MLflow 3 logged models.
	LoggedModels *tracking.LoggedModels
	Registry     *registry.Service
	Artifacts    *artifact.Store
	// Datasets serves mloop's dataset versions and blobs under /api/v1;
	// when nil those endpoints answer NOT_IMPLEMENTED.
	Datasets *dataset.Service
	// Pipelines serves pipeline runs, their logs, triggers, events and
	// lineage under /api/v1; when nil those endpoints answer
	// NOT_IMPLEMENTED.
	Pipelines *pipeline.Service
	// Deployments serves deployments, their events and history, the
	// serving State and model files under /api/v1; when nil those
	// endpoints answer NOT_IMPLEMENTED.
	Deployments *deploy.Service
	// Serving, when set, is the serving data plane: it answers /v2, /v2/…,
	// /v1/models/… and /serving-endpoints/… directly, before the API's
	// routing, body limits and request log (the hot path). When nil those
	// paths answer 404 with a message saying the server serves no models.
	Serving http.Handler
	// ServingStatus, when set, reports what this server's data plane
	// serves of a deployment, for GET /api/v1/deployments/{name}.
	ServingStatus func(name string) (*router.DeploymentStatus, bool)
	// Monitor, when set, answers /api/v1/monitoring/… and takes feedback
	// at /api/v1/feedback; when nil those endpoints answer NOT_IMPLEMENTED.
	Monitor *monitor.Monitor
	// Alerts, when set, serves alert rules and alerts under
	// /api/v1/alerts (docs/alerts.md); when nil those endpoints answer
	// NOT_IMPLEMENTED.
	Alerts *alert.Engine
	// Story, when set, answers GET /api/v1/deployments/{name}/story
	// (docs/story.md); when nil it answers NOT_IMPLEMENTED.
	Story *story.Service
	// Metrics, when set, answers GET /metrics (Prometheus text format).
	Metrics http.Handler
	// Done, when closed, ends long-lived answers (followed pipeline logs)
	// so that a graceful shutdown need not wait for them; nil never ends
	// them early.
	Done <-chan struct{}
	// Ready reports whether the server can serve (database reachable); /readyz calls it.
	Ready func(ctx context.Context) error
	// Logger defaults to slog.Default(). Each request is logged at debug level.
	Logger *slog.Logger
	// MaxBodyBytes limits JSON request bodies; DefaultMaxBodyBytes when zero.
	MaxBodyBytes int64
	// Version is reported by /version and /api/2.0/mlflow/... server info.
	Version string
	// DeploymentsTarget is the URL of the MLflow AI gateway (deployments
	// server) that the web UI's gateway-proxy endpoint forwards to, as
	// MLflow's MLFLOW_DEPLOYMENTS_TARGET; empty means no gateway.
	DeploymentsTarget string
}

// handlerFunc is a handler that may fail; adapt turns its error into a response.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handler returns the server's http.Handler with every route registered.
func (s *Server) Handler() http.Handler {
	if s.Logger == nil {
		s.Logger = slog.Default()
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = DefaultMaxBodyBytes
	}
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		h := s.adapt(rt.handler)
		for _, prefix := range rt.prefixes {
			mux.Handle(rt.method+" "+prefix+rt.path, h)
		}
	}
	mux.Handle("/", s.adapt(func(w http.ResponseWriter, r *http.Request) error {
		if isServingPath(r.URL.Path) {
			return mloop.Errorf(ENDPOINT_NOT_FOUND, "No API endpoint for %s %s: this server does not serve models (it runs the control plane only); send predictions to an mloop serve replica, or start the server with --serving.", r.Method, r.URL.Path)
		}
		return mloop.Errorf(ENDPOINT_NOT_FOUND, "No API endpoint for %s %s.", r.Method, r.URL.Path)
	}))
	api := s.logRequests(s.rejectUnsafeArtifactPaths(mux))
	if s.Serving == nil {
		return api
	}
	serving := s.Serving
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isServingPath(r.URL.Path) {
			serving.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

// ENDPOINT_NOT_FOUND is the MLflow error code for an unknown path; it is only
// produced by the router, so it is not one of mloop's error kinds.
const ENDPOINT_NOT_FOUND = "endpoint_not_found"

// adapt converts a handlerFunc into an http.Handler, writing its error.
func (s *Server) adapt(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.writeError(w, r, err)
		}
	})
}

// errorStatus maps each error kind to MLflow's error_code and an HTTP status.
var errorStatus = map[string]struct {
	code   string
	status int
}{
	mloop.ENOTFOUND:        {"RESOURCE_DOES_NOT_EXIST", http.StatusNotFound},
	mloop.EEXISTS:          {"RESOURCE_ALREADY_EXISTS", http.StatusBadRequest},
	mloop.EINVALID:         {"INVALID_PARAMETER_VALUE", http.StatusBadRequest},
	mloop.ECONFLICT:        {"INVALID_STATE", http.StatusBadRequest},
	mloop.EBADREQUEST:      {"BAD_REQUEST", http.StatusBadRequest},
	mloop.ETOOLARGE:        {"RESOURCE_LIMIT_EXCEEDED", http.StatusRequestEntityTooLarge},
	mloop.EUNAUTHENTICATED: {"UNAUTHENTICATED", http.StatusUnauthorized},
	mloop.EFORBIDDEN:       {"PERMISSION_DENIED", http.StatusForbidden},
	mloop.EUNAVAILABLE:     {"TEMPORARILY_UNAVAILABLE", http.StatusServiceUnavailable},
	mloop.EINTERNAL:        {"INTERNAL_ERROR", http.StatusInternalServerError},
	mloop.ENOTIMPLEMENTED:  {"NOT_IMPLEMENTED", http.StatusNotImplemented},
	ENDPOINT_NOT_FOUND:     {"ENDPOINT_NOT_FOUND", http.StatusNotFound},
}

// writeError writes err as MLflow's error body. Internal errors are logged
// with their cause and shown to the client only as a safe message.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	kind := mloop.ErrorCode(err)
	if errors.Is(err, context.Canceled) {
		kind = mloop.EUNAVAILABLE
	}
	m, ok := errorStatus[kind]
	if !ok {
		m = errorStatus[mloop.EINTERNAL]
	}
	if kind == mloop.EINTERNAL {
		s.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	writeJSON(w, m.status, map[string]string{"error_code": m.code, "message": mloop.ErrorMessage(err)})
}

// writeJSON writes v as a JSON response with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// statusRecorder remembers the status a handler wrote, for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logRequests logs one line per request at debug level.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !s.Logger.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.Logger.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status,
			"duration", time.Since(start), "remote", r.RemoteAddr)
	})
}

func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

func (s *Server) readyz(w http.ResponseWriter, r *http.Request) error {
	if s.Ready != nil {
		if err := s.Ready(r.Context()); err != nil {
			s.Logger.Warn("not ready", "err", err)
			return mloop.Errorf(mloop.EUNAVAILABLE, "The metadata store does not answer.")
		}
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	return nil
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) error {
	w.Header().Set("Content-Type", "text/plain")
	_, err := w.Write([]byte(s.Version))
	return err
}
