package registry_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

// The Service is tested over the real SQLite store, with the real tracking
// and logged-model services behind it, wired as the server wires them. The
// store itself runs its conformance suite on SQLite and PostgreSQL in
// sqlstore.

// env is a registry Service with the services it resolves sources through.
type env struct {
	svc      *registry.Service
	tracking *tracking.Service
	models   *tracking.LoggedModels
}

// newEnv returns a registry Service over a fresh SQLite database whose clock
// starts at a fixed time and advances one millisecond per reading.
func newEnv(t *testing.T) env {
	t.Helper()
	db, err := sqlstore.Open(context.Background(), filepath.Join(t.TempDir(), "mloop.db"))
	if err != nil {
		t.Fatalf("open database: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	trackingStore := sqlstore.NewTrackingStore(db)
	e := env{tracking: tracking.NewService(trackingStore)}
	e.models = tracking.NewLoggedModels(sqlstore.NewLoggedModelStore(db), e.tracking)
	e.svc = registry.NewService(sqlstore.NewRegistryStore(db), e.tracking, e.models)
	ms := int64(1_700_000_000_000)
	e.svc.Now = func() time.Time { ms++; return time.UnixMilli(ms) }
	return e
}

// mustRun creates an experiment whose artifacts live in a local folder and
// a run in it.
func (e env) mustRun(t *testing.T, name string) (*tracking.Experiment, *tracking.Run) {
	t.Helper()
	ctx := context.Background()
	id, err := e.tracking.CreateExperiment(ctx, name, t.TempDir(), nil)
	if err != nil {
		t.Fatalf("create experiment %s: %v", name, err)
	}
	exp, err := e.tracking.GetExperiment(ctx, id)
	if err != nil {
		t.Fatalf("get experiment %s: %v", id, err)
	}
	run, err := e.tracking.CreateRun(ctx, tracking.CreateRunRequest{ExperimentID: id})
	if err != nil {
		t.Fatalf("create run: %v", err)
	}
	return exp, run
}

// mustModel registers a model.
func (e env) mustModel(t *testing.T, name string, tags ...registry.Tag) {
	t.Helper()
	if _, err := e.svc.CreateRegisteredModel(context.Background(), name, tags, ""); err != nil {
		t.Fatalf("create registered model %q: %v", name, err)
	}
}

// mustVersion registers a version of name from source.
func (e env) mustVersion(t *testing.T, name, source, runID string) *registry.ModelVersion {
	t.Helper()
	v, err := e.svc.CreateModelVersion(context.Background(), registry.CreateModelVersionRequest{Name: name, Source: source, RunID: runID})
	if err != nil {
		t.Fatalf("create version of %q from %s: %v", name, source, err)
	}
	return v
}

// wantErr fails the test unless err has the given kind and a message
// containing msg.
func wantErr(t *testing.T, what string, err error, kind, msg string) {
	t.Helper()
	if mloop.ErrorCode(err) != kind || !strings.Contains(mloop.ErrorMessage(err), msg) {
		t.Errorf("%s: got %v, want a %s error containing %q", what, err, kind, msg)
	}
}

func ptr[T any](v T) *T { return &v }

// TestRegistryServiceValidation checks MLflow's validation and messages
// (mlflow/utils/validation.py, the registry store and handlers) on each call.
func TestRegistryServiceValidation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.mustModel(t, "m")
	e.mustVersion(t, "m", "s3://bucket/model", "")
	long := func(n int) string { return strings.Repeat("k", n) }

	tests := []struct {
		name string
		call func() error
		msg  string
	}{
		{"model without a name", func() error {
			_, err := e.svc.CreateRegisteredModel(ctx, "", nil, "")
			return err
		}, "Registered model name cannot be empty."},
		{"rename to nothing", func() error {
			_, err := e.svc.RenameRegisteredModel(ctx, "m", "")
			return err
		}, "Registered model name cannot be empty."},
		{"tag key with a bad character", func() error {
			_, err := e.svc.CreateRegisteredModel(ctx, "t", []registry.Tag{{Key: "a!b"}}, "")
			return err
		}, "Invalid tag name: 'a!b'. Names may only contain alphanumerics, underscores (_), dashes (-), periods (.), spaces ( ), and slashes (/)."},
		{"tag key that resolves to another", func() error {
			return e.svc.SetRegisteredModelTag(ctx, "m", registry.Tag{Key: "a/../b"})
		}, "Invalid tag name: 'a/../b'. Names may be treated as files in certain cases, and must not resolve to other names when treated as such. This name would resolve to 'b'"},
		{"model tag key too long", func() error {
			return e.svc.SetRegisteredModelTag(ctx, "m", registry.Tag{Key: long(251)})
		}, "Registered model key '" + long(250) + "' had length 251, which exceeded length limit of 250"},
		{"model tag value too long", func() error {
			return e.svc.SetRegisteredModelTag(ctx, "m", registry.Tag{Key: "k", Value: long(5001)})
		}, "Registered model value '" + long(250) + "' had length 5001, which exceeded length limit of 5000"},
		{"version tag value too long", func() error {
			return e.svc.SetModelVersionTag(ctx, "m", "1", registry.Tag{Key: "k", Value: long(5001)})
		}, "Model version value '" + long(250) + "' had length 5001, which exceeded length limit of 5000"},
		{"version tag key on create", func() error {
			_, err := e.svc.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: "s3://b/m", Tags: []registry.Tag{{Key: "a:b"}}})
			return err
		}, "Invalid tag name: 'a:b'."},
		{"delete a tag with a bad key", func() error {
			return e.svc.DeleteModelVersionTag(ctx, "m", "1", "/abs")
		}, "Invalid tag name: '/abs'."},
		{"version that is not a number", func() error {
			_, err := e.svc.GetModelVersion(ctx, "m", "something not correct")
			return err
		}, "Model version must be an integer, got 'something not correct'"},
		{"unknown stage", func() error {
			_, err := e.svc.TransitionModelVersionStage(ctx, "m", "1", "prod", false)
			return err
		}, "Invalid Model Version stage: prod. Value must be one of None, Staging, Production, Archived."},
		{"archiving into an inactive stage", func() error {
			_, err := e.svc.TransitionModelVersionStage(ctx, "m", "1", "archived", true)
			return err
		}, "Model version transition cannot archive existing model versions because 'archived' is not an Active stage. Valid stages are ['Staging', 'Production']"},
		{"latest of an unknown stage", func() error {
			_, err := e.svc.GetLatestVersions(ctx, "m", []string{"None", "QA"})
			return err
		}, "Invalid Model Version stage: QA."},
		{"empty alias", func() error {
			return e.svc.SetRegisteredModelAlias(ctx, "m", "", "1")
		}, "Registered model alias name cannot be empty."},
		{"alias with a bad character", func() error {
			return e.svc.SetRegisteredModelAlias(ctx, "m", "my alias", "1")
		}, "Invalid alias name: 'my alias'. Names may only contain alphanumerics, underscores (_), and dashes (-)."},
		{"alias too long", func() error {
			return e.svc.SetRegisteredModelAlias(ctx, "m", long(256), "1")
		}, "Registered model alias name '" + long(250) + "' had length 256, which exceeded length limit of 255"},
		{"alias latest", func() error {
			return e.svc.SetRegisteredModelAlias(ctx, "m", "LaTeSt", "1")
		}, "'latest' alias name (case insensitive) is reserved."},
		{"alias naming a version", func() error {
			return e.svc.DeleteRegisteredModelAlias(ctx, "m", "V12")
		}, "Version alias name 'V12' is reserved."},
		{"alias to a version that is not a number", func() error {
			return e.svc.SetRegisteredModelAlias(ctx, "m", "champion", "one")
		}, "Model version must be an integer, got 'one'"},
		{"version without a source", func() error {
			_, err := e.svc.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m"})
			return err
		}, "Missing value for required parameter 'source'."},
		{"models page of zero", func() error {
			_, _, err := e.svc.SearchRegisteredModels(ctx, registry.SearchRequest{MaxResults: ptr[int64](0)})
			return err
		}, "Invalid value for max_results. It must be a positive integer, but got 0"},
		{"models page too large", func() error {
			_, _, err := e.svc.SearchRegisteredModels(ctx, registry.SearchRequest{MaxResults: ptr[int64](1001)})
			return err
		}, "Invalid value for request parameter max_results. It must be at most 1000, but got value 1001"},
		{"versions page too large", func() error {
			_, _, err := e.svc.SearchModelVersions(ctx, registry.SearchRequest{MaxResults: ptr[int64](200_001)})
			return err
		}, "It must be at most 200000, but got value 200001"},
		{"page token that is not base64", func() error {
			_, _, err := e.svc.SearchModelVersions(ctx, registry.SearchRequest{PageToken: "not a token!"})
			return err
		}, "Invalid page token"},
		{"filter on an unknown attribute", func() error {
			_, _, err := e.svc.SearchRegisteredModels(ctx, registry.SearchRequest{Filter: "run_id = 'x'"})
			return err
		}, ""},
		{"order by an unknown key", func() error {
			_, _, err := e.svc.SearchModelVersions(ctx, registry.SearchRequest{OrderBy: []string{"stage ASC"}})
			return err
		}, ""},
	}
	for _, tt := range tests {
		wantErr(t, tt.name, tt.call(), mloop.EINVALID, tt.msg)
	}
}

