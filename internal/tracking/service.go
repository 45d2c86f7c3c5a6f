package tracking

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
)

// Limits of MLflow's tracking API (mlflow/utils/validation.py and the
// tracking stores).
const (
	MaxEntityKeyLength          = 250      // metric, param and tag keys
	MaxParamValueLength         = 6000     // param values
	MaxTagValueLength           = 8000     // run tag values
	MaxExperimentNameLength     = 500      // experiment names
	MaxExperimentTagValueLength = 5000     // experiment tag values
	MaxMetricsPerBatch          = 1000     // metrics in one LogBatch
	MaxParamsTagsPerBatch       = 100      // params, and tags, in one LogBatch
	MaxEntitiesPerBatch         = 1000     // metrics, params and tags together in one LogBatch
	MaxBatchRequestBytes        = 1000000  // the JSON body of one LogBatch request
	MaxDatasetNameLength        = 500      // dataset names
	MaxDatasetDigestLength      = 36       // dataset digests
	MaxDatasetSourceLength      = 65535    // dataset sources (JSON)
	MaxDatasetSchemaLength      = 1048575  // dataset schemas (JSON)
	MaxDatasetProfileLength     = 16777215 // dataset profiles (JSON)
	MaxInputTagKeyLength        = 255      // keys of dataset input tags
	MaxInputTagValueLength      = 500      // values of dataset input tags

	// DefaultSearchResults is the page size of SearchRuns and
	// SearchExperiments when the request names none.
	DefaultSearchResults = 1000
	// MaxSearchResults is the largest page SearchRuns and SearchExperiments return.
	MaxSearchResults = 50000
	// MaxMetricHistoryResults is the most points GetMetricHistoryBulkInterval
	// returns per run, and GetMetricHistoryBulk in all (MLflow's
	// GET_METRIC_HISTORY_MAX_RESULTS).
	MaxMetricHistoryResults = 25000
)

// Tags MLflow gives a meaning to.
const (
	// RunNameTag mirrors a run's name; setting it renames the run.
	RunNameTag = "mlflow.runName"
	// UserTag names the user who created a run.
	UserTag = "mlflow.user"
	// LoggedModelsTag holds the JSON list of models logged with LogModel.
	LoggedModelsTag = "mlflow.log-model.history"
)

// DefaultArtifactRoot is the artifact root of new experiments when the
// Service is given none: MLflow's root when it serves (proxies) artifacts.
const DefaultArtifactRoot = "mlflow-artifacts:/"

// Service applies MLflow's tracking rules (validation, identifiers, default
// names, artifact locations, page tokens, metric downsampling) on top of a
// Store, which only persists. Create it with NewService; its exported fields
// may be adjusted before use.
type Service struct {
	// Store persists what the Service accepts.
	Store Store
	// Now returns the current time; it defaults to time.Now.
	Now func() time.Time
	// ArtifactRoot is the root under which experiments get their artifact
	// location: root + "/" + experiment id. It defaults to DefaultArtifactRoot.
	// A relative local path is taken from the working directory.
	ArtifactRoot string
}

// NewService returns a Service over store with default settings.
func NewService(store Store) *Service {
	return &Service{Store: store, Now: time.Now, ArtifactRoot: DefaultArtifactRoot}
}

// now returns the current time in milliseconds since the epoch.
func (s *Service) now() int64 {
	if s.Now == nil {
		return time.Now().UnixMilli()
	}
	return s.Now().UnixMilli()
}

func (s *Service) artifactRoot() string {
	if s.ArtifactRoot == "" {
		return DefaultArtifactRoot
	}
	return resolveLocalURI(s.ArtifactRoot)
}

// experimentLocation returns the artifact location of e. An experiment
// stored without one (the Default experiment, which the schema creates
// before the server's configuration is known) lives under ArtifactRoot, as
// MLflow gives the Default experiment a location under the root the server
// runs with.
func (s *Service) experimentLocation(e *Experiment) string {
	if e.ArtifactLocation == "" {
		return appendURIPath(s.artifactRoot(), e.ID)
	}
	return e.ArtifactLocation
}

// withLocations fills in the artifact location of experiments stored
// without one (see experimentLocation).
func (s *Service) withLocations(exps ...*Experiment) {
	for _, e := range exps {
		e.ArtifactLocation = s.experimentLocation(e)
	}
}

// resolveLocalURI makes a relative local path absolute against the working
// directory, as MLflow's resolve_uri_if_local: "my_location" becomes
// "/cwd/my_location" and "file:my_location" becomes
// "file:///cwd/my_location". Absolute paths and URIs of other schemes or
// of other hosts are returned unchanged.
func resolveLocalURI(uri string) string {
	abs, local := artifact.LocalPath(uri)
	if !local {
		return uri
	}
	rest, isFile := uri, false
	if len(uri) >= 5 && strings.EqualFold(uri[:5], "file:") {
		rest, isFile = uri[5:], true
		if authority, ok := strings.CutPrefix(rest, "//"); ok {
			rest = ""
			if i := strings.IndexAny(authority, "/?#"); i >= 0 {
				rest = authority[i:]
			}
		}
	}
	if strings.HasPrefix(rest, "/") {
		return uri
	}
	if isFile {
		return "file://" + filepath.ToSlash(abs)
	}
	return filepath.ToSlash(abs)
}

// Experiments.

// CreateExperiment creates an active experiment and returns its id. An empty
// artifactLocation gives the experiment one under the Service's ArtifactRoot.
// A duplicate name is EEXISTS; an invalid name, location or tag is EINVALID.
func (s *Service) CreateExperiment(ctx context.Context, name, artifactLocation string, tags []Tag) (string, error) {
	if err := validateExperimentName(name); err != nil {
		return "", err
	}
	if artifactLocation != "" {
		if err := validateArtifactLocation(artifactLocation); err != nil {
			return "", err
		}
		artifactLocation = resolveLocalURI(artifactLocation)
	}
	tags, err := uniqueTags(tags, validateExperimentTag)
	if err != nil {
		return "", err
	}
	now := s.now()
	e := &Experiment{
		Name:             name,
		ArtifactLocation: artifactLocation,
		LifecycleStage:   LifecycleActive,
		CreationTime:     now,
		LastUpdateTime:   now,
		Tags:             tags,
	}
	root := s.artifactRoot()
	id, err := s.Store.CreateExperiment(ctx, e, func(id string) string { return appendURIPath(root, id) })
	if err != nil {
		return "", fmt.Errorf("create experiment %q: %w", name, err)
	}
	return id, nil
}

// GetExperiment returns an experiment, active or deleted; ENOTFOUND when
// there is none with that id.
func (s *Service) GetExperiment(ctx context.Context, id string) (*Experiment, error) {
	if id == "" {
		return nil, missingParam("experiment_id")
	}
	e, err := s.Store.GetExperiment(ctx, id)
	if err != nil {
		return nil, err
	}
	s.withLocations(e)
	return e, nil
}

