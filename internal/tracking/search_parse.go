package tracking

// This file holds the parsers of MLflow's search filter and order_by grammar
// for runs, experiments, logged models, registered models and model versions.
//
// MLflow parses these strings with sqlparse and then checks the tokens it
// finds (mlflow/utils/search_utils.py); the SQL stores then check the
// comparators. Here a hand-written lexer and a small recursive-descent parser
// accept the same language and return the same errors (INVALID_PARAMETER_VALUE,
// with MLflow's wording where MLflow's tests assert it), checking comparators
// up front instead of at query time.
//
// The accepted language, shared by every search:
//
//	filter  = { clause | "AND" }
//	clause  = name op value | name ["NOT"] "IN" list | name "IS" ["NOT"] "NULL"
//	name    = part { "." part }              (no spaces around the dots)
//	part    = word | `backtick quoted` | "double quoted"
//	op      = "=" | "!=" | "<" | "<=" | ">" | ">=" | "LIKE" | "ILIKE"
//	value   = number | 'single quoted' | "double quoted"
//	list    = "(" quoted { "," quoted } [ "," ] ")"
//
// Keywords are case-insensitive. As in MLflow, clauses may be separated by
// any number of ANDs, including none; OR, parentheses and a second statement
// after ";" are errors. A name's first dot separates the entity prefix from
// the key, so tags.mlflow.runName has the key mlflow.runName. Quoted text is
// taken verbatim between its quotes: like MLflow, the parser does not
// unescape '' or \' inside a string. Unquoted keys may use any Unicode
// letters (sqlparse only takes Latin ones, so MLflow needs quotes there).

import (
	"errors"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mloop/mloop"
)

// ParseRunFilter parses a search_runs filter such as
// "metrics.rmse < 0.5 AND params.model = 'lr' AND tags.mlflow.runName LIKE 'a%'".
//
// Entities are metrics (metric), params (param, parameters, parameter), tags
// (tag), attributes (attribute, attr, run, or no prefix) and datasets
// (dataset). Metrics and the numeric attributes start_time and end_time
// (created is an alias of start_time) take numbers and =, !=, <, <=, >, >=;
// params and tags take quoted strings and =, !=, LIKE, ILIKE, or IS [NOT]
// NULL; the string attributes run_id, run_name (alias "run name"), status,
// user_id and artifact_uri take quoted strings and =, !=, LIKE, ILIKE, and
// run_id also IN and NOT IN with a list; datasets.name, datasets.digest and
// datasets.context take quoted strings or lists with =, !=, LIKE, ILIKE, IN,
// NOT IN. Attribute keys come back canonical. An empty or blank filter is an
// empty Filter. Errors are EINVALID.
func ParseRunFilter(filter string) (Filter, error) {
	return parseFilterWith(filter, runFilterGrammar.comparison)
}

// ParseLoggedModelFilter parses a search_logged_models filter: the run
// grammar whose attributes are MLflow 3's logged-model attributes name,
// model_id, model_type, status and source_run_id (strings, lists allowed)
// and creation_timestamp, creation_time, last_updated_timestamp and
// last_updated_time (numbers). Attribute keys come back as written. Errors
// are EINVALID.
func ParseLoggedModelFilter(filter string) (Filter, error) {
	return parseFilterWith(filter, loggedModelFilterGrammar.comparison)
}

// ParseExperimentFilter parses a search_experiments filter: the attributes
// name (quoted string; =, !=, LIKE, ILIKE), creation_time and
// last_update_time (numbers; =, !=, <, <=, >, >=), with the prefix
// "attribute." or none, and tags ("tag." or "tags."; quoted string; =, !=,
// LIKE, ILIKE, IS [NOT] NULL). Errors are EINVALID.
func ParseExperimentFilter(filter string) (Filter, error) {
	return parseFilterWith(filter, experimentComparison)
}

// ParseRegisteredModelFilter parses a search_registered_models filter: the
// attribute name and tags, both quoted strings compared with =, !=, LIKE or
// ILIKE. Errors are EINVALID.
func ParseRegisteredModelFilter(filter string) (Filter, error) {
	return parseFilterWith(filter, registeredModelComparison)
}

// ParseModelVersionFilter parses a search_model_versions filter: the
// attributes name and source_path (quoted strings; =, !=, LIKE, ILIKE), run_id
// (the same, plus IN with a list), version_number (a number; =, !=, <, <=, >,
// >=) and tags (quoted strings; =, !=, LIKE, ILIKE). Errors are EINVALID.
func ParseModelVersionFilter(filter string) (Filter, error) {
	return parseFilterWith(filter, modelVersionComparison)
}

// ParseRunOrderBy parses search_runs order_by terms such as
// "metrics.`my metric` DESC", "attributes.start_time ASC", "params.lr" or
// "status". A term orders by a metric, param, tag or attribute (run_id,
// run_name, status, user_id, artifact_uri, start_time, end_time, created),
// ascending unless it ends with DESC. Naming the same field twice is an
// error. Errors are EINVALID.
func ParseRunOrderBy(orderBy []string) ([]OrderBy, error) {
	return parseOrderByList(orderBy, runOrderTerm, true)
}

// ParseExperimentOrderBy parses search_experiments order_by terms over the
// attributes name, experiment_id, creation_time and last_update_time.
// Errors are EINVALID.
func ParseExperimentOrderBy(orderBy []string) ([]OrderBy, error) {
	return parseOrderByList(orderBy, experimentOrderTerm, false)
}

