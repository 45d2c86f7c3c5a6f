package monitor

import (
	"context"
	"time"

	"github.com/mloop/mloop/internal/dataset"
)

// Store keeps the history of closed windows. Implementations are safe for
// concurrent use; sqlstore implements it on SQLite and PostgreSQL.
type Store interface {
	// SaveWindow stores a closed window. Its ID is set by the monitor;
	// EEXISTS when a window with that ID is already stored, EINVALID for a
	// window without ID, deployment or model version.
	SaveWindow(ctx context.Context, w *WindowSummary) error
	// MergeWindowQuality adds delta (quality of labels that arrived after
	// the window was saved) to the stored window's quality, in one
	// transaction. ENOTFOUND for an unknown window; EINVALID when delta
	// cannot merge with the stored quality (another task or class count).
	MergeWindowQuality(ctx context.Context, id string, delta *Quality) error
	// ListWindows returns the deployment's windows matching f, newest first
	// (by start, then ID) unless f.Oldest; an unknown deployment has none.
	ListWindows(ctx context.Context, deployment string, f WindowFilter) ([]*WindowSummary, error)
	// GetWindow returns one window with its profile; ENOTFOUND when unknown.
	GetWindow(ctx context.Context, id string) (*WindowSummary, error)
}

// WindowFilter selects windows.
type WindowFilter struct {
	// Since keeps the windows that end after it (zero: no bound).
	Since time.Time
	// Until keeps the windows that start before it (zero: no bound).
	Until time.Time
	// ModelVersion keeps one model version's windows ("model/3"; "": all).
	ModelVersion string
	// Limit is the most windows returned (0 or less: all).
	Limit int
	// Oldest lists oldest first instead of newest first.
	Oldest bool
	// WithProfiles loads each window's profiles too.
	WithProfiles bool
}

// WindowSummary is one model version's share of one closed window of a
// deployment: what it served, how the inputs and predictions drifted, their
// data quality, and the live quality of the labels joined so far.
type WindowSummary struct {
	// ID identifies the window ("mw-" and 16 hex digits).
	ID string `json:"id"`
	// Deployment is the deployment's name.
	Deployment string `json:"deployment"`
	// ModelVersion is "model/version"; Model and Version are its parts.
	ModelVersion string `json:"model_version"`
	Model        string `json:"model"`
	Version      int64  `json:"version"`
	// Revision is the deployment revision that served last in the window.
	Revision int64 `json:"revision"`
	// Start and End bound the window: [Start, End).
	Start time.Time `json:"start"`
	End   time.Time `json:"end"`
	// Rows are the rows predicted (and profiled); Requests the requests
	// answered, Errors those answered with a status of 500 or more (5xx;
	// a client's 4xx does not count); ClientErrors those with a 4xx.
	Rows         int64 `json:"rows"`
	Requests     int64 `json:"requests"`
	Errors       int64 `json:"errors"`
	ClientErrors int64 `json:"client_errors"`
	// LatencyP50 and LatencyP99 are request latency quantiles, in
	// milliseconds, from a quantile sketch (rank error about 1.3%).
	LatencyP50 float64 `json:"latency_p50_ms"`
	LatencyP99 float64 `json:"latency_p99_ms"`
	// Reference names the reference dataset version ("flights@3"), or ""
	// when there is none.
	Reference string `json:"reference,omitempty"`
	// Drift compares the window's features with the reference.
	Drift Drift `json:"drift"`
	// PredictionDrift compares the window's predictions with the reference
	// predictions (the model version's first window, or Reference.Predictions).
	PredictionDrift Drift `json:"prediction_drift"`
	// DataQuality counts the inputs that did not fit the training schema.
	DataQuality DataQuality `json:"data_quality"`
	// Quality is the live quality of the labels joined so far (nil: none).
	Quality *Quality `json:"quality,omitempty"`
	// Profiles are the window's profiles; loaded only when asked for.
	Profiles *WindowProfiles `json:"profiles,omitempty"`
}

// Drift statuses.
const (
	DriftOK          = "ok"           // compared
	DriftNoReference = "no_reference" // nothing to compare with (Reason says why)
	DriftIsReference = "reference"    // the window is the reference itself
	DriftEmpty       = "empty"        // the window has no rows
	DriftFailed      = "error"        // the comparison failed (Reason says why)
)

// Drift is a window's drift against its reference.
type Drift struct {
	// Status is one of the Drift* statuses; Reason explains any but ok.
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Features are the compared columns (features, or predictions).
	Features []FeatureDrift `json:"features,omitempty"`
	// Drifted counts the drifted columns; Share is Drifted over the
	// compared columns; DatasetDrift is Share ≥ DriftShare.
	Drifted      int     `json:"drifted"`
	Share        float64 `json:"share"`
	DriftShare   float64 `json:"drift_share,omitempty"`
	DatasetDrift bool    `json:"dataset_drift"`
	// Skipped lists columns that could not be compared, with the reason.
	Skipped []SkippedColumn `json:"skipped,omitempty"`
}

// FeatureDrift is one column's drift: the decision of its method.
type FeatureDrift struct {
	Feature   string         `json:"feature"`
	Method    dataset.Method `json:"method"`
	Statistic float64        `json:"statistic"`
	PValue    *float64       `json:"p_value,omitempty"`
	Threshold float64        `json:"threshold"`
	Drifted   bool           `json:"drifted"`
	Note      string         `json:"note,omitempty"`
}

// SkippedColumn is a column left out of a drift comparison.
type SkippedColumn struct {
	Column string `json:"column"`
	Reason string `json:"reason"`
}

// DataQuality is a window's data quality against the training schema.
type DataQuality struct {
	// Schema says whether a training schema was available; without one
	// only nulls and type errors (non-integer category codes) are counted.
	Schema bool `json:"schema"`
	// CheckedRows are the rows checked against the schema (rows served
	// before the reference was loaded are not).
	CheckedRows int64 `json:"checked_rows"`
	// Issues is the total of the features' issues.
	Issues int64 `json:"issues"`
	// Features has one entry per input feature.
	Features []FeatureQuality `json:"features,omitempty"`
}

// FeatureQuality counts one feature's values that did not fit the schema.
// Rows outside the schema are still served: they are only counted.
type FeatureQuality struct {
	Feature string `json:"feature"`
	// Nulls are missing values (NaN); NullViolations those in a column the
	// schema says is not nullable (also counted in Nulls).
	Nulls          int64 `json:"nulls"`
	NullViolations int64 `json:"null_violations,omitempty"`
	// OutOfRange are numeric values outside the schema's min/max.
	OutOfRange int64 `json:"out_of_range,omitempty"`
	// OutOfDomain are category codes (or integers) outside its domain.
	OutOfDomain int64 `json:"out_of_domain,omitempty"`
	// TypeErrors are values the column's type cannot hold: a fractional,
	// negative or infinite category code, a fractional value of an integer
	// column, a boolean column's value other than 0 or 1.
	TypeErrors int64 `json:"type_errors,omitempty"`
	// NotInSchema says the training schema has no such column.
	NotInSchema bool `json:"not_in_schema,omitempty"`
}

// issues returns the feature's issue count.
func (q *FeatureQuality) issues() int64 {
	return q.NullViolations + q.OutOfRange + q.OutOfDomain + q.TypeErrors
}

// WindowProfiles are a window's profiles: its input features (numeric as
// float columns, categorical codes as integer columns) and its predictions
// (one float column per output: "prediction", or "prediction_0"…).
type WindowProfiles struct {
	Features    *dataset.Profile `json:"features"`
	Predictions *dataset.Profile `json:"predictions"`
}