// GetExperimentByName returns the experiment with a name; ENOTFOUND when
// there is none.
func (s *Service) GetExperimentByName(ctx context.Context, name string) (*Experiment, error) {
	if name == "" {
		return nil, missingParam("experiment_name")
	}
	e, err := s.Store.GetExperimentByName(ctx, name)
	if err != nil {
		return nil, err
	}
	s.withLocations(e)
	return e, nil
}

// SearchExperimentsRequest holds the fields of a SearchExperiments call.
type SearchExperimentsRequest struct {
	Filter     string
	OrderBy    []string
	ViewType   string // ViewActiveOnly when empty
	MaxResults *int   // DefaultSearchResults when nil
	PageToken  string
}

// SearchExperiments returns a page of experiments matching the request and
// the token of the next page ("" on the last page).
func (s *Service) SearchExperiments(ctx context.Context, req SearchExperimentsRequest) ([]*Experiment, string, error) {
	q := ExperimentQuery{MaxResults: DefaultSearchResults}
	var err error
	if q.ViewType, err = viewType(req.ViewType, "view_type"); err != nil {
		return nil, "", err
	}
	if req.MaxResults != nil {
		if q.MaxResults, err = searchMaxResults(*req.MaxResults, 1); err != nil {
			return nil, "", err
		}
	}
	if q.Offset, err = DecodePageToken(req.PageToken); err != nil {
		return nil, "", err
	}
	if strings.TrimSpace(req.Filter) != "" {
		if q.Filter, err = ParseExperimentFilter(req.Filter); err != nil {
			return nil, "", err
		}
	}
	if q.OrderBy, err = ParseExperimentOrderBy(req.OrderBy); err != nil {
		return nil, "", err
	}
	limit := q.MaxResults
	q.MaxResults++ // one more than asked tells whether another page exists
	exps, err := s.Store.SearchExperiments(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("search experiments: %w", err)
	}
	exps, next := page(exps, q.Offset, limit)
	s.withLocations(exps...)
	return exps, next, nil
}

// RenameExperiment renames an active experiment; a deleted one is ECONFLICT.
func (s *Service) RenameExperiment(ctx context.Context, id, newName string) error {
	if id == "" {
		return missingParam("experiment_id")
	}
	if newName == "" {
		return missingParam("new_name")
	}
	if err := validateExperimentName(newName); err != nil {
		return err
	}
	// The store rejects a deleted experiment (ECONFLICT) and a taken name (EEXISTS).
	if err := s.Store.RenameExperiment(ctx, id, newName, s.now()); err != nil {
		return fmt.Errorf("rename experiment %s: %w", id, err)
	}
	return nil
}

// DeleteExperiment marks an experiment and its runs deleted.
func (s *Service) DeleteExperiment(ctx context.Context, id string) error {
	return s.setExperimentLifecycle(ctx, id, LifecycleDeleted)
}

// RestoreExperiment marks a deleted experiment and its runs active again.
func (s *Service) RestoreExperiment(ctx context.Context, id string) error {
	return s.setExperimentLifecycle(ctx, id, LifecycleActive)
}

func (s *Service) setExperimentLifecycle(ctx context.Context, id, stage string) error {
	if id == "" {
		return missingParam("experiment_id")
	}
	if err := s.Store.SetExperimentLifecycle(ctx, id, stage, s.now()); err != nil {
		return fmt.Errorf("mark experiment %s %s: %w", id, stage, err)
	}
	return nil
}

// SetExperimentTag sets a tag on an active experiment.
func (s *Service) SetExperimentTag(ctx context.Context, id string, tag Tag) error {
	if id == "" {
		return missingParam("experiment_id")
	}
	if tag.Key == "" {
		return missingParam("key")
	}
	if err := validateExperimentTag(tag); err != nil {
		return err
	}
	if err := s.Store.SetExperimentTag(ctx, id, tag); err != nil {
		return fmt.Errorf("set tag %q on experiment %s: %w", tag.Key, id, err)
	}
	return nil
}

// DeleteExperimentTag deletes a tag of an active experiment; ENOTFOUND when
// the experiment has no such tag.
func (s *Service) DeleteExperimentTag(ctx context.Context, id, key string) error {
	if id == "" {
		return missingParam("experiment_id")
	}
	if key == "" {
		return missingParam("key")
	}
	if err := s.Store.DeleteExperimentTag(ctx, id, key); err != nil {
		return fmt.Errorf("delete tag %q of experiment %s: %w", key, id, err)
	}
	return nil
}

// Runs.

// CreateRunRequest holds the fields of a new run.
type CreateRunRequest struct {
	ExperimentID string // DefaultExperimentID when empty
	UserID       string // the mlflow.user tag when empty
	RunName      string // the mlflow.runName tag, or a random name, when empty
	StartTime    int64  // ms since the epoch; now when zero
	Tags         []Tag
}

// CreateRun creates a RUNNING run in an active experiment, with a new run id
// (a version 4 UUID in hex) and, as MLflow does, the mlflow.runName tag set to
// its name. The store gives it the artifact URI
// <experiment artifact location>/<run id>/artifacts. An unknown experiment is
// ENOTFOUND, a deleted one EINVALID.
func (s *Service) CreateRun(ctx context.Context, req CreateRunRequest) (*Run, error) {
	tags, err := uniqueTags(req.Tags, validateRunTag)
	if err != nil {
		return nil, err
	}
	expID := req.ExperimentID
	if expID == "" {
		expID = DefaultExperimentID
	}
	name, nameTag := req.RunName, findTag(tags, RunNameTag)
	if name != "" && nameTag != "" && name != nameTag {
		return nil, mloop.Errorf(mloop.EINVALID, "Both 'run_name' argument and 'mlflow.runName' tag are specified, but with different values (run_name='%s', mlflow.runName='%s').", name, nameTag)
	}
	if name == "" {
		name = nameTag
	}
	if name == "" {
		if name, err = randomModelName(); err != nil {
			return nil, fmt.Errorf("name new run: %w", err)
		}
	}
	if nameTag == "" {
		tags = append(tags, Tag{Key: RunNameTag, Value: name})
	}
	user := req.UserID
	if user == "" {
		user = findTag(tags, UserTag)
	}
	start := req.StartTime
	if start == 0 {
		start = s.now()
	}
	id, err := newUUIDHex()
	if err != nil {
		return nil, fmt.Errorf("new run id: %w", err)
	}
	r := &Run{
		Info: RunInfo{
			RunID:          id,
			RunName:        name,
			ExperimentID:   expID,
			UserID:         user,
			Status:         RunRunning,
			StartTime:      start,
			LifecycleStage: LifecycleActive,
		},
		Tags: tags,
	}
	// The store derives the run's artifact URI from the location stored
	// with the experiment; one stored without a location lives under
	// ArtifactRoot (see experimentLocation), so the URI is set here.
	exp, err := s.Store.GetExperiment(ctx, expID)
	if err != nil {
		return nil, fmt.Errorf("create run in experiment %s: %w", expID, err)
	}
	if exp.ArtifactLocation == "" {
		r.Info.ArtifactURI = appendURIPath(s.experimentLocation(exp), id, "artifacts")
	}
	if err := s.Store.CreateRun(ctx, r); err != nil {
		return nil, fmt.Errorf("create run in experiment %s: %w", expID, err)
	}
	return r, nil
}