// ParseRegisteredModelOrderBy parses search_registered_models order_by terms
// over name, last_updated_timestamp and its alias timestamp (returned as
// last_updated_timestamp), as MLflow's SQL store does. Naming the same field
// twice is an error. Errors are EINVALID.
func ParseRegisteredModelOrderBy(orderBy []string) ([]OrderBy, error) {
	return parseOrderByList(orderBy, registeredModelOrderTerm, true)
}

// ParseModelVersionOrderBy parses search_model_versions order_by terms over
// name, version_number, creation_timestamp and last_updated_timestamp.
// Naming the same field twice is an error. Errors are EINVALID.
func ParseModelVersionOrderBy(orderBy []string) ([]OrderBy, error) {
	return parseOrderByList(orderBy, modelVersionOrderTerm, true)
}

// searchErrorf returns the EINVALID error every parse failure is.
func searchErrorf(format string, args ...any) error {
	return mloop.Errorf(mloop.EINVALID, format, args...)
}

// ---------------------------------------------------------------------------
// Lexer

// tokKind is the kind of a lexical token.
type tokKind uint8

const (
	tokEOF       tokKind = iota
	tokWord              // letters, digits, '_' and '$', not starting with '$'
	tokNumber            // -?digits[.digits][e-?digits], or -?.digits
	tokSingle            // 'single-quoted'
	tokDouble            // "double-quoted"
	tokBacktick          // `backtick-quoted`
	tokDot               // .
	tokComma             // ,
	tokLParen            // (
	tokRParen            // )
	tokSemicolon         // ;
	tokCompare           // a run of the characters < > = ! ~
	tokInvalid           // anything else, or an unterminated quote to the end
)

// token is one lexical token of a search string.
type token struct {
	kind   tokKind
	text   string // the token's source text
	pos    int    // byte offset of the token in the source
	spaced bool   // whitespace comes right before the token
}

// end returns the byte offset just past t.
func (t token) end() int { return t.pos + len(t.text) }

// word returns the upper-cased text of a word token and "" for other tokens.
func (t token) word() string {
	if t.kind != tokWord {
		return ""
	}
	return strings.ToUpper(t.text)
}

// lex splits src into tokens, ending with a tokEOF token. It never fails:
// characters outside the grammar become tokInvalid tokens for the parser to
// report.
func lex(src string) []token {
	var toks []token
	spaced := false
	for i := 0; i < len(src); {
		r, size := utf8.DecodeRuneInString(src[i:])
		if unicode.IsSpace(r) {
			i += size
			spaced = true
			continue
		}
		start, kind := i, tokInvalid
		switch {
		case r == '\'' || r == '"' || r == '`':
			n := quotedLen(src[i:], byte(r))
			if n < 0 {
				i = len(src) // an unterminated quote runs to the end
				break
			}
			i += n
			kind = quoteKind(r)
		case isDigit(r):
			i += numberLen(src[i:])
			kind = tokNumber
			// Digits running into letters make a word, as in metrics.1abc.
			if next, _ := utf8.DecodeRuneInString(src[i:]); i < len(src) && isWordRune(next) {
				i = start + wordLen(src[start:])
				kind = tokWord
			}
		case (r == '-' || r == '.') && numberLen(src[i:]) > 0 && !(r == '.' && followsName(toks, spaced)):
			i += numberLen(src[i:])
			kind = tokNumber
		case unicode.IsLetter(r) || r == '_':
			i += wordLen(src[i:])
			kind = tokWord
		case strings.ContainsRune("<>=!~", r):
			for i < len(src) && strings.IndexByte("<>=!~", src[i]) >= 0 {
				i++
			}
			kind = tokCompare
		default:
			i += size
			kind = punctuationKind(r)
		}
		toks = append(toks, token{kind: kind, text: src[start:i], pos: start, spaced: spaced})
		spaced = false
	}
	return append(toks, token{kind: tokEOF, pos: len(src), spaced: spaced})
}

// quoteKind returns the kind of token a quote character opens.
func quoteKind(q rune) tokKind {
	switch q {
	case '\'':
		return tokSingle
	case '"':
		return tokDouble
	}
	return tokBacktick
}

// punctuationKind returns the kind of a one-character token.
func punctuationKind(r rune) tokKind {
	switch r {
	case '.':
		return tokDot
	case ',':
		return tokComma
	case '(':
		return tokLParen
	case ')':
		return tokRParen
	case ';':
		return tokSemicolon
	}
	return tokInvalid
}

// followsName reports whether a '.' lexed now (after spaced whitespace, if
// any) continues a name, making ".5" in metrics.5 a dot and not a number.
func followsName(toks []token, spaced bool) bool {
	if spaced || len(toks) == 0 {
		return false
	}
	switch toks[len(toks)-1].kind {
	case tokWord, tokDouble, tokBacktick:
		return true
	}
	return false
}

// isDigit reports whether r is an ASCII digit.
func isDigit(r rune) bool { return r >= '0' && r <= '9' }

// isWordRune reports whether r may appear in a word after its first rune.
func isWordRune(r rune) bool {
	return unicode.IsLetter(r) || unicode.IsDigit(r) || r == '_' || r == '$'
}

// wordLen returns the length in bytes of the run of word runes starting s.
func wordLen(s string) int {
	for i, r := range s {
		if !isWordRune(r) {
			return i
		}
	}
	return len(s)
}

