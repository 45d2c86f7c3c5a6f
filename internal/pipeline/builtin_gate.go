package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/registry"
)

// GateStep is the built-in `uses: gate` step: an evaluation gate that
// compares a candidate model's metrics with fixed bounds and with the metrics
// of the current champion, and decides whether the candidate is blessed.
//
// Configuration (`with:`):
//
//	model: NAME                 # registered model whose champion to compare with (optional)
//	champion_alias: champion    # the alias naming the champion (default champion; needs model)
//	fail_when_not_blessed: false  # when true the step fails when the candidate is not blessed
//	thresholds:                 # at least one
//	  - metric: auc             # required
//	    slice: "origin=SFO"     # optional: "" or absent = overall metrics; a slice name; "*" = every slice of the candidate
//	    lower: 0.7              # value threshold: pass when candidate >= lower
//	    upper: 0.95             # value threshold: pass when candidate <= upper
//	    change:                 # change threshold against the champion
//	      direction: higher     # higher (higher is better) or lower (lower is better); required
//	      absolute: 0.01        # exactly one of absolute and relative
//	      relative: 0.02
//
// Inputs: metrics, a step output of type metrics (required). Outputs:
// verdict, a file receiving the GateVerdict as JSON (optional).
//
// A change threshold allows the candidate to be worse than the champion by
// at most a tolerance: tol = absolute, or relative × |champion|. With
// direction higher the candidate passes when candidate >= champion − tol;
// with direction lower when candidate <= champion + tol. A tolerance of 0
// requires the candidate to be at least as good as the champion; a negative
// tolerance requires it to be better by at least |tol|. Comparisons allow a
// rounding slack of 1e-9 × max(1, |bound|). In TensorFlow Model Analysis
// terms, `change: {direction: higher, absolute: a}` is
// GenericChangeThreshold(direction=HIGHER_IS_BETTER, absolute=−a) (TFMA
// compares candidate − baseline with the threshold), and likewise for lower
// (LOWER_IS_BETTER, absolute=a) and for relative thresholds.
//
// The champion is the version of model holding champion_alias. Its metrics
// are, when the metrics input holds a "champion" object naming that very
// version (as an evaluate step writes it: the champion scored on the same
// data as the candidate), the figures of that object; otherwise its
// `mloop.metrics` tag (the Metrics JSON the register step writes, measured
// when it was registered, on the data of its day). The verdict says which
// (GateVerdict.ChampionSource), and the reasons of change thresholds
// compared on the same data say so ("champion weather/1 scored on the same
// data"). A "champion" object of another version than the current champion
// — the alias moved since — is not used. Without a champion — no model
// given, a model not registered yet, no version with the alias, or a
// champion without the tag or same-data figures — change thresholds are
// "skipped" with the reason; so is a change threshold whose metric or slice
// the champion's metrics lack. A metric (or slice) missing from the
// candidate fails its thresholds. The candidate is blessed when no threshold
// failed.
//
// The step records the metrics gate.blessed (1 or 0), gate.passed,
// gate.failed and gate.skipped, the tags mloop.gate.blessed ("true" or
// "false"), mloop.gate.champion ("NAME/VERSION" or "none") and, with
// champion metrics, mloop.gate.champion_source (ChampionSameData or
// ChampionTag), and a lineage edge from the champion's model version to the
// step run (relation "input", name "champion"). It logs a table of the
// thresholds' verdicts.
//
// GateStep implements CacheKeyer: the current champion ("NAME/VERSION" or
// "none") enters the cache key as uses.champion, so a new champion makes the
// gate run again.
type GateStep struct{}

var (
	_ Builtin    = GateStep{}
	_ CacheKeyer = GateStep{}
)

// GateVerdict is the outcome of a gate step, written as JSON to its verdict
// output.
type GateVerdict struct {
	// Blessed reports whether no threshold failed.
	Blessed bool `json:"blessed"`
	// Champion is the model version compared with, or nil when there was
	// none.
	Champion *ModelVersionRef `json:"champion"`
	// ChampionReason says why there was no champion to compare with (or why
	// its metrics could not be used), when that is so.
	ChampionReason string `json:"champion_reason,omitempty"`
	// ChampionSource says where the champion's metrics came from:
	// ChampionSameData or ChampionTag; empty without champion metrics.
	ChampionSource string `json:"champion_source,omitempty"`
	// Thresholds are the verdicts of every threshold, in spec order, a
	// threshold on "*" expanded to one per slice.
	Thresholds []GateResult `json:"thresholds"`
	// Metrics are the candidate's metrics, which the register step records
	// on the new model version.
	Metrics *Metrics `json:"metrics"`
	// MetricsHash is the content hash of the candidate's metrics input; the
	// register step records it (tag mloop.gate.metrics_hash) so that a later
	// gate recognizes the same candidate (see CacheKeyExtra).
	MetricsHash string `json:"metrics_hash,omitempty"`
}