// GetRun returns a run with its latest metrics, params, tags and inputs,
// active or deleted; ENOTFOUND when there is none with that id.
func (s *Service) GetRun(ctx context.Context, id string) (*Run, error) {
	if id == "" {
		return nil, missingParam("run_id")
	}
	return s.Store.GetRun(ctx, id)
}

// UpdateRun changes the status, end time or name of an active run and
// returns its info. Renaming a run also sets its mlflow.runName tag (the
// store does both at once); an empty name is ignored, as in MLflow.
func (s *Service) UpdateRun(ctx context.Context, id string, u RunUpdate) (*RunInfo, error) {
	if id == "" {
		return nil, missingParam("run_id")
	}
	if u.Status != nil {
		if err := validateRunStatus(*u.Status); err != nil {
			return nil, err
		}
	}
	if u.RunName != nil {
		if *u.RunName == "" {
			u.RunName = nil // MLflow ignores an empty name
		} else if err := validateRunTag(Tag{Key: RunNameTag, Value: *u.RunName}); err != nil {
			return nil, err
		}
	}
	info, err := s.Store.UpdateRun(ctx, id, u)
	if err != nil {
		return nil, fmt.Errorf("update run %s: %w", id, err)
	}
	return info, nil
}

// DeleteRun marks a run deleted.
func (s *Service) DeleteRun(ctx context.Context, id string) error {
	return s.setRunLifecycle(ctx, id, LifecycleDeleted)
}

// RestoreRun marks a deleted run active again.
func (s *Service) RestoreRun(ctx context.Context, id string) error {
	return s.setRunLifecycle(ctx, id, LifecycleActive)
}

func (s *Service) setRunLifecycle(ctx context.Context, id, stage string) error {
	if id == "" {
		return missingParam("run_id")
	}
	if err := s.Store.SetRunLifecycle(ctx, id, stage, s.now()); err != nil {
		return fmt.Errorf("mark run %s %s: %w", id, stage, err)
	}
	return nil
}

// SearchRunsRequest holds the fields of a SearchRuns call.
type SearchRunsRequest struct {
	ExperimentIDs []string
	Filter        string
	ViewType      string // ViewActiveOnly when empty
	MaxResults    *int   // DefaultSearchResults when nil
	OrderBy       []string
	PageToken     string
}

// SearchRuns returns a page of the runs of some experiments that match a
// filter, and the token of the next page ("" on the last page).
func (s *Service) SearchRuns(ctx context.Context, req SearchRunsRequest) ([]*Run, string, error) {
	q := RunQuery{ExperimentIDs: req.ExperimentIDs, MaxResults: DefaultSearchResults}
	var err error
	if q.ViewType, err = viewType(req.ViewType, "run_view_type"); err != nil {
		return nil, "", err
	}
	if req.MaxResults != nil {
		if q.MaxResults, err = searchMaxResults(*req.MaxResults, 0); err != nil {
			return nil, "", err
		}
	}
	if q.Offset, err = DecodePageToken(req.PageToken); err != nil {
		return nil, "", err
	}
	if strings.TrimSpace(req.Filter) != "" {
		if q.Filter, err = ParseRunFilter(req.Filter); err != nil {
			return nil, "", err
		}
	}
	if q.OrderBy, err = ParseRunOrderBy(req.OrderBy); err != nil {
		return nil, "", err
	}
	if len(q.ExperimentIDs) == 0 || q.MaxResults == 0 {
		return []*Run{}, "", nil // nothing to search: an empty page
	}
	limit := q.MaxResults
	q.MaxResults++ // one more than asked tells whether another page exists
	runs, err := s.Store.SearchRuns(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("search runs: %w", err)
	}
	runs, next := page(runs, q.Offset, limit)
	return runs, next, nil
}

// LogMetric logs one metric point to an active run.
func (s *Service) LogMetric(ctx context.Context, runID string, m Metric) error {
	return s.LogBatch(ctx, runID, []Metric{m}, nil, nil)
}

// LogParam logs a param to an active run. Logging it again with the same
// value is allowed; with another value it is EINVALID.
func (s *Service) LogParam(ctx context.Context, runID string, p Param) error {
	return s.LogBatch(ctx, runID, nil, []Param{p}, nil)
}

// SetTag sets a tag on an active run; setting mlflow.runName renames the run.
func (s *Service) SetTag(ctx context.Context, runID string, t Tag) error {
	return s.LogBatch(ctx, runID, nil, nil, []Tag{t})
}

// LogBatch logs metrics, params and tags to an active run atomically, after
// checking MLflow's batch limits and every key and value. A param key given
// twice in the batch, or already logged with another value, is EINVALID and
// nothing is written. A mlflow.runName tag renames the run.
func (s *Service) LogBatch(ctx context.Context, runID string, metrics []Metric, params []Param, tags []Tag) error {
	if runID == "" {
		return missingParam("run_id")
	}
	if err := checkBatchLimits(len(metrics), len(params), len(tags)); err != nil {
		return err
	}
	for _, m := range metrics {
		if err := validateMetric(m); err != nil {
			return err
		}
	}
	for _, p := range params {
		if err := validateParam(p); err != nil {
			return err
		}
	}
	if err := checkUniqueParams(params); err != nil {
		return err
	}
	tags, err := uniqueTags(tags, validateRunTag)
	if err != nil {
		return err
	}
	// The store renames the run, in the same transaction, when tags set
	// mlflow.runName.
	if err := s.Store.LogBatch(ctx, runID, metrics, params, tags); err != nil {
		return fmt.Errorf("log to run %s: %w", runID, err)
	}
	return nil
}

// DeleteTag deletes a tag of a run; ENOTFOUND when the run has no such tag.
func (s *Service) DeleteTag(ctx context.Context, runID, key string) error {
	if runID == "" {
		return missingParam("run_id")
	}
	if key == "" {
		return missingParam("key")
	}
	if err := s.Store.DeleteTag(ctx, runID, key); err != nil {
		return fmt.Errorf("delete tag %q of run %s: %w", key, runID, err)
	}
	return nil
}

