package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/tracking"
)

// stageDeleted marks a deleted model version. MLflow keeps the row of a
// deleted version under this stage so that its number is never given again.
const stageDeleted = "Deleted_Internal"

// RegistryStore implements registry.Store on a DB. Every method runs in one
// transaction.
type RegistryStore struct {
	db *DB
}

var _ registry.Store = (*RegistryStore)(nil)

// NewRegistryStore returns a registry store on db.
func NewRegistryStore(db *DB) *RegistryStore { return &RegistryStore{db: db} }

func modelNotFound(name string) error {
	return mloop.Errorf(mloop.ENOTFOUND, "Registered Model with name=%s not found", name)
}

func versionNotFound(name string, version int64) error {
	return mloop.Errorf(mloop.ENOTFOUND, "Model Version (name=%s, version=%d) not found", name, version)
}

func modelExists(name string) error {
	return mloop.Errorf(mloop.EEXISTS, "Registered Model (name=%s) already exists.", name)
}

// CreateRegisteredModel inserts m with its tags (the last value of a repeated
// key wins) and leaves m as GetRegisteredModel would return it: tags in key
// order, no versions, no aliases. A model with the same name is EEXISTS.
func (s *RegistryStore) CreateRegisteredModel(ctx context.Context, m *registry.RegisteredModel) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `INSERT INTO registered_models (name, creation_time, last_updated_time, description, user_id)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT (name) DO NOTHING`,
			m.Name, m.CreationTimestamp, m.LastUpdatedTimestamp, m.Description, m.UserID)
		if err != nil {
			return fmt.Errorf("create registered model %q: %w", m.Name, err)
		}
		if n, err := res.RowsAffected(); err != nil {
			return fmt.Errorf("create registered model %q: %w", m.Name, err)
		} else if n == 0 {
			return modelExists(m.Name)
		}
		m.Tags, m.LatestVersions, m.Aliases = dedupeTags(m.Tags), nil, nil
		for _, t := range m.Tags {
			if err := upsertModelTag(ctx, tx, m.Name, t); err != nil {
				return err
			}
		}
		return nil
	})
}

// GetRegisteredModel returns the model with its tags, aliases and the latest
// version of each stage.
func (s *RegistryStore) GetRegisteredModel(ctx context.Context, name string) (*registry.RegisteredModel, error) {
	var m *registry.RegisteredModel
	err := s.db.Read(ctx, func(tx *Tx) (err error) {
		m, err = getModel(ctx, tx, name)
		return err
	})
	return m, err
}

// RenameRegisteredModel renames the model; the foreign keys carry the new
// name to its versions, tags and aliases. The versions' last-updated time
// changes too, as in MLflow.
func (s *RegistryStore) RenameRegisteredModel(ctx context.Context, name, newName string, now int64) (*registry.RegisteredModel, error) {
	var m *registry.RegisteredModel
	err := s.db.Write(ctx, func(tx *Tx) error {
		if err := lockModel(ctx, tx, name, now); err != nil {
			return err
		}
		if newName != name {
			var n int
			if err := tx.QueryRow(ctx, `SELECT count(*) FROM registered_models WHERE name = ?`, newName).Scan(&n); err != nil {
				return fmt.Errorf("rename registered model %q: %w", name, err)
			}
			if n > 0 {
				return modelExists(newName)
			}
		}
		if _, err := tx.Exec(ctx, `UPDATE registered_models SET name = ? WHERE name = ?`, newName, name); err != nil {
			if isUniqueViolation(err) {
				return modelExists(newName)
			}
			return fmt.Errorf("rename registered model %q: %w", name, err)
		}
		if _, err := tx.Exec(ctx, `UPDATE model_versions SET last_updated_time = ? WHERE name = ?`, now, newName); err != nil {
			return fmt.Errorf("rename registered model %q: %w", name, err)
		}
		var err error
		m, err = getModel(ctx, tx, newName)
		return err
	})
	return m, err
}

