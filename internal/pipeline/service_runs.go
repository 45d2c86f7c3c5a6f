package pipeline

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
)

// SubmitRequest asks for a new pipeline run.
type SubmitRequest struct {
	// SpecFile is the absolute path of the spec file and ProjectDir the
	// absolute project folder its relative paths are relative to.
	SpecFile, ProjectDir string
	// Spec is the text of the spec file; empty means the file's text now
	// (ReadSpecFile).
	Spec string
	// Params are parameter overrides.
	Params map[string]string
	// Explain asks clients to print why each step ran or was skipped.
	Explain bool
	// User is who submitted the run; Cause says what started it (default
	// "submitted by <User>").
	User, Cause string
}

// NewRun checks a request and builds the run it asks for, without storing
// it: the spec is parsed (errors join one *SpecError per problem, so
// clients can print file:line), parameters applied, the DAG planned, each
// built-in step's configuration checked and every dataset reference pinned
// to the version it names now. The run is Queued with its steps Pending in
// plan order.
func (s *Service) NewRun(ctx context.Context, req SubmitRequest) (*Run, error) {
	if !filepath.IsAbs(req.SpecFile) || !filepath.IsAbs(req.ProjectDir) {
		return nil, mloop.Errorf(mloop.EINVALID, "spec file %q and project folder %q must be absolute paths", req.SpecFile, req.ProjectDir)
	}
	if req.Spec == "" {
		text, err := ReadSpecFile(req.SpecFile)
		if err != nil {
			return nil, err
		}
		req.Spec = text
	}
	spec, plan, err := loadPlan(req.SpecFile, req.Spec, req.Params)
	if err != nil {
		return nil, err
	}
	for _, name := range plan.Order {
		st := spec.Step(name)
		if st.Uses == "" {
			continue
		}
		b, ok := s.Builtins[st.Uses]
		if !ok {
			return nil, mloop.Errorf(mloop.EINVALID, "step %q uses built-in %q, which this server does not provide", st.Name, st.Uses)
		}
		if err := b.Check(st); err != nil {
			return nil, fmt.Errorf("step %q: %w", st.Name, err)
		}
	}
	pinned := map[string]InputHash{}
	for _, name := range plan.Order {
		st := spec.Step(name)
		for _, in := range st.Inputs {
			if in.Kind != InputData {
				continue
			}
			key := in.Dataset.String()
			if _, done := pinned[key]; done {
				continue
			}
			if s.Datasets == nil {
				return nil, mloop.Errorf(mloop.EUNAVAILABLE, "step %q: input %s needs dataset %s, but this server has no dataset service", st.Name, in.Name, key)
			}
			v, err := s.Datasets.GetVersion(ctx, in.Dataset, false)
			if err != nil {
				if mloop.IsNotFound(err) {
					return nil, mloop.Errorf(mloop.ENOTFOUND, "step %q: input %s (%s): %s", st.Name, in.Name, in.Ref, mloop.ErrorMessage(err))
				}
				return nil, fmt.Errorf("step %q: input %s (%s): %w", st.Name, in.Name, in.Ref, err)
			}
			pinned[key] = InputHash{Ref: v.Ref(), Hash: v.Digest}
		}
	}
	// The project files the steps read (their code) are part of what a run
	// is made of: a trigger's de-duplication must see a fixed train.py.
	code := map[string]string{}
	for _, name := range plan.Order {
		st := spec.Step(name)
		for _, in := range st.Inputs {
			if in.Kind != InputPath {
				continue
			}
			if _, done := code[in.Path]; done {
				continue
			}
			h, err := HashTree(ctx, filepath.Join(req.ProjectDir, filepath.FromSlash(in.Path)), s.memo())
			if err != nil {
				return nil, mloop.Errorf(mloop.EINVALID, "step %q: code input %s (%s): %v", st.Name, in.Name, in.Path, err)
			}
			code[in.Path] = h
		}
	}
	id, err := newRunID()
	if err != nil {
		return nil, err
	}
	cause := req.Cause
	if cause == "" {
		user := req.User
		if user == "" {
			user = "unknown user"
		}
		cause = "submitted by " + user
	}
	r := &Run{
		ID:         id,
		Pipeline:   spec.Name,
		SpecFile:   req.SpecFile,
		ProjectDir: req.ProjectDir,
		Spec:       req.Spec,
		Params:     req.Params,
		Datasets:   pinned,
		Status:     RunQueued,
		Cause:      cause,
		InputsKey:  inputsKey(req.Spec, req.Params, pinned, code),
		Explain:    req.Explain,
		CreatedAt:  s.now().UTC(),
	}
	for _, name := range plan.Order {
		r.Steps = append(r.Steps, &StepRun{RunID: id, Name: name, Status: StepPending})
	}
	return r, nil
}

