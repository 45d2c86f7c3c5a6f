package tracking_test

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/tracking"
)

// The cases below are ported from MLflow's tests/utils/test_search_utils.py
// (and the registry and store tests that exercise the same grammar), with
// mloop's canonical entities, keys and typed values.

// searchFilterCase is a filter that parses.
type searchFilterCase struct {
	in   string
	want tracking.Filter
}

// searchErrorCase is a filter or order_by term that fails; err is a part of the
// EINVALID message, usually the part MLflow's tests assert.
type searchErrorCase struct {
	in  string
	err string
}

// cmp builds a Comparison.
func cmpOf(entity, key, op string, value any) tracking.Comparison {
	return tracking.Comparison{Entity: entity, Key: key, Op: op, Value: value}
}

const (
	entMetric = tracking.EntityMetric
	entParam  = tracking.EntityParam
	entTag    = tracking.EntityTag
	entAttr   = tracking.EntityAttribute
	entData   = tracking.EntityDataset
)

var runFilterCases = []searchFilterCase{
	{"", nil},
	{"   \n\t", nil},
	{"metric.acc >= 0.94", tracking.Filter{cmpOf(entMetric, "acc", ">=", 0.94)}},
	{"metric.acc>=100", tracking.Filter{cmpOf(entMetric, "acc", ">=", 100.0)}},
	{"params.m!='tf'", tracking.Filter{cmpOf(entParam, "m", "!=", "tf")}},
	{`params."m"!="tf"`, tracking.Filter{cmpOf(entParam, "m", "!=", "tf")}},
	{`metric."legit name" >= 0.243`, tracking.Filter{cmpOf(entMetric, "legit name", ">=", 0.243)}},
	{"metrics.XYZ = 3", tracking.Filter{cmpOf(entMetric, "XYZ", "=", 3.0)}},
	{`params."cat dog" = "pets"`, tracking.Filter{cmpOf(entParam, "cat dog", "=", "pets")}},
	{`metrics."X-Y-Z" = 3`, tracking.Filter{cmpOf(entMetric, "X-Y-Z", "=", 3.0)}},
	{`metrics."X//Y#$$@&Z" = 3`, tracking.Filter{cmpOf(entMetric, "X//Y#$$@&Z", "=", 3.0)}},
	{"params.model = 'LinearRegression'", tracking.Filter{cmpOf(entParam, "model", "=", "LinearRegression")}},
	{"metrics.rmse < 1 and params.model_class = 'LR'", tracking.Filter{
		cmpOf(entMetric, "rmse", "<", 1.0), cmpOf(entParam, "model_class", "=", "LR")}},
	{"`metric`.a >= 0.1", tracking.Filter{cmpOf(entMetric, "a", ">=", 0.1)}},
	{"tags.version = 'commit-hash'", tracking.Filter{cmpOf(entTag, "version", "=", "commit-hash")}},
	{"`tags`.source_name = 'a notebook'", tracking.Filter{cmpOf(entTag, "source_name", "=", "a notebook")}},
	{`metrics."accuracy.2.0" > 5`, tracking.Filter{cmpOf(entMetric, "accuracy.2.0", ">", 5.0)}},
	{"metrics.`spacey name` > 5", tracking.Filter{cmpOf(entMetric, "spacey name", ">", 5.0)}},
	{`params."p.a.r.a.m" != "a"`, tracking.Filter{cmpOf(entParam, "p.a.r.a.m", "!=", "a")}},
	{`tags."t.a.g" = "a"`, tracking.Filter{cmpOf(entTag, "t.a.g", "=", "a")}},
	{"attribute.artifact_uri = '1/23/4'", tracking.Filter{cmpOf(entAttr, "artifact_uri", "=", "1/23/4")}},
	{"attribute.start_time >= 1234", tracking.Filter{cmpOf(entAttr, "start_time", ">=", 1234.0)}},
	{"run.status = 'RUNNING'", tracking.Filter{cmpOf(entAttr, "status", "=", "RUNNING")}},
	{"dataset.name = 'my_dataset'", tracking.Filter{cmpOf(entData, "name", "=", "my_dataset")}},
	{"tags.version IS NULL", tracking.Filter{cmpOf(entTag, "version", "IS NULL", nil)}},
	{"tags.version is not null", tracking.Filter{cmpOf(entTag, "version", "IS NOT NULL", nil)}},
	{"params.lr IS NULL", tracking.Filter{cmpOf(entParam, "lr", "IS NULL", nil)}},
	{"params.lr IS NOT NULL", tracking.Filter{cmpOf(entParam, "lr", "IS NOT NULL", nil)}},
	{"tags.a IS NULL AND params.b = 'val'", tracking.Filter{
		cmpOf(entTag, "a", "IS NULL", nil), cmpOf(entParam, "b", "=", "val")}},
	// test_correct_quote_trimming
	{"params.m = 'LR'", tracking.Filter{cmpOf(entParam, "m", "=", "LR")}},
	{`params.m = "LR"`, tracking.Filter{cmpOf(entParam, "m", "=", "LR")}},
	{`params.m = "L'Hosp"`, tracking.Filter{cmpOf(entParam, "m", "=", "L'Hosp")}},
	// Quoted text is kept as written between its quotes, as MLflow does.
	{"params.m = 'L''Hosp'", tracking.Filter{cmpOf(entParam, "m", "=", "L''Hosp")}},
	{`params.m = 'a\'b'`, tracking.Filter{cmpOf(entParam, "m", "=", `a\'b`)}},
	{"tags.`a``b` = 'x'", tracking.Filter{cmpOf(entTag, "a``b", "=", "x")}},
	// The first dot separates the prefix; later dots belong to the key.
	{"tags.mlflow.runName = 'fancy-run'", tracking.Filter{cmpOf(entTag, "mlflow.runName", "=", "fancy-run")}},
	{"tags.in = 'x'", tracking.Filter{cmpOf(entTag, "in", "=", "x")}},
	{"metrics.1abc > 1", tracking.Filter{cmpOf(entMetric, "1abc", ">", 1.0)}},
	{"metrics.准确率 > 0.9", tracking.Filter{cmpOf(entMetric, "准确率", ">", 0.9)}},
	// Attributes: prefixes, aliases, bare and quoted names.
	{"status = 'FAILED'", tracking.Filter{cmpOf(entAttr, "status", "=", "FAILED")}},
	{"attributes.created > 5", tracking.Filter{cmpOf(entAttr, "start_time", ">", 5.0)}},
	{"attr.end_time <= 7", tracking.Filter{cmpOf(entAttr, "end_time", "<=", 7.0)}},
	{"attributes.`Run Name` = 'x'", tracking.Filter{cmpOf(entAttr, "run_name", "=", "x")}},
	{`"run name" LIKE 'x%'`, tracking.Filter{cmpOf(entAttr, "run_name", "LIKE", "x%")}},
	{"attributes.user_id ilike 'BOB'", tracking.Filter{cmpOf(entAttr, "user_id", "ILIKE", "BOB")}},
	{"attributes.run_id IN ('a', 'b')", tracking.Filter{cmpOf(entAttr, "run_id", "IN", []string{"a", "b"})}},
	{`attr.run_id not in ("a")`, tracking.Filter{cmpOf(entAttr, "run_id", "NOT IN", []string{"a"})}},
	// Datasets.
	{`datasets.digest IN ('d1', "d2",)`, tracking.Filter{cmpOf(entData, "digest", "IN", []string{"d1", "d2"})}},
	{"datasets.context LIKE 'tr%'", tracking.Filter{cmpOf(entData, "context", "LIKE", "tr%")}},
	{"datasets.name NOT IN ('a','b') AND datasets.name != 'c'", tracking.Filter{
		cmpOf(entData, "name", "NOT IN", []string{"a", "b"}), cmpOf(entData, "name", "!=", "c")}},
	// Numbers.
	{"metrics.loss < -1.5e-3", tracking.Filter{cmpOf(entMetric, "loss", "<", -0.0015)}},
	{"metrics.a > .5", tracking.Filter{cmpOf(entMetric, "a", ">", 0.5)}},
	{"metrics.a>-.5", tracking.Filter{cmpOf(entMetric, "a", ">", -0.5)}},
	{"metrics.a > 5.", tracking.Filter{cmpOf(entMetric, "a", ">", 5.0)}},
	{"metrics.a < 1E400", tracking.Filter{cmpOf(entMetric, "a", "<", math.Inf(1))}},
	// Like sqlparse, MLflow accepts stray ANDs and clauses without AND.
	{"AND metrics.a > 1 AND AND", tracking.Filter{cmpOf(entMetric, "a", ">", 1.0)}},
	{"metrics.a > 1 metrics.b < 2", tracking.Filter{cmpOf(entMetric, "a", ">", 1.0), cmpOf(entMetric, "b", "<", 2.0)}},
}

