package tracking_test

import (
	"errors"
	"math"
	"slices"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/tracking"
)

// The fuzz targets check, for any input, that a parser never panics, that
// every error is an EINVALID *mloop.Error, and that whatever parses only
// uses the entities, keys, operators and value types its search allows.
// The allowances below restate MLflow's rules independently of the parser.

// fieldRule is what a search allows on one field.
type fieldRule struct {
	ops     []string
	numeric bool // values are float64; otherwise string, or []string for IN and NOT IN
}

// searchRules maps entity, then key ("*" for any key), to its rule.
type searchRules map[string]map[string]fieldRule

var (
	fuzzNumericOps = []string{tracking.OpEq, tracking.OpNe, tracking.OpLt, tracking.OpLe, tracking.OpGt, tracking.OpGe}
	fuzzStringOps  = []string{tracking.OpEq, tracking.OpNe, tracking.OpLike, tracking.OpILike}
	fuzzNullOps    = append(slices.Clone(fuzzStringOps), tracking.OpIsNull, tracking.OpIsNotNull)
	fuzzListOps    = append(slices.Clone(fuzzStringOps), tracking.OpIn, tracking.OpNotIn)
	numericField   = fieldRule{ops: fuzzNumericOps, numeric: true}
	stringField    = fieldRule{ops: fuzzStringOps}
)

var runRules = searchRules{
	entMetric: {"*": numericField},
	entParam:  {"*": {ops: fuzzNullOps}},
	entTag:    {"*": {ops: fuzzNullOps}},
	entAttr: {
		"run_id": {ops: fuzzListOps}, "run_name": stringField, "status": stringField,
		"user_id": stringField, "artifact_uri": stringField,
		"start_time": numericField, "end_time": numericField,
	},
	entData: {"name": {ops: fuzzListOps}, "digest": {ops: fuzzListOps}, "context": {ops: fuzzListOps}},
}

var loggedModelRules = searchRules{
	entMetric: runRules[entMetric],
	entParam:  runRules[entParam],
	entTag:    runRules[entTag],
	entData:   runRules[entData],
	entAttr: {
		"name": {ops: fuzzListOps}, "model_id": {ops: fuzzListOps}, "model_type": {ops: fuzzListOps},
		"status": {ops: fuzzListOps}, "source_run_id": {ops: fuzzListOps},
		"creation_timestamp": numericField, "creation_time": numericField,
		"last_updated_timestamp": numericField, "last_updated_time": numericField,
	},
}

var experimentRules = searchRules{
	entTag:  {"*": {ops: fuzzNullOps}},
	entAttr: {"name": stringField, "creation_time": numericField, "last_update_time": numericField},
}

var registeredModelRules = searchRules{
	entTag:  {"*": stringField},
	entAttr: {"name": stringField},
}

var modelVersionRules = searchRules{
	entTag: {"*": stringField},
	entAttr: {
		"name": stringField, "source_path": stringField, "version_number": numericField,
		"run_id": {ops: append(slices.Clone(fuzzStringOps), tracking.OpIn)},
	},
}

// orderRules maps entity, then key ("*" for any key), to whether a search
// may order by it.
type orderRules map[string]map[string]bool

var (
	runOrderRules = orderRules{
		entMetric: {"*": true}, entParam: {"*": true}, entTag: {"*": true},
		entAttr: {"run_id": true, "run_name": true, "status": true, "user_id": true,
			"artifact_uri": true, "start_time": true, "end_time": true},
	}
	experimentOrderRules = orderRules{
		entAttr: {"name": true, "experiment_id": true, "creation_time": true, "last_update_time": true},
	}
	registeredModelOrderRules = orderRules{
		entAttr: {"name": true, "last_updated_timestamp": true},
	}
	modelVersionOrderRules = orderRules{
		entAttr: {"name": true, "version_number": true, "creation_timestamp": true, "last_updated_timestamp": true},
	}
)

// checkSearchError fails t unless err is an EINVALID *mloop.Error.
func checkSearchError(t *testing.T, input string, err error) {
	t.Helper()
	var e *mloop.Error
	if !errors.As(err, &e) || e.Code != mloop.EINVALID || e.Message == "" {
		t.Fatalf("input %q: got error %#v, want an *mloop.Error of kind %q with a message", input, err, mloop.EINVALID)
	}
}