// Sources of a champion's metrics (GateVerdict.ChampionSource).
const (
	// ChampionSameData: the "champion" object of the metrics input, the
	// champion scored on the same data as the candidate (evaluate step).
	ChampionSameData = "same_data"
	// ChampionTag: the champion's MetricsTag, measured when it was
	// registered.
	ChampionTag = "tag"
)

// ModelVersionRef names a model version.
type ModelVersionRef struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// String returns "NAME/VERSION".
func (r ModelVersionRef) String() string { return r.Name + "/" + r.Version }

// Threshold verdicts.
const (
	VerdictPass    = "pass"
	VerdictFail    = "fail"
	VerdictSkipped = "skipped"
)

// GateResult is the verdict of one threshold on one slice.
type GateResult struct {
	// Metric and Slice name what was checked; Slice is empty for the
	// overall metrics.
	Metric string `json:"metric"`
	Slice  string `json:"slice,omitempty"`
	// Kind is "value" (a lower or upper bound) or "change" (against the
	// champion).
	Kind string `json:"kind"`
	// Op is ">=" or "<=": the check is candidate Op Bound.
	Op string `json:"op"`
	// Bound is the value the candidate was compared with (for a change
	// threshold, the champion's value moved by the tolerance); nil when it
	// could not be computed.
	Bound *float64 `json:"bound"`
	// Candidate and Champion are the metric's values, nil when missing.
	Candidate *float64 `json:"candidate"`
	Champion  *float64 `json:"champion"`
	// Verdict is VerdictPass, VerdictFail or VerdictSkipped.
	Verdict string `json:"verdict"`
	// Reason says why, in words.
	Reason string `json:"reason"`
}

// gateConfig is the `with:` of a gate step.
type gateConfig struct {
	Model              string          `with:"model"`
	ChampionAlias      string          `with:"champion_alias"`
	FailWhenNotBlessed bool            `with:"fail_when_not_blessed"`
	Thresholds         []gateThreshold `with:"thresholds"`
}

type gateThreshold struct {
	Metric string           `with:"metric"`
	Slice  string           `with:"slice"`
	Lower  *float64         `with:"lower"`
	Upper  *float64         `with:"upper"`
	Change *changeThreshold `with:"change"`
}

type changeThreshold struct {
	Direction string   `with:"direction"`
	Absolute  *float64 `with:"absolute"`
	Relative  *float64 `with:"relative"`
}

// MetricsTag is the model version tag holding the version's metrics (the
// JSON of Metrics), written by the register step and read by the gate.
const MetricsTag = "mloop.metrics"

// gateConfigOf decodes and checks the gate configuration of st.
func gateConfigOf(st *Step) (*gateConfig, error) {
	var c gateConfig
	if err := decodeWith(st, &c); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return mloop.Errorf(mloop.EINVALID, "step %s: %s", st.Name, fmt.Sprintf(format, args...))
	}
	if c.ChampionAlias != "" && c.Model == "" {
		return nil, bad("with.champion_alias needs with.model (the registered model whose champion to compare with)")
	}
	if c.ChampionAlias == "" {
		c.ChampionAlias = "champion"
	}
	if len(c.Thresholds) == 0 {
		return nil, bad("with.thresholds: give at least one threshold, such as {metric: auc, lower: 0.7}")
	}
	for i, t := range c.Thresholds {
		at := fmt.Sprintf("with.thresholds[%d]", i)
		if strings.TrimSpace(t.Metric) == "" {
			return nil, bad("%s.metric is required: name the metric to check", at)
		}
		if t.Lower == nil && t.Upper == nil && t.Change == nil {
			return nil, bad("%s has no bound: give lower, upper or change", at)
		}
		for _, b := range []struct {
			name string
			v    *float64
		}{{"lower", t.Lower}, {"upper", t.Upper}} {
			if b.v != nil && (math.IsInf(*b.v, 0) || math.IsNaN(*b.v)) {
				return nil, bad("%s.%s must be a finite number", at, b.name)
			}
		}
		if t.Lower != nil && t.Upper != nil && *t.Lower > *t.Upper {
			return nil, bad("%s: lower (%g) is above upper (%g): no value can pass", at, *t.Lower, *t.Upper)
		}
		if ch := t.Change; ch != nil {
			if ch.Direction != "higher" && ch.Direction != "lower" {
				return nil, bad("%s.change.direction must be higher (higher is better) or lower (lower is better), not %q", at, ch.Direction)
			}
			if (ch.Absolute == nil) == (ch.Relative == nil) {
				return nil, bad("%s.change: give exactly one of absolute and relative (the tolerated degradation)", at)
			}
			for _, v := range []*float64{ch.Absolute, ch.Relative} {
				if v != nil && (math.IsInf(*v, 0) || math.IsNaN(*v)) {
					return nil, bad("%s.change tolerance must be a finite number", at)
				}
			}
		}
	}
	return &c, nil
}