// UpdateRegisteredModel sets the model's description.
func (s *RegistryStore) UpdateRegisteredModel(ctx context.Context, name, description string, now int64) (*registry.RegisteredModel, error) {
	var m *registry.RegisteredModel
	err := s.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `UPDATE registered_models SET description = ?, last_updated_time = ? WHERE name = ?`, description, now, name)
		if err := mustAffect(res, err, modelNotFound(name)); err != nil {
			return fmt.Errorf("update registered model: %w", err)
		}
		m, err = getModel(ctx, tx, name)
		return err
	})
	return m, err
}

// DeleteRegisteredModel deletes the model; the foreign keys delete its
// versions, tags and aliases.
func (s *RegistryStore) DeleteRegisteredModel(ctx context.Context, name string) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `DELETE FROM registered_models WHERE name = ?`, name)
		if err := mustAffect(res, err, modelNotFound(name)); err != nil {
			return fmt.Errorf("delete registered model: %w", err)
		}
		return nil
	})
}

// SearchRegisteredModels returns up to q.MaxResults models matching q.Filter
// (attribute name; tags), skipping q.Offset, ordered by q.OrderBy (name,
// last_updated_timestamp) with name ascending as the final tiebreak.
func (s *RegistryStore) SearchRegisteredModels(ctx context.Context, q registry.Query) ([]*registry.RegisteredModel, error) {
	query, args, err := modelSearch.selectSQL(s.db.Dialect, modelColumns, q, q.OrderBy)
	if err != nil {
		return nil, err
	}
	var ms []*registry.RegisteredModel
	err = s.db.Read(ctx, func(tx *Tx) error {
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("search registered models: %w", err)
		}
		ms, err = scanModels(rows)
		if err != nil {
			return fmt.Errorf("search registered models: %w", err)
		}
		return fillModels(ctx, tx, ms)
	})
	return ms, err
}

// SetRegisteredModelTag sets (or replaces) a tag of the model.
func (s *RegistryStore) SetRegisteredModelTag(ctx context.Context, name string, tag registry.Tag) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if err := checkModel(ctx, tx, name); err != nil {
			return err
		}
		return upsertModelTag(ctx, tx, name, tag)
	})
}

// DeleteRegisteredModelTag deletes a tag of the model; a missing tag is not an error.
func (s *RegistryStore) DeleteRegisteredModelTag(ctx context.Context, name, key string) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if err := checkModel(ctx, tx, name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM registered_model_tags WHERE name = ? AND key = ?`, name, key); err != nil {
			return fmt.Errorf("delete tag %q of registered model %q: %w", key, name, err)
		}
		return nil
	})
}

// SetAlias points alias at version, moving it if it named another version.
func (s *RegistryStore) SetAlias(ctx context.Context, name, alias string, version int64) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if err := checkVersion(ctx, tx, name, version); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO registered_model_aliases (name, alias, version) VALUES (?, ?, ?)
			ON CONFLICT (name, alias) DO UPDATE SET version = excluded.version`, name, alias, version); err != nil {
			return fmt.Errorf("set alias %q of registered model %q: %w", alias, name, err)
		}
		return nil
	})
}

