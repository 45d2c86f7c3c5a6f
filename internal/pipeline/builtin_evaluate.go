package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/modelcheck"
	"github.com/mloop/mloop/internal/serving/xgboost"
	"github.com/mloop/mloop/internal/train/gbdt"
)

// EvaluateStep is the built-in `uses: evaluate` step: it scores a candidate
// XGBoost model on data with mloop's native runtime
// (internal/serving/xgboost, the runtime that serves it) and, when given a
// registered model, scores that model's champion on the same rows, so that
// a gate compares the two on equal terms.
//
// Configuration (`with:`):
//
//	label: sunny              # the column holding the true values (required)
//	model: weather            # registered model whose champion is also scored (optional)
//	champion_alias: champion  # the alias naming the champion (default champion; needs model)
//
// Inputs: model, the candidate (required): a step output of type model and
// flavor xgboost, or a project file or folder — a folder holding model.json
// or model.ubj, or the model file itself; data, the data to score on
// (required): a dataset reference, a step output or a project file or
// folder of CSV, TSV, NDJSON or Parquet files. Outputs: metrics, of type
// metrics (optional): the metrics below as a JSON object.
//
// Features are matched by name to the model's feature_names; a feature the
// data lacks is EINVALID naming it, and columns the model does not use are
// ignored. A model without feature names (the runtime names them f0, f1, …)
// takes the data's columns but the label in order, as the log says. The data
// is read as train/gbdt reads it. Categorical features take the integer codes
// the model was trained with; category names are accepted only for a model
// that carries them (the mloop_categories attribute train/gbdt writes in
// model.json), and names it never saw count as missing. Text labels of a
// multi:softprob model are its class names (its mloop_classes attribute).
// A row without a label is EINVALID naming the row.
//
// The metrics are gbdt.Evaluate's, the names train/gbdt records: auc,
// logloss and accuracy for binary:logistic; mlogloss and accuracy for
// multi:softprob; rmse, mae and r2 for regression objectives; rows for all.
// The metrics output holds them at the top level and, when a champion was
// scored, a "champion" object with its model, version and metrics:
//
//	{"accuracy": 0.91, "auc": 0.95, "logloss": 0.24, "rows": 300,
//	 "champion": {"model": "weather", "version": "1", "accuracy": 0.88, "auc": 0.93, "logloss": 0.29, "rows": 300}}
//
// Metrics files ignore nested objects, so the champion's figures are not
// taken for the candidate's; the gate reads them (see GateStep).
//
// The champion is the version of model holding champion_alias; its files
// come from the artifact store. Without one — no model given, a model not
// registered yet, no version with the alias — or when the champion cannot
// be scored on this data (another flavor, a feature the data lacks), the
// metrics have no "champion" member and the log says why.
//
// The step records the candidate's metrics under their names and the
// champion's as champion_NAME, the tag mloop.evaluate.champion ("NAME/VERSION"
// or "none"), and a lineage edge from the champion's model version to the
// step run (relation "input", name "champion"). It logs a table of the
// candidate's and the champion's metrics.
//
// Scoring is deterministic. EvaluateStep implements CacheKeyer: the
// champion ("NAME/VERSION" or "none") enters the cache key as
// uses.champion, so a new champion makes the step run again.
type EvaluateStep struct{}

var (
	_ Builtin    = EvaluateStep{}
	_ CacheKeyer = EvaluateStep{}
)

// evaluateConfig is the `with:` of an evaluate step.
type evaluateConfig struct {
	Label         string `with:"label"`
	Model         string `with:"model"`
	ChampionAlias string `with:"champion_alias"`
}

// evaluateConfigOf decodes and checks the evaluate configuration of st,
// filling the default alias.
func evaluateConfigOf(st *Step) (*evaluateConfig, error) {
	var c evaluateConfig
	if err := decodeWith(st, &c); err != nil {
		return nil, err
	}
	bad := func(format string, args ...any) error {
		return mloop.Errorf(mloop.EINVALID, "step %s: %s", st.Name, fmt.Sprintf(format, args...))
	}
	if strings.TrimSpace(c.Label) == "" {
		return nil, bad("with.label is required: name the column holding the true values")
	}
	if c.ChampionAlias != "" && c.Model == "" {
		return nil, bad("with.champion_alias needs with.model (the registered model whose champion to score)")
	}
	if c.Model != "" && strings.TrimSpace(c.Model) == "" {
		return nil, bad("with.model is blank: name a registered model, or leave it out")
	}
	if c.ChampionAlias == "" {
		c.ChampionAlias = "champion"
	}
	return &c, nil
}