// LogInputs records the datasets and MLflow 3 logged models a run used.
func (s *Service) LogInputs(ctx context.Context, runID string, datasets []DatasetInput, models []ModelInput) error {
	if runID == "" {
		return missingParam("run_id")
	}
	for i, d := range datasets {
		if err := validateDatasetInput(d, i); err != nil {
			return err
		}
	}
	for i, m := range models {
		if m.ModelID == "" {
			return missingParam(fmt.Sprintf("models[%d].model_id", i))
		}
	}
	if len(datasets) == 0 && len(models) == 0 {
		_, err := s.Store.GetRun(ctx, runID)
		return err
	}
	if err := s.Store.LogInputs(ctx, runID, datasets, models); err != nil {
		return fmt.Errorf("log inputs of run %s: %w", runID, err)
	}
	return nil
}

// LogOutputs records the MLflow 3 logged models a run produced.
func (s *Service) LogOutputs(ctx context.Context, runID string, models []ModelOutput) error {
	if runID == "" {
		return missingParam("run_id")
	}
	for i, m := range models {
		if m.ModelID == "" {
			return missingParam(fmt.Sprintf("models[%d].model_id", i))
		}
	}
	if len(models) == 0 {
		_, err := s.Store.GetRun(ctx, runID)
		return err
	}
	if err := s.Store.LogOutputs(ctx, runID, models); err != nil {
		return fmt.Errorf("log outputs of run %s: %w", runID, err)
	}
	return nil
}

// LogModel appends the description of a model logged with a run (MLflow's
// MLmodel file as JSON) to the JSON list in the run's
// mlflow.log-model.history tag, as MLflow 2's record_logged_model does.
// modelJSON must be a JSON object with artifact_path, flavors,
// utc_time_created and run_id; what is recorded is the model as MLflow's
// Model.from_dict(...).to_dict() returns it (see modelHistoryEntry).
func (s *Service) LogModel(ctx context.Context, runID, modelJSON string) error {
	if runID == "" {
		return missingParam("run_id")
	}
	if modelJSON == "" {
		return missingParam("model_json")
	}
	entry, err := modelHistoryEntry(modelJSON)
	if err != nil {
		return err
	}
	return s.appendModelHistory(ctx, runID, entry)
}

// appendModelHistory appends entry, a JSON object, to the run's
// mlflow.log-model.history tag. The store reads and rewrites the tag in one
// transaction, so concurrent calls on one run lose no entry.
func (s *Service) appendModelHistory(ctx context.Context, runID string, entry json.RawMessage) error {
	err := s.Store.UpdateTag(ctx, runID, LoggedModelsTag, func(old string, _ bool) (string, error) {
		history := []json.RawMessage{}
		if old != "" {
			if err := json.Unmarshal([]byte(old), &history); err != nil {
				return "", mloop.Errorf(mloop.EINVALID, "The tag '%s' of run %s is not a JSON list: %v", LoggedModelsTag, runID, err)
			}
		}
		b, err := json.Marshal(append(history, entry))
		if err != nil {
			return "", fmt.Errorf("encode %s: %w", LoggedModelsTag, err)
		}
		tag := Tag{Key: LoggedModelsTag, Value: string(b)}
		if err := validateRunTag(tag); err != nil {
			return "", err
		}
		return tag.Value, nil
	})
	if err != nil {
		return fmt.Errorf("log model to run %s: %w", runID, err)
	}
	return nil
}

// modelHistoryEntry validates a LogModel model_json and returns the object
// MLflow 2 records in the history tag, which is the model as MLflow's
// Model.from_dict(model).to_dict() gives it back: every field as sent, with
// model_uuid null when absent; mlflow_version, signature,
// saved_input_example_info, metadata and model_size_bytes left out when
// absent or null; flavors {} when null; and run_id and artifact_path left
// out when run_id is empty.
func modelHistoryEntry(modelJSON string) (json.RawMessage, error) {
	var model map[string]json.RawMessage
	if err := json.Unmarshal([]byte(modelJSON), &model); err != nil || model == nil {
		return nil, mloop.Errorf(mloop.EINVALID, "Malformed model info. \n %s \n is not a valid JSON.", truncate(modelJSON, 1000))
	}
	required := []string{"artifact_path", "flavors", "run_id", "utc_time_created"}
	var absent []string
	for _, k := range required {
		if _, ok := model[k]; !ok {
			absent = append(absent, "'"+k+"'")
		}
	}
	if len(absent) > 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "Model json is missing mandatory fields: {%s}", strings.Join(absent, ", "))
	}
	isNull := func(v json.RawMessage) bool { return len(v) == 0 || string(v) == "null" }
	if _, ok := model["model_uuid"]; !ok {
		model["model_uuid"] = json.RawMessage("null")
	}
	for _, k := range []string{"mlflow_version", "signature", "saved_input_example_info", "metadata", "model_size_bytes"} {
		if isNull(model[k]) {
			delete(model, k)
		}
	}
	if isNull(model["flavors"]) {
		model["flavors"] = json.RawMessage("{}")
	}
	var flavors map[string]json.RawMessage
	if err := json.Unmarshal(model["flavors"], &flavors); err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid value %s for parameter 'model_json' supplied: flavors must be a JSON object.", truncate(string(model["flavors"]), 100))
	}
	if id := model["run_id"]; isNull(id) || string(id) == `""` {
		delete(model, "run_id")
		delete(model, "artifact_path")
	}
	return jsonObjectInOrder(model, append(objectKeys(modelJSON), "model_uuid")), nil
}

// objectKeys returns the keys of the JSON object doc in the order they are
// written; doc must be a valid JSON object.
func objectKeys(doc string) []string {
	dec := json.NewDecoder(strings.NewReader(doc))
	var keys []string
	if _, err := dec.Token(); err != nil { // {
		return nil
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return keys
		}
		key, _ := tok.(string)
		keys = append(keys, key)
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			return keys
		}
	}
	return keys
}

