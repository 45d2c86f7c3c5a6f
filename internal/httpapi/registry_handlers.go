package httpapi

import (
	"context"
	"net/http"
	"strconv"

	"github.com/mloop/mloop/internal/registry"
)

// This file holds the handlers of MLflow's model registry API
// (model_registry.proto): registered models, their versions, tags, aliases
// and stages. Each decodes its request (decode checks the fields MLflow's
// handler requires, tagged `mlflow:"required"`), calls the registry Service
// and writes the response in the protobuf JSON mapping MLflow's server
// emits: versions as strings, timestamps as numbers, unset and empty
// repeated fields omitted.

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
		Name        string    `json:"name" mlflow:"required"`
		Tags        []tagJSON `json:"tags"`
		Description string    `json:"description"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
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
		Name string `json:"name" mlflow:"required"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
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
		Name    string `json:"name" mlflow:"required"`
		NewName string `json:"new_name" mlflow:"required"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
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
		Name        string `json:"name" mlflow:"required"`
		Description string `json:"description"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
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
		Name string `json:"name" mlflow:"required"`
	}
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Registry.DeleteRegisteredModel(ctx, req.Name)
	})
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
		Name  string `json:"name" mlflow:"required"`
		Key   string `json:"key" mlflow:"required"`
		Value string `json:"value"`
	}
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Registry.SetRegisteredModelTag(ctx, req.Name, registry.Tag{Key: req.Key, Value: req.Value})
	})
}

func (s *Server) deleteRegisteredModelTag(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name string `json:"name" mlflow:"required"`
		Key  string `json:"key" mlflow:"required"`
	}
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Registry.DeleteRegisteredModelTag(ctx, req.Name, req.Key)
	})
}

func (s *Server) setRegisteredModelAlias(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name    string `json:"name" mlflow:"required"`
		Alias   string `json:"alias" mlflow:"required"`
		Version string `json:"version" mlflow:"required"`
	}
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Registry.SetRegisteredModelAlias(ctx, req.Name, req.Alias, req.Version)
	})
}

// aliasRequest is the request of DeleteRegisteredModelAlias and GetModelVersionByAlias.
type aliasRequest struct {
	Name  string `json:"name" mlflow:"required"`
	Alias string `json:"alias" mlflow:"required"`
}

func (s *Server) deleteRegisteredModelAlias(w http.ResponseWriter, r *http.Request) error {
	var req aliasRequest
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Registry.DeleteRegisteredModelAlias(ctx, req.Name, req.Alias)
	})
}

func (s *Server) getModelVersionByAlias(w http.ResponseWriter, r *http.Request) error {
	var req aliasRequest
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
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
		Name   string   `json:"name" mlflow:"required"`
		Stages []string `json:"stages"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
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
		Name        string    `json:"name" mlflow:"required"`
		Source      string    `json:"source" mlflow:"required"`
		RunID       string    `json:"run_id"`
		Tags        []tagJSON `json:"tags"`
		RunLink     string    `json:"run_link"`
		Description string    `json:"description"`
		ModelID     string    `json:"model_id"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
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
	Name    string `json:"name" mlflow:"required"`
	Version string `json:"version" mlflow:"required"`
}

func (s *Server) getModelVersion(w http.ResponseWriter, r *http.Request) error {
	var req versionRequest
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
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
		Name        string `json:"name" mlflow:"required"`
		Version     string `json:"version" mlflow:"required"`
		Description Str    `json:"description"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
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
	var req versionRequest
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Registry.DeleteModelVersion(ctx, req.Name, req.Version)
	})
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
		Name                    string `json:"name" mlflow:"required"`
		Version                 string `json:"version" mlflow:"required"`
		Stage                   string `json:"stage" mlflow:"required"`
		ArchiveExistingVersions Bool   `json:"archive_existing_versions"`
	}
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
		return err
	}
	v, err := s.Registry.TransitionModelVersionStage(r.Context(), req.Name, req.Version, req.Stage, req.ArchiveExistingVersions.V)
	if err != nil {
		return err
	}
	return ok(w, modelVersionResponse{modelVersionToJSON(v)})
}

func (s *Server) getModelVersionDownloadURI(w http.ResponseWriter, r *http.Request) error {
	var req versionRequest
	if err := decode(r, s.MaxBodyBytes, &req); err != nil {
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
		Name    string `json:"name" mlflow:"required"`
		Version string `json:"version" mlflow:"required"`
		Key     string `json:"key" mlflow:"required"`
		Value   string `json:"value"`
	}
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Registry.SetModelVersionTag(ctx, req.Name, req.Version, registry.Tag{Key: req.Key, Value: req.Value})
	})
}

func (s *Server) deleteModelVersionTag(w http.ResponseWriter, r *http.Request) error {
	var req struct {
		Name    string `json:"name" mlflow:"required"`
		Version string `json:"version" mlflow:"required"`
		Key     string `json:"key" mlflow:"required"`
	}
	return s.apply(w, r, &req, func(ctx context.Context) error {
		return s.Registry.DeleteModelVersionTag(ctx, req.Name, req.Version, req.Key)
	})
}
