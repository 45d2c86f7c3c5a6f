package httpapi

import (
	"math"
	"net/http"
	"slices"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/tracking"
)

// This file serves MLflow 3's logged-model API (service.proto:
// CreateLoggedModel, GetLoggedModel, FinalizeLoggedModel, DeleteLoggedModel,
// SearchLoggedModels, SetLoggedModelTags, DeleteLoggedModelTag,
// LogLoggedModelParamsRequest, ListLoggedModelArtifacts). The model id comes
// from the path, as MLflow 3 clients build it ("logged-models/{model_id}");
// bodies follow protobuf's JSON mapping with MLflow's field names.

// loggedModelJSON is MLflow's LoggedModel message. data is always present,
// as MLflow's server sets it even when empty.
type loggedModelJSON struct {
	Info loggedModelInfoJSON `json:"info"`
	Data loggedModelDataJSON `json:"data"`
}

type loggedModelInfoJSON struct {
	ModelID                string    `json:"model_id"`
	ExperimentID           string    `json:"experiment_id"`
	Name                   string    `json:"name"`
	CreationTimestampMs    int64     `json:"creation_timestamp_ms"`
	LastUpdatedTimestampMs int64     `json:"last_updated_timestamp_ms"`
	ArtifactURI            string    `json:"artifact_uri"`
	Status                 string    `json:"status"`
	ModelType              string    `json:"model_type,omitempty"`
	SourceRunID            string    `json:"source_run_id,omitempty"`
	StatusMessage          string    `json:"status_message,omitempty"`
	Tags                   []tagJSON `json:"tags,omitempty"`
}

type loggedModelDataJSON struct {
	Params  []paramJSON             `json:"params,omitempty"`
	Metrics []loggedModelMetricJSON `json:"metrics,omitempty"`
}

// loggedModelMetricJSON is MLflow's Metric message as LoggedModelData holds it.
type loggedModelMetricJSON struct {
	Key           string    `json:"key"`
	Value         jsonFloat `json:"value"`
	Timestamp     int64     `json:"timestamp"`
	Step          int64     `json:"step"`
	DatasetName   string    `json:"dataset_name,omitempty"`
	DatasetDigest string    `json:"dataset_digest,omitempty"`
	ModelID       string    `json:"model_id"`
	RunID         string    `json:"run_id"`
}

// loggedModelStatuses are the store's statuses in the order of MLflow's
// LoggedModelStatus enum numbers (1, 2, 3), and loggedModelStatusNames their
// enum names.
var (
	loggedModelStatuses    = []string{tracking.LoggedModelPending, tracking.LoggedModelReady, tracking.LoggedModelFailed}
	loggedModelStatusNames = []string{"LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"}
)

// loggedModelStatusName returns the enum name of a store status.
func loggedModelStatusName(status string) string {
	if i := slices.Index(loggedModelStatuses, status); i >= 0 {
		return loggedModelStatusNames[i]
	}
	return "LOGGED_MODEL_STATUS_UNSPECIFIED"
}

// loggedModelStatusOf returns the store status of an enum name.
func loggedModelStatusOf(name string) string {
	if i := slices.Index(loggedModelStatusNames, name); i >= 0 {
		return loggedModelStatuses[i]
	}
	return ""
}

func loggedModelToJSON(m *tracking.LoggedModel) loggedModelJSON {
	out := loggedModelJSON{Info: loggedModelInfoJSON{
		ModelID:                m.ModelID,
		ExperimentID:           m.ExperimentID,
		Name:                   m.Name,
		CreationTimestampMs:    m.CreationTimestamp,
		LastUpdatedTimestampMs: m.LastUpdatedTimestamp,
		ArtifactURI:            m.ArtifactLocation,
		Status:                 loggedModelStatusName(m.Status),
		ModelType:              m.ModelType,
		SourceRunID:            m.SourceRunID,
		StatusMessage:          m.StatusMessage,
		Tags:                   tagsToJSON(m.Tags),
	}}
	for _, p := range m.Params {
		out.Data.Params = append(out.Data.Params, paramJSON{Key: p.Key, Value: p.Value})
	}
	for _, mm := range m.Metrics {
		out.Data.Metrics = append(out.Data.Metrics, loggedModelMetricJSON{
			Key:           mm.Key,
			Value:         jsonFloat(mm.Value),
			Timestamp:     mm.Timestamp,
			Step:          mm.Step,
			DatasetName:   mm.DatasetName,
			DatasetDigest: mm.DatasetDigest,
			ModelID:       mm.ModelID,
			RunID:         mm.RunID,
		})
	}
	return out
}

