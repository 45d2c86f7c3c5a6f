package deploy_test

import (
	"context"
	"sync"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// interferingStore runs a competing change just before the first
// UpdateDeployment it is asked for, so that the compare-and-swap of that
// first attempt fails as it would with a concurrent writer.
type interferingStore struct {
	deploy.Store
	once   sync.Once
	before func()
}

func (s *interferingStore) UpdateDeployment(ctx context.Context, d *deploy.Deployment, prev int64, ev *deploy.Event) error {
	s.once.Do(s.before)
	return s.Store.UpdateDeployment(ctx, d, prev, ev)
}

// TestRetryKeepsIntent checks what a change does when another writer got
// in between its read and its compare-and-swap: it re-reads and applies
// the same intent on top, or refuses when the intent no longer holds.
func TestRetryKeepsIntent(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name    string
		compete func(t *testing.T, e *env)
		change  func(s *deploy.Service) error
		code    string // "" for success
		slots   string
		gen     int64
	}{
		{
			name:    "rollback of a canary promoted meanwhile",
			compete: func(t *testing.T, e *env) { _, err := e.svc.Promote(ctx, "d"); must(t, "competing Promote", err) },
			change: func(s *deploy.Service) error {
				_, err := s.Rollback(ctx, "d", deploy.RollbackRequest{})
				return err
			},
			code: mloop.ECONFLICT, slots: "primary r2 flights/2 flights@2 100%", gen: 2,
		},
		{
			name: "promotion of a canary replaced meanwhile",
			compete: func(t *testing.T, e *env) {
				_, err := e.svc.Update(ctx, "d", deploy.Update{Canary: refp(t, "flights@3")})
				must(t, "competing Update", err)
			},
			change: func(s *deploy.Service) error { _, err := s.Promote(ctx, "d"); return err },
			code:   mloop.ECONFLICT, slots: "primary r1 flights/1 flights@1 90%, canary r3 flights/3 flights@3 10%", gen: 2,
		},
		{
			name: "updates of different fields both apply",
			compete: func(t *testing.T, e *env) {
				_, err := e.svc.Update(ctx, "d", deploy.Update{Shadow: refp(t, "flights@4")})
				must(t, "competing Update", err)
			},
			change: func(s *deploy.Service) error {
				_, err := s.Update(ctx, "d", deploy.Update{CanaryPercent: ptr(40)})
				return err
			},
			slots: "primary r1 flights/1 flights@1 60%, canary r2 flights/2 flights@2 40%, shadow r3 flights/4 flights@4 0%", gen: 3,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := modelEnv(t)
			_, err := e.svc.Create(ctx, "d", deploy.Spec{Model: ref(t, "flights@1"), Canary: refp(t, "flights@2"), CanaryPercent: 10})
			must(t, "Create", err)
			s := e.newService(t)
			s.Store = &interferingStore{Store: e.store, before: func() { tc.compete(t, e) }}
			err = tc.change(s)
			wantCode(t, tc.name, err, tc.code)
			d := e.get(t, "d")
			if got := slotsText(d.Slots); got != tc.slots || d.Generation != tc.gen {
				t.Fatalf("got %s (generation %d)\nwant %s (generation %d)", got, d.Generation, tc.slots, tc.gen)
			}
			if n := len(e.events(t, "d")); int64(n) != tc.gen {
				t.Fatalf("got %d events, want %d (one per generation)", n, tc.gen)
			}
		})
	}

	t.Run("alias move recorded once", func(t *testing.T) {
		e := modelEnv(t)
		e.setAlias(t, "flights", "champion", 1)
		_, err := e.svc.Create(ctx, "d", deploy.Spec{Model: ref(t, "flights@champion")})
		must(t, "Create", err)
		e.setAlias(t, "flights", "champion", 3)
		s := e.newService(t)
		s.Store = &interferingStore{Store: e.store, before: func() { must(t, "competing SyncAliases", e.svc.SyncAliases(ctx)) }}
		must(t, "SyncAliases", s.SyncAliases(ctx))
		d := e.get(t, "d")
		if got := slotsText(d.Slots); got != "primary r2 flights/3 flights@champion 100%" || d.Generation != 2 || len(e.events(t, "d")) != 2 {
			t.Fatalf("got %s (generation %d, %d events), want one move to flights/3 as revision 2", got, d.Generation, len(e.events(t, "d")))
		}
	})
}
