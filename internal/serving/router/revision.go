package router

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/serving"
	"github.com/mloop/mloop/internal/serving/batcher"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/serving/modelcheck"
	"github.com/mloop/mloop/internal/serving/process"
	"github.com/mloop/mloop/internal/serving/xgboost"
)

// revKey identifies a loaded revision: a deployment's revision number
// serving one model version. Batching is part of the key of native
// revisions, so that a batching change loads a new runtime (from the cache)
// and drains the old one like any other swap.
type revKey struct {
	deployment string
	revision   int64
	model      string
	version    int64
	flavor     string
	batching   deploy.Batching
}

// keyOf returns the key of a deployment's slot.
func keyOf(d *deploy.Deployment, s deploy.Slot) revKey {
	k := revKey{deployment: d.Name, revision: s.Revision, model: s.Model, version: s.Version, flavor: s.Flavor}
	if s.Flavor != modelcheck.FlavorProcess {
		k.batching = d.Spec.Batching
	}
	return k
}

// revision is one loaded (or loading, or failed) model version of a
// deployment, with its runtime and figures. Fields set by load are written
// before done is closed and only read after.
type revision struct {
	key          revKey
	slot         deploy.Slot
	revStr       string   // the revision number
	modelVersion string   // model/version
	revHeader    []string // header values, shared by every response
	mvHeader     []string
	window       *Window

	done     chan struct{} // closed when loading ends
	err      error         // why loading failed
	retryAt  time.Time     // when a failed revision may be loaded again
	attempts int           // failed loads in a row, this one included

	flavor    string
	dir       string
	info      *modelcheck.ModelInfo
	model     serving.Predictor // native: the model, or its batcher
	batch     *batcher.Batcher
	proc      *process.Runtime
	features  []serving.Feature
	outputs   int
	objective string
	// monFeatures are the columns a process revision's requests are
	// observed under when its model declares none (see procFeatures).
	monFeatures atomic.Pointer[[]serving.Feature]

	inflight atomic.Int64
	closing  atomic.Bool
	drained  chan struct{}
	drainMu  sync.Once

	shadowMu   sync.Mutex
	compared   int64
	agreed     int64
	sumAbsDiff float64
	diffValues int64
	shadowErrs int64
}

// newRevision returns a revision about to load (under r.mu).
func (r *Router) newRevision(key revKey, d *deploy.Deployment, slot deploy.Slot, attempts int) *revision {
	span := time.Duration(d.Spec.Rollback.WithDefaults().Window)
	rs := strconv.FormatInt(slot.Revision, 10)
	mv := slot.Model + "/" + strconv.FormatInt(slot.Version, 10)
	return &revision{
		key:          key,
		slot:         slot,
		revStr:       rs,
		modelVersion: mv,
		revHeader:    []string{rs},
		mvHeader:     []string{mv},
		window:       NewWindow(span, bucketWidthFor(span)),
		done:         make(chan struct{}),
		drained:      make(chan struct{}),
		attempts:     attempts,
	}
}

// state returns loading, ready or failed.
func (rev *revision) state() string {
	select {
	case <-rev.done:
	default:
		return stateLoading
	}
	if rev.err != nil {
		return stateFailed
	}
	return stateReady
}

// errMessage says why the revision failed to load, for clients.
func (rev *revision) errMessage() string {
	return fmt.Sprintf("revision %d (%s) failed to load: %s", rev.key.revision, rev.modelVersion, errText(rev.err))
}

// errText returns the message of an mloop error, the error's text
// otherwise (load errors are shown to operators, not only clients).
func errText(err error) string {
	var e *mloop.Error
	if errors.As(err, &e) {
		return e.Message
	}
	return err.Error()
}

// acquire takes a reference on the revision for one request. It fails when
// the revision is closing: the caller picks again from the new table.
func (rev *revision) acquire() bool {
	rev.inflight.Add(1)
	if rev.closing.Load() {
		rev.release()
		return false
	}
	return true
}

