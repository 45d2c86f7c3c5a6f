package httpapi

// Handler of mloop's /api/v1 for a deployment's story (docs/story.md): the
// chains alert → trigger event → pipeline run → gate → model version →
// rollout. The work lives in internal/story.

import (
	"net/http"

	"github.com/mloop/mloop"
)

// deploymentStory answers GET /api/v1/deployments/{name}/story?limit=N:
// the deployment's story.Story, newest chain first.
func (s *Server) deploymentStory(w http.ResponseWriter, r *http.Request) error {
	if s.Story == nil {
		return mloop.Errorf(mloop.ENOTIMPLEMENTED, "This server does not tell deployment stories: it runs without the story service.")
	}
	limit, err := limitParam(r)
	if err != nil {
		return err
	}
	st, err := s.Story.Story(r.Context(), r.PathValue("name"), limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