// numberLen returns the length of the number literal starting s, or 0: an
// optional '-', digits with an optional fraction (or a fraction alone), and
// an optional exponent e[-]digits, as sqlparse's integer and float tokens.
func numberLen(s string) int {
	i := 0
	if i < len(s) && s[i] == '-' {
		i++
	}
	digits := 0
	for i < len(s) && isDigit(rune(s[i])) {
		i++
		digits++
	}
	if i < len(s) && s[i] == '.' {
		j := i + 1
		for j < len(s) && isDigit(rune(s[j])) {
			j++
		}
		if digits > 0 || j > i+1 {
			digits += j - i - 1
			i = j
		}
	}
	if digits == 0 {
		return 0
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		j := i + 1
		if j < len(s) && s[j] == '-' {
			j++
		}
		k := j
		for k < len(s) && isDigit(rune(s[k])) {
			k++
		}
		if k > j {
			i = k
		}
	}
	return i
}

// quotedLen returns the length of the quoted token starting s, whose first
// byte is the quote q, or -1 when the quote is not closed. A doubled quote
// stands for itself; in single and double quotes a backslash also escapes
// the quote or a backslash. These are sqlparse's rules.
func quotedLen(s string, q byte) int {
	for i := 1; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q != '`' && i+1 < len(s) && (s[i+1] == q || s[i+1] == '\\'):
			i++
		case s[i] == q:
			if i+1 < len(s) && s[i+1] == q {
				i++
				continue
			}
			return i + 1
		}
	}
	return -1
}

// ---------------------------------------------------------------------------
// Syntax: a filter string becomes clauses whose names and values are still
// raw text; each search then checks them against its own fields.

// valueKind is the kind of a clause's right-hand side.
type valueKind uint8

const (
	valNone   valueKind = iota // IS NULL and IS NOT NULL take no value
	valNumber                  // a number literal
	valString                  // a single- or double-quoted string
	valName                    // an unquoted or backtick-quoted name, never a valid value
	valList                    // a parenthesized list
)

// value is the right-hand side of a clause.
type value struct {
	kind  valueKind
	raw   string   // source text, used in messages
	text  string   // the content of a valString
	items []string // the strings of a valList
	err   error    // why a valList is unusable, reported once the list is used
}

// clause is one comparison of a filter before its fields are checked.
type clause struct {
	name string // source text of the left-hand side
	op   string // comparison operator, keywords upper-cased
	val  value
	// err is a problem MLflow reports only after every clause has parsed.
	err error
}