// jsonObjectInOrder encodes fields, compactly, as a JSON object whose keys
// come in the order of keys (the first time each appears); keys not in
// fields are skipped.
func jsonObjectInOrder(fields map[string]json.RawMessage, keys []string) json.RawMessage {
	var b bytes.Buffer
	b.WriteByte('{')
	written := make(map[string]bool, len(fields))
	for _, k := range keys {
		v, ok := fields[k]
		if !ok || written[k] {
			continue
		}
		if len(written) > 0 {
			b.WriteByte(',')
		}
		written[k] = true
		name, _ := json.Marshal(k)
		b.Write(name)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	var out bytes.Buffer
	if err := json.Compact(&out, b.Bytes()); err != nil {
		return b.Bytes() // the parts are valid JSON: cannot happen
	}
	return out.Bytes()
}

// Metric histories.

// GetMetricHistory returns the points of a run's metric and the token of the
// next page ("" on the last page). A nil maxResults returns every point, as
// MLflow's handler does; otherwise it is the page size and must be positive.
func (s *Service) GetMetricHistory(ctx context.Context, runID, key string, maxResults *int, pageToken string) ([]Metric, string, error) {
	if runID == "" {
		return nil, "", missingParam("run_id")
	}
	if key == "" {
		return nil, "", missingParam("metric_key")
	}
	offset, err := DecodePageToken(pageToken)
	if err != nil {
		return nil, "", err
	}
	// Without a page size every point is returned: ask the store for more
	// points than a run can hold.
	limit, fetch := math.MaxInt32, math.MaxInt32
	if maxResults != nil {
		if *maxResults < 1 {
			return nil, "", mloop.Errorf(mloop.EINVALID, "Invalid value %d for parameter 'max_results' supplied. It must be a positive integer.", *maxResults)
		}
		limit = min(*maxResults, math.MaxInt32-1)
		fetch = limit + 1
	}
	points, err := s.Store.GetMetricHistory(ctx, runID, key, offset, fetch)
	if err != nil {
		return nil, "", fmt.Errorf("metric %q of run %s: %w", key, runID, err)
	}
	points, next := page(points, offset, limit)
	return points, next, nil
}

// BulkIntervalRequest holds the fields of a GetMetricHistoryBulkInterval call.
type BulkIntervalRequest struct {
	RunIDs     []string
	MetricKey  string
	StartStep  *int64 // both or neither of StartStep and EndStep
	EndStep    *int64
	MaxResults *int // MaxBulkIntervalResults when nil
}

// GetMetricHistoryBulkInterval returns a metric of several runs downsampled
// for charts, as MLflow's handler does: the steps the runs logged within
// [StartStep, EndStep] (by default from 0 to the largest step logged) are
// sampled down to about MaxResults steps, each run's first and last step in
// the range are added, and every point of every run at one of those steps is
// returned, run after run in the order of RunIDs (a repeated id counts
// once), each with its RunID set.
//
// MLflow reads every step of every run and samples their union. Here the
// store samples each run's steps in SQL (SampledMetricSteps) and the union of
// those samples is sampled again with SampleSteps, so the cost follows
// MaxResults rather than the length of the histories. For one run, or runs
// that log the same steps, the result is MLflow's; otherwise the steps differ
// but keep MLflow's bounds: at most MaxResults+1 sampled steps plus each
// run's ends.
func (s *Service) GetMetricHistoryBulkInterval(ctx context.Context, req BulkIntervalRequest) ([]Metric, error) {
	if len(req.RunIDs) == 0 {
		return nil, missingParam("run_ids")
	}
	if len(req.RunIDs) > MaxBulkIntervalRuns {
		return nil, mloop.Errorf(mloop.EINVALID, "GetMetricHistoryBulkInterval request must specify at most %d run_ids. Received %d run_ids.", MaxBulkIntervalRuns, len(req.RunIDs))
	}
	if req.MetricKey == "" {
		return nil, missingParam("metric_key")
	}
	maxResults := MaxBulkIntervalResults
	if req.MaxResults != nil {
		maxResults = *req.MaxResults
		if maxResults < 1 || maxResults > MaxBulkIntervalResults {
			return nil, mloop.Errorf(mloop.EINVALID, "max_results must be between 1 and %d.", MaxBulkIntervalResults)
		}
	}
	var start, end int64
	switch {
	case req.StartStep != nil && req.EndStep != nil:
		start, end = *req.StartStep, *req.EndStep
		if start > end {
			return nil, mloop.Errorf(mloop.EINVALID, "end_step must be greater than start_step. Found start_step=%d and end_step=%d.", start, end)
		}
	case req.StartStep != nil || req.EndStep != nil:
		return nil, mloop.Errorf(mloop.EINVALID, "If either start step or end step are specified, both must be specified.")
	}
	runIDs := uniqueStrings(req.RunIDs)
	type stepRange struct {
		min, max int64
		ok       bool
	}
	ranges := make([]stepRange, len(runIDs))
	for i, id := range runIDs {
		lo, hi, ok, err := s.Store.MetricStepRange(ctx, id, req.MetricKey)
		if err != nil {
			return nil, fmt.Errorf("steps of metric %q of run %s: %w", req.MetricKey, id, err)
		}
		ranges[i] = stepRange{lo, hi, ok}
		if req.StartStep == nil && ok {
			end = max(end, hi)
		}
	}
	var sampled, bounds []int64
	for i, id := range runIDs {
		r := ranges[i]
		if !r.ok {
			continue
		}
		steps, err := s.Store.SampledMetricSteps(ctx, id, req.MetricKey, start, end, maxResults)
		if err != nil {
			return nil, fmt.Errorf("sample steps of metric %q of run %s: %w", req.MetricKey, id, err)
		}
		sampled = mergeSteps(sampled, steps)
		for _, b := range []int64{r.min, r.max} {
			if start <= b && b <= end {
				bounds = append(bounds, b)
			}
		}
	}
	steps := mergeSteps(SampleSteps(sampled, start, end, maxResults), bounds)
	out := []Metric{}
	for i, id := range runIDs {
		if !ranges[i].ok || len(steps) == 0 {
			continue
		}
		points, err := s.Store.MetricsAtSteps(ctx, id, req.MetricKey, steps, MaxMetricHistoryResults)
		if err != nil {
			return nil, fmt.Errorf("metric %q of run %s: %w", req.MetricKey, id, err)
		}
		for j := range points {
			points[j].RunID = id
		}
		out = append(out, points...)
	}
	return out, nil
}

// Endpoints of MLflow's web UI (ajax-api only).

// Limits of the endpoints MLflow serves only to its web UI.
const (
	// MaxHistoryBulkRuns is the most run ids one GetMetricHistoryBulk may name.
	MaxHistoryBulkRuns = 20
	// MaxSearchDatasetsExperiments is the most experiment ids one
	// SearchDatasets may name.
	MaxSearchDatasetsExperiments = 20
	// MaxDatasetSummaries is the most summaries SearchDatasets returns.
	MaxDatasetSummaries = 1000
)

// GetMetricHistoryBulk returns every point of the metric key logged by the
// runs runIDs, as MLflow's GetMetricHistoryBulk: run after run in ascending
// order of run id (an id given twice counts once), each run's points in
// (timestamp, step, value) order, each with its RunID set, and at most
// maxResults points in all (MaxMetricHistoryResults when maxResults is
// larger). Runs that never logged key, or do not exist, add nothing. The
// run ids are checked before the key, as in MLflow.
//
// The store returns a run's history in step order, so each run's history is
// read whole and sorted here: the cost follows the length of the histories,
// not maxResults.
func (s *Service) GetMetricHistoryBulk(ctx context.Context, runIDs []string, key string, maxResults int) ([]Metric, error) {
	switch {
	case len(runIDs) == 0:
		return nil, mloop.Errorf(mloop.EINVALID, "GetMetricHistoryBulk request must specify at least one run_id.")
	case len(runIDs) > MaxHistoryBulkRuns:
		return nil, mloop.Errorf(mloop.EINVALID, "GetMetricHistoryBulk request cannot specify more than %d run_ids. Received %d run_ids.", MaxHistoryBulkRuns, len(runIDs))
	case key == "":
		return nil, mloop.Errorf(mloop.EINVALID, "GetMetricHistoryBulk request must specify a metric_key.")
	case maxResults < 0:
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid value %d for parameter 'max_results' supplied. It must be a non-negative integer.", maxResults)
	}
	maxResults = min(maxResults, MaxMetricHistoryResults)
	ids := uniqueStrings(runIDs)
	slices.Sort(ids)
	out := []Metric{}
	for _, id := range ids {
		if len(out) >= maxResults {
			break
		}
		points, err := s.Store.GetMetricHistory(ctx, id, key, 0, math.MaxInt32)
		if mloop.IsNotFound(err) {
			continue // an unknown run has no points
		} else if err != nil {
			return nil, fmt.Errorf("metric %q of run %s: %w", key, id, err)
		}
		slices.SortStableFunc(points, func(a, b Metric) int {
			return cmp.Or(cmp.Compare(a.Timestamp, b.Timestamp), cmp.Compare(a.Step, b.Step), cmp.Compare(a.Value, b.Value))
		})
		for i := range points {
			points[i].RunID = id
		}
		out = append(out, points[:min(len(points), maxResults-len(out))]...)
	}
	return out, nil
}

// DatasetSummary is one dataset used by the runs of an experiment, in one
// context ("training", "evaluation", …), as MLflow's UI lists them.
type DatasetSummary struct {
	ExperimentID string
	Name         string
	Digest       string
	// Context is the value of the dataset input's mlflow.data.context tag;
	// nil when the dataset was logged without one.
	Context *string
}

// SearchDatasets returns the distinct (experiment, dataset, context)
// triples of the datasets the runs of experimentIDs used, at most
// MaxDatasetSummaries of them, as MLflow's SearchDatasets.
func (s *Service) SearchDatasets(ctx context.Context, experimentIDs []string) ([]DatasetSummary, error) {
	switch {
	case len(experimentIDs) == 0:
		return nil, mloop.Errorf(mloop.EINVALID, "SearchDatasets request must specify at least one experiment_id.")
	case len(experimentIDs) > MaxSearchDatasetsExperiments:
		return nil, mloop.Errorf(mloop.EINVALID, "SearchDatasets request cannot specify more than %d experiment_ids. Received %d experiment_ids.", MaxSearchDatasetsExperiments, len(experimentIDs))
	}
	summaries, err := s.Store.SearchDatasets(ctx, uniqueStrings(experimentIDs), MaxDatasetSummaries)
	if err != nil {
		return nil, fmt.Errorf("search datasets: %w", err)
	}
	return summaries, nil
}

// PromptlabRunRequest holds the fields of a run of MLflow's prompt
// engineering UI: a prompt template filled with parameters, sent to a model
// route of the AI gateway, and the output it gave.
type PromptlabRunRequest struct {
	ExperimentID          string
	RunName               string
	Tags                  []Tag
	PromptTemplate        string
	PromptParameters      []Param
	ModelRoute            string
	ModelParameters       []Param
	ModelInput            string
	ModelOutput           *string // nil when the UI sent none
	ModelOutputParameters []Param
	MLflowVersion         string
	UserID                string // "unknown" when empty
	StartTime             int64  // now when zero
}

// ArtifactWriter stores files, keyed by their paths relative to the run's
// artifact root, among the artifacts of run.
type ArtifactWriter func(ctx context.Context, run *RunInfo, files map[string][]byte) error

// Tags and files of a prompt engineering run.
const (
	// LoggedArtifactsTag lists the artifacts the MLflow UI shows specially.
	LoggedArtifactsTag = "mlflow.loggedArtifacts"
	// RunSourceTypeTag says what created a run.
	RunSourceTypeTag = "mlflow.runSourceType"
	// PromptlabEvalResults is the artifact holding the prompt's inputs and output.
	PromptlabEvalResults = "eval_results_table.json"
)

// CreatePromptlabRun records a run of MLflow's prompt engineering UI, as
// MLflow's CreatePromptlabRun: it creates the run; logs the model
// parameters and the model_route and prompt_template params; sets the
// mlflow.loggedArtifacts and mlflow.runSourceType (PROMPT_ENGINEERING) tags;
// records a model logged at "model" in mlflow.log-model.history; has write
// store eval_results_table.json, the table of the prompt parameters, the
// prompt, the output and the output parameters; and ends the run FINISHED.
//
// Missing fields are EINVALID, checked before anything is written. Once the
// run exists, a failure to log to it does not undo it: the run is ended
// FAILED and returned together with the error, as MLflow keeps it too.
//
// MLflow also saves the prompt as a Python model under "model"; mloop writes
// only the table, since that model needs MLflow's Python runtime to load.
func (s *Service) CreatePromptlabRun(ctx context.Context, req PromptlabRunRequest, write ArtifactWriter) (*Run, error) {
	for _, f := range []struct {
		name  string
		given bool
	}{
		{"experiment_id", req.ExperimentID != ""},
		{"prompt_template", req.PromptTemplate != ""},
		{"prompt_parameters", len(req.PromptParameters) > 0},
		{"model_route", req.ModelRoute != ""},
		{"model_input", req.ModelInput != ""},
		{"mlflow_version", req.MLflowVersion != ""},
	} {
		if !f.given {
			return nil, mloop.Errorf(mloop.EINVALID, "CreatePromptlabRun request must specify %s.", f.name)
		}
	}
	user := req.UserID
	if user == "" {
		user = "unknown"
	}
	run, err := s.CreateRun(ctx, CreateRunRequest{ExperimentID: req.ExperimentID, UserID: user,
		RunName: req.RunName, StartTime: req.StartTime, Tags: req.Tags})
	if err != nil {
		return nil, err
	}
	status, logErr := RunFinished, s.logPromptlabRun(ctx, &run.Info, req, write)
	if logErr != nil {
		status, logErr = RunFailed, fmt.Errorf("log prompt engineering run %s: %w", run.Info.RunID, logErr)
	}
	end := s.now()
	if _, err := s.UpdateRun(ctx, run.Info.RunID, RunUpdate{Status: &status, EndTime: &end}); err != nil {
		return nil, errors.Join(logErr, err)
	}
	run, err = s.GetRun(ctx, run.Info.RunID)
	if err != nil {
		return nil, errors.Join(logErr, err)
	}
	return run, logErr
}

// logPromptlabRun logs the params, tags, model and artifacts of a prompt
// engineering run (see CreatePromptlabRun).
func (s *Service) logPromptlabRun(ctx context.Context, run *RunInfo, req PromptlabRunRequest, write ArtifactWriter) error {
	params := append(slices.Clone(req.ModelParameters),
		Param{Key: "model_route", Value: req.ModelRoute},
		Param{Key: "prompt_template", Value: req.PromptTemplate})
	tags := []Tag{
		{Key: LoggedArtifactsTag, Value: `[{"path": "` + PromptlabEvalResults + `", "type": "table"}]`},
		{Key: RunSourceTypeTag, Value: "PROMPT_ENGINEERING"},
	}
	if err := s.LogBatch(ctx, run.RunID, nil, params, tags); err != nil {
		return err
	}
	modelUUID, err := newUUIDHex()
	if err != nil {
		return fmt.Errorf("new model uuid: %w", err)
	}
	entry, err := json.Marshal(struct {
		RunID          string            `json:"run_id"`
		ArtifactPath   string            `json:"artifact_path"`
		UTCTimeCreated string            `json:"utc_time_created"`
		Flavors        map[string]string `json:"flavors"`
		ModelUUID      string            `json:"model_uuid"`
		MLflowVersion  string            `json:"mlflow_version"`
	}{run.RunID, "model", time.UnixMilli(s.now()).UTC().Format("2006-01-02 15:04:05.000000"), map[string]string{}, modelUUID, req.MLflowVersion})
	if err != nil {
		return fmt.Errorf("encode model history entry: %w", err)
	}
	if err := s.appendModelHistory(ctx, run.RunID, entry); err != nil {
		return err
	}
	return write(ctx, run, map[string][]byte{PromptlabEvalResults: promptlabEvalResults(req)})
}

// promptlabEvalResults returns eval_results_table.json of a prompt
// engineering run, byte for byte as MLflow writes it (Python's json.dumps):
// one row of the prompt parameter values, the prompt, the output and the
// output parameter values, under columns named after them.
func promptlabEvalResults(req PromptlabRunRequest) []byte {
	var columns []string
	var row []*string
	for _, p := range req.PromptParameters {
		columns, row = append(columns, p.Key), append(row, &p.Value)
	}
	columns, row = append(columns, "prompt", "output"), append(row, &req.ModelInput, req.ModelOutput)
	for _, p := range req.ModelOutputParameters {
		columns, row = append(columns, p.Key), append(row, &p.Value)
	}
	var b strings.Builder
	b.WriteString(`{"columns": [`)
	for i, c := range columns {
		if i > 0 {
			b.WriteString(", ")
		}
		writePythonJSONString(&b, c)
	}
	b.WriteString(`], "data": [[`)
	for i, v := range row {
		if i > 0 {
			b.WriteString(", ")
		}
		if v == nil {
			b.WriteString("null")
		} else {
			writePythonJSONString(&b, *v)
		}
	}
	b.WriteString("]]}")
	return []byte(b.String())
}

// writePythonJSONString writes s as a JSON string the way Python's
// json.dumps does by default: every character outside ASCII escaped as
// \uXXXX (a surrogate pair above U+FFFF).
func writePythonJSONString(b *strings.Builder, s string) {
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r > 0x7e && r <= 0xffff):
			fmt.Fprintf(b, `\u%04x`, r)
		case r > 0xffff:
			hi, lo := utf16.EncodeRune(r)
			fmt.Fprintf(b, `\u%04x\u%04x`, hi, lo)
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
}