// paramsFromJSON converts request params.
func paramsFromJSON(in []paramJSON) []tracking.Param {
	params := make([]tracking.Param, len(in))
	for i, p := range in {
		params[i] = tracking.Param{Key: p.Key, Value: p.Value}
	}
	return params
}

// loggedModelID returns the {model_id} path segment.
func loggedModelID(r *http.Request) (string, error) {
	id := r.PathValue("model_id")
	if id == "" {
		return "", missing("model_id")
	}
	return id, nil
}

// loggedModelRequest returns the logged-model service and the {model_id} of
// a request on one logged model, and decodes the request's fields into dst
// unless dst is nil.
func (s *Server) loggedModelRequest(r *http.Request, dst any) (*tracking.LoggedModels, string, error) {
	svc, err := s.loggedModels()
	if err != nil {
		return nil, "", err
	}
	id, err := loggedModelID(r)
	if err != nil {
		return nil, "", err
	}
	if dst != nil {
		if err := decode(r, s.MaxBodyBytes, dst); err != nil {
			return nil, "", err
		}
	}
	return svc, id, nil
}

// loggedModels returns the logged-model service, or an error when the server
// was built without one.
func (s *Server) loggedModels() (*tracking.LoggedModels, error) {
	if s.LoggedModels == nil {
		return nil, mloop.Errorf(mloop.ENOTIMPLEMENTED, "This server does not serve MLflow 3 logged models.")
	}
	return s.LoggedModels, nil
}

// createLoggedModel serves POST logged-models (CreateLoggedModel).
func (s *Server) createLoggedModel(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.loggedModels()
	if err != nil {
		return err
	}
	var req struct {
		ExperimentID idJSON      `json:"experiment_id"`
		Name         string      `json:"name"`
		ModelType    string      `json:"model_type"`
		SourceRunID  string      `json:"source_run_id"`
		Params       []paramJSON `json:"params"`
		Tags         []tagJSON   `json:"tags"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	m, err := svc.CreateLoggedModel(r.Context(), tracking.CreateLoggedModelRequest{
		ExperimentID: string(req.ExperimentID),
		Name:         req.Name,
		ModelType:    req.ModelType,
		SourceRunID:  req.SourceRunID,
		Params:       paramsFromJSON(req.Params),
		Tags:         tagsFromJSON(req.Tags),
	})
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"model": loggedModelToJSON(m)})
}

// getLoggedModel serves GET logged-models/{model_id} (GetLoggedModel).
func (s *Server) getLoggedModel(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		AllowDeleted Bool `json:"allow_deleted"`
	}
	svc, id, err := s.loggedModelRequest(r, &req)
	if err != nil {
		return err
	}
	m, err := svc.GetLoggedModel(r.Context(), id, req.AllowDeleted.V)
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"model": loggedModelToJSON(m)})
}

// finalizeLoggedModel serves PATCH logged-models/{model_id}
// (FinalizeLoggedModel).
func (s *Server) finalizeLoggedModel(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Status enumJSON `json:"status"`
	}
	svc, id, err := s.loggedModelRequest(r, &req)
	if err != nil {
		return err
	}
	name, err := req.Status.value("status", loggedModelStatusNames)
	if err != nil {
		return err
	}
	m, err := svc.FinalizeLoggedModel(r.Context(), id, loggedModelStatusOf(name))
	if err != nil {
		return err
	}
	return ok(w, map[string]any{"model": loggedModelToJSON(m)})
}

// deleteLoggedModel serves DELETE logged-models/{model_id} (DeleteLoggedModel).
func (s *Server) deleteLoggedModel(w http.ResponseWriter, r *http.Request) error {
	svc, id, err := s.loggedModelRequest(r, nil)
	if err != nil {
		return err
	}
	if err := svc.DeleteLoggedModel(r.Context(), id); err != nil {
		return err
	}
	return ok(w, nil)
}

// searchLoggedModels serves POST logged-models/search (SearchLoggedModels).
func (s *Server) searchLoggedModels(w http.ResponseWriter, r *http.Request) error {
	svc, err := s.loggedModels()
	if err != nil {
		return err
	}
	var req struct {
		ExperimentIDs []idJSON `json:"experiment_ids"`
		Filter        string   `json:"filter"`
		Datasets      []struct {
			DatasetName   string `json:"dataset_name"`
			DatasetDigest string `json:"dataset_digest"`
		} `json:"datasets"`
		MaxResults Int64 `json:"max_results"`
		OrderBy    []struct {
			FieldName     string `json:"field_name"`
			Ascending     Bool   `json:"ascending"`
			DatasetName   string `json:"dataset_name"`
			DatasetDigest string `json:"dataset_digest"`
		} `json:"order_by"`
		PageToken string `json:"page_token"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	search := tracking.SearchLoggedModelsRequest{Filter: req.Filter, PageToken: req.PageToken}
	for _, id := range req.ExperimentIDs {
		search.ExperimentIDs = append(search.ExperimentIDs, string(id))
	}
	switch {
	case req.MaxResults.V > math.MaxInt32:
		search.MaxResults = math.MaxInt32 // beyond any limit: the service rejects it
	case req.MaxResults.V < math.MinInt32:
		search.MaxResults = math.MinInt32
	default:
		search.MaxResults = int(req.MaxResults.V)
	}
	for _, d := range req.Datasets {
		search.Datasets = append(search.Datasets, tracking.DatasetRef{Name: d.DatasetName, Digest: d.DatasetDigest})
	}
	for _, o := range req.OrderBy {
		asc := true // the proto's default
		if o.Ascending.Set {
			asc = o.Ascending.V
		}
		search.OrderBy = append(search.OrderBy, tracking.LoggedModelOrderField{
			FieldName: o.FieldName, Ascending: asc, DatasetName: o.DatasetName, DatasetDigest: o.DatasetDigest,
		})
	}
	models, next, err := svc.SearchLoggedModels(r.Context(), search)
	if err != nil {
		return err
	}
	// MLflow's JSON leaves out empty repeated fields: no models, no "models".
	resp := struct {
		Models        []loggedModelJSON `json:"models,omitempty"`
		NextPageToken string            `json:"next_page_token,omitempty"`
	}{NextPageToken: next}
	for _, m := range models {
		resp.Models = append(resp.Models, loggedModelToJSON(m))
	}
	return ok(w, resp)
}

// setLoggedModelTags serves PATCH logged-models/{model_id}/tags
// (SetLoggedModelTags). MLflow's server answers with an empty body.
func (s *Server) setLoggedModelTags(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Tags []tagJSON `json:"tags"`
	}
	svc, id, err := s.loggedModelRequest(r, &req)
	if err != nil {
		return err
	}
	if err := svc.SetLoggedModelTags(r.Context(), id, tagsFromJSON(req.Tags)); err != nil {
		return err
	}
	return ok(w, nil)
}

