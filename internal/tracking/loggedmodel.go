package tracking

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
)

// This file holds MLflow 3 logged models: a model logged to an experiment as
// an entity of its own (mlflow.<flavor>.log_model creates one, uploads its
// files under its artifact location, then finalizes it), with tags, immutable
// params and the metrics runs log against it.

// Statuses of a logged model, as MLflow's LoggedModelStatus names them. The
// wire format spells them LOGGED_MODEL_PENDING, LOGGED_MODEL_READY and
// LOGGED_MODEL_UPLOAD_FAILED.
const (
	LoggedModelPending = "PENDING"
	LoggedModelReady   = "READY"
	LoggedModelFailed  = "FAILED"
)

// Limits and defaults of the logged-model API.
const (
	// DefaultLoggedModelResults is the page size of SearchLoggedModels when
	// the request names none (MLflow's SEARCH_LOGGED_MODEL_MAX_RESULTS_DEFAULT).
	DefaultLoggedModelResults = 100
	// MaxLoggedModelKeyLength is the longest tag or param key of a logged
	// model (MLflow's logged_model_tags and logged_model_params columns).
	MaxLoggedModelKeyLength = 255
)

// ModelVersionsTag is the logged-model tag that lists the registered model
// versions made from the model, as a JSON array of {"name", "version"}
// objects (MLflow's mlflow.modelVersions).
const ModelVersionsTag = "mlflow.modelVersions"

// LoggedModel is an MLflow 3 logged model.
type LoggedModel struct {
	ModelID              string // "m-" followed by 32 hex digits
	ExperimentID         string
	Name                 string
	ArtifactLocation     string // <experiment artifact location>/models/<model id>/artifacts
	CreationTimestamp    int64  // ms since the epoch
	LastUpdatedTimestamp int64  // ms since the epoch
	ModelType            string
	SourceRunID          string
	Status               string // one of the LoggedModel* statuses
	StatusMessage        string
	LifecycleStage       string // LifecycleActive or LifecycleDeleted
	Tags                 []Tag
	Params               []Param
	Metrics              []ModelMetric
}

// ModelMetric is a metric point a run logged against a logged model, with
// the dataset it was computed on, if any.
type ModelMetric struct {
	Metric        // Key, Value, Timestamp, Step, RunID
	ModelID       string
	DatasetName   string
	DatasetDigest string
}

// DatasetRef names a dataset by name and, optionally, digest. SearchLoggedModels
// uses it to restrict metric filters and metric ordering to metrics computed
// on that dataset.
type DatasetRef struct {
	Name   string
	Digest string
}

// LoggedModelOrder is one term of a SearchLoggedModels ordering: an attribute
// (Entity EntityAttribute, Key one of name, model_id, model_type, status,
// source_run_id, creation_timestamp, last_updated_timestamp) or the latest
// value of a metric (Entity EntityMetric), optionally on one dataset.
type LoggedModelOrder struct {
	OrderBy
	DatasetName   string
	DatasetDigest string
}

// LoggedModelQuery selects logged models for a store search. Filter holds
// only comparisons that ValidateLoggedModelFilter accepts; the store returns
// active models of ExperimentIDs ordered by OrderBy, then by creation time
// (newest first) and model id, skipping Offset and returning at most
// MaxResults.
type LoggedModelQuery struct {
	ExperimentIDs []string
	Filter        Filter
	Datasets      []DatasetRef
	OrderBy       []LoggedModelOrder
	MaxResults    int
	Offset        int
}

