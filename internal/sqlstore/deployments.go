package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving/deploy"
)

// DeploymentStore implements deploy.Store on SQLite or PostgreSQL:
// deployments, their past generations and their events. Every method runs
// in one transaction; UpdateDeployment is a compare-and-swap on the
// generation, safe when several servers share one PostgreSQL database.
type DeploymentStore struct {
	db *DB
	// now returns the current time; tests of the package may replace it.
	now func() time.Time
}

var _ deploy.Store = (*DeploymentStore)(nil)

// NewDeploymentStore returns a deployment store on db.
func NewDeploymentStore(db *DB) *DeploymentStore {
	return &DeploymentStore{db: db, now: time.Now}
}

// deploymentColumns are the columns scanDeployment reads, in order, in both
// deployments and deployment_history.
const deploymentColumns = `name, spec, slots, generation, next_revision, created_at, updated_at`

// deploymentEventColumns are the columns scanDeploymentEvent reads, in order.
const deploymentEventColumns = `id, deployment, time, type, generation, message, automatic, details`

func deploymentNotFound(name string) error {
	return mloop.Errorf(mloop.ENOTFOUND, "deployment %q does not exist: list deployments with mloop deploy list", name)
}

// scanDeployment reads a row of deploymentColumns.
func scanDeployment(sc scanner) (*deploy.Deployment, error) {
	var (
		d           deploy.Deployment
		spec, slots string
	)
	if err := sc.Scan(&d.Name, &spec, &slots, &d.Generation, &d.NextRevision, &d.CreatedAt, &d.UpdatedAt); err != nil {
		return nil, err
	}
	if err := decodeJSON("spec of deployment "+d.Name, spec, &d.Spec); err != nil {
		return nil, err
	}
	if err := decodeJSON("slots of deployment "+d.Name, slots, &d.Slots); err != nil {
		return nil, err
	}
	if d.Slots == nil {
		d.Slots = []deploy.Slot{}
	}
	return &d, nil
}

// scanDeploymentEvent reads a row of deploymentEventColumns.
func scanDeploymentEvent(sc scanner) (*deploy.Event, error) {
	var (
		e       deploy.Event
		details sql.NullString
	)
	if err := sc.Scan(&e.ID, &e.Deployment, &e.Time, &e.Type, &e.Generation, &e.Message, &e.Automatic, &details); err != nil {
		return nil, err
	}
	if details.Valid && details.String != "" {
		e.Details = json.RawMessage(details.String)
	}
	return &e, nil
}

// deploymentTexts encodes d's spec and slots as JSON text.
func deploymentTexts(d *deploy.Deployment) (spec, slots string, err error) {
	if spec, err = jsonText("deployment spec", d.Spec); err != nil {
		return "", "", err
	}
	if slots, err = jsonList("deployment slots", d.Slots); err != nil {
		return "", "", err
	}
	return spec, slots, nil
}

// insertDeploymentEvent stores ev for deployment name at generation and
// sets its ID, Deployment and Generation, and its Time when zero. Details
// must be valid JSON.
func (s *DeploymentStore) insertDeploymentEvent(ctx context.Context, tx *Tx, name string, generation int64, ev *deploy.Event) error {
	if ev == nil {
		return mloop.Errorf(mloop.EINVALID, "a change of deployment %q needs an event", name)
	}
	if ev.Type == "" {
		return mloop.Errorf(mloop.EINVALID, "an event of deployment %q needs a type", name)
	}
	var details any
	if len(ev.Details) > 0 {
		if !json.Valid(ev.Details) {
			return mloop.Errorf(mloop.EINVALID, "the details of an event of deployment %q are not valid JSON", name)
		}
		details = string(ev.Details)
	}
	t := ev.Time
	if t == 0 {
		t = s.now().UnixMilli()
	}
	var id int64
	err := tx.QueryRow(ctx, `INSERT INTO deployment_events (deployment, time, type, generation, message, automatic, details)
		VALUES (?, ?, ?, ?, ?, ?, ?) RETURNING id`,
		name, t, ev.Type, generation, ev.Message, ev.Automatic, details).Scan(&id)
	if err != nil {
		return fmt.Errorf("store event: %w", err)
	}
	ev.ID, ev.Deployment, ev.Time, ev.Generation = id, name, t, generation
	return nil
}

