package registry

import (
	"context"
	"fmt"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/tracking"
)

// Limits and defaults, as MLflow's (mlflow/utils/validation.py,
// mlflow/store/model_registry/__init__.py, model_registry.proto).
const (
	MaxTagKeyLength              = 250
	MaxTagValueLength            = 5000
	MaxAliasLength               = 255
	DefaultSearchModelsResults   = 100
	MaxSearchModelsResults       = 1000
	DefaultSearchVersionsResults = 200000
	MaxSearchVersionsResults     = 200000
)

// PromptTagKey marks the registered models and versions that are MLflow 3
// prompts. Searches leave prompts out unless the filter asks for them.
const PromptTagKey = "mlflow.prompt.is_prompt"

// RunGetter finds the runs that model versions come from. The tracking
// Service satisfies it. GetRun returns an ENOTFOUND error for an unknown run.
type RunGetter interface {
	GetRun(ctx context.Context, id string) (*tracking.Run, error)
}

// LoggedModelLinker finds MLflow 3 logged models and records on them the
// versions registered from them. tracking.LoggedModels satisfies it.
type LoggedModelLinker interface {
	// GetLoggedModel returns the model with id; a deleted model is
	// ENOTFOUND unless allowDeleted is set.
	GetLoggedModel(ctx context.Context, id string, allowDeleted bool) (*tracking.LoggedModel, error)
	// LinkModelVersion records on the model with id that version version of
	// registered model name was made from it.
	LinkModelVersion(ctx context.Context, id, name string, version int64) error
}

var (
	_ RunGetter         = (*tracking.Service)(nil)
	_ LoggedModelLinker = (*tracking.LoggedModels)(nil)
)

// Service applies MLflow's registry rules (validation, stage names, aliases,
// source resolution, page tokens) on top of a Store. Create it with
// NewService; its methods return *mloop.Error values with MLflow's messages.
type Service struct {
	// Store persists the registry.
	Store Store
	// Runs resolves runs:/ sources and checks that local sources lie in
	// their run's artifacts; when nil, runs:/ sources stay as sent and local
	// sources are refused.
	Runs RunGetter
	// LoggedModels, when set, resolves models:/<model_id> sources and links
	// new versions to the logged model they were made from (MLflow 3).
	LoggedModels LoggedModelLinker
	// AllowFileURISources lets a file: URI that names another machine
	// ("file://host/path") be a model version source. It is off by default,
	// as in MLflow, whose server reads it from the environment variable
	// AllowFileURISourcesEnv: such a URI could make the server read its own
	// files through some path the local-source check does not catch.
	AllowFileURISources bool
	// Now returns the current time; it defaults to time.Now.
	Now func() time.Time
	// AliasChanged, when set, is called after an alias was set or deleted
	// (deployments that follow aliases use it to swap models at once). It
	// must not block.
	AliasChanged func()
}

// NewService returns a Service on store that looks runs up with runs and
// MLflow 3 logged models up with models (nil leaves model_id unsupported).
func NewService(store Store, runs RunGetter, models LoggedModelLinker) *Service {
	return &Service{Store: store, Runs: runs, LoggedModels: models, Now: time.Now}
}

// now returns the current time in milliseconds since the epoch.
func (s *Service) now() int64 {
	if s.Now == nil {
		return time.Now().UnixMilli()
	}
	return s.Now().UnixMilli()
}

// CreateRegisteredModel creates a model with tags and a description.
func (s *Service) CreateRegisteredModel(ctx context.Context, name string, tags []Tag, description string) (*RegisteredModel, error) {
	if err := validateModelName(name); err != nil {
		return nil, err
	}
	for _, t := range tags {
		if err := validateTag(modelTags, t); err != nil {
			return nil, err
		}
	}
	now := s.now()
	m := &RegisteredModel{Name: name, CreationTimestamp: now, LastUpdatedTimestamp: now, Description: description, Tags: tags}
	if err := s.Store.CreateRegisteredModel(ctx, m); err != nil {
		return nil, err
	}
	return m, nil
}

