package httpapi

import (
	"context"
	"encoding/json"
	"io"
	"math"
	"net/http"
	"strconv"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/tracking"
)

// This file holds the handlers of MLflow's tracking API (service.proto):
// experiments, runs, their params, metrics, tags, inputs and outputs, and
// metric histories. Each decodes its request, checks the fields MLflow's
// handler requires, calls the tracking Service and writes the response in
// the protobuf JSON mapping MLflow's server emits: int64 as numbers, unset
// and empty repeated fields omitted.

// Request fields.

// tagJSON is a key/value pair: RunTag, ExperimentTag and InputTag.
type tagJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// metricJSON is a Metric as requests carry it; MLflow 3 clients add the
// logged model and dataset a point belongs to.
type metricJSON struct {
	Key           string  `json:"key"`
	Value         Float64 `json:"value"`
	Timestamp     Int64   `json:"timestamp"`
	Step          Int64   `json:"step"`
	ModelID       string  `json:"model_id"`
	DatasetName   string  `json:"dataset_name"`
	DatasetDigest string  `json:"dataset_digest"`
}

// paramJSON is a Param.
type paramJSON struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

// datasetJSON is a Dataset.
type datasetJSON struct {
	Name       string `json:"name"`
	Digest     string `json:"digest"`
	SourceType string `json:"source_type"`
	Source     string `json:"source"`
	Schema     string `json:"schema,omitempty"`
	Profile    string `json:"profile,omitempty"`
}

// datasetInputJSON is a DatasetInput.
type datasetInputJSON struct {
	Tags    []tagJSON    `json:"tags,omitempty"`
	Dataset *datasetJSON `json:"dataset"`
}

// modelIOJSON is a ModelInput or a ModelOutput (MLflow 3).
type modelIOJSON struct {
	ModelID string `json:"model_id"`
	Step    Int64  `json:"step"`
}

// idJSON is an experiment id. MLflow's server turns integer experiment ids
// into strings before parsing a request, so both forms are accepted.
type idJSON string

// UnmarshalJSON implements json.Unmarshaler.
func (id *idJSON) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*id = idJSON(s)
		return nil
	}
	var n json.Number
	if err := json.Unmarshal(b, &n); err != nil {
		return err
	}
	if _, err := n.Int64(); err != nil {
		return err
	}
	*id = idJSON(n.String())
	return nil
}

// enumJSON is a protobuf enum field: its name as a string, or its number.
type enumJSON struct{ raw json.RawMessage }

// UnmarshalJSON implements json.Unmarshaler.
func (e *enumJSON) UnmarshalJSON(b []byte) error {
	if string(b) != "null" {
		e.raw = append(json.RawMessage(nil), b...)
	}
	return nil
}