// CreateDeployment stores d with Generation 1 (set in d too) and ev, in one
// transaction. Zero CreatedAt and UpdatedAt are set to now. EEXISTS when
// the name is taken; EINVALID for an empty name or an event without type.
// ev gets its ID, and its Time when zero.
func (s *DeploymentStore) CreateDeployment(ctx context.Context, d *deploy.Deployment, ev *deploy.Event) error {
	if d.Name == "" {
		return mloop.Errorf(mloop.EINVALID, "a deployment needs a name")
	}
	spec, slots, err := deploymentTexts(d)
	if err != nil {
		return fmt.Errorf("create deployment %q: %w", d.Name, err)
	}
	now := s.now().UnixMilli()
	created, updated := d.CreatedAt, d.UpdatedAt
	if created == 0 {
		created = now
	}
	if updated == 0 {
		updated = created
	}
	err = s.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `INSERT INTO deployments (`+deploymentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (name) DO NOTHING`, d.Name, spec, slots, 1, d.NextRevision, created, updated)
		if err != nil {
			return err
		}
		if n, err := rowsAffected(res, "insert deployment"); err != nil {
			return err
		} else if n == 0 {
			return mloop.Errorf(mloop.EEXISTS, "deployment %q already exists: update it (mloop deploy update) or choose another name", d.Name)
		}
		return s.insertDeploymentEvent(ctx, tx, d.Name, 1, ev)
	})
	if err != nil {
		return fmt.Errorf("create deployment %q: %w", d.Name, err)
	}
	d.Generation, d.CreatedAt, d.UpdatedAt = 1, created, updated
	return nil
}

// GetDeployment returns the deployment; ENOTFOUND for an unknown name.
func (s *DeploymentStore) GetDeployment(ctx context.Context, name string) (*deploy.Deployment, error) {
	var d *deploy.Deployment
	err := s.db.Read(ctx, func(tx *Tx) (err error) {
		d, err = scanDeployment(tx.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE name = ?`, name))
		return err
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, deploymentNotFound(name)
	} else if err != nil {
		return nil, fmt.Errorf("get deployment %q: %w", name, err)
	}
	return d, nil
}