// DeleteAlias deletes an alias of the model; a missing alias is not an error.
func (s *RegistryStore) DeleteAlias(ctx context.Context, name, alias string) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if err := checkModel(ctx, tx, name); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM registered_model_aliases WHERE name = ? AND alias = ?`, name, alias); err != nil {
			return fmt.Errorf("delete alias %q of registered model %q: %w", alias, name, err)
		}
		return nil
	})
}

// GetLatestVersions returns, for each stage in stages (every stage when
// empty), the version with the highest number, ordered by version.
func (s *RegistryStore) GetLatestVersions(ctx context.Context, name string, stages []string) ([]*registry.ModelVersion, error) {
	var out []*registry.ModelVersion
	err := s.db.Read(ctx, func(tx *Tx) error {
		if err := checkModel(ctx, tx, name); err != nil {
			return err
		}
		latest, err := latestVersions(ctx, tx, []string{name})
		if err != nil {
			return err
		}
		for _, v := range latest[name] {
			if len(stages) == 0 || slices.Contains(stages, v.CurrentStage) {
				out = append(out, v)
			}
		}
		return nil
	})
	return out, err
}

// CreateModelVersion gives v the next number of its model and inserts it with
// its tags. The number is one more than the highest number the model ever
// had, deleted versions included; the model's row is locked first, so
// concurrent creates queue and never share a number. The model's last-updated
// time becomes v.CreationTimestamp.
func (s *RegistryStore) CreateModelVersion(ctx context.Context, v *registry.ModelVersion) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if err := lockModel(ctx, tx, v.Name, v.CreationTimestamp); err != nil {
			return err
		}
		var next int64
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) + 1 FROM model_versions WHERE name = ?`, v.Name).Scan(&next); err != nil {
			return fmt.Errorf("create model version of %q: %w", v.Name, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO model_versions (name, version, creation_time, last_updated_time, description,
			user_id, current_stage, source, run_id, run_link, status, status_message, storage_location, model_id)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.Name, next, v.CreationTimestamp, v.LastUpdatedTimestamp, v.Description, v.UserID, v.CurrentStage,
			v.Source, v.RunID, v.RunLink, v.Status, v.StatusMessage, v.StorageLocation, v.ModelID); err != nil {
			return fmt.Errorf("create model version %d of %q: %w", next, v.Name, err)
		}
		v.Version = next
		v.Tags = dedupeTags(v.Tags)
		for _, t := range v.Tags {
			if err := upsertVersionTag(ctx, tx, v.Name, next, t); err != nil {
				return err
			}
		}
		v.Aliases = nil
		return nil
	})
}

// GetModelVersion returns a version with its tags and aliases.
func (s *RegistryStore) GetModelVersion(ctx context.Context, name string, version int64) (*registry.ModelVersion, error) {
	var v *registry.ModelVersion
	err := s.db.Read(ctx, func(tx *Tx) (err error) {
		v, err = getVersion(ctx, tx, name, version)
		return err
	})
	return v, err
}

// GetModelVersionByAlias returns the version alias names (ENOTFOUND when the
// model has no such alias).
func (s *RegistryStore) GetModelVersionByAlias(ctx context.Context, name, alias string) (*registry.ModelVersion, error) {
	var v *registry.ModelVersion
	err := s.db.Read(ctx, func(tx *Tx) error {
		var version int64
		err := tx.QueryRow(ctx, `SELECT version FROM registered_model_aliases WHERE name = ? AND alias = ?`, name, alias).Scan(&version)
		if errors.Is(err, sql.ErrNoRows) {
			return mloop.Errorf(mloop.ENOTFOUND, "Registered model alias %s not found.", alias)
		} else if err != nil {
			return fmt.Errorf("get alias %q of registered model %q: %w", alias, name, err)
		}
		v, err = getVersion(ctx, tx, name, version)
		return err
	})
	return v, err
}

// UpdateModelVersion changes the description and/or the stage of a version.
// A stage change with u.ArchiveExisting moves the model's other versions in
// that stage to Archived, and updates the model's last-updated time.
func (s *RegistryStore) UpdateModelVersion(ctx context.Context, name string, version int64, u registry.VersionUpdate, now int64) (*registry.ModelVersion, error) {
	var v *registry.ModelVersion
	err := s.db.Write(ctx, func(tx *Tx) error {
		if err := checkVersion(ctx, tx, name, version); err != nil {
			return err
		}
		if u.Description != nil {
			if _, err := tx.Exec(ctx, `UPDATE model_versions SET description = ?, last_updated_time = ? WHERE name = ? AND version = ?`,
				*u.Description, now, name, version); err != nil {
				return fmt.Errorf("update model version %d of %q: %w", version, name, err)
			}
		}
		if u.Stage != nil {
			if u.ArchiveExisting {
				if _, err := tx.Exec(ctx, `UPDATE model_versions SET current_stage = ?, last_updated_time = ?
					WHERE name = ? AND version <> ? AND current_stage = ?`,
					registry.StageArchived, now, name, version, *u.Stage); err != nil {
					return fmt.Errorf("archive versions of %q in stage %s: %w", name, *u.Stage, err)
				}
			}
			if _, err := tx.Exec(ctx, `UPDATE model_versions SET current_stage = ?, last_updated_time = ? WHERE name = ? AND version = ?`,
				*u.Stage, now, name, version); err != nil {
				return fmt.Errorf("transition model version %d of %q: %w", version, name, err)
			}
			if _, err := tx.Exec(ctx, `UPDATE registered_models SET last_updated_time = ? WHERE name = ?`, now, name); err != nil {
				return fmt.Errorf("transition model version %d of %q: %w", version, name, err)
			}
		}
		var err error
		v, err = getVersion(ctx, tx, name, version)
		return err
	})
	return v, err
}