var runFilterErrors = []searchErrorCase{
	{"metric.acc >= 0.94; metrics.rmse < 1", "Search filter contained multiple expression 'metric.acc >= 0.94; metrics.rmse < 1'. Provide AND-ed expression list."},
	{"metrics.a > 1;", "Invalid clause(s) in filter string: ';'"},
	{"m.acc >= 0.94", "Invalid entity type 'm'. Valid values are ['metric', 'parameter', 'tag', 'attribute', 'dataset']"},
	{"acc >= 0.94", "Invalid attribute key 'acc' specified. Valid keys are '{'Created', 'Run Name', 'Run name', 'artifact_uri', 'created', 'end_time', 'run name', 'run_id', 'run_name', 'start_time', 'status', 'user_id'}'"},
	{"p.model >= 'LR'", "Invalid entity type"},
	{"attri.x != 1", "Invalid entity type"},
	{"a.x != 1", "Invalid entity type"},
	{"model >= 'LR'", "Invalid attribute key"},
	{"metrics.A > 0.1 OR params.B = 'LR'", "Invalid clause(s) in filter string: 'OR'"},
	{"metrics.A > 0.1 NAND params.B = 'LR'", "Invalid clause(s) in filter string"},
	{"metrics.A > 0.1 AND (params.B = 'LR')", "Invalid clause(s) in filter string: '('"},
	{"`metrics.A > 0.1", "Invalid clause(s) in filter string"},
	{"param`.A > 0.1", "Invalid clause(s) in filter string"},
	{"`dummy.A > 0.1", "Invalid clause(s) in filter string"},
	{"dummy`.A > 0.1", "Invalid clause(s) in filter string"},
	{"attribute.start != 1", "Invalid attribute key 'start'"},
	{"attribute.experiment_id != 1", "Invalid attribute key 'experiment_id'"},
	{"attribute.lifecycle_stage = 'ACTIVE'", "Invalid attribute key 'lifecycle_stage'"},
	{"attribute.name != 1", "Invalid attribute key 'name'"},
	{"attribute.time != 1", "Invalid attribute key 'time'"},
	{"attribute._status != 'RUNNING'", "Invalid attribute key '_status'"},
	{"attribute.run_uuid = 'a'", "Invalid attribute key 'run_uuid'"},
	{"attribute.status = true", "Invalid clause(s) in filter string: 'attribute.status = true'"},
	{"dataset.status = 'true'", "Invalid dataset key 'status' specified. Valid keys are '{'context', 'digest', 'name'}'"},
	{"dataset.profile = 'num_rows: 10'", "Invalid dataset key"},
	{"metrics.acc IS NULL", "IS NULL / IS NOT NULL is only supported for tags and params"},
	{"attribute.status IS NULL", "IS NULL / IS NOT NULL is only supported for tags and params"},
	{"datasets.name IS NOT NULL", "IS NULL / IS NOT NULL is only supported for tags and params"},
	// test_error_comparison_clauses
	{"metric.model = 'LR'", "Expected numeric value type for metric. Found 'LR'"},
	{"metric.model = '5'", "Expected numeric value type for metric"},
	{"params.acc = 5", "Expected a quoted string value for parameter (e.g. 'my-value'). Got value 5"},
	{"tags.acc = 5", "Expected a quoted string value for tag"},
	{"metrics.acc != metrics.acc", "Expected numeric value type for metric. Found metrics.acc"},
	{"metrics.a > 0x1F", "Expected numeric value type for metric. Found 0x1F"},
	{"1.0 > metrics.acc", "Invalid comparison clause. Expected 'Identifier' found '1.0'"},
	{"attribute.status = 1", "Expected a quoted string value for attributes. Got value 1"},
	{"attributes.start_time = 'now'", "Expected numeric value type for numeric attribute: start_time. Found 'now'"},
	{"datasets.name = 5", "Expected a quoted string value for dataset attributes. Got value 5"},
	// test_bad_quotes
	{"params.acc = LR", "Parameter value is either not quoted or unidentified quote types used for string value LR. Use either single or double quotes."},
	{"tags.acc = LR", "value is either not quoted or unidentified quote types"},
	{"params.acc = `LR`", "value is either not quoted or unidentified quote types"},
	{"params.'acc = LR", "Invalid clause(s) in filter string"},
	{"params.acc = 'LR", "Invalid clause(s) in filter string"},
	{"params.acc = LR'", "Invalid clause(s) in filter string"},
	{"params.acc = \"LR'", "Invalid clause(s) in filter string"},
	{"tags.acc = \"LR'", "Invalid clause(s) in filter string"},
	{"tags.acc = = 'LR'", "Invalid clause(s) in filter string"},
	{"attribute.status IS 'RUNNING'", "Invalid clause(s) in filter string: 'attribute.status IS 'RUNNING''"},
	// test_invalid_clauses
	{"params.acc LR !=", "Invalid clause(s) in filter string: 'params.acc LR'"},
	{"params.acc LR", "Invalid clause(s) in filter string"},
	{"metric.acc !=", "Invalid clause(s) in filter string: 'metric.acc !='"},
	{"acc != 1.0", "Invalid attribute key"},
	{"foo is null", "Invalid attribute key 'foo'"},
	{"1=1", "Expected 'Identifier' found '1'"},
	{"1==2", "Expected 'Identifier' found"},
	{"'a' = 'b'", "Expected 'Identifier' found ''a''"},
	{"params.a = 'x' 'y'", "Invalid clause(s) in filter string"},
	{"metrics.12 > 1", "Invalid clause(s) in filter string"},
	{"metrics. > 1", "Invalid clause(s) in filter string"},
	{"metrics.a > 1 -- comment", "Invalid clause(s) in filter string"},
	// test_bad_comparators
	{"metrics.abc ~ 1.0", "Invalid comparator '~' not one of '{'!=', '<', '<=', '=', '>', '>='}'"},
	{"metrics.abc ~= 1.0", "Invalid comparator '~='"},
	{"metrics.abc == 1.0", "Invalid comparator '=='"},
	{"metrics.abc LIKE 1.0", "Invalid comparator 'LIKE'"},
	{"metrics.abc NOT LIKE 1.0", "Invalid comparator 'NOT LIKE'"},
	{"params.abc > 'my-param-value'", "Invalid comparator '>' not one of '{'!=', '=', 'ILIKE', 'IS NOT NULL', 'IS NULL', 'LIKE'}'"},
	{"params.abc <= 'my-param-value'", "Invalid comparator '<='"},
	{"params.abc RLIKE 'x'", "Invalid comparator 'RLIKE'"},
	{"tags.abc >= 'my-tag-value'", "Invalid comparator '>='"},
	{"tags.abc IN ('a')", "Expected a quoted string value for tag (e.g. 'my-value'). Got value ('a')"},
	{"attributes.status > 'my-tag-value'", "Invalid comparator '>' not one of '{'!=', '=', 'ILIKE', 'IN', 'LIKE', 'NOT IN'}'"},
	{"attributes.start_time LIKE 1234", "Invalid comparator 'LIKE'"},
	{"attributes.start_time ILIKE 1234", "Invalid comparator 'ILIKE'"},
	{"datasets.name < 'my-dataset-name'", "Invalid comparator '<'"},
	// Lists.
	{"attributes.run_name IN ('foo','bar')", "Only the 'run_id' attribute supports comparison with a list of quoted string values."},
	{"attributes.run_id IN ()", "expected a non-empty list of string values, but got empty list"},
	{"attributes.run_id IN ('a' 'b')", "but got ill-formed list"},
	{"attributes.run_id IN ('a',,'b')", "but got ill-formed list"},
	{"attributes.run_id IN (('a'))", "but got ill-formed list"},
	{"attributes.run_id IN ('a', 1)", "but got different type in list: ('a', 1)"},
	{"attributes.run_id IN ('a'", "Invalid clause(s) in filter string"},
	{"attributes.run_id IN 'a'", "Invalid clause(s) in filter string"},
	{"attributes.run_id = ('a')", "Invalid comparator '=' for a list of values"},
}

