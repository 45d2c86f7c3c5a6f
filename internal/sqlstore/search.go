package sqlstore

import (
	"fmt"
	"math"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/tracking"
)

// This file translates the search grammar of tracking.Filter and
// tracking.OrderBy into SQL with MLflow's semantics, in both dialects. It is
// written for reuse: each search (runs, experiments, registered models, model
// versions) describes its own columns with searchColumn and keyValueTable and
// lets a selectBuilder assemble the statement.
//
// Semantics, the same on SQLite and PostgreSQL:
//   - = and != on strings are case-sensitive.
//   - LIKE is case-sensitive and ILIKE is not; % and _ are the wildcards and a
//     backslash escapes them (PostgreSQL's default, which MLflow inherits).
//     SQLite's LIKE ignores case, so LIKE becomes GLOB there. ILIKE folds
//     ASCII letters only on SQLite, all of Unicode on PostgreSQL.
//   - A comparison on a param, tag or metric matches only rows that have that
//     key, as MLflow's inner joins do; IS NULL matches rows without the key and
//     IS NOT NULL rows with it.
//   - A NaN metric value is stored as 0 with a NaN flag: it matches != and no
//     other comparison.
//   - Ordering puts missing values last in both directions and, for metrics,
//     NaN after every number and before missing values, as MLflow's SQL store.

// searchColumn is a column of the searched rows, such as runs.start_time.
type searchColumn struct {
	// Expr is the SQL expression of the column, qualified by its table alias.
	Expr string
	// Numeric columns compare with float64 values; others with strings.
	Numeric bool
}

// keyValueTable is a table of key/value pairs attached to the searched rows,
// such as params (run_uuid, key, value).
type keyValueTable struct {
	// Table is the table name.
	Table string
	// Owner is the column of Table holding the id of the searched row.
	Owner string
	// Key and Value are the key and value columns.
	Key, Value string
	// Numeric is true when Value holds float64 values (metrics).
	Numeric bool
	// NaN, when set, is the boolean column flagging NaN values.
	NaN string
}

// sqlParts is a list of SQL fragments and the arguments of their '?'
// placeholders, in order.
type sqlParts struct {
	sql  []string
	args []any
}

func (p *sqlParts) add(sql string, args ...any) {
	p.sql = append(p.sql, sql)
	p.args = append(p.args, args...)
}

// selectBuilder assembles "SELECT … FROM … JOIN … WHERE … ORDER BY … LIMIT …"
// from parts added in any order, keeping each part's arguments in the order of
// the final statement.
type selectBuilder struct {
	dialect string
	// Columns is the select list and From the main table with its alias.
	Columns, From string
	joins         sqlParts
	where         sqlParts
	order         []string
	joinCount     int
	// Limit is the maximum number of rows (0: no limit) and Offset how many to skip.
	Limit, Offset int
}

// newSelect returns a builder of SELECT columns FROM from in dialect.
func newSelect(dialect, columns, from string) *selectBuilder {
	return &selectBuilder{dialect: dialect, Columns: columns, From: from}
}

// Where adds a condition; conditions are AND-ed.
func (b *selectBuilder) Where(cond string, args ...any) { b.where.add(cond, args...) }

// Join adds a join clause such as "LEFT JOIN t ON …".
func (b *selectBuilder) Join(clause string, args ...any) { b.joins.add(clause, args...) }

// alias returns a fresh table alias with the given prefix.
func (b *selectBuilder) alias(prefix string) string {
	b.joinCount++
	return fmt.Sprintf("%s%d", prefix, b.joinCount)
}

// SQL returns the statement and its arguments.
func (b *selectBuilder) SQL() (string, []any) {
	var s strings.Builder
	s.WriteString("SELECT ")
	s.WriteString(b.Columns)
	s.WriteString(" FROM ")
	s.WriteString(b.From)
	for _, j := range b.joins.sql {
		s.WriteString(" ")
		s.WriteString(j)
	}
	if len(b.where.sql) > 0 {
		s.WriteString(" WHERE ")
		s.WriteString(strings.Join(b.where.sql, " AND "))
	}
	if len(b.order) > 0 {
		s.WriteString(" ORDER BY ")
		s.WriteString(strings.Join(b.order, ", "))
	}
	args := append(append([]any{}, b.joins.args...), b.where.args...)
	if b.Limit > 0 {
		s.WriteString(" LIMIT ?")
		args = append(args, b.Limit)
	} else if b.Offset > 0 {
		if b.dialect == SQLite {
			s.WriteString(" LIMIT -1")
		} else {
			s.WriteString(" LIMIT ALL")
		}
	}
	if b.Offset > 0 {
		s.WriteString(" OFFSET ?")
		args = append(args, b.Offset)
	}
	return s.String(), args
}