// deleteLoggedModelTag serves DELETE logged-models/{model_id}/tags/{tag_key}
// (DeleteLoggedModelTag).
func (s *Server) deleteLoggedModelTag(w http.ResponseWriter, r *http.Request) error {
	svc, id, err := s.loggedModelRequest(r, nil)
	if err != nil {
		return err
	}
	key := r.PathValue("tag_key")
	if key == "" {
		return missing("tag_key")
	}
	if err := svc.DeleteLoggedModelTag(r.Context(), id, key); err != nil {
		return err
	}
	return ok(w, nil)
}

// logLoggedModelParams serves POST logged-models/{model_id}/params
// (LogLoggedModelParamsRequest).
func (s *Server) logLoggedModelParams(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Params []paramJSON `json:"params"`
	}
	svc, id, err := s.loggedModelRequest(r, &req)
	if err != nil {
		return err
	}
	if err := svc.LogLoggedModelParams(r.Context(), id, paramsFromJSON(req.Params)); err != nil {
		return err
	}
	return ok(w, nil)
}

// listLoggedModelArtifacts serves GET
// logged-models/{model_id}/artifacts/directories (ListLoggedModelArtifacts):
// the immediate children of a folder under the model's artifact location,
// with paths relative to that location.
func (s *Server) listLoggedModelArtifacts(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		ArtifactDirectoryPath string `json:"artifact_directory_path"`
		PageToken             string `json:"page_token"`
	}
	svc, id, err := s.loggedModelRequest(r, &req)
	if err != nil {
		return err
	}
	rel, err := artifact.CleanPath(req.ArtifactDirectoryPath)
	if err != nil {
		return err
	}
	m, err := svc.GetLoggedModel(r.Context(), id, false)
	if err != nil {
		return err
	}
	files, err := s.listArtifactsUnder(r.Context(), m.ArtifactLocation, rel)
	if err != nil {
		return err
	}
	// As ListArtifacts: MLflow leaves out an empty repeated field, and pages
	// nothing, so page_token is accepted and ignored.
	return ok(w, struct {
		RootURI string         `json:"root_uri"`
		Files   []artifactFile `json:"files,omitempty"`
	}{m.ArtifactLocation, files})
}