// GetRegisteredModel returns a model with its tags, aliases and latest versions.
func (s *Service) GetRegisteredModel(ctx context.Context, name string) (*RegisteredModel, error) {
	if err := validateModelName(name); err != nil {
		return nil, err
	}
	return s.Store.GetRegisteredModel(ctx, name)
}

// RenameRegisteredModel renames a model; its versions, tags and aliases follow.
func (s *Service) RenameRegisteredModel(ctx context.Context, name, newName string) (*RegisteredModel, error) {
	if err := validateModelName(name); err != nil {
		return nil, err
	}
	if err := validateModelName(newName); err != nil {
		return nil, err
	}
	return s.Store.RenameRegisteredModel(ctx, name, newName, s.now())
}

// UpdateRegisteredModel sets a model's description.
func (s *Service) UpdateRegisteredModel(ctx context.Context, name, description string) (*RegisteredModel, error) {
	if err := validateModelName(name); err != nil {
		return nil, err
	}
	return s.Store.UpdateRegisteredModel(ctx, name, description, s.now())
}

// DeleteRegisteredModel deletes a model with its versions, tags and aliases.
func (s *Service) DeleteRegisteredModel(ctx context.Context, name string) error {
	if err := validateModelName(name); err != nil {
		return err
	}
	return s.Store.DeleteRegisteredModel(ctx, name)
}

// SearchRequest holds the fields of a search of models or versions.
type SearchRequest struct {
	Filter  string
	OrderBy []string
	// MaxResults is the page size; nil means the default of the search.
	MaxResults *int64
	PageToken  string
}

// SearchRegisteredModels returns a page of models and the token of the next
// page ("" on the last page). Prompts are left out unless the filter asks
// for them, as in MLflow 3.
func (s *Service) SearchRegisteredModels(ctx context.Context, req SearchRequest) ([]*RegisteredModel, string, error) {
	q, limit, err := searchQuery(req, DefaultSearchModelsResults, MaxSearchModelsResults,
		tracking.ParseRegisteredModelFilter, tracking.ParseRegisteredModelOrderBy)
	if err != nil {
		return nil, "", err
	}
	ms, err := s.Store.SearchRegisteredModels(ctx, q)
	if err != nil {
		return nil, "", err
	}
	ms, next := page(ms, q.Offset, limit)
	return ms, next, nil
}

// SearchModelVersions returns a page of versions and the token of the next
// page ("" on the last page). Versions of prompts are left out unless the
// filter asks for them.
func (s *Service) SearchModelVersions(ctx context.Context, req SearchRequest) ([]*ModelVersion, string, error) {
	q, limit, err := searchQuery(req, DefaultSearchVersionsResults, MaxSearchVersionsResults,
		tracking.ParseModelVersionFilter, tracking.ParseModelVersionOrderBy)
	if err != nil {
		return nil, "", err
	}
	vs, err := s.Store.SearchModelVersions(ctx, q)
	if err != nil {
		return nil, "", err
	}
	vs, next := page(vs, q.Offset, limit)
	return vs, next, nil
}

// searchQuery validates a search request and builds its store query, which
// asks for one row more than the page holds to tell whether another follows.
func searchQuery(req SearchRequest, def, maxResults int64,
	parseFilter func(string) (tracking.Filter, error),
	parseOrder func([]string) ([]tracking.OrderBy, error)) (Query, int, error) {
	n := def
	if req.MaxResults != nil {
		n = *req.MaxResults
	}
	if n < 1 {
		return Query{}, 0, mloop.Errorf(mloop.EINVALID, "Invalid value for max_results. It must be a positive integer, but got %d", n)
	}
	if n > maxResults {
		return Query{}, 0, mloop.Errorf(mloop.EINVALID, "Invalid value for request parameter max_results. It must be at most %d, but got value %d", maxResults, n)
	}
	var q Query
	var err error
	if q.Offset, err = tracking.DecodePageToken(req.PageToken); err != nil {
		return Query{}, 0, err
	}
	if strings.TrimSpace(req.Filter) != "" {
		if q.Filter, err = parseFilter(req.Filter); err != nil {
			return Query{}, 0, err
		}
	}
	q.Filter, q.ExcludePrompts = withoutPrompts(q.Filter)
	if q.OrderBy, err = parseOrder(req.OrderBy); err != nil {
		return Query{}, 0, err
	}
	q.MaxResults = int(n) + 1
	return q, int(n), nil
}