// Check validates the gate's configuration, its metrics input and its
// verdict output.
func (GateStep) Check(st *Step) error {
	if _, err := gateConfigOf(st); err != nil {
		return err
	}
	return checkIO(st, []ioRule{{name: "metrics", kind: InputStep, required: true}}, []string{"verdict"})
}

// CacheKeyExtra returns the current champion as {"champion": "NAME/VERSION"}
// ({"champion": "none"} without one).
//
// When the champion is the candidate itself — registered from these very
// metrics (its mloop.gate.metrics_hash tag equals the metrics input's hash)
// — the key names the champion that candidate was gated against (its
// mloop.gate.champion tag): the decision that made it champion stands, so
// re-running an unchanged pipeline is a cache hit instead of gating the
// champion against itself and registering it again.
func (GateStep) CacheKeyExtra(ctx context.Context, s *Service, _ *Run, st *Step, inputs map[string]ResolvedInput) (map[string]string, error) {
	c, err := gateConfigOf(st)
	if err != nil {
		return nil, err
	}
	h := inputs["metrics"].Hash
	return championCacheKey(ctx, s.Registry, c.Model, c.ChampionAlias, func(mv *registry.ModelVersion) bool {
		return h != "" && versionTag(mv, "mloop.gate.metrics_hash") == h
	})
}

// championCacheKey returns the champion's part of a built-in step's cache
// key: {"champion": "none"} without one, else "NAME/VERSION" — or, when
// self reports that the champion is this very candidate (registered from
// the step's inputs), the champion it was gated against (its
// mloop.gate.champion tag), so that an unchanged re-run stays cached
// instead of judging a model against itself.
func championCacheKey(ctx context.Context, reg Registry, model, alias string, self func(*registry.ModelVersion) bool) (map[string]string, error) {
	if model == "" {
		return map[string]string{"champion": "none"}, nil
	}
	mv, _, err := findChampion(ctx, reg, model, alias)
	if err != nil {
		return nil, err
	}
	if mv == nil {
		return map[string]string{"champion": "none"}, nil
	}
	if self(mv) {
		if prev := versionTag(mv, "mloop.gate.champion"); prev != "" {
			return map[string]string{"champion": prev}, nil
		}
	}
	return map[string]string{"champion": versionRef(mv)}, nil
}

// versionTag returns the value of a model version's tag, or "".
func versionTag(mv *registry.ModelVersion, key string) string {
	for _, t := range mv.Tags {
		if t.Key == key {
			return t.Value
		}
	}
	return ""
}

// findChampion returns the version of model holding alias, or nil and the
// reason when there is none.
func findChampion(ctx context.Context, reg Registry, model, alias string) (*registry.ModelVersion, string, error) {
	if model == "" {
		return nil, "no model to compare with (set with.model)", nil
	}
	if reg == nil {
		return nil, "", mloop.Errorf(mloop.EUNAVAILABLE, "the pipeline service has no model registry")
	}
	rm, err := reg.GetRegisteredModel(ctx, model)
	if mloop.IsNotFound(err) {
		return nil, fmt.Sprintf("model %s is not registered yet", model), nil
	} else if err != nil {
		return nil, "", fmt.Errorf("find champion of %s: %w", model, err)
	}
	i := slices.IndexFunc(rm.Aliases, func(a registry.Alias) bool { return a.Alias == alias })
	if i < 0 {
		return nil, fmt.Sprintf("model %s has no version with alias %s", model, alias), nil
	}
	mv, err := reg.GetModelVersion(ctx, model, strconv.FormatInt(rm.Aliases[i].Version, 10))
	if mloop.IsNotFound(err) {
		return nil, fmt.Sprintf("model %s has no version with alias %s", model, alias), nil
	} else if err != nil {
		return nil, "", fmt.Errorf("find champion of %s: %w", model, err)
	}
	return mv, "", nil
}

