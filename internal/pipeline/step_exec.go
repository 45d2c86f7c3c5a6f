package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/tracking"
)

// This file executes one step: its inputs, cache key and cache lookup, its
// nested MLflow run, its attempts (a command through the Executor, or a
// built-in in-process), the checks of its outputs, and what it records.

// stepPrep is what the runner works out for a step before deciding whether
// to run it.
type stepPrep struct {
	st *Step
	// params are the step's resolved params.
	params map[string]string
	// input is the cache input and key its cache key.
	input CacheInput
	key   string
	// inputs are the resolved inputs; localized tells whether their local
	// paths are set (data materialized, upstream outputs downloaded).
	inputs    map[string]ResolvedInput
	localized bool
	// mlRunID and artifactURI are the step's nested MLflow run.
	mlRunID, artifactURI string
}

// attemptResult is how one attempt ended.
type attemptResult struct {
	ok          bool
	interrupted bool
	msg         string
	exit        *int
	metrics     map[string]float64
	tags        map[string]string
	edges       []Edge
}

// runStep takes a step from pending (or re-attached running) to a final
// state, or, when the server shuts down, to pending or failed per its
// retry policy.
func (ex *runExec) runStep(ctx context.Context, name string) {
	s, r := ex.s, ex.run
	st := ex.spec.Step(name)
	sr := ex.step(name)
	p, err := ex.prepare(ctx, st)
	if err == nil {
		err = ex.trackStep(ctx, p, sr)
	}
	if err != nil {
		if ctx.Err() != nil {
			ex.interrupted(ctx, p, st, sr.Attempt, nil, false)
			return
		}
		ex.fail(p, st, fmt.Sprintf("prepare step %s: %s", name, errText(err)), nil)
		return
	}
	if h := ex.attached[name]; h != nil && sr.Status == StepRunning {
		res := ex.waitAttached(ctx, p, h, sr.Attempt)
		ex.afterAttempt(ctx, p, sr.Attempt, res)
		return
	}

	// Cache.
	var explain []string
	if st.Cache {
		e, err := s.Store.GetCache(ctx, p.key)
		switch {
		case err == nil:
			why, err := ex.usable(ctx, st, e)
			if err != nil {
				s.logger().Warn("check cached outputs", "run", r.ID, "step", name, "err", err)
				why = "the outputs of run " + e.RunID + " could not be checked: " + errText(err)
			}
			if why == "" {
				ex.cacheHit(ctx, p, e)
				return
			}
			explain = []string{"cache miss: " + why}
		case !mloop.IsNotFound(err):
			s.logger().Warn("look up step cache", "run", r.ID, "step", name, "err", err)
		}
	}
	if explain == nil {
		if !st.Cache {
			explain = []string{"cache disabled (cache: false)"}
		} else if prev, err := s.Store.LatestCache(ctx, r.Pipeline, name); err == nil {
			explain = ExplainDiff(prev.Input, p.input)
			if len(explain) == 0 {
				explain = []string{"the earlier result with the same inputs (run " + prev.RunID + ") cannot be reused"}
			}
		} else {
			explain = []string{"no earlier result for this step"}
		}
	}
	ex.updateStep(name, StepUpdate{CacheKey: &p.key, Explain: explain})
	ex.tagStep(ctx, p, map[string]string{"mloop.cache_key": p.key, "mloop.cached": "false"})

	maxAttempts := 1 + st.Retries
	for {
		attempt := ex.step(name).Attempt + 1
		if attempt > maxAttempts {
			ex.fail(p, st, fmt.Sprintf("step %s has no attempts left (%d of %d made)", name, attempt-1, maxAttempts), nil)
			return
		}
		res := ex.attempt(ctx, p, attempt, maxAttempts)
		if !ex.afterAttempt(ctx, p, attempt, res) {
			return
		}
		delay := s.retryDelay(attempt)
		appendLog(s.LogPath(r.ID, name), fmt.Sprintf("--- retrying in %s\n", delay))
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			// Attempt `attempt` failed and was recorded: a stop while
			// waiting to retry gives nothing back.
			ex.interrupted(ctx, p, st, attempt+1, res.exit, true)
			return
		case <-t.C:
		}
	}
}

// afterAttempt records how an attempt ended and reports whether the step
// should be tried again.
func (ex *runExec) afterAttempt(ctx context.Context, p *stepPrep, attempt int, res attemptResult) bool {
	st := p.st
	switch {
	case res.interrupted:
		ex.interrupted(ctx, p, st, attempt, res.exit, true)
		return false
	case res.ok:
		ex.succeed(ctx, p, res)
		return false
	}
	appendLog(ex.s.LogPath(ex.run.ID, st.Name), fmt.Sprintf("--- attempt %d/%d failed: %s\n", attempt, 1+st.Retries, res.msg))
	if attempt < 1+st.Retries {
		msg := fmt.Sprintf("attempt %d failed: %s", attempt, res.msg)
		ex.updateStep(st.Name, StepUpdate{Error: &msg, ExitCode: res.exit})
		return true
	}
	ex.fail(p, st, res.msg, res.exit)
	return false
}