// value returns the enum's name; names[i] is the value numbered i+1. An
// unset field is "", anything else not in names an EINVALID error naming field.
func (e enumJSON) value(field string, names []string) (string, error) {
	if len(e.raw) == 0 {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(e.raw, &s); err != nil {
		s = string(e.raw)
	}
	for _, n := range names {
		if s == n {
			return s, nil
		}
	}
	if n, err := strconv.Atoi(s); err == nil && n >= 1 && n <= len(names) {
		return names[n-1], nil
	}
	return "", invalidValue(field, e.raw)
}

var (
	viewTypeNames  = []string{tracking.ViewActiveOnly, tracking.ViewDeletedOnly, tracking.ViewAll}
	runStatusNames = []string{tracking.RunRunning, tracking.RunScheduled, tracking.RunFinished, tracking.RunFailed, tracking.RunKilled}
)

// runIDOf returns the run id of a request that may carry it as run_id or,
// as older clients do, as run_uuid.
func runIDOf(runID, runUUID string) (string, error) {
	if runID != "" {
		return runID, nil
	}
	if runUUID != "" {
		return runUUID, nil
	}
	return "", missing("run_id")
}

// intOf returns an optional int64 request field as an *int, clamped to the
// range of int.
func intOf(v Int64) *int {
	if !v.Set {
		return nil
	}
	n := int(max(min(v.V, math.MaxInt), math.MinInt))
	return &n
}

// int64Of returns an optional int64 request field as an *int64.
func int64Of(v Int64) *int64 {
	if !v.Set {
		return nil
	}
	return &v.V
}

func tagsFromJSON(in []tagJSON) []tracking.Tag {
	out := make([]tracking.Tag, len(in))
	for i, t := range in {
		out[i] = tracking.Tag{Key: t.Key, Value: t.Value}
	}
	return out
}

// Response messages.

type experimentJSON struct {
	ExperimentID     string    `json:"experiment_id"`
	Name             string    `json:"name"`
	ArtifactLocation string    `json:"artifact_location"`
	LifecycleStage   string    `json:"lifecycle_stage"`
	LastUpdateTime   int64     `json:"last_update_time"`
	CreationTime     int64     `json:"creation_time"`
	Tags             []tagJSON `json:"tags,omitempty"`
}

func experimentToJSON(e *tracking.Experiment) experimentJSON {
	return experimentJSON{
		ExperimentID:     e.ID,
		Name:             e.Name,
		ArtifactLocation: e.ArtifactLocation,
		LifecycleStage:   e.LifecycleStage,
		LastUpdateTime:   e.LastUpdateTime,
		CreationTime:     e.CreationTime,
		Tags:             tagsToJSON(e.Tags),
	}
}

// runInfoJSON is a RunInfo. MLflow repeats the run id as the deprecated
// run_uuid and leaves end_time out until the run ends.
type runInfoJSON struct {
	RunUUID        string `json:"run_uuid"`
	ExperimentID   string `json:"experiment_id"`
	RunName        string `json:"run_name"`
	UserID         string `json:"user_id"`
	Status         string `json:"status"`
	StartTime      int64  `json:"start_time"`
	EndTime        *int64 `json:"end_time,omitempty"`
	ArtifactURI    string `json:"artifact_uri,omitempty"`
	LifecycleStage string `json:"lifecycle_stage"`
	RunID          string `json:"run_id"`
}

func runInfoToJSON(in *tracking.RunInfo) runInfoJSON {
	return runInfoJSON{
		RunUUID:        in.RunID,
		ExperimentID:   in.ExperimentID,
		RunName:        in.RunName,
		UserID:         in.UserID,
		Status:         in.Status,
		StartTime:      in.StartTime,
		EndTime:        in.EndTime,
		ArtifactURI:    in.ArtifactURI,
		LifecycleStage: in.LifecycleStage,
		RunID:          in.RunID,
	}
}

type metricOutJSON struct {
	Key       string    `json:"key"`
	Value     jsonFloat `json:"value"`
	Timestamp int64     `json:"timestamp"`
	Step      int64     `json:"step"`
	RunID     string    `json:"run_id,omitempty"` // MetricWithRunId only
}

type runDataJSON struct {
	Metrics []metricOutJSON `json:"metrics,omitempty"`
	Params  []paramJSON     `json:"params,omitempty"`
	Tags    []tagJSON       `json:"tags,omitempty"`
}

type runInputsJSON struct {
	DatasetInputs []datasetInputJSON `json:"dataset_inputs,omitempty"`
	ModelInputs   []modelIDJSON      `json:"model_inputs,omitempty"`
}

type runOutputsJSON struct {
	ModelOutputs []modelOutputJSON `json:"model_outputs,omitempty"`
}

type modelIDJSON struct {
	ModelID string `json:"model_id"`
}

type modelOutputJSON struct {
	ModelID string `json:"model_id"`
	Step    int64  `json:"step"`
}

// runJSON is a Run. Like MLflow's server it always carries data and inputs,
// empty or not; outputs (MLflow 3) only when the run produced models.
type runJSON struct {
	Info    runInfoJSON     `json:"info"`
	Data    runDataJSON     `json:"data"`
	Inputs  runInputsJSON   `json:"inputs"`
	Outputs *runOutputsJSON `json:"outputs,omitempty"`
}

func runToJSON(r *tracking.Run) runJSON {
	out := runJSON{
		Info: runInfoToJSON(&r.Info),
		Data: runDataJSON{Metrics: metricsToJSON(r.Metrics, false), Tags: tagsToJSON(r.Tags)},
	}
	for _, p := range r.Params {
		out.Data.Params = append(out.Data.Params, paramJSON{Key: p.Key, Value: p.Value})
	}
	for _, in := range r.Inputs {
		d := in.Dataset
		out.Inputs.DatasetInputs = append(out.Inputs.DatasetInputs, datasetInputJSON{
			Tags: tagsToJSON(in.Tags),
			Dataset: &datasetJSON{Name: d.Name, Digest: d.Digest, SourceType: d.SourceType,
				Source: d.Source, Schema: d.Schema, Profile: d.Profile},
		})
	}
	for _, m := range r.ModelInputs {
		out.Inputs.ModelInputs = append(out.Inputs.ModelInputs, modelIDJSON{ModelID: m.ModelID})
	}
	if len(r.ModelOutputs) > 0 {
		out.Outputs = &runOutputsJSON{}
		for _, m := range r.ModelOutputs {
			out.Outputs.ModelOutputs = append(out.Outputs.ModelOutputs, modelOutputJSON{ModelID: m.ModelID, Step: m.Step})
		}
	}
	return out
}

func runsToJSON(runs []*tracking.Run) []runJSON {
	var out []runJSON
	for _, r := range runs {
		out = append(out, runToJSON(r))
	}
	return out
}

// metricsToJSON converts metric points; withRunID keeps each point's run id
// (MetricWithRunId), which a run's own metrics leave out.
func metricsToJSON(ms []tracking.Metric, withRunID bool) []metricOutJSON {
	var out []metricOutJSON
	for _, m := range ms {
		j := metricOutJSON{Key: m.Key, Value: jsonFloat(m.Value), Timestamp: m.Timestamp, Step: m.Step}
		if withRunID {
			j.RunID = m.RunID
		}
		out = append(out, j)
	}
	return out
}

func tagsToJSON(tags []tracking.Tag) []tagJSON {
	var out []tagJSON
	for _, t := range tags {
		out = append(out, tagJSON{Key: t.Key, Value: t.Value})
	}
	return out
}

// Experiments.
//
// Request structs list their fields in the order of the schema MLflow's
// handler validates, so the first bad field reported is MLflow's; fields
// tagged `mlflow:"required"` are checked by decode.

func (s *Server) createExperiment(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name             string    `json:"name" mlflow:"required"`
		ArtifactLocation string    `json:"artifact_location"`
		Tags             []tagJSON `json:"tags"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	id, err := s.Tracking.CreateExperiment(r.Context(), req.Name, req.ArtifactLocation, tagsFromJSON(req.Tags))
	if err != nil {
		return err
	}
	return ok(w, struct {
		ExperimentID string `json:"experiment_id"`
	}{id})
}

func (s *Server) getExperiment(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ExperimentID idJSON `json:"experiment_id" mlflow:"required"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	e, err := s.Tracking.GetExperiment(r.Context(), string(req.ExperimentID))
	if err != nil {
		return err
	}
	return ok(w, struct {
		Experiment experimentJSON `json:"experiment"`
	}{experimentToJSON(e)})
}

func (s *Server) getExperimentByName(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ExperimentName string `json:"experiment_name" mlflow:"required"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	e, err := s.Tracking.GetExperimentByName(r.Context(), req.ExperimentName)
	if err != nil {
		return err
	}
	return ok(w, struct {
		Experiment experimentJSON `json:"experiment"`
	}{experimentToJSON(e)})
}

func (s *Server) searchExperiments(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ViewType   enumJSON `json:"view_type"`
		MaxResults Int64    `json:"max_results"`
		OrderBy    []string `json:"order_by"`
		Filter     string   `json:"filter"`
		PageToken  string   `json:"page_token"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	view, err := req.ViewType.value("view_type", viewTypeNames)
	if err != nil {
		return err
	}
	exps, next, err := s.Tracking.SearchExperiments(r.Context(), tracking.SearchExperimentsRequest{
		Filter: req.Filter, OrderBy: req.OrderBy, ViewType: view,
		MaxResults: intOf(req.MaxResults), PageToken: req.PageToken,
	})
	if err != nil {
		return err
	}
	resp := struct {
		Experiments   []experimentJSON `json:"experiments,omitempty"`
		NextPageToken string           `json:"next_page_token,omitempty"`
	}{NextPageToken: next}
	for _, e := range exps {
		resp.Experiments = append(resp.Experiments, experimentToJSON(e))
	}
	return ok(w, resp)
}

func (s *Server) updateExperiment(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ExperimentID idJSON `json:"experiment_id" mlflow:"required"`
		NewName      string `json:"new_name" mlflow:"required"`
	}
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Tracking.RenameExperiment(ctx, string(req.ExperimentID), req.NewName)
	})
}