// championMetrics reads a version's MetricsTag; nil and the reason when it
// has none or it cannot be read.
func championMetrics(mv *registry.ModelVersion) (*Metrics, string) {
	ref := mv.Name + "/" + strconv.FormatInt(mv.Version, 10)
	for _, t := range mv.Tags {
		if t.Key != MetricsTag {
			continue
		}
		var m Metrics
		if err := json.Unmarshal([]byte(t.Value), &m); err != nil {
			return nil, fmt.Sprintf("the %s tag of champion %s is not valid metrics JSON: %v", MetricsTag, ref, err)
		}
		return &m, ""
	}
	return nil, fmt.Sprintf("champion %s has no %s tag (versions registered by a pipeline's register step have one)", ref, MetricsTag)
}

// Run evaluates the thresholds and records the verdict.
func (GateStep) Run(ctx context.Context, bc *BuiltinContext) error {
	c, err := gateConfigOf(bc.Step)
	if err != nil {
		return err
	}
	in, ok := bc.Inputs["metrics"]
	if !ok {
		return mloop.Errorf(mloop.EINVALID, "step %s: the metrics input was not resolved", bc.Step.Name)
	}
	if in.Record != nil && in.Record.Type != "" && in.Record.Type != "metrics" {
		return mloop.Errorf(mloop.EINVALID, "step %s: input metrics (steps.%s.outputs.%s) has type %s; declare that output with type: metrics",
			bc.Step.Name, in.Step, in.Output, in.Record.Type)
	}
	cand, err := ReadMetricsFile(in.Path)
	if err != nil {
		return fmt.Errorf("step %s: candidate metrics: %w", bc.Step.Name, err)
	}
	sameRef, same, err := readSameDataChampion(in.Path)
	if err != nil {
		return fmt.Errorf("step %s: candidate metrics: %w", bc.Step.Name, err)
	}
	v := &GateVerdict{Metrics: cand, MetricsHash: in.Hash}
	var champ *Metrics
	mv, reason, err := findChampion(ctx, bc.Service.Registry, c.Model, c.ChampionAlias)
	if err != nil {
		return fmt.Errorf("step %s: %w", bc.Step.Name, err)
	}
	basis := ""
	switch {
	case mv == nil:
		if sameRef != nil {
			reason += fmt.Sprintf("; the metrics hold champion %s scored on the same data: set with.model: %s to compare with it", sameRef, sameRef.Name)
		}
	default:
		v.Champion = &ModelVersionRef{Name: mv.Name, Version: strconv.FormatInt(mv.Version, 10)}
		if sameRef != nil && *sameRef == *v.Champion {
			champ, v.ChampionSource = same, ChampionSameData
			basis = "champion " + sameRef.String() + " scored on the same data"
			break
		}
		champ, reason = championMetrics(mv)
		if champ != nil {
			v.ChampionSource = ChampionTag
		}
		if sameRef != nil {
			note := fmt.Sprintf("the metrics hold champion %s scored on the same data, but the champion is %s now: compared with its %s tag", sameRef, v.Champion, MetricsTag)
			if reason != "" {
				note += "; " + reason
			}
			reason = note
		}
	}
	v.ChampionReason = reason
	v.Thresholds = evaluateGate(c.Thresholds, cand, champ, reason, basis)
	v.Blessed = true
	var passed, failed, skipped int
	for _, r := range v.Thresholds {
		switch r.Verdict {
		case VerdictPass:
			passed++
		case VerdictFail:
			failed++
			v.Blessed = false
		default:
			skipped++
		}
	}

	if out, ok := bc.Outputs["verdict"]; ok {
		data, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("step %s: encode verdict: %w", bc.Step.Name, err)
		}
		if err := os.WriteFile(out, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("step %s: write verdict: %w", bc.Step.Name, err)
		}
	}
	if bc.Log != nil {
		writeVerdict(bc.Log, v)
	}
	bcMetric(bc, "gate.blessed", boolFloat(v.Blessed))
	bcMetric(bc, "gate.passed", float64(passed))
	bcMetric(bc, "gate.failed", float64(failed))
	bcMetric(bc, "gate.skipped", float64(skipped))
	bcTag(bc, "mloop.gate.blessed", strconv.FormatBool(v.Blessed))
	champName := "none"
	if v.Champion != nil {
		champName = v.Champion.String()
		if bc.StepRun != nil && bc.StepRun.MLflowRunID != "" {
			bc.Edges = append(bc.Edges, Edge{From: Node{Kind: NodeModel, ID: champName},
				To: Node{Kind: NodeStepRun, ID: bc.StepRun.MLflowRunID}, Relation: "input", Name: "champion"})
		}
	}
	bcTag(bc, "mloop.gate.champion", champName)
	if v.ChampionSource != "" {
		bcTag(bc, "mloop.gate.champion_source", v.ChampionSource)
	}
	if !v.Blessed && c.FailWhenNotBlessed {
		var why []string
		for _, r := range v.Thresholds {
			if r.Verdict == VerdictFail && len(why) < 3 {
				why = append(why, r.Reason)
			}
		}
		return fmt.Errorf("candidate not blessed: %d of %d thresholds failed: %s", failed, len(v.Thresholds), strings.Join(why, "; "))
	}
	return nil
}