// prepare resolves a step's params and inputs and computes its cache key.
func (ex *runExec) prepare(ctx context.Context, st *Step) (*stepPrep, error) {
	s, r := ex.s, ex.run
	p := &stepPrep{st: st, params: map[string]string{}, inputs: map[string]ResolvedInput{}}
	pipelineParam := func(scope, name string) (string, error) {
		if v, ok := ex.spec.Param(name); ok && scope == "params" {
			return v, nil
		}
		return "", fmt.Errorf("undefined %s.%s", scope, name)
	}
	for k, v := range st.Params {
		rv, err := Substitute(v, pipelineParam)
		if err != nil {
			return p, fmt.Errorf("param %s: %w", k, err)
		}
		p.params[k] = rv
	}
	// The key sees params substituted and inputs and outputs as written:
	// their local paths differ from run to run.
	keyLookup := func(scope, name string) (string, error) {
		if scope == "params" {
			return p.param(ex.spec, name)
		}
		return "${{ " + scope + "." + name + " }}", nil
	}
	in := CacheInput{Engine: EngineSalt, Image: st.Image, Params: map[string]string{}}
	for k, v := range p.params {
		in.Params[k] = v
	}
	for _, o := range st.Outputs {
		if in.Outputs == nil {
			in.Outputs = map[string]string{}
		}
		in.Outputs[o.Name] = strings.TrimSpace(o.Path + " " + o.Type + " " + o.Flavor)
	}
	if st.Uses != "" {
		with, err := json.Marshal(st.With)
		if err != nil {
			return p, fmt.Errorf("encode with: %w", err)
		}
		in.Command = []string{"uses:" + st.Uses, string(with)}
		b := s.Builtins[st.Uses]
		if b == nil {
			return p, mloop.Errorf(mloop.EINVALID, "unknown built-in step %q", st.Uses)
		}
	} else {
		argv, err := substituteAll(st, keyLookup)
		if err != nil {
			return p, err
		}
		in.Command = argv
	}
	if len(st.Env) > 0 {
		in.Env = map[string]string{}
		for k, v := range st.Env {
			rv, err := Substitute(v, keyLookup)
			if err != nil {
				return p, fmt.Errorf("env %s: %w", k, err)
			}
			in.Env[k] = rv
		}
	}
	for _, i := range st.Inputs {
		ri := ResolvedInput{Name: i.Name, Kind: i.Kind}
		switch i.Kind {
		case InputPath:
			abs := filepath.Join(r.ProjectDir, filepath.FromSlash(i.Path))
			h, err := HashTree(ctx, abs, s.memo())
			if err != nil {
				return p, fmt.Errorf("code input %s (%s): %w", i.Name, i.Path, err)
			}
			ri.Path, ri.Hash = abs, h
			if in.Code == nil {
				in.Code = map[string]InputHash{}
			}
			in.Code[i.Name] = InputHash{Ref: i.Path, Hash: h}
		case InputData:
			v, pin, err := s.pinnedVersion(ctx, r, i)
			if err != nil {
				return p, fmt.Errorf("data input %s: %w", i.Name, err)
			}
			ri.Dataset, ri.Hash = v, pin.Hash
			if in.Data == nil {
				in.Data = map[string]InputHash{}
			}
			in.Data[i.Name] = pin
		case InputStep:
			up := ex.step(i.Step)
			rec, ok := up.Outputs[i.Output]
			if !ok {
				return p, fmt.Errorf("input %s: step %s recorded no output %s", i.Name, i.Step, i.Output)
			}
			ri.Step, ri.Output, ri.Record, ri.StepMLflowRunID, ri.Hash = i.Step, i.Output, &rec, up.MLflowRunID, rec.Hash
			if in.Upstream == nil {
				in.Upstream = map[string]InputHash{}
			}
			in.Upstream[i.Name] = InputHash{Ref: i.Ref, Hash: rec.Hash}
		}
		p.inputs[i.Name] = ri
	}
	// Built-ins add what their result depends on besides their inputs,
	// knowing the inputs' hashes.
	if k, ok := s.Builtins[st.Uses].(CacheKeyer); ok && st.Uses != "" {
		extra, err := k.CacheKeyExtra(ctx, s, ex.run, st, p.inputs)
		if err != nil {
			return p, fmt.Errorf("built-in %s: %w", st.Uses, err)
		}
		for ek, ev := range extra {
			in.Params["uses."+ek] = ev
		}
	}
	p.input = in
	p.key = CacheKey(in)
	return p, nil
}

