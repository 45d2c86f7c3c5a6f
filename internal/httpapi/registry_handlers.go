package httpapi

import (
	"net/http"
	"strconv"

	"github.com/mloop/mloop/internal/registry"
)

// This file holds the handlers of MLflow's model registry API
// (model_registry.proto): registered models, their versions, tags, aliases
// and stages. Each decodes its request, checks the fields MLflow's handler
// requires, calls the registry Service and writes the response in the
// protobuf JSON mapping MLflow's server emits: versions as strings,
// timestamps as numbers, unset and empty repeated fields omitted.

// Request fields.

// param is a request field MLflow's handler requires, with its value.
type param struct{ name, value string }

// required returns MLflow's error for the first param that is absent or
// empty (absent strings decode as "", as in protobuf).
func required(params ...param) error {
	for _, p := range params {
		if p.value == "" {
			return missing(p.name)
		}
	}
	return nil
}

// Response messages.

// registeredModelJSON is a RegisteredModel.
type registeredModelJSON struct {
	Name                 string             `json:"name"`
	CreationTimestamp    int64              `json:"creation_timestamp"`
	LastUpdatedTimestamp int64              `json:"last_updated_timestamp"`
	UserID               string             `json:"user_id,omitempty"`
	Description          string             `json:"description,omitempty"`
	LatestVersions       []modelVersionJSON `json:"latest_versions,omitempty"`
	Tags                 []tagJSON          `json:"tags,omitempty"`
	Aliases              []aliasJSON        `json:"aliases,omitempty"`
}

// aliasJSON is a RegisteredModelAlias.
type aliasJSON struct {
	Alias   string `json:"alias"`
	Version string `json:"version"`
}

// modelVersionJSON is a ModelVersion.
type modelVersionJSON struct {
	Name                 string    `json:"name"`
	Version              string    `json:"version"`
	CreationTimestamp    int64     `json:"creation_timestamp"`
	LastUpdatedTimestamp int64     `json:"last_updated_timestamp"`
	UserID               string    `json:"user_id,omitempty"`
	CurrentStage         string    `json:"current_stage"`
	Description          string    `json:"description,omitempty"`
	Source               string    `json:"source"`
	RunID                string    `json:"run_id,omitempty"`
	Status               string    `json:"status"`
	StatusMessage        string    `json:"status_message,omitempty"`
	Tags                 []tagJSON `json:"tags,omitempty"`
	RunLink              string    `json:"run_link,omitempty"`
	Aliases              []string  `json:"aliases,omitempty"`
	ModelID              string    `json:"model_id,omitempty"`
}

func registeredModelToJSON(m *registry.RegisteredModel) registeredModelJSON {
	out := registeredModelJSON{
		Name:                 m.Name,
		CreationTimestamp:    m.CreationTimestamp,
		LastUpdatedTimestamp: m.LastUpdatedTimestamp,
		UserID:               m.UserID,
		Description:          m.Description,
		LatestVersions:       modelVersionsToJSON(m.LatestVersions),
		Tags:                 tagsToJSON(m.Tags),
	}
	for _, a := range m.Aliases {
		out.Aliases = append(out.Aliases, aliasJSON{Alias: a.Alias, Version: strconv.FormatInt(a.Version, 10)})
	}
	return out
}

func modelVersionToJSON(v *registry.ModelVersion) modelVersionJSON {
	return modelVersionJSON{
		Name:                 v.Name,
		Version:              strconv.FormatInt(v.Version, 10),
		CreationTimestamp:    v.CreationTimestamp,
		LastUpdatedTimestamp: v.LastUpdatedTimestamp,
		UserID:               v.UserID,
		CurrentStage:         v.CurrentStage,
		Description:          v.Description,
		Source:               v.Source,
		RunID:                v.RunID,
		Status:               v.Status,
		StatusMessage:        v.StatusMessage,
		Tags:                 tagsToJSON(v.Tags),
		RunLink:              v.RunLink,
		Aliases:              v.Aliases,
		ModelID:              v.ModelID,
	}
}

func modelVersionsToJSON(vs []*registry.ModelVersion) []modelVersionJSON {
	if len(vs) == 0 {
		return nil
	}
	out := make([]modelVersionJSON, len(vs))
	for i, v := range vs {
		out[i] = modelVersionToJSON(v)
	}
	return out
}

// registeredModelResponse is the reply of the calls that return one model.
type registeredModelResponse struct {
	RegisteredModel registeredModelJSON `json:"registered_model"`
}

// modelVersionResponse is the reply of the calls that return one version.
type modelVersionResponse struct {
	ModelVersion modelVersionJSON `json:"model_version"`
}

// Registered models.