// DeleteModelVersion deletes a version's tags and aliases and marks its row
// deleted, clearing what it recorded, so its number is never reused.
func (s *RegistryStore) DeleteModelVersion(ctx context.Context, name string, version int64, now int64) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if err := checkVersion(ctx, tx, name, version); err != nil {
			return err
		}
		stmts := []struct {
			q    string
			args []any
		}{
			{`DELETE FROM registered_model_aliases WHERE name = ? AND version = ?`, []any{name, version}},
			{`DELETE FROM model_version_tags WHERE name = ? AND version = ?`, []any{name, version}},
			{`UPDATE model_versions SET current_stage = ?, last_updated_time = ?, description = NULL, user_id = NULL,
				source = NULL, run_id = NULL, run_link = NULL, status_message = NULL, storage_location = NULL, model_id = NULL
				WHERE name = ? AND version = ?`, []any{stageDeleted, now, name, version}},
			{`UPDATE registered_models SET last_updated_time = ? WHERE name = ?`, []any{now, name}},
		}
		for _, st := range stmts {
			if _, err := tx.Exec(ctx, st.q, st.args...); err != nil {
				return fmt.Errorf("delete model version %d of %q: %w", version, name, err)
			}
		}
		return nil
	})
}

// SearchModelVersions returns up to q.MaxResults live versions matching
// q.Filter (attributes name, version_number, run_id, source_path; tags),
// skipping q.Offset. Without q.OrderBy they are ordered as MLflow does by
// last_updated_timestamp DESC, name ASC, version_number DESC; otherwise by
// q.OrderBy, then name ascending and version descending.
func (s *RegistryStore) SearchModelVersions(ctx context.Context, q registry.Query) ([]*registry.ModelVersion, error) {
	orderBy := q.OrderBy
	if len(orderBy) == 0 {
		orderBy = []tracking.OrderBy{{Key: "last_updated_timestamp"}}
	}
	query, args, err := versionSearch.selectSQL(s.db.Dialect, versionColumns, q, orderBy)
	if err != nil {
		return nil, err
	}
	var vs []*registry.ModelVersion
	err = s.db.Read(ctx, func(tx *Tx) error {
		rows, err := tx.Query(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("search model versions: %w", err)
		}
		if vs, err = scanVersions(rows); err != nil {
			return fmt.Errorf("search model versions: %w", err)
		}
		return fillVersions(ctx, tx, vs)
	})
	return vs, err
}

// SetModelVersionTag sets (or replaces) a tag of a version.
func (s *RegistryStore) SetModelVersionTag(ctx context.Context, name string, version int64, tag registry.Tag) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if err := checkVersion(ctx, tx, name, version); err != nil {
			return err
		}
		return upsertVersionTag(ctx, tx, name, version, tag)
	})
}

// DeleteModelVersionTag deletes a tag of a version; a missing tag is not an error.
func (s *RegistryStore) DeleteModelVersionTag(ctx context.Context, name string, version int64, key string) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		if err := checkVersion(ctx, tx, name, version); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM model_version_tags WHERE name = ? AND version = ? AND key = ?`, name, version, key); err != nil {
			return fmt.Errorf("delete tag %q of model version %d of %q: %w", key, version, name, err)
		}
		return nil
	})
}

// mustAffect turns a statement that changed no row into notFound.
func mustAffect(res sql.Result, err error, notFound error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return notFound
	}
	return nil
}

// lockModel sets the model's last-updated time, which also locks its row
// until the transaction ends (ENOTFOUND when there is no such model).
func lockModel(ctx context.Context, tx *Tx, name string, now int64) error {
	res, err := tx.Exec(ctx, `UPDATE registered_models SET last_updated_time = ? WHERE name = ?`, now, name)
	if err := mustAffect(res, err, modelNotFound(name)); err != nil {
		return fmt.Errorf("registered model %q: %w", name, err)
	}
	return nil
}

// checkModel returns ENOTFOUND unless the model exists.
func checkModel(ctx context.Context, tx *Tx, name string) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM registered_models WHERE name = ?`, name).Scan(&n); err != nil {
		return fmt.Errorf("registered model %q: %w", name, err)
	}
	if n == 0 {
		return modelNotFound(name)
	}
	return nil
}