var experimentFilterCases = []searchFilterCase{
	{"", nil},
	{"name = 'a'", tracking.Filter{cmpOf(entAttr, "name", "=", "a")}},
	{"attribute.name LIKE 'x%'", tracking.Filter{cmpOf(entAttr, "name", "LIKE", "x%")}},
	{"`name` ilike 'X%'", tracking.Filter{cmpOf(entAttr, "name", "ILIKE", "X%")}},
	{"creation_time > 5", tracking.Filter{cmpOf(entAttr, "creation_time", ">", 5.0)}},
	{"attribute.last_update_time <= 10", tracking.Filter{cmpOf(entAttr, "last_update_time", "<=", 10.0)}},
	{"tags.k = 'v'", tracking.Filter{cmpOf(entTag, "k", "=", "v")}},
	{`tag.` + "`k.x`" + ` != "v"`, tracking.Filter{cmpOf(entTag, "k.x", "!=", "v")}},
	{"tags.k IS NULL and tag.j IS NOT NULL", tracking.Filter{cmpOf(entTag, "k", "IS NULL", nil), cmpOf(entTag, "j", "IS NOT NULL", nil)}},
	{"name ILIKE '%A%' AND tags.k LIKE 'v'", tracking.Filter{cmpOf(entAttr, "name", "ILIKE", "%A%"), cmpOf(entTag, "k", "LIKE", "v")}},
}

