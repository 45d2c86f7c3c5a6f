package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/serving/modelcheck"
)

// RegisterStep is the built-in `uses: register` step: it registers a model
// output of an upstream step as a new version of a registered model, with
// its lineage, and moves aliases.
//
// Configuration (`with:`):
//
//	model: NAME                # the registered model (required; created when missing)
//	aliases:
//	  always: [challenger]     # moved to the new version every time (default [challenger])
//	  blessed: [champion]      # moved only when the version is blessed (default [champion])
//	require_blessing: true     # default true; false moves the blessed aliases without a blessing
//	description: text          # the version's description
//	tags: {key: value}         # extra version tags (keys starting with "mloop." are reserved)
//
// Inputs: model, a step output of type model (required); verdict, the
// verdict output of a gate step (optional); metrics, a metrics output
// (optional; default: the candidate metrics recorded in the verdict).
// Outputs: version, a file receiving {"name","version","aliases"} as JSON
// (optional).
//
// The version is always registered, blessed or not: an unblessed candidate
// is still worth keeping and comparing. Its source is the model output's
// artifact URI (OutputRecord.URI, inside the upstream step's MLflow run)
// and its run id the MLflow run holding that artifact: the upstream step's
// run, or for a cached upstream step the run that first produced it. Its tags are
// mloop.pipeline_run (the pipeline run id), mloop.step (the step that
// produced the model), mloop.output (the output's name), mloop.flavor,
// mloop.metrics (the Metrics JSON, which later gates read when this version
// is the champion; slices are dropped, by name order from the end, when the
// JSON would exceed the registry's 5000-character tag limit, and
// mloop.metrics.truncated then says how many), mloop.blessed ("true" or
// "false", from the verdict; absent without a verdict), and the configured
// tags.
//
// The version is blessed when the verdict says so, or when
// require_blessing is false. The `always` aliases move to the new version,
// then, when it is blessed, the `blessed` ones. Without a verdict input and
// with require_blessing true (the default), only the `always` aliases move.
//
// The step records the tag mloop.model_version ("NAME/N"), the metric
// register.version (N), and lineage edges artifact(model URI) → model
// version ("registered", name "model") and step run → model version
// ("output", name "version").
type RegisterStep struct{}

var _ Builtin = RegisterStep{}

// registerConfig is the `with:` of a register step.
type registerConfig struct {
	Model           string            `with:"model"`
	Aliases         *registerAliases  `with:"aliases"`
	RequireBlessing *bool             `with:"require_blessing"`
	Description     string            `with:"description"`
	Tags            map[string]string `with:"tags"`
}

type registerAliases struct {
	Always  *[]string `with:"always"`
	Blessed *[]string `with:"blessed"`
}

// RegisteredVersion is the JSON a register step writes to its version
// output.
type RegisteredVersion struct {
	Name    string   `json:"name"`
	Version string   `json:"version"`
	Aliases []string `json:"aliases"`
}