// LoggedModelStore persists logged models. Methods return *mloop.Error
// values: ENOTFOUND for an unknown model (whether or not it is deleted) or
// tag, EINVALID for a param whose value would change, and wrapped driver
// errors otherwise. Each method is one transaction.
type LoggedModelStore interface {
	// CreateLoggedModel inserts m with its tags and params. The experiment
	// must exist.
	CreateLoggedModel(ctx context.Context, m *LoggedModel) error
	// GetLoggedModel returns the model with its tags, params and metrics,
	// deleted or not.
	GetLoggedModel(ctx context.Context, id string) (*LoggedModel, error)
	// FinalizeLoggedModel sets the status and last update time of a model and
	// returns it.
	FinalizeLoggedModel(ctx context.Context, id, status string, now int64) (*LoggedModel, error)
	// DeleteLoggedModel marks a model deleted.
	DeleteLoggedModel(ctx context.Context, id string, now int64) error
	// SetLoggedModelTags sets (inserts or replaces) tags of a model.
	SetLoggedModelTags(ctx context.Context, id string, tags []Tag) error
	// DeleteLoggedModelTag deletes a tag of a model; ENOTFOUND when the model
	// has no such tag.
	DeleteLoggedModelTag(ctx context.Context, id, key string) error
	// UpdateLoggedModelTag reads the tag key of a model (ok is false when it
	// is not set), calls update and sets the tag to the value it returns, all
	// in one transaction that holds the model's row, so concurrent updates of
	// the same tag serialise. An error from update is returned unchanged and
	// nothing is written.
	UpdateLoggedModelTag(ctx context.Context, id, key string, update func(old string, ok bool) (string, error)) error
	// LogLoggedModelParams adds params to a model. Logging a param again with
	// the same value is allowed; with another value it is EINVALID and
	// nothing is written.
	LogLoggedModelParams(ctx context.Context, id string, params []Param) error
	// LogLoggedModelMetrics inserts metric points of models; a point whose
	// model, key, timestamp, step and run are already stored is skipped.
	// Every model and run must exist.
	LogLoggedModelMetrics(ctx context.Context, metrics []ModelMetric) error
	// SearchLoggedModels returns the models q selects, with their tags,
	// params and metrics.
	SearchLoggedModels(ctx context.Context, q LoggedModelQuery) ([]*LoggedModel, error)
}

// ExperimentGetter finds an experiment; Store implements it. It returns
// ENOTFOUND for an unknown experiment.
type ExperimentGetter interface {
	GetExperiment(ctx context.Context, id string) (*Experiment, error)
}

// LoggedModels applies MLflow 3's logged-model rules on top of a store.
type LoggedModels struct {
	// Store persists the models.
	Store LoggedModelStore
	// Experiments finds the experiment of a new model, for its artifact
	// location and lifecycle stage.
	Experiments ExperimentGetter
	// Now returns the current time; it defaults to time.Now.
	Now func() time.Time
}

// NewLoggedModels returns a LoggedModels service over store that finds the
// artifact location of new models through experiments.
func NewLoggedModels(store LoggedModelStore, experiments ExperimentGetter) *LoggedModels {
	return &LoggedModels{Store: store, Experiments: experiments, Now: time.Now}
}

func (s *LoggedModels) now() int64 {
	if s.Now == nil {
		return time.Now().UnixMilli()
	}
	return s.Now().UnixMilli()
}

// CreateLoggedModelRequest holds the fields of a new logged model.
type CreateLoggedModelRequest struct {
	ExperimentID string
	Name         string // a random name when empty
	ModelType    string
	SourceRunID  string
	Params       []Param
	Tags         []Tag
}

