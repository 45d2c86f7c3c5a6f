package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/monitor"
)

// MonitorStore implements monitor.Store on SQLite or PostgreSQL: the
// closed windows of monitored deployments, their profiles and the quality
// of the labels joined with them.
type MonitorStore struct {
	db *DB
}

var _ monitor.Store = (*MonitorStore)(nil)

// NewMonitorStore returns a monitoring store on db.
func NewMonitorStore(db *DB) *MonitorStore { return &MonitorStore{db: db} }

const monitorWindowColumns = `id, summary, quality`

func windowNotFound(id string) error {
	return mloop.Errorf(mloop.ENOTFOUND, "monitoring window %q does not exist: list a deployment's windows with mloop monitor DEPLOYMENT", id)
}

// SaveWindow implements monitor.Store.
func (s *MonitorStore) SaveWindow(ctx context.Context, w *monitor.WindowSummary) error {
	if w.ID == "" || w.Deployment == "" || w.ModelVersion == "" {
		return mloop.Errorf(mloop.EINVALID, "a monitoring window needs an id, a deployment and a model version")
	}
	body := *w
	body.Quality, body.Profiles = nil, nil
	summary, err := jsonText("monitoring window", &body)
	if err != nil {
		return fmt.Errorf("save window %s: %w", w.ID, err)
	}
	var quality, profiles any
	if w.Quality != nil {
		if quality, err = jsonText("window quality", w.Quality); err != nil {
			return fmt.Errorf("save window %s: %w", w.ID, err)
		}
	}
	if w.Profiles != nil {
		if profiles, err = jsonText("window profiles", w.Profiles); err != nil {
			return fmt.Errorf("save window %s: %w", w.ID, err)
		}
	}
	err = s.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `INSERT INTO monitor_windows (id, deployment, model_version, start_ms, end_ms, rows, requests, errors,
			dataset_drift, drift_share, summary, quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
			w.ID, w.Deployment, w.ModelVersion, w.Start.UnixMilli(), w.End.UnixMilli(), w.Rows, w.Requests, w.Errors,
			w.Drift.DatasetDrift, w.Drift.Share, summary, quality)
		if err != nil {
			return err
		}
		if n, err := rowsAffected(res, "insert window"); err != nil {
			return err
		} else if n == 0 {
			return mloop.Errorf(mloop.EEXISTS, "monitoring window %q is already saved", w.ID)
		}
		if profiles != nil {
			if _, err := tx.Exec(ctx, `INSERT INTO monitor_window_profiles (id, profiles) VALUES (?, ?)`, w.ID, profiles); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("save window %s: %w", w.ID, err)
	}
	return nil
}

// MergeWindowQuality implements monitor.Store.
func (s *MonitorStore) MergeWindowQuality(ctx context.Context, id string, delta *monitor.Quality) error {
	if delta == nil {
		return nil
	}
	err := s.db.Write(ctx, func(tx *Tx) error {
		var text sql.NullString
		err := tx.QueryRow(ctx, `SELECT quality FROM monitor_windows WHERE id = ?`+forUpdate(tx.Dialect()), id).Scan(&text)
		if errors.Is(err, sql.ErrNoRows) {
			return windowNotFound(id)
		} else if err != nil {
			return err
		}
		q := monitor.NewQuality(delta.Task)
		if text.Valid && text.String != "" {
			if err := decodeJSON("quality of window "+id, text.String, q); err != nil {
				return err
			}
		}
		if err := q.Merge(delta); err != nil {
			return err
		}
		out, err := jsonText("window quality", q)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `UPDATE monitor_windows SET quality = ? WHERE id = ?`, out, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("merge quality into window %s: %w", id, err)
	}
	return nil
}

// scanWindow reads a row of monitorWindowColumns.
func scanWindow(sc scanner) (*monitor.WindowSummary, error) {
	var (
		id, summary string
		quality     sql.NullString
	)
	if err := sc.Scan(&id, &summary, &quality); err != nil {
		return nil, err
	}
	w := &monitor.WindowSummary{}
	if err := decodeJSON("monitoring window "+id, summary, w); err != nil {
		return nil, err
	}
	w.ID = id
	if quality.Valid && quality.String != "" {
		w.Quality = &monitor.Quality{}
		if err := decodeJSON("quality of window "+id, quality.String, w.Quality); err != nil {
			return nil, err
		}
	}
	return w, nil
}

// loadProfiles sets the profiles of windows from monitor_window_profiles.
func loadProfiles(ctx context.Context, tx *Tx, ws []*monitor.WindowSummary) error {
	for _, w := range ws {
		var text string
		err := tx.QueryRow(ctx, `SELECT profiles FROM monitor_window_profiles WHERE id = ?`, w.ID).Scan(&text)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		} else if err != nil {
			return err
		}
		w.Profiles = &monitor.WindowProfiles{}
		if err := json.Unmarshal([]byte(text), w.Profiles); err != nil {
			return fmt.Errorf("decode profiles of window %s: %w", w.ID, err)
		}
	}
	return nil
}

// ListWindows implements monitor.Store.
func (s *MonitorStore) ListWindows(ctx context.Context, deployment string, f monitor.WindowFilter) ([]*monitor.WindowSummary, error) {
	q := `SELECT ` + monitorWindowColumns + ` FROM monitor_windows WHERE deployment = ?`
	args := []any{deployment}
	if !f.Since.IsZero() {
		q += ` AND end_ms > ?`
		args = append(args, f.Since.UnixMilli())
	}
	if !f.Until.IsZero() {
		q += ` AND start_ms < ?`
		args = append(args, f.Until.UnixMilli())
	}
	if f.ModelVersion != "" {
		q += ` AND model_version = ?`
		args = append(args, f.ModelVersion)
	}
	if f.Oldest {
		q += ` ORDER BY start_ms, id`
	} else {
		q += ` ORDER BY start_ms DESC, id DESC`
	}
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	out := []*monitor.WindowSummary{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		err := queryEach(ctx, tx, q, args, func(sc scanner) error {
			w, err := scanWindow(sc)
			if err != nil {
				return err
			}
			out = append(out, w)
			return nil
		})
		if err != nil || !f.WithProfiles {
			return err
		}
		return loadProfiles(ctx, tx, out)
	})
	if err != nil {
		return nil, fmt.Errorf("list windows of deployment %q: %w", deployment, err)
	}
	return out, nil
}

// GetWindow implements monitor.Store.
func (s *MonitorStore) GetWindow(ctx context.Context, id string) (*monitor.WindowSummary, error) {
	var w *monitor.WindowSummary
	err := s.db.Read(ctx, func(tx *Tx) (err error) {
		w, err = scanWindow(tx.QueryRow(ctx, `SELECT `+monitorWindowColumns+` FROM monitor_windows WHERE id = ?`, id))
		if err != nil {
			return err
		}
		return loadProfiles(ctx, tx, []*monitor.WindowSummary{w})
	})
	if errors.Is(err, sql.ErrNoRows) {
		return nil, windowNotFound(id)
	} else if err != nil {
		return nil, fmt.Errorf("get window %s: %w", id, err)
	}
	return w, nil
}