var experimentFilterErrors = []searchErrorCase{
	{"attributes.name = 'x'", "Invalid entity type 'attributes'. Valid entity types are ('attribute', 'tag', 'tags')"},
	{"params.x = 'a'", "Invalid entity type 'params'"},
	{"`tags`.x = 'a'", "Invalid entity type '`tags`'"},
	{"foo = 'x'", "Invalid attribute key 'foo' specified. Valid keys are '{'creation_time', 'last_update_time', 'name'}'"},
	{"experiment_id = '1'", "Invalid attribute key 'experiment_id'"},
	{"name > 'x'", "Invalid comparator for string attribute: >"},
	{"creation_time LIKE 5", "Invalid comparator for numeric attribute: LIKE"},
	{"tags.k > 'a'", "Invalid comparator for tag: >"},
	{"creation_time = 'x'", "Expected numeric value type for numeric attribute: creation_time. Found 'x'"},
	{"name = 5", "Expected a quoted string value for attributes. Got value 5"},
	{"name = x", "value is either not quoted"},
	{"tags.k = 5", "Expected a quoted string value for tag (e.g. 'my-value'). Got value 5"},
	{"name IN ('a')", "Only the 'run_id' attribute supports comparison with a list of quoted string values."},
	{"name IS NULL", "IS NULL / IS NOT NULL is only supported for tags"},
	{"name = 'a' OR name = 'b'", "Invalid clause(s) in filter string: 'OR'"},
	{"name = 'a'; name = 'b'", "Search filter contained multiple expression"},
}