// CreateLoggedModel creates a model in the PENDING status in an active
// experiment, with a new id and an artifact location under the experiment's.
func (s *LoggedModels) CreateLoggedModel(ctx context.Context, req CreateLoggedModelRequest) (*LoggedModel, error) {
	if req.ExperimentID == "" {
		return nil, missingParam("experiment_id")
	}
	if err := validateLoggedModelName(req.Name); err != nil {
		return nil, err
	}
	params, err := uniqueParams(req.Params, "a new logged model")
	if err != nil {
		return nil, err
	}
	tags, err := uniqueTags(req.Tags, validateLoggedModelTag)
	if err != nil {
		return nil, err
	}
	exp, err := s.Experiments.GetExperiment(ctx, req.ExperimentID)
	if err != nil {
		return nil, err
	}
	if exp.LifecycleStage != LifecycleActive {
		return nil, mloop.Errorf(mloop.EINVALID, "The experiment %s must be in the 'active' state. Current state is %s.", exp.ID, exp.LifecycleStage)
	}
	id, err := newModelID()
	if err != nil {
		return nil, err
	}
	name := req.Name
	if name == "" {
		if name, err = randomModelName(); err != nil {
			return nil, err
		}
	}
	now := s.now()
	m := &LoggedModel{
		ModelID:              id,
		ExperimentID:         exp.ID,
		Name:                 name,
		ArtifactLocation:     appendURIPath(exp.ArtifactLocation, "models", id, "artifacts"),
		CreationTimestamp:    now,
		LastUpdatedTimestamp: now,
		ModelType:            req.ModelType,
		SourceRunID:          req.SourceRunID,
		Status:               LoggedModelPending,
		LifecycleStage:       LifecycleActive,
		Tags:                 tags,
		Params:               params,
	}
	if err := s.Store.CreateLoggedModel(ctx, m); err != nil {
		return nil, fmt.Errorf("create logged model in experiment %s: %w", exp.ID, err)
	}
	return m, nil
}

// GetLoggedModel returns a model. A deleted model is ENOTFOUND unless
// allowDeleted is set.
func (s *LoggedModels) GetLoggedModel(ctx context.Context, id string, allowDeleted bool) (*LoggedModel, error) {
	if id == "" {
		return nil, missingParam("model_id")
	}
	m, err := s.Store.GetLoggedModel(ctx, id)
	if err != nil {
		return nil, err
	}
	if m.LifecycleStage == LifecycleDeleted && !allowDeleted {
		return nil, LoggedModelNotFound(id)
	}
	return m, nil
}

// FinalizeLoggedModel sets the status of a model to READY or FAILED once its
// files are uploaded (or failed to upload) and returns the model.
func (s *LoggedModels) FinalizeLoggedModel(ctx context.Context, id, status string) (*LoggedModel, error) {
	if id == "" {
		return nil, missingParam("model_id")
	}
	switch status {
	case "":
		return nil, missingParam("status")
	case LoggedModelPending, LoggedModelReady, LoggedModelFailed:
	default:
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid value '%s' for parameter 'status' supplied. It must be one of %s, %s, %s.",
			status, LoggedModelPending, LoggedModelReady, LoggedModelFailed)
	}
	return s.Store.FinalizeLoggedModel(ctx, id, status, s.now())
}

// DeleteLoggedModel marks a model deleted: searches skip it and
// GetLoggedModel no longer finds it unless asked for deleted models.
func (s *LoggedModels) DeleteLoggedModel(ctx context.Context, id string) error {
	if id == "" {
		return missingParam("model_id")
	}
	return s.Store.DeleteLoggedModel(ctx, id, s.now())
}

// SetLoggedModelTags sets tags on a model; when a key repeats, its last
// value wins.
func (s *LoggedModels) SetLoggedModelTags(ctx context.Context, id string, tags []Tag) error {
	if id == "" {
		return missingParam("model_id")
	}
	tags, err := uniqueTags(tags, validateLoggedModelTag)
	if err != nil {
		return err
	}
	return writeToModel(ctx, s, id, tags, s.Store.SetLoggedModelTags)
}

// DeleteLoggedModelTag deletes a tag of a model.
func (s *LoggedModels) DeleteLoggedModelTag(ctx context.Context, id, key string) error {
	if id == "" {
		return missingParam("model_id")
	}
	if key == "" {
		return missingParam("tag_key")
	}
	return s.Store.DeleteLoggedModelTag(ctx, id, key)
}