// loadPlan parses a spec's text, applies parameter overrides and plans it.
func loadPlan(file, text string, params map[string]string) (*Spec, *Plan, error) {
	spec, err := ParseSpec(file, []byte(text))
	if err != nil {
		return nil, nil, err
	}
	if spec, err = spec.WithParams(params); err != nil {
		return nil, nil, mloop.Errorf(mloop.EINVALID, "%v", err)
	}
	plan, err := spec.Plan()
	if err != nil {
		return nil, nil, mloop.Errorf(mloop.EINVALID, "%v", err)
	}
	return spec, plan, nil
}

// inputsKey hashes what determines a run's results: the spec's text, the
// parameter overrides, the pinned dataset digests and the content hashes of
// the project files the steps read (by path). JSON encodes maps with sorted
// keys, so the encoding is canonical.
func inputsKey(spec string, params map[string]string, pinned map[string]InputHash, code map[string]string) string {
	b, err := json.Marshal(struct {
		Spec     string               `json:"spec"`
		Params   map[string]string    `json:"params"`
		Datasets map[string]InputHash `json:"datasets"`
		Code     map[string]string    `json:"code,omitempty"`
	}{spec, params, pinned, code})
	if err != nil {
		panic(err) // strings only
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// newRunID returns "pr-" and 12 random lower-case hex digits.
func newRunID() (string, error) {
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("new run id: %w", err)
	}
	return "pr-" + hex.EncodeToString(b[:]), nil
}

// Submit creates a run (see NewRun), stores it Queued and wakes the runner.
func (s *Service) Submit(ctx context.Context, req SubmitRequest) (*Run, error) {
	r, err := s.NewRun(ctx, req)
	if err != nil {
		return nil, err
	}
	if err := s.Store.CreateRun(ctx, r); err != nil {
		return nil, fmt.Errorf("submit run of pipeline %q: %w", r.Pipeline, err)
	}
	s.logger().Info("pipeline run submitted", "run", r.ID, "pipeline", r.Pipeline, "cause", r.Cause)
	s.wakeRunner()
	return r, nil
}

// GetRun returns a run with its steps; ENOTFOUND when there is none.
func (s *Service) GetRun(ctx context.Context, id string) (*Run, error) {
	return s.Store.GetRun(ctx, id)
}

// ListRuns returns runs newest first and the token of the next page.
func (s *Service) ListRuns(ctx context.Context, f RunFilter) ([]*Run, string, error) {
	return s.Store.ListRuns(ctx, f)
}

// Cancel cancels a run. A queued run is canceled at once (its steps
// skipped); a running one is marked CancelRequested and the controller
// running it stops its steps, marks the running ones canceled and the
// pending ones skipped, and ends the run Canceled. A run already ended is
// ECONFLICT; an unknown one ENOTFOUND. Cancel returns the run as it is
// after the request.
func (s *Service) Cancel(ctx context.Context, id string) (*Run, error) {
	r, err := s.Store.GetRun(ctx, id)
	if err != nil {
		return nil, err
	}
	if r.Status.Done() {
		return nil, mloop.Errorf(mloop.ECONFLICT, "run %s already %s", id, r.Status)
	}
	yes := true
	if err := s.Store.UpdateRun(ctx, id, RunUpdate{CancelRequested: &yes}); err != nil {
		return nil, fmt.Errorf("cancel run %s: %w", id, err)
	}
	// Claim the queued run for ourselves so that no runner starts it; a
	// runner that claimed it first sees CancelRequested instead.
	if r.Status == RunQueued {
		claimed, err := s.Store.ClaimRun(ctx, id, s.owner(), s.now())
		if err != nil {
			return nil, fmt.Errorf("cancel run %s: %w", id, err)
		}
		if claimed {
			// This process holds the run now: executing it ends it as
			// canceled before any step starts, as for any claimed run
			// whose cancel was requested.
			s.executeRun(ctx, id, nil)
		}
	}
	s.signalCancel(id)
	return s.Store.GetRun(ctx, id)
}

// LogPath returns the local path of a step's log file (it may not exist).
func (s *Service) LogPath(runID, step string) string {
	return filepath.Join(s.stepDir(runID, step), "log.txt")
}

// OpenLog opens a step's log: the local file while it exists, else the log
// uploaded as the artifact log.txt of the step's MLflow run. ENOTFOUND when
// there is neither (a cached step or one that never started has no log).
func (s *Service) OpenLog(ctx context.Context, runID, step string) (io.ReadCloser, error) {
	if !validName(runID) || !validName(step) {
		return nil, mloop.Errorf(mloop.EINVALID, "invalid run id %q or step name %q", runID, step)
	}
	f, err := os.Open(s.LogPath(runID, step))
	if err == nil {
		return f, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open log of %s/%s: %w", runID, step, err)
	}
	r, err := s.Store.GetRun(ctx, runID)
	if err != nil {
		return nil, err
	}
	sr := r.Step(step)
	if sr == nil {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "run %s has no step %q", runID, step)
	}
	if sr.MLflowRunID == "" || s.Tracking == nil || s.Artifacts == nil {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "step %q of run %s has no log (status %s)", step, runID, sr.Status)
	}
	tr, err := s.Tracking.GetRun(ctx, sr.MLflowRunID)
	if err != nil {
		return nil, fmt.Errorf("open log of %s/%s: %w", runID, step, err)
	}
	key, err := s.Artifacts.KeyOf(strings.TrimSuffix(tr.Info.ArtifactURI, "/") + "/log.txt")
	if err != nil {
		return nil, fmt.Errorf("open log of %s/%s: %w", runID, step, err)
	}
	obj, err := s.Artifacts.Get(ctx, key)
	if mloop.IsNotFound(err) {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "step %q of run %s has no log (status %s)", step, runID, sr.Status)
	} else if err != nil {
		return nil, fmt.Errorf("open log of %s/%s: %w", runID, step, err)
	}
	return obj, nil
}

