package deploy

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// State returns what data planes serve: every deployment, by name, and an
// ETag that is a hash of their content (so it changes whenever any of
// them does, and only then). When etag is the current ETag it waits up to
// wait (at most MaxStateWait) for a change first, returning the unchanged
// state when none came: a change made through this Service ends the wait
// at once, one made by another server sharing the database within about
// 500ms. It returns ctx's error when ctx ends first.
func (s *Service) State(ctx context.Context, etag string, wait time.Duration) (*State, error) {
	deadline := time.Now().Add(min(wait, MaxStateWait))
	for {
		changed := s.changes() // before reading, so no change is missed
		st, err := s.readState(ctx)
		if err != nil {
			return nil, err
		}
		remaining := time.Until(deadline)
		if etag == "" || st.ETag != etag || remaining <= 0 {
			return st, nil
		}
		t := time.NewTimer(min(remaining, statePollInterval))
		select {
		case <-changed:
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		t.Stop()
	}
}

// readState reads every deployment and computes the ETag.
func (s *Service) readState(ctx context.Context) (*State, error) {
	list, err := s.Store.ListDeployments(ctx)
	if err != nil {
		return nil, err
	}
	if list == nil {
		list = []*Deployment{}
	}
	b, err := json.Marshal(list)
	if err != nil {
		return nil, fmt.Errorf("deployment state: %w", err)
	}
	sum := sha256.Sum256(b)
	return &State{ETag: hex.EncodeToString(sum[:16]), Deployments: list}, nil
}