// LogLoggedModelParams adds params to a model. Params are immutable: logging
// a key again with another value is EINVALID.
func (s *LoggedModels) LogLoggedModelParams(ctx context.Context, id string, params []Param) error {
	if id == "" {
		return missingParam("model_id")
	}
	params, err := uniqueParams(params, "logged model '"+id+"'")
	if err != nil {
		return err
	}
	return writeToModel(ctx, s, id, params, s.Store.LogLoggedModelParams)
}

// writeToModel stores items on model id with write; with no items it only
// checks that the model exists, so an empty request still gets ENOTFOUND
// for an unknown model.
func writeToModel[T any](ctx context.Context, s *LoggedModels, id string, items []T, write func(ctx context.Context, id string, items []T) error) error {
	if len(items) == 0 {
		_, err := s.Store.GetLoggedModel(ctx, id)
		return err
	}
	return write(ctx, id, items)
}

// LogLoggedModelMetrics stores metric points that a run logged against
// logged models (log-metric and log-batch metrics with a model_id). The
// caller validates the metrics and the run as it does for run metrics;
// points without a ModelID are ignored.
func (s *LoggedModels) LogLoggedModelMetrics(ctx context.Context, metrics []ModelMetric) error {
	linked := make([]ModelMetric, 0, len(metrics))
	for _, m := range metrics {
		if m.ModelID != "" {
			linked = append(linked, m)
		}
	}
	if len(linked) == 0 {
		return nil
	}
	return s.Store.LogLoggedModelMetrics(ctx, linked)
}

// LinkModelVersion records on a logged model that registered model version
// name/version was made from it: it appends {"name", "version"} to the
// model's mlflow.modelVersions tag unless it is already listed, as MLflow's
// server does after CreateModelVersion with a model_id.
func (s *LoggedModels) LinkModelVersion(ctx context.Context, id, name string, version int64) error {
	if id == "" {
		return missingParam("model_id")
	}
	type modelVersion struct {
		Name    string `json:"name"`
		Version any    `json:"version"` // a number, or a string when a client wrote it
	}
	want := strconv.FormatInt(version, 10)
	return s.Store.UpdateLoggedModelTag(ctx, id, ModelVersionsTag, func(old string, ok bool) (string, error) {
		// Entries are kept as they are, whatever else they hold.
		var list []json.RawMessage
		if ok && old != "" {
			if err := json.Unmarshal([]byte(old), &list); err != nil {
				return "", mloop.Errorf(mloop.EINVALID, "The tag '%s' of logged model '%s' is not a JSON list of model versions: %v", ModelVersionsTag, id, err)
			}
		}
		for _, raw := range list {
			var mv modelVersion
			if json.Unmarshal(raw, &mv) == nil && mv.Name == name && fmt.Sprint(mv.Version) == want {
				return old, nil
			}
		}
		entry, err := json.Marshal(modelVersion{Name: name, Version: version})
		if err != nil {
			return "", fmt.Errorf("encode %s entry: %w", ModelVersionsTag, err)
		}
		b, err := json.Marshal(append(list, entry))
		if err != nil {
			return "", fmt.Errorf("encode %s: %w", ModelVersionsTag, err)
		}
		return string(b), nil
	})
}

// SearchLoggedModelsRequest holds the fields of a SearchLoggedModels call.
type SearchLoggedModelsRequest struct {
	ExperimentIDs []string
	Filter        string
	Datasets      []DatasetRef
	OrderBy       []LoggedModelOrderField
	MaxResults    int // DefaultLoggedModelResults when zero
	PageToken     string
}

// LoggedModelOrderField is an ordering term as MLflow's SearchLoggedModels
// request spells it: a field name such as "creation_timestamp" or
// "metrics.accuracy", a direction and, for metrics, a dataset.
type LoggedModelOrderField struct {
	FieldName     string `json:"field_name"`
	Ascending     bool   `json:"ascending"`
	DatasetName   string `json:"dataset_name,omitempty"`
	DatasetDigest string `json:"dataset_digest,omitempty"`
}

