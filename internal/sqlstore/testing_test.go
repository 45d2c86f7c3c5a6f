package sqlstore_test

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mloop/mloop/internal/sqlstore"
)

// postgresURL is the PostgreSQL server the conformance suite runs against.
// The test script makes sure it runs; a missing server fails the tests
// rather than skipping them.
func postgresURL() string {
	if u := os.Getenv("MLOOP_TEST_POSTGRES"); u != "" {
		return u
	}
	return "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
}

// dialects lists the implementations every conformance test runs against.
var dialects = []string{sqlstore.SQLite, sqlstore.Postgres}

// forEachDialect runs fn as a subtest against a fresh, migrated database of
// each dialect: a new SQLite file, or a new PostgreSQL schema dropped after
// the test.
func forEachDialect(t *testing.T, fn func(t *testing.T, db *sqlstore.DB)) {
	t.Helper()
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			fn(t, MustOpenDB(t, d))
		})
	}
}

// MustOpenDB opens a fresh, migrated database of the given dialect that is
// closed (and on PostgreSQL dropped) when the test ends.
func MustOpenDB(tb testing.TB, dialect string) *sqlstore.DB {
	tb.Helper()
	dsn := MustDSN(tb, dialect)
	db, err := sqlstore.Open(context.Background(), dsn)
	if err != nil {
		tb.Fatalf("open %s: %v", dialect, err)
	}
	tb.Cleanup(func() { db.Close() })
	return db
}

// MustDSN returns the DSN of a fresh, empty database of the given dialect:
// a SQLite file in a temp folder, or a PostgreSQL schema of its own (selected
// through search_path) that is dropped when the test ends.
func MustDSN(tb testing.TB, dialect string) string {
	tb.Helper()
	if dialect == sqlstore.SQLite {
		return filepath.Join(tb.TempDir(), "mloop.db")
	}
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	schema := "t_" + hex.EncodeToString(b)
	admin, err := sql.Open("pgx", postgresURL())
	if err != nil {
		tb.Fatalf("open postgres: %v", err)
	}
	defer admin.Close()
	if _, err := admin.Exec("CREATE SCHEMA " + schema); err != nil {
		tb.Fatalf("postgres at %s is required for the conformance suite (the test script starts it): %v", postgresURL(), err)
	}
	tb.Cleanup(func() {
		admin, err := sql.Open("pgx", postgresURL())
		if err == nil {
			_, _ = admin.Exec("DROP SCHEMA " + schema + " CASCADE")
			admin.Close()
		}
	})
	sep := "?"
	if strings.Contains(postgresURL(), "?") {
		sep = "&"
	}
	return postgresURL() + sep + "search_path=" + schema
}

func TestOpenMigratesTwice(t *testing.T) {
	for _, d := range dialects {
		t.Run(d, func(t *testing.T) {
			dsn := MustDSN(t, d)
			ctx := context.Background()
			// Two servers starting at once on the same database.
			errs := make(chan error, 2)
			dbs := make(chan *sqlstore.DB, 2)
			for range 2 {
				go func() {
					db, err := sqlstore.Open(ctx, dsn)
					errs <- err
					dbs <- db
				}()
			}
			for range 2 {
				if err := <-errs; err != nil {
					t.Fatalf("concurrent open: %v", err)
				}
				if db := <-dbs; db != nil {
					db.Close()
				}
			}
			db, err := sqlstore.Open(ctx, dsn)
			if err != nil {
				t.Fatalf("reopen: %v", err)
			}
			defer db.Close()
		})
	}
}

// TestWritePanicRollsBack checks that a panic inside a write transaction
// rolls it back, so the (single, on SQLite) writer connection is free again.
func TestWritePanicRollsBack(t *testing.T) {
	forEachDialect(t, func(t *testing.T, db *sqlstore.DB) {
		ctx := context.Background()
		func() {
			defer func() {
				if recover() == nil {
					t.Fatalf("Write: got no panic, want the panic passed on")
				}
			}()
			_ = db.Write(ctx, func(tx *sqlstore.Tx) error {
				if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES (?, ?)", 9999, "panic"); err != nil {
					return err
				}
				panic("boom")
			})
		}()
		var n int
		err := db.Write(ctx, func(tx *sqlstore.Tx) error {
			return tx.QueryRow(ctx, "SELECT count(*) FROM schema_migrations WHERE version = ?", 9999).Scan(&n)
		})
		if err != nil || n != 0 {
			t.Fatalf("after a panicking write: got %d rows, err %v; want 0 rows and a usable writer", n, err)
		}
	})
}