// param resolves ${{ params.NAME }} in run and env: a step parameter, else
// the pipeline's.
func (p *stepPrep) param(spec *Spec, name string) (string, error) {
	if v, ok := p.params[name]; ok {
		return v, nil
	}
	if v, ok := spec.Param(name); ok {
		return v, nil
	}
	return "", fmt.Errorf("undefined parameter %q", name)
}

// substituteAll returns a command step's argv with lookup applied; a shell
// step is ["sh", "-c", text].
func substituteAll(st *Step, lookup func(scope, name string) (string, error)) ([]string, error) {
	var argv []string
	for _, a := range st.Run {
		v, err := Substitute(a, lookup)
		if err != nil {
			return nil, fmt.Errorf("run: %w", err)
		}
		argv = append(argv, v)
	}
	if st.Shell {
		argv = append([]string{"sh", "-c"}, argv...)
	}
	return argv, nil
}

// trackStep creates the step's nested MLflow run (or finds it after a
// restart), logs its params and data inputs and records its input lineage.
func (ex *runExec) trackStep(ctx context.Context, p *stepPrep, sr StepRun) error {
	s, r, st := ex.s, ex.run, p.st
	if sr.MLflowRunID != "" {
		tr, err := s.Tracking.GetRun(ctx, sr.MLflowRunID)
		if err != nil {
			return fmt.Errorf("find MLflow run of the step: %w", err)
		}
		p.mlRunID, p.artifactURI = tr.Info.RunID, tr.Info.ArtifactURI
		return nil
	}
	tr, err := s.Tracking.CreateRun(ctx, tracking.CreateRunRequest{
		ExperimentID: ex.expID,
		RunName:      st.Name,
		StartTime:    s.now().UnixMilli(),
		Tags: []tracking.Tag{
			{Key: "mlflow.parentRunId", Value: ex.mlflowRunID},
			{Key: "mloop.pipeline_run_id", Value: r.ID},
			{Key: "mloop.step", Value: st.Name},
			{Key: "mlflow.source.name", Value: r.SpecFile},
			{Key: "mlflow.source.type", Value: "JOB"},
		},
	})
	if err != nil {
		return fmt.Errorf("create MLflow run of the step: %w", err)
	}
	p.mlRunID, p.artifactURI = tr.Info.RunID, tr.Info.ArtifactURI
	ex.updateStep(st.Name, StepUpdate{MLflowRunID: &p.mlRunID})
	var params []tracking.Param
	for _, k := range sortedKeys(p.params) {
		params = append(params, tracking.Param{Key: k, Value: truncate(p.params[k], tracking.MaxParamValueLength)})
	}
	if err := s.logBatch(ctx, p.mlRunID, nil, params, nil); err != nil {
		s.logger().Warn("log step params", "run", r.ID, "step", st.Name, "err", err)
	}
	self := Node{Kind: NodeStepRun, ID: p.mlRunID}
	now := s.now().UTC()
	edges := []Edge{{From: Node{Kind: NodePipelineRun, ID: r.ID}, To: self, Relation: "step", Name: st.Name, CreatedAt: now}}
	var inputs []tracking.DatasetInput
	for _, i := range st.Inputs {
		ri := p.inputs[i.Name]
		switch i.Kind {
		case InputData:
			v := ri.Dataset
			digest := strings.TrimPrefix(v.Digest, "sha256:")
			inputs = append(inputs, tracking.DatasetInput{
				Tags: []tracking.Tag{{Key: "mlflow.data.context", Value: i.Name}},
				Dataset: tracking.Dataset{Name: v.Dataset, Digest: digest[:min(len(digest), tracking.MaxDatasetDigestLength)],
					SourceType: "mloop", Source: "data://" + v.Ref()},
			})
			edges = append(edges, Edge{From: Node{Kind: NodeDataset, ID: v.Ref()}, To: self, Relation: "input", Name: i.Name, CreatedAt: now})
		case InputStep:
			edges = append(edges, Edge{From: Node{Kind: NodeArtifact, ID: ri.Record.URI}, To: self, Relation: "input", Name: i.Name, CreatedAt: now})
		}
	}
	if len(inputs) > 0 {
		if err := s.Tracking.LogInputs(ctx, p.mlRunID, inputs, nil); err != nil {
			s.logger().Warn("log step dataset inputs", "run", r.ID, "step", st.Name, "err", err)
		}
	}
	if err := s.Store.AddEdges(ctx, edges); err != nil {
		s.logger().Warn("record step lineage", "run", r.ID, "step", st.Name, "err", err)
	}
	return nil
}