// SearchLoggedModels returns a page of the active models of some experiments
// that match a filter, and the token of the next page ("" on the last page).
//
// The filter is MLflow's: comparisons joined by AND over attributes (name,
// model_id, model_type, status, source_run_id with =, !=, LIKE, ILIKE, IN,
// NOT IN; creation_timestamp and last_updated_timestamp with numeric
// operators), metrics.<key> (numeric operators; any logged value of the
// metric, on one of req.Datasets when given, may match), params.<key> and
// tags.<key> (=, !=, LIKE, ILIKE).
func (s *LoggedModels) SearchLoggedModels(ctx context.Context, req SearchLoggedModelsRequest) ([]*LoggedModel, string, error) {
	if len(req.ExperimentIDs) == 0 {
		return nil, "", missingParam("experiment_ids")
	}
	for _, d := range req.Datasets {
		if d.Name == "" {
			return nil, "", mloop.Errorf(mloop.EINVALID, "`dataset_name` in the `datasets` clause must be specified.")
		}
	}
	if req.MaxResults == 0 {
		req.MaxResults = DefaultLoggedModelResults
	} else if _, err := searchMaxResults(req.MaxResults, 1); err != nil {
		return nil, "", err
	}
	q := LoggedModelQuery{ExperimentIDs: req.ExperimentIDs, Datasets: req.Datasets, MaxResults: req.MaxResults + 1}
	if req.Filter != "" {
		f, err := ParseLoggedModelFilter(req.Filter)
		if err != nil {
			return nil, "", err
		}
		if q.Filter, err = ValidateLoggedModelFilter(f); err != nil {
			return nil, "", err
		}
	}
	for _, o := range req.OrderBy {
		order, err := parseLoggedModelOrder(o)
		if err != nil {
			return nil, "", err
		}
		q.OrderBy = append(q.OrderBy, order)
	}
	tok := loggedModelPageToken{ExperimentIDs: req.ExperimentIDs, Filter: req.Filter, OrderBy: req.OrderBy}
	if req.PageToken != "" {
		offset, err := tok.decode(req.PageToken)
		if err != nil {
			return nil, "", err
		}
		q.Offset = offset
	}
	models, err := s.Store.SearchLoggedModels(ctx, q)
	if err != nil {
		return nil, "", fmt.Errorf("search logged models: %w", err)
	}
	next := ""
	if len(models) > req.MaxResults {
		models = models[:req.MaxResults]
		tok.Offset = q.Offset + req.MaxResults
		next = tok.encode()
	}
	return models, next, nil
}

// loggedModelAttributes maps each attribute name a logged-model filter or
// ordering may use to its canonical name, and tells numeric ones apart.
var loggedModelAttributes = map[string]struct {
	canonical string
	numeric   bool
}{
	"name":                      {"name", false},
	"model_id":                  {"model_id", false},
	"model_type":                {"model_type", false},
	"status":                    {"status", false},
	"source_run_id":             {"source_run_id", false},
	"creation_timestamp":        {"creation_timestamp", true},
	"creation_timestamp_ms":     {"creation_timestamp", true},
	"creation_time":             {"creation_timestamp", true},
	"last_updated_timestamp":    {"last_updated_timestamp", true},
	"last_updated_timestamp_ms": {"last_updated_timestamp", true},
	"last_updated_time":         {"last_updated_timestamp", true},
}

