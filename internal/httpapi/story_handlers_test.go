package httpapi

import (
	"net/http"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/pipeline/pipelinetest"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/story"
)

// TestDeploymentStory serves the story of a deployment changed by hand
// (no alert, no pipeline) from the real deployment and registry services:
// a canary started and promoted, and the version deployed at creation.
func TestDeploymentStory(t *testing.T) {
	e := newDeployServer(t, false, func(s *Server) {
		st := pipelinetest.NewStack(t)
		alerts := alert.NewEngine(sqlstore.NewAlertStore(st.DB), nil, alert.Config{Logger: st.Logger})
		s.Story = story.New(s.Deployments, st.NewService(t), s.Registry, alerts)
	})
	e.register(t, "weather", "binary_logistic.json")
	e.register(t, "weather", "missing.json")
	e.must(t, http.StatusCreated, "POST", "/api/v1/deployments", map[string]any{"name": "weather", "spec": map[string]any{"model": "weather@1"}})
	e.must(t, http.StatusOK, "PATCH", "/api/v1/deployments/weather", map[string]any{"canary": "weather@2", "canary_percent": 25})
	e.must(t, http.StatusOK, "POST", "/api/v1/deployments/weather/promote", nil)

	out := e.must(t, http.StatusOK, "GET", "/api/v1/deployments/weather/story", nil)
	st := decodeAs[story.Story](t, out)
	var got []string
	for _, c := range st.Chains {
		var kinds []string
		for _, l := range c.Links {
			kinds = append(kinds, l.Kind+" "+l.Ref)
		}
		got = append(got, c.Outcome+": "+strings.Join(kinds, " > "))
	}
	want := []string{
		"promoted: model_version weather/2 > updated weather#2 > promoted weather#3",
		"deployed: model_version weather/1 > created weather#1",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("story of weather:\n got %q\nwant %q", got, want)
	}
	if st.Deployment != "weather" || st.Model != "weather@2" {
		t.Errorf("got deployment %q model %q, want weather and weather@2", st.Deployment, st.Model)
	}

	out = e.must(t, http.StatusOK, "GET", "/api/v1/deployments/weather/story?limit=1", nil)
	if st := decodeAs[story.Story](t, out); len(st.Chains) != 1 || st.Chains[0].Outcome != story.OutcomePromoted {
		t.Errorf("limit=1: got %+v, want the promoted chain only", st.Chains)
	}

	for _, tt := range []struct {
		path   string
		status int
		code   string
	}{
		{"/api/v1/deployments/nope/story", http.StatusNotFound, "RESOURCE_DOES_NOT_EXIST"},
		{"/api/v1/deployments/weather/story?limit=0", http.StatusBadRequest, "INVALID_PARAMETER_VALUE"},
		{"/api/v1/deployments/weather/story?limit=x", http.StatusBadRequest, "INVALID_PARAMETER_VALUE"},
		{"/api/v1/deployments/weather/story?limit=101", http.StatusBadRequest, "INVALID_PARAMETER_VALUE"},
	} {
		status, out := e.call(t, "GET", tt.path, nil)
		if status != tt.status || out["error_code"] != tt.code {
			t.Errorf("GET %s: got %d %v, want %d %s", tt.path, status, out, tt.status, tt.code)
		}
	}
}

// TestDeploymentStoryNotImplemented: a server without the story service
// says so.
func TestDeploymentStoryNotImplemented(t *testing.T) {
	e := newDeployServer(t, false)
	status, out := e.call(t, "GET", "/api/v1/deployments/weather/story", nil)
	if status != http.StatusNotImplemented || out["error_code"] != "NOT_IMPLEMENTED" {
		t.Errorf("got %d %v, want 501 NOT_IMPLEMENTED", status, out)
	}
}