// Check validates the evaluate configuration and its inputs and outputs.
func (EvaluateStep) Check(st *Step) error {
	if _, err := evaluateConfigOf(st); err != nil {
		return err
	}
	bad := func(format string, args ...any) error {
		return mloop.Errorf(mloop.EINVALID, "step %s: %s", st.Name, fmt.Sprintf(format, args...))
	}
	for _, in := range st.Inputs {
		switch in.Name {
		case "model":
			if in.Kind == InputData {
				return bad("input model must be a step output such as steps.train.outputs.model, or a project file or folder, not %q", in.Ref)
			}
		case "data":
		default:
			return bad("uses: %s takes no input %q (its inputs: model, data)", st.Uses, in.Name)
		}
	}
	if st.Input("model") == nil {
		return bad("uses: %s needs the input model: the candidate, such as steps.train.outputs.model", st.Uses)
	}
	if st.Input("data") == nil {
		return bad("uses: %s needs the input data: a dataset reference such as data://NAME@latest, a step output or a project file or folder", st.Uses)
	}
	for _, o := range st.Outputs {
		if o.Name != "metrics" {
			return bad("uses: %s writes no output %q (its outputs: metrics)", st.Uses, o.Name)
		}
		if o.Type != "metrics" {
			return bad("output metrics of uses: %s is a metrics file: declare it with type: metrics", st.Uses)
		}
	}
	return nil
}

// CacheKeyExtra returns the current champion as {"champion": "NAME/VERSION"}
// ({"champion": "none"} without one).
//
// When the champion is the candidate itself — the version registered from
// the model input's artifacts — the key names the champion that version was
// gated against (its mloop.gate.champion tag), as the gate's does: re-running
// an unchanged pipeline after its candidate became champion is then a cache
// hit rather than the champion scored against itself and registered again.
func (EvaluateStep) CacheKeyExtra(ctx context.Context, s *Service, _ *Run, st *Step, inputs map[string]ResolvedInput) (map[string]string, error) {
	c, err := evaluateConfigOf(st)
	if err != nil {
		return nil, err
	}
	in, ok := inputs["model"]
	return championCacheKey(ctx, s.Registry, c.Model, c.ChampionAlias, func(mv *registry.ModelVersion) bool {
		return ok && in.Record != nil && in.Record.URI != "" && versionHolds(mv, in.Record.URI)
	})
}

// versionRef returns "NAME/VERSION".
func versionRef(mv *registry.ModelVersion) string {
	return mv.Name + "/" + strconv.FormatInt(mv.Version, 10)
}

// versionHolds reports whether the model version was registered from the
// artifacts at uri.
func versionHolds(mv *registry.ModelVersion, uri string) bool {
	uri = strings.TrimRight(uri, "/")
	return strings.TrimRight(mv.Source, "/") == uri || (mv.StorageLocation != "" && strings.TrimRight(mv.StorageLocation, "/") == uri)
}

// evalModel is a model loaded for scoring.
type evalModel struct {
	rt   *xgboost.Model
	file string
	obj  gbdt.Objective
	// named is false when the model file names no features (the runtime
	// calls them f0, f1, …).
	named bool
	// categories are the category names of categorical features, by
	// feature name (the mloop_categories attribute); classes the class
	// names of a multi-class model (mloop_classes).
	categories map[string][]string
	classes    []string
}

// evalObjectives maps the runtime's objectives to how gbdt.Evaluate scores
// them.
var evalObjectives = map[string]gbdt.Objective{
	"binary:logistic":      gbdt.BinaryLogistic,
	"multi:softprob":       gbdt.MultiSoftprob,
	"reg:squarederror":     gbdt.RegSquaredError,
	"reg:linear":           gbdt.RegSquaredError,
	"reg:pseudohubererror": gbdt.RegSquaredError,
	"reg:absoluteerror":    gbdt.RegSquaredError,
	"count:poisson":        gbdt.RegSquaredError,
	"reg:gamma":            gbdt.RegSquaredError,
	"reg:tweedie":          gbdt.RegSquaredError,
}