// ValidateLoggedModelFilter checks that every comparison of f is one a
// logged-model search supports and returns f with canonical attribute names,
// numeric values for numeric attributes and status values in the store's
// spelling (READY for LOGGED_MODEL_READY). Errors are EINVALID and name the
// offending key.
func ValidateLoggedModelFilter(f Filter) (Filter, error) {
	out := make(Filter, 0, len(f))
	for _, c := range f {
		switch c.Entity {
		case EntityAttribute:
			attr, ok := loggedModelAttributes[c.Key]
			if !ok {
				return nil, mloop.Errorf(mloop.EINVALID, "Invalid attribute key '%s' specified. Valid keys are name, model_id, model_type, status, source_run_id, creation_timestamp, last_updated_timestamp.", c.Key)
			}
			c.Key = attr.canonical
			if attr.numeric {
				v, err := loggedModelNumber(c)
				if err != nil {
					return nil, err
				}
				c.Value = v
				break
			}
			if !slices.Contains(loggedModelStringOps, c.Op) && c.Op != OpIn && c.Op != OpNotIn {
				return nil, invalidLoggedModelOp(c)
			}
			if c.Key == "status" {
				c.Value = mapStrings(c.Value, statusFromWire)
			}
		case EntityMetric:
			v, err := loggedModelNumber(c)
			if err != nil {
				return nil, err
			}
			c.Value = v
		case EntityParam, EntityTag:
			if !slices.Contains(loggedModelStringOps, c.Op) {
				return nil, invalidLoggedModelOp(c)
			}
			if _, ok := c.Value.(string); !ok {
				return nil, mloop.Errorf(mloop.EINVALID, "Expected a quoted string value for %ss.%s (e.g. 'my-value').", c.Entity, c.Key)
			}
		default:
			return nil, mloop.Errorf(mloop.EINVALID, "Invalid entity type '%s' in a logged model filter. Expected one of attributes, metrics, params, tags.", c.Entity)
		}
		out = append(out, c)
	}
	return out, nil
}

var (
	loggedModelNumericOps = []string{OpEq, OpNe, OpLt, OpLe, OpGt, OpGe}
	loggedModelStringOps  = []string{OpEq, OpNe, OpLike, OpILike}
)

func invalidLoggedModelOp(c Comparison) error {
	return mloop.Errorf(mloop.EINVALID, "Invalid comparison operator '%s' for %s '%s'.", c.Op, c.Entity, c.Key)
}

// loggedModelNumber checks that c, a comparison of a numeric attribute or of
// a metric, uses a numeric operator and returns its value as a float64,
// accepting the numeric strings a parser may leave for attributes it does
// not know to be numeric.
func loggedModelNumber(c Comparison) (float64, error) {
	if !slices.Contains(loggedModelNumericOps, c.Op) {
		return 0, invalidLoggedModelOp(c)
	}
	switch v := c.Value.(type) {
	case float64:
		return v, nil
	case string:
		if f, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && !math.IsNaN(f) {
			return f, nil
		}
	}
	return 0, mloop.Errorf(mloop.EINVALID, "Expected a numeric value for %s '%s', got %v.", c.Entity, c.Key, c.Value)
}

// mapStrings applies fn to a string value or to each string of a list value.
func mapStrings(v any, fn func(string) string) any {
	switch v := v.(type) {
	case string:
		return fn(v)
	case []string:
		out := make([]string, len(v))
		for i, s := range v {
			out[i] = fn(s)
		}
		return out
	}
	return v
}

// statusFromWire returns the store's spelling of a status given as MLflow's
// enum name (LOGGED_MODEL_READY) or its Python value (READY); other values
// are returned unchanged.
func statusFromWire(s string) string {
	switch s {
	case "LOGGED_MODEL_PENDING":
		return LoggedModelPending
	case "LOGGED_MODEL_READY":
		return LoggedModelReady
	case "LOGGED_MODEL_UPLOAD_FAILED":
		return LoggedModelFailed
	}
	return s
}

