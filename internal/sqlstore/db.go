// Package sqlstore implements the domain Store interfaces (tracking.Store,
// registry.Store) on SQLite, through modernc.org/sqlite, and on PostgreSQL,
// through pgx. Queries are raw SQL written with '?' placeholders and rebound
// per dialect; migrations are numbered .sql files embedded per dialect and
// applied in order at Open, each in its own transaction, safely when several
// servers start at once.
//
// SQLite is opened in WAL mode with one writer connection and a pool of
// readers, a busy timeout and foreign keys on, so concurrent writers queue in
// Go instead of failing with "database is locked".
package sqlstore

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Dialects.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

//go:embed migrations
var migrationsFS embed.FS

// DB is a metadata database. Create it with NewDB, adjust its exported
// fields, then Open it; or call Open(ctx, dsn) for the defaults. Close it with Close.
type DB struct {
	// DSN is a SQLite file path (a "file:" prefix is allowed) or a
	// postgres:// URL.
	DSN string
	// Dialect is SQLite or Postgres, set from DSN by NewDB.
	Dialect string
	// Logger receives migration messages; it defaults to slog.Default().
	Logger *slog.Logger

	w *sql.DB // writes: one connection on SQLite
	r *sql.DB // reads: a pool (the same *sql.DB as w on PostgreSQL)
}

// NewDB returns an unopened DB for dsn. A dsn that starts with postgres:// or
// postgresql:// selects PostgreSQL; anything else is a SQLite file path.
func NewDB(dsn string) *DB {
	db := &DB{DSN: dsn, Dialect: SQLite, Logger: slog.Default()}
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		db.Dialect = Postgres
	}
	return db
}

// Open opens the database at dsn with the default settings and applies
// pending migrations.
func Open(ctx context.Context, dsn string) (*DB, error) {
	db := NewDB(dsn)
	if err := db.Open(ctx); err != nil {
		return nil, err
	}
	return db, nil
}

// Open connects and applies pending migrations.
func (db *DB) Open(ctx context.Context) error {
	var err error
	dsn := db.DSN
	if db.Dialect == Postgres {
		if db.w, err = sql.Open("pgx", dsn); err != nil {
			return fmt.Errorf("open postgres: %w", err)
		}
		db.w.SetMaxOpenConns(16)
		db.w.SetMaxIdleConns(16)
		db.r = db.w
	} else {
		path := strings.TrimPrefix(dsn, "file:")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		if path == "" {
			return errors.New("open sqlite: empty path")
		}
		q := url.Values{}
		// busy_timeout first: switching a new file to WAL takes a lock, and
		// a second process opening the same file at that moment must wait
		// for it rather than fail with SQLITE_BUSY.
		for _, p := range []string{"busy_timeout(10000)", "journal_mode(WAL)", "foreign_keys(1)", "synchronous(NORMAL)"} {
			q.Add("_pragma", p)
		}
		q.Set("_txlock", "immediate")
		wdsn := "file:" + filepath.ToSlash(path) + "?" + q.Encode()
		if db.w, err = sql.Open("sqlite", wdsn); err != nil {
			return fmt.Errorf("open sqlite %s: %w", path, err)
		}
		db.w.SetMaxOpenConns(1)
		db.w.SetMaxIdleConns(1)
		db.w.SetConnMaxLifetime(0)
		q.Set("_txlock", "deferred")
		q.Add("_pragma", "query_only(1)")
		if db.r, err = sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?"+q.Encode()); err != nil {
			db.w.Close()
			return fmt.Errorf("open sqlite %s: %w", path, err)
		}
		n := max(4, runtime.GOMAXPROCS(0)*2)
		db.r.SetMaxOpenConns(n)
		db.r.SetMaxIdleConns(n)
	}
	if err := db.connect(ctx); err != nil {
		db.Close()
		return fmt.Errorf("connect to %s database: %w", db.Dialect, err)
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return err
	}
	return nil
}

// connect opens the writer's first connection. On SQLite, switching a new
// file to WAL needs an exclusive lock that SQLite does not wait for through
// busy_timeout: when another process is opening the same file at that
// moment the connection fails with SQLITE_BUSY, so connect retries for up to
// 10 s.
func (db *DB) connect(ctx context.Context) error {
	deadline := time.Now().Add(10 * time.Second)
	for delay := 5 * time.Millisecond; ; delay = min(2*delay, 200*time.Millisecond) {
		err := db.w.PingContext(ctx)
		if err == nil || db.Dialect != SQLite || !strings.Contains(err.Error(), "SQLITE_BUSY") || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(delay):
		}
	}
}

// Close closes every connection.
func (db *DB) Close() error {
	var err error
	if db.r != nil && db.r != db.w {
		err = db.r.Close()
	}
	if db.w != nil {
		err = errors.Join(err, db.w.Close())
	}
	return err
}

// Ping reports whether the database answers; /readyz uses it.
func (db *DB) Ping(ctx context.Context) error { return db.w.PingContext(ctx) }