// TestRegistryServiceNotFound checks MLflow's errors for unknown models, versions
// and aliases. An unknown alias is INVALID_PARAMETER_VALUE, as in MLflow.
func TestRegistryServiceNotFound(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.mustModel(t, "m")
	e.mustVersion(t, "m", "s3://bucket/model", "")

	tests := []struct {
		name string
		call func() error
		kind string
		msg  string
	}{
		{"get an unknown model", func() error {
			_, err := e.svc.GetRegisteredModel(ctx, "nope")
			return err
		}, mloop.ENOTFOUND, "Registered Model with name=nope not found"},
		{"version of an unknown model", func() error {
			_, err := e.svc.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "nope", Source: "s3://b/m"})
			return err
		}, mloop.ENOTFOUND, "Registered Model with name=nope not found"},
		{"unknown version", func() error {
			_, err := e.svc.GetModelVersion(ctx, "m", "9")
			return err
		}, mloop.ENOTFOUND, "Model Version (name=m, version=9) not found"},
		{"alias to an unknown version", func() error {
			return e.svc.SetRegisteredModelAlias(ctx, "m", "champion", "9")
		}, mloop.ENOTFOUND, "Model Version (name=m, version=9) not found"},
		{"unknown alias", func() error {
			_, err := e.svc.GetModelVersionByAlias(ctx, "m", "champion")
			return err
		}, mloop.EINVALID, "Registered model alias champion not found."},
		{"duplicate model", func() error {
			_, err := e.svc.CreateRegisteredModel(ctx, "m", nil, "")
			return err
		}, mloop.EEXISTS, "Registered Model (name=m) already exists."},
	}
	for _, tt := range tests {
		wantErr(t, tt.name, tt.call(), tt.kind, tt.msg)
	}
}

