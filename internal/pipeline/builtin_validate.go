package pipeline

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
)

// ValidateStep is the built-in `uses: validate` step: it checks a pinned
// dataset version against a schema with the dataset package's validation
// (dataset.Validate: anomalies after TensorFlow Data Validation and the
// schema's expectations) and fails the step when the data must not be used.
//
// Configuration (`with:`):
//
//	schema: path/to/schema.yaml  # relative to the project folder; default: the dataset's stored schema
//	fail_on: error               # error (default): fail on errors; warning: fail on warnings too
//
// Inputs: data, a dataset reference (required); schema, a project file
// holding the schema (optional, instead of with.schema; its content then
// enters the cache key like any code input). Outputs: report, a file
// receiving the dataset.Report as JSON (optional).
//
// The schema is the schema input, else with.schema, else the schema stored
// for the dataset (`mloop data schema NAME --set FILE`). Most checks are
// decided from the version's stored profile; those that need the data
// (patterns, uniqueness, exact counts) read the version's files from the
// input's local folder. When the schema bounds row count changes, the
// previous version's profile is the baseline.
//
// The step logs the report for people and records the metrics
// validate.errors, validate.warnings and validate.rows. With fail_on error
// it fails when an anomaly or failed expectation of error severity exists;
// with fail_on warning, when any exists. The error names the counts and
// the first anomalies.
//
// ValidateStep implements CacheKeyer: the SHA-256 of the stored schema (or
// the with.schema path as written, whose content the runner cannot read
// without the project folder) enters the cache key as uses.schema, so a new
// stored schema validates again. Prefer the schema input for a schema kept
// in the project.
type ValidateStep struct{}

var (
	_ Builtin    = ValidateStep{}
	_ CacheKeyer = ValidateStep{}
)

// validateConfig is the `with:` of a validate step.
type validateConfig struct {
	Schema string `with:"schema"`
	FailOn string `with:"fail_on"`
}

// validateConfigOf decodes and checks the validate configuration of st.
func validateConfigOf(st *Step) (*validateConfig, error) {
	var c validateConfig
	if err := decodeWith(st, &c); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return mloop.Errorf(mloop.EINVALID, "step %s: %s", st.Name, fmt.Sprintf(format, args...))
	}
	switch c.FailOn {
	case "":
		c.FailOn = "error"
	case "error", "warning":
	default:
		return nil, bad("with.fail_on must be error or warning, not %q", c.FailOn)
	}
	if c.Schema != "" && st.Input("schema") != nil {
		return nil, bad("give the schema once: as with.schema or as the schema input, not both")
	}
	return &c, nil
}

// Check validates the validate configuration and its inputs and outputs.
func (ValidateStep) Check(st *Step) error {
	if _, err := validateConfigOf(st); err != nil {
		return err
	}
	return checkIO(st, []ioRule{
		{name: "data", kind: InputData, required: true},
		{name: "schema", kind: InputPath},
	}, []string{"report"})
}

// CacheKeyExtra returns {"schema": "sha256:…"}, the hash of the stored
// schema or of the with.schema file's content (so editing the file runs the
// step again); nothing with a schema input, whose content the runner hashes.
func (ValidateStep) CacheKeyExtra(ctx context.Context, s *Service, r *Run, st *Step, _ map[string]ResolvedInput) (map[string]string, error) {
	c, err := validateConfigOf(st)
	if err != nil {
		return nil, err
	}
	switch {
	case st.Input("schema") != nil:
		return nil, nil
	case c.Schema != "":
		p := c.Schema
		if !filepath.IsAbs(p) && r != nil {
			p = filepath.Join(r.ProjectDir, p)
		}
		text, err := os.ReadFile(p)
		if err != nil {
			return nil, mloop.Errorf(mloop.EINVALID, "step %s: read with.schema: %v", st.Name, err)
		}
		sum := sha256.Sum256(text)
		return map[string]string{"schema": "sha256:" + hex.EncodeToString(sum[:])}, nil
	}
	in := st.Input("data")
	if in == nil || s.Datasets == nil {
		return nil, nil
	}
	text, err := s.Datasets.GetSchema(ctx, in.Dataset.Name)
	if mloop.IsNotFound(err) {
		return map[string]string{"schema": "none"}, nil
	} else if err != nil {
		return nil, fmt.Errorf("step %s: schema of %s: %w", st.Name, in.Dataset.Name, err)
	}
	sum := sha256.Sum256(text)
	return map[string]string{"schema": "sha256:" + hex.EncodeToString(sum[:])}, nil
}