// evalModelFile returns the XGBoost model file at p: p itself, or the
// model.json or model.ubj in the folder p.
func evalModelFile(p string) (string, error) {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", mloop.Errorf(mloop.ENOTFOUND, "the model %s does not exist", p)
		}
		return "", fmt.Errorf("model: %w", err)
	}
	if !fi.IsDir() {
		return p, nil
	}
	var found []string
	for _, n := range []string{modelcheck.XGBoostJSONFile, modelcheck.XGBoostUBJFile} {
		if st, err := os.Stat(filepath.Join(p, n)); err == nil && !st.IsDir() {
			found = append(found, filepath.Join(p, n))
		}
	}
	switch len(found) {
	case 0:
		return "", mloop.Errorf(mloop.EINVALID, "the model folder holds no XGBoost model (%s or %s)", modelcheck.XGBoostJSONFile, modelcheck.XGBoostUBJFile)
	case 2:
		return "", mloop.Errorf(mloop.EINVALID, "the model folder holds both %s and %s: keep only one", modelcheck.XGBoostJSONFile, modelcheck.XGBoostUBJFile)
	}
	return found[0], nil
}

// loadEvalModel loads the XGBoost model at p (a file or a folder holding
// one) with the category and class names its JSON attributes carry.
func loadEvalModel(p string) (*evalModel, error) {
	file, err := evalModelFile(p)
	if err != nil {
		return nil, err
	}
	rt, err := xgboost.LoadFile(file)
	if err != nil {
		return nil, err
	}
	m := &evalModel{rt: rt, file: file}
	obj, ok := evalObjectives[rt.Objective()]
	if !ok {
		return nil, mloop.Errorf(mloop.EINVALID, "model %s has objective %s; evaluate scores binary:logistic, multi:softprob and regression models",
			filepath.Base(file), rt.Objective())
	}
	if obj != gbdt.MultiSoftprob && rt.Outputs() != 1 {
		return nil, mloop.Errorf(mloop.EINVALID, "model %s predicts %d targets; evaluate scores models of one target", filepath.Base(file), rt.Outputs())
	}
	m.obj = obj
	for i, f := range rt.Features() {
		if f.Name != "f"+strconv.Itoa(i) {
			m.named = true
			break
		}
	}
	// The runtime does not expose the learner's attributes: read them from
	// a JSON model (a UBJSON one has none here).
	data, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("read model: %w", err)
	}
	if attrs := learnerAttributes(data); attrs != nil {
		if s, ok := attrs[gbdt.AttrCategories]; ok {
			if err := json.Unmarshal([]byte(s), &m.categories); err != nil {
				return nil, mloop.Errorf(mloop.EINVALID, "model %s: attribute %s is not an object of name lists: %v", filepath.Base(file), gbdt.AttrCategories, err)
			}
		}
		if s, ok := attrs[gbdt.AttrClasses]; ok && obj == gbdt.MultiSoftprob {
			if err := json.Unmarshal([]byte(s), &m.classes); err != nil {
				return nil, mloop.Errorf(mloop.EINVALID, "model %s: attribute %s is not a list of names: %v", filepath.Base(file), gbdt.AttrClasses, err)
			}
			if len(m.classes) != rt.Outputs() {
				return nil, mloop.Errorf(mloop.EINVALID, "model %s: attribute %s names %d classes, the model predicts %d", filepath.Base(file), gbdt.AttrClasses, len(m.classes), rt.Outputs())
			}
		}
	}
	return m, nil
}