// TestRegistryServiceModelNames checks that, as MLflow's SQL store, the registry
// accepts any non-empty model name.
func TestRegistryServiceModelNames(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for _, name := range []string{"org/model", "a:b", "with space", "ünï cødé", "%_"} {
		m, err := e.svc.CreateRegisteredModel(ctx, name, nil, "")
		if err != nil {
			t.Errorf("create %q: %v", name, err)
			continue
		}
		if m.Name != name {
			t.Errorf("create %q: got name %q", name, m.Name)
		}
	}
}

// TestRegistryServiceSources checks what a new version records and where its
// artifacts download from, for each kind of source (MLflow's
// get-download-uri plus the runs:/ resolution of the brief).
func TestRegistryServiceSources(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	exp, run := e.mustRun(t, "sources")
	artifacts := run.Info.ArtifactURI
	lm, err := e.models.CreateLoggedModel(ctx, tracking.CreateLoggedModelRequest{ExperimentID: exp.ID, SourceRunID: run.Info.RunID})
	if err != nil {
		t.Fatalf("create logged model: %v", err)
	}
	e.mustModel(t, "m")
	e.mustVersion(t, "m", "runs:/"+run.Info.RunID+"/model", "") // version 1
	if err := e.svc.SetRegisteredModelAlias(ctx, "m", "champion", "1"); err != nil {
		t.Fatalf("set alias: %v", err)
	}
	if _, err := e.svc.TransitionModelVersionStage(ctx, "m", "1", "production", false); err != nil {
		t.Fatalf("transition: %v", err)
	}

	tests := []struct {
		name, source, runID string
		wantRunID           string
		wantURI             string
	}{
		{"a run's artifacts", "runs:/" + run.Info.RunID + "/model", "", run.Info.RunID, artifacts + "/model"},
		{"a run's artifact root", "runs:/" + run.Info.RunID, "", run.Info.RunID, artifacts},
		{"an unknown run stays as sent", "runs:/run_id/model", "run_id_1", "run_id_1", "runs:/run_id/model"},
		{"a copy of a version", "models:/m/1", "", "", artifacts + "/model"},
		{"a copy by alias", "models:/m@champion", "", "", artifacts + "/model"},
		{"a copy by stage", "models:/m/Production", "", "", artifacts + "/model"},
		{"a copy of the latest", "models:/m/latest", "", "", artifacts + "/model"},
		{"an MLflow 3 logged model", "models:/" + lm.ModelID, "", run.Info.RunID, lm.ArtifactLocation},
		{"a remote location", "s3://bucket/path/model", "", "", "s3://bucket/path/model"},
		{"inside the run's artifacts", filepath.Join(artifacts, "model"), run.Info.RunID, run.Info.RunID, filepath.Join(artifacts, "model")},
	}
	for _, tt := range tests {
		v, err := e.svc.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: tt.source, RunID: tt.runID})
		if err != nil {
			t.Errorf("%s: create from %s: %v", tt.name, tt.source, err)
			continue
		}
		if v.Source != tt.source || v.RunID != tt.wantRunID {
			t.Errorf("%s: got source %q run %q, want %q and %q", tt.name, v.Source, v.RunID, tt.source, tt.wantRunID)
		}
		uri, err := e.svc.GetModelVersionDownloadURI(ctx, "m", fmt.Sprint(v.Version))
		if err != nil {
			t.Errorf("%s: download uri: %v", tt.name, err)
		} else if uri != tt.wantURI {
			t.Errorf("%s: download uri: got %q, want %q", tt.name, uri, tt.wantURI)
		}
	}
}