// checkVersion returns ENOTFOUND unless the version exists and is not deleted.
func checkVersion(ctx context.Context, tx *Tx, name string, version int64) error {
	var n int
	if err := tx.QueryRow(ctx, `SELECT count(*) FROM model_versions WHERE name = ? AND version = ? AND current_stage <> ?`,
		name, version, stageDeleted).Scan(&n); err != nil {
		return fmt.Errorf("model version %d of %q: %w", version, name, err)
	}
	if n == 0 {
		return versionNotFound(name, version)
	}
	return nil
}

func upsertModelTag(ctx context.Context, tx *Tx, name string, t registry.Tag) error {
	if _, err := tx.Exec(ctx, `INSERT INTO registered_model_tags (name, key, value) VALUES (?, ?, ?)
		ON CONFLICT (name, key) DO UPDATE SET value = excluded.value`, name, t.Key, t.Value); err != nil {
		return fmt.Errorf("set tag %q of registered model %q: %w", t.Key, name, err)
	}
	return nil
}

func upsertVersionTag(ctx context.Context, tx *Tx, name string, version int64, t registry.Tag) error {
	if _, err := tx.Exec(ctx, `INSERT INTO model_version_tags (name, version, key, value) VALUES (?, ?, ?, ?)
		ON CONFLICT (name, version, key) DO UPDATE SET value = excluded.value`, name, version, t.Key, t.Value); err != nil {
		return fmt.Errorf("set tag %q of model version %d of %q: %w", t.Key, version, name, err)
	}
	return nil
}

const modelColumns = `rm.name, rm.creation_time, rm.last_updated_time, COALESCE(rm.description, ''), COALESCE(rm.user_id, '')`

const versionColumns = `mv.name, mv.version, mv.creation_time, mv.last_updated_time, COALESCE(mv.description, ''),
	COALESCE(mv.user_id, ''), mv.current_stage, COALESCE(mv.source, ''), COALESCE(mv.run_id, ''), COALESCE(mv.run_link, ''),
	mv.status, COALESCE(mv.status_message, ''), COALESCE(mv.storage_location, ''), COALESCE(mv.model_id, '')`

func scanModels(rows *sql.Rows) ([]*registry.RegisteredModel, error) {
	defer rows.Close()
	var ms []*registry.RegisteredModel
	for rows.Next() {
		m := &registry.RegisteredModel{}
		if err := rows.Scan(&m.Name, &m.CreationTimestamp, &m.LastUpdatedTimestamp, &m.Description, &m.UserID); err != nil {
			return nil, err
		}
		ms = append(ms, m)
	}
	return ms, rows.Err()
}

func scanVersions(rows *sql.Rows) ([]*registry.ModelVersion, error) {
	defer rows.Close()
	var vs []*registry.ModelVersion
	for rows.Next() {
		v := &registry.ModelVersion{}
		if err := rows.Scan(&v.Name, &v.Version, &v.CreationTimestamp, &v.LastUpdatedTimestamp, &v.Description,
			&v.UserID, &v.CurrentStage, &v.Source, &v.RunID, &v.RunLink,
			&v.Status, &v.StatusMessage, &v.StorageLocation, &v.ModelID); err != nil {
			return nil, err
		}
		vs = append(vs, v)
	}
	return vs, rows.Err()
}

