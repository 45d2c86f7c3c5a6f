package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/mloop/mloop"
)

// AcquireLease takes or renews the lease name for owner until the given
// time, in one statement, and reports whether owner holds it now: it does
// when the lease is free, expired at now, already owner's, or held by
// takeOver (a holder the caller knows to be dead; "" for none).
func (s *PipelineStore) AcquireLease(ctx context.Context, name, owner string, until, now time.Time, takeOver string) (bool, error) {
	if name == "" || owner == "" {
		return false, mloop.Errorf(mloop.EINVALID, "acquire lease: empty name or owner")
	}
	var held bool
	err := s.db.Write(ctx, func(tx *Tx) error {
		res, err := tx.Exec(ctx, `INSERT INTO controller_leases (name, owner, expires_at, acquired_at) VALUES (?, ?, ?, ?)
			ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, expires_at = excluded.expires_at,
				acquired_at = CASE WHEN controller_leases.owner = excluded.owner
					THEN controller_leases.acquired_at ELSE excluded.acquired_at END
			WHERE controller_leases.owner = excluded.owner OR controller_leases.expires_at <= ?
				OR (? <> '' AND controller_leases.owner = ?)`,
			name, owner, until.UnixMilli(), now.UnixMilli(), now.UnixMilli(), takeOver, takeOver)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		held = n > 0
		return err
	})
	if err != nil {
		return false, fmt.Errorf("acquire lease %s: %w", name, err)
	}
	return held, nil
}

// Lease returns the holder of the lease name and when it expires;
// ENOTFOUND when nobody took it yet.
func (s *PipelineStore) Lease(ctx context.Context, name string) (string, time.Time, error) {
	var (
		owner string
		until int64
	)
	err := s.db.Read(ctx, func(tx *Tx) error {
		return tx.QueryRow(ctx, `SELECT owner, expires_at FROM controller_leases WHERE name = ?`, name).Scan(&owner, &until)
	})
	if errors.Is(err, sql.ErrNoRows) {
		return "", time.Time{}, mloop.Errorf(mloop.ENOTFOUND, "no lease %s", name)
	} else if err != nil {
		return "", time.Time{}, fmt.Errorf("get lease %s: %w", name, err)
	}
	return owner, time.UnixMilli(until).UTC(), nil
}

// ReleaseLease gives up the lease name when owner holds it.
func (s *PipelineStore) ReleaseLease(ctx context.Context, name, owner string) error {
	err := s.db.Write(ctx, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM controller_leases WHERE name = ? AND owner = ?`, name, owner)
		return err
	})
	if err != nil {
		return fmt.Errorf("release lease %s: %w", name, err)
	}
	return nil
}