// withoutPrompts applies MLflow 3's prompt rule to a filter: a filter that
// asks for prompts (tags.`mlflow.prompt.is_prompt` = 'true', or != 'false')
// is kept as it is; otherwise its comparisons on that tag are dropped and
// prompts are excluded.
func withoutPrompts(f tracking.Filter) (tracking.Filter, bool) {
	for _, c := range f {
		if c.Entity != tracking.EntityTag || c.Key != PromptTagKey {
			continue
		}
		v, _ := c.Value.(string)
		v = strings.ToLower(v)
		if (c.Op == tracking.OpEq && v == "true") || (c.Op == tracking.OpNe && v == "false") {
			return f, false
		}
		break
	}
	var out tracking.Filter
	for _, c := range f {
		if c.Entity != tracking.EntityTag || c.Key != PromptTagKey {
			out = append(out, c)
		}
	}
	return out, true
}

// page cuts a result fetched with one extra row to limit rows and returns
// the token of the next page, or "" when there is none.
func page[T any](rows []T, offset, limit int) ([]T, string) {
	if len(rows) <= limit {
		return rows, ""
	}
	return rows[:limit], tracking.EncodePageToken(offset + limit)
}

// SetRegisteredModelTag sets a tag on a model.
func (s *Service) SetRegisteredModelTag(ctx context.Context, name string, tag Tag) error {
	if err := validateModelName(name); err != nil {
		return err
	}
	if err := validateTag(modelTags, tag); err != nil {
		return err
	}
	return s.Store.SetRegisteredModelTag(ctx, name, tag)
}

// DeleteRegisteredModelTag deletes a tag of a model.
func (s *Service) DeleteRegisteredModelTag(ctx context.Context, name, key string) error {
	if err := validateModelName(name); err != nil {
		return err
	}
	if err := tracking.ValidateKey("tag", key); err != nil {
		return err
	}
	return s.Store.DeleteRegisteredModelTag(ctx, name, key)
}

// GetLatestVersions returns the latest version of a model in each of stages
// (case-insensitive stage names), or in every stage when stages is empty.
func (s *Service) GetLatestVersions(ctx context.Context, name string, stages []string) ([]*ModelVersion, error) {
	if err := validateModelName(name); err != nil {
		return nil, err
	}
	canonical := make([]string, 0, len(stages))
	for _, st := range stages {
		c, err := CanonicalStage(st)
		if err != nil {
			return nil, err
		}
		canonical = append(canonical, c)
	}
	return s.Store.GetLatestVersions(ctx, name, canonical)
}

// SetRegisteredModelAlias points alias at a version, moving it from another
// version if it named one.
func (s *Service) SetRegisteredModelAlias(ctx context.Context, name, alias, version string) error {
	if err := validateModelName(name); err != nil {
		return err
	}
	if err := validateAlias(alias); err != nil {
		return err
	}
	v, err := ParseVersion(version)
	if err != nil {
		return err
	}
	if err := s.Store.SetAlias(ctx, name, alias, v); err != nil {
		return err
	}
	s.aliasChanged()
	return nil
}

// aliasChanged calls the AliasChanged hook when one is set.
func (s *Service) aliasChanged() {
	if s.AliasChanged != nil {
		s.AliasChanged()
	}
}

// DeleteRegisteredModelAlias deletes an alias of a model.
func (s *Service) DeleteRegisteredModelAlias(ctx context.Context, name, alias string) error {
	if err := validateModelName(name); err != nil {
		return err
	}
	if err := validateAlias(alias); err != nil {
		return err
	}
	if err := s.Store.DeleteAlias(ctx, name, alias); err != nil {
		return err
	}
	s.aliasChanged()
	return nil
}

// GetModelVersionByAlias returns the version an alias names. An unknown
// alias is INVALID_PARAMETER_VALUE, as in MLflow.
func (s *Service) GetModelVersionByAlias(ctx context.Context, name, alias string) (*ModelVersion, error) {
	if err := validateModelName(name); err != nil {
		return nil, err
	}
	if err := validateAlias(alias); err != nil {
		return nil, err
	}
	v, err := s.Store.GetModelVersionByAlias(ctx, name, alias)
	if mloop.IsNotFound(err) {
		return nil, mloop.Errorf(mloop.EINVALID, "Registered model alias %s not found.", alias)
	}
	return v, err
}