// parseLoggedModelOrder turns a request's ordering term into a store one.
func parseLoggedModelOrder(o LoggedModelOrderField) (LoggedModelOrder, error) {
	field := strings.TrimSpace(o.FieldName)
	if field == "" {
		return LoggedModelOrder{}, mloop.Errorf(mloop.EINVALID, "`field_name` in the `order_by` clause must be specified.")
	}
	if o.DatasetDigest != "" && o.DatasetName == "" {
		return LoggedModelOrder{}, mloop.Errorf(mloop.EINVALID, "`dataset_digest` can only be specified if `dataset_name` is also specified.")
	}
	if entity, key, ok := strings.Cut(field, "."); ok {
		if entity != "metrics" || key == "" {
			return LoggedModelOrder{}, mloop.Errorf(mloop.EINVALID, "Invalid order by field name: %s, only `metrics.<name>` is allowed.", entity)
		}
		return LoggedModelOrder{
			OrderBy:     OrderBy{Entity: EntityMetric, Key: strings.Trim(key, "`\""), Asc: o.Ascending},
			DatasetName: o.DatasetName, DatasetDigest: o.DatasetDigest,
		}, nil
	}
	attr, ok := loggedModelAttributes[field]
	if !ok {
		return LoggedModelOrder{}, mloop.Errorf(mloop.EINVALID, "Invalid order by field name: %s.", field)
	}
	if o.DatasetName != "" {
		return LoggedModelOrder{}, mloop.Errorf(mloop.EINVALID, "`dataset_name` in the `order_by` clause may only be set for a metric, not for %s.", field)
	}
	return LoggedModelOrder{OrderBy: OrderBy{Entity: EntityAttribute, Key: attr.canonical, Asc: o.Ascending}}, nil
}

// loggedModelPageToken is the state of a SearchLoggedModels page token: the
// offset of the next page and the query it belongs to, so that a token is
// only accepted for the same query.
type loggedModelPageToken struct {
	ExperimentIDs []string                `json:"experiment_ids"`
	Filter        string                  `json:"filter_string,omitempty"`
	OrderBy       []LoggedModelOrderField `json:"order_by,omitempty"`
	Offset        int                     `json:"offset"`
}

func (t loggedModelPageToken) encode() string {
	b, _ := json.Marshal(t) // a struct of strings, bools and ints always encodes
	return base64.StdEncoding.EncodeToString(b)
}

// decode returns the offset of token, which must belong to the query t
// describes.
func (t loggedModelPageToken) decode(token string) (int, error) {
	var got loggedModelPageToken
	b, err := base64.StdEncoding.DecodeString(token)
	if err == nil {
		err = json.Unmarshal(b, &got)
	}
	if err != nil || got.Offset < 0 {
		return 0, mloop.Errorf(mloop.EINVALID, "Invalid page token: %s.", token)
	}
	switch {
	case !slices.Equal(got.ExperimentIDs, t.ExperimentIDs):
		return 0, mloop.Errorf(mloop.EINVALID, "Experiment IDs in the page token do not match the requested experiment IDs. Expected: %v. Found: %v", t.ExperimentIDs, got.ExperimentIDs)
	case got.Filter != t.Filter:
		return 0, mloop.Errorf(mloop.EINVALID, "Filter string in the page token does not match the requested filter string. Expected: %q. Found: %q", t.Filter, got.Filter)
	case !slices.Equal(got.OrderBy, t.OrderBy):
		return 0, mloop.Errorf(mloop.EINVALID, "Order by in the page token does not match the requested order by. Expected: %v. Found: %v", t.OrderBy, got.OrderBy)
	}
	return got.Offset, nil
}

// validateLoggedModelName applies MLflow's rule for logged model names: they
// are used in paths and URIs, so some characters are not allowed. An empty
// name asks for a random one.
func validateLoggedModelName(name string) error {
	const bad = `/:.%"'`
	if strings.ContainsAny(name, bad) {
		return mloop.Errorf(mloop.EINVALID, "Invalid model name ('%s') provided. Model name must be a non-empty string and cannot contain the following characters: / : . %% \" '", name)
	}
	return nil
}