// keywords cannot start a name or stand as a value.
var keywords = []string{"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "RLIKE", "TRUE", "FALSE"}

// parser walks the tokens of one search string.
type parser struct {
	src  string
	toks []token
	i    int
}

// peek returns the current token without consuming it.
func (p *parser) peek() token { return p.toks[p.i] }

// next consumes and returns the current token; at the end it keeps
// returning the tokEOF token.
func (p *parser) next() token {
	t := p.toks[p.i]
	if t.kind != tokEOF {
		p.i++
	}
	return t
}

// atName reports whether a name starts at the current token.
func (p *parser) atName() bool {
	t := p.peek()
	switch t.kind {
	case tokDouble, tokBacktick:
		return true
	case tokWord:
		return !slices.Contains(keywords, t.word())
	}
	return false
}

// name consumes a name (parts joined by dots with no spaces) and returns its
// source text. The caller has checked atName.
func (p *parser) name() string {
	first := p.next()
	end := first.end()
	for {
		dot, part := p.peek(), p.toks[min(p.i+1, len(p.toks)-1)]
		if dot.kind != tokDot || dot.spaced || part.spaced ||
			(part.kind != tokWord && part.kind != tokDouble && part.kind != tokBacktick) {
			break
		}
		p.i += 2
		end = part.end()
	}
	return p.src[first.pos:end]
}

// invalidClause reports the text from byte from through the token just
// read (the offending one) as an invalid clause, as MLflow words it.
func (p *parser) invalidClause(from int) error {
	end := len(p.src)
	if p.peek().kind != tokEOF && p.i > 0 {
		end = max(p.toks[p.i-1].end(), from)
	}
	return searchErrorf("Invalid clause(s) in filter string: '%s'", strings.TrimSpace(p.src[from:end]))
}

// parseFilter turns src into clauses, or returns the syntax error MLflow
// would report first.
func parseFilter(src string) ([]clause, error) {
	toks := lex(src)
	for i, t := range toks {
		if t.kind == tokSemicolon && toks[i+1].kind != tokEOF {
			return nil, searchErrorf("Search filter contained multiple expression '%s'. Provide AND-ed expression list.", src)
		}
	}
	p := &parser{src: src, toks: toks}
	var clauses []clause
	for p.peek().kind != tokEOF {
		if p.peek().word() == "AND" {
			p.next()
			continue
		}
		c, err := p.clause()
		if err != nil {
			return nil, err
		}
		clauses = append(clauses, c)
	}
	return clauses, nil
}

// clause parses one comparison.
func (p *parser) clause() (clause, error) {
	start := p.peek()
	var c clause
	switch {
	case p.atName():
		c.name = p.name()
	case start.kind == tokNumber || start.kind == tokSingle:
		// MLflow groups "1 = 1" as a comparison and rejects it afterwards.
		p.next()
		c.err = searchErrorf("Invalid comparison clause. Expected 'Identifier' found '%s'", start.text)
	default:
		p.next()
		return c, p.invalidClause(start.pos)
	}
	op, ok := p.operator()
	if !ok {
		return c, p.invalidClause(start.pos)
	}
	c.op = op
	if c.val, ok = p.value(op); !ok {
		return c, p.invalidClause(start.pos)
	}
	return c, nil
}

// operator parses a comparison operator. Operators no search allows (==,
// <>, NOT LIKE, RLIKE…) parse too, so that the search can name them in
// MLflow's "Invalid comparator" error.
func (p *parser) operator() (string, bool) {
	t := p.next()
	if t.kind == tokCompare {
		return t.text, true
	}
	switch w := t.word(); w {
	case OpLike, OpILike, "RLIKE", OpIn:
		return w, true
	case "NOT":
		switch w := p.next().word(); w {
		case "IN":
			return OpNotIn, true
		case OpLike, OpILike, "RLIKE":
			return "NOT " + w, true
		}
	case "IS":
		switch p.next().word() {
		case "NULL":
			return OpIsNull, true
		case "NOT":
			if p.next().word() == "NULL" {
				return OpIsNotNull, true
			}
		}
	}
	return "", false
}

// value parses the right-hand side of op.
func (p *parser) value(op string) (value, bool) {
	switch op {
	case OpIsNull, OpIsNotNull:
		return value{kind: valNone}, true
	case OpIn, OpNotIn:
		if p.peek().kind != tokLParen {
			p.next()
			return value{}, false
		}
		return p.list()
	}
	t := p.peek()
	switch {
	case t.kind == tokNumber:
		p.next()
		return value{kind: valNumber, raw: t.text}, true
	case t.kind == tokSingle:
		p.next()
		return value{kind: valString, raw: t.text, text: unquote(t.text)}, true
	case t.kind == tokLParen:
		return p.list()
	case p.atName():
		from := p.i
		raw := p.name()
		if t.kind == tokDouble && p.i == from+1 {
			return value{kind: valString, raw: raw, text: unquote(raw)}, true
		}
		return value{kind: valName, raw: raw}, true
	}
	p.next()
	return value{}, false
}

// list parses a parenthesized list of quoted strings. A list MLflow cannot
// use still parses when its parentheses balance; the value's err says why.
func (p *parser) list() (value, bool) {
	open := p.next()
	v := value{kind: valList}
	depth, wantItem := 1, true
	var nonString, illFormed bool
	end := open.end()
	for depth > 0 {
		t := p.next()
		switch t.kind {
		case tokEOF:
			return value{}, false
		case tokLParen:
			depth++
			illFormed = true
		case tokRParen:
			depth--
		case tokSingle, tokDouble:
			if !wantItem {
				illFormed = true
			}
			v.items = append(v.items, unquote(t.text))
			wantItem = false
		case tokComma:
			if wantItem {
				illFormed = true
			}
			wantItem = true
		default:
			nonString = true
		}
		end = t.end()
	}
	v.raw = p.src[open.pos:end]
	switch {
	case nonString:
		v.err = searchErrorf("While parsing a list in the query, expected string value, punctuation, or whitespace, but got different type in list: %s", v.raw)
	case illFormed:
		v.err = searchErrorf("While parsing a list in the query, expected a non-empty list of string values, but got ill-formed list.")
	case len(v.items) == 0:
		v.err = searchErrorf("While parsing a list in the query, expected a non-empty list of string values, but got empty list")
	}
	return v, true
}

// unquote removes the quotes around a quoted token, leaving its content as
// written (MLflow does not unescape either).
func unquote(s string) string { return s[1 : len(s)-1] }

// ---------------------------------------------------------------------------
// Shared checks

// parseFilterWith parses src and checks each clause with check.
func parseFilterWith(src string, check func(clause) (Comparison, error)) (Filter, error) {
	clauses, err := parseFilter(src)
	if err != nil {
		return nil, err
	}
	var f Filter
	for _, c := range clauses {
		if c.err != nil {
			return nil, c.err
		}
		comp, err := check(c)
		if err != nil {
			return nil, err
		}
		f = append(f, comp)
	}
	return f, nil
}

// stripQuotes removes one pair of matching single or double quotes.
func stripQuotes(s string) string {
	if len(s) >= 2 && (s[0] == '\'' || s[0] == '"') && s[len(s)-1] == s[0] {
		return s[1 : len(s)-1]
	}
	return s
}

// trimBackticks removes one pair of backticks.
func trimBackticks(s string) string {
	if len(s) >= 2 && s[0] == '`' && s[len(s)-1] == '`' {
		return s[1 : len(s)-1]
	}
	return s
}

// unquoteKey returns a key without its quotes or backticks.
func unquoteKey(s string) string { return trimBackticks(stripQuotes(s)) }

// pySet renders names as Python prints a set of strings, sorted so that
// messages are stable: {'a', 'b'}.
func pySet(names ...string) string {
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	quoted := make([]string, len(sorted))
	for i, n := range sorted {
		quoted[i] = "'" + n + "'"
	}
	return "{" + strings.Join(quoted, ", ") + "}"
}

// opSet is a set of comparison operators.
type opSet []string

// String renders s as MLflow's messages do.
func (s opSet) String() string { return pySet(s...) }

var (
	numericOps    = opSet{OpEq, OpNe, OpLt, OpLe, OpGt, OpGe}
	stringOps     = opSet{OpEq, OpNe, OpLike, OpILike}
	paramTagOps   = opSet{OpEq, OpNe, OpLike, OpILike, OpIsNull, OpIsNotNull}
	stringAttrOps = opSet{OpEq, OpNe, OpLike, OpILike, OpIn, OpNotIn}
)

// isNullOp reports whether op takes no value.
func isNullOp(op string) bool { return op == OpIsNull || op == OpIsNotNull }

// numberOf returns v as a float64, or mismatch when v is not a number.
func numberOf(v value, mismatch error) (float64, error) {
	if v.kind != valNumber {
		return 0, mismatch
	}
	f, err := strconv.ParseFloat(v.raw, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) { // out of range is ±Inf, as in Python
		return 0, searchErrorf("Invalid numeric value %s: %v", v.raw, err)
	}
	return f, nil
}

// stringOf returns the content of a quoted string, MLflow's error for an
// unquoted name, or mismatch for other values.
func stringOf(v value, mismatch error) (string, error) {
	switch v.kind {
	case valString:
		return v.text, nil
	case valName:
		return "", searchErrorf("Parameter value is either not quoted or unidentified quote types used for string value %s. Use either single or double quotes.", v.raw)
	}
	return "", mismatch
}

// listOf returns the strings of a list value.
func listOf(v value) ([]string, error) {
	if v.err != nil {
		return nil, v.err
	}
	return v.items, nil
}

// checkListOp rejects a list of values compared with an operator other
// than IN and NOT IN (the parser already requires a list after those two).
func checkListOp(op string, v value) error {
	if v.kind == valList && op != OpIn && op != OpNotIn {
		return searchErrorf("Invalid comparator '%s' for a list of values; use IN or NOT IN", op)
	}
	return nil
}

var errOnlyRunIDList = searchErrorf("Only the 'run_id' attribute supports comparison with a list of quoted string values.")

// attrSpec describes an attribute a search may name.
type attrSpec struct {
	canonical string // the key the parser returns
	numeric   bool
}

// attrNames returns the names of attrs, for messages.
func attrNames(attrs map[string]attrSpec) []string {
	names := make([]string, 0, len(attrs))
	for n := range attrs {
		names = append(names, n)
	}
	return names
}

// invalidAttribute is MLflow's error for an unknown attribute key.
func invalidAttribute(key string, attrs map[string]attrSpec) error {
	return searchErrorf("Invalid attribute key '%s' specified. Valid keys are '%s'", key, pySet(attrNames(attrs)...))
}

// ---------------------------------------------------------------------------
// Runs and logged models

// runEntities maps the prefixes of run searches to entities.
var runEntities = map[string]string{
	"metric": EntityMetric, "metrics": EntityMetric,
	"parameter": EntityParam, "parameters": EntityParam, "param": EntityParam, "params": EntityParam,
	"tag": EntityTag, "tags": EntityTag,
	"attribute": EntityAttribute, "attributes": EntityAttribute, "attr": EntityAttribute, "run": EntityAttribute,
	"dataset": EntityDataset, "datasets": EntityDataset,
}

// mlflowEntityName is how MLflow's messages name each entity.
var mlflowEntityName = map[string]string{
	EntityMetric: "metric", EntityParam: "parameter", EntityTag: "tag",
	EntityAttribute: "attribute", EntityDataset: "dataset",
}

// datasetKeys are the fields of datasets.<key>.
var datasetKeys = []string{"name", "digest", "context"}

var (
	runSearchAttributes = map[string]attrSpec{
		"run_id": {"run_id", false}, "run_name": {"run_name", false}, "status": {"status", false},
		"user_id": {"user_id", false}, "artifact_uri": {"artifact_uri", false},
		"start_time": {"start_time", true}, "end_time": {"end_time", true},
		"created": {"start_time", true}, "Created": {"start_time", true},
		"run name": {"run_name", false}, "Run name": {"run_name", false}, "Run Name": {"run_name", false},
	}
	runOrderAttributes = map[string]attrSpec{
		"run_id": {"run_id", false}, "run_name": {"run_name", false}, "status": {"status", false},
		"user_id": {"user_id", false}, "artifact_uri": {"artifact_uri", false},
		"start_time": {"start_time", true}, "end_time": {"end_time", true},
		"created": {"start_time", true}, "Created": {"start_time", true},
	}
	loggedModelSearchAttributes = map[string]attrSpec{
		"name": {"name", false}, "model_id": {"model_id", false}, "model_type": {"model_type", false},
		"status": {"status", false}, "source_run_id": {"source_run_id", false},
		"creation_timestamp": {"creation_timestamp", true}, "creation_time": {"creation_time", true},
		"last_updated_timestamp": {"last_updated_timestamp", true}, "last_updated_time": {"last_updated_time", true},
	}
)

// runGrammar is the run search grammar over one set of attributes.
type runGrammar struct {
	attrs map[string]attrSpec
	// anyList lets every string attribute take a list; otherwise only run_id does.
	anyList bool
}

var (
	runFilterGrammar         = runGrammar{attrs: runSearchAttributes}
	loggedModelFilterGrammar = runGrammar{attrs: loggedModelSearchAttributes, anyList: true}
)

// runIdentifier resolves the name of a run search field: its entity, its key
// and, for attributes, the attribute's spec.
func runIdentifier(name string, attrs map[string]attrSpec) (entity, key string, spec attrSpec, err error) {
	prefix, key, dotted := strings.Cut(name, ".")
	entity = EntityAttribute
	if !dotted {
		key = prefix
	} else {
		p := trimBackticks(prefix)
		var ok bool
		if entity, ok = runEntities[p]; !ok {
			return "", "", attrSpec{}, searchErrorf("Invalid entity type '%s'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']", p)
		}
	}
	key = unquoteKey(key)
	switch entity {
	case EntityAttribute:
		var ok bool
		if spec, ok = attrs[key]; !ok {
			return "", "", attrSpec{}, invalidAttribute(key, attrs)
		}
	case EntityDataset:
		if !slices.Contains(datasetKeys, key) {
			return "", "", attrSpec{}, searchErrorf("Invalid dataset key '%s' specified. Valid keys are '%s'", key, pySet(datasetKeys...))
		}
	}
	return entity, key, spec, nil
}

// comparison checks a clause of a run (or logged model) filter.
func (g runGrammar) comparison(c clause) (Comparison, error) {
	entity, key, spec, err := runIdentifier(c.name, g.attrs)
	if err != nil {
		return Comparison{}, err
	}
	if isNullOp(c.op) {
		if entity != EntityTag && entity != EntityParam {
			return Comparison{}, searchErrorf("IS NULL / IS NOT NULL is only supported for tags and params, not for %s '%s'", mlflowEntityName[entity], key)
		}
		return Comparison{Entity: entity, Key: key, Op: c.op}, nil
	}
	var val any
	var ops opSet
	switch entity {
	case EntityMetric:
		val, err = numberOf(c.val, searchErrorf("Expected numeric value type for metric. Found %s", c.val.raw))
		ops = numericOps
	case EntityParam, EntityTag:
		val, err = stringOf(c.val, searchErrorf("Expected a quoted string value for %s (e.g. 'my-value'). Got value %s", mlflowEntityName[entity], c.val.raw))
		ops = paramTagOps
	case EntityAttribute:
		switch {
		case spec.numeric:
			val, err = numberOf(c.val, searchErrorf("Expected numeric value type for numeric attribute: %s. Found %s", key, c.val.raw))
			ops = numericOps
		case c.val.kind == valList:
			if !g.anyList && spec.canonical != "run_id" {
				return Comparison{}, errOnlyRunIDList
			}
			val, err = listOf(c.val)
			ops = stringAttrOps
		default:
			val, err = stringOf(c.val, searchErrorf("Expected a quoted string value for attributes. Got value %s", c.val.raw))
			ops = stringAttrOps
		}
		key = spec.canonical
	case EntityDataset:
		if c.val.kind == valList {
			val, err = listOf(c.val)
		} else {
			val, err = stringOf(c.val, searchErrorf("Expected a quoted string value for dataset attributes. Got value %s", c.val.raw))
		}
		ops = stringAttrOps
	}
	if err != nil {
		return Comparison{}, err
	}
	if !slices.Contains(ops, c.op) {
		return Comparison{}, searchErrorf("Invalid comparator '%s' not one of '%s'", c.op, ops)
	}
	if err := checkListOp(c.op, c.val); err != nil {
		return Comparison{}, err
	}
	return Comparison{Entity: entity, Key: key, Op: c.op, Value: val}, nil
}

// runOrderTerm parses one order_by term of a run search.
func runOrderTerm(term string) (OrderBy, error) {
	name, asc, err := parseOrderByTerm(term)
	if err != nil {
		return OrderBy{}, err
	}
	entity, key, spec, err := runIdentifier(name, runOrderAttributes)
	if err != nil {
		return OrderBy{}, err
	}
	switch entity {
	case EntityDataset:
		return OrderBy{}, searchErrorf("Invalid identifier type '%s'", mlflowEntityName[entity])
	case EntityAttribute:
		key = spec.canonical
	}
	return OrderBy{Entity: entity, Key: key, Asc: asc}, nil
}

// ---------------------------------------------------------------------------
// Experiments and the registry

// scopedIdentifier splits the name of an experiment or registry field, whose
// prefix may only be attribute, tag or tags, into its entity and its key, the
// key still quoted as written.
func scopedIdentifier(name string) (entity, key string, err error) {
	prefix, key, dotted := strings.Cut(name, ".")
	if !dotted {
		return EntityAttribute, prefix, nil
	}
	switch prefix {
	case "attribute":
		return EntityAttribute, key, nil
	case "tag", "tags":
		return EntityTag, key, nil
	}
	return "", "", searchErrorf("Invalid entity type '%s'. Valid entity types are ('attribute', 'tag', 'tags')", prefix)
}

var (
	experimentSearchAttributes = map[string]attrSpec{
		"name": {"name", false}, "creation_time": {"creation_time", true}, "last_update_time": {"last_update_time", true},
	}
	experimentOrderAttributes = map[string]attrSpec{
		"name": {"name", false}, "experiment_id": {"experiment_id", true},
		"creation_time": {"creation_time", true}, "last_update_time": {"last_update_time", true},
	}
	registeredModelSearchAttributes = map[string]attrSpec{"name": {"name", false}}
	registeredModelOrderAttributes  = map[string]attrSpec{
		"name": {"name", false}, "timestamp": {"last_updated_timestamp", true},
		"last_updated_timestamp": {"last_updated_timestamp", true},
	}
	modelVersionSearchAttributes = map[string]attrSpec{
		"name": {"name", false}, "run_id": {"run_id", false}, "source_path": {"source_path", false},
		"version_number": {"version_number", true},
	}
	modelVersionOrderAttributes = map[string]attrSpec{
		"name": {"name", false}, "version_number": {"version_number", true},
		"creation_timestamp": {"creation_timestamp", true}, "last_updated_timestamp": {"last_updated_timestamp", true},
	}
)

// tagValue checks the value of a tag clause of an experiment or registry search.
func tagValue(v value) (string, error) {
	return stringOf(v, searchErrorf("Expected a quoted string value for tag (e.g. 'my-value'). Got value %s", v.raw))
}

// experimentComparison checks a clause of an experiment filter.
func experimentComparison(c clause) (Comparison, error) {
	entity, key, err := scopedIdentifier(c.name)
	if err != nil {
		return Comparison{}, err
	}
	key = unquoteKey(key)
	if entity == EntityTag {
		if isNullOp(c.op) {
			return Comparison{Entity: entity, Key: key, Op: c.op}, nil
		}
		s, err := tagValue(c.val)
		if err != nil {
			return Comparison{}, err
		}
		if !slices.Contains(stringOps, c.op) {
			return Comparison{}, searchErrorf("Invalid comparator for tag: %s", c.op)
		}
		return Comparison{Entity: entity, Key: key, Op: c.op, Value: s}, nil
	}
	spec, ok := experimentSearchAttributes[key]
	if !ok {
		return Comparison{}, invalidAttribute(key, experimentSearchAttributes)
	}
	if isNullOp(c.op) {
		return Comparison{}, searchErrorf("IS NULL / IS NOT NULL is only supported for tags, not for attribute '%s'", key)
	}
	if spec.numeric {
		f, err := numberOf(c.val, searchErrorf("Expected numeric value type for numeric attribute: %s. Found %s", key, c.val.raw))
		if err != nil {
			return Comparison{}, err
		}
		if !slices.Contains(numericOps, c.op) {
			return Comparison{}, searchErrorf("Invalid comparator for numeric attribute: %s", c.op)
		}
		return Comparison{Entity: entity, Key: spec.canonical, Op: c.op, Value: f}, nil
	}
	if c.val.kind == valList {
		return Comparison{}, errOnlyRunIDList
	}
	s, err := stringOf(c.val, searchErrorf("Expected a quoted string value for attributes. Got value %s", c.val.raw))
	if err != nil {
		return Comparison{}, err
	}
	if !slices.Contains(stringOps, c.op) {
		return Comparison{}, searchErrorf("Invalid comparator for string attribute: %s", c.op)
	}
	return Comparison{Entity: entity, Key: spec.canonical, Op: c.op, Value: s}, nil
}

// registryTagComparison checks a tag clause of a registry filter.
func registryTagComparison(c clause, key string) (Comparison, error) {
	var s string
	if !isNullOp(c.op) {
		var err error
		if s, err = tagValue(c.val); err != nil {
			return Comparison{}, err
		}
	}
	if !slices.Contains(stringOps, c.op) {
		return Comparison{}, searchErrorf("Invalid comparator for tag: %s", c.op)
	}
	return Comparison{Entity: EntityTag, Key: unquoteKey(key), Op: c.op, Value: s}, nil
}

// registryAttribute resolves an attribute key of a registry filter. MLflow
// checks these keys before removing quotes, so a quoted key is unknown.
func registryAttribute(key string, attrs map[string]attrSpec) (attrSpec, error) {
	spec, ok := attrs[key]
	if !ok {
		return attrSpec{}, invalidAttribute(key, attrs)
	}
	return spec, nil
}

// registeredModelComparison checks a clause of a registered model filter.
func registeredModelComparison(c clause) (Comparison, error) {
	entity, key, err := scopedIdentifier(c.name)
	if err != nil {
		return Comparison{}, err
	}
	if entity == EntityTag {
		return registryTagComparison(c, key)
	}
	spec, err := registryAttribute(key, registeredModelSearchAttributes)
	if err != nil {
		return Comparison{}, err
	}
	var s string
	if !isNullOp(c.op) {
		if c.val.kind == valList {
			return Comparison{}, errOnlyRunIDList
		}
		s, err = stringOf(c.val, searchErrorf("Expected a quoted string value or a list of quoted string values for attributes. Got value %s", c.val.raw))
		if err != nil {
			return Comparison{}, err
		}
	}
	if !slices.Contains(stringOps, c.op) {
		return Comparison{}, searchErrorf("Invalid comparator for attribute: %s", c.op)
	}
	return Comparison{Entity: entity, Key: spec.canonical, Op: c.op, Value: s}, nil
}

// modelVersionComparison checks a clause of a model version filter.
func modelVersionComparison(c clause) (Comparison, error) {
	entity, key, err := scopedIdentifier(c.name)
	if err != nil {
		return Comparison{}, err
	}
	if entity == EntityTag {
		return registryTagComparison(c, key)
	}
	spec, err := registryAttribute(key, modelVersionSearchAttributes)
	if err != nil {
		return Comparison{}, err
	}
	if spec.numeric {
		if c.val.kind == valList {
			return Comparison{}, errOnlyRunIDList
		}
		var f float64
		if !isNullOp(c.op) {
			if f, err = versionNumber(c.val); err != nil {
				return Comparison{}, err
			}
		}
		if !slices.Contains(numericOps, c.op) {
			return Comparison{}, searchErrorf("Invalid comparator for attribute %s: %s", spec.canonical, c.op)
		}
		return Comparison{Entity: entity, Key: spec.canonical, Op: c.op, Value: f}, nil
	}
	var val any
	switch {
	case isNullOp(c.op):
	case c.val.kind == valList:
		if spec.canonical != "run_id" {
			return Comparison{}, errOnlyRunIDList
		}
		val, err = listOf(c.val)
	case c.val.kind == valNumber:
		err = searchErrorf("Only the '%s' attributes support comparison with numeric values.",
			pySet("version_number", "creation_timestamp", "last_updated_timestamp"))
	default:
		val, err = stringOf(c.val, searchErrorf("Expected a quoted string value or a list of quoted string values for attributes. Got value %s", c.val.raw))
	}
	if err != nil {
		return Comparison{}, err
	}
	ops := stringOps
	if spec.canonical == "run_id" {
		ops = opSet{OpEq, OpNe, OpLike, OpILike, OpIn}
	}
	if !slices.Contains(ops, c.op) {
		return Comparison{}, searchErrorf("Invalid comparator for attribute: %s", c.op)
	}
	if err := checkListOp(c.op, c.val); err != nil {
		return Comparison{}, err
	}
	return Comparison{Entity: entity, Key: spec.canonical, Op: c.op, Value: val}, nil
}

// versionNumber returns the value of a version_number clause: a number, or a
// quoted number, which MLflow's SQL store compares as a number too.
func versionNumber(v value) (float64, error) {
	mismatch := searchErrorf("Expected numeric value type for numeric attribute: version_number. Found %s", v.raw)
	if v.kind == valString {
		if n := numberLen(v.text); n > 0 && n == len(v.text) {
			return numberOf(value{kind: valNumber, raw: v.text}, mismatch)
		}
		return 0, mismatch
	}
	if v.kind == valName {
		_, err := stringOf(v, mismatch)
		return 0, err
	}
	return numberOf(v, mismatch)
}

// ---------------------------------------------------------------------------
// order_by

// parseOrderByList parses each term with parse; with unique, a field named
// twice is an error, as in MLflow's SQL stores.
func parseOrderByList(terms []string, parse func(string) (OrderBy, error), unique bool) ([]OrderBy, error) {
	var out []OrderBy
	for _, term := range terms {
		o, err := parse(term)
		if err != nil {
			return nil, err
		}
		if unique && slices.ContainsFunc(out, func(p OrderBy) bool { return p.Entity == o.Entity && p.Key == o.Key }) {
			return nil, searchErrorf("`order_by` contains duplicate fields: %s", pyList(terms))
		}
		out = append(out, o)
	}
	return out, nil
}

// pyList renders strings as Python prints a list of them: ['a', 'b'].
func pyList(items []string) string {
	quoted := make([]string, len(items))
	for i, s := range items {
		quoted[i] = "'" + s + "'"
	}
	return "[" + strings.Join(quoted, ", ") + "]"
}

// parseOrderByTerm splits an order_by term into its field name and
// direction: a name, then optionally whitespace and ASC or DESC (any case),
// with no whitespace around the term.
func parseOrderByTerm(term string) (name string, asc bool, err error) {
	unparsable := searchErrorf("Invalid order_by clause '%s'. Could not be parsed.", term)
	p := &parser{src: term, toks: lex(term)}
	if !p.atName() || p.peek().spaced {
		return "", false, unparsable
	}
	name = p.name()
	t := p.next()
	switch {
	case t.kind == tokEOF && !t.spaced:
		return name, true, nil
	case t.kind == tokWord && t.spaced && p.peek().kind == tokEOF && !p.peek().spaced:
		switch strings.ToLower(t.text) {
		case "asc":
			return name, true, nil
		case "desc":
			return name, false, nil
		}
		if name == "timestamp" { // a builtin to sqlparse, so never an alias
			return "", false, unparsable
		}
		return "", false, searchErrorf("Invalid ordering key in order_by clause '%s'.", term)
	}
	return "", false, unparsable
}

// scopedOrderTerm parses an order_by term of an experiment or registry
// search, which orders by attributes only. MLflow's experiment and model
// version searches report an unknown key as an "Invalid attribute key", the
// registered model search as an "Invalid order by key" (orderKeyMessage).
func scopedOrderTerm(term string, attrs map[string]attrSpec, orderKeyMessage bool) (OrderBy, error) {
	name, asc, err := parseOrderByTerm(term)
	if err != nil {
		return OrderBy{}, err
	}
	entity, key, err := scopedIdentifier(name)
	if err != nil {
		return OrderBy{}, err
	}
	key = unquoteKey(key)
	if entity != EntityAttribute {
		return OrderBy{}, searchErrorf("Invalid order_by entity: %s", entity)
	}
	spec, ok := attrs[key]
	if !ok {
		if orderKeyMessage {
			return OrderBy{}, searchErrorf("Invalid order by key '%s' specified. Valid keys are '%s'", key, pySet(attrNames(attrs)...))
		}
		return OrderBy{}, invalidAttribute(key, attrs)
	}
	return OrderBy{Entity: EntityAttribute, Key: spec.canonical, Asc: asc}, nil
}

// experimentOrderTerm parses one order_by term of an experiment search.
func experimentOrderTerm(term string) (OrderBy, error) {
	return scopedOrderTerm(term, experimentOrderAttributes, false)
}

// registeredModelOrderTerm parses one order_by term of a registered model search.
func registeredModelOrderTerm(term string) (OrderBy, error) {
	return scopedOrderTerm(term, registeredModelOrderAttributes, true)
}

// modelVersionOrderTerm parses one order_by term of a model version search.
func modelVersionOrderTerm(term string) (OrderBy, error) {
	return scopedOrderTerm(term, modelVersionOrderAttributes, false)
}