// Run validates the pinned dataset version.
func (ValidateStep) Run(ctx context.Context, bc *BuiltinContext) error {
	c, err := validateConfigOf(bc.Step)
	if err != nil {
		return err
	}
	name := bc.Step.Name
	in, ok := bc.Inputs["data"]
	if !ok || in.Dataset == nil {
		return mloop.Errorf(mloop.EINVALID, "step %s: the data input was not resolved to a dataset version", name)
	}
	if bc.Service.Datasets == nil {
		return mloop.Errorf(mloop.EUNAVAILABLE, "step %s: the pipeline service has no dataset service", name)
	}
	v := in.Dataset
	if v.Profile == nil {
		if v, err = bc.Service.Datasets.GetVersion(ctx, dataset.Ref{Name: v.Dataset, Version: v.Version}, true); err != nil {
			return fmt.Errorf("step %s: get %s: %w", name, in.Dataset.Ref(), err)
		}
		if v.Profile == nil {
			return fmt.Errorf("step %s: %s has no profile: it cannot be validated", name, v.Ref())
		}
	}
	s, from, err := loadStepSchema(ctx, bc, c, v.Dataset)
	if err != nil {
		return err
	}
	fmt.Fprintf(bcLog(bc), "validating %s against %s\n", v.Ref(), from)

	target := dataset.ValidationTarget{Name: v.Ref(), Profile: v.Profile}
	if in.Path != "" {
		formats := map[string]dataset.File{}
		for _, f := range v.Files {
			p := filepath.Join(in.Path, filepath.FromSlash(f.Path))
			if len(v.Files) == 1 {
				// A one-file version may be materialized as the file itself.
				if fi, err := os.Stat(in.Path); err == nil && !fi.IsDir() {
					p = in.Path
				}
			}
			target.Files = append(target.Files, p)
			formats[p] = f
		}
		target.Open = func(ctx context.Context, file string, opts dataset.ReadOptions) (dataset.Reader, error) {
			if f, ok := formats[file]; ok {
				opts.Format, opts.Compression, opts.Name = f.Format, f.Compression, f.Path
			}
			return dataset.OpenFile(ctx, file, opts)
		}
	}
	if s.MaxRowCountChange != nil && v.Version > 1 {
		b, err := bc.Service.Datasets.GetVersion(ctx, dataset.Ref{Name: v.Dataset, Version: v.Version - 1}, true)
		switch {
		case err == nil && b.Profile != nil:
			target.Baseline = b.Profile
		case err != nil && !mloop.IsNotFound(err):
			return fmt.Errorf("step %s: baseline %s@%d: %w", name, v.Dataset, v.Version-1, err)
		}
	}
	rep, err := dataset.Validate(ctx, s, target)
	if err != nil {
		return fmt.Errorf("step %s: validate %s: %w", name, v.Ref(), err)
	}
	if err := rep.WriteText(bcLog(bc)); err != nil {
		return fmt.Errorf("step %s: write report: %w", name, err)
	}
	if out, ok := bc.Outputs["report"]; ok {
		data, err := json.MarshalIndent(rep, "", "  ")
		if err != nil {
			return fmt.Errorf("step %s: encode report: %w", name, err)
		}
		if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("step %s: write report: %w", name, err)
		}
	}
	bcMetric(bc, "validate.errors", float64(rep.Errors))
	bcMetric(bc, "validate.warnings", float64(rep.Warnings))
	bcMetric(bc, "validate.rows", float64(rep.Rows))

	if rep.Errors > 0 || (c.FailOn == "warning" && rep.Warnings > 0) {
		return fmt.Errorf("%s does not fit its schema: %s, %s: %s", v.Ref(),
			countText(rep.Errors, "error"), countText(rep.Warnings, "warning"), firstProblems(rep, c.FailOn, 3))
	}
	return nil
}

// loadStepSchema returns the schema to validate against and where it came
// from.
func loadStepSchema(ctx context.Context, bc *BuiltinContext, c *validateConfig, datasetName string) (*dataset.Schema, string, error) {
	name := bc.Step.Name
	var file string
	if in, ok := bc.Inputs["schema"]; ok {
		file = in.Path
	} else if c.Schema != "" {
		file = c.Schema
		if !filepath.IsAbs(file) && bc.Run != nil {
			file = filepath.Join(bc.Run.ProjectDir, file)
		}
	}
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, "", mloop.Errorf(mloop.EINVALID, "step %s: read schema: %v", name, err)
		}
		s, err := dataset.ParseSchema(data)
		if err != nil {
			return nil, "", mloop.Errorf(mloop.EINVALID, "step %s: schema %s: %v", name, file, err)
		}
		return s, file, nil
	}
	data, err := bc.Service.Datasets.GetSchema(ctx, datasetName)
	if mloop.IsNotFound(err) {
		return nil, "", mloop.Errorf(mloop.EINVALID,
			"step %s: no schema: set one with `mloop data schema %s --set FILE` or give with.schema", name, datasetName)
	} else if err != nil {
		return nil, "", fmt.Errorf("step %s: schema of %s: %w", name, datasetName, err)
	}
	s, err := dataset.ParseSchema(data)
	if err != nil {
		return nil, "", mloop.Errorf(mloop.EINVALID, "step %s: the stored schema of %s: %v", name, datasetName, err)
	}
	return s, "the stored schema of " + datasetName, nil
}

// firstProblems lists up to n anomalies and failed expectations that fail
// the step under failOn, errors first.
func firstProblems(rep *dataset.Report, failOn string, n int) string {
	var out []string
	for _, sev := range []dataset.Severity{dataset.SeverityError, dataset.SeverityWarning} {
		if sev == dataset.SeverityWarning && failOn != "warning" {
			break
		}
		for _, a := range rep.Anomalies {
			if len(out) < n && severityOf(a.Severity) == sev {
				out = append(out, a.Message)
			}
		}
		for _, e := range rep.Expectations {
			if len(out) < n && !e.Success && !e.Skipped && severityOf(e.Severity) == sev {
				msg := e.Title()
				if e.Message != "" {
					msg += ": " + e.Message
				}
				out = append(out, msg)
			}
		}
	}
	total := rep.Errors
	if failOn == "warning" {
		total += rep.Warnings
	}
	s := strings.Join(out, "; ")
	if more := total - len(out); more > 0 {
		s += "; and " + strconv.Itoa(more) + " more (see the step's log)"
	}
	return s
}

// countText formats n and thing, with an s when n is not 1.
func countText(n int, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return strconv.Itoa(n) + " " + thing + "s"
}

// severityOf counts an unset severity as an error, as dataset.Report does.
func severityOf(s dataset.Severity) dataset.Severity {
	if s == dataset.SeverityWarning {
		return s
	}
	return dataset.SeverityError
}