// tagStep sets tags on the step's MLflow run, best effort.
func (ex *runExec) tagStep(ctx context.Context, p *stepPrep, tags map[string]string) {
	var ts []tracking.Tag
	for _, k := range sortedKeys(tags) {
		ts = append(ts, tracking.Tag{Key: k, Value: truncate(tags[k], tracking.MaxTagValueLength)})
	}
	if err := ex.s.logBatch(ctx, p.mlRunID, nil, nil, ts); err != nil {
		ex.s.logger().Warn("tag step run", "run", ex.run.ID, "step", p.st.Name, "err", err)
	}
}

// endStepRun sets the final status of the step's MLflow run, best effort.
func (ex *runExec) endStepRun(p *stepPrep, status string) {
	if p == nil || p.mlRunID == "" {
		return
	}
	end := ex.s.now().UnixMilli()
	if _, err := ex.s.Tracking.UpdateRun(context.Background(), p.mlRunID, tracking.RunUpdate{Status: &status, EndTime: &end}); err != nil {
		ex.s.logger().Warn("end step run", "run", ex.run.ID, "step", p.st.Name, "err", err)
	}
}

// usable says why a cache entry cannot be reused ("" when it can): an
// output the step declares is missing from it or from the artifact store.
func (ex *runExec) usable(ctx context.Context, st *Step, e *CacheEntry) (string, error) {
	for _, o := range st.Outputs {
		rec, ok := e.Outputs[o.Name]
		if !ok || !strings.HasSuffix(rec.URI, "/outputs/"+o.Path) {
			return fmt.Sprintf("the result of run %s has no output %s at %s", e.RunID, o.Name, o.Path), nil
		}
		ok, err := ex.s.outputExists(ctx, rec)
		if err != nil {
			return "", err
		}
		if !ok {
			return fmt.Sprintf("output %s of run %s is gone from the artifact store", o.Name, e.RunID), nil
		}
	}
	return "", nil
}

// cacheHit records a step as cached from entry e.
func (ex *runExec) cacheHit(ctx context.Context, p *stepPrep, e *CacheEntry) {
	s, st := ex.s, p.st
	now := s.now().UTC()
	status := StepCached
	explain := []string{"cache hit: same inputs as run " + e.RunID}
	metrics := e.Metrics
	if metrics == nil {
		metrics = map[string]float64{}
	}
	ex.tagStep(ctx, p, map[string]string{"mloop.cache_key": p.key, "mloop.cached": "true", "mloop.cached_from": e.MLflowRunID})
	if err := s.logBatch(ctx, p.mlRunID, metricList(metrics, now), nil, nil); err != nil {
		s.logger().Warn("copy cached metrics", "run", ex.run.ID, "step", st.Name, "err", err)
	}
	// The cached step run reuses the outputs of the run that produced them:
	// "reused" edges keep walks from its inputs going to what used them,
	// while "output" edges still name the one producer.
	var edges []Edge
	for _, name := range sortedKeys(e.Outputs) {
		edges = append(edges, Edge{From: Node{Kind: NodeStepRun, ID: p.mlRunID}, To: Node{Kind: NodeArtifact, ID: e.Outputs[name].URI},
			Relation: "reused", Name: name, CreatedAt: now})
	}
	if err := s.Store.AddEdges(ctx, edges); err != nil {
		s.logger().Warn("record cached step lineage", "run", ex.run.ID, "step", st.Name, "err", err)
	}
	empty := ""
	ex.updateStep(st.Name, StepUpdate{Status: &status, CacheKey: &p.key, CachedFrom: &e.RunID, Explain: explain,
		Outputs: e.Outputs, Metrics: metrics, Error: &empty, StartedAt: &now, FinishedAt: &now})
	ex.endStepRun(p, tracking.RunFinished)
}

func metricList(m map[string]float64, at time.Time) []tracking.Metric {
	var out []tracking.Metric
	for _, k := range sortedKeys(m) {
		out = append(out, tracking.Metric{Key: k, Value: m[k], Timestamp: at.UnixMilli()})
	}
	return out
}

// errText is an error's message for people: the message of an *mloop.Error
// at its root, else the error's text.
func errText(err error) string {
	var me *mloop.Error
	if errors.As(err, &me) {
		return strings.Replace(err.Error(), me.Error(), me.Message, 1)
	}
	return err.Error()
}