// CreateModelVersionRequest holds the fields of a CreateModelVersion call.
type CreateModelVersionRequest struct {
	Name        string
	Source      string
	RunID       string
	Tags        []Tag
	RunLink     string
	Description string
	// ModelID is the MLflow 3 logged model the version is made from, if any.
	ModelID string
}

// CreateModelVersion registers a new version of a model from a source. As
// MLflow's server does, a local source must lie in the artifact directory of
// its run (or logged model) and other sources must not climb out of their
// path with "..". The version records its run (lineage): RunID, or the run
// of a runs:/ source or of the logged model when RunID is empty. A models:/
// or runs:/ source is resolved once, now, to where the artifacts live; that
// location is what GetModelVersionDownloadURI returns.
//
// With a ModelID (MLflow 3), the logged model must exist and the new version
// is recorded on it. Versions of prompts (a request tagged
// mlflow.prompt.is_prompt) skip the source checks and the link, as in MLflow 3.
func (s *Service) CreateModelVersion(ctx context.Context, req CreateModelVersionRequest) (*ModelVersion, error) {
	if err := validateModelName(req.Name); err != nil {
		return nil, err
	}
	if req.Source == "" {
		return nil, mloop.Errorf(mloop.EINVALID, "Missing value for required parameter 'source'.")
	}
	prompt := false
	for _, t := range req.Tags {
		if err := validateTag(versionTags, t); err != nil {
			return nil, err
		}
		prompt = prompt || t.Key == PromptTagKey
	}
	if !prompt {
		if err := s.validateSource(ctx, req.Source, req.RunID, req.ModelID); err != nil {
			return nil, err
		}
	}
	link := req.ModelID != "" && !prompt && s.LoggedModels != nil
	if link {
		// Checked before anything is written, so an unknown model leaves no version behind.
		if _, err := s.LoggedModels.GetLoggedModel(ctx, req.ModelID, false); err != nil {
			return nil, err
		}
	}
	location, runID, err := s.resolveSource(ctx, req.Source)
	if err != nil {
		return nil, err
	}
	now := s.now()
	v := &ModelVersion{
		Name: req.Name, CreationTimestamp: now, LastUpdatedTimestamp: now,
		CurrentStage: StageNone, Description: req.Description, Source: req.Source,
		RunID: req.RunID, RunLink: req.RunLink, ModelID: req.ModelID, Status: StatusReady, Tags: req.Tags,
	}
	if v.RunID == "" {
		v.RunID = runID
	}
	if location != req.Source {
		v.StorageLocation = location
	}
	if err := s.Store.CreateModelVersion(ctx, v); err != nil {
		return nil, err
	}
	if link {
		if err := s.LoggedModels.LinkModelVersion(ctx, req.ModelID, v.Name, v.Version); err != nil {
			return nil, fmt.Errorf("link version %d of %q to logged model %s: %w", v.Version, v.Name, req.ModelID, err)
		}
	}
	return v, nil
}

// GetModelVersion returns a version with its tags and aliases.
func (s *Service) GetModelVersion(ctx context.Context, name, version string) (*ModelVersion, error) {
	n, err := versionArgs(name, version)
	if err != nil {
		return nil, err
	}
	return s.Store.GetModelVersion(ctx, name, n)
}

// UpdateModelVersion sets a version's description; nil leaves it unchanged.
func (s *Service) UpdateModelVersion(ctx context.Context, name, version string, description *string) (*ModelVersion, error) {
	n, err := versionArgs(name, version)
	if err != nil {
		return nil, err
	}
	return s.Store.UpdateModelVersion(ctx, name, n, VersionUpdate{Description: description}, s.now())
}