var registeredModelFilterCases = []searchFilterCase{
	{"", nil},
	{"name = 'm'", tracking.Filter{cmpOf(entAttr, "name", "=", "m")}},
	{"name LIKE 'm%'", tracking.Filter{cmpOf(entAttr, "name", "LIKE", "m%")}},
	{"name ilike 'M%'", tracking.Filter{cmpOf(entAttr, "name", "ILIKE", "M%")}},
	{"attribute.name != 'x'", tracking.Filter{cmpOf(entAttr, "name", "!=", "x")}},
	{"tags.k = 'v'", tracking.Filter{cmpOf(entTag, "k", "=", "v")}},
	{"tags.`mlflow.prompt.is_prompt` != 'true'", tracking.Filter{cmpOf(entTag, "mlflow.prompt.is_prompt", "!=", "true")}},
	{`tag."a b" = 'c' AND name = "m"`, tracking.Filter{cmpOf(entTag, "a b", "=", "c"), cmpOf(entAttr, "name", "=", "m")}},
}

var registeredModelFilterErrors = []searchErrorCase{
	{"version_number = 1", "Invalid attribute key 'version_number' specified. Valid keys are '{'name'}'"},
	{"`name` = 'x'", "Invalid attribute key '`name`'"},
	{"run_id = 'x'", "Invalid attribute key 'run_id'"},
	{"attributes.name = 'x'", "Invalid entity type 'attributes'. Valid entity types are ('attribute', 'tag', 'tags')"},
	{"name > 'x'", "Invalid comparator for attribute: >"},
	{"tags.k IS NULL", "Invalid comparator for tag: IS NULL"},
	{"tags.k < 'a'", "Invalid comparator for tag: <"},
	{"name IN ('a')", "Only the 'run_id' attribute supports comparison with a list of quoted string values."},
	{"name = 5", "Expected a quoted string value or a list of quoted string values for attributes. Got value 5"},
	{"tags.k = 5", "Expected a quoted string value for tag (e.g. 'my-value'). Got value 5"},
	{"name = m", "value is either not quoted"},
	{"name = 'a' OR name = 'b'", "Invalid clause(s) in filter string"},
}

var modelVersionFilterCases = []searchFilterCase{
	{"", nil},
	{"name = 'm'", tracking.Filter{cmpOf(entAttr, "name", "=", "m")}},
	{"run_id IN ('a','b')", tracking.Filter{cmpOf(entAttr, "run_id", "IN", []string{"a", "b"})}},
	{"run_id = 'a'", tracking.Filter{cmpOf(entAttr, "run_id", "=", "a")}},
	{"source_path LIKE 's3://%'", tracking.Filter{cmpOf(entAttr, "source_path", "LIKE", "s3://%")}},
	{"version_number >= 2", tracking.Filter{cmpOf(entAttr, "version_number", ">=", 2.0)}},
	{"attribute.version_number = '3'", tracking.Filter{cmpOf(entAttr, "version_number", "=", 3.0)}},
	{"tags.k = 'v'", tracking.Filter{cmpOf(entTag, "k", "=", "v")}},
	{"name='m' AND version_number<5", tracking.Filter{cmpOf(entAttr, "name", "=", "m"), cmpOf(entAttr, "version_number", "<", 5.0)}},
}