// release drops a reference taken by acquire.
func (rev *revision) release() {
	if rev.inflight.Add(-1) == 0 && rev.closing.Load() {
		rev.drainMu.Do(func() { close(rev.drained) })
	}
}

// ready reports whether the revision can answer now.
func (rev *revision) ready() bool {
	if rev.state() != stateReady {
		return false
	}
	if rev.proc != nil {
		return rev.proc.Ready()
	}
	return true
}

// load fetches, loads and warms rev's model, then closes rev.done.
func (r *Router) load(rev *revision, spec deploy.Spec) {
	defer close(rev.done)
	start := time.Now()
	log := r.log.With("deployment", rev.key.deployment, "revision", rev.key.revision, "model_version", rev.modelVersion)
	err := r.loadRuntime(r.ctx, rev, spec, log)
	if err != nil {
		rev.err = err
		rev.attempts++
		backoff := r.cfg.LoadRetry << min(rev.attempts-1, 16)
		if backoff > maxLoadRetry || backoff <= 0 {
			backoff = maxLoadRetry
		}
		rev.retryAt = time.Now().Add(backoff)
		if r.ctx.Err() == nil {
			log.Error("load revision", "err", err, "retry_in", backoff)
		}
		return
	}
	log.Info("revision loaded", "flavor", rev.flavor, "took", time.Since(start).Round(time.Millisecond))
}

// loadRuntime does the work of load.
func (r *Router) loadRuntime(ctx context.Context, rev *revision, spec deploy.Spec, log interface {
	Info(string, ...any)
}) error {
	dir, err := r.fetch(ctx, rev.key.model, rev.key.version)
	if err != nil {
		return err
	}
	rev.dir = dir
	flavor := rev.slot.Flavor
	if flavor == "" {
		if flavor, err = modelcheck.DetectFlavor(dir); err != nil {
			return err
		}
	}
	info, err := modelcheck.ValidateModel(ctx, flavor, dir)
	if err != nil {
		return err
	}
	rev.flavor, rev.info = flavor, info
	switch flavor {
	case modelcheck.FlavorXGBoost:
		m, err := xgboost.LoadFile(filepath.Join(dir, info.File))
		if err != nil {
			return err
		}
		rev.features, rev.outputs, rev.objective = m.Features(), m.Outputs(), m.Objective()
		rev.model = m
		if b := spec.Batching; b.MaxBatchSize > 0 {
			rev.batch = batcher.New(m, batcher.Config{
				MaxBatchSize: b.MaxBatchSize,
				MaxDelay:     time.Duration(b.MaxDelay),
				Logger:       r.log,
			})
			rev.model = rev.batch
		}
		// Warm: one row of missing values walks every tree.
		row := make([]float32, len(rev.features))
		for i := range row {
			row[i] = float32(math.NaN())
		}
		out := make([]float32, rev.outputs)
		if err := rev.model.Predict(ctx, serving.Batch{Rows: 1, Cols: len(row), Values: row}, out); err != nil {
			rev.closeRuntime(ctx)
			return fmt.Errorf("warm the model: %w", err)
		}
	case modelcheck.FlavorProcess:
		data, err := os.ReadFile(filepath.Join(dir, modelcheck.ProcessSpecFile))
		if err != nil {
			return fmt.Errorf("read %s: %w", modelcheck.ProcessSpecFile, err)
		}
		ps, err := modelcheck.ParseProcessSpec(data)
		if err != nil {
			return err
		}
		p, err := process.Start(ctx, rev.key.deployment, process.Config{
			Command: ps.Command,
			Dir:     dir,
			Env:     ps.Env,
			Logger:  r.log.With("deployment", rev.key.deployment, "revision", rev.key.revision),
			Stdout:  r.cfg.ProcessOutput,
			Stderr:  r.cfg.ProcessOutput,
		})
		if err != nil {
			return err
		}
		rev.proc = p
	default:
		return mloop.Errorf(mloop.EINVALID, "model %s has flavor %q, which mloop cannot serve (xgboost or process)", rev.modelVersion, flavor)
	}
	return nil
}