// experimentIDRequest is the request of DeleteExperiment and RestoreExperiment.
type experimentIDRequest struct {
	ExperimentID idJSON `json:"experiment_id" mlflow:"required"`
}

func (s *Server) deleteExperiment(w http.ResponseWriter, r *http.Request) error {
	var req experimentIDRequest
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Tracking.DeleteExperiment(ctx, string(req.ExperimentID))
	})
}

func (s *Server) restoreExperiment(w http.ResponseWriter, r *http.Request) error {
	var req experimentIDRequest
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Tracking.RestoreExperiment(ctx, string(req.ExperimentID))
	})
}

func (s *Server) setExperimentTag(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ExperimentID idJSON `json:"experiment_id" mlflow:"required"`
		Key          string `json:"key" mlflow:"required"`
		Value        string `json:"value"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	tag := tracking.Tag{Key: req.Key, Value: req.Value}
	if err := s.Tracking.SetExperimentTag(r.Context(), string(req.ExperimentID), tag); err != nil {
		return err
	}
	return ok(w, nil)
}

func (s *Server) deleteExperimentTag(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ExperimentID idJSON `json:"experiment_id" mlflow:"required"`
		Key          string `json:"key" mlflow:"required"`
	}
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Tracking.DeleteExperimentTag(ctx, string(req.ExperimentID), req.Key)
	})
}

// Runs.

func (s *Server) createRun(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ExperimentID idJSON    `json:"experiment_id"`
		StartTime    Int64     `json:"start_time"`
		RunName      string    `json:"run_name"`
		UserID       string    `json:"user_id"`
		Tags         []tagJSON `json:"tags"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	run, err := s.Tracking.CreateRun(r.Context(), tracking.CreateRunRequest{
		ExperimentID: string(req.ExperimentID),
		UserID:       req.UserID,
		RunName:      req.RunName,
		StartTime:    req.StartTime.V,
		Tags:         tagsFromJSON(req.Tags),
	})
	if err != nil {
		return err
	}
	return ok(w, struct {
		Run runJSON `json:"run"`
	}{runToJSON(run)})
}