// localize makes a step's inputs available locally: dataset versions
// materialized, upstream outputs downloaded when they are not on disk (an
// upstream step cached from an older run, or a restart in between).
func (ex *runExec) localize(ctx context.Context, p *stepPrep) error {
	if p.localized {
		return nil
	}
	s, r := ex.s, ex.run
	for name, ri := range p.inputs {
		switch ri.Kind {
		case InputData:
			dir, err := s.materializeDataset(ctx, ri.Dataset)
			if err != nil {
				return fmt.Errorf("input %s: %w", name, err)
			}
			ri.Path = dir
		case InputStep:
			o := ex.spec.Step(ri.Step).Output(ri.Output)
			local := s.outputPath(r.ID, ri.Step, *o)
			if err := func() error {
				unlock := s.rs.lockKey("output:" + local)
				defer unlock()
				if _, err := os.Stat(local); err == nil {
					return nil
				}
				return s.downloadOutput(ctx, *ri.Record, local)
			}(); err != nil {
				return fmt.Errorf("input %s (output %s of step %s): %w", name, ri.Output, ri.Step, err)
			}
			ri.Path = local
		}
		p.inputs[name] = ri
	}
	p.localized = true
	return nil
}

// syncWriter serializes writes of stdout and stderr to one log file.
type syncWriter struct {
	mu sync.Mutex
	f  *os.File
	// midLine is set when the last byte written was not a newline.
	midLine bool
}

func (w *syncWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, err := w.f.Write(b)
	if n > 0 {
		w.midLine = b[n-1] != '\n'
	}
	return n, err
}

// endLine writes a newline when the output so far does not end with one, so
// that what the runner adds to the log starts on its own line.
func (w *syncWriter) endLine() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.midLine {
		w.f.Write([]byte{'\n'})
		w.midLine = false
	}
}

// attempt makes one attempt of a step.
func (ex *runExec) attempt(ctx context.Context, p *stepPrep, attempt, maxAttempts int) attemptResult {
	s, r, st := ex.s, ex.run, p.st
	outDir := s.outputsDir(r.ID, st.Name)
	if err := os.RemoveAll(outDir); err != nil {
		return attemptResult{msg: fmt.Sprintf("clean outputs folder: %v", err)}
	}
	outputs := map[string]string{}
	for _, o := range st.Outputs {
		local := s.outputPath(r.ID, st.Name, o)
		if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
			return attemptResult{msg: fmt.Sprintf("create outputs folder: %v", err)}
		}
		outputs[o.Name] = local
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return attemptResult{msg: fmt.Sprintf("create outputs folder: %v", err)}
	}
	logPath := s.LogPath(r.ID, st.Name)
	logf, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return attemptResult{msg: fmt.Sprintf("open log: %v", err)}
	}
	defer logf.Close()
	now := s.now().UTC()
	fmt.Fprintf(logf, "--- attempt %d/%d (started %s)\n", attempt, maxAttempts, now.Format(time.RFC3339))

	status, empty := StepRunning, ""
	taskID := fmt.Sprintf("%s/%s/%d", r.ID, st.Name, attempt)
	executor := "builtin"
	if st.Uses == "" && s.Executor != nil {
		executor = s.Executor.Name()
	}
	ex.updateStep(st.Name, StepUpdate{Status: &status, Attempt: &attempt, StartedAt: &now, Error: &empty,
		Executor: &executor, TaskID: &taskID, Handle: &empty})

	if err := ex.localize(ctx, p); err != nil {
		if ctx.Err() != nil {
			return attemptResult{interrupted: true}
		}
		fmt.Fprintf(logf, "mloop: %s\n", errText(err))
		return attemptResult{msg: errText(err)}
	}
	var res attemptResult
	if st.Uses != "" {
		res = ex.runBuiltin(ctx, p, outputs, logf)
	} else {
		res = ex.runCommand(ctx, p, taskID, outputs, &syncWriter{f: logf})
	}
	if res.interrupted || res.msg != "" {
		return res
	}
	return ex.checkOutputs(p, outputs, res)
}

// runBuiltin runs a built-in step in-process.
func (ex *runExec) runBuiltin(ctx context.Context, p *stepPrep, outputs map[string]string, log *os.File) attemptResult {
	st := p.st
	b := ex.s.Builtins[st.Uses]
	sr := ex.step(st.Name)
	ex.mu.Lock()
	runCopy := *ex.run
	ex.mu.Unlock()
	bc := &BuiltinContext{Service: ex.s, Run: &runCopy, Step: st, StepRun: &sr, Inputs: p.inputs, Outputs: outputs,
		Log: log, Metrics: map[string]float64{}, Tags: map[string]string{}}
	bctx := ctx
	if st.Timeout > 0 {
		var cancel context.CancelFunc
		bctx, cancel = context.WithTimeout(ctx, st.Timeout)
		defer cancel()
	}
	err := b.Run(bctx, bc)
	zero := 0
	if ctx.Err() != nil {
		return attemptResult{interrupted: true}
	}
	if bctx.Err() != nil {
		one := 1
		msg := fmt.Sprintf("timed out after %s", st.Timeout)
		fmt.Fprintf(log, "mloop: %s\n", msg)
		return attemptResult{msg: msg, exit: &one}
	}
	if err != nil {
		one := 1
		fmt.Fprintf(log, "mloop: %s\n", errText(err))
		return attemptResult{msg: errText(err), exit: &one}
	}
	return attemptResult{ok: true, exit: &zero, metrics: bc.Metrics, tags: bc.Tags, edges: bc.Edges}
}

