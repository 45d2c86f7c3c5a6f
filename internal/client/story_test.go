package client

import (
	"context"
	"net/http/httptest"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/httpapi"
	"github.com/mloop/mloop/internal/pipeline/pipelinetest"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/story"
)

// TestStory reads a deployment's story through the real HTTP API over the
// real deployment, registry and pipeline services (a server without
// alerting).
func TestStory(t *testing.T) {
	st := pipelinetest.NewStack(t)
	ctx := context.Background()
	deploys := deploy.NewService(sqlstore.NewDeploymentStore(st.DB), st.Registry, st.Artifacts)
	deploys.Logger = st.Logger
	api := &httpapi.Server{Tracking: st.Tracking, LoggedModels: st.LoggedModels, Registry: st.Registry, Artifacts: st.Artifacts,
		Deployments: deploys, Logger: st.Logger, Version: "test",
		Story: story.New(deploys, st.NewService(t), st.Registry, nil)}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	c := New(srv.URL, nil)

	registerFixture(t, c, "weather", "binary_logistic.json", nil)
	if _, err := c.CreateDeployment(ctx, "weather", deploy.Spec{Model: deploy.Ref{Model: "weather", Version: 1}}); err != nil {
		t.Fatal(err)
	}
	s, err := c.Story(ctx, "weather", 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Chains) != 1 || s.Chains[0].Outcome != story.OutcomeDeployed || len(s.Chains[0].Links) != 2 ||
		s.Chains[0].Links[0].Ref != "weather/1" || s.Chains[0].Links[1].Kind != deploy.EventCreated {
		t.Errorf("story: got %+v, want one chain: weather/1 registered, then deployed at creation", s.Chains)
	}
	if len(s.Notes) != 1 {
		t.Errorf("notes: got %q, want one saying the server does not evaluate alerts", s.Notes)
	}
	for _, tt := range []struct {
		name  string
		limit int
		code  string
	}{
		{"nope", 0, mloop.ENOTFOUND},
		{"weather", story.MaxLimit + 1, mloop.EINVALID},
	} {
		if _, err := c.Story(ctx, tt.name, tt.limit); mloop.ErrorCode(err) != tt.code {
			t.Errorf("Story(%s, %d): got %v, want %s", tt.name, tt.limit, err, tt.code)
		}
	}
}