// Write runs fn in a write transaction, committing when fn returns nil and
// rolling back otherwise. On SQLite the single writer connection serialises
// writers; the transaction starts with BEGIN IMMEDIATE.
func (db *DB) Write(ctx context.Context, fn func(tx *Tx) error) error {
	return db.inTx(ctx, db.w, nil, fn)
}

// Read runs fn in a read-only transaction on the read pool, so a reader sees
// one consistent snapshot: SQLite's read transactions are snapshots, and on
// PostgreSQL the transaction is REPEATABLE READ.
func (db *DB) Read(ctx context.Context, fn func(tx *Tx) error) error {
	var opts *sql.TxOptions
	if db.Dialect == Postgres {
		opts = &sql.TxOptions{Isolation: sql.LevelRepeatableRead, ReadOnly: true}
	}
	return db.inTx(ctx, db.r, opts, fn)
}

// inTx runs fn in a transaction on pool. The transaction is rolled back when
// fn fails or panics, so a panic never leaves SQLite's one writer connection
// held by an open transaction.
func (db *DB) inTx(ctx context.Context, pool *sql.DB, opts *sql.TxOptions, fn func(tx *Tx) error) (err error) {
	stx, err := pool.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("begin transaction: %w", err)
	}
	defer func() {
		if p := recover(); p != nil {
			_ = stx.Rollback()
			panic(p)
		}
	}()
	tx := &Tx{Tx: stx, db: db}
	if err := fn(tx); err != nil {
		_ = stx.Rollback()
		return err
	}
	if err := stx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// Tx is a transaction whose query methods take '?' placeholders in either dialect.
type Tx struct {
	*sql.Tx
	db *DB
}

// Dialect returns the dialect of the transaction's database.
func (tx *Tx) Dialect() string { return tx.db.Dialect }

// Exec runs q with '?' placeholders rebound for the dialect.
func (tx *Tx) Exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return tx.Tx.ExecContext(ctx, tx.db.Rebind(q), args...)
}

// Query runs q with '?' placeholders rebound for the dialect.
func (tx *Tx) Query(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return tx.Tx.QueryContext(ctx, tx.db.Rebind(q), args...)
}

// QueryRow runs q with '?' placeholders rebound for the dialect.
func (tx *Tx) QueryRow(ctx context.Context, q string, args ...any) *sql.Row {
	return tx.Tx.QueryRowContext(ctx, tx.db.Rebind(q), args...)
}

// Rebind rewrites '?' placeholders as $1, $2, … on PostgreSQL. Question marks
// inside single-quoted literals are left alone.
func (db *DB) Rebind(q string) string {
	if db.Dialect != Postgres || !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	b.Grow(len(q) + 16)
	n, quoted := 0, false
	for i := 0; i < len(q); i++ {
		c := q[i]
		switch {
		case c == '\'':
			quoted = !quoted
			b.WriteByte(c)
		case c == '?' && !quoted:
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}

// migration is one numbered .sql file.
type migration struct {
	version int
	name    string
	sql     string
}

func (db *DB) migrations() ([]migration, error) {
	dir := "migrations/" + db.Dialect
	entries, err := fs.ReadDir(migrationsFS, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations: %w", err)
	}
	var ms []migration
	for _, e := range entries {
		name := e.Name()
		if !strings.HasSuffix(name, ".sql") {
			continue
		}
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil {
			return nil, fmt.Errorf("migration %s: name must start with a number and '_'", name)
		}
		body, err := fs.ReadFile(migrationsFS, dir+"/"+name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(body)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, nil
}

// migrationLockKey is the PostgreSQL advisory lock that serialises servers
// migrating the same database.
const migrationLockKey = 0x6d6c6f6f70 // "mloop"

// migrate applies pending migrations, each in its own transaction. On
// PostgreSQL a session advisory lock makes concurrent starts wait for each
// other; on SQLite each migration's BEGIN IMMEDIATE does the same.
func (db *DB) migrate(ctx context.Context) error {
	ms, err := db.migrations()
	if err != nil {
		return err
	}
	var conn *sql.Conn
	if db.Dialect == Postgres {
		if conn, err = db.w.Conn(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		defer conn.Close()
		if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrationLockKey); err != nil {
			return fmt.Errorf("migrate: take lock: %w", err)
		}
		defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrationLockKey)
	} else {
		if conn, err = db.w.Conn(ctx); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		defer conn.Close()
	}
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY, name TEXT NOT NULL)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	for _, m := range ms {
		if err := db.apply(ctx, conn, m); err != nil {
			return fmt.Errorf("migration %s: %w", m.name, err)
		}
	}
	return nil
}

func (db *DB) apply(ctx context.Context, conn *sql.Conn, m migration) error {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, db.Rebind("SELECT count(*) FROM schema_migrations WHERE version = ?"), m.version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m.sql); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, db.Rebind("INSERT INTO schema_migrations (version, name) VALUES (?, ?)"), m.version, m.name); err != nil {
		return err
	}
	db.Logger.Info("applied migration", "dialect", db.Dialect, "migration", m.name)
	return tx.Commit()
}
