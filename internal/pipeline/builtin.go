package pipeline

import (
	"context"
	"io"

	"github.com/mloop/mloop/internal/dataset"
)

// Builtin is a step built into mloop, named with `uses:` in a spec (see
// BuiltinSteps). The runner runs it in-process where it would start a
// command, with the same inputs, outputs, tracking, caching and lineage.
type Builtin interface {
	// Check validates the step's `with:` configuration and its inputs and
	// outputs before anything runs; an EINVALID error names the step and the
	// problem.
	Check(st *Step) error
	// Run executes the step. A returned error fails the step (its message
	// is the step's error); Run writes its declared outputs under
	// bc.Outputs and may record metrics, tags and lineage edges in bc.
	Run(ctx context.Context, bc *BuiltinContext) error
}

// BuiltinContext is what a built-in step sees.
type BuiltinContext struct {
	// Service gives access to the registry, tracking and stores.
	Service *Service
	// Run is the pipeline run; Step the spec's step; StepRun the step's
	// record (its MLflowRunID is the step's nested MLflow run).
	Run     *Run
	Step    *Step
	StepRun *StepRun
	// Inputs are the step's resolved inputs by name.
	Inputs map[string]ResolvedInput
	// Outputs maps each declared output name to the absolute local path
	// the step must write it to (its parent folder exists).
	Outputs map[string]string
	// Log receives the step's log, like a command's stdout.
	Log io.Writer

	// Metrics, Tags and Edges are filled by the step: metrics and tags are
	// logged to the step's MLflow run, edges added to the lineage.
	Metrics map[string]float64
	Tags    map[string]string
	Edges   []Edge
}

// ResolvedInput is a step input once the runner has made it available
// locally.
type ResolvedInput struct {
	// Name and Kind repeat the spec's input.
	Name string
	Kind InputKind
	// Path is the absolute local path of the input: the project file or
	// folder, the upstream output, or the folder holding a dataset
	// version's files (read-only).
	Path string
	// Hash is the input's content hash (a dataset version's digest).
	Hash string
	// Dataset is the pinned dataset version of a data input.
	Dataset *dataset.Version
	// Step and Output name the upstream output of a step input, Record is
	// its stored record (artifact URI, type, flavor) and StepMLflowRunID the
	// upstream step's MLflow run.
	Step, Output    string
	Record          *OutputRecord
	StepMLflowRunID string
}

// defaultBuiltins returns the built-in steps by name.
func defaultBuiltins() map[string]Builtin {
	return map[string]Builtin{"evaluate": EvaluateStep{}, "gate": GateStep{}, "register": RegisterStep{}, "train/gbdt": TrainGBDTStep{}, "validate": ValidateStep{}}
}

// CacheKeyer is implemented by built-ins whose result depends on state
// outside their inputs, such as the gate on the current champion. The
// runner adds what CacheKeyExtra returns to the step's cache key (as
// params named "uses.<key>"), so a new champion makes the gate run again.
// r is the pipeline run (its ProjectDir locates files named in `with:`);
// inputs are the step's resolved inputs, with their content hashes.
type CacheKeyer interface {
	CacheKeyExtra(ctx context.Context, s *Service, r *Run, st *Step, inputs map[string]ResolvedInput) (map[string]string, error)
}