// learnerAttributes returns learner.attributes of an XGBoost JSON model,
// nil when it has none or is not JSON. It reads tokens only up to them:
// the model's trees further on may hold NaN, which is not JSON. (XGBoost
// and train/gbdt write the attributes before the booster.)
func learnerAttributes(data []byte) map[string]string {
	dec := json.NewDecoder(bytes.NewReader(data))
	// object walks the members of the object dec is at, calling member
	// for each key until it returns true.
	object := func(member func(key string) (bool, error)) bool {
		if t, err := dec.Token(); err != nil || t != json.Delim('{') {
			return false
		}
		for dec.More() {
			t, err := dec.Token()
			if err != nil {
				return false
			}
			key, _ := t.(string)
			done, err := member(key)
			if err != nil {
				return false
			}
			if done {
				return true
			}
		}
		return false
	}
	var attrs map[string]string
	object(func(key string) (bool, error) {
		if key != "learner" {
			var skip json.RawMessage
			return false, dec.Decode(&skip)
		}
		return object(func(key string) (bool, error) {
			if key != "attributes" {
				var skip json.RawMessage
				return false, dec.Decode(&skip)
			}
			return true, dec.Decode(&attrs)
		}), nil
	})
	return attrs
}

// describe says what the model is, for the log.
func (m *evalModel) describe() string {
	return fmt.Sprintf("%s, %d trees, %d features", m.rt.Objective(), m.rt.NumTrees(), len(m.rt.Features()))
}

// dataColumns returns the column names of each data file.
func dataColumns(ctx context.Context, files []string) ([][]string, error) {
	out := make([][]string, len(files))
	for i, f := range files {
		r, err := dataset.OpenFile(ctx, f, dataset.ReadOptions{})
		if err != nil {
			return nil, evalDataError(err)
		}
		for _, c := range r.Columns() {
			out[i] = append(out[i], c.Name)
		}
		r.Close()
	}
	return out, nil
}

// evalDataError makes bad input (a *dataset.InputError) EINVALID.
func evalDataError(err error) error {
	var ie *dataset.InputError
	if errors.As(err, &ie) {
		return mloop.Errorf(mloop.EINVALID, "%s", ie.Error())
	}
	return err
}

// score reads files for m and returns its metrics. who names the model in
// messages ("the candidate", "champion weather/1"); notes receives lines
// for the log.
func (m *evalModel) score(ctx context.Context, files []string, cols [][]string, label string, who string, notes io.Writer) (map[string]float64, error) {
	fs := m.rt.Features()
	like := &gbdt.Data{Features: make([]gbdt.Feature, len(fs)), Classes: m.classes}
	names := make([]string, len(fs))
	for i, f := range fs {
		names[i] = f.Name
	}
	byName := m.named
	if !m.named {
		// Features named f0, f1, … by the runtime: by name when the data
		// has such columns, else the data's columns in order.
		byName = true
		for _, c := range cols {
			for _, n := range names {
				if !slices.Contains(c, n) {
					byName = false
				}
			}
		}
		if !byName {
			var rest []string
			for _, c := range cols[0] {
				if c != label {
					rest = append(rest, c)
				}
			}
			if len(rest) != len(fs) {
				return nil, mloop.Errorf(mloop.EINVALID, "%s names no features, so its %d features are the data's columns in order, but the data has %d columns besides the label %s (%s): keep only the model's features, in its order",
					who, len(fs), len(rest), label, strings.Join(rest, ", "))
			}
			names = rest
			fmt.Fprintf(notes, "%s names no features: its features are the data's columns in order: %s\n", who, strings.Join(rest, ", "))
		}
	}
	for i, f := range fs {
		like.Features[i] = gbdt.Feature{Name: names[i], Categorical: f.Type == serving.Categorical}
		if like.Features[i].Categorical {
			like.Features[i].Categories = m.categories[f.Name]
		}
	}
	// Every file must have the label and the features.
	for k, c := range cols {
		if !slices.Contains(c, label) {
			return nil, mloop.Errorf(mloop.EINVALID, "the data has no label column %s (%s has the columns %s)", label, filepath.Base(files[k]), evalList(c))
		}
		if !byName {
			continue
		}
		for _, n := range names {
			if !slices.Contains(c, n) {
				return nil, mloop.Errorf(mloop.EINVALID, "the data lacks the column %s, a feature of %s (%s has the columns %s)", n, who, filepath.Base(files[k]), evalList(c))
			}
		}
	}
	d, err := gbdt.LoadFiles(ctx, files, gbdt.LoadOptions{Label: label, Features: names, Objective: m.obj, Like: like})
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		err = evalDataError(err)
		if msg := mloop.ErrorMessage(err); mloop.ErrorCode(err) == mloop.EINVALID && strings.Contains(msg, "holds names") {
			return nil, mloop.Errorf(mloop.EINVALID, "%s; %s knows its categories only by their integer codes (it carries no category names): the data must carry the codes the model was trained with",
				msg, who)
		}
		return nil, err
	}
	n := d.Rows()
	outs := m.rt.Outputs()
	rows := make([]float32, n*len(fs))
	for j, col := range d.Columns {
		for i, v := range col {
			rows[i*len(fs)+j] = v
		}
	}
	preds := make([]float32, n*outs)
	if err := m.rt.Predict(ctx, serving.Batch{Rows: n, Cols: len(fs), Values: rows}, preds); err != nil {
		return nil, fmt.Errorf("predict: %w", err)
	}
	if m.obj == gbdt.BinaryLogistic {
		for i, y := range d.Labels {
			if y != 0 && y != 1 {
				return nil, mloop.Errorf(mloop.EINVALID, "label column %s: row %d is %g; the labels of %s (binary:logistic) are 0 or 1 (or false and true)", label, i+1, y, who)
			}
		}
	}
	if m.obj == gbdt.MultiSoftprob {
		for i, y := range d.Labels {
			if y < 0 || int(y) >= outs || y != float32(math.Trunc(float64(y))) {
				return nil, mloop.Errorf(mloop.EINVALID, "label column %s: row %d is %g, not a class of %s (0 to %d)", label, i+1, y, who, outs-1)
			}
		}
	}
	return gbdt.Evaluate(m.obj, outs, d.Labels, nil, preds)
}