// registerConfigOf decodes and checks the register configuration of st,
// filling the defaults.
func registerConfigOf(st *Step) (*registerConfig, []string, []string, bool, error) {
	var c registerConfig
	if err := decodeWith(st, &c); err != nil {
		return nil, nil, nil, false, err
	}
	bad := func(format string, args ...any) error {
		return mloop.Errorf(mloop.EINVALID, "step %s: %s", st.Name, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(c.Model) == "" {
		return nil, nil, nil, false, bad("with.model is required: name the registered model to add a version to")
	}
	always, blessed := []string{"challenger"}, []string{"champion"}
	if c.Aliases != nil {
		if c.Aliases.Always != nil {
			always = *c.Aliases.Always
		}
		if c.Aliases.Blessed != nil {
			blessed = *c.Aliases.Blessed
		}
	}
	for i, a := range always {
		if strings.TrimSpace(a) == "" {
			return nil, nil, nil, false, bad("with.aliases.always[%d] is empty", i)
		}
	}
	for i, a := range blessed {
		if strings.TrimSpace(a) == "" {
			return nil, nil, nil, false, bad("with.aliases.blessed[%d] is empty", i)
		}
	}
	for k := range c.Tags {
		if strings.HasPrefix(k, "mloop.") {
			return nil, nil, nil, false, bad("with.tags.%s: tag keys starting with mloop. are reserved for mloop", k)
		}
	}
	require := c.RequireBlessing == nil || *c.RequireBlessing
	return &c, always, blessed, require, nil
}

// Check validates the register configuration and its inputs and outputs.
func (RegisterStep) Check(st *Step) error {
	if _, _, _, _, err := registerConfigOf(st); err != nil {
		return err
	}
	return checkIO(st, []ioRule{
		{name: "model", kind: InputStep, required: true},
		{name: "verdict", kind: InputStep},
		{name: "metrics", kind: InputStep},
	}, []string{"version"})
}

// Run registers the model version and moves the aliases.
func (RegisterStep) Run(ctx context.Context, bc *BuiltinContext) error {
	c, always, blessedAliases, require, err := registerConfigOf(bc.Step)
	if err != nil {
		return err
	}
	name := bc.Step.Name
	reg := bc.Service.Registry
	if reg == nil {
		return mloop.Errorf(mloop.EUNAVAILABLE, "step %s: the pipeline service has no model registry", name)
	}
	in, ok := bc.Inputs["model"]
	if !ok || in.Record == nil || in.Record.URI == "" {
		return mloop.Errorf(mloop.EINVALID, "step %s: the model input has no stored output record (it must be a step output)", name)
	}
	if in.Record.Type != "" && in.Record.Type != "model" {
		return mloop.Errorf(mloop.EINVALID, "step %s: input model (steps.%s.outputs.%s) has type %s; declare that output with type: model and its flavor",
			name, in.Step, in.Output, in.Record.Type)
	}

	// The verdict and the metrics.
	var verdict *GateVerdict
	if vin, ok := bc.Inputs["verdict"]; ok {
		data, err := os.ReadFile(vin.Path)
		if err != nil {
			return fmt.Errorf("step %s: read verdict: %w", name, err)
		}
		verdict = new(GateVerdict)
		if err := json.Unmarshal(data, verdict); err != nil {
			return mloop.Errorf(mloop.EINVALID, "step %s: input verdict (steps.%s.outputs.%s) is not a gate verdict: %v", name, vin.Step, vin.Output, err)
		}
	}
	var metrics *Metrics
	if min, ok := bc.Inputs["metrics"]; ok {
		if metrics, err = ReadMetricsFile(min.Path); err != nil {
			return fmt.Errorf("step %s: %w", name, err)
		}
	} else if verdict != nil {
		metrics = verdict.Metrics
	}
	blessed := !require || (verdict != nil && verdict.Blessed)

	// A model the server could not serve is refused here, with the reason,
	// before it becomes a version (as `mloop model register` refuses it).
	if f := in.Record.Flavor; f == "xgboost" || f == "process" {
		info, err := modelcheck.ValidateModel(ctx, f, in.Path)
		if err != nil {
			return fmt.Errorf("step %s: output %s of step %s is not a valid %s model: %w", name, in.Output, in.Step, f, err)
		}
		fmt.Fprintf(bcLog(bc), "checked the %s model: %s\n", f, info)
	}
	// The registered model, then the version.
	if _, err := reg.GetRegisteredModel(ctx, c.Model); mloop.IsNotFound(err) {
		if _, err := reg.CreateRegisteredModel(ctx, c.Model, nil, ""); err != nil && mloop.ErrorCode(err) != mloop.EEXISTS {
			return fmt.Errorf("step %s: create registered model %s: %w", name, c.Model, err)
		}
		fmt.Fprintf(bcLog(bc), "created registered model %s\n", c.Model)
	} else if err != nil {
		return fmt.Errorf("step %s: get registered model %s: %w", name, c.Model, err)
	}
	var tags []registry.Tag
	for _, t := range []registry.Tag{
		{Key: "mloop.pipeline_run", Value: bcRunID(bc)},
		{Key: "mloop.step", Value: in.Step},
		{Key: "mloop.output", Value: in.Output},
		{Key: "mloop.flavor", Value: in.Record.Flavor},
	} {
		if t.Value != "" {
			tags = append(tags, t)
		}
	}
	if metrics != nil {
		text, dropped := metricsTagValue(metrics, registry.MaxTagValueLength)
		if text != "" {
			tags = append(tags, registry.Tag{Key: MetricsTag, Value: text})
		} else {
			fmt.Fprintf(bcLog(bc), "warning: the metrics do not fit in the %s tag even without slices; the tag is left out\n", MetricsTag)
		}
		if text != "" && dropped > 0 {
			tags = append(tags, registry.Tag{Key: MetricsTag + ".truncated", Value: strconv.Itoa(dropped) + " slices omitted"})
			fmt.Fprintf(bcLog(bc), "warning: %d slices of the metrics do not fit in the %s tag and were left out of it\n", dropped, MetricsTag)
		}
	} else {
		fmt.Fprintf(bcLog(bc), "note: no metrics (give a verdict or metrics input): this version cannot serve as a baseline for change thresholds\n")
	}
	if verdict != nil {
		tags = append(tags, registry.Tag{Key: "mloop.blessed", Value: strconv.FormatBool(verdict.Blessed)})
		champion := "none"
		if verdict.Champion != nil {
			champion = verdict.Champion.String()
		}
		tags = append(tags, registry.Tag{Key: "mloop.gate.champion", Value: champion})
		if verdict.MetricsHash != "" {
			tags = append(tags, registry.Tag{Key: "mloop.gate.metrics_hash", Value: verdict.MetricsHash})
		}
	}
	for _, k := range sortedKeys(c.Tags) {
		tags = append(tags, registry.Tag{Key: k, Value: c.Tags[k]})
	}
	// An attempt of this step that registered the version and then died
	// with the server (before the step was recorded) is found by its
	// registered_by tag, so a retry does not register the model twice.
	var mv *registry.ModelVersion
	if runID := bcRunID(bc); runID != "" {
		by := runID + "/" + name
		tags = append(tags, registry.Tag{Key: RegisteredByTag, Value: by})
		if mv, err = registeredBy(ctx, reg, c.Model, by); err != nil {
			return fmt.Errorf("step %s: look for a version registered by an earlier attempt: %w", name, err)
		}
	}
	if mv == nil {
		mv, err = reg.CreateModelVersion(ctx, registry.CreateModelVersionRequest{
			Name: c.Model, Source: in.Record.URI, RunID: producerRun(ctx, bc.Service.Tracking, in.Record.URI, in.StepMLflowRunID),
			Tags: tags, Description: c.Description,
		})
		if err != nil {
			return fmt.Errorf("step %s: register %s as a version of %s: %w", name, in.Record.URI, c.Model, err)
		}
	}
	version := strconv.FormatInt(mv.Version, 10)
	ref := c.Model + "/" + version
	fmt.Fprintf(bcLog(bc), "registered %s from %s\n", ref, in.Record.URI)

	// The aliases.
	moved := []string{}
	move := func(aliases []string) error {
		for _, a := range aliases {
			if err := reg.SetRegisteredModelAlias(ctx, c.Model, a, version); err != nil {
				return fmt.Errorf("step %s: set alias %s of %s to version %s: %w", name, a, c.Model, version, err)
			}
			moved = append(moved, a)
			fmt.Fprintf(bcLog(bc), "alias %s → %s\n", a, ref)
		}
		return nil
	}
	if err := move(always); err != nil {
		return err
	}
	switch {
	case blessed:
		if err := move(blessedAliases); err != nil {
			return err
		}
	case len(blessedAliases) == 0:
	case verdict == nil:
		fmt.Fprintf(bcLog(bc), "not moving %s: no verdict input (add a gate's verdict, or set require_blessing: false)\n", strings.Join(blessedAliases, ", "))
	default:
		fmt.Fprintf(bcLog(bc), "not moving %s: the gate did not bless %s\n", strings.Join(blessedAliases, ", "), ref)
	}

	if out, ok := bc.Outputs["version"]; ok {
		data, err := json.MarshalIndent(RegisteredVersion{Name: c.Model, Version: version, Aliases: moved}, "", "  ")
		if err != nil {
			return fmt.Errorf("step %s: encode version: %w", name, err)
		}
		if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("step %s: write version: %w", name, err)
		}
	}
	bcTag(bc, "mloop.model_version", ref)
	bcMetric(bc, "register.version", float64(mv.Version))
	node := Node{Kind: NodeModel, ID: ref}
	bc.Edges = append(bc.Edges, Edge{From: Node{Kind: NodeArtifact, ID: in.Record.URI}, To: node, Relation: "registered", Name: "model"})
	if bc.StepRun != nil && bc.StepRun.MLflowRunID != "" {
		bc.Edges = append(bc.Edges, Edge{From: Node{Kind: NodeStepRun, ID: bc.StepRun.MLflowRunID}, To: node, Relation: "output", Name: "version"})
	}
	return nil
}

// RegisteredByTag is the model version tag that names the pipeline run and
// register step that created the version ("pr-…/register").
const RegisteredByTag = "mloop.registered_by"

// registeredBy returns the version of model tagged RegisteredByTag = by, or
// nil when there is none.
func registeredBy(ctx context.Context, reg Registry, model, by string) (*registry.ModelVersion, error) {
	filter := fmt.Sprintf("name = '%s' and tags.`%s` = '%s'", strings.ReplaceAll(model, "'", "''"), RegisteredByTag, strings.ReplaceAll(by, "'", "''"))
	vs, _, err := reg.SearchModelVersions(ctx, registry.SearchRequest{Filter: filter})
	if err != nil || len(vs) == 0 {
		return nil, err
	}
	return vs[0], nil
}

// producerRun returns the MLflow run whose artifacts hold uri: runID when
// they do, which is the case unless the upstream step was cached (its
// outputs then lie in the run that first produced them). That run is found
// from the URI's "<run id>/artifacts/" segment and checked against the
// run's artifact URI; when nothing checks out, runID is returned.
func producerRun(ctx context.Context, tr Tracker, uri, runID string) string {
	if tr == nil {
		return runID
	}
	holds := func(id string) bool {
		r, err := tr.GetRun(ctx, id)
		if err != nil || r.Info.ArtifactURI == "" {
			return false
		}
		root := strings.TrimRight(r.Info.ArtifactURI, "/") + "/"
		return strings.HasPrefix(uri, root)
	}
	if runID != "" && holds(runID) {
		return runID
	}
	parts := strings.Split(uri, "/")
	for i := len(parts) - 2; i >= 0; i-- {
		if parts[i+1] == "artifacts" && mlflowRunIDRE.MatchString(parts[i]) && parts[i] != runID && holds(parts[i]) {
			return parts[i]
		}
	}
	return runID
}

// metricsTagValue returns the JSON of m in at most limit bytes, leaving out
// slices (the last by name first) until it fits, and how many it left out.
// It returns "" when even the overall metrics do not fit.
func metricsTagValue(m *Metrics, limit int) (string, int) {
	names := m.SliceNames()
	for keep := len(names); keep >= 0; keep-- {
		c := Metrics{Values: m.Values}
		if c.Values == nil {
			c.Values = map[string]float64{}
		}
		if keep > 0 {
			c.Slices = make(map[string]map[string]float64, keep)
			for _, s := range names[:keep] {
				c.Slices[s] = m.Slices[s]
			}
		}
		data, err := json.Marshal(c)
		if err == nil && len(data) <= limit {
			return string(data), len(names) - keep
		}
	}
	return "", len(names)
}

// bcLog returns bc.Log, or io.Discard when it is nil.
func bcLog(bc *BuiltinContext) io.Writer {
	if bc.Log == nil {
		return io.Discard
	}
	return bc.Log
}

// bcRunID returns the pipeline run's id, or "" when bc has none.
func bcRunID(bc *BuiltinContext) string {
	if bc.Run == nil {
		return ""
	}
	return bc.Run.ID
}