// stepEnv builds the exact environment of a command step.
func (ex *runExec) stepEnv(p *stepPrep, outputs map[string]string, lookup func(scope, name string) (string, error)) (map[string]string, error) {
	s, r, st := ex.s, ex.run, p.st
	env := map[string]string{}
	for _, k := range inheritedEnv {
		if v, ok := os.LookupEnv(k); ok {
			env[k] = v
		}
	}
	if s.TrackingURI != "" {
		env["MLFLOW_TRACKING_URI"] = s.TrackingURI
	}
	env["MLFLOW_RUN_ID"] = p.mlRunID
	env["MLFLOW_EXPERIMENT_ID"] = ex.expID
	env["MLOOP_RUN_ID"] = r.ID
	env["MLOOP_STEP"] = st.Name
	env["MLOOP_OUTPUTS_DIR"] = s.outputsDir(r.ID, st.Name)
	for name, ri := range p.inputs {
		env["MLOOP_INPUT_"+envName(name)] = ri.Path
	}
	for name, path := range outputs {
		env["MLOOP_OUTPUT_"+envName(name)] = path
	}
	for name, v := range p.params {
		env["MLOOP_PARAM_"+envName(name)] = v
	}
	env["PYTHONUNBUFFERED"] = "1"
	env["PYTHONDONTWRITEBYTECODE"] = "1"
	for k, v := range st.Env {
		rv, err := Substitute(v, lookup)
		if err != nil {
			return nil, fmt.Errorf("env %s: %w", k, err)
		}
		env[k] = rv
	}
	return env, nil
}

// runCommand runs a command step's attempt through the executor.
func (ex *runExec) runCommand(ctx context.Context, p *stepPrep, taskID string, outputs map[string]string, log *syncWriter) attemptResult {
	s, r, st := ex.s, ex.run, p.st
	lookup := func(scope, name string) (string, error) {
		switch scope {
		case "params":
			return p.param(ex.spec, name)
		case "inputs":
			if ri, ok := p.inputs[name]; ok {
				return ri.Path, nil
			}
		case "outputs":
			if o, ok := outputs[name]; ok {
				return o, nil
			}
		}
		return "", fmt.Errorf("undefined %s.%s", scope, name)
	}
	argv, err := substituteAll(st, lookup)
	if err != nil {
		return attemptResult{msg: err.Error()}
	}
	env, err := ex.stepEnv(p, outputs, lookup)
	if err != nil {
		return attemptResult{msg: err.Error()}
	}
	if s.Executor == nil {
		return attemptResult{msg: "no executor is configured"}
	}
	mark := s.rs.enterProject(r.ProjectDir, r.ID+"/"+st.Name)
	var overlapped []string
	left := false
	leave := func() {
		if !left {
			left = true
			overlapped = s.rs.leaveProject(r.ProjectDir, mark)
		}
	}
	defer leave()
	skip := s.privateDirs()
	before, err := snapshotProject(r.ProjectDir, skip)
	if err != nil {
		return attemptResult{msg: err.Error()}
	}
	h, err := s.Executor.Start(ctx, Task{ID: taskID, Argv: argv, Dir: r.ProjectDir, Env: env, Image: st.Image,
		Timeout: st.Timeout, Stdout: log, Stderr: log})
	if err != nil {
		if ctx.Err() != nil {
			return attemptResult{interrupted: true}
		}
		fmt.Fprintf(log, "mloop: %s\n", errText(err))
		return attemptResult{msg: "start: " + errText(err)}
	}
	if lh, ok := h.(*LocalHandle); ok {
		handle := strconv.Itoa(lh.PID())
		ex.updateStep(st.Name, StepUpdate{Handle: &handle})
	}
	res, werr := ex.wait(ctx, h)
	code := res.ExitCode
	log.endLine()
	fmt.Fprintf(log, "--- attempt ended: %s after %s\n", res.String(), res.Finished.Sub(res.Started).Round(time.Millisecond))
	if werr != nil {
		return attemptResult{interrupted: true, exit: &code}
	}
	if !res.Success() {
		return attemptResult{msg: res.String(), exit: &code}
	}
	after, err := snapshotProject(r.ProjectDir, skip)
	leave()
	if err != nil {
		return attemptResult{msg: err.Error(), exit: &code}
	}
	if changes, n := diffSnapshots(before, after, 5); n > 0 {
		more := ""
		if n > len(changes) {
			more = fmt.Sprintf(" and %d more", n-len(changes))
		}
		who := ""
		if len(overlapped) > 0 {
			who = fmt.Sprintf(" (or %s, which ran at the same time)", strings.Join(overlapped, ", "))
		}
		msg := fmt.Sprintf("step %s wrote outside its outputs folder%s: %s%s; write files under $MLOOP_OUTPUTS_DIR (%s) or to the declared outputs ($MLOOP_OUTPUT_<NAME>)",
			st.Name, who, strings.Join(changes, ", "), more, s.outputsDir(r.ID, st.Name))
		fmt.Fprintf(log, "mloop: %s\n", msg)
		return attemptResult{msg: msg, exit: &code}
	}
	return attemptResult{ok: true, exit: &code}
}