// evalList lists column names for a message, shortened past 20.
func evalList(cols []string) string {
	if len(cols) > 20 {
		return strings.Join(cols[:20], ", ") + fmt.Sprintf(", … (%d in all)", len(cols))
	}
	return strings.Join(cols, ", ")
}

// championVersion is a champion scored on the same data.
type championVersion struct {
	ref     ModelVersionRef
	metrics map[string]float64
}

// Run scores the candidate and the champion and writes the metrics.
func (EvaluateStep) Run(ctx context.Context, bc *BuiltinContext) error {
	c, err := evaluateConfigOf(bc.Step)
	if err != nil {
		return err
	}
	name := bc.Step.Name
	log := bcLog(bc)
	mdl, ok := bc.Inputs["model"]
	if !ok {
		return mloop.Errorf(mloop.EINVALID, "step %s: the model input was not resolved", name)
	}
	if rec := mdl.Record; rec != nil {
		if rec.Type != "" && rec.Type != "model" {
			return mloop.Errorf(mloop.EINVALID, "step %s: input model (steps.%s.outputs.%s) has type %s; declare that output with type: model and flavor: xgboost",
				name, mdl.Step, mdl.Output, rec.Type)
		}
		if rec.Flavor != "" && rec.Flavor != modelcheck.FlavorXGBoost {
			return mloop.Errorf(mloop.EINVALID, "step %s: input model (steps.%s.outputs.%s) has flavor %s; evaluate scores XGBoost models (flavor: xgboost)",
				name, mdl.Step, mdl.Output, rec.Flavor)
		}
	}
	din, ok := bc.Inputs["data"]
	if !ok {
		return mloop.Errorf(mloop.EINVALID, "step %s: the data input was not resolved", name)
	}
	files, err := trainInputFiles(din)
	if err != nil {
		return fmt.Errorf("step %s: input data: %w", name, err)
	}
	if len(files) == 0 {
		return mloop.Errorf(mloop.EINVALID, "step %s: input data (%s) holds no data files (CSV, TSV, NDJSON or Parquet)", name, trainInputName(din))
	}
	cols, err := dataColumns(ctx, files)
	if err != nil {
		return fmt.Errorf("step %s: read data: %w", name, err)
	}
	fmt.Fprintf(log, "data: %s, %d file(s)\n", trainInputName(din), len(files))

	cand, err := loadEvalModel(mdl.Path)
	if err != nil {
		return fmt.Errorf("step %s: candidate model: %w", name, err)
	}
	fmt.Fprintf(log, "candidate: %s (%s)\n", trainInputName(mdl), cand.describe())
	metrics, err := cand.score(ctx, files, cols, c.Label, "the candidate", log)
	if err != nil {
		return fmt.Errorf("step %s: score the candidate: %w", name, err)
	}

	champ, reason, err := scoreChampion(ctx, bc, c, files, cols)
	if err != nil {
		return fmt.Errorf("step %s: %w", name, err)
	}
	if champ == nil {
		fmt.Fprintf(log, "no champion scored: %s\n", reason)
	}

	if mp, ok := bc.Outputs["metrics"]; ok {
		doc := map[string]any{}
		for k, v := range metrics {
			doc[k] = v
		}
		if champ != nil {
			cd := map[string]any{"model": champ.ref.Name, "version": champ.ref.Version}
			for k, v := range champ.metrics {
				if k != "model" && k != "version" {
					cd[k] = v
				}
			}
			doc["champion"] = cd
		}
		data, err := json.MarshalIndent(doc, "", "  ")
		if err != nil {
			return fmt.Errorf("step %s: encode metrics: %w", name, err)
		}
		if err := os.WriteFile(mp, append(data, '\n'), 0o644); err != nil {
			return fmt.Errorf("step %s: write metrics: %w", name, err)
		}
	}
	for k, v := range metrics {
		bcMetric(bc, k, v)
	}
	champName := "none"
	if champ != nil {
		champName = champ.ref.String()
		for k, v := range champ.metrics {
			bcMetric(bc, "champion_"+k, v)
		}
		if bc.StepRun != nil && bc.StepRun.MLflowRunID != "" {
			bc.Edges = append(bc.Edges, Edge{From: Node{Kind: NodeModel, ID: champName},
				To: Node{Kind: NodeStepRun, ID: bc.StepRun.MLflowRunID}, Relation: "input", Name: "champion"})
		}
	}
	bcTag(bc, "mloop.evaluate.champion", champName)
	writeEvalTable(log, metrics, champ)
	return nil
}