// Validation, as mlflow/utils/validation.py.

const badCharactersMessage = "Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), and slashes (/)."

// ValidateKey checks a metric, param or tag key with MLflow's rules: only
// letters, digits, underscores, dashes, periods, spaces and slashes, and a
// path that does not resolve to another name (no "..", no leading or
// trailing slash, no "//"). entity names the kind of key in the message
// ("metric", "parameter", "tag"). Errors are EINVALID.
func ValidateKey(entity, key string) error {
	for _, r := range key {
		if !(unicode.IsLetter(r) || unicode.IsNumber(r) || strings.ContainsRune("_/.- ", r)) {
			return mloop.Errorf(mloop.EINVALID, "Invalid %s name: '%s'. %s", entity, key, badCharactersMessage)
		}
	}
	norm := path.Clean(key)
	if norm != key || norm == "." || strings.HasPrefix(norm, "..") || strings.HasPrefix(norm, "/") {
		return mloop.Errorf(mloop.EINVALID, "Invalid %s name: '%s'. Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to '%s'", entity, key, norm)
	}
	return nil
}

// CheckLength returns MLflow's EINVALID error when value is longer than
// limit characters; what names the value ("Param value", "Tag key", …).
func CheckLength(what string, limit int, value string) error {
	if n := utf8.RuneCountInString(value); n > limit {
		shown := value
		if utf8.RuneCountInString(shown) > 250 {
			shown = string([]rune(shown)[:250])
		}
		return mloop.Errorf(mloop.EINVALID, "%s '%s' had length %d, which exceeded length limit of %d", what, shown, n, limit)
	}
	return nil
}