// evaluateGate checks every threshold of ts against the candidate's metrics
// and, for change thresholds, the champion's (nil when there is none, for
// the reason noChamp). basis, when not empty, says in the reasons of change
// thresholds where the champion's figures come from.
func evaluateGate(ts []gateThreshold, cand, champ *Metrics, noChamp, basis string) []GateResult {
	var out []GateResult
	for _, t := range ts {
		sliceNames := []string{t.Slice}
		if t.Slice == "*" {
			sliceNames = cand.SliceNames()
			if len(sliceNames) == 0 {
				out = append(out, GateResult{Metric: t.Metric, Slice: "*", Kind: thresholdKind(t), Verdict: VerdictFail,
					Reason: fmt.Sprintf("%s on every slice: the candidate's metrics have no slices", t.Metric)})
				continue
			}
		}
		for _, sl := range sliceNames {
			cv, cok, cwhy := metricValue(cand, sl, t.Metric, "the candidate")
			var candPtr *float64
			if cok {
				candPtr = &cv
			}
			what := t.Metric
			if sl != "" {
				what += " [" + sl + "]"
			}
			value := func(op string, bound float64) GateResult {
				r := GateResult{Metric: t.Metric, Slice: sl, Kind: "value", Op: op, Bound: floatPtr(bound), Candidate: candPtr}
				switch {
				case !cok:
					r.Verdict, r.Reason = VerdictFail, cwhy
				case thresholdHolds(cv, op, bound):
					r.Verdict, r.Reason = VerdictPass, fmt.Sprintf("%s %s %s %s", what, fmtMetric(cv), op, fmtMetric(bound))
				default:
					r.Verdict, r.Reason = VerdictFail, fmt.Sprintf("%s %s is not %s %s", what, fmtMetric(cv), op, fmtMetric(bound))
				}
				return r
			}
			if t.Lower != nil {
				out = append(out, value(">=", *t.Lower))
			}
			if t.Upper != nil {
				out = append(out, value("<=", *t.Upper))
			}
			if t.Change != nil {
				out = append(out, changeResult(t, sl, what, cv, cok, cwhy, champ, noChamp, basis))
			}
		}
	}
	return out
}

