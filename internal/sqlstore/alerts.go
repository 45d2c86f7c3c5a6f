package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/alert"
)

// AlertStore implements alert.Store on SQLite or PostgreSQL: alert rules,
// their evaluation states, alerts and deliveries.
type AlertStore struct {
	db *DB
}

var _ alert.Store = (*AlertStore)(nil)

// NewAlertStore returns an alert store on db.
func NewAlertStore(db *DB) *AlertStore { return &AlertStore{db: db} }

func ruleNotFound(name string) error {
	return mloop.Errorf(mloop.ENOTFOUND, "alert rule %q does not exist: list the rules with mloop alert rules", name)
}

// CreateRule implements alert.Store.
func (s *AlertStore) CreateRule(ctx context.Context, r *alert.Rule) error {
	text, err := jsonText("alert rule", r)
	if err != nil {
		return err
	}
	err = s.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `INSERT INTO alert_rules (name, rule, created_ms, updated_ms) VALUES (?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			r.Name, text, r.CreatedAt.UnixMilli(), r.UpdatedAt.UnixMilli())
		if err != nil {
			return err
		}
		if n, err := rowsAffected(res, "insert alert rule"); err != nil {
			return err
		} else if n == 0 {
			return mloop.Errorf(mloop.EEXISTS, "alert rule %q already exists: change it with PUT, or delete it first", r.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("create alert rule %q: %w", r.Name, err)
	}
	return nil
}

// UpdateRule implements alert.Store.
func (s *AlertStore) UpdateRule(ctx context.Context, r *alert.Rule) error {
	text, err := jsonText("alert rule", r)
	if err != nil {
		return err
	}
	err = s.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `UPDATE alert_rules SET rule = ?, updated_ms = ? WHERE name = ?`, text, r.UpdatedAt.UnixMilli(), r.Name)
		if err != nil {
			return err
		}
		if n, err := rowsAffected(res, "update alert rule"); err != nil {
			return err
		} else if n == 0 {
			return ruleNotFound(r.Name)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("update alert rule %q: %w", r.Name, err)
	}
	return nil
}

// GetRule implements alert.Store.
func (s *AlertStore) GetRule(ctx context.Context, name string) (*alert.Rule, error) {
	var text string
	err := s.db.Read(ctx, func(tx *Tx) error {
		return tx.QueryRow(ctx, `SELECT rule FROM alert_rules WHERE name = ?`, name).Scan(&text)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ruleNotFound(name)
	} else if err != nil {
		return nil, fmt.Errorf("get alert rule %q: %w", name, err)
	}
	r := &alert.Rule{}
	if err := decodeJSON("alert rule "+name, text, r); err != nil {
		return nil, err
	}
	return r, nil
}

// ListRules implements alert.Store.
func (s *AlertStore) ListRules(ctx context.Context) ([]*alert.Rule, error) {
	out := []*alert.Rule{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		return queryEach(ctx, tx, `SELECT name, rule FROM alert_rules ORDER BY name`, nil, func(sc scanner) error {
			var name, text string
			if err := sc.Scan(&name, &text); err != nil {
				return err
			}
			r := &alert.Rule{}
			if err := decodeJSON("alert rule "+name, text, r); err != nil {
				return err
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list alert rules: %w", err)
	}
	return out, nil
}

// DeleteRule implements alert.Store. The rule's firing alerts are marked
// resolved (their rule is gone).
func (s *AlertStore) DeleteRule(ctx context.Context, name string) error {
	now := time.Now().UTC()
	err := s.db.Write(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM alert_states WHERE rule = ?`, name); err != nil {
			return err
		}
		res, err := tx.Exec(ctx, `DELETE FROM alert_rules WHERE name = ?`, name)
		if err != nil {
			return err
		}
		if n, err := rowsAffected(res, "delete alert rule"); err != nil {
			return err
		} else if n == 0 {
			return ruleNotFound(name)
		}
		var firing []*alert.Alert
		err = queryEach(ctx, tx, `SELECT `+alertColumns+` FROM alerts WHERE rule = ? AND state = ?`, []any{name, string(alert.StateFiring)}, func(sc scanner) error {
			a, err := scanAlert(sc)
			if err == nil {
				firing = append(firing, a)
			}
			return err
		})
		if err != nil {
			return err
		}
		for _, a := range firing {
			a.State, a.ResolvedAt, a.Message = alert.StateResolved, now, "resolved: the rule was deleted"
			if err := putAlert(ctx, tx, a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("delete alert rule %q: %w", name, err)
	}
	return nil
}

// GetState implements alert.Store.
func (s *AlertStore) GetState(ctx context.Context, rule, deployment, modelVersion string) (*alert.RuleState, error) {
	var text string
	err := s.db.Read(ctx, func(tx *Tx) error {
		return tx.QueryRow(ctx, `SELECT state FROM alert_states WHERE rule = ? AND deployment = ? AND model_version = ?`,
			rule, deployment, modelVersion).Scan(&text)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "alert rule %q was never evaluated on %s (%s)", rule, deployment, modelVersion)
	} else if err != nil {
		return nil, fmt.Errorf("get state of alert rule %q: %w", rule, err)
	}
	st := &alert.RuleState{}
	if err := decodeJSON("alert state", text, st); err != nil {
		return nil, err
	}
	return st, nil
}