func validateMetric(m Metric) error {
	if err := ValidateKey("metric", m.Key); err != nil {
		return err
	}
	if m.Timestamp < 0 {
		return mloop.Errorf(mloop.EINVALID, "Got invalid timestamp %d for metric '%s' (value=%v). Timestamp must be a nonnegative long (64-bit integer) ", m.Timestamp, m.Key, m.Value)
	}
	return CheckLength("Metric name", MaxEntityKeyLength, m.Key)
}

func validateParam(p Param) error {
	if err := ValidateKey("parameter", p.Key); err != nil {
		return err
	}
	if err := CheckLength("Param key", MaxEntityKeyLength, p.Key); err != nil {
		return err
	}
	return CheckLength("Param value", MaxParamValueLength, p.Value)
}

func validateRunTag(t Tag) error {
	if err := ValidateKey("tag", t.Key); err != nil {
		return err
	}
	if err := CheckLength("Tag key", MaxEntityKeyLength, t.Key); err != nil {
		return err
	}
	return CheckLength("Tag value", MaxTagValueLength, t.Value)
}

func validateExperimentTag(t Tag) error {
	if err := ValidateKey("tag", t.Key); err != nil {
		return err
	}
	if err := CheckLength("Tag key", MaxEntityKeyLength, t.Key); err != nil {
		return err
	}
	return CheckLength("Tag value", MaxExperimentTagValueLength, t.Value)
}

func validateExperimentName(name string) error {
	if name == "" {
		return mloop.Errorf(mloop.EINVALID, "Invalid experiment name: '%s'", name)
	}
	if utf8.RuneCountInString(name) > MaxExperimentNameLength {
		return mloop.Errorf(mloop.EINVALID, "Experiment name exceeds the maximum length of %d characters", MaxExperimentNameLength)
	}
	return nil
}