// TransitionModelVersionStage moves a version to a stage (case-insensitive).
// With archiveExisting, the model's other versions in that stage, which must
// be Staging or Production, move to Archived.
func (s *Service) TransitionModelVersionStage(ctx context.Context, name, version, stage string, archiveExisting bool) (*ModelVersion, error) {
	n, err := versionArgs(name, version)
	if err != nil {
		return nil, err
	}
	canonical, err := CanonicalStage(stage)
	if err != nil {
		return nil, err
	}
	if archiveExisting && canonical != StageStaging && canonical != StageProduction {
		return nil, mloop.Errorf(mloop.EINVALID, "Model version transition cannot archive existing model versions because '%s' is not an Active stage. Valid stages are ['Staging', 'Production']", stage)
	}
	return s.Store.UpdateModelVersion(ctx, name, n, VersionUpdate{Stage: &canonical, ArchiveExisting: archiveExisting}, s.now())
}

// DeleteModelVersion deletes a version with its tags and aliases; its number
// is never given to another version.
func (s *Service) DeleteModelVersion(ctx context.Context, name, version string) error {
	n, err := versionArgs(name, version)
	if err != nil {
		return err
	}
	return s.Store.DeleteModelVersion(ctx, name, n, s.now())
}

// GetModelVersionDownloadURI returns where a version's artifacts can be
// downloaded: the location its source was resolved to at creation, a runs:/
// source resolved to its run's artifact URI, or else the source itself.
func (s *Service) GetModelVersionDownloadURI(ctx context.Context, name, version string) (string, error) {
	v, err := s.GetModelVersion(ctx, name, version)
	if err != nil {
		return "", err
	}
	return s.location(ctx, v)
}

// SetModelVersionTag sets a tag on a version.
func (s *Service) SetModelVersionTag(ctx context.Context, name, version string, tag Tag) error {
	n, err := versionArgs(name, version)
	if err != nil {
		return err
	}
	if err := validateTag(versionTags, tag); err != nil {
		return err
	}
	return s.Store.SetModelVersionTag(ctx, name, n, tag)
}

// DeleteModelVersionTag deletes a tag of a version.
func (s *Service) DeleteModelVersionTag(ctx context.Context, name, version, key string) error {
	n, err := versionArgs(name, version)
	if err != nil {
		return err
	}
	if err := tracking.ValidateKey("tag", key); err != nil {
		return err
	}
	return s.Store.DeleteModelVersionTag(ctx, name, n, key)
}

// location returns where the artifacts of v live.
func (s *Service) location(ctx context.Context, v *ModelVersion) (string, error) {
	if v.StorageLocation != "" {
		return v.StorageLocation, nil
	}
	if strings.HasPrefix(v.Source, "runs:") {
		loc, _, err := s.resolveRunsSource(ctx, v.Source)
		return loc, err
	}
	return v.Source, nil
}

// resolveSource returns where the artifacts of a new version's source live
// and the run that produced them, when the source tells.
func (s *Service) resolveSource(ctx context.Context, source string) (location, runID string, err error) {
	switch {
	case strings.HasPrefix(source, "models:"):
		return s.resolveModelsSource(ctx, source)
	case strings.HasPrefix(source, "runs:"):
		return s.resolveRunsSource(ctx, source)
	}
	return source, "", nil
}

// resolveRunsSource resolves runs:/<run_id>/<path> to the run's artifact URI
// joined with path. The source stays as it is when the run is unknown here
// (MLflow clients resolve runs:/ URIs themselves) or Runs is nil; a
// malformed runs:/ URI is INVALID_PARAMETER_VALUE.
func (s *Service) resolveRunsSource(ctx context.Context, source string) (location, runID string, err error) {
	p := uriPath(source)
	runID, artifactPath, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
	if !strings.HasPrefix(p, "/") || strings.TrimSpace(runID) == "" {
		return "", "", mloop.Errorf(mloop.EINVALID, "Not a proper runs:/ URI: %s. Runs URIs must be of the form 'runs:/<run_id>/run-relative/path/to/artifact'", source)
	}
	if s.Runs == nil {
		return source, runID, nil
	}
	run, err := s.Runs.GetRun(ctx, runID)
	if mloop.IsNotFound(err) {
		return source, runID, nil
	} else if err != nil {
		return "", "", fmt.Errorf("resolve %s: %w", source, err)
	}
	return joinURI(run.Info.ArtifactURI, artifactPath), runID, nil
}