// runIDRequest is the request of GetRun, DeleteRun and RestoreRun.
type runIDRequest struct {
	RunID string `json:"run_id" mlflow:"required"`
}

func (s *Server) getRun(w http.ResponseWriter, r *http.Request) error {
	var req runIDRequest
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	run, err := s.Tracking.GetRun(r.Context(), req.RunID)
	if err != nil {
		return err
	}
	return ok(w, struct {
		Run runJSON `json:"run"`
	}{runToJSON(run)})
}

func (s *Server) updateRun(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RunID   string   `json:"run_id" mlflow:"required"`
		EndTime Int64    `json:"end_time"`
		Status  enumJSON `json:"status"`
		RunName Str      `json:"run_name"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	var u tracking.RunUpdate
	status, err := req.Status.value("status", runStatusNames)
	if err != nil {
		return err
	}
	if status != "" {
		u.Status = &status
	}
	u.EndTime = int64Of(req.EndTime)
	if req.RunName.Set {
		u.RunName = &req.RunName.V
	}
	info, err := s.Tracking.UpdateRun(r.Context(), req.RunID, u)
	if err != nil {
		return err
	}
	return ok(w, struct {
		RunInfo runInfoJSON `json:"run_info"`
	}{runInfoToJSON(info)})
}

func (s *Server) deleteRun(w http.ResponseWriter, r *http.Request) error {
	var req runIDRequest
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Tracking.DeleteRun(ctx, req.RunID)
	})
}

func (s *Server) restoreRun(w http.ResponseWriter, r *http.Request) error {
	var req runIDRequest
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Tracking.RestoreRun(ctx, req.RunID)
	})
}

func (s *Server) searchRuns(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ExperimentIDs []idJSON `json:"experiment_ids"`
		Filter        string   `json:"filter"`
		MaxResults    Int64    `json:"max_results"`
		OrderBy       []string `json:"order_by"`
		RunViewType   enumJSON `json:"run_view_type"`
		PageToken     string   `json:"page_token"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	// MLflow's handler bounds max_results before the store sees it.
	if req.MaxResults.Set && req.MaxResults.V > tracking.MaxSearchResults {
		return invalidValue("max_results", json.RawMessage(strconv.FormatInt(req.MaxResults.V, 10)))
	}
	view, err := req.RunViewType.value("run_view_type", viewTypeNames)
	if err != nil {
		return err
	}
	ids := make([]string, len(req.ExperimentIDs))
	for i, id := range req.ExperimentIDs {
		ids[i] = string(id)
	}
	runs, next, err := s.Tracking.SearchRuns(r.Context(), tracking.SearchRunsRequest{
		ExperimentIDs: ids, Filter: req.Filter, ViewType: view,
		MaxResults: intOf(req.MaxResults), OrderBy: req.OrderBy, PageToken: req.PageToken,
	})
	if err != nil {
		return err
	}
	return ok(w, struct {
		Runs          []runJSON `json:"runs,omitempty"`
		NextPageToken string    `json:"next_page_token,omitempty"`
	}{runsToJSON(runs), next})
}