// validateArtifactLocation applies MLflow's rules for an experiment's
// artifact location: not a runs:/ URI, no fragment or params, and no ".." in
// its query string.
func validateArtifactLocation(loc string) error {
	if strings.HasPrefix(loc, "runs:") {
		return mloop.Errorf(mloop.EINVALID, "Artifact location cannot be a runs:/ URI. Given: '%s'", loc)
	}
	u, err := url.Parse(loc)
	if err != nil {
		return mloop.Errorf(mloop.EINVALID, "Invalid value '%s' for parameter 'artifact_location' supplied: %v", loc, err)
	}
	if u.Fragment != "" || strings.Contains(u.Path, ";") {
		return mloop.Errorf(mloop.EINVALID, "'artifact_location' URL can't include fragments or params.")
	}
	if q, err := url.QueryUnescape(u.RawQuery); err != nil || strings.Contains(q, "..") {
		return mloop.Errorf(mloop.EINVALID, "Invalid query string")
	}
	return nil
}

func validateRunStatus(status string) error {
	switch status {
	case RunRunning, RunScheduled, RunFinished, RunFailed, RunKilled:
		return nil
	}
	return mloop.Errorf(mloop.EINVALID, "Invalid value '%s' for parameter 'status' supplied. It must be one of %s, %s, %s, %s, %s.",
		status, RunRunning, RunScheduled, RunFinished, RunFailed, RunKilled)
}

func validateDatasetInput(d DatasetInput, i int) error {
	ds := d.Dataset
	for _, f := range []struct{ name, value string }{
		{"name", ds.Name}, {"digest", ds.Digest}, {"source_type", ds.SourceType}, {"source", ds.Source},
	} {
		if f.value == "" {
			return missingParam(fmt.Sprintf("datasets[%d].dataset.%s", i, f.name))
		}
	}
	for _, f := range []struct {
		name  string
		limit int
		value string
	}{
		{"name", MaxDatasetNameLength, ds.Name},
		{"digest", MaxDatasetDigestLength, ds.Digest},
		{"source", MaxDatasetSourceLength, ds.Source},
		{"schema", MaxDatasetSchemaLength, ds.Schema},
		{"profile", MaxDatasetProfileLength, ds.Profile},
	} {
		if utf8.RuneCountInString(f.value) > f.limit {
			return mloop.Errorf(mloop.EINVALID, "Dataset %s exceeds the maximum length of %d", f.name, f.limit)
		}
	}
	for j, t := range d.Tags {
		switch {
		case t.Key == "":
			return missingParam(fmt.Sprintf("datasets[%d].tags[%d].key", i, j))
		case utf8.RuneCountInString(t.Key) > MaxInputTagKeyLength:
			return mloop.Errorf(mloop.EINVALID, "InputTag key exceeds the maximum length of %d", MaxInputTagKeyLength)
		case utf8.RuneCountInString(t.Value) > MaxInputTagValueLength:
			return mloop.Errorf(mloop.EINVALID, "InputTag value exceeds the maximum length of %d", MaxInputTagValueLength)
		}
	}
	return nil
}

// checkBatchLimits applies MLflow's limits on the size of one LogBatch.
func checkBatchLimits(metrics, params, tags int) error {
	for _, l := range []struct {
		what       string
		limit, got int
	}{
		{"metrics", MaxMetricsPerBatch, metrics},
		{"params", MaxParamsTagsPerBatch, params},
		{"tags", MaxParamsTagsPerBatch, tags},
		{"metrics, params, and tags", MaxEntitiesPerBatch, metrics + params + tags},
	} {
		if l.got > l.limit {
			return mloop.Errorf(mloop.EINVALID, "A batch logging request can contain at most %d %s. Got %d %s. Please split up %s across multiple requests and try again.",
				l.limit, l.what, l.got, l.what, l.what)
		}
	}
	return nil
}

// checkUniqueParams rejects a batch that gives a param key twice.
func checkUniqueParams(params []Param) error {
	seen := make(map[string]bool, len(params))
	var dupes []string
	for _, p := range params {
		if seen[p.Key] {
			dupes = append(dupes, "'"+p.Key+"'")
		}
		seen[p.Key] = true
	}
	if len(dupes) > 0 {
		return mloop.Errorf(mloop.EINVALID, "Duplicate parameter keys have been submitted: [%s]. Please ensure the request contains only one param value per param key.", strings.Join(dupes, ", "))
	}
	return nil
}

// uniqueTags validates tags with validate and keeps, for a key given twice,
// its last value in the place of its first.
func uniqueTags(tags []Tag, validate func(Tag) error) ([]Tag, error) {
	out := make([]Tag, 0, len(tags))
	index := make(map[string]int, len(tags))
	for _, t := range tags {
		if err := validate(t); err != nil {
			return nil, err
		}
		if j, ok := index[t.Key]; ok {
			out[j].Value = t.Value
			continue
		}
		index[t.Key] = len(out)
		out = append(out, t)
	}
	return out, nil
}

// uniqueStrings returns ss without repeats, in the order of first appearance.
func uniqueStrings(ss []string) []string {
	out := make([]string, 0, len(ss))
	seen := make(map[string]bool, len(ss))
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// findTag returns the value of the tag key in tags, or "".
func findTag(tags []Tag, key string) string {
	for _, t := range tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// viewType checks a view type, defaulting to ViewActiveOnly; field names the
// request field in the error.
func viewType(v, field string) (string, error) {
	switch v {
	case "":
		return ViewActiveOnly, nil
	case ViewActiveOnly, ViewDeletedOnly, ViewAll:
		return v, nil
	}
	return "", mloop.Errorf(mloop.EINVALID, "Invalid value '%s' for parameter '%s' supplied. It must be one of %s, %s, %s.",
		v, field, ViewActiveOnly, ViewDeletedOnly, ViewAll)
}

// searchMaxResults checks the page size of a search against MLflow's bounds.
func searchMaxResults(n, least int) (int, error) {
	switch {
	case n < least:
		return 0, mloop.Errorf(mloop.EINVALID, "Invalid value for max_results. It must be a positive integer, but got %d", n)
	case n > MaxSearchResults:
		return 0, mloop.Errorf(mloop.EINVALID, "Invalid value for request parameter max_results. It must be at most %d, but got value %d", MaxSearchResults, n)
	}
	return n, nil
}

// page trims items, fetched with one more than limit, to limit and returns
// the token of the next page when there is one.
func page[T any](items []T, offset, limit int) ([]T, string) {
	if len(items) > limit {
		return items[:limit], EncodePageToken(offset + limit)
	}
	return items, ""
}

// newUUIDHex returns a random version 4 UUID as 32 hex digits, the form of
// MLflow's run ids.
func newUUIDHex() (string, error) {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return hex.EncodeToString(b[:]), nil
}