// resolveModelsSource resolves a models:/ source (MLflow's copy of a
// version, or an MLflow 3 logged model) to the location of the model it
// names, as MLflow's store does when it creates the version.
func (s *Service) resolveModelsSource(ctx context.Context, source string) (location, runID string, err error) {
	fail := func(err error) (string, string, error) {
		return "", "", mloop.Errorf(mloop.EINVALID, "Unable to fetch model from model URI source artifact location '%s'.Error: %s", source, mloop.ErrorMessage(err))
	}
	u, err := parseModelsURI(source)
	if err != nil {
		return fail(err)
	}
	if u.modelID != "" {
		if s.LoggedModels == nil {
			return source, "", nil
		}
		m, err := s.LoggedModels.GetLoggedModel(ctx, u.modelID, false)
		if err != nil {
			return fail(err)
		}
		return m.ArtifactLocation, m.SourceRunID, nil
	}
	v, err := s.modelFromURI(ctx, u)
	if err != nil {
		return fail(err)
	}
	loc, err := s.location(ctx, v)
	if err != nil {
		return fail(err)
	}
	return loc, "", nil
}

// modelFromURI returns the version a models:/ URI names.
func (s *Service) modelFromURI(ctx context.Context, u modelsURI) (*ModelVersion, error) {
	switch {
	case u.version != 0:
		return s.Store.GetModelVersion(ctx, u.name, u.version)
	case u.alias != "":
		return s.GetModelVersionByAlias(ctx, u.name, u.alias)
	}
	var stages []string
	if u.stage != "" {
		stage, err := CanonicalStage(u.stage)
		if err != nil {
			return nil, err
		}
		stages = []string{stage}
	}
	vs, err := s.Store.GetLatestVersions(ctx, u.name, stages)
	if err != nil {
		return nil, err
	}
	var latest *ModelVersion
	for _, v := range vs {
		if latest == nil || v.Version > latest.Version {
			latest = v
		}
	}
	if latest == nil {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "No versions of model with name '%s' and stage '%s' found", u.name, u.stage)
	}
	return latest, nil
}

// modelsURI is a parsed models:/ URI: models:/<name>/<version>,
// models:/<name>/<stage>, models:/<name>/latest, models:/<name>@<alias>, or
// MLflow 3's models:/<model_id>.
type modelsURI struct {
	name, stage, alias, modelID string
	version                     int64
}

// parseModelsURI parses a models:/ URI as MLflow's _parse_model_uri does.
func parseModelsURI(uri string) (modelsURI, error) {
	bad := mloop.Errorf(mloop.EINVALID, "Not a proper models:/ URI: %s. Models URIs must be of the form 'models:/model_name/suffix' or 'models:/model_name@alias' where suffix is a model version, stage, or the string 'latest' and where alias is a registered model alias. Only one of suffix or alias can be defined at a time.", uri)
	p := uriPath(uri)
	if !strings.HasPrefix(p, "/") || len(p) <= 1 {
		return modelsURI{}, bad
	}
	parts := strings.Split(strings.TrimLeft(p, "/"), "/")
	if len(parts) > 2 || strings.TrimSpace(parts[0]) == "" {
		return modelsURI{}, bad
	}
	if len(parts) == 2 {
		name, suffix := parts[0], parts[1]
		switch {
		case strings.TrimSpace(suffix) == "":
			return modelsURI{}, bad
		case isDigits(suffix):
			n, err := strconv.ParseInt(suffix, 10, 64)
			if err != nil || n == 0 {
				return modelsURI{}, bad
			}
			return modelsURI{name: name, version: n}, nil
		case strings.EqualFold(suffix, "latest"):
			return modelsURI{name: name}, nil
		}
		return modelsURI{name: name, stage: suffix}, nil
	}
	if name, alias, ok := strings.Cut(parts[0], "@"); ok {
		if name == "" || alias == "" {
			return modelsURI{}, bad
		}
		return modelsURI{name: name, alias: alias}, nil
	}
	return modelsURI{modelID: parts[0]}, nil
}