// uniqueParams validates params and drops exact repeats. A key given twice
// with different values is EINVALID, as params are immutable.
func uniqueParams(params []Param, owner string) ([]Param, error) {
	out := make([]Param, 0, len(params))
	seen := make(map[string]string, len(params))
	for _, p := range params {
		if err := validateModelKey("Param key", p.Key); err != nil {
			return nil, err
		}
		if v, ok := seen[p.Key]; ok {
			if v != p.Value {
				return nil, mloop.Errorf(mloop.EINVALID, "Duplicate parameter keys have been submitted: param '%s' is given the values '%s' and '%s' for %s.", p.Key, v, p.Value, owner)
			}
			continue
		}
		seen[p.Key] = p.Value
		out = append(out, p)
	}
	return out, nil
}

// validateLoggedModelTag checks the key of a logged model's tag.
func validateLoggedModelTag(t Tag) error { return validateModelKey("Tag key", t.Key) }

// validateModelKey checks the key of a logged model's tag or param: present,
// and no longer than MLflow's columns hold. what names it in the message.
func validateModelKey(what, key string) error {
	if key == "" {
		return mloop.Errorf(mloop.EINVALID, "%s must not be empty.", what)
	}
	return CheckLength(what, MaxLoggedModelKeyLength, key)
}

// missingParam is MLflow's error for a required field that is absent.
func missingParam(name string) error {
	return mloop.Errorf(mloop.EINVALID, "Missing value for required parameter '%s'. See the API docs for more information about request parameters.", name)
}

// LoggedModelNotFound returns the ENOTFOUND error for an unknown logged model
// id, with MLflow's message; stores use it so that every layer reports the
// same text.
func LoggedModelNotFound(id string) error {
	return mloop.Errorf(mloop.ENOTFOUND, "Logged model with ID '%s' not found.", id)
}

// newModelID returns a new logged model id: "m-" and a version 4 UUID in
// hex, as MLflow makes them.
func newModelID() (string, error) {
	id, err := newUUIDHex()
	if err != nil {
		return "", fmt.Errorf("new logged model id: %w", err)
	}
	return "m-" + id, nil
}

// appendURIPath appends path segments to the path of uri, before any query
// string, as MLflow's append_to_uri_path does for artifact locations.
func appendURIPath(uri string, segments ...string) string {
	base, query, hasQuery := strings.Cut(uri, "?")
	out := strings.TrimRight(base, "/") + "/" + strings.Join(segments, "/")
	if hasQuery {
		out += "?" + query
	}
	return out
}

// Words of the random names given to models and runs created without one, in
// MLflow's style: "<adjective>-<noun>-<number below 1000>".
var (
	nameAdjectives = []string{
		"able", "bold", "brave", "bright", "calm", "clever", "crisp", "eager", "fair", "fast",
		"gentle", "glad", "grand", "happy", "honest", "keen", "kind", "lively", "loyal", "lucky",
		"merry", "mighty", "neat", "nimble", "polite", "proud", "quick", "quiet", "rare", "sharp",
		"shy", "silent", "smart", "steady", "sunny", "swift", "tidy", "vast", "warm", "wise",
	}
	nameNouns = []string{
		"ant", "bat", "bear", "bee", "bird", "cat", "crab", "crow", "deer", "dove",
		"duck", "eel", "fish", "fox", "frog", "goat", "hare", "hawk", "horse", "jay",
		"lamb", "lark", "lion", "lynx", "mole", "moth", "mouse", "newt", "owl", "ox",
		"pig", "ram", "seal", "shark", "snail", "swan", "toad", "trout", "wolf", "wren",
	}
)

// randomModelName returns a random name such as "quick-owl-417", for models
// and runs created without one.
func randomModelName() (string, error) {
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("random model name: %w", err)
	}
	return fmt.Sprintf("%s-%s-%d", nameAdjectives[int(b[0])%len(nameAdjectives)],
		nameNouns[int(b[1])%len(nameNouns)], (int(b[2])<<8|int(b[3]))%1000), nil
}