// scoreChampion scores the champion of c.Model on the data. It returns nil
// and the reason when there is no champion or it cannot be scored on this
// data; an error only for failures worth retrying (the registry or the
// artifact store unavailable, the step cancelled).
func scoreChampion(ctx context.Context, bc *BuiltinContext, c *evaluateConfig, files []string, cols [][]string) (*championVersion, string, error) {
	log := bcLog(bc)
	if c.Model == "" {
		return nil, "no registered model to take the champion from (set with.model)", nil
	}
	s := bc.Service
	if s == nil {
		return nil, "", mloop.Errorf(mloop.EUNAVAILABLE, "the step has no pipeline service to find the champion with")
	}
	mv, reason, err := findChampion(ctx, s.Registry, c.Model, c.ChampionAlias)
	if err != nil || mv == nil {
		return nil, reason, err
	}
	ref := ModelVersionRef{Name: mv.Name, Version: strconv.FormatInt(mv.Version, 10)}
	who := "champion " + ref.String()
	if f := versionTag(mv, "mloop.flavor"); f != "" && f != modelcheck.FlavorXGBoost {
		return nil, fmt.Sprintf("%s is a %s model; evaluate scores XGBoost models", who, f), nil
	}
	dir, err := os.MkdirTemp("", "mloop-champion-")
	if err != nil {
		return nil, "", fmt.Errorf("fetch %s: %w", who, err)
	}
	defer os.RemoveAll(dir)
	p, err := s.fetchModelVersion(ctx, mv, dir)
	if err != nil {
		if ctx.Err() != nil || !evalSkippable(err) {
			return nil, "", fmt.Errorf("fetch %s: %w", who, err)
		}
		return nil, fmt.Sprintf("%s cannot be fetched: %s", who, evalText(err)), nil
	}
	m, err := loadEvalModel(p)
	if err != nil {
		if !evalSkippable(err) {
			return nil, "", fmt.Errorf("load %s: %w", who, err)
		}
		return nil, fmt.Sprintf("%s cannot be loaded: %s", who, evalText(err)), nil
	}
	fmt.Fprintf(log, "%s: %s@%s (%s)\n", who, c.Model, c.ChampionAlias, m.describe())
	metrics, err := m.score(ctx, files, cols, c.Label, who, log)
	if err != nil {
		if ctx.Err() != nil || !evalSkippable(err) {
			return nil, "", fmt.Errorf("score %s: %w", who, err)
		}
		return nil, fmt.Sprintf("%s cannot be scored on this data: %s", who, evalText(err)), nil
	}
	return &championVersion{ref: ref, metrics: metrics}, "", nil
}