// TestRegistryServiceBadSources checks the sources MLflow's server refuses.
func TestRegistryServiceBadSources(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, run := e.mustRun(t, "bad-sources")
	e.mustModel(t, "m")
	outside := filepath.Join(t.TempDir(), "model")
	const (
		notLocal  = "To use a local path as a model version source, the run_id request parameter has to be specified"
		relative  = "an absolute path must be provided without relative path references present"
		modelsURI = "Unable to fetch model from model URI source artifact location"
	)
	tests := []struct {
		name, source, runID string
		kind, msg           string
	}{
		{"a local path without a run", filepath.Join(run.Info.ArtifactURI, "model"), "", mloop.EINVALID, notLocal},
		{"a local path outside the run", outside, run.Info.RunID, mloop.EINVALID, notLocal},
		{"a local path climbing out", run.Info.ArtifactURI + "/../../x", run.Info.RunID, mloop.EINVALID, notLocal},
		{"a relative local path", "model", run.Info.RunID, mloop.EINVALID, notLocal},
		{"a local path of an unknown run", outside, "nope", mloop.ENOTFOUND, "nope"},
		{"a local file URI of this machine, outside the run", "file://localhost" + filepath.ToSlash(outside), run.Info.RunID, mloop.EINVALID, notLocal},
		{"a file URI of another machine", "file://10.0.0.7/models/m", run.Info.RunID, mloop.EINVALID, "MLflow tracking server doesn't allow using a file URI as a model version source"},
		{"a remote path with ..", "s3://bucket/a/../b", "", mloop.EINVALID, relative},
		{"a remote path with encoded ..", "https://host/a/%252E%252E/b", "", mloop.EINVALID, relative},
		{"a remote path with NUL", "s3://bucket/a%00b", "", mloop.EINVALID, relative},
		{"a remote location without a path", "s3://bucket", "", mloop.EINVALID, relative},
		{"a runs URI without a run", "runs:/ /model", "", mloop.EINVALID, "Not a proper runs:/ URI: runs:/ /model."},
		{"a malformed models URI", "models:/a/b/c", "", mloop.EINVALID, "Not a proper models:/ URI: models:/a/b/c."},
		{"an unknown model", "models:/nope/1", "", mloop.EINVALID, modelsURI + " 'models:/nope/1'.Error: Model Version (name=nope, version=1) not found"},
		{"an unknown stage", "models:/m/Staging", "", mloop.EINVALID, "No versions of model with name 'm' and stage 'Staging' found"},
		{"an unknown logged model", "models:/m-0123", "", mloop.EINVALID, modelsURI},
	}
	for _, tt := range tests {
		_, err := e.svc.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: tt.source, RunID: tt.runID})
		wantErr(t, tt.name+" ("+tt.source+")", err, tt.kind, tt.msg)
	}
	// Nothing was registered.
	vs, _, err := e.svc.SearchModelVersions(ctx, registry.SearchRequest{})
	if err != nil || len(vs) != 0 {
		t.Errorf("versions after refused creates: got %d, %v; want none", len(vs), err)
	}

	// Allowed, a file URI of another machine is checked like any remote source.
	e.svc.AllowFileURISources = true
	if _, err := e.svc.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: "file://10.0.0.7/models/m"}); err != nil {
		t.Errorf("a file URI of another machine, allowed: got %v, want it registered", err)
	}
	_, err = e.svc.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: "file://10.0.0.7/models/../../etc"})
	wantErr(t, "a file URI of another machine with .., allowed", err, mloop.EINVALID, relative)
}

