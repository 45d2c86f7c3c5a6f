package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/tracking"
)

// This file holds the endpoints MLflow's server adds for its web UI, outside
// its protobuf services: they exist only under /ajax-api/2.0/mlflow/ or at
// the root (get-artifact), read their parameters straight from the query
// string or JSON body, and answer plain JSON rather than protobuf messages.
// Their checks and messages follow mlflow/server/handlers.py.

// MaxUploadArtifactBytes is the largest file the web UI may upload with
// upload-artifact, as MLflow's handler.
const MaxUploadArtifactBytes = 10 << 20

// gatewayTimeout bounds a request forwarded to the AI gateway.
const gatewayTimeout = 2 * time.Minute

// getMetricHistoryBulk serves GET metrics/get-history-bulk: every point of
// metric_key logged by up to 20 runs (run_id repeated), run by run, as the
// UI's charts read them. Points are {key, value, timestamp, step, run_id};
// max_results caps the total (25000 at most).
func (s *Server) getMetricHistoryBulk(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	maxResults := tracking.MaxMetricHistoryResults
	if v := q.Get("max_results"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return invalidValue("max_results", json.RawMessage(strconv.Quote(v)))
		}
		maxResults = int(max(min(n, math.MaxInt32), math.MinInt32))
	}
	points, err := s.Tracking.GetMetricHistoryBulk(r.Context(), q["run_id"], q.Get("metric_key"), maxResults)
	if err != nil {
		return err
	}
	metrics := metricsToJSON(points, true)
	if metrics == nil {
		metrics = []metricOutJSON{}
	}
	return ok(w, struct {
		Metrics []metricOutJSON `json:"metrics"`
	}{metrics})
}

// datasetSummaryJSON is one entry of search-datasets; context is null when
// the dataset input has no mlflow.data.context tag.
type datasetSummaryJSON struct {
	ExperimentID string  `json:"experiment_id"`
	Name         string  `json:"name"`
	Digest       string  `json:"digest"`
	Context      *string `json:"context"`
}

// searchDatasets serves POST experiments/search-datasets: the datasets the
// runs of up to 20 experiments used, each with the context it was used in.
func (s *Server) searchDatasets(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ExperimentIDs []idJSON `json:"experiment_ids"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	ids := make([]string, len(req.ExperimentIDs))
	for i, id := range req.ExperimentIDs {
		ids[i] = string(id)
	}
	summaries, err := s.Tracking.SearchDatasets(r.Context(), ids)
	if err != nil {
		return err
	}
	out := make([]datasetSummaryJSON, len(summaries))
	for i, d := range summaries {
		out[i] = datasetSummaryJSON{ExperimentID: d.ExperimentID, Name: d.Name, Digest: d.Digest, Context: d.Context}
	}
	return ok(w, struct {
		DatasetSummaries []datasetSummaryJSON `json:"dataset_summaries"`
	}{out})
}

// anyParamJSON is a key/value pair of the prompt engineering UI, whose value
// may be any JSON scalar: MLflow stores str() of it.
type anyParamJSON struct {
	Key   string          `json:"key"`
	Value json.RawMessage `json:"value"`
}

// paramsFromAny converts pairs to params, each value as Python's str().
func paramsFromAny(in []anyParamJSON) []tracking.Param {
	out := make([]tracking.Param, len(in))
	for i, p := range in {
		value, _ := formatPython(p.Value, math.MaxInt)
		out[i] = tracking.Param{Key: p.Key, Value: value}
	}
	return out
}

// createPromptlabRun serves POST runs/create-promptlab-run: the record of
// one evaluation of the web UI's prompt engineering page, answered like
// runs/create. See tracking.Service.CreatePromptlabRun.
func (s *Server) createPromptlabRun(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ExperimentID          idJSON         `json:"experiment_id"`
		RunName               string         `json:"run_name"`
		Tags                  []tagJSON      `json:"tags"`
		PromptTemplate        string         `json:"prompt_template"`
		PromptParameters      []anyParamJSON `json:"prompt_parameters"`
		ModelRoute            string         `json:"model_route"`
		ModelParameters       []anyParamJSON `json:"model_parameters"`
		ModelInput            string         `json:"model_input"`
		ModelOutput           Str            `json:"model_output"`
		ModelOutputParameters []anyParamJSON `json:"model_output_parameters"`
		MLflowVersion         string         `json:"mlflow_version"`
		UserID                string         `json:"user_id"`
		StartTime             Int64          `json:"start_time"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	in := tracking.PromptlabRunRequest{
		ExperimentID:          string(req.ExperimentID),
		RunName:               req.RunName,
		Tags:                  tagsFromJSON(req.Tags),
		PromptTemplate:        req.PromptTemplate,
		PromptParameters:      paramsFromAny(req.PromptParameters),
		ModelRoute:            req.ModelRoute,
		ModelParameters:       paramsFromAny(req.ModelParameters),
		ModelInput:            req.ModelInput,
		ModelOutputParameters: paramsFromAny(req.ModelOutputParameters),
		MLflowVersion:         req.MLflowVersion,
		UserID:                req.UserID,
		StartTime:             req.StartTime.V,
	}
	if req.ModelOutput.Set {
		in.ModelOutput = &req.ModelOutput.V
	}
	run, err := s.Tracking.CreatePromptlabRun(r.Context(), in, s.writeRunArtifacts)
	if run == nil {
		return err
	}
	if err != nil {
		// As MLflow, the run is kept, ended FAILED, and returned.
		s.Logger.Warn("prompt engineering run failed", "run_id", run.Info.RunID, "err", err)
	}
	return ok(w, struct {
		Run runJSON `json:"run"`
	}{runToJSON(run)})
}

