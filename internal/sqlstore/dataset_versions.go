package sqlstore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
)

// DatasetStore implements dataset.Store on SQLite or PostgreSQL. It is safe
// for concurrent use.
type DatasetStore struct {
	db *DB
}

var _ dataset.Store = (*DatasetStore)(nil)

// NewDatasetStore returns a dataset version store on db.
func NewDatasetStore(db *DB) *DatasetStore { return &DatasetStore{db: db} }

// createVersionAttempts bounds the retries of a version creation that lost a
// race on a unique constraint.
const createVersionAttempts = 5

// CreateVersion stores v as the next version of its dataset, or returns the
// version that already has v.Digest. The dataset's row is inserted if
// missing and then locked, so concurrent creates of one dataset queue: each
// sees the versions committed before it, takes the next number, or finds its
// digest already stored. A unique violation (which the lock leaves no room
// for, short of a bug) makes it start over.
func (s *DatasetStore) CreateVersion(ctx context.Context, v *dataset.Version) (*dataset.Version, bool, error) {
	for attempt := 1; ; attempt++ {
		out, created, err := s.createVersion(ctx, v)
		if err != nil && isUniqueViolation(err) && attempt < createVersionAttempts {
			continue
		}
		if err != nil {
			return nil, false, fmt.Errorf("create version of dataset %q: %w", v.Dataset, err)
		}
		return out, created, nil
	}
}