func (s *Server) logMetric(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RunID         string  `json:"run_id" mlflow:"required"`
		Key           string  `json:"key" mlflow:"required"`
		Value         Float64 `json:"value" mlflow:"required"`
		Timestamp     Int64   `json:"timestamp" mlflow:"required"`
		Step          Int64   `json:"step"`
		ModelID       string  `json:"model_id"`
		DatasetName   string  `json:"dataset_name"`
		DatasetDigest string  `json:"dataset_digest"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	m := metricJSON{Key: req.Key, Value: req.Value, Timestamp: req.Timestamp, Step: req.Step,
		ModelID: req.ModelID, DatasetName: req.DatasetName, DatasetDigest: req.DatasetDigest}
	if err := s.logMetrics(r, req.RunID, []metricJSON{m}, nil, nil); err != nil {
		return err
	}
	return ok(w, nil)
}

// logMetrics logs a batch to a run and records the metric points that name
// an MLflow 3 logged model against that model too.
func (s *Server) logMetrics(r *http.Request, runID string, in []metricJSON, params []tracking.Param, tags []tracking.Tag) error {
	metrics := make([]tracking.Metric, len(in))
	var linked []tracking.ModelMetric
	for i, m := range in {
		metrics[i] = tracking.Metric{Key: m.Key, Value: m.Value.V, Timestamp: m.Timestamp.V, Step: m.Step.V}
		if m.ModelID != "" {
			metric := metrics[i]
			metric.RunID = runID
			linked = append(linked, tracking.ModelMetric{Metric: metric, ModelID: m.ModelID,
				DatasetName: m.DatasetName, DatasetDigest: m.DatasetDigest})
		}
	}
	if err := s.Tracking.LogBatch(r.Context(), runID, metrics, params, tags); err != nil {
		return err
	}
	if len(linked) > 0 && s.LoggedModels != nil {
		return s.LoggedModels.LogLoggedModelMetrics(r.Context(), linked)
	}
	return nil
}

func (s *Server) logParam(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RunID string `json:"run_id" mlflow:"required"`
		Key   string `json:"key" mlflow:"required"`
		Value string `json:"value"`
	}
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Tracking.LogParam(ctx, req.RunID, tracking.Param{Key: req.Key, Value: req.Value})
	})
}

// countingReader counts the bytes read through it.
type countingReader struct {
	io.ReadCloser
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n += int64(n)
	return n, err
}

func (s *Server) logBatch(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RunID   string               `json:"run_id" mlflow:"required"`
		Metrics listJSON[metricJSON] `json:"metrics"`
		Params  listJSON[paramJSON]  `json:"params"`
		Tags    listJSON[tagJSON]    `json:"tags"`
	}
	body := &countingReader{ReadCloser: r.Body}
	r.Body = body
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if body.n > tracking.MaxBatchRequestBytes {
		return mloop.Errorf(mloop.EINVALID, "Batched logging API requests must be at most %d bytes, got a request of size %d.", tracking.MaxBatchRequestBytes, body.n)
	}
	// As MLflow's handler, a point without key, value or timestamp, and a
	// param or tag without key, make the whole list invalid.
	for _, m := range req.Metrics.Items {
		if m.Key == "" || !m.Value.Set || !m.Timestamp.Set {
			return invalidValue("metrics", req.Metrics.Raw)
		}
	}
	params := make([]tracking.Param, len(req.Params.Items))
	for i, p := range req.Params.Items {
		if p.Key == "" {
			return invalidValue("params", req.Params.Raw)
		}
		params[i] = tracking.Param{Key: p.Key, Value: p.Value}
	}
	for _, t := range req.Tags.Items {
		if t.Key == "" {
			return invalidValue("tags", req.Tags.Raw)
		}
	}
	if err := s.logMetrics(r, req.RunID, req.Metrics.Items, params, tagsFromJSON(req.Tags.Items)); err != nil {
		return err
	}
	return ok(w, nil)
}

func (s *Server) logInputs(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RunID    string             `json:"run_id" mlflow:"required"`
		Datasets []datasetInputJSON `json:"datasets"`
		Models   []modelIOJSON      `json:"models"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	// MLflow 2 requires datasets; MLflow 3 clients may send models alone.
	if req.Datasets == nil && req.Models == nil {
		return missing("datasets")
	}
	datasets := make([]tracking.DatasetInput, len(req.Datasets))
	for i, d := range req.Datasets {
		if d.Dataset == nil {
			return missing("datasets[" + strconv.Itoa(i) + "].dataset")
		}
		ds := d.Dataset
		datasets[i] = tracking.DatasetInput{
			Tags: tagsFromJSON(d.Tags),
			Dataset: tracking.Dataset{Name: ds.Name, Digest: ds.Digest, SourceType: ds.SourceType,
				Source: ds.Source, Schema: ds.Schema, Profile: ds.Profile},
		}
	}
	models := make([]tracking.ModelInput, len(req.Models))
	for i, m := range req.Models {
		models[i] = tracking.ModelInput{ModelID: m.ModelID}
	}
	if err := s.Tracking.LogInputs(r.Context(), req.RunID, datasets, models); err != nil {
		return err
	}
	return ok(w, nil)
}