// writeRunArtifacts stores files among the artifacts of run; it is the
// tracking.ArtifactWriter of the runs the server writes artifacts for.
func (s *Server) writeRunArtifacts(ctx context.Context, run *tracking.RunInfo, files map[string][]byte) error {
	for _, name := range slices.Sorted(maps.Keys(files)) {
		store, key, err := s.artifactUnder(run.ArtifactURI, name)
		if err != nil {
			return err
		}
		if err := store.Put(ctx, key, bytes.NewReader(files[name])); err != nil {
			return fmt.Errorf("write artifact %s of run %s: %w", name, run.RunID, err)
		}
	}
	return nil
}

// gatewayProxy serves GET and POST gateway-proxy: the web UI's way to reach
// the MLflow AI gateway named by DeploymentsTarget. Without one, it answers
// an empty list of endpoints, as MLflow does. Otherwise the request's
// gateway_path (from the query for GET, the JSON body for POST) is requested
// from the gateway with the same method and json_data as its JSON body, and
// the gateway's JSON answer is returned as it is.
func (s *Server) gatewayProxy(w http.ResponseWriter, r *http.Request) error {
	if s.DeploymentsTarget == "" {
		return ok(w, struct {
			Endpoints []struct{} `json:"endpoints"`
		}{[]struct{}{}})
	}
	var req struct {
		GatewayPath string          `json:"gateway_path"`
		JSONData    json.RawMessage `json:"json_data"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if req.GatewayPath == "" {
		return mloop.Errorf(mloop.EINVALID, "Deployments proxy request must specify a gateway_path.")
	}
	var body io.Reader
	if !isNone(req.JSONData) {
		body = bytes.NewReader(req.JSONData)
	}
	target := strings.TrimRight(s.DeploymentsTarget, "/") + "/" + strings.TrimLeft(req.GatewayPath, "/")
	out, err := http.NewRequestWithContext(r.Context(), r.Method, target, body)
	if err != nil {
		return mloop.Errorf(mloop.EINVALID, "Invalid gateway_path %q: %v", req.GatewayPath, err)
	}
	if body != nil {
		out.Header.Set("Content-Type", "application/json")
	}
	resp, err := (&http.Client{Timeout: gatewayTimeout}).Do(out)
	if err != nil {
		s.Logger.Warn("deployments proxy request failed", "url", target, "err", err)
		return mloop.Errorf(mloop.EUNAVAILABLE, "Deployments proxy request to %s failed: the gateway does not answer.", s.DeploymentsTarget)
	}
	defer resp.Body.Close()
	answer, err := io.ReadAll(io.LimitReader(resp.Body, s.MaxBodyBytes+1))
	if err != nil {
		return mloop.Errorf(mloop.EUNAVAILABLE, "Deployments proxy request failed: reading the gateway's answer: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		// A gateway's 4xx is about the request; anything else is the gateway's.
		kind := mloop.EUNAVAILABLE
		if resp.StatusCode >= 400 && resp.StatusCode < 500 {
			kind = mloop.EBADREQUEST
		}
		return mloop.Errorf(kind, "Deployments proxy request failed with error code %d. Error message: %s", resp.StatusCode, truncateText(string(answer), maxShownValue))
	}
	if int64(len(answer)) > s.MaxBodyBytes || !json.Valid(answer) {
		return mloop.Errorf(mloop.EUNAVAILABLE, "Deployments proxy request failed: the gateway's answer is not JSON of at most %d bytes.", s.MaxBodyBytes)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, err = w.Write(answer)
	return err
}

// uploadRunArtifact serves POST upload-artifact?run_uuid=…&path=…: the web
// UI's upload of one file, the raw request body, to path among the
// artifacts of a run. Like MLflow, the request is checked before the run is
// looked up: run_uuid, then path (present, then safe), then the size (at
// most 10 MB), then a non-empty body.
func (s *Server) uploadRunArtifact(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	runID, rawPath := q.Get("run_uuid"), q.Get("path")
	switch {
	case runID == "":
		return mloop.Errorf(mloop.EINVALID, "Request must specify run_uuid.")
	case rawPath == "":
		return mloop.Errorf(mloop.EINVALID, "Request must specify path.")
	}
	rel, err := artifact.CleanPath(rawPath)
	if err != nil {
		return err
	}
	tooLarge := mloop.Errorf(mloop.EINVALID, "Artifact size is too large. Max size is 10MB.")
	if r.ContentLength > MaxUploadArtifactBytes {
		return tooLarge
	}
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxUploadArtifactBytes))
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &mbe):
		return tooLarge
	case err != nil:
		return mloop.Errorf(mloop.EBADREQUEST, "Could not read the upload of artifact %q: %v", rel, err)
	case len(data) == 0:
		return mloop.Errorf(mloop.EINVALID, "Request must specify data.")
	}
	run, err := s.Tracking.GetRun(r.Context(), runID)
	if err != nil {
		return err
	}
	if err := s.writeRunArtifacts(r.Context(), &run.Info, map[string][]byte{rel: data}); err != nil {
		return err
	}
	return ok(w, nil)
}

// getRunArtifact serves GET /get-artifact?run_id=…&path=… (run_uuid is
// accepted for run_id): one artifact file of a run, sent as the proxied
// artifact API sends it. The path is checked before the run is looked up.
func (s *Server) getRunArtifact(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RunID   string `json:"run_id"`
		RunUUID string `json:"run_uuid"`
		Path    string `json:"path" mlflow:"required"`
	}
	return s.sendRequestedArtifact(w, r, &req, &req.Path, func(ctx context.Context) (string, error) {
		id, err := runIDOf(req.RunID, req.RunUUID)
		if err != nil {
			return "", err
		}
		run, err := s.Tracking.GetRun(ctx, id)
		if err != nil {
			return "", err
		}
		return run.Info.ArtifactURI, nil
	})
}

// getModelVersionArtifact serves GET /model-versions/get-artifact?name=…&
// version=…&path=…: one file of a model version's artifacts, found through
// the version's download URI. The path is checked before the version is
// looked up.
func (s *Server) getModelVersionArtifact(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Path    string `json:"path" mlflow:"required"`
	}
	return s.sendRequestedArtifact(w, r, &req, &req.Path, func(ctx context.Context) (string, error) {
		return s.Registry.GetModelVersionDownloadURI(ctx, req.Name, req.Version)
	})
}

// sendRequestedArtifact decodes the request into req, cleans the artifact
// path it names (*path, a field of req), then sends that file from under the
// artifact root that rootOf finds for the request's owner (a run, a model
// version): a bad path is reported before the owner is looked up.
func (s *Server) sendRequestedArtifact(w http.ResponseWriter, r *http.Request, req any, path *string, rootOf func(ctx context.Context) (string, error)) error {
	if err := decode(r, s.MaxBodyBytes, req); err != nil {
		return err
	}
	rel, err := artifact.CleanPath(*path)
	if err != nil {
		return err
	}
	root, err := rootOf(r.Context())
	if err != nil {
		return err
	}
	return s.sendArtifactUnder(w, r, root, rel)
}