func (s *DatasetStore) createVersion(ctx context.Context, v *dataset.Version) (out *dataset.Version, created bool, err error) {
	tags, err := json.Marshal(nonNilTags(v.Tags))
	if err != nil {
		return nil, false, fmt.Errorf("encode tags: %w", err)
	}
	var profile any // NULL without a profile
	if v.Profile != nil {
		b, err := json.Marshal(v.Profile)
		if err != nil {
			return nil, false, mloop.Errorf(mloop.EINVALID, "The profile cannot be stored: %v.", err)
		}
		profile = string(b)
	}
	now := v.CreatedAt.UnixMilli()
	err = s.db.Write(ctx, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO versioned_datasets (name, latest_version, created_at, updated_at)
			VALUES (?, 0, ?, ?) ON CONFLICT (name) DO NOTHING`, v.Dataset, now, now); err != nil {
			return err
		}
		var latest int64
		if err := tx.QueryRow(ctx, `SELECT latest_version FROM versioned_datasets WHERE name = ?`+forUpdate(tx.Dialect()),
			v.Dataset).Scan(&latest); err != nil {
			return err
		}
		var existing int64
		err := tx.QueryRow(ctx, `SELECT version FROM dataset_versions WHERE dataset = ? AND digest = ?`, v.Dataset, v.Digest).Scan(&existing)
		if err == nil {
			out, err = getDatasetVersion(ctx, tx, v.Dataset, existing, true)
			return err
		} else if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		next := latest + 1
		if _, err := tx.Exec(ctx, `INSERT INTO dataset_versions (dataset, version, digest, row_count, byte_count,
			file_count, source, user_id, tags, profile, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.Dataset, next, v.Digest, v.Rows, v.Bytes, len(v.Files), v.Source, v.User, string(tags), profile, now); err != nil {
			return err
		}
		args := make([]any, 0, 8*len(v.Files))
		for _, f := range v.Files {
			args = append(args, v.Dataset, next, f.Path, f.SHA256, f.Size, string(f.Format), string(f.Compression), f.Rows)
		}
		if err := forChunks(len(v.Files), maxInsertRows, func(lo, hi int) error {
			_, err := tx.Exec(ctx, valuesStatement(`INSERT INTO dataset_version_files
				(dataset, version, path, sha256, size, format, compression, row_count)`, "", 8, hi-lo), args[lo*8:hi*8]...)
			return err
		}); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE versioned_datasets SET latest_version = ?, updated_at = ? WHERE name = ?`,
			next, now, v.Dataset); err != nil {
			return err
		}
		c := *v
		c.Version = next
		c.Files = append([]dataset.File(nil), v.Files...)
		out, created = &c, true
		return nil
	})
	if err != nil {
		return nil, false, err
	}
	return out, created, nil
}

// nonNilTags returns tags, or an empty map for nil, so that stored tags are
// always a JSON object.
func nonNilTags(tags map[string]string) map[string]string {
	if tags == nil {
		return map[string]string{}
	}
	return tags
}

// GetVersion returns a version with its files and, with withProfile, its profile.
func (s *DatasetStore) GetVersion(ctx context.Context, name string, number int64, withProfile bool) (*dataset.Version, error) {
	var v *dataset.Version
	err := s.db.Read(ctx, func(tx *Tx) (err error) {
		v, err = getDatasetVersion(ctx, tx, name, number, withProfile)
		return err
	})
	return v, err
}

// datasetVersionColumns are the columns scanDatasetVersion reads, in order.
const datasetVersionColumns = `dataset, version, digest, row_count, byte_count, source, user_id, tags, created_at`

// scanDatasetVersion reads a row of datasetVersionColumns (plus profile when withProfile).
func scanDatasetVersion(sc scanner, withProfile bool) (*dataset.Version, error) {
	var (
		v       dataset.Version
		tags    string
		created int64
		profile sql.NullString
	)
	dest := []any{&v.Dataset, &v.Version, &v.Digest, &v.Rows, &v.Bytes, &v.Source, &v.User, &tags, &created}
	if withProfile {
		dest = append(dest, &profile)
	}
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(tags), &v.Tags); err != nil {
		return nil, fmt.Errorf("decode tags of %s: %w", v.Ref(), err)
	}
	if len(v.Tags) == 0 {
		v.Tags = nil
	}
	if profile.Valid {
		v.Profile = new(dataset.Profile)
		if err := json.Unmarshal([]byte(profile.String), v.Profile); err != nil {
			return nil, fmt.Errorf("decode profile of %s: %w", v.Ref(), err)
		}
	}
	v.CreatedAt = time.UnixMilli(created).UTC()
	v.Files = []dataset.File{}
	return &v, nil
}

func getDatasetVersion(ctx context.Context, tx *Tx, name string, number int64, withProfile bool) (*dataset.Version, error) {
	q := `SELECT ` + datasetVersionColumns
	if withProfile {
		q += `, profile`
	}
	v, err := scanDatasetVersion(tx.QueryRow(ctx, q+` FROM dataset_versions WHERE dataset = ? AND version = ?`, name, number), withProfile)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "Dataset %q has no version %d.", name, number)
	} else if err != nil {
		return nil, fmt.Errorf("get %s@%d: %w", name, number, err)
	}
	if err := loadDatasetFiles(ctx, tx, name, number, number, map[int64]*dataset.Version{number: v}); err != nil {
		return nil, err
	}
	return v, nil
}

// loadDatasetFiles appends to the versions in byNumber, numbered lo to hi, their
// files in path order.
func loadDatasetFiles(ctx context.Context, tx *Tx, name string, lo, hi int64, byNumber map[int64]*dataset.Version) error {
	err := queryEach(ctx, tx, `SELECT version, path, sha256, size, format, compression, row_count
		FROM dataset_version_files WHERE dataset = ? AND version >= ? AND version <= ? ORDER BY version, path`,
		[]any{name, lo, hi}, func(sc scanner) error {
			var (
				n                   int64
				f                   dataset.File
				format, compression string
			)
			if err := sc.Scan(&n, &f.Path, &f.SHA256, &f.Size, &format, &compression, &f.Rows); err != nil {
				return err
			}
			f.Format, f.Compression = dataset.Format(format), dataset.Compression(compression)
			if v := byNumber[n]; v != nil {
				v.Files = append(v.Files, f)
			}
			return nil
		})
	if err != nil {
		return fmt.Errorf("files of dataset %q: %w", name, err)
	}
	return nil
}

// LatestVersion returns the newest version number of a dataset.
func (s *DatasetStore) LatestVersion(ctx context.Context, name string) (int64, error) {
	var n int64
	err := s.db.Read(ctx, func(tx *Tx) error {
		return tx.QueryRow(ctx, `SELECT latest_version FROM versioned_datasets WHERE name = ? AND latest_version > 0`, name).Scan(&n)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return 0, mloop.Errorf(mloop.ENOTFOUND, "Dataset %q does not exist.", name)
	} else if err != nil {
		return 0, fmt.Errorf("latest version of dataset %q: %w", name, err)
	}
	return n, nil
}

// FindDigestPrefix returns the versions whose digest starts with
// "sha256:"+hexPrefix. The prefix is matched as a bytewise range, which
// both dialects answer from the (dataset, digest) index.
func (s *DatasetStore) FindDigestPrefix(ctx context.Context, name, hexPrefix string, limit int) ([]dataset.DigestMatch, error) {
	if !isLowerHex(hexPrefix) {
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid digest prefix %q: want lower-case hex digits.", hexPrefix)
	}
	lo := "sha256:" + hexPrefix
	hi := lo + "g" // 'g' sorts after every hex digit
	out := []dataset.DigestMatch{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		return queryEach(ctx, tx, `SELECT version, digest FROM dataset_versions
			WHERE dataset = ? AND digest >= ? AND digest < ? ORDER BY version LIMIT ?`,
			[]any{name, lo, hi, limit}, func(sc scanner) error {
				var m dataset.DigestMatch
				if err := sc.Scan(&m.Version, &m.Digest); err != nil {
					return err
				}
				out = append(out, m)
				return nil
			})
	})
	if err != nil {
		return nil, fmt.Errorf("find digest prefix %s in dataset %q: %w", hexPrefix, name, err)
	}
	return out, nil
}

// isLowerHex reports whether s holds only lower-case hex digits.
func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// ListVersions returns versions numbered below before (all when 0), newest
// first, with their files and without profiles.
func (s *DatasetStore) ListVersions(ctx context.Context, name string, before int64, limit int) ([]*dataset.Version, error) {
	if before <= 0 {
		before = 1 << 62
	}
	out := []*dataset.Version{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		var latest int64
		err := tx.QueryRow(ctx, `SELECT latest_version FROM versioned_datasets WHERE name = ? AND latest_version > 0`, name).Scan(&latest)
		if errors.Is(err, sql.ErrNoRows) {
			return mloop.Errorf(mloop.ENOTFOUND, "Dataset %q does not exist.", name)
		} else if err != nil {
			return err
		}
		byNumber := map[int64]*dataset.Version{}
		err = queryEach(ctx, tx, `SELECT `+datasetVersionColumns+` FROM dataset_versions
			WHERE dataset = ? AND version < ? ORDER BY version DESC LIMIT ?`, []any{name, before, limit},
			func(sc scanner) error {
				v, err := scanDatasetVersion(sc, false)
				if err != nil {
					return err
				}
				out = append(out, v)
				byNumber[v.Version] = v
				return nil
			})
		if err != nil || len(out) == 0 {
			return err
		}
		return loadDatasetFiles(ctx, tx, name, out[len(out)-1].Version, out[0].Version, byNumber)
	})
	if err != nil {
		return nil, fmt.Errorf("list versions of dataset %q: %w", name, err)
	}
	return out, nil
}

// ListDatasets returns every dataset with a version, by name.
func (s *DatasetStore) ListDatasets(ctx context.Context) ([]dataset.Summary, error) {
	out := []dataset.Summary{}
	err := s.db.Read(ctx, func(tx *Tx) error {
		return queryEach(ctx, tx, `SELECT d.name, d.latest_version,
				(SELECT count(*) FROM dataset_versions c WHERE c.dataset = d.name),
				COALESCE(v.row_count, 0), d.created_at, d.updated_at
			FROM versioned_datasets d
			LEFT JOIN dataset_versions v ON v.dataset = d.name AND v.version = d.latest_version
			WHERE d.latest_version > 0
			ORDER BY d.name`, nil, func(sc scanner) error {
			var (
				sum              dataset.Summary
				created, updated int64
			)
			if err := sc.Scan(&sum.Name, &sum.LatestVersion, &sum.Versions, &sum.Rows, &created, &updated); err != nil {
				return err
			}
			sum.CreatedAt, sum.UpdatedAt = time.UnixMilli(created).UTC(), time.UnixMilli(updated).UTC()
			out = append(out, sum)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list datasets: %w", err)
	}
	return out, nil
}

// SetSchema stores a dataset's schema text.
func (s *DatasetStore) SetSchema(ctx context.Context, name, schema string, now time.Time) error {
	return s.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `UPDATE versioned_datasets SET schema_yaml = ?, schema_updated_at = ?
			WHERE name = ? AND latest_version > 0`, schema, now.UnixMilli(), name)
		if err != nil {
			return fmt.Errorf("set schema of dataset %q: %w", name, err)
		}
		n, err := rowsAffected(res, "set schema of dataset "+name)
		if err != nil {
			return err
		}
		if n == 0 {
			return mloop.Errorf(mloop.ENOTFOUND, "Dataset %q does not exist.", name)
		}
		return nil
	})
}

// GetSchema returns a dataset's schema text.
func (s *DatasetStore) GetSchema(ctx context.Context, name string) (string, error) {
	var schema sql.NullString
	err := s.db.Read(ctx, func(tx *Tx) error {
		return tx.QueryRow(ctx, `SELECT schema_yaml FROM versioned_datasets WHERE name = ? AND latest_version > 0`, name).Scan(&schema)
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return "", mloop.Errorf(mloop.ENOTFOUND, "Dataset %q does not exist.", name)
	case err != nil:
		return "", fmt.Errorf("get schema of dataset %q: %w", name, err)
	case !schema.Valid:
		return "", mloop.Errorf(mloop.ENOTFOUND, "Dataset %q has no schema: set one with PUT /api/v1/datasets/%s/schema (mloop data schema %s --set FILE).", name, name, name)
	}
	return schema.String, nil
}

// ReferencedBlobs returns which of hexes some version has as a file.
func (s *DatasetStore) ReferencedBlobs(ctx context.Context, hexes []string) (map[string]bool, error) {
	out := make(map[string]bool)
	err := s.db.Read(ctx, func(tx *Tx) error {
		return forChunks(len(hexes), inChunk, func(lo, hi int) error {
			return queryEach(ctx, tx, `SELECT DISTINCT sha256 FROM dataset_version_files WHERE sha256 IN (`+placeholders(hi-lo)+`)`,
				stringArgs(hexes[lo:hi]), func(sc scanner) error {
					var h string
					if err := sc.Scan(&h); err != nil {
						return err
					}
					out[h] = true
					return nil
				})
		})
	})
	if err != nil {
		return nil, fmt.Errorf("referenced blobs: %w", err)
	}
	return out, nil
}