func (s *Server) logOutputs(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RunID  string        `json:"run_id" mlflow:"required"`
		Models []modelIOJSON `json:"models" mlflow:"required"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	models := make([]tracking.ModelOutput, len(req.Models))
	for i, m := range req.Models {
		models[i] = tracking.ModelOutput{ModelID: m.ModelID, Step: m.Step.V}
	}
	if err := s.Tracking.LogOutputs(r.Context(), req.RunID, models); err != nil {
		return err
	}
	return ok(w, nil)
}

func (s *Server) logModel(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RunID     string `json:"run_id" mlflow:"required"`
		ModelJSON string `json:"model_json" mlflow:"required"`
	}
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Tracking.LogModel(ctx, req.RunID, req.ModelJSON)
	})
}

func (s *Server) setTag(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RunID string `json:"run_id" mlflow:"required"`
		Key   string `json:"key" mlflow:"required"`
		Value string `json:"value"`
	}
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Tracking.SetTag(ctx, req.RunID, tracking.Tag{Key: req.Key, Value: req.Value})
	})
}

func (s *Server) deleteTag(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RunID string `json:"run_id" mlflow:"required"`
		Key   string `json:"key" mlflow:"required"`
	}
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Tracking.DeleteTag(ctx, req.RunID, req.Key)
	})
}

// Metric histories.

func (s *Server) getMetricHistory(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RunID      string `json:"run_id" mlflow:"required"`
		MetricKey  string `json:"metric_key" mlflow:"required"`
		PageToken  string `json:"page_token"`
		MaxResults Int64  `json:"max_results"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	points, next, err := s.Tracking.GetMetricHistory(r.Context(), req.RunID, req.MetricKey, intOf(req.MaxResults), req.PageToken)
	if err != nil {
		return err
	}
	return writeMetricList(w, points, false, next)
}

func (s *Server) getMetricHistoryBulkInterval(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		RunIDs     []string `json:"run_ids"`
		MetricKey  string   `json:"metric_key"`
		StartStep  Int64    `json:"start_step"`
		EndStep    Int64    `json:"end_step"`
		MaxResults Int64    `json:"max_results"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	switch {
	case len(req.RunIDs) == 0:
		return missing("run_ids")
	case req.MetricKey == "":
		return missing("metric_key")
	}
	points, err := s.Tracking.GetMetricHistoryBulkInterval(r.Context(), tracking.BulkIntervalRequest{
		RunIDs: req.RunIDs, MetricKey: req.MetricKey,
		StartStep: int64Of(req.StartStep), EndStep: int64Of(req.EndStep), MaxResults: intOf(req.MaxResults),
	})
	if err != nil {
		return err
	}
	return writeMetricList(w, points, true, "")
}