// wait waits for a task; when ctx ends first it stops the task and reports
// ctx's error with the task's result.
func (ex *runExec) wait(ctx context.Context, h Handle) (Result, error) {
	res, err := h.Wait(ctx)
	if err == nil {
		return res, nil
	}
	stopCtx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if cerr := h.Cancel(stopCtx); cerr != nil {
		ex.s.logger().Warn("stop step", "run", ex.run.ID, "task", h.ID(), "err", cerr)
	}
	res, _ = h.Wait(stopCtx)
	return res, err
}

// waitAttached waits for an attempt re-attached after a restart.
func (ex *runExec) waitAttached(ctx context.Context, p *stepPrep, h Handle, attempt int) attemptResult {
	res, err := ex.wait(ctx, h)
	code := res.ExitCode
	appendLog(ex.s.LogPath(ex.run.ID, p.st.Name), fmt.Sprintf("--- attempt %d (re-attached) ended: %s\n", attempt, res.String()))
	if err != nil {
		return attemptResult{interrupted: true, exit: &code}
	}
	if !res.Success() {
		return attemptResult{msg: res.String(), exit: &code}
	}
	outputs := map[string]string{}
	for _, o := range p.st.Outputs {
		outputs[o.Name] = ex.s.outputPath(ex.run.ID, p.st.Name, o)
	}
	return ex.checkOutputs(p, outputs, attemptResult{ok: true, exit: &code})
}

// checkOutputs checks that a successful attempt wrote every declared output
// and reads its metrics outputs.
func (ex *runExec) checkOutputs(p *stepPrep, outputs map[string]string, res attemptResult) attemptResult {
	st := p.st
	metrics := map[string]float64{}
	for k, v := range res.metrics {
		metrics[k] = v
	}
	fail := func(msg string) attemptResult {
		appendLog(ex.s.LogPath(ex.run.ID, st.Name), "mloop: "+msg+"\n")
		return attemptResult{msg: msg, exit: res.exit}
	}
	for _, o := range st.Outputs {
		local := outputs[o.Name]
		if _, err := os.Stat(local); err != nil {
			return fail(fmt.Sprintf("step %s did not write its declared output %s (expected at %s; write it to $MLOOP_OUTPUT_%s)",
				st.Name, o.Name, local, envName(o.Name)))
		}
		if o.Type == "metrics" {
			m, err := ReadMetricsFile(local)
			if err != nil {
				return fail(fmt.Sprintf("metrics output %s: %s", o.Name, errText(err)))
			}
			for k, v := range m.Flat() {
				metrics[k] = v
			}
		}
	}
	res.metrics = metrics
	return res
}

// succeed uploads a successful step's outputs and log, records them with
// its metrics and lineage, and stores its cache entry.
func (ex *runExec) succeed(ctx context.Context, p *stepPrep, res attemptResult) {
	s, r, st := ex.s, ex.run, p.st
	bg := context.WithoutCancel(ctx)
	records := map[string]OutputRecord{}
	now := s.now().UTC()
	self := Node{Kind: NodeStepRun, ID: p.mlRunID}
	var edges []Edge
	for _, o := range st.Outputs {
		local := s.outputPath(r.ID, st.Name, o)
		h, err := HashTree(bg, local, nil)
		if err == nil {
			var size int64
			var dir bool
			size, dir, err = treeSize(local)
			uri := strings.TrimSuffix(p.artifactURI, "/") + "/outputs/" + o.Path
			if err == nil {
				err = s.uploadPath(bg, local, uri)
			}
			records[o.Name] = OutputRecord{URI: uri, Hash: h, Size: size, Dir: dir, Type: o.Type, Flavor: o.Flavor}
			edges = append(edges, Edge{From: self, To: Node{Kind: NodeArtifact, ID: uri}, Relation: "output", Name: o.Name, CreatedAt: now})
		}
		if err != nil {
			ex.fail(p, st, fmt.Sprintf("store output %s: %s", o.Name, errText(err)), res.exit)
			return
		}
	}
	ex.uploadLog(bg, p)
	if err := s.logBatch(bg, p.mlRunID, metricList(res.metrics, now), nil, nil); err != nil {
		s.logger().Warn("log step metrics", "run", r.ID, "step", st.Name, "err", err)
	}
	if len(res.tags) > 0 {
		ex.tagStep(bg, p, res.tags)
	}
	status, empty := StepSucceeded, ""
	ex.updateStep(st.Name, StepUpdate{Status: &status, Outputs: records, Metrics: res.metrics, ExitCode: res.exit,
		Error: &empty, FinishedAt: &now})
	entry := &CacheEntry{Key: p.key, Pipeline: r.Pipeline, Step: st.Name, RunID: r.ID, MLflowRunID: p.mlRunID,
		Input: p.input, Outputs: records, Metrics: res.metrics, CreatedAt: now}
	if err := s.Store.PutCache(bg, entry); err != nil {
		s.logger().Warn("store step cache entry", "run", r.ID, "step", st.Name, "err", err)
	}
	edges = append(edges, res.edges...)
	if len(edges) > 0 {
		if err := s.Store.AddEdges(bg, edges); err != nil {
			s.logger().Warn("record step lineage", "run", r.ID, "step", st.Name, "err", err)
		}
	}
	ex.endStepRun(p, tracking.RunFinished)
}