// validName reports whether s is safe as one path segment (a run id or a
// step name).
func validName(s string) bool {
	return s != "" && s != "." && s != ".." && !strings.ContainsAny(s, `/\`) && nameRE.MatchString(strings.ReplaceAll(s, ".", "_"))
}

// pinnedVersion returns the dataset version a run pinned for a data input.
func (s *Service) pinnedVersion(ctx context.Context, r *Run, in Input) (*dataset.Version, InputHash, error) {
	pin, ok := r.Datasets[in.Dataset.String()]
	if !ok {
		return nil, InputHash{}, mloop.Errorf(mloop.EINTERNAL, "run %s did not pin dataset %s", r.ID, in.Dataset)
	}
	ref, err := dataset.ParseRef(pin.Ref)
	if err != nil {
		return nil, InputHash{}, fmt.Errorf("pinned dataset %s: %w", pin.Ref, err)
	}
	v, err := s.Datasets.GetVersion(ctx, ref, false)
	if err != nil {
		return nil, InputHash{}, fmt.Errorf("pinned dataset %s: %w", pin.Ref, err)
	}
	if v.Digest != pin.Hash {
		return nil, InputHash{}, mloop.Errorf(mloop.ECONFLICT, "dataset version %s changed digest since the run pinned it (%s, now %s)", pin.Ref, pin.Hash, v.Digest)
	}
	return v, pin, nil
}