// getModel reads one model with everything GetRegisteredModel returns.
func getModel(ctx context.Context, tx *Tx, name string) (*registry.RegisteredModel, error) {
	rows, err := tx.Query(ctx, `SELECT `+modelColumns+` FROM registered_models rm WHERE rm.name = ?`, name)
	if err != nil {
		return nil, fmt.Errorf("get registered model %q: %w", name, err)
	}
	ms, err := scanModels(rows)
	if err != nil {
		return nil, fmt.Errorf("get registered model %q: %w", name, err)
	}
	if len(ms) == 0 {
		return nil, modelNotFound(name)
	}
	if err := fillModels(ctx, tx, ms); err != nil {
		return nil, err
	}
	return ms[0], nil
}

// getVersion reads one live version with its tags and aliases.
func getVersion(ctx context.Context, tx *Tx, name string, version int64) (*registry.ModelVersion, error) {
	rows, err := tx.Query(ctx, `SELECT `+versionColumns+` FROM model_versions mv WHERE mv.name = ? AND mv.version = ? AND mv.current_stage <> ?`,
		name, version, stageDeleted)
	if err != nil {
		return nil, fmt.Errorf("get model version %d of %q: %w", version, name, err)
	}
	vs, err := scanVersions(rows)
	if err != nil {
		return nil, fmt.Errorf("get model version %d of %q: %w", version, name, err)
	}
	if len(vs) == 0 {
		return nil, versionNotFound(name, version)
	}
	if err := fillVersions(ctx, tx, vs); err != nil {
		return nil, err
	}
	return vs[0], nil
}

// inBatches calls fn with consecutive slices of at most inChunk items, the
// bound on the items of one IN list (see forChunks).
func inBatches[T any](items []T, fn func(batch []T) error) error {
	return forChunks(len(items), inChunk, func(lo, hi int) error {
		return fn(items[lo:hi])
	})
}

// fillModels loads the tags, aliases and latest versions of ms.
func fillModels(ctx context.Context, tx *Tx, ms []*registry.RegisteredModel) error {
	if len(ms) == 0 {
		return nil
	}
	byName := make(map[string]*registry.RegisteredModel, len(ms))
	names := make([]string, len(ms))
	for i, m := range ms {
		byName[m.Name], names[i] = m, m.Name
	}
	err := inBatches(names, func(batch []string) error {
		args := stringArgs(batch)
		in := placeholders(len(batch))
		err := queryPairs(ctx, tx, `SELECT name, key, COALESCE(value, '') FROM registered_model_tags WHERE name IN (`+in+`) ORDER BY name, key`, args,
			func(name, key, value string) {
				byName[name].Tags = append(byName[name].Tags, registry.Tag{Key: key, Value: value})
			})
		if err != nil {
			return err
		}
		return queryEach(ctx, tx, `SELECT name, alias, version FROM registered_model_aliases WHERE name IN (`+in+`) ORDER BY name, alias`, args,
			func(sc scanner) error {
				var name string
				var a registry.Alias
				if err := sc.Scan(&name, &a.Alias, &a.Version); err != nil {
					return err
				}
				byName[name].Aliases = append(byName[name].Aliases, a)
				return nil
			})
	})
	if err != nil {
		return fmt.Errorf("load registered model tags and aliases: %w", err)
	}
	latest, err := latestVersions(ctx, tx, names)
	if err != nil {
		return err
	}
	for name, vs := range latest {
		byName[name].LatestVersions = vs
	}
	return nil
}