func (s *Server) createRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name        string    `json:"name"`
		Tags        []tagJSON `json:"tags"`
		Description string    `json:"description"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}); err != nil {
		return err
	}
	m, err := s.Registry.CreateRegisteredModel(r.Context(), req.Name, tagsFromJSON(req.Tags), req.Description)
	if err != nil {
		return err
	}
	return ok(w, registeredModelResponse{registeredModelToJSON(m)})
}

func (s *Server) getRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}); err != nil {
		return err
	}
	m, err := s.Registry.GetRegisteredModel(r.Context(), req.Name)
	if err != nil {
		return err
	}
	return ok(w, registeredModelResponse{registeredModelToJSON(m)})
}

func (s *Server) renameRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name    string `json:"name"`
		NewName string `json:"new_name"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}, param{"new_name", req.NewName}); err != nil {
		return err
	}
	m, err := s.Registry.RenameRegisteredModel(r.Context(), req.Name, req.NewName)
	if err != nil {
		return err
	}
	return ok(w, registeredModelResponse{registeredModelToJSON(m)})
}

func (s *Server) updateRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name        string `json:"name"`
		Description string `json:"description"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}); err != nil {
		return err
	}
	m, err := s.Registry.UpdateRegisteredModel(r.Context(), req.Name, req.Description)
	if err != nil {
		return err
	}
	return ok(w, registeredModelResponse{registeredModelToJSON(m)})
}

func (s *Server) deleteRegisteredModel(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}); err != nil {
		return err
	}
	if err := s.Registry.DeleteRegisteredModel(r.Context(), req.Name); err != nil {
		return err
	}
	return ok(w, nil)
}

// searchRequest is the request of SearchRegisteredModels and SearchModelVersions.
type searchRequest struct {
	Filter     string   `json:"filter"`
	MaxResults Int64    `json:"max_results"`
	OrderBy    []string `json:"order_by"`
	PageToken  string   `json:"page_token"`
}

func (req searchRequest) toService() registry.SearchRequest {
	return registry.SearchRequest{
		Filter:     req.Filter,
		OrderBy:    req.OrderBy,
		MaxResults: int64Of(req.MaxResults),
		PageToken:  req.PageToken,
	}
}

func (s *Server) searchRegisteredModels(w http.ResponseWriter, r *http.Request) error {
	var req searchRequest
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	ms, next, err := s.Registry.SearchRegisteredModels(r.Context(), req.toService())
	if err != nil {
		return err
	}
	resp := struct {
		RegisteredModels []registeredModelJSON `json:"registered_models,omitempty"`
		NextPageToken    string                `json:"next_page_token,omitempty"`
	}{NextPageToken: next}
	for _, m := range ms {
		resp.RegisteredModels = append(resp.RegisteredModels, registeredModelToJSON(m))
	}
	return ok(w, resp)
}

func (s *Server) setRegisteredModelTag(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name  string `json:"name"`
		Key   string `json:"key"`
		Value string `json:"value"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}, param{"key", req.Key}); err != nil {
		return err
	}
	if err := s.Registry.SetRegisteredModelTag(r.Context(), req.Name, registry.Tag{Key: req.Key, Value: req.Value}); err != nil {
		return err
	}
	return ok(w, nil)
}

func (s *Server) deleteRegisteredModelTag(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name"`
		Key  string `json:"key"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}, param{"key", req.Key}); err != nil {
		return err
	}
	if err := s.Registry.DeleteRegisteredModelTag(r.Context(), req.Name, req.Key); err != nil {
		return err
	}
	return ok(w, nil)
}

func (s *Server) setRegisteredModelAlias(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name    string `json:"name"`
		Alias   string `json:"alias"`
		Version string `json:"version"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}, param{"alias", req.Alias}, param{"version", req.Version}); err != nil {
		return err
	}
	if err := s.Registry.SetRegisteredModelAlias(r.Context(), req.Name, req.Alias, req.Version); err != nil {
		return err
	}
	return ok(w, nil)
}

// aliasRequest is the request of DeleteRegisteredModelAlias and GetModelVersionByAlias.
type aliasRequest struct {
	Name  string `json:"name"`
	Alias string `json:"alias"`
}

func (s *Server) deleteRegisteredModelAlias(w http.ResponseWriter, r *http.Request) error {
	var req aliasRequest
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}, param{"alias", req.Alias}); err != nil {
		return err
	}
	if err := s.Registry.DeleteRegisteredModelAlias(r.Context(), req.Name, req.Alias); err != nil {
		return err
	}
	return ok(w, nil)
}

func (s *Server) getModelVersionByAlias(w http.ResponseWriter, r *http.Request) error {
	var req aliasRequest
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}, param{"alias", req.Alias}); err != nil {
		return err
	}
	v, err := s.Registry.GetModelVersionByAlias(r.Context(), req.Name, req.Alias)
	if err != nil {
		return err
	}
	return ok(w, modelVersionResponse{modelVersionToJSON(v)})
}