// changeResult checks one change threshold on one slice.
func changeResult(t gateThreshold, sl, what string, cv float64, cok bool, cwhy string, champ *Metrics, noChamp, basis string) GateResult {
	op := ">="
	if t.Change.Direction == "lower" {
		op = "<="
	}
	r := GateResult{Metric: t.Metric, Slice: sl, Kind: "change", Op: op}
	if cok {
		r.Candidate = &cv
	}
	if champ == nil {
		r.Verdict, r.Reason = VerdictSkipped, "no champion to compare with: "+noChamp
		return r
	}
	hv, hok, hwhy := metricValue(champ, sl, t.Metric, "the champion")
	if !hok {
		r.Verdict, r.Reason = VerdictSkipped, hwhy
		return r
	}
	r.Champion = &hv
	tol, tolText := 0.0, ""
	if t.Change.Absolute != nil {
		tol = *t.Change.Absolute
		tolText = fmtMetric(tol)
	} else {
		tol = *t.Change.Relative * math.Abs(hv)
		tolText = fmtMetric(*t.Change.Relative*100) + "%"
	}
	bound := hv - tol
	sign := "-"
	if op == "<=" {
		bound, sign = hv+tol, "+"
	}
	r.Bound = &bound
	from := ""
	if basis != "" {
		from = "; " + basis
	}
	switch {
	case !cok:
		r.Verdict, r.Reason = VerdictFail, cwhy
	case thresholdHolds(cv, op, bound):
		r.Verdict, r.Reason = VerdictPass, fmt.Sprintf("%s %s %s %s (champion %s %s %s%s)", what, fmtMetric(cv), op, fmtMetric(bound), fmtMetric(hv), sign, tolText, from)
	default:
		r.Verdict, r.Reason = VerdictFail, fmt.Sprintf("%s %s is not %s %s (champion %s %s %s%s)", what, fmtMetric(cv), op, fmtMetric(bound), fmtMetric(hv), sign, tolText, from)
	}
	return r
}

// thresholdKind names the first kind of bound of t, for a result that
// stands for all of them.
func thresholdKind(t gateThreshold) string {
	if t.Lower == nil && t.Upper == nil {
		return "change"
	}
	return "value"
}

// metricValue looks a metric up in m, overall (slice "") or in a slice;
// whose names the metrics' owner in the reason when it is missing.
func metricValue(m *Metrics, slice, metric, whose string) (float64, bool, string) {
	if slice == "" {
		v, ok := m.Values[metric]
		if !ok {
			return 0, false, fmt.Sprintf("%s has no metric %s", whose, metric)
		}
		return v, true, ""
	}
	vals, ok := m.Slices[slice]
	if !ok {
		return 0, false, fmt.Sprintf("%s has no slice %q", whose, slice)
	}
	v, ok := vals[metric]
	if !ok {
		return 0, false, fmt.Sprintf("%s has no metric %s in slice %q", whose, metric, slice)
	}
	return v, true, ""
}

// thresholdHolds reports whether x op bound holds, with a rounding slack.
func thresholdHolds(x float64, op string, bound float64) bool {
	slack := 1e-9 * math.Max(1, math.Abs(bound))
	if op == ">=" {
		return x >= bound-slack
	}
	return x <= bound+slack
}

func floatPtr(f float64) *float64 { return &f }

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// fmtMetric formats a metric value briefly.
func fmtMetric(f float64) string { return strconv.FormatFloat(f, 'g', 6, 64) }

// writeVerdict writes the verdict as a table for people.
func writeVerdict(w io.Writer, v *GateVerdict) {
	champ := "none"
	if v.Champion != nil {
		champ = v.Champion.String()
	}
	switch v.ChampionSource {
	case ChampionSameData:
		champ += " (scored on the same data)"
	case ChampionTag:
		champ += " (its " + MetricsTag + " tag)"
	}
	if v.ChampionReason != "" {
		champ += " (" + v.ChampionReason + ")"
	}
	fmt.Fprintf(w, "champion: %s\n", champ)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "METRIC\tSLICE\tKIND\tCHECK\tCANDIDATE\tCHAMPION\tVERDICT\tREASON")
	opt := func(f *float64) string {
		if f == nil {
			return "-"
		}
		return fmtMetric(*f)
	}
	for _, r := range v.Thresholds {
		sl := r.Slice
		if sl == "" {
			sl = "(all)"
		}
		check := "-"
		if r.Bound != nil {
			check = r.Op + " " + fmtMetric(*r.Bound)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.Metric, sl, r.Kind, check, opt(r.Candidate), opt(r.Champion), r.Verdict, r.Reason)
	}
	tw.Flush()
	if v.Blessed {
		fmt.Fprintln(w, "blessed: yes")
	} else {
		fmt.Fprintln(w, "blessed: no")
	}
}

// bcMetric and bcTag record a metric or tag in bc, making the map if
// needed.
func bcMetric(bc *BuiltinContext, k string, v float64) {
	if bc.Metrics == nil {
		bc.Metrics = map[string]float64{}
	}
	bc.Metrics[k] = v
}

func bcTag(bc *BuiltinContext, k, v string) {
	if bc.Tags == nil {
		bc.Tags = map[string]string{}
	}
	bc.Tags[k] = v
}

// ioRule is an input a built-in step accepts.
type ioRule struct {
	name     string
	kind     InputKind
	required bool
}