// TestRegistryServiceLoggedModelLink checks MLflow 3's model_id: a local source must
// lie in the logged model's artifacts, the version records the model id,
// the logged model records the version, and an unknown model id registers
// nothing.
func TestRegistryServiceLoggedModelLink(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	exp, run := e.mustRun(t, "linked")
	lm, err := e.models.CreateLoggedModel(ctx, tracking.CreateLoggedModelRequest{ExperimentID: exp.ID, SourceRunID: run.Info.RunID})
	if err != nil {
		t.Fatalf("create logged model: %v", err)
	}
	e.mustModel(t, "m")

	_, err = e.svc.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: "models:/" + lm.ModelID, ModelID: "m-unknown"})
	wantErr(t, "unknown model id", err, mloop.ENOTFOUND, "m-unknown")
	_, err = e.svc.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: filepath.Join(run.Info.ArtifactURI, "model"), ModelID: lm.ModelID})
	wantErr(t, "local source outside the logged model", err, mloop.EINVALID,
		"the model_id request parameter has to be specified and the local path has to be contained within the artifact directory")

	for i, source := range []string{"models:/" + lm.ModelID, filepath.Join(lm.ArtifactLocation, "MLmodel")} {
		v, err := e.svc.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "m", Source: source, ModelID: lm.ModelID})
		if err != nil {
			t.Fatalf("create from %s: %v", source, err)
		}
		if v.Version != int64(i+1) || v.ModelID != lm.ModelID {
			t.Errorf("create from %s: got version %d model %q, want %d and %q", source, v.Version, v.ModelID, i+1, lm.ModelID)
		}
	}
	got, err := e.models.GetLoggedModel(ctx, lm.ModelID, false)
	if err != nil {
		t.Fatalf("get logged model: %v", err)
	}
	var links []struct {
		Name    string `json:"name"`
		Version any    `json:"version"`
	}
	for _, tag := range got.Tags {
		if tag.Key == tracking.ModelVersionsTag {
			if err := json.Unmarshal([]byte(tag.Value), &links); err != nil {
				t.Fatalf("tag %s: %v", tag.Key, err)
			}
		}
	}
	if fmt.Sprint(links) != "[{m 1} {m 2}]" {
		t.Errorf("versions recorded on the logged model: got %v, want [{m 1} {m 2}]", links)
	}
	v, err := e.svc.GetModelVersion(ctx, "m", "1")
	if err != nil || v.ModelID != lm.ModelID {
		t.Errorf("stored version: got %+v, %v; want model id %s", v, err, lm.ModelID)
	}
}