var modelVersionFilterErrors = []searchErrorCase{
	{"version_number LIKE 1", "Invalid comparator for attribute version_number: LIKE"},
	{"version_number = 'x'", "Expected numeric value type for numeric attribute: version_number. Found 'x'"},
	{"version_number IN ('1')", "Only the 'run_id' attribute supports comparison with a list of quoted string values."},
	{"name IN ('a')", "Only the 'run_id' attribute supports comparison with a list of quoted string values."},
	{"run_id NOT IN ('a')", "Invalid comparator for attribute: NOT IN"},
	{"name > 'a'", "Invalid comparator for attribute: >"},
	{"run_id = 5", "Only the '{'creation_timestamp', 'last_updated_timestamp', 'version_number'}' attributes support comparison with numeric values."},
	{"creation_timestamp > 1", "Invalid attribute key 'creation_timestamp' specified. Valid keys are '{'name', 'run_id', 'source_path', 'version_number'}'"},
	{"tags.k LIKE 5", "Expected a quoted string value for tag"},
	{"tags.k IS NOT NULL", "Invalid comparator for tag: IS NOT NULL"},
	{"metrics.a > 1", "Invalid entity type 'metrics'"},
}

var loggedModelFilterCases = []searchFilterCase{
	{"attributes.model_id IN ('m-1','m-2')", tracking.Filter{cmpOf(entAttr, "model_id", "IN", []string{"m-1", "m-2"})}},
	{"name NOT IN ('a')", tracking.Filter{cmpOf(entAttr, "name", "NOT IN", []string{"a"})}},
	{"creation_time > 5", tracking.Filter{cmpOf(entAttr, "creation_time", ">", 5.0)}},
	{"metrics.acc > 0.5 AND params.lr = '0.1' AND status = 'READY'", tracking.Filter{
		cmpOf(entMetric, "acc", ">", 0.5), cmpOf(entParam, "lr", "=", "0.1"), cmpOf(entAttr, "status", "=", "READY")}},
}

var loggedModelFilterErrors = []searchErrorCase{
	{"run_name = 'x'", "Invalid attribute key 'run_name'"},
	{"creation_timestamp = 'x'", "Expected numeric value type for numeric attribute: creation_timestamp"},
	{"name > 'x'", "Invalid comparator '>'"},
}

// searchOrderCase is a list of order_by terms that parses.
type searchOrderCase struct {
	in   []string
	want []tracking.OrderBy
}

// ascBy is an ascending OrderBy.
func ascBy(entity, key string) tracking.OrderBy {
	return tracking.OrderBy{Entity: entity, Key: key, Asc: true}
}

// descBy is a descending OrderBy.
func descBy(entity, key string) tracking.OrderBy {
	return tracking.OrderBy{Entity: entity, Key: key}
}

var runOrderCases = []searchOrderCase{
	{nil, nil},
	{[]string{"metrics.`Mean Square Error`"}, []tracking.OrderBy{ascBy(entMetric, "Mean Square Error")}},
	{[]string{"metrics.`Mean Square Error` ASC"}, []tracking.OrderBy{ascBy(entMetric, "Mean Square Error")}},
	{[]string{"metrics.`Mean Square Error` DESC"}, []tracking.OrderBy{descBy(entMetric, "Mean Square Error")}},
	{[]string{"attributes.start_time ASC"}, []tracking.OrderBy{ascBy(entAttr, "start_time")}},
	{[]string{"params.lr"}, []tracking.OrderBy{ascBy(entParam, "lr")}},
	{[]string{"tags.noSuchTag"}, []tracking.OrderBy{ascBy(entTag, "noSuchTag")}},
	{[]string{"tags.tag1    DESC"}, []tracking.OrderBy{descBy(entTag, "tag1")}},
	{[]string{`metrics."key1"  desc`}, []tracking.OrderBy{descBy(entMetric, "key1")}},
	{[]string{"params.my_param aSc", "attributes.status  ASC"}, []tracking.OrderBy{ascBy(entParam, "my_param"), ascBy(entAttr, "status")}},
	{[]string{"params.`my_param` DESC", "attributes.status DESC"}, []tracking.OrderBy{descBy(entParam, "my_param"), descBy(entAttr, "status")}},
	{[]string{"status"}, []tracking.OrderBy{ascBy(entAttr, "status")}},
	{[]string{"created DESC"}, []tracking.OrderBy{descBy(entAttr, "start_time")}},
	{[]string{"run.run_id", "attr.end_time"}, []tracking.OrderBy{ascBy(entAttr, "run_id"), ascBy(entAttr, "end_time")}},
	{[]string{"tags.mlflow.runName"}, []tracking.OrderBy{ascBy(entTag, "mlflow.runName")}},
}