// checkIO checks a built-in step's inputs against rules (no others, each
// of its kind, the required ones present) and its outputs against the
// names it may write.
func checkIO(st *Step, rules []ioRule, outputs []string) error {
	bad := func(format string, args ...any) error {
		return mloop.Errorf(mloop.EINVALID, "step %s: %s", st.Name, fmt.Sprintf(format, args...))
	}
	names := make([]string, len(rules))
	for i, r := range rules {
		names[i] = r.name
	}
	for _, in := range st.Inputs {
		i := slices.IndexFunc(rules, func(r ioRule) bool { return r.name == in.Name })
		if i < 0 {
			return bad("uses: %s takes no input %q (its inputs: %s)", st.Uses, in.Name, strings.Join(names, ", "))
		}
		if in.Kind != rules[i].kind {
			return bad("input %s must be %s, not %q", in.Name, kindText(rules[i].kind), in.Ref)
		}
	}
	for _, r := range rules {
		if r.required && st.Input(r.name) == nil {
			return bad("uses: %s needs the input %s (%s)", st.Uses, r.name, kindText(r.kind))
		}
	}
	for _, o := range st.Outputs {
		if !slices.Contains(outputs, o.Name) {
			list := "none"
			if len(outputs) > 0 {
				list = strings.Join(outputs, ", ")
			}
			return bad("uses: %s writes no output %q (its outputs: %s)", st.Uses, o.Name, list)
		}
		if o.Type != "" && o.Type != "file" {
			return bad("output %s of uses: %s is a JSON file: declare it with type: file (or no type), not %s", o.Name, st.Uses, o.Type)
		}
	}
	return nil
}

// kindText describes what an input of kind k is written as.
func kindText(k InputKind) string {
	switch k {
	case InputData:
		return "a dataset reference such as data://NAME@latest"
	case InputStep:
		return "a step output such as steps.STEP.outputs.NAME"
	}
	return "a project file or folder"
}

// decodeWith decodes st.With into the struct dst points to. Fields are
// matched by their `with:"key"` tags; unknown keys and values of the wrong
// type are EINVALID errors naming the step and the key path, as in
// "step gate: with.thresholds[1].lower must be a number, not a string".
// The values are those of a parsed spec: string, integers, float64, bool,
// []any, map[string]any and nil.
func decodeWith(st *Step, dst any) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.Elem().Kind() != reflect.Struct {
		panic("decodeWith: dst must point to a struct")
	}
	var with any
	if st.With != nil {
		with = st.With
	} else {
		with = map[string]any{}
	}
	if err := decodeValue("with", with, rv.Elem()); err != nil {
		return mloop.Errorf(mloop.EINVALID, "step %s: %s", st.Name, err.Error())
	}
	return nil
}

// decodeValue decodes v into rv; path names v in errors.
func decodeValue(path string, v any, rv reflect.Value) error {
	if rv.Kind() == reflect.Pointer {
		if v == nil {
			return nil
		}
		p := reflect.New(rv.Type().Elem())
		if err := decodeValue(path, v, p.Elem()); err != nil {
			return err
		}
		rv.Set(p)
		return nil
	}
	switch rv.Kind() {
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s must be a mapping, not %s", path, withTypeName(v))
		}
		t := rv.Type()
		var known []string
		fields := map[string]int{}
		for i := 0; i < t.NumField(); i++ {
			if k := t.Field(i).Tag.Get("with"); k != "" {
				known = append(known, k)
				fields[k] = i
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			i, ok := fields[k]
			if !ok {
				return fmt.Errorf("%s has no key %q (known keys: %s)", path, k, strings.Join(known, ", "))
			}
			if err := decodeValue(path+"."+k, m[k], rv.Field(i)); err != nil {
				return err
			}
		}
		return nil
	case reflect.String:
		s, ok := v.(string)
		if !ok {
			return fmt.Errorf("%s must be a string, not %s", path, withTypeName(v))
		}
		rv.SetString(s)
		return nil
	case reflect.Bool:
		b, ok := v.(bool)
		if !ok {
			return fmt.Errorf("%s must be true or false, not %s", path, withTypeName(v))
		}
		rv.SetBool(b)
		return nil
	case reflect.Float64:
		f, ok := withNumber(v)
		if !ok {
			return fmt.Errorf("%s must be a number, not %s", path, withTypeName(v))
		}
		rv.SetFloat(f)
		return nil
	case reflect.Slice:
		if s, ok := v.(string); ok && rv.Type().Elem().Kind() == reflect.String {
			v = []any{s} // a single string stands for a list of one
		}
		list, ok := v.([]any)
		if !ok {
			return fmt.Errorf("%s must be a list, not %s", path, withTypeName(v))
		}
		out := reflect.MakeSlice(rv.Type(), len(list), len(list))
		for i, x := range list {
			if err := decodeValue(fmt.Sprintf("%s[%d]", path, i), x, out.Index(i)); err != nil {
				return err
			}
		}
		rv.Set(out)
		return nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String || rv.Type().Elem().Kind() != reflect.String {
			panic("decodeWith: only map[string]string is supported")
		}
		m, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("%s must be a mapping, not %s", path, withTypeName(v))
		}
		out := reflect.MakeMapWithSize(rv.Type(), len(m))
		for k, x := range m {
			s, ok := withScalarText(x)
			if !ok {
				return fmt.Errorf("%s.%s must be a string, not %s", path, k, withTypeName(x))
			}
			out.SetMapIndex(reflect.ValueOf(k), reflect.ValueOf(s))
		}
		rv.Set(out)
		return nil
	}
	panic("decodeWith: unsupported field type " + rv.Type().String())
}

