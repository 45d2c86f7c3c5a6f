package httpapi

// Handlers of mloop's /api/v1 for deployments (docs/deployments-api.md):
// the control plane's changes (create, update, promote, rollback, delete),
// their events and history, the State that data planes follow by long
// poll, and the files of a model version that mloop serve replicas fetch.
// The rules live in internal/serving/deploy; the data plane's own routes
// (/v2/…, /v1/models/…, /serving-endpoints/…) are served by Server.Serving
// without going through these wrappers.

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/router"
)

// DefaultStateWait is how long GET /api/v1/serving/state waits for a change
// when the request names the current etag without a wait parameter; a
// request may ask for up to deploy.MaxStateWait.
const DefaultStateWait = 30 * time.Second

// eventsInDeployment is how many of the newest events GET
// /api/v1/deployments/{name} returns with the deployment.
const eventsInDeployment = 20

// deployments returns the deployment service, or a NOT_IMPLEMENTED error
// when the server runs without one.
func (s *Server) deployments() (*deploy.Service, error) {
	if s.Deployments == nil {
		return nil, mloop.Errorf(mloop.ENOTIMPLEMENTED, "This server does not manage deployments.")
	}
	return s.Deployments, nil
}

// createDeploymentRequest is the body of POST /api/v1/deployments.
type createDeploymentRequest struct {
	Name string       `json:"name"`
	Spec *deploy.Spec `json:"spec"`
}

// deploymentResponse is the answer of the calls that change a deployment.
type deploymentResponse struct {
	Deployment *deploy.Deployment `json:"deployment"`
}

// deploymentDetails is the answer of GET /api/v1/deployments/{name}: the
// deployment, its newest events, and what this server's data plane serves
// of it (nil when the server does not serve models, or not this one yet).
type deploymentDetails struct {
	Deployment *deploy.Deployment       `json:"deployment"`
	Events     []*deploy.Event          `json:"events"`
	Serving    *router.DeploymentStatus `json:"serving"`
}

// changeDeployment is the frame of the calls that change a deployment:
// it finds the service, decodes the body into req unless req is nil (an
// empty body allowed when emptyBody), makes the change and answers the
// deployment it returns with status.
func (s *Server) changeDeployment(w http.ResponseWriter, r *http.Request, status int, req any, emptyBody bool,
	change func(ctx context.Context, ds *deploy.Service) (*deploy.Deployment, error)) error {
	ds, err := s.deployments()
	if err != nil {
		return err
	}
	if req != nil {
		if err := s.decodeJSON(r, req, emptyBody); err != nil {
			return err
		}
	}
	d, err := change(r.Context(), ds)
	if err != nil {
		return err
	}
	writeJSON(w, status, deploymentResponse{d})
	return nil
}

// createDeployment creates a deployment: 201 with it.
func (s *Server) createDeployment(w http.ResponseWriter, r *http.Request) error {
	var req createDeploymentRequest
	return s.changeDeployment(w, r, http.StatusCreated, &req, false, func(ctx context.Context, ds *deploy.Service) (*deploy.Deployment, error) {
		switch {
		case req.Name == "":
			return nil, mloop.Errorf(mloop.EINVALID, "Missing value for field 'name': give the deployment's name, such as \"flights\".")
		case req.Spec == nil:
			return nil, mloop.Errorf(mloop.EINVALID, "Missing value for field 'spec': give at least {\"model\": \"MODEL@VERSION\"}.")
		}
		return ds.Create(ctx, req.Name, *req.Spec)
	})
}

// listDeployments lists every deployment by name.
func (s *Server) listDeployments(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.deployments()
	if err != nil {
		return err
	}
	list, err := ds.List(r.Context())
	if err != nil {
		return err
	}
	writeList(w, "deployments", list)
	return nil
}

// writeList answers 200 with {key: items}, an empty array for no items.
func writeList[T any](w http.ResponseWriter, key string, items []T) {
	if items == nil {
		items = []T{}
	}
	writeJSON(w, http.StatusOK, map[string]any{key: items})
}