var runOrderErrors = []searchErrorCase{
	{"m.acc", "Invalid entity type 'm'"},
	{"acc", "Invalid attribute key 'acc' specified. Valid keys are '{'Created', 'artifact_uri', 'created', 'end_time', 'run_id', 'run_name', 'start_time', 'status', 'user_id'}'"},
	{"attri.x", "Invalid entity type"},
	{"`metrics.A", "Invalid order_by clause '`metrics.A'. Could not be parsed."},
	{"`metrics.A`", "Invalid entity type '`metrics'"},
	{"attribute.start", "Invalid attribute key 'start'"},
	{"attribute.experiment_id", "Invalid attribute key"},
	{"attribute.`run name`", "Invalid attribute key 'run name'"},
	{"metrics.A != 1", "Invalid order_by clause"},
	{"params.my_param ", "Invalid order_by clause"},
	{" params.my_param", "Invalid order_by clause"},
	{"", "Invalid order_by clause ''. Could not be parsed."},
	{"attribute.run_id ACS", "Invalid ordering key in order_by clause 'attribute.run_id ACS'."},
	{"attribute.run_id decs", "Invalid ordering key"},
	{"metrics.a DESC extra", "Invalid order_by clause"},
	{"datasets.name", "Invalid identifier type 'dataset'"},
	{"datasets.profile", "Invalid dataset key 'profile'"},
}

var experimentOrderCases = []searchOrderCase{
	{[]string{"name"}, []tracking.OrderBy{ascBy(entAttr, "name")}},
	{[]string{"experiment_id DESC"}, []tracking.OrderBy{descBy(entAttr, "experiment_id")}},
	{[]string{"attribute.creation_time", "last_update_time asc"}, []tracking.OrderBy{ascBy(entAttr, "creation_time"), ascBy(entAttr, "last_update_time")}},
}

var experimentOrderErrors = []searchErrorCase{
	{"tags.x", "Invalid order_by entity: tag"},
	{"attributes.name", "Invalid entity type 'attributes'. Valid entity types are ('attribute', 'tag', 'tags')"},
	{"foo", "Invalid attribute key 'foo' specified. Valid keys are '{'creation_time', 'experiment_id', 'last_update_time', 'name'}'"},
	{"name ASC DESC", "Invalid order_by clause"},
}

var registeredModelOrderCases = []searchOrderCase{
	{[]string{"name"}, []tracking.OrderBy{ascBy(entAttr, "name")}},
	{[]string{"timestamp DESC"}, []tracking.OrderBy{descBy(entAttr, "last_updated_timestamp")}},
	{[]string{"name ASC", "last_updated_timestamp desc"}, []tracking.OrderBy{ascBy(entAttr, "name"), descBy(entAttr, "last_updated_timestamp")}},
}

var registeredModelOrderErrors = []searchErrorCase{
	{"creation_timestamp DESC", "Invalid order by key 'creation_timestamp' specified. Valid keys are '{'last_updated_timestamp', 'name', 'timestamp'}'"},
	{"last_updated_timestamp DESC blah", "Invalid order_by clause"},
	{"", "Invalid order_by clause"},
	{"timestamp somerandomstuff ASC", "Invalid order_by clause"},
	{"timestamp somerandomstuff", "Invalid order_by clause"},
	{"timestamp decs", "Invalid order_by clause"},
	{"timestamp ACS", "Invalid order_by clause"},
	{"name aCs", "Invalid ordering key"},
	{"tags.x", "Invalid order_by entity: tag"},
}

var modelVersionOrderCases = []searchOrderCase{
	{[]string{"version_number DESC"}, []tracking.OrderBy{descBy(entAttr, "version_number")}},
	{[]string{"creation_timestamp"}, []tracking.OrderBy{ascBy(entAttr, "creation_timestamp")}},
	{[]string{"attribute.name", "last_updated_timestamp desc"}, []tracking.OrderBy{ascBy(entAttr, "name"), descBy(entAttr, "last_updated_timestamp")}},
}

var modelVersionOrderErrors = []searchErrorCase{
	{"run_id", "Invalid attribute key 'run_id' specified. Valid keys are '{'creation_timestamp', 'last_updated_timestamp', 'name', 'version_number'}'"},
	{"timestamp", "Invalid attribute key 'timestamp'"},
	{"tag.k", "Invalid order_by entity: tag"},
}

// wantSearchError fails t unless err is an *mloop.Error of kind EINVALID whose
// message contains want.
func wantSearchError(t *testing.T, err error, want string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want EINVALID containing %q", want)
	}
	var e *mloop.Error
	if !errors.As(err, &e) || e.Code != mloop.EINVALID {
		t.Fatalf("got error %#v, want an *mloop.Error of kind %q", err, mloop.EINVALID)
	}
	if !strings.Contains(e.Message, want) {
		t.Errorf("got message %q, want it to contain %q", e.Message, want)
	}
}

// testSearchFilter runs the parse cases and error cases of one filter parser.
func testSearchFilter(t *testing.T, parse func(string) (tracking.Filter, error), cases []searchFilterCase, errs []searchErrorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			got, err := parse(tc.in)
			if err != nil {
				t.Fatalf("got error %v, want %v", err, tc.want)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %#v, want %#v", got, tc.want)
			}
		})
	}
	for _, tc := range errs {
		t.Run("error/"+tc.in, func(t *testing.T) {
			got, err := parse(tc.in)
			if got != nil {
				t.Errorf("got filter %#v alongside the error, want nil", got)
			}
			wantSearchError(t, err, tc.err)
		})
	}
}