// checkComparison fails t unless c is allowed by rules.
func checkComparison(t *testing.T, input string, rules searchRules, c tracking.Comparison) {
	t.Helper()
	keys, ok := rules[c.Entity]
	if !ok {
		t.Fatalf("input %q: got entity %q, want one of the search's entities", input, c.Entity)
	}
	rule, ok := keys[c.Key]
	if !ok {
		if rule, ok = keys["*"]; !ok {
			t.Fatalf("input %q: got %s key %q, want one of the search's keys", input, c.Entity, c.Key)
		}
	}
	if !slices.Contains(rule.ops, c.Op) {
		t.Fatalf("input %q: got operator %q on %s %q, want one of %v", input, c.Op, c.Entity, c.Key, rule.ops)
	}
	switch v := c.Value.(type) {
	case nil:
		if c.Op != tracking.OpIsNull && c.Op != tracking.OpIsNotNull {
			t.Fatalf("input %q: got no value for operator %q, want one", input, c.Op)
		}
	case []string:
		if (c.Op != tracking.OpIn && c.Op != tracking.OpNotIn) || len(v) == 0 {
			t.Fatalf("input %q: got list %q with operator %q, want a non-empty list with IN or NOT IN", input, v, c.Op)
		}
	case float64:
		if !rule.numeric || math.IsNaN(v) {
			t.Fatalf("input %q: got number %v for %s %q, want a numeric field and no NaN", input, v, c.Entity, c.Key)
		}
	case string:
		if rule.numeric || c.Op == tracking.OpIn || c.Op == tracking.OpNotIn || c.Op == tracking.OpIsNull || c.Op == tracking.OpIsNotNull {
			t.Fatalf("input %q: got string %q with operator %q on %s %q, want a string field and a scalar operator", input, v, c.Op, c.Entity, c.Key)
		}
	default:
		t.Fatalf("input %q: got value %#v of type %T, want float64, string, []string or nil", input, v, v)
	}
}

// fuzzFilter fuzzes parse, seeded with the inputs of the table tests.
func fuzzFilter(f *testing.F, parse func(string) (tracking.Filter, error), rules searchRules, cases []searchFilterCase, errs []searchErrorCase) {
	for _, c := range cases {
		f.Add(c.in)
	}
	for _, c := range errs {
		f.Add(c.in)
	}
	f.Fuzz(func(t *testing.T, input string) {
		got, err := parse(input)
		if err != nil {
			checkSearchError(t, input, err)
			if got != nil {
				t.Fatalf("input %q: got filter %v alongside error %v, want nil", input, got, err)
			}
			return
		}
		for _, c := range got {
			checkComparison(t, input, rules, c)
		}
	})
}

func FuzzParseRunFilter(f *testing.F) {
	fuzzFilter(f, tracking.ParseRunFilter, runRules, runFilterCases, runFilterErrors)
}

func FuzzParseLoggedModelFilter(f *testing.F) {
	fuzzFilter(f, tracking.ParseLoggedModelFilter, loggedModelRules, loggedModelFilterCases, loggedModelFilterErrors)
}

func FuzzParseExperimentFilter(f *testing.F) {
	fuzzFilter(f, tracking.ParseExperimentFilter, experimentRules, experimentFilterCases, experimentFilterErrors)
}

func FuzzParseRegisteredModelFilter(f *testing.F) {
	fuzzFilter(f, tracking.ParseRegisteredModelFilter, registeredModelRules, registeredModelFilterCases, registeredModelFilterErrors)
}

func FuzzParseModelVersionFilter(f *testing.F) {
	fuzzFilter(f, tracking.ParseModelVersionFilter, modelVersionRules, modelVersionFilterCases, modelVersionFilterErrors)
}

// fuzzOrderBy fuzzes parse with two terms, seeded with the table tests.
func fuzzOrderBy(f *testing.F, parse func([]string) ([]tracking.OrderBy, error), rules orderRules, cases []searchOrderCase, errs []searchErrorCase) {
	for _, c := range cases {
		for _, term := range c.in {
			f.Add(term, "name")
		}
	}
	for _, c := range errs {
		f.Add(c.in, "status DESC")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, terms := range [][]string{{a}, {a, b}} {
			got, err := parse(terms)
			if err != nil {
				checkSearchError(t, a+"\x00"+b, err)
				continue
			}
			if len(got) != len(terms) {
				t.Fatalf("terms %q: got %d orderings %+v, want %d", terms, len(got), got, len(terms))
			}
			for _, o := range got {
				if keys := rules[o.Entity]; !keys[o.Key] && !keys["*"] {
					t.Fatalf("terms %q: got ordering by %s %q, want one the search allows", terms, o.Entity, o.Key)
				}
			}
		}
	})
}

func FuzzParseRunOrderBy(f *testing.F) {
	fuzzOrderBy(f, tracking.ParseRunOrderBy, runOrderRules, runOrderCases, runOrderErrors)
}

func FuzzParseExperimentOrderBy(f *testing.F) {
	fuzzOrderBy(f, tracking.ParseExperimentOrderBy, experimentOrderRules, experimentOrderCases, experimentOrderErrors)
}

func FuzzParseRegisteredModelOrderBy(f *testing.F) {
	fuzzOrderBy(f, tracking.ParseRegisteredModelOrderBy, registeredModelOrderRules, registeredModelOrderCases, registeredModelOrderErrors)
}

func FuzzParseModelVersionOrderBy(f *testing.F) {
	fuzzOrderBy(f, tracking.ParseModelVersionOrderBy, modelVersionOrderRules, modelVersionOrderCases, modelVersionOrderErrors)
}