// getDeployment returns a deployment with its newest events and this
// server's serving status of it.
func (s *Server) getDeployment(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.deployments()
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	d, err := ds.Get(r.Context(), name)
	if err != nil {
		return err
	}
	evs, err := ds.Events(r.Context(), name, eventsInDeployment)
	if err != nil {
		return err
	}
	if evs == nil {
		evs = []*deploy.Event{}
	}
	out := deploymentDetails{Deployment: d, Events: evs}
	if s.ServingStatus != nil {
		if st, ok := s.ServingStatus(name); ok {
			out.Serving = st
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// updateDeployment applies a deploy.Update.
func (s *Server) updateDeployment(w http.ResponseWriter, r *http.Request) error {
	var u deploy.Update
	return s.changeDeployment(w, r, http.StatusOK, &u, false, func(ctx context.Context, ds *deploy.Service) (*deploy.Deployment, error) {
		return ds.Update(ctx, r.PathValue("name"), u)
	})
}

// promoteDeployment makes the canary the primary.
func (s *Server) promoteDeployment(w http.ResponseWriter, r *http.Request) error {
	return s.changeDeployment(w, r, http.StatusOK, nil, false, func(ctx context.Context, ds *deploy.Service) (*deploy.Deployment, error) {
		return ds.Promote(ctx, r.PathValue("name"))
	})
}

// rollbackDeployment removes the canary, or returns the primary to its
// previous model version; the body (a deploy.RollbackRequest) may be empty.
func (s *Server) rollbackDeployment(w http.ResponseWriter, r *http.Request) error {
	var req deploy.RollbackRequest
	return s.changeDeployment(w, r, http.StatusOK, &req, true, func(ctx context.Context, ds *deploy.Service) (*deploy.Deployment, error) {
		return ds.Rollback(ctx, r.PathValue("name"), req)
	})
}

// deleteDeployment removes a deployment.
func (s *Server) deleteDeployment(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.deployments()
	if err != nil {
		return err
	}
	if err := ds.Delete(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, struct{}{})
	return nil
}

// limitParam reads the optional limit query parameter (0 when absent).
func limitParam(r *http.Request) (int, error) {
	return positiveInt(r.URL.Query(), "limit")
}

// deploymentsLimit returns the deployment service and the request's limit
// parameter, for the calls that list a deployment's records.
func (s *Server) deploymentsLimit(r *http.Request) (*deploy.Service, int, error) {
	ds, err := s.deployments()
	if err != nil {
		return nil, 0, err
	}
	limit, err := limitParam(r)
	if err != nil {
		return nil, 0, err
	}
	return ds, limit, nil
}

// deploymentEvents lists a deployment's events, newest first.
func (s *Server) deploymentEvents(w http.ResponseWriter, r *http.Request) error {
	ds, limit, err := s.deploymentsLimit(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	evs, err := ds.Events(r.Context(), name, limit)
	if err != nil {
		return err
	}
	if len(evs) == 0 {
		// Events outlive a deleted deployment; no event at all means the
		// name was never deployed.
		if _, err := ds.Get(r.Context(), name); err != nil {
			return err
		}
	}
	writeList(w, "events", evs)
	return nil
}

// deploymentHistory lists a deployment's past generations, newest first.
func (s *Server) deploymentHistory(w http.ResponseWriter, r *http.Request) error {
	ds, limit, err := s.deploymentsLimit(r)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if _, err := ds.Get(r.Context(), name); err != nil {
		return err
	}
	hist, err := ds.History(r.Context(), name, limit)
	if err != nil {
		return err
	}
	writeList(w, "deployments", hist)
	return nil
}

// servingState answers the State data planes serve. With etag equal to
// the current state's, it waits up to wait (default DefaultStateWait, at
// most deploy.MaxStateWait) for a change first; a server shutting down ends the
// wait with 503, and the replica asks again elsewhere or later.
func (s *Server) servingState(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.deployments()
	if err != nil {
		return err
	}
	q := r.URL.Query()
	etag := q.Get("etag")
	wait := time.Duration(0)
	if etag != "" {
		wait = DefaultStateWait
	}
	if v := q.Get("wait"); v != "" {
		if wait, err = parseWait(v); err != nil {
			return err
		}
	}
	ctx := r.Context()
	if s.Done != nil && wait > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
		go func() {
			select {
			case <-s.Done:
				cancel()
			case <-ctx.Done():
			}
		}()
	}
	st, err := ds.State(ctx, etag, wait)
	if err != nil {
		if r.Context().Err() == nil && ctx.Err() != nil {
			return mloop.Errorf(mloop.EUNAVAILABLE, "The server is shutting down: ask again later or another server.")
		}
		return err
	}
	if st.Deployments == nil {
		st.Deployments = []*deploy.Deployment{}
	}
	w.Header().Set("ETag", strconv.Quote(st.ETag))
	writeJSON(w, http.StatusOK, st)
	return nil
}

// parseWait reads the wait parameter: a Go duration ("30s") or a number of
// seconds, from 0 to deploy.MaxStateWait.
func parseWait(v string) (time.Duration, error) {
	d, err := time.ParseDuration(v)
	if err != nil {
		secs, ferr := strconv.ParseFloat(v, 64)
		if ferr != nil || math.IsNaN(secs) {
			return 0, mloop.Errorf(mloop.EINVALID, "Invalid value %q for parameter 'wait': use a duration such as 30s, or a number of seconds.", v)
		}
		if secs < 0 || secs > deploy.MaxStateWait.Seconds() {
			return 0, mloop.Errorf(mloop.EINVALID, "Invalid value %q for parameter 'wait': use a duration from 0 to %s.", v, deploy.MaxStateWait)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d < 0 || d > deploy.MaxStateWait {
		return 0, mloop.Errorf(mloop.EINVALID, "Invalid value %q for parameter 'wait': use a duration from 0 to %s.", v, deploy.MaxStateWait)
	}
	return d, nil
}

// modelVersionFiles answers the files of a model version as a tar archive
// (application/x-tar) of regular files with slash-separated relative
// names, for data planes that load the model.
func (s *Server) modelVersionFiles(w http.ResponseWriter, r *http.Request) error {
	ds, err := s.deployments()
	if err != nil {
		return err
	}
	name, vs := r.PathValue("name"), r.PathValue("version")
	version, err := strconv.ParseInt(vs, 10, 64)
	if err != nil || version < 1 {
		return mloop.Errorf(mloop.EINVALID, "Invalid model version %q: versions are integers from 1.", vs)
	}
	dir, err := os.MkdirTemp("", "mloop-model-files-*")
	if err != nil {
		return fmt.Errorf("model files: %w", err)
	}
	defer os.RemoveAll(dir)
	if err := ds.FetchModel(r.Context(), name, version, dir); err != nil {
		return err
	}
	// Walk first, so that an unreadable folder fails before any byte is sent.
	var files []string
	err = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			files = append(files, p)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("model files of %s/%d: %w", name, version, err)
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", fmt.Sprintf("%s-%d.tar", name, version)))
	tw := tar.NewWriter(w)
	for _, p := range files {
		if err := tarFile(tw, dir, p); err != nil {
			// The status is sent: cut the archive short, which the
			// reader sees as a truncated tar.
			s.Logger.Error("send model files", "model", name, "version", version, "file", p, "err", err)
			panic(http.ErrAbortHandler)
		}
	}
	if err := tw.Close(); err != nil {
		s.Logger.Warn("send model files", "model", name, "version", version, "err", err)
	}
	return nil
}

// tarFile writes the file at p, named relative to dir, to tw.
func tarFile(tw *tar.Writer, dir, p string) error {
	rel, err := filepath.Rel(dir, p)
	if err != nil {
		return err
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	h := &tar.Header{Typeflag: tar.TypeReg, Name: filepath.ToSlash(rel), Size: st.Size(),
		Mode: int64(st.Mode().Perm()), ModTime: st.ModTime()}
	if err := tw.WriteHeader(h); err != nil {
		return err
	}
	_, err = io.CopyN(tw, f, st.Size())
	return err
}

// isServingPath reports whether p is a path of the serving data plane:
// the Open Inference Protocol (/v2, /v2/…), KServe V1 (/v1/models/…) and
// MLflow scoring (/serving-endpoints/…).
func isServingPath(p string) bool {
	switch {
	case strings.HasPrefix(p, "/v2/"), p == "/v2":
		return true
	case strings.HasPrefix(p, "/v1/models/"), p == "/v1/models":
		return true
	case strings.HasPrefix(p, "/serving-endpoints/"):
		return true
	}
	return false
}

// metrics serves Prometheus metrics through Server.Metrics.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) error {
	if s.Metrics == nil {
		return mloop.Errorf(mloop.ENOTIMPLEMENTED, "This server exports no metrics.")
	}
	s.Metrics.ServeHTTP(w, r)
	return nil
}