// validateSource applies the checks of MLflow's server on a new version's
// source, in its order:
//
//  1. A local source (a path, or a file: URI of this machine; see
//     artifact.LocalPath) must lie, symbolic links resolved, in the artifact
//     directory of the run named by runID (with a modelID, of that MLflow 3
//     logged model). A local source that does is valid.
//  2. A file: URI of another machine is refused, unless
//     AllowFileURISources is set.
//  3. Any other source must not hold relative path references.
func (s *Service) validateSource(ctx context.Context, source, runID, modelID string) error {
	src, local := artifact.LocalPath(source)
	if !local {
		if !s.AllowFileURISources && isFileURI(source) {
			return mloop.Errorf(mloop.EINVALID, "Invalid model version source: '%s'. MLflow tracking server doesn't allow using a file URI as a model version source for security reasons. To disable this check, set the %s environment variable to True.", source, AllowFileURISourcesEnv)
		}
		return validateNoRelativePaths(source)
	}
	owner, field := "run", "run_id"
	if modelID != "" {
		owner, field = "model", "model_id"
	}
	var dir string
	switch {
	case modelID != "" && s.LoggedModels != nil:
		m, err := s.LoggedModels.GetLoggedModel(ctx, modelID, false)
		if err != nil {
			return err
		}
		dir = m.ArtifactLocation
	case modelID == "" && runID != "" && s.Runs != nil:
		run, err := s.Runs.GetRun(ctx, runID)
		if err != nil {
			return err
		}
		dir = run.Info.ArtifactURI
	}
	if root, ok := artifact.LocalPath(dir); ok && dir != "" {
		if rel, err := filepath.Rel(resolveSymlinks(root), resolveSymlinks(src)); err == nil && filepath.IsLocal(rel) {
			return nil
		}
	}
	// MLflow names the source as resolved when a run was given; the source
	// as sent tells the client as much without showing the server's links.
	return mloop.Errorf(mloop.EINVALID, "Invalid model version source: '%s'. To use a local path as a model version source, the %s request parameter has to be specified and the local path has to be contained within the artifact directory of the %s specified by the %s.", source, field, owner, field)
}

// AllowFileURISourcesEnv is the environment variable MLflow's server reads
// to allow file: URIs of other machines as model version sources; mloop's
// server reads it too, into Service.AllowFileURISources.
const AllowFileURISourcesEnv = "MLFLOW_ALLOW_FILE_URI_AS_MODEL_VERSION_SOURCE"

// isFileURI reports whether uri has the file: scheme.
func isFileURI(uri string) bool {
	m := uriScheme.FindStringSubmatch(uri)
	return m != nil && strings.EqualFold(m[1], "file")
}

// resolveSymlinks returns the absolute path p with the symbolic links of its
// longest existing prefix resolved, as Python's Path.resolve() does: the part
// that does not exist yet stays as it is.
func resolveSymlinks(p string) string {
	missing := ""
	for dir := p; ; {
		if r, err := filepath.EvalSymlinks(dir); err == nil {
			return filepath.Join(r, missing)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return p
		}
		missing = filepath.Join(filepath.Base(dir), missing)
		dir = parent
	}
}

// validateNoRelativePaths rejects a URI that, once percent-decoded as many
// times as it decodes, holds a NUL anywhere (MLflow looks only at the path)
// or whose path holds ".." or "." segments or is not absolute: such a
// source could reach files of the server.
func validateNoRelativePaths(source string) error {
	decoded := source
	for {
		u, err := url.QueryUnescape(decoded)
		if err != nil || u == decoded {
			break
		}
		decoded = u
	}
	p := multiSlash.ReplaceAllString(strings.TrimRight(uriPath(decoded), "/"), "/")
	bad := strings.Contains(decoded, "\x00") || !strings.HasPrefix(p, "/") || path.Clean(p) != p
	for _, seg := range strings.Split(decoded, "/") {
		bad = bad || seg == ".."
	}
	if bad {
		return mloop.Errorf(mloop.EINVALID, "Invalid model version source: '%s'. If supplying a source as an http, https, local file path, ftp, objectstore, or mlflow-artifacts uri, an absolute path must be provided without relative path references present. Please provide an absolute path.", source)
	}
	return nil
}