// uploadLog uploads the step's log as the artifact log.txt of its run.
func (ex *runExec) uploadLog(ctx context.Context, p *stepPrep) {
	if p == nil || p.artifactURI == "" {
		return
	}
	local := ex.s.LogPath(ex.run.ID, p.st.Name)
	if _, err := os.Stat(local); err != nil {
		return
	}
	if err := ex.s.uploadPath(ctx, local, strings.TrimSuffix(p.artifactURI, "/")+"/log.txt"); err != nil {
		ex.s.logger().Warn("upload step log", "run", ex.run.ID, "step", p.st.Name, "err", err)
	}
}

// uploadPartial uploads, best effort, what a failed step left of its
// declared outputs, so that it can be inspected.
func (ex *runExec) uploadPartial(ctx context.Context, p *stepPrep) {
	if p == nil || p.artifactURI == "" {
		return
	}
	for _, o := range p.st.Outputs {
		local := ex.s.outputPath(ex.run.ID, p.st.Name, o)
		if _, err := os.Stat(local); err != nil {
			continue
		}
		if err := ex.s.uploadPath(ctx, local, strings.TrimSuffix(p.artifactURI, "/")+"/outputs/"+o.Path); err != nil {
			ex.s.logger().Warn("upload partial output", "run", ex.run.ID, "step", p.st.Name, "output", o.Name, "err", err)
		}
	}
}

// fail records a step as failed; its log and partial outputs are kept.
func (ex *runExec) fail(p *stepPrep, st *Step, msg string, exit *int) {
	bg := context.Background()
	ex.uploadLog(bg, p)
	ex.uploadPartial(bg, p)
	status, now := StepFailed, ex.s.now().UTC()
	ex.updateStep(st.Name, StepUpdate{Status: &status, Error: &msg, ExitCode: exit, FinishedAt: &now})
	ex.s.logger().Info("pipeline step failed", "run", ex.run.ID, "step", st.Name, "error", msg)
	ex.endStepRun(p, tracking.RunFailed)
}

// interrupted records a step stopped because its run was canceled, or
// because the server is shutting down (started tells whether an attempt
// was under way): then the step goes back to pending, or to failed when no
// attempts remain.
func (ex *runExec) interrupted(ctx context.Context, p *stepPrep, st *Step, attempt int, exit *int, started bool) {
	bg := context.Background()
	now := ex.s.now().UTC()
	if errors.Is(context.Cause(ctx), errRunCanceled) {
		appendLog(ex.s.LogPath(ex.run.ID, st.Name), "--- canceled\n")
		ex.uploadLog(bg, p)
		status, msg := StepCanceled, "run canceled"
		ex.updateStep(st.Name, StepUpdate{Status: &status, Error: &msg, ExitCode: exit, FinishedAt: &now})
		ex.endStepRun(p, tracking.RunKilled)
		return
	}
	if !started {
		return // still pending; the next start runs it
	}
	// A server that stops on purpose (a restart, an upgrade, a lost lease)
	// does not spend the step's attempts: the attempt is given back and the
	// step runs it again on the next start. Only a crash counts (recovery).
	msg := fmt.Sprintf("server shutting down before attempt %d ended; it runs again on the next start", attempt)
	appendLog(ex.s.LogPath(ex.run.ID, st.Name), "--- "+msg+"\n")
	status, again := StepPending, attempt-1
	ex.updateStep(st.Name, StepUpdate{Status: &status, Attempt: &again, Error: &msg, ExitCode: exit, FinishedAt: &now})
	ex.endStepRun(p, tracking.RunKilled)
}