// TestRegistryServicePrompts checks MLflow 3 prompts, which are registered models
// tagged mlflow.prompt.is_prompt: their versions skip the source checks and
// searches leave them out unless the filter asks for them.
func TestRegistryServicePrompts(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	promptTag := registry.Tag{Key: registry.PromptTagKey, Value: "true"}
	e.mustModel(t, "model")
	e.mustModel(t, "prompt", promptTag)
	e.mustVersion(t, "model", "s3://bucket/model", "")
	if _, err := e.svc.CreateModelVersion(ctx, registry.CreateModelVersionRequest{
		Name: "prompt", Source: "dummy-source", Tags: []registry.Tag{promptTag, {Key: "mlflow.prompt.text", Value: "Hi {{name}}"}},
	}); err != nil {
		t.Fatalf("create prompt version: %v", err)
	}
	_, err := e.svc.CreateModelVersion(ctx, registry.CreateModelVersionRequest{Name: "model", Source: "dummy-source"})
	wantErr(t, "a relative source without the prompt tag", err, mloop.EINVALID, "Invalid model version source: 'dummy-source'.")

	tests := []struct {
		filter         string
		models, latest []string
	}{
		{"", []string{"model"}, []string{"model/1"}},
		{"tags.`mlflow.prompt.is_prompt` = 'true'", []string{"prompt"}, []string{"prompt/1"}},
		{"tags.`mlflow.prompt.is_prompt` != 'true'", []string{"model"}, []string{"model/1"}},
		{"name LIKE 'pro%'", nil, nil},
	}
	for _, tt := range tests {
		ms, _, err := e.svc.SearchRegisteredModels(ctx, registry.SearchRequest{Filter: tt.filter})
		if err != nil {
			t.Fatalf("search models %q: %v", tt.filter, err)
		}
		var names []string
		for _, m := range ms {
			names = append(names, m.Name)
		}
		if !reflect.DeepEqual(names, tt.models) {
			t.Errorf("models %q: got %v, want %v", tt.filter, names, tt.models)
		}
		vs, _, err := e.svc.SearchModelVersions(ctx, registry.SearchRequest{Filter: tt.filter})
		if err != nil {
			t.Fatalf("search versions %q: %v", tt.filter, err)
		}
		names = nil
		for _, v := range vs {
			names = append(names, fmt.Sprintf("%s/%d", v.Name, v.Version))
		}
		if !reflect.DeepEqual(names, tt.latest) {
			t.Errorf("versions %q: got %v, want %v", tt.filter, names, tt.latest)
		}
	}
}

// TestRegistryServiceSearchPages checks that page tokens walk a search to its end
// and that the last page has no token.
func TestRegistryServiceSearchPages(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	var want []string
	for i := range 5 {
		name := fmt.Sprintf("model-%d", i)
		e.mustModel(t, name)
		want = append(want, name)
	}
	var got, tokens []string
	req := registry.SearchRequest{MaxResults: ptr[int64](2)}
	for range len(want) + 1 {
		ms, next, err := e.svc.SearchRegisteredModels(ctx, req)
		if err != nil {
			t.Fatalf("search: %v", err)
		}
		for _, m := range ms {
			got = append(got, m.Name)
		}
		tokens = append(tokens, next)
		if next == "" {
			break
		}
		req.PageToken = next
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("names across pages: got %v, want %v", got, want)
	}
	if len(tokens) != 3 || tokens[2] != "" {
		t.Errorf("page tokens: got %q, want two tokens and then none", tokens)
	}
}