var multiSlash = regexp.MustCompile(`/+`)

// uriScheme matches the scheme of a URI, as Python's urlparse recognises it.
var uriScheme = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9+.\-]*):`)

// uriPath returns the path of uri: what follows the scheme and the
// authority, without query or fragment.
func uriPath(uri string) string {
	rest := uri
	if m := uriScheme.FindString(uri); m != "" {
		rest = uri[len(m):]
	}
	if strings.HasPrefix(rest, "//") {
		rest = rest[2:]
		if i := strings.IndexAny(rest, "/?#"); i >= 0 {
			rest = rest[i:]
		} else {
			rest = ""
		}
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest = rest[:i]
	}
	return rest
}

// joinURI appends a relative path to a URI.
func joinURI(base, rel string) string {
	rel = strings.Trim(rel, "/")
	if rel == "" {
		return base
	}
	return strings.TrimRight(base, "/") + "/" + rel
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
}

// CanonicalStage returns MLflow's spelling of a stage name given in any
// case: None, Staging, Production or Archived.
func CanonicalStage(stage string) (string, error) {
	for _, st := range []string{StageNone, StageStaging, StageProduction, StageArchived} {
		if strings.EqualFold(stage, st) {
			return st, nil
		}
	}
	return "", mloop.Errorf(mloop.EINVALID, "Invalid Model Version stage: %s. Value must be one of %s, %s, %s, %s.",
		stage, StageNone, StageStaging, StageProduction, StageArchived)
}

// ParseVersion parses a model version number, sent as a string on the wire.
func ParseVersion(version string) (int64, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(version), 10, 64)
	if err != nil {
		return 0, mloop.Errorf(mloop.EINVALID, "Model version must be an integer, got '%s'", version)
	}
	return n, nil
}

// versionArgs validates the name and version that identify a model version.
func versionArgs(name, version string) (int64, error) {
	if err := validateModelName(name); err != nil {
		return 0, err
	}
	return ParseVersion(version)
}

// validateModelName rejects an empty model name, as MLflow's store does.
// Any other string is a valid name: MLflow's SQL store accepts them all.
func validateModelName(name string) error {
	if name == "" {
		return mloop.Errorf(mloop.EINVALID, "Registered model name cannot be empty.")
	}
	return nil
}

// aliasChars and versionAlias are MLflow's rules for alias names: word
// characters and dashes, and not v<number>, which names a version.
var (
	aliasChars   = regexp.MustCompile(`^[\p{L}\p{N}_\-]*$`)
	versionAlias = regexp.MustCompile(`^[vV]\d+$`)
)

// validateAlias applies MLflow's rules for alias names, in MLflow's order.
func validateAlias(alias string) error {
	switch {
	case alias == "":
		return mloop.Errorf(mloop.EINVALID, "Registered model alias name cannot be empty.")
	case !aliasChars.MatchString(alias):
		return mloop.Errorf(mloop.EINVALID, "Invalid alias name: '%s'. Names may only contain alphanumerics, underscores (_), and dashes (-).", alias)
	}
	if err := tracking.CheckLength("Registered model alias name", MaxAliasLength, alias); err != nil {
		return err
	}
	switch {
	case strings.EqualFold(alias, "latest"):
		return mloop.Errorf(mloop.EINVALID, "'latest' alias name (case insensitive) is reserved.")
	case versionAlias.MatchString(alias):
		return mloop.Errorf(mloop.EINVALID, "Version alias name '%s' is reserved.", alias)
	}
	return nil
}

// Owners of registry tags, as MLflow's length messages name them.
const (
	modelTags   = "Registered model"
	versionTags = "Model version"
)

// validateTag applies MLflow's rules for a tag of a registered model or
// model version (owner is modelTags or versionTags): the key rules of every
// MLflow tag, and the registry's length limits.
func validateTag(owner string, t Tag) error {
	if err := tracking.ValidateKey("tag", t.Key); err != nil {
		return err
	}
	if err := tracking.CheckLength(owner+" key", MaxTagKeyLength, t.Key); err != nil {
		return err
	}
	return tracking.CheckLength(owner+" value", MaxTagValueLength, t.Value)
}