// latestVersions returns, per model name, the live version with the highest
// number in each stage, ordered by version, with tags and aliases.
func latestVersions(ctx context.Context, tx *Tx, names []string) (map[string][]*registry.ModelVersion, error) {
	var all []*registry.ModelVersion
	err := inBatches(names, func(batch []string) error {
		args := make([]any, 0, len(batch)+1)
		args = append(args, stageDeleted)
		for _, n := range batch {
			args = append(args, n)
		}
		rows, err := tx.Query(ctx, `SELECT `+versionColumns+` FROM model_versions mv
			WHERE mv.current_stage <> ? AND mv.name IN (`+placeholders(len(batch))+`)
			AND mv.version = (SELECT MAX(m2.version) FROM model_versions m2 WHERE m2.name = mv.name AND m2.current_stage = mv.current_stage)
			ORDER BY mv.name, mv.version`, args...)
		if err != nil {
			return err
		}
		vs, err := scanVersions(rows)
		all = append(all, vs...)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("load latest versions: %w", err)
	}
	if err := fillVersions(ctx, tx, all); err != nil {
		return nil, err
	}
	out := make(map[string][]*registry.ModelVersion)
	for _, v := range all {
		out[v.Name] = append(out[v.Name], v)
	}
	return out, nil
}

// fillVersions loads the tags and aliases of vs.
func fillVersions(ctx context.Context, tx *Tx, vs []*registry.ModelVersion) error {
	type key struct {
		name    string
		version int64
	}
	byKey := make(map[key]*registry.ModelVersion, len(vs))
	for _, v := range vs {
		byKey[key{v.Name, v.Version}] = v
	}
	err := inBatches(vs, func(batch []*registry.ModelVersion) error {
		args := make([]any, 0, 2*len(batch))
		for _, v := range batch {
			args = append(args, v.Name, v.Version)
		}
		// SQLite wants a subquery on the right of a row-value IN; the casts
		// give PostgreSQL the types of the VALUES columns.
		in := "VALUES " + strings.TrimSuffix(strings.Repeat("(CAST(? AS TEXT), CAST(? AS BIGINT)), ", len(batch)), ", ")
		err := queryEach(ctx, tx, `SELECT name, version, key, COALESCE(value, '') FROM model_version_tags
			WHERE (name, version) IN (`+in+`) ORDER BY name, version, key`, args, func(sc scanner) error {
			var k key
			var t registry.Tag
			if err := sc.Scan(&k.name, &k.version, &t.Key, &t.Value); err != nil {
				return err
			}
			byKey[k].Tags = append(byKey[k].Tags, t)
			return nil
		})
		if err != nil {
			return err
		}
		return queryEach(ctx, tx, `SELECT name, version, alias FROM registered_model_aliases
			WHERE (name, version) IN (`+in+`) ORDER BY name, version, alias`, args, func(sc scanner) error {
			var k key
			var alias string
			if err := sc.Scan(&k.name, &k.version, &alias); err != nil {
				return err
			}
			byKey[k].Aliases = append(byKey[k].Aliases, alias)
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("load model version tags and aliases: %w", err)
	}
	return nil
}

// registrySearch describes what a registry search may filter and order on,
// for the filter→SQL builder of search.go.
type registrySearch struct {
	table    string                  // the searched table
	alias    string                  // its alias in the statement
	owner    string                  // the key of a searched row, as tags refer to it
	tags     keyValueTable           // the table of the rows' tags
	columns  map[string]searchColumn // filterable attribute → column
	ops      map[string][]string     // attribute → the comparators MLflow allows on it
	order    map[string]searchColumn // order_by key → column
	live     string                  // a condition every row meets, or ""
	tiebreak []tracking.OrderBy      // final order terms, skipped when already ordered on
}

// stringOps are the comparators MLflow's registry allows on strings and tags.
var stringOps = []string{tracking.OpEq, tracking.OpNe, tracking.OpLike, tracking.OpILike}

var modelSearch = registrySearch{
	table:   "registered_models",
	alias:   "rm",
	owner:   "rm.name",
	tags:    keyValueTable{Table: "registered_model_tags", Owner: "name", Key: "key", Value: "value"},
	columns: map[string]searchColumn{"name": {Expr: "rm.name"}},
	ops:     map[string][]string{"name": stringOps},
	order: map[string]searchColumn{
		"name":                   {Expr: "rm.name"},
		"timestamp":              {Expr: "rm.last_updated_time", Numeric: true},
		"last_updated_timestamp": {Expr: "rm.last_updated_time", Numeric: true},
	},
	tiebreak: []tracking.OrderBy{{Key: "name", Asc: true}},
}

var versionSearch = registrySearch{
	table: "model_versions",
	alias: "mv",
	owner: "(mv.name, mv.version)",
	tags:  keyValueTable{Table: "model_version_tags", Owner: "name, version", Key: "key", Value: "value"},
	columns: map[string]searchColumn{
		"name":           {Expr: "mv.name"},
		"run_id":         {Expr: "mv.run_id"},
		"source_path":    {Expr: "mv.source"},
		"version_number": {Expr: "mv.version", Numeric: true},
	},
	ops: map[string][]string{
		"name":           stringOps,
		"run_id":         append([]string{tracking.OpIn}, stringOps...),
		"source_path":    stringOps,
		"version_number": {tracking.OpEq, tracking.OpNe, tracking.OpLt, tracking.OpLe, tracking.OpGt, tracking.OpGe},
	},
	order: map[string]searchColumn{
		"name":                   {Expr: "mv.name"},
		"version_number":         {Expr: "mv.version", Numeric: true},
		"creation_timestamp":     {Expr: "mv.creation_time", Numeric: true},
		"last_updated_timestamp": {Expr: "mv.last_updated_time", Numeric: true},
	},
	live:     "mv.current_stage <> '" + stageDeleted + "'",
	tiebreak: []tracking.OrderBy{{Key: "name", Asc: true}, {Key: "version_number"}},
}

// whereTag adds to b the condition that a searched row has the tag key with a
// value satisfying op and value. It is a subquery on the owner's key rather
// than selectBuilder.WhereKeyValue's join because a model version's key has
// two columns, (name, version), which that join cannot match on.
func (rs registrySearch) whereTag(b *selectBuilder, key, op string, value any) error {
	cond, args, err := compareSQL(b.dialect, rs.tags.Value, false, op, value, "tag '"+key+"'")
	if err != nil {
		return err
	}
	b.Where(fmt.Sprintf("%s IN (SELECT %s FROM %s WHERE %s = ? AND %s)", rs.owner, rs.tags.Owner, rs.tags.Table, rs.tags.Key, cond),
		append([]any{key}, args...)...)
	return nil
}

// selectSQL builds the statement of a registry search: q's filter (attribute
// comparisons on columns; a tag comparison requires the tag, as MLflow's
// store does), the prompt exclusion, and the order with its tiebreaks.
func (rs registrySearch) selectSQL(dialect, columns string, q registry.Query, orderBy []tracking.OrderBy) (string, []any, error) {
	b := newSelect(dialect, columns, rs.table+" "+rs.alias)
	if rs.live != "" {
		b.Where(rs.live)
	}
	for _, c := range q.Filter {
		switch c.Entity {
		case tracking.EntityAttribute:
			col, ok := rs.columns[c.Key]
			if !ok {
				return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid attribute name: %s", c.Key)
			}
			if !slices.Contains(rs.ops[c.Key], c.Op) {
				return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid comparator for attribute %s: %s", c.Key, c.Op)
			}
			if err := b.WhereColumn(col, c.Op, c.Value, "attribute '"+c.Key+"'"); err != nil {
				return "", nil, err
			}
		case tracking.EntityTag:
			if !slices.Contains(stringOps, c.Op) {
				return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid comparator for tag: %s", c.Op)
			}
			if err := rs.whereTag(b, c.Key, c.Op, c.Value); err != nil {
				return "", nil, err
			}
		default:
			return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid token type: %s", c.Entity)
		}
	}
	if q.ExcludePrompts {
		// As MLflow, a model (or all versions of a model) tagged as a prompt is left out.
		b.Where(rs.alias+".name NOT IN (SELECT name FROM "+rs.tags.Table+" WHERE key = ? AND value = ?)",
			registry.PromptTagKey, "true")
	}
	seen := map[string]bool{}
	for _, ob := range orderBy {
		col, ok := rs.order[ob.Key]
		if !ok || (ob.Entity != "" && ob.Entity != tracking.EntityAttribute) {
			return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid order by key '%s' specified.", ob.Key)
		}
		if seen[col.Expr] {
			return "", nil, mloop.Errorf(mloop.EINVALID, "`order_by` contains duplicate fields: %s", ob.Key)
		}
		seen[col.Expr] = true
		b.OrderPlain(col, ob.Asc)
	}
	for _, ob := range rs.tiebreak {
		if col := rs.order[ob.Key]; !seen[col.Expr] {
			b.OrderPlain(col, ob.Asc)
		}
	}
	b.Limit, b.Offset = q.MaxResults, q.Offset
	query, args := b.SQL()
	return query, args, nil
}