// TestRegistryServiceStagesAndTimes checks stage transitions, archive_existing_versions
// and which timestamps they move, as MLflow's test_update_model_version_flow.
func TestRegistryServiceStagesAndTimes(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.mustModel(t, "m")
	for range 3 {
		e.mustVersion(t, "m", "s3://bucket/model", "")
	}
	for _, version := range []string{"1", "2"} {
		if _, err := e.svc.TransitionModelVersionStage(ctx, "m", version, "staging", false); err != nil {
			t.Fatalf("transition %s: %v", version, err)
		}
	}
	v3, err := e.svc.TransitionModelVersionStage(ctx, "m", "3", "STAGING", true)
	if err != nil {
		t.Fatalf("transition 3 with archive: %v", err)
	}
	if v3.CurrentStage != registry.StageStaging {
		t.Errorf("stage of version 3: got %q, want Staging", v3.CurrentStage)
	}
	m, err := e.svc.GetRegisteredModel(ctx, "m")
	if err != nil {
		t.Fatalf("get model: %v", err)
	}
	if m.LastUpdatedTimestamp != v3.LastUpdatedTimestamp {
		t.Errorf("model last update after a transition: got %d, want the transition's %d", m.LastUpdatedTimestamp, v3.LastUpdatedTimestamp)
	}
	stages := map[int64]string{}
	for _, v := range m.LatestVersions {
		stages[v.Version] = v.CurrentStage
	}
	if want := map[int64]string{2: registry.StageArchived, 3: registry.StageStaging}; !reflect.DeepEqual(stages, want) {
		t.Errorf("latest versions: got %v, want %v", stages, want)
	}

	v1, err := e.svc.UpdateModelVersion(ctx, "m", "1", ptr("better"))
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	if v1.Description != "better" || v1.CurrentStage != registry.StageArchived || v1.LastUpdatedTimestamp <= v3.LastUpdatedTimestamp {
		t.Errorf("updated version 1: got %+v, want the description, Archived, and a later update time", v1)
	}
	again, err := e.svc.UpdateModelVersion(ctx, "m", "1", nil)
	if err != nil || again.Description != "better" {
		t.Errorf("update without a description: got %+v, %v; want the description kept", again, err)
	}
	m2, err := e.svc.GetRegisteredModel(ctx, "m")
	if err != nil || m2.LastUpdatedTimestamp != m.LastUpdatedTimestamp {
		t.Errorf("model after a description change: got %+v, %v; want last update %d kept", m2, err, m.LastUpdatedTimestamp)
	}
}

func TestRegistryCanonicalStage(t *testing.T) {
	tests := []struct{ in, want string }{
		{"none", "None"}, {"None", "None"}, {"STAGING", "Staging"}, {"production", "Production"}, {"aRcHiVeD", "Archived"},
	}
	for _, tt := range tests {
		got, err := registry.CanonicalStage(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("CanonicalStage(%q): got %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "Deleted_Internal", "prod", " None"} {
		if _, err := registry.CanonicalStage(bad); mloop.ErrorCode(err) != mloop.EINVALID {
			t.Errorf("CanonicalStage(%q): got %v, want an EINVALID error", bad, err)
		}
	}
}

func TestRegistryParseVersion(t *testing.T) {
	tests := []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1", 1, true}, {" 42 ", 42, true}, {"007", 7, true},
		{"", 0, false}, {"1.5", 0, false}, {"v1", 0, false}, {"99999999999999999999", 0, false},
	}
	for _, tt := range tests {
		got, err := registry.ParseVersion(tt.in)
		if tt.ok && (err != nil || got != tt.want) {
			t.Errorf("ParseVersion(%q): got %d, %v; want %d", tt.in, got, err, tt.want)
		}
		if !tt.ok {
			wantErr(t, fmt.Sprintf("ParseVersion(%q)", tt.in), err, mloop.EINVALID, "Model version must be an integer, got '"+tt.in+"'")
		}
	}
}