// WhereColumn adds the condition "col op value".
func (b *selectBuilder) WhereColumn(col searchColumn, op string, value any, field string) error {
	cond, args, err := compareSQL(b.dialect, col.Expr, col.Numeric, op, value, field)
	if err != nil {
		return err
	}
	b.Where(cond, args...)
	return nil
}

// WhereKeyValue adds the condition that the row identified by ownerExpr has
// key in t with a value satisfying op and value; IS NULL means the row has no
// such key and IS NOT NULL that it has. The condition is an inner join, so
// the planner may start from whichever filter is most selective; (Owner,
// Key) must be unique in t, as a primary key, so no row repeats.
func (b *selectBuilder) WhereKeyValue(t keyValueTable, ownerExpr, key, op string, value any, field string) error {
	a := b.alias("f")
	on := fmt.Sprintf("%s.%s = %s AND %s.%s = ?", a, t.Owner, ownerExpr, a, t.Key)
	switch op {
	case tracking.OpIsNull:
		b.Where(fmt.Sprintf("NOT EXISTS (SELECT 1 FROM %s %s WHERE %s)", t.Table, a, on), key)
		return nil
	case tracking.OpIsNotNull:
		b.Join(fmt.Sprintf("JOIN %s %s ON %s", t.Table, a, on), key)
		return nil
	}
	cond, args, err := compareSQL(b.dialect, a+"."+t.Value, t.Numeric, op, value, field)
	if err != nil {
		return err
	}
	if t.NaN != "" {
		if op == tracking.OpNe {
			cond = fmt.Sprintf("(%s.%s OR %s)", a, t.NaN, cond)
		} else {
			cond = fmt.Sprintf("NOT %s.%s AND %s", a, t.NaN, cond)
		}
	}
	b.Join(fmt.Sprintf("JOIN %s %s ON %s AND %s", t.Table, a, on, cond), append([]any{key}, args...)...)
	return nil
}

// OrderColumn orders by col with missing (NULL) values last in both
// directions. nanExpr, when set, is a boolean expression that puts NaN values
// after all numbers and before missing ones.
func (b *selectBuilder) OrderColumn(col searchColumn, asc bool, nanExpr string) {
	if nanExpr != "" {
		b.order = append(b.order, fmt.Sprintf("CASE WHEN %s THEN 1 WHEN %s IS NULL THEN 2 ELSE 0 END", nanExpr, col.Expr))
	} else {
		b.order = append(b.order, fmt.Sprintf("CASE WHEN %s IS NULL THEN 1 ELSE 0 END", col.Expr))
	}
	b.OrderPlain(col, asc)
}

// OrderPlain orders by col with no handling of missing values, for columns
// that are never NULL. Strings sort by their bytes in both dialects (COLLATE
// "C" on PostgreSQL, whose default collation may be a locale's).
func (b *selectBuilder) OrderPlain(col searchColumn, asc bool) {
	dir := " DESC"
	if asc {
		dir = " ASC"
	}
	b.order = append(b.order, byteOrder(b.dialect, col)+dir)
}

// OrderKeyValue orders by the value of key in t for the row identified by
// ownerExpr, left-joining t so rows without the key stay (and sort last).
func (b *selectBuilder) OrderKeyValue(t keyValueTable, ownerExpr, key string, asc bool) {
	a := b.alias("o")
	b.Join(fmt.Sprintf("LEFT JOIN %s %s ON %s.%s = %s AND %s.%s = ?", t.Table, a, a, t.Owner, ownerExpr, a, t.Key), key)
	nan := ""
	if t.NaN != "" {
		nan = a + "." + t.NaN
	}
	b.OrderColumn(searchColumn{Expr: a + "." + t.Value, Numeric: t.Numeric}, asc, nan)
}

// byteOrder returns the expression of col that orders strings by their bytes.
func byteOrder(dialect string, col searchColumn) string {
	if dialect == Postgres && !col.Numeric {
		return col.Expr + ` COLLATE "C"`
	}
	return col.Expr
}