// evalSkippable reports whether err says the champion cannot be scored at
// all (rather than that something failed for now).
func evalSkippable(err error) bool {
	switch mloop.ErrorCode(err) {
	case mloop.EINVALID, mloop.ENOTFOUND, mloop.ETOOLARGE, mloop.ENOTIMPLEMENTED:
		return true
	}
	return false
}

// evalText is an error's message without mloop's error prefix.
func evalText(err error) string {
	if code := mloop.ErrorCode(err); code != mloop.EINTERNAL {
		return mloop.ErrorMessage(err)
	}
	return err.Error()
}

// modelVersionURIer is implemented by registries that resolve where a
// version's files live (*registry.Service does).
type modelVersionURIer interface {
	GetModelVersionDownloadURI(ctx context.Context, name, version string) (string, error)
}

// fetchModelVersion downloads the files of a model version from the
// artifact store into the folder dir and returns the local path of the
// model: dir for a folder of files, the file for a one-file version.
func (s *Service) fetchModelVersion(ctx context.Context, mv *registry.ModelVersion, dir string) (string, error) {
	uri := mv.StorageLocation
	if uri == "" {
		uri = mv.Source
	}
	if u, ok := s.Registry.(modelVersionURIer); ok {
		loc, err := u.GetModelVersionDownloadURI(ctx, mv.Name, strconv.FormatInt(mv.Version, 10))
		if err != nil {
			return "", err
		}
		uri = loc
	}
	key, err := s.artifactKey(uri)
	if err != nil {
		if code := mloop.ErrorCode(err); code != mloop.EINTERNAL && code != mloop.EUNAVAILABLE {
			return "", mloop.Errorf(code, "its files are at %s, which this server's artifact store does not hold (%s)", uri, strings.TrimSuffix(mloop.ErrorMessage(err), "."))
		}
		return "", err
	}
	if key == "" {
		return "", mloop.Errorf(mloop.EINVALID, "its artifact URI %s names the whole artifact store, not a model's files", uri)
	}
	single, err := s.Artifacts.Exists(ctx, key)
	if err != nil {
		return "", err
	}
	if single {
		p := filepath.Join(dir, path.Base(key))
		if err := s.getFile(ctx, key, p); err != nil {
			return "", err
		}
		return p, nil
	}
	if err := s.downloadTree(ctx, key, dir); err != nil {
		return "", err
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	if len(entries) == 0 {
		return "", mloop.Errorf(mloop.ENOTFOUND, "it has no files at %s", uri)
	}
	return dir, nil
}

// writeEvalTable logs the candidate's metrics beside the champion's.
func writeEvalTable(w io.Writer, cand map[string]float64, champ *championVersion) {
	keys := make([]string, 0, len(cand))
	for k := range cand {
		keys = append(keys, k)
	}
	if champ != nil {
		for k := range champ.metrics {
			if _, ok := cand[k]; !ok {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	opt := func(m map[string]float64, k string) (float64, string) {
		v, ok := m[k]
		if !ok {
			return 0, "-"
		}
		return v, fmtMetric(v)
	}
	if champ == nil {
		fmt.Fprintln(tw, "METRIC\tCANDIDATE")
		for _, k := range keys {
			_, s := opt(cand, k)
			fmt.Fprintf(tw, "%s\t%s\n", k, s)
		}
		tw.Flush()
		return
	}
	fmt.Fprintf(tw, "METRIC\tCANDIDATE\tCHAMPION %s\tDIFFERENCE\n", champ.ref)
	for _, k := range keys {
		cv, cs := opt(cand, k)
		hv, hs := opt(champ.metrics, k)
		diff := "-"
		if cs != "-" && hs != "-" {
			diff = strconv.FormatFloat(cv-hv, 'g', 4, 64)
			if cv-hv >= 0 {
				diff = "+" + diff
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k, cs, hs, diff)
	}
	tw.Flush()
}
