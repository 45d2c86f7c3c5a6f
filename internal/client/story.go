package client

// A deployment's story (docs/story.md): the chains alert → trigger event →
// pipeline run → gate → model version → rollout, assembled by the server.

import (
	"context"
	"fmt"
	"net/http"

	"github.com/mloop/mloop/internal/story"
)

// Story returns the story of deployment name: at most limit chains (0:
// the server's default of story.DefaultLimit), newest first. ENOTFOUND for
// a name never deployed, EINVALID for a limit above story.MaxLimit,
// ENOTIMPLEMENTED for a server without the story service.
func (c *Client) Story(ctx context.Context, name string, limit int) (*story.Story, error) {
	var out story.Story
	if _, err := c.callJSON(ctx, http.MethodGet, deploymentPath(name, "/story"), limitQuery(limit), nil, &out); err != nil {
		return nil, fmt.Errorf("story of deployment %s: %w", name, err)
	}
	return &out, nil
}
