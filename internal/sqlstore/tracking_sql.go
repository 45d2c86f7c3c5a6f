package sqlstore

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5/pgconn"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// SQL helpers shared by the stores of this package: prepared-statement reuse
// on the SQLite writer, multi-row inserts chunked under the bound-parameter
// limits, IN-list chunking, row locks, unique-violation detection and ids.

// maxInsertRows is the largest number of rows one multi-row INSERT carries.
// With at most 16 columns that stays below SQLite's limit of 32766 bound
// parameters and PostgreSQL's 65535.
const maxInsertRows = 1024

// inChunk is the largest number of values in one IN (…) list.
const inChunk = 1000

// stmtCache holds statements prepared once on the SQLite writer connection
// and reused by every write transaction: preparing a multi-row INSERT of a
// thousand rows costs more than executing it. A statement can only be
// prepared while no transaction holds the one writer connection, so a
// statement missed inside a transaction runs unprepared and is noted;
// prepare, called before a transaction starts, prepares the noted ones.
// PostgreSQL needs no cache: pgx caches prepared statements per connection.
type stmtCache struct {
	mu      sync.Mutex
	m       map[string]*sql.Stmt
	pending map[string]bool
}

// lookup returns the prepared statement for q, or nil after noting q.
func (c *stmtCache) lookup(q string) *sql.Stmt {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.m[q]; ok {
		return st
	}
	if c.pending == nil {
		c.pending = make(map[string]bool)
	}
	c.pending[q] = true
	return nil
}

// prepare prepares the noted statements on pool. It must not be called
// inside a transaction on pool, and holds no lock while it waits for the
// writer connection, so transactions in flight can finish.
func (c *stmtCache) prepare(ctx context.Context, pool *sql.DB) error {
	c.mu.Lock()
	queries := make([]string, 0, len(c.pending))
	for q := range c.pending {
		queries = append(queries, q)
	}
	c.mu.Unlock()
	for _, q := range queries {
		st, err := pool.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare statement: %w", err)
		}
		c.mu.Lock()
		if _, dup := c.m[q]; dup { // prepared meanwhile by another caller
			err = st.Close()
		} else {
			if c.m == nil {
				c.m = make(map[string]*sql.Stmt)
			}
			c.m[q] = st
		}
		delete(c.pending, q)
		c.mu.Unlock()
		if err != nil {
			return fmt.Errorf("close duplicate statement: %w", err)
		}
	}
	return nil
}

// close closes every cached statement.
func (c *stmtCache) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var err error
	for q, st := range c.m {
		err = errors.Join(err, st.Close())
		delete(c.m, q)
	}
	return err
}

// execCached runs the statement q in tx, a write transaction, through the
// statement prepared on the SQLite writer when there is one; on PostgreSQL it
// is a plain tx.Exec.
func (c *stmtCache) execCached(ctx context.Context, tx *Tx, q string, args ...any) (sql.Result, error) {
	if tx.Dialect() != SQLite {
		return tx.Exec(ctx, q, args...)
	}
	if st := c.lookup(q); st != nil {
		return tx.Tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.Exec(ctx, q, args...)
}

// queryEach is the package's queryEach through the statement cache, for
// write transactions: on SQLite q runs as a statement prepared once when
// there is one.
func (c *stmtCache) queryEach(ctx context.Context, tx *Tx, q string, args []any, fn func(scanner) error) error {
	if tx.Dialect() != SQLite {
		return queryEach(ctx, tx, q, args, fn)
	}
	st := c.lookup(q)
	if st == nil {
		return queryEach(ctx, tx, q, args, fn)
	}
	rows, err := tx.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	return scanEach(rows, fn)
}

// padIn returns vals padded to a power-of-two length by repeating the last
// value, so that IN lists, and the statements holding them, come in few sizes.
func padIn(vals []any) []any {
	if len(vals) == 0 {
		return vals
	}
	n := 1 << bits.Len(uint(len(vals)-1))
	for len(vals) < n {
		vals = append(vals, vals[len(vals)-1])
	}
	return vals
}

// powerOfTwoChunks calls fn for consecutive ranges [lo, hi) covering [0, n)
// whose lengths are powers of two of at most maxInsertRows, largest first:
// statements sized by chunk length then come from a small set.
func powerOfTwoChunks(n int, fn func(lo, hi int) error) error {
	for lo := 0; lo < n; {
		k := min(n-lo, maxInsertRows)
		k = 1 << (bits.Len(uint(k)) - 1) // the largest power of two <= k
		if err := fn(lo, lo+k); err != nil {
			return err
		}
		lo += k
	}
	return nil
}

// insertValues inserts rows of width values each (args holds them row after
// row) with "prefix VALUES (…), (…) suffix" statements of at most
// maxInsertRows rows. Chunk sizes are powers of two, so the statements come
// from a small set that the cache prepares once.
func (c *stmtCache) insertValues(ctx context.Context, tx *Tx, prefix, suffix string, width int, args []any) error {
	return powerOfTwoChunks(len(args)/width, func(lo, hi int) error {
		_, err := c.execCached(ctx, tx, valuesStatement(prefix, suffix, width, hi-lo), args[lo*width:hi*width]...)
		return err
	})
}

// valuesStatement returns "prefix VALUES (?, …), … suffix" for n rows of width columns.
func valuesStatement(prefix, suffix string, width, n int) string {
	row := "(" + placeholders(width) + ")"
	var b strings.Builder
	b.Grow(len(prefix) + len(suffix) + n*(len(row)+2) + 8)
	b.WriteString(prefix)
	b.WriteString(" VALUES ")
	for i := range n {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(row)
	}
	if suffix != "" {
		b.WriteString(" ")
		b.WriteString(suffix)
	}
	return b.String()
}

// forChunks calls fn for consecutive ranges [lo, hi) of at most size
// elements covering [0, n), stopping at the first error.
func forChunks(n, size int, fn func(lo, hi int) error) error {
	for lo := 0; lo < n; lo += size {
		if err := fn(lo, min(lo+size, n)); err != nil {
			return err
		}
	}
	return nil
}

// forUpdate returns the row-lock clause that serialises writers of the
// selected rows: FOR NO KEY UPDATE on PostgreSQL (it lets foreign-key checks
// of other transactions through), nothing on SQLite, whose one writer
// connection already serialises every write transaction.
func forUpdate(dialect string) string {
	if dialect == Postgres {
		return " FOR NO KEY UPDATE"
	}
	return ""
}

// isUniqueViolation reports whether err is a unique or primary-key
// constraint violation in either dialect.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code == "23505"
	}
	var liteErr *sqlite.Error
	if errors.As(err, &liteErr) {
		return liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || liteErr.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	}
	return false
}

// newUUID returns a random 32-character lowercase hex id, as MLflow's uuid4().hex.
func newUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])  // crypto/rand.Read never fails
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	return hex.EncodeToString(b[:])
}

// rowsAffected returns res.RowsAffected, wrapping a driver error with context.
func rowsAffected(res sql.Result, what string) (int64, error) {
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("%s: rows affected: %w", what, err)
	}
	return n, nil
}