// withNumber converts a number of a parsed spec (or of JSON) to float64.
func withNumber(v any) (float64, bool) {
	switch x := v.(type) {
	case float64:
		return x, true
	case float32:
		return float64(x), true
	case int:
		return float64(x), true
	case int64:
		return float64(x), true
	case uint64:
		return float64(x), true
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	}
	return 0, false
}

// withScalarText returns a string, number or boolean as text.
func withScalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case bool:
		return strconv.FormatBool(x), true
	}
	if f, ok := withNumber(v); ok {
		if i, ok := v.(int64); ok {
			return strconv.FormatInt(i, 10), true
		}
		return strconv.FormatFloat(f, 'g', -1, 64), true
	}
	return "", false
}

// withTypeName names the type of a parsed value for error messages.
func withTypeName(v any) string {
	switch x := v.(type) {
	case nil:
		return "empty (null)"
	case string:
		return fmt.Sprintf("a string (%q)", x)
	case bool:
		return "a boolean"
	case []any:
		return "a list"
	case map[string]any:
		return "a mapping"
	}
	if _, ok := withNumber(v); ok {
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

// readSameDataChampion reads the "champion" member of a metrics file (see
// ParseSameDataChampion); nil without one.
func readSameDataChampion(path string) (*ModelVersionRef, *Metrics, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read metrics: %w", err)
	}
	if fi.Size() > MaxMetricsFileSize {
		return nil, nil, mloop.Errorf(mloop.ETOOLARGE, "metrics file %s is %d bytes; the limit is %d", path, fi.Size(), MaxMetricsFileSize)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, nil, fmt.Errorf("read metrics: %w", err)
	}
	return ParseSameDataChampion(data)
}

// ParseSameDataChampion returns the champion an evaluate step scored on the
// same data as the candidate: the "champion" member of a metrics document,
// an object naming the version ("model", and "version" as a string or a
// whole number) beside its metrics, read as ParseMetrics reads a document.
// It returns nil, nil, nil when the document has no such member, or one
// that does not name a version (then it is a note, not a champion). A
// document that is not a JSON object is EINVALID.
func ParseSameDataChampion(data []byte) (*ModelVersionRef, *Metrics, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, nil, mloop.Errorf(mloop.EINVALID, "metrics file is not a JSON object: %v", err)
	}
	raw, ok := top["champion"]
	if !ok {
		return nil, nil, nil
	}
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return nil, nil, nil
	}
	var ref ModelVersionRef
	if json.Unmarshal(obj["model"], &ref.Name) != nil || strings.TrimSpace(ref.Name) == "" {
		return nil, nil, nil
	}
	if json.Unmarshal(obj["version"], &ref.Version) != nil {
		f, ok := number(obj["version"])
		if !ok || f < 1 || f != math.Trunc(f) || f > 1<<53 {
			return nil, nil, nil
		}
		ref.Version = strconv.FormatInt(int64(f), 10)
	}
	if ref.Version == "" {
		return nil, nil, nil
	}
	m, err := ParseMetrics(raw)
	if err != nil {
		return nil, nil, nil
	}
	delete(m.Values, "version") // a version given as a number names the version
	return &ref, m, nil
}