// fetch returns the folder holding the files of a model version, fetching
// them first unless a complete copy is cached: files are written to a
// temporary folder and renamed into place, so a folder in place is
// complete.
func (r *Router) fetch(ctx context.Context, model string, version int64) (string, error) {
	dir := filepath.Join(r.cfg.CacheDir, "models", pathName(model), strconv.FormatInt(version, 10))
	if st, err := os.Stat(dir); err == nil && st.IsDir() {
		return dir, nil
	}
	tmpRoot := filepath.Join(r.cfg.CacheDir, "tmp")
	if err := os.MkdirAll(tmpRoot, 0o755); err != nil {
		return "", fmt.Errorf("model cache: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", fmt.Errorf("model cache: %w", err)
	}
	var rnd [8]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(tmpRoot, pathName(model)+"-"+strconv.FormatInt(version, 10)+"-"+hex.EncodeToString(rnd[:]))
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return "", fmt.Errorf("model cache: %w", err)
	}
	if err := r.cp.FetchModel(ctx, model, version, tmp); err != nil {
		os.RemoveAll(tmp)
		return "", fmt.Errorf("fetch model %s/%d: %w", model, version, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		os.RemoveAll(tmp)
		// Another load of the same version got there first.
		if st, serr := os.Stat(dir); serr == nil && st.IsDir() {
			return dir, nil
		}
		return "", fmt.Errorf("model cache: %w", err)
	}
	return dir, nil
}

// pathName turns a model name into one safe folder name: characters other
// than letters, digits, '-', '_' and '.' are escaped, and so is a leading
// dot.
func pathName(s string) string {
	ok := s != ""
	for i := 0; i < len(s) && ok; i++ {
		c := s[i]
		ok = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' && i > 0
	}
	if ok {
		return s
	}
	e := url.PathEscape(s)
	e = strings.ReplaceAll(e, "/", "%2F")
	if strings.HasPrefix(e, ".") {
		e = "%2E" + e[1:]
	}
	if e == "" {
		e = "%00"
	}
	return e
}

// retire drains rev and closes its runtime in the background (the caller
// has removed it from every table and from r.revs).
func (r *Router) retire(rev *revision) {
	r.drains.Add(1)
	go func() {
		defer r.drains.Done()
		<-rev.done // a load in flight finishes (or fails) first
		rev.closing.Store(true)
		if rev.inflight.Load() == 0 {
			rev.drainMu.Do(func() { close(rev.drained) })
		}
		t := time.NewTimer(r.cfg.DrainTimeout)
		select {
		case <-rev.drained:
		case <-t.C:
			r.log.Warn("revision still busy after the drain timeout; closing it", "deployment", rev.key.deployment,
				"revision", rev.key.revision, "in_flight", rev.inflight.Load(), "drain_timeout", r.cfg.DrainTimeout)
		}
		t.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), process.DefaultGrace+5*time.Second)
		defer cancel()
		rev.closeRuntime(ctx)
		if rev.err == nil {
			r.log.Info("revision closed", "deployment", rev.key.deployment, "revision", rev.key.revision, "model_version", rev.modelVersion)
		}
	}()
}

// closeRuntime stops rev's runtime.
func (rev *revision) closeRuntime(ctx context.Context) {
	if rev.batch != nil {
		rev.batch.Close()
	}
	if rev.proc != nil {
		rev.proc.Close(ctx)
	}
}

// shadowFigures returns the shadow comparison figures.
func (rev *revision) shadowFigures() (compared, agreed int64, sumAbsDiff float64, values, errs int64) {
	rev.shadowMu.Lock()
	defer rev.shadowMu.Unlock()
	return rev.compared, rev.agreed, rev.sumAbsDiff, rev.diffValues, rev.shadowErrs
}
