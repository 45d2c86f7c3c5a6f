package alert

import (
	"context"
	"fmt"
	"time"

	"github.com/mloop/mloop"
)

// CreateRule checks r, fills its defaults and times and stores it; EINVALID
// for a bad rule, EEXISTS when the name is taken.
func (e *Engine) CreateRule(ctx context.Context, r *Rule) (*Rule, error) {
	if r == nil {
		return nil, mloop.Errorf(mloop.EINVALID, "no alert rule given")
	}
	c := *r
	if err := c.Check(); err != nil {
		return nil, err
	}
	now := time.Now().UTC()
	c.CreatedAt, c.UpdatedAt = now, now
	if err := e.store.CreateRule(ctx, &c); err != nil {
		return nil, fmt.Errorf("create alert rule %q: %w", c.Name, err)
	}
	return &c, nil
}

// PutRule creates r or replaces the rule of its name (keeping its creation
// time and its evaluation states); EINVALID for a bad rule.
func (e *Engine) PutRule(ctx context.Context, r *Rule) (*Rule, error) {
	if r == nil {
		return nil, mloop.Errorf(mloop.EINVALID, "no alert rule given")
	}
	old, err := e.store.GetRule(ctx, r.Name)
	if mloop.IsNotFound(err) {
		return e.CreateRule(ctx, r)
	} else if err != nil {
		return nil, err
	}
	c := *r
	if err := c.Check(); err != nil {
		return nil, err
	}
	c.CreatedAt, c.UpdatedAt = old.CreatedAt, time.Now().UTC()
	if err := e.store.UpdateRule(ctx, &c); err != nil {
		return nil, fmt.Errorf("update alert rule %q: %w", c.Name, err)
	}
	return &c, nil
}

// GetRule returns a rule; ENOTFOUND when there is none.
func (e *Engine) GetRule(ctx context.Context, name string) (*Rule, error) {
	return e.store.GetRule(ctx, name)
}

// ListRules returns every rule by name.
func (e *Engine) ListRules(ctx context.Context) ([]*Rule, error) { return e.store.ListRules(ctx) }

// DeleteRule deletes a rule and its states (its alerts stay as history);
// ENOTFOUND when there is none. Its firing alerts stop counting in the
// firing gauge.
func (e *Engine) DeleteRule(ctx context.Context, name string) error {
	if err := e.store.DeleteRule(ctx, name); err != nil {
		return err
	}
	e.firing.DeletePartialMatch(map[string]string{"rule": name})
	return nil
}

// Alerts returns the alerts matching f, newest first.
func (e *Engine) Alerts(ctx context.Context, f AlertFilter) ([]*Alert, error) {
	return e.store.ListAlerts(ctx, f)
}

// Alert returns an alert with its deliveries, oldest first; ENOTFOUND when
// there is no such alert.
func (e *Engine) Alert(ctx context.Context, id string) (*Alert, []*Delivery, error) {
	a, err := e.store.GetAlert(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	ds, err := e.store.ListDeliveries(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	return a, ds, nil
}