// compareSQL translates "expr op value" into a SQL condition and its
// arguments. field names the compared entity in error messages. Values are
// float64 for numeric columns, string for string columns, []string for IN and
// NOT IN, and nil for IS NULL and IS NOT NULL; anything else is EINVALID.
func compareSQL(dialect, expr string, numeric bool, op string, value any, field string) (string, []any, error) {
	switch op {
	case tracking.OpIsNull:
		return expr + " IS NULL", nil, nil
	case tracking.OpIsNotNull:
		return expr + " IS NOT NULL", nil, nil
	case tracking.OpIn, tracking.OpNotIn:
		vs, ok := value.([]string)
		if !ok {
			return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid value for %s: %s expects a list of strings, got %T.", field, op, value)
		}
		if numeric {
			return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid comparator '%s' for numeric %s.", op, field)
		}
		if len(vs) == 0 {
			// An empty list matches nothing (IN) or everything (NOT IN).
			if op == tracking.OpIn {
				return "1 = 0", nil, nil
			}
			return "1 = 1", nil, nil
		}
		args := make([]any, len(vs))
		for i, v := range vs {
			args[i] = v
		}
		return fmt.Sprintf("%s %s (%s)", expr, op, placeholders(len(vs))), args, nil
	case tracking.OpEq, tracking.OpNe, tracking.OpLt, tracking.OpLe, tracking.OpGt, tracking.OpGe:
		if numeric {
			f, ok := value.(float64)
			if !ok {
				return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid value for %s: expected a number, got %T.", field, value)
			}
			if math.IsNaN(f) {
				return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid value for %s: NaN cannot be compared.", field)
			}
			return fmt.Sprintf("%s %s ?", expr, op), []any{sqlNumber(f)}, nil
		}
		s, ok := value.(string)
		if !ok {
			return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid value for %s: expected a string, got %T.", field, value)
		}
		if op != tracking.OpEq && op != tracking.OpNe {
			expr = byteOrder(dialect, searchColumn{Expr: expr})
		}
		return fmt.Sprintf("%s %s ?", expr, op), []any{s}, nil
	case tracking.OpLike, tracking.OpILike:
		s, ok := value.(string)
		if !ok {
			return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid value for %s: %s expects a string pattern, got %T.", field, op, value)
		}
		if numeric {
			return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid comparator '%s' for numeric %s.", op, field)
		}
		if strings.HasSuffix(s, `\`) && (len(s)-len(strings.TrimRight(s, `\`)))%2 == 1 {
			return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid value for %s: %s pattern %q ends with an escape character.", field, op, s)
		}
		switch {
		case dialect == SQLite && op == tracking.OpLike:
			return expr + " GLOB ?", []any{likeToGlob(s)}, nil
		case dialect == SQLite:
			return expr + ` LIKE ? ESCAPE '\'`, []any{s}, nil
		default:
			// PostgreSQL's LIKE and ILIKE escape with a backslash by default.
			return fmt.Sprintf("%s %s ?", expr, op), []any{s}, nil
		}
	}
	return "", nil, mloop.Errorf(mloop.EINVALID, "Invalid comparator '%s' for %s.", op, field)
}

// sqlNumber returns f as an int64 when it is a whole number that fits, so
// integer columns compare exactly and keep using their indexes.
func sqlNumber(f float64) any {
	if f == math.Trunc(f) && f >= -(1<<63) && f < 1<<63 {
		return int64(f)
	}
	return f
}

// likeToGlob translates a LIKE pattern (wildcards % and _, backslash escape)
// into the equivalent case-sensitive GLOB pattern for SQLite.
func likeToGlob(pattern string) string {
	var b strings.Builder
	b.Grow(len(pattern) + 8)
	escaped := false
	for _, r := range pattern {
		switch {
		case escaped:
			escaped = false
			writeGlobLiteral(&b, r)
		case r == '\\':
			escaped = true
		case r == '%':
			b.WriteByte('*')
		case r == '_':
			b.WriteByte('?')
		default:
			writeGlobLiteral(&b, r)
		}
	}
	return b.String()
}

// writeGlobLiteral writes r so that GLOB matches it literally.
func writeGlobLiteral(b *strings.Builder, r rune) {
	switch r {
	case '*', '?', '[':
		b.WriteByte('[')
		b.WriteRune(r)
		b.WriteByte(']')
	default:
		b.WriteRune(r)
	}
}

// placeholders returns n comma-separated '?' placeholders.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

// stringArgs converts strings to query arguments.
func stringArgs(vs []string) []any {
	args := make([]any, len(vs))
	for i, v := range vs {
		args[i] = v
	}
	return args
}
