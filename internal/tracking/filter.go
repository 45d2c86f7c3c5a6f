package tracking

// Entities a Comparison or OrderBy refers to.
const (
	EntityMetric    = "metric"
	EntityParam     = "param"
	EntityTag       = "tag"
	EntityAttribute = "attribute"
	EntityDataset   = "dataset"
)

// Comparison operators of the filter grammar.
const (
	OpEq        = "="
	OpNe        = "!="
	OpLt        = "<"
	OpLe        = "<="
	OpGt        = ">"
	OpGe        = ">="
	OpLike      = "LIKE"
	OpILike     = "ILIKE"
	OpIn        = "IN"
	OpNotIn     = "NOT IN"
	OpIsNull    = "IS NULL"
	OpIsNotNull = "IS NOT NULL"
)

// Comparison is one clause of a search filter, such as metrics.rmse < 0.5.
//
// Entity is one of the Entity* constants. Key is the metric, param or tag key,
// or for attributes and datasets the canonical attribute name (for runs:
// run_id, run_name, status, user_id, artifact_uri, start_time, end_time,
// lifecycle_stage; for datasets: name, digest, context; for experiments:
// name, creation_time, last_update_time; for registered models and versions:
// name, run_id, source_path, version_number, …).
//
// Value holds a float64 for numeric comparisons (metrics and numeric
// attributes), a string for string comparisons, a []string for IN and NOT IN,
// and nil for IS NULL and IS NOT NULL.
type Comparison struct {
	Entity string
	Key    string
	Op     string
	Value  any
}

// Filter is a conjunction of comparisons (MLflow's grammar has only AND).
type Filter []Comparison

// OrderBy is one term of an order_by list.
type OrderBy struct {
	Entity string
	Key    string
	Asc    bool
}