// ListDeployments returns every deployment, by name (bytewise).
func (s *DeploymentStore) ListDeployments(ctx context.Context) ([]*deploy.Deployment, error) {
	out := []*deploy.Deployment{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		return queryEach(ctx, tx, `SELECT `+deploymentColumns+` FROM deployments ORDER BY name`, nil, func(sc scanner) error {
			d, err := scanDeployment(sc)
			if err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list deployments: %w", err)
	}
	return out, nil
}

// UpdateDeployment replaces the deployment whose generation is
// prevGeneration with d, keeps the replaced generation in the history and
// stores ev, in one transaction. It sets d.Generation to prevGeneration+1,
// keeps the stored CreatedAt (in d too) and sets a zero UpdatedAt to now.
// ECONFLICT when the stored generation is not prevGeneration; ENOTFOUND
// when the deployment does not exist.
func (s *DeploymentStore) UpdateDeployment(ctx context.Context, d *deploy.Deployment, prevGeneration int64, ev *deploy.Event) error {
	spec, slots, err := deploymentTexts(d)
	if err != nil {
		return fmt.Errorf("update deployment %q: %w", d.Name, err)
	}
	updated := d.UpdatedAt
	if updated == 0 {
		updated = s.now().UnixMilli()
	}
	next := prevGeneration + 1
	var created int64
	err = s.db.Write(ctx, func(tx *Tx) error {
		// Lock the row: a concurrent writer waits here, then sees the new
		// generation and fails the comparison.
		old, err := scanDeployment(tx.QueryRow(ctx, `SELECT `+deploymentColumns+` FROM deployments WHERE name = ?`+
			forUpdate(tx.Dialect()), d.Name))
		if errors.Is(err, sql.ErrNoRows) {
			return deploymentNotFound(d.Name)
		} else if err != nil {
			return err
		}
		if old.Generation != prevGeneration {
			return mloop.Errorf(mloop.ECONFLICT, "deployment %q changed meanwhile (generation %d, not %d): read it again and retry",
				d.Name, old.Generation, prevGeneration)
		}
		oldSpec, oldSlots, err := deploymentTexts(old)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO deployment_history (`+deploymentColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			old.Name, oldSpec, oldSlots, old.Generation, old.NextRevision, old.CreatedAt, old.UpdatedAt); err != nil {
			return fmt.Errorf("keep generation %d in the history: %w", old.Generation, err)
		}
		res, err := tx.Exec(ctx, `UPDATE deployments SET spec = ?, slots = ?, generation = ?, next_revision = ?, updated_at = ?
			WHERE name = ? AND generation = ?`, spec, slots, next, d.NextRevision, updated, d.Name, prevGeneration)
		if err != nil {
			return err
		}
		if n, err := rowsAffected(res, "update deployment"); err != nil {
			return err
		} else if n != 1 {
			return mloop.Errorf(mloop.ECONFLICT, "deployment %q changed meanwhile: read it again and retry", d.Name)
		}
		created = old.CreatedAt
		return s.insertDeploymentEvent(ctx, tx, d.Name, next, ev)
	})
	if err != nil {
		return fmt.Errorf("update deployment %q: %w", d.Name, err)
	}
	d.Generation, d.CreatedAt, d.UpdatedAt = next, created, updated
	return nil
}

// DeleteDeployment removes the deployment and its history and stores ev
// (events are kept), in one transaction; ev's Generation is set to the
// deleted generation plus one. ENOTFOUND for an unknown name.
func (s *DeploymentStore) DeleteDeployment(ctx context.Context, name string, ev *deploy.Event) error {
	err := s.db.Write(ctx, func(tx *Tx) error {
		var gen int64
		err := tx.QueryRow(ctx, `SELECT generation FROM deployments WHERE name = ?`+forUpdate(tx.Dialect()), name).Scan(&gen)
		if errors.Is(err, sql.ErrNoRows) {
			return deploymentNotFound(name)
		} else if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM deployment_history WHERE name = ?`, name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM deployments WHERE name = ?`, name); err != nil {
			return err
		}
		return s.insertDeploymentEvent(ctx, tx, name, gen+1, ev)
	})
	if err != nil {
		return fmt.Errorf("delete deployment %q: %w", name, err)
	}
	return nil
}

// History returns the deployment's past generations, newest first, at
// most limit (0 or less: all). ENOTFOUND for an unknown deployment.
func (s *DeploymentStore) History(ctx context.Context, name string, limit int) ([]*deploy.Deployment, error) {
	q := `SELECT ` + deploymentColumns + ` FROM deployment_history WHERE name = ? ORDER BY generation DESC`
	args := []any{name}
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	out := []*deploy.Deployment{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		var n int
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM deployments WHERE name = ?`, name).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return deploymentNotFound(name)
		}
		return queryEach(ctx, tx, q, args, func(sc scanner) error {
			d, err := scanDeployment(sc)
			if err != nil {
				return err
			}
			out = append(out, d)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("history of deployment %q: %w", name, err)
	}
	return out, nil
}

// ListEvents returns the deployment's events (every deployment's for an
// empty name), newest first, at most limit (0 or less: all). The events of
// a deleted deployment are still listed; an unknown name has none.
func (s *DeploymentStore) ListEvents(ctx context.Context, name string, limit int) ([]*deploy.Event, error) {
	q := `SELECT ` + deploymentEventColumns + ` FROM deployment_events`
	var args []any
	if name != "" {
		q += ` WHERE deployment = ?`
		args = append(args, name)
	}
	q += ` ORDER BY id DESC`
	if limit > 0 {
		q += ` LIMIT ?`
		args = append(args, limit)
	}
	out := []*deploy.Event{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		return queryEach(ctx, tx, q, args, func(sc scanner) error {
			e, err := scanDeploymentEvent(sc)
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list events of deployment %q: %w", name, err)
	}
	return out, nil
}