// SaveState implements alert.Store.
func (s *AlertStore) SaveState(ctx context.Context, st *alert.RuleState, a *alert.Alert) error {
	if st.Rule == "" || st.Deployment == "" {
		return mloop.Errorf(mloop.EINVALID, "an alert state needs a rule and a deployment")
	}
	text, err := jsonText("alert state", st)
	if err != nil {
		return err
	}
	err = s.db.Write(ctx, func(tx *Tx) error {
		var one int
		err := tx.QueryRow(ctx, `SELECT 1 FROM alert_rules WHERE name = ?`+forUpdate(tx.Dialect()), st.Rule).Scan(&one)
		if errors.Is(err, sql.ErrNoRows) {
			return ruleNotFound(st.Rule)
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO alert_states (rule, deployment, model_version, state) VALUES (?, ?, ?, ?)
			ON CONFLICT (rule, deployment, model_version) DO UPDATE SET state = excluded.state`,
			st.Rule, st.Deployment, st.ModelVersion, text); err != nil {
			return err
		}
		if a != nil {
			return putAlert(ctx, tx, a)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save state of alert rule %q: %w", st.Rule, err)
	}
	return nil
}

const alertColumns = `id, state, resolved_ms, alert`

// putAlert inserts or replaces an alert.
func putAlert(ctx context.Context, tx *Tx, a *alert.Alert) error {
	if a.ID == "" || a.Rule == "" || a.Deployment == "" {
		return mloop.Errorf(mloop.EINVALID, "an alert needs an id, a rule and a deployment")
	}
	text, err := jsonText("alert", a)
	if err != nil {
		return err
	}
	var resolved any
	if !a.ResolvedAt.IsZero() {
		resolved = a.ResolvedAt.UnixMilli()
	}
	_, err = tx.Exec(ctx, `INSERT INTO alerts (id, rule, deployment, model_version, state, started_ms, resolved_ms, alert)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO UPDATE SET state = excluded.state,
		resolved_ms = excluded.resolved_ms, alert = excluded.alert`,
		a.ID, a.Rule, a.Deployment, a.ModelVersion, string(a.State), a.StartedAt.UnixMilli(), resolved, text)
	return err
}

// scanAlert reads a row of alertColumns.
func scanAlert(sc scanner) (*alert.Alert, error) {
	var (
		id, state, text string
		resolved        sql.NullInt64
	)
	if err := sc.Scan(&id, &state, &resolved, &text); err != nil {
		return nil, err
	}
	a := &alert.Alert{}
	if err := decodeJSON("alert "+id, text, a); err != nil {
		return nil, err
	}
	a.ID, a.State = id, alert.State(state)
	return a, nil
}

// GetAlert implements alert.Store.
func (s *AlertStore) GetAlert(ctx context.Context, id string) (*alert.Alert, error) {
	var a *alert.Alert
	err := s.db.Read(ctx, func(tx *Tx) (err error) {
		a, err = scanAlert(tx.QueryRow(ctx, `SELECT `+alertColumns+` FROM alerts WHERE id = ?`, id))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "alert %q does not exist: list alerts with mloop alert list", id)
	} else if err != nil {
		return nil, fmt.Errorf("get alert %s: %w", id, err)
	}
	return a, nil
}

// ListAlerts implements alert.Store.
func (s *AlertStore) ListAlerts(ctx context.Context, f alert.AlertFilter) ([]*alert.Alert, error) {
	q := `SELECT ` + alertColumns + ` FROM alerts WHERE 1 = 1`
	var args []any
	if f.Rule != "" {
		q += ` AND rule = ?`
		args = append(args, f.Rule)
	}
	if f.Deployment != "" {
		q += ` AND deployment = ?`
		args = append(args, f.Deployment)
	}
	if f.State != "" {
		q += ` AND state = ?`
		args = append(args, string(f.State))
	}
	q += ` ORDER BY started_ms DESC, id DESC`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	out := []*alert.Alert{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		return queryEach(ctx, tx, q, args, func(sc scanner) error {
			a, err := scanAlert(sc)
			if err == nil {
				out = append(out, a)
			}
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list alerts: %w", err)
	}
	return out, nil
}

// AddDelivery implements alert.Store.
func (s *AlertStore) AddDelivery(ctx context.Context, d *alert.Delivery) error {
	if d.AlertID == "" || d.Outcome == "" {
		return mloop.Errorf(mloop.EINVALID, "a delivery needs an alert id and an outcome")
	}
	err := s.db.Write(ctx, func(tx *Tx) error {
		return tx.QueryRow(ctx, `INSERT INTO alert_deliveries (alert_id, rule, action, kind, event, attempt, status_code, error, outcome, detail, at_ms)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			d.AlertID, d.Rule, d.Action, d.Kind, string(d.Event), d.Attempt, d.StatusCode, d.Error, d.Outcome, d.Detail, d.Time.UnixMilli()).Scan(&d.ID)
	})
	if err != nil {
		return fmt.Errorf("record delivery of alert %s: %w", d.AlertID, err)
	}
	return nil
}

// ListDeliveries implements alert.Store.
func (s *AlertStore) ListDeliveries(ctx context.Context, alertID string) ([]*alert.Delivery, error) {
	out := []*alert.Delivery{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		return queryEach(ctx, tx, `SELECT id, alert_id, rule, action, kind, event, attempt, status_code, error, outcome, detail, at_ms
			FROM alert_deliveries WHERE alert_id = ? ORDER BY id`, []any{alertID}, func(sc scanner) error {
			d := &alert.Delivery{}
			var event string
			var at int64
			if err := sc.Scan(&d.ID, &d.AlertID, &d.Rule, &d.Action, &d.Kind, &event, &d.Attempt, &d.StatusCode, &d.Error, &d.Outcome, &d.Detail, &at); err != nil {
				return err
			}
			d.Event, d.Time = alert.State(event), time.UnixMilli(at).UTC()
			out = append(out, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list deliveries of alert %s: %w", alertID, err)
	}
	return out, nil
}