func TestParseRunFilter(t *testing.T) {
	testSearchFilter(t, tracking.ParseRunFilter, runFilterCases, runFilterErrors)
}

func TestParseLoggedModelFilter(t *testing.T) {
	testSearchFilter(t, tracking.ParseLoggedModelFilter, loggedModelFilterCases, loggedModelFilterErrors)
}

func TestParseExperimentFilter(t *testing.T) {
	testSearchFilter(t, tracking.ParseExperimentFilter, experimentFilterCases, experimentFilterErrors)
}

func TestParseRegisteredModelFilter(t *testing.T) {
	testSearchFilter(t, tracking.ParseRegisteredModelFilter, registeredModelFilterCases, registeredModelFilterErrors)
}

func TestParseModelVersionFilter(t *testing.T) {
	testSearchFilter(t, tracking.ParseModelVersionFilter, modelVersionFilterCases, modelVersionFilterErrors)
}

// TestRunFilterValueTypes checks the value types filter.go promises, which
// the stores rely on: float64, string, []string, or nil.
func TestRunFilterValueTypes(t *testing.T) {
	f, err := tracking.ParseRunFilter("metrics.a = 1 AND params.p = '1' AND attributes.run_id IN ('x') AND tags.t IS NULL")
	if err != nil {
		t.Fatalf("got error %v, want none", err)
	}
	want := []string{"float64", "string", "[]string", "<nil>"}
	for i, c := range f {
		if got := reflect.TypeOf(c.Value); (got == nil && want[i] != "<nil>") || (got != nil && got.String() != want[i]) {
			t.Errorf("comparison %d (%s): got value type %v, want %s", i, c.Key, got, want[i])
		}
	}
}

// testSearchOrderBy runs the parse cases and error cases of one order_by parser.
func testSearchOrderBy(t *testing.T, parse func([]string) ([]tracking.OrderBy, error), cases []searchOrderCase, errs []searchErrorCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(strings.Join(tc.in, ","), func(t *testing.T) {
			got, err := parse(tc.in)
			if err != nil {
				t.Fatalf("got error %v, want %v", err, tc.want)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	for _, tc := range errs {
		t.Run("error/"+tc.in, func(t *testing.T) {
			_, err := parse([]string{tc.in})
			wantSearchError(t, err, tc.err)
		})
	}
}

func TestParseRunOrderBy(t *testing.T) {
	testSearchOrderBy(t, tracking.ParseRunOrderBy, runOrderCases, runOrderErrors)
}

func TestParseExperimentOrderBy(t *testing.T) {
	testSearchOrderBy(t, tracking.ParseExperimentOrderBy, experimentOrderCases, experimentOrderErrors)
}

func TestParseRegisteredModelOrderBy(t *testing.T) {
	testSearchOrderBy(t, tracking.ParseRegisteredModelOrderBy, registeredModelOrderCases, registeredModelOrderErrors)
}

func TestParseModelVersionOrderBy(t *testing.T) {
	testSearchOrderBy(t, tracking.ParseModelVersionOrderBy, modelVersionOrderCases, modelVersionOrderErrors)
}

// TestOrderByDuplicates checks that runs and the registry reject a field
// named twice, even through an alias, as MLflow's SQL stores do, while
// experiments accept it.
func TestOrderByDuplicates(t *testing.T) {
	tests := []struct {
		name  string
		parse func([]string) ([]tracking.OrderBy, error)
		terms []string
	}{
		{"runs", tracking.ParseRunOrderBy, []string{"metrics.a", "metrics.`a` DESC"}},
		{"runs alias", tracking.ParseRunOrderBy, []string{"created", "attributes.start_time"}},
		{"registered models alias", tracking.ParseRegisteredModelOrderBy, []string{"timestamp", "last_updated_timestamp DESC"}},
		{"model versions", tracking.ParseModelVersionOrderBy, []string{"name", "name DESC"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.parse(tt.terms)
			wantSearchError(t, err, "`order_by` contains duplicate fields: ['"+strings.Join(tt.terms, "', '")+"']")
		})
	}
	got, err := tracking.ParseExperimentOrderBy([]string{"name", "name DESC"})
	if err != nil {
		t.Fatalf("experiments: got error %v, want none", err)
	}
	if want := []tracking.OrderBy{ascBy(entAttr, "name"), descBy(entAttr, "name")}; !reflect.DeepEqual(got, want) {
		t.Errorf("experiments: got %+v, want %+v", got, want)
	}
}