func (s *Server) getLatestVersions(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name   string   `json:"name"`
		Stages []string `json:"stages"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}); err != nil {
		return err
	}
	vs, err := s.Registry.GetLatestVersions(r.Context(), req.Name, req.Stages)
	if err != nil {
		return err
	}
	return ok(w, struct {
		ModelVersions []modelVersionJSON `json:"model_versions,omitempty"`
	}{modelVersionsToJSON(vs)})
}

// Model versions.

func (s *Server) createModelVersion(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name        string    `json:"name"`
		Source      string    `json:"source"`
		RunID       string    `json:"run_id"`
		Tags        []tagJSON `json:"tags"`
		RunLink     string    `json:"run_link"`
		Description string    `json:"description"`
		ModelID     string    `json:"model_id"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}, param{"source", req.Source}); err != nil {
		return err
	}
	v, err := s.Registry.CreateModelVersion(r.Context(), registry.CreateModelVersionRequest{
		Name:        req.Name,
		Source:      req.Source,
		RunID:       req.RunID,
		Tags:        tagsFromJSON(req.Tags),
		RunLink:     req.RunLink,
		Description: req.Description,
		ModelID:     req.ModelID,
	})
	if err != nil {
		return err
	}
	return ok(w, modelVersionResponse{modelVersionToJSON(v)})
}

// versionRequest is the request of the calls that name one model version.
type versionRequest struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// decodeVersion decodes a request that names one model version and checks
// that both fields are there.
func (s *Server) decodeVersion(r *http.Request) (versionRequest, error) {
	var req versionRequest
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return req, err
	}
	return req, required(param{"name", req.Name}, param{"version", req.Version})
}

func (s *Server) getModelVersion(w http.ResponseWriter, r *http.Request) error {
	req, err := s.decodeVersion(r)
	if err != nil {
		return err
	}
	v, err := s.Registry.GetModelVersion(r.Context(), req.Name, req.Version)
	if err != nil {
		return err
	}
	return ok(w, modelVersionResponse{modelVersionToJSON(v)})
}

func (s *Server) updateModelVersion(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name        string `json:"name"`
		Version     string `json:"version"`
		Description Str    `json:"description"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}, param{"version", req.Version}); err != nil {
		return err
	}
	var description *string
	if req.Description.Set {
		description = &req.Description.V
	}
	v, err := s.Registry.UpdateModelVersion(r.Context(), req.Name, req.Version, description)
	if err != nil {
		return err
	}
	return ok(w, modelVersionResponse{modelVersionToJSON(v)})
}

func (s *Server) deleteModelVersion(w http.ResponseWriter, r *http.Request) error {
	req, err := s.decodeVersion(r)
	if err != nil {
		return err
	}
	if err := s.Registry.DeleteModelVersion(r.Context(), req.Name, req.Version); err != nil {
		return err
	}
	return ok(w, nil)
}

func (s *Server) searchModelVersions(w http.ResponseWriter, r *http.Request) error {
	var req searchRequest
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	vs, next, err := s.Registry.SearchModelVersions(r.Context(), req.toService())
	if err != nil {
		return err
	}
	return ok(w, struct {
		ModelVersions []modelVersionJSON `json:"model_versions,omitempty"`
		NextPageToken string             `json:"next_page_token,omitempty"`
	}{modelVersionsToJSON(vs), next})
}

func (s *Server) transitionModelVersionStage(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name                    string `json:"name"`
		Version                 string `json:"version"`
		Stage                   string `json:"stage"`
		ArchiveExistingVersions Bool   `json:"archive_existing_versions"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}, param{"version", req.Version}, param{"stage", req.Stage}); err != nil {
		return err
	}
	v, err := s.Registry.TransitionModelVersionStage(r.Context(), req.Name, req.Version, req.Stage, req.ArchiveExistingVersions.V)
	if err != nil {
		return err
	}
	return ok(w, modelVersionResponse{modelVersionToJSON(v)})
}

func (s *Server) getModelVersionDownloadURI(w http.ResponseWriter, r *http.Request) error {
	req, err := s.decodeVersion(r)
	if err != nil {
		return err
	}
	uri, err := s.Registry.GetModelVersionDownloadURI(r.Context(), req.Name, req.Version)
	if err != nil {
		return err
	}
	return ok(w, struct {
		ArtifactURI string `json:"artifact_uri"`
	}{uri})
}

func (s *Server) setModelVersionTag(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Key     string `json:"key"`
		Value   string `json:"value"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}, param{"version", req.Version}, param{"key", req.Key}); err != nil {
		return err
	}
	if err := s.Registry.SetModelVersionTag(r.Context(), req.Name, req.Version, registry.Tag{Key: req.Key, Value: req.Value}); err != nil {
		return err
	}
	return ok(w, nil)
}

func (s *Server) deleteModelVersionTag(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Key     string `json:"key"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	if err := required(param{"name", req.Name}, param{"version", req.Version}, param{"key", req.Key}); err != nil {
		return err
	}
	if err := s.Registry.DeleteModelVersionTag(r.Context(), req.Name, req.Version, req.Key); err != nil {
		return err
	}
	return ok(w, nil)
}
