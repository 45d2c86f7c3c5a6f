// Command pipeline measures the pipeline engine and prints each figure next
// to its target and to a baseline from the same run.
//
// The engine runs in this process as the server builds it: a
// pipeline.Service over SQLite (internal/sqlstore) and a local artifact
// folder, with the tracking, registry and dataset services, on a fresh
// temporary folder per part. Runs are submitted with Service.Submit and
// watched with Service.GetRun every millisecond; "submit → done" is the wall
// time from the Submit call until the run is seen finished.
//
//   - overhead: a chain of -steps steps, each `touch` of its one output and
//     needing the step before (cache off), against running `touch` -steps
//     times with os/exec; and -steps independent steps of `true` with step
//     parallelism 1, against `true` run -steps times. The difference divided
//     by the number of steps is the engine's overhead per step. Target: at
//     most 20 ms.
//   - cached: a chain of 10 steps whose code inputs are 10 folders of
//     -bytes/10 bytes of random files (generated in the temporary folder,
//     their modification times set an hour back so that the hash memo may
//     remember them). The first run hashes everything and runs every step;
//     the second finds every step in the cache. Target: the second run
//     decides "nothing to do" within 200 ms; so must a re-run by a new
//     service over the same folder (as after a restart; the hash memo is
//     read from disk). The first run's time is printed with the throughput
//     it implies, next to HashTree alone over the same folders (no memo) and
//     `sha256sum` over one folder (warm page cache) as a baseline.
//   - parallel: 50 independent steps each sleeping 0.2 s, with step
//     parallelism 4 and 8. Each step writes its start and end times (from
//     `date`) to files; the wall time is compared with the ideal
//     ceil(50/P) × 0.2 s, and the largest number of steps seen running at
//     once with P.
//
// Usage (from the repository root):
//
//	go run ./bench/pipeline [-only overhead|cached|parallel] [-steps 20] [-bytes 1073741824] [-reps 3] [-json] [-keep]
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mloop/mloop/bench/internal/benchserver"
	"github.com/mloop/mloop/internal/artifact"
	"github.com/mloop/mloop/internal/dataset"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/sqlstore"
	"github.com/mloop/mloop/internal/tracking"
)

func main() {
	steps := flag.Int("steps", 20, "steps of the overhead pipelines")
	size := flag.Int64("bytes", 1<<30, "total size of the cached pipeline's code inputs")
	reps := flag.Int("reps", 3, "repetitions of each measurement (best and median are reported)")
	only := flag.String("only", "", "run only one part: overhead, cached or parallel")
	asJSON := flag.Bool("json", false, "print the figures as JSON")
	keep := flag.Bool("keep", false, "keep the temporary folder")
	flag.Parse()
	if *only != "" && !slices.Contains([]string{"overhead", "cached", "parallel"}, *only) {
		fmt.Fprintf(os.Stderr, "bench: -only %q: want overhead, cached or parallel\n", *only)
		os.Exit(2)
	}
	if err := run(context.Background(), *steps, *size, *reps, *only, *asJSON, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

// Result holds every figure the benchmark prints. Times are in
// milliseconds.
type Result struct {
	Date       string `json:"date"`
	GOMAXPROCS int    `json:"gomaxprocs"`

	Steps int `json:"steps,omitempty"`
	// Chain of touch steps vs touch run directly.
	ChainMs           float64 `json:"chain_ms,omitempty"`
	ChainMedianMs     float64 `json:"chain_median_ms,omitempty"`
	TouchDirectMs     float64 `json:"touch_direct_ms,omitempty"`
	ChainOverheadMs   float64 `json:"chain_overhead_per_step_ms,omitempty"`
	TrueMs            float64 `json:"true_ms,omitempty"`
	TrueDirectMs      float64 `json:"true_direct_ms,omitempty"`
	TrueOverheadMs    float64 `json:"true_overhead_per_step_ms,omitempty"`
	StepSpanMedianMs  float64 `json:"step_span_median_ms,omitempty"` // recorded StartedAt → FinishedAt of a chain step
	StepStartGapMedMs float64 `json:"step_start_gap_median_ms,omitempty"`

	CachedBytes    int64   `json:"cached_bytes,omitempty"`
	CachedFirstMs  float64 `json:"cached_first_ms,omitempty"`
	CachedHashMBps float64 `json:"cached_first_mb_per_s,omitempty"`
	// HashOnlyMs is HashTree over the same folders in this process, without
	// a memo: the hashing part of the first run.
	HashOnlyMs      float64 `json:"hash_only_ms,omitempty"`
	Sha256sumMBps   float64 `json:"sha256sum_mb_per_s,omitempty"`
	CachedRerunMs   float64 `json:"cached_rerun_ms,omitempty"`
	CachedRerunMed  float64 `json:"cached_rerun_median_ms,omitempty"`
	CachedRecordMs  float64 `json:"cached_rerun_recorded_ms,omitempty"` // CreatedAt → FinishedAt in the run record
	CachedAllCached bool    `json:"cached_all_cached,omitempty"`
	// CachedRestartMs is a cached re-run by a new service over the same
	// folder, as after a server restart (the hash memo read from disk).
	CachedRestartMs float64 `json:"cached_restart_ms,omitempty"`
	// CachedCLIMs is the same re-run through `mloop pipeline run` against a
	// real server, command start to exit; VersionMs is `mloop version`.
	CachedCLIMs    float64 `json:"cached_cli_ms,omitempty"`
	CachedCLIMedMs float64 `json:"cached_cli_median_ms,omitempty"`
	VersionMs      float64 `json:"version_ms,omitempty"`

	Parallel []ParallelResult `json:"parallel,omitempty"`
}

// ParallelResult is the parallel part's figures for one parallelism.
type ParallelResult struct {
	Parallelism    int     `json:"parallelism"`
	WallMs         float64 `json:"wall_ms"`
	IdealMs        float64 `json:"ideal_ms"`
	MaxConcurrency int     `json:"max_concurrency"`
}

func run(ctx context.Context, steps int, size int64, reps int, only string, asJSON, keep bool) error {
	tmp, err := os.MkdirTemp("", "mloop-bench-pipeline-")
	if err != nil {
		return err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "keeping", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	res := &Result{Date: time.Now().UTC().Format(time.RFC3339), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	if only == "" || only == "overhead" {
		if err := benchOverhead(ctx, filepath.Join(tmp, "overhead"), steps, reps, res); err != nil {
			return fmt.Errorf("overhead: %w", err)
		}
	}
	if only == "" || only == "cached" {
		if err := benchCached(ctx, filepath.Join(tmp, "cached"), size, reps, res); err != nil {
			return fmt.Errorf("cached: %w", err)
		}
	}
	if only == "" || only == "parallel" {
		for _, p := range []int{4, 8} {
			if err := benchParallel(ctx, filepath.Join(tmp, "parallel-"+strconv.Itoa(p)), p, res); err != nil {
				return fmt.Errorf("parallel %d: %w", p, err)
			}
		}
	}
	if asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(res)
	}
	printResult(os.Stdout, res)
	return nil
}

// engine is a pipeline service wired as the server wires it, on dir.
type engine struct {
	dir  string
	db   *sqlstore.DB
	arts *artifact.Store
	svc  *pipeline.Service
}

// openEngine opens an engine on a fresh folder with the given step
// parallelism.
func openEngine(ctx context.Context, dir string, parallelism int) (*engine, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	e := &engine{dir: dir}
	e.db = sqlstore.NewDB(filepath.Join(dir, "mloop.db"))
	e.db.Logger = quietLogger()
	if err := e.db.Open(ctx); err != nil {
		return nil, fmt.Errorf("open metadata store: %w", err)
	}
	arts, err := artifact.Open(ctx, filepath.Join(dir, "artifacts"))
	if err != nil {
		e.db.Close()
		return nil, fmt.Errorf("open artifact store: %w", err)
	}
	e.arts = arts
	trackingStore := sqlstore.NewTrackingStore(e.db)
	trackingSvc := tracking.NewService(trackingStore)
	loggedModels := tracking.NewLoggedModels(sqlstore.NewLoggedModelStore(e.db), trackingSvc)
	registrySvc := registry.NewService(sqlstore.NewRegistryStore(e.db), trackingSvc, loggedModels)
	datasetSvc := dataset.NewService(sqlstore.NewDatasetStore(e.db), dataset.NewBlobs(arts), trackingStore)
	datasetSvc.Logger = quietLogger()
	e.svc = pipeline.NewService(sqlstore.NewPipelineStore(e.db), trackingSvc, registrySvc, datasetSvc, arts, filepath.Join(dir, "work"))
	e.svc.StepParallelism = parallelism
	e.svc.Logger = quietLogger()
	if err := e.svc.Open(ctx); err != nil {
		e.close()
		return nil, fmt.Errorf("open pipeline service: %w", err)
	}
	return e, nil
}

func (e *engine) close() {
	if e.svc != nil {
		e.svc.Close()
	}
	if e.arts != nil {
		e.arts.Close()
	}
	e.db.Close()
}

func quietLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// runSpec writes spec to the engine's project folder, submits it, waits
// until the run is done and returns it with the wall time from Submit on.
// A run that did not succeed is an error showing its failed steps.
func (e *engine) runSpec(ctx context.Context, spec string) (*pipeline.Run, time.Duration, error) {
	project := filepath.Join(e.dir, "project")
	if err := os.MkdirAll(project, 0o755); err != nil {
		return nil, 0, err
	}
	file := filepath.Join(project, "mloop.yaml")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		return nil, 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	start := time.Now()
	r, err := e.svc.Submit(ctx, pipeline.SubmitRequest{SpecFile: file, ProjectDir: project, Spec: spec, User: "bench"})
	if err != nil {
		return nil, 0, err
	}
	for {
		got, err := e.svc.GetRun(ctx, r.ID)
		if err != nil {
			return nil, 0, err
		}
		if got.Status.Done() {
			wall := time.Since(start)
			if got.Status != pipeline.RunSucceeded {
				var b strings.Builder
				for _, s := range got.Steps {
					if !s.Status.OK() {
						fmt.Fprintf(&b, "; step %s %s: %s", s.Name, s.Status, s.Error)
					}
				}
				return got, wall, fmt.Errorf("run %s %s: %s%s", got.ID, got.Status, got.Error, b.String())
			}
			return got, wall, nil
		}
		select {
		case <-ctx.Done():
			return nil, 0, fmt.Errorf("run %s: %w", r.ID, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

// chainSpec returns a pipeline of n steps, step i touching its output o and
// needing the output of step i-1; codeDirs, when given, are the steps' code
// inputs.
func chainSpec(name string, n int, cache bool, codeDirs []string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "name: %s\nsteps:\n", name)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  s%02d:\n    run: [touch, \"${{ outputs.o }}\"]\n    outputs:\n      o: {path: o}\n", i)
		if !cache {
			b.WriteString("    cache: false\n")
		}
		if i > 0 || len(codeDirs) > 0 {
			b.WriteString("    inputs:\n")
		}
		if i > 0 {
			fmt.Fprintf(&b, "      prev: steps.s%02d.outputs.o\n", i-1)
		}
		if len(codeDirs) > 0 {
			fmt.Fprintf(&b, "      code: %s\n", codeDirs[i])
		}
	}
	return b.String()
}

// trueSpec returns a pipeline of n independent steps running `true`.
func trueSpec(n int) string {
	var b strings.Builder
	b.WriteString("name: bench-true\nsteps:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "  s%02d:\n    run: [\"true\"]\n    cache: false\n", i)
	}
	return b.String()
}

// direct runs argv n times one after the other and returns the wall time;
// file, when not empty, is appended to the arguments with the run's number.
func direct(ctx context.Context, n int, file string, argv ...string) (time.Duration, error) {
	start := time.Now()
	for i := 0; i < n; i++ {
		args := slices.Clone(argv[1:])
		if file != "" {
			args = append(args, file+strconv.Itoa(i))
		}
		if err := exec.CommandContext(ctx, argv[0], args...).Run(); err != nil {
			return 0, fmt.Errorf("%s: %w", argv[0], err)
		}
	}
	return time.Since(start), nil
}

func benchOverhead(ctx context.Context, dir string, steps, reps int, res *Result) error {
	res.Steps = steps
	e, err := openEngine(ctx, filepath.Join(dir, "chain"), 4)
	if err != nil {
		return err
	}
	defer e.close()
	if _, _, err := e.runSpec(ctx, chainSpec("bench-chain", steps, false, nil)); err != nil { // warm-up
		return err
	}
	var chain, touch []time.Duration
	var spans, gaps []time.Duration
	for i := 0; i < reps; i++ {
		r, wall, err := e.runSpec(ctx, chainSpec("bench-chain", steps, false, nil))
		if err != nil {
			return err
		}
		chain = append(chain, wall)
		for j, s := range r.Steps {
			spans = append(spans, s.FinishedAt.Sub(s.StartedAt))
			if j > 0 {
				gaps = append(gaps, s.StartedAt.Sub(r.Steps[j-1].FinishedAt))
			}
		}
		d, err := direct(ctx, steps, filepath.Join(dir, "touch-"), "touch")
		if err != nil {
			return err
		}
		touch = append(touch, d)
	}
	res.ChainMs, res.ChainMedianMs = ms(best(chain)), ms(median(chain))
	res.TouchDirectMs = ms(best(touch))
	res.ChainOverheadMs = (res.ChainMs - res.TouchDirectMs) / float64(steps)
	res.StepSpanMedianMs, res.StepStartGapMedMs = ms(median(spans)), ms(median(gaps))

	t, err := openEngine(ctx, filepath.Join(dir, "true"), 1)
	if err != nil {
		return err
	}
	defer t.close()
	if _, _, err := t.runSpec(ctx, trueSpec(steps)); err != nil { // warm-up
		return err
	}
	var trues, direct1 []time.Duration
	for i := 0; i < reps; i++ {
		_, wall, err := t.runSpec(ctx, trueSpec(steps))
		if err != nil {
			return err
		}
		trues = append(trues, wall)
		d, err := direct(ctx, steps, "", "true")
		if err != nil {
			return err
		}
		direct1 = append(direct1, d)
	}
	res.TrueMs, res.TrueDirectMs = ms(best(trues)), ms(best(direct1))
	res.TrueOverheadMs = (res.TrueMs - res.TrueDirectMs) / float64(steps)
	return nil
}

// writeInputs writes 10 folders code/dNN of 10 files each, size bytes in
// all, and sets their modification times an hour back.
func writeInputs(project string, size int64) ([]string, error) {
	rng := rand.NewChaCha8([32]byte{1})
	buf := make([]byte, 1<<20)
	per := size / 100
	old := time.Now().Add(-time.Hour)
	var dirs []string
	for d := 0; d < 10; d++ {
		rel := fmt.Sprintf("code/d%02d", d)
		dirs = append(dirs, rel)
		if err := os.MkdirAll(filepath.Join(project, rel), 0o755); err != nil {
			return nil, err
		}
		for f := 0; f < 10; f++ {
			p := filepath.Join(project, rel, fmt.Sprintf("f%02d.bin", f))
			fh, err := os.Create(p)
			if err != nil {
				return nil, err
			}
			for left := per; left > 0; {
				n := min(left, int64(len(buf)))
				rng.Read(buf[:n])
				if _, err := fh.Write(buf[:n]); err != nil {
					fh.Close()
					return nil, err
				}
				left -= n
			}
			if err := fh.Close(); err != nil {
				return nil, err
			}
			if err := os.Chtimes(p, old, old); err != nil {
				return nil, err
			}
		}
	}
	return dirs, nil
}

func benchCached(ctx context.Context, dir string, size int64, reps int, res *Result) error {
	e, err := openEngine(ctx, dir, 4)
	if err != nil {
		return err
	}
	defer func() {
		if e != nil {
			e.close()
		}
	}()
	project := filepath.Join(dir, "project")
	dirs, err := writeInputs(project, size)
	if err != nil {
		return fmt.Errorf("write inputs: %w", err)
	}
	res.CachedBytes = size / 100 * 100
	spec := chainSpec("bench-cached", 10, true, dirs)
	_, first, err := e.runSpec(ctx, spec)
	if err != nil {
		return err
	}
	res.CachedFirstMs = ms(first)
	res.CachedHashMBps = float64(res.CachedBytes) / 1e6 / first.Seconds()
	if mbps, err := sha256sum(ctx, filepath.Join(project, dirs[0])); err == nil {
		res.Sha256sumMBps = mbps
	}
	hashStart := time.Now()
	for _, d := range dirs {
		if _, err := pipeline.HashTree(ctx, filepath.Join(project, d), nil); err != nil {
			return fmt.Errorf("hash %s: %w", d, err)
		}
	}
	res.HashOnlyMs = ms(time.Since(hashStart))
	var reruns []time.Duration
	var recorded time.Duration
	res.CachedAllCached = true
	for i := 0; i < max(reps, 3); i++ {
		r, wall, err := e.runSpec(ctx, spec)
		if err != nil {
			return err
		}
		reruns = append(reruns, wall)
		if i == 0 || wall == best(reruns) {
			recorded = r.FinishedAt.Sub(r.CreatedAt)
		}
		for _, s := range r.Steps {
			if s.Status != pipeline.StepCached {
				res.CachedAllCached = false
			}
		}
	}
	res.CachedRerunMs, res.CachedRerunMed = ms(best(reruns)), ms(median(reruns))
	res.CachedRecordMs = ms(recorded)

	e.close()
	if e, err = openEngine(ctx, dir, 4); err != nil {
		return err
	}
	r, wall, err := e.runSpec(ctx, spec)
	if err != nil {
		return err
	}
	for _, s := range r.Steps {
		if s.Status != pipeline.StepCached {
			res.CachedAllCached = false
		}
	}
	res.CachedRestartMs = ms(wall)
	e.close()
	e = nil
	return benchCachedCLI(ctx, dir, spec, reps, res)
}

// benchCachedCLI times the fully cached re-run as a user sees it: the
// `mloop pipeline run` command (a new process) against a real `mloop
// server`, from the command's start to its exit.
func benchCachedCLI(ctx context.Context, dir, spec string, reps int, res *Result) error {
	bin, err := benchserver.Build(dir)
	if err != nil {
		return err
	}
	srv, err := benchserver.Start(bin, filepath.Join(dir, "server"))
	if err != nil {
		return err
	}
	defer srv.Stop()
	file := filepath.Join(dir, "project", "mloop.yaml")
	if err := os.WriteFile(file, []byte(spec), 0o644); err != nil {
		return err
	}
	runCLI := func() (time.Duration, error) {
		start := time.Now()
		out, err := exec.CommandContext(ctx, bin, "pipeline", "run", file, "--server", srv.URL, "--quiet").CombinedOutput()
		if err != nil {
			return 0, fmt.Errorf("mloop pipeline run: %v\n%s", err, out)
		}
		return time.Since(start), nil
	}
	if _, err := runCLI(); err != nil { // the first run hashes and runs everything
		return err
	}
	var walls []time.Duration
	for i := 0; i < max(reps, 3); i++ {
		wall, err := runCLI()
		if err != nil {
			return err
		}
		walls = append(walls, wall)
	}
	res.CachedCLIMs, res.CachedCLIMedMs = ms(best(walls)), ms(median(walls))
	if res.VersionMs, err = timeCommand(ctx, bin, "version"); err != nil {
		return err
	}
	return nil
}

// timeCommand returns the wall time of running bin with args once: the
// cost of starting the command, as a baseline for CLI figures.
func timeCommand(ctx context.Context, bin string, args ...string) (float64, error) {
	start := time.Now()
	if out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("%s %v: %v\n%s", bin, args, err, out)
	}
	return ms(time.Since(start)), nil
}

// sha256sum returns the throughput of `sha256sum` over the files of dir
// (warm page cache), in MB/s, as a ceiling for hashing.
func sha256sum(ctx context.Context, dir string) (float64, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var files []string
	var total int64
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			return 0, err
		}
		total += fi.Size()
		files = append(files, filepath.Join(dir, e.Name()))
	}
	start := time.Now()
	if err := exec.CommandContext(ctx, "sha256sum", files...).Run(); err != nil {
		return 0, err
	}
	return float64(total) / 1e6 / time.Since(start).Seconds(), nil
}

// parallelSpec returns a pipeline of n independent steps that record their
// start and end in MARKS and sleep 0.2 s in between.
func parallelSpec(n int, marks string) string {
	var b strings.Builder
	b.WriteString("name: bench-parallel\nsteps:\n")
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, `  p%02d:
    run: [sh, -c, 'date +%%s%%N > "$MARKS/p%02d.start"; sleep 0.2; date +%%s%%N > "$MARKS/p%02d.end"']
    env:
      MARKS: %q
    cache: false
`, i, i, i, marks)
	}
	return b.String()
}

func benchParallel(ctx context.Context, dir string, p int, res *Result) error {
	const n = 50
	e, err := openEngine(ctx, dir, p)
	if err != nil {
		return err
	}
	defer e.close()
	marks := filepath.Join(dir, "marks")
	if err := os.MkdirAll(marks, 0o755); err != nil {
		return err
	}
	_, wall, err := e.runSpec(ctx, parallelSpec(n, marks))
	if err != nil {
		return err
	}
	conc, err := maxConcurrency(marks, n)
	if err != nil {
		return err
	}
	ideal := math.Ceil(float64(n)/float64(p)) * 200
	res.Parallel = append(res.Parallel, ParallelResult{Parallelism: p, WallMs: ms(wall), IdealMs: ideal, MaxConcurrency: conc})
	return nil
}

// maxConcurrency reads the start and end marks of n steps and returns the
// largest number of steps running at one instant.
func maxConcurrency(marks string, n int) (int, error) {
	type ev struct {
		t     int64
		delta int
	}
	var evs []ev
	for i := 0; i < n; i++ {
		for _, kind := range []string{"start", "end"} {
			b, err := os.ReadFile(filepath.Join(marks, fmt.Sprintf("p%02d.%s", i, kind)))
			if err != nil {
				return 0, fmt.Errorf("step p%02d left no %s mark: %w", i, kind, err)
			}
			t, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("step p%02d: %s mark: %w", i, kind, err)
			}
			d := 1
			if kind == "end" {
				d = -1
			}
			evs = append(evs, ev{t, d})
		}
	}
	// Ends sort before starts at the same instant: touching intervals do
	// not overlap.
	sort.Slice(evs, func(i, j int) bool {
		if evs[i].t != evs[j].t {
			return evs[i].t < evs[j].t
		}
		return evs[i].delta < evs[j].delta
	})
	cur, top := 0, 0
	for _, e := range evs {
		cur += e.delta
		top = max(top, cur)
	}
	return top, nil
}

func printResult(w io.Writer, r *Result) {
	fmt.Fprintf(w, "pipeline engine benchmark, %s, GOMAXPROCS=%d\n\n", r.Date, r.GOMAXPROCS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "measure\tmloop\ttarget\tbaseline")
	if r.Steps > 0 {
		fmt.Fprintf(tw, "chain of %d touch steps, submit → done\t%.1f ms (median %.1f)\t\ttouch ×%d with os/exec: %.1f ms\n",
			r.Steps, r.ChainMs, r.ChainMedianMs, r.Steps, r.TouchDirectMs)
		fmt.Fprintf(tw, "  engine overhead per step\t%.1f ms\t≤ 20 ms %s\t\n", r.ChainOverheadMs, verdict(r.ChainOverheadMs <= 20))
		fmt.Fprintf(tw, "  a step's recorded span / gap to the next (median)\t%.1f / %.1f ms\t\t\n", r.StepSpanMedianMs, r.StepStartGapMedMs)
		fmt.Fprintf(tw, "%d independent true steps, parallelism 1\t%.1f ms\t\ttrue ×%d with os/exec: %.1f ms\n",
			r.Steps, r.TrueMs, r.Steps, r.TrueDirectMs)
		fmt.Fprintf(tw, "  engine overhead per step\t%.1f ms\t≤ 20 ms %s\t\n", r.TrueOverheadMs, verdict(r.TrueOverheadMs <= 20))
	}
	if r.CachedBytes > 0 {
		fmt.Fprintf(tw, "10 steps, %.2f GB of code inputs: first run\t%.0f ms (%.0f MB/s)\t\tsha256sum: %.0f MB/s\n",
			float64(r.CachedBytes)/1e9, r.CachedFirstMs, r.CachedHashMBps, r.Sha256sumMBps)
		fmt.Fprintf(tw, "  of which hashing (HashTree alone, no memo)\t%.0f ms (%.0f MB/s)\t\t\n",
			r.HashOnlyMs, float64(r.CachedBytes)/1e6/(r.HashOnlyMs/1000))
		all := "every step cached"
		if !r.CachedAllCached {
			all = "NOT every step cached"
		}
		fmt.Fprintf(tw, "  fully cached re-run, submit → done\t%.1f ms (median %.1f; recorded %.1f)\t≤ 200 ms %s\t%s\n",
			r.CachedRerunMs, r.CachedRerunMed, r.CachedRecordMs, verdict(r.CachedRerunMs <= 200 && r.CachedAllCached), all)
		fmt.Fprintf(tw, "  the same by a restarted service (memo from disk)\t%.1f ms\t≤ 200 ms %s\t\n", r.CachedRestartMs, verdict(r.CachedRestartMs <= 200))
		fmt.Fprintf(tw, "  the same with mloop pipeline run → mloop server\t%.1f ms (median %.1f)\t≤ 200 ms %s\tmloop version: %.1f ms\n",
			r.CachedCLIMs, r.CachedCLIMedMs, verdict(r.CachedCLIMs <= 200), r.VersionMs)
	}
	for _, p := range r.Parallel {
		fmt.Fprintf(tw, "50 steps of sleep 0.2 s, parallelism %d\t%.0f ms, at most %d at once\t%d at once %s\tideal %.0f ms (%.2f×)\n",
			p.Parallelism, p.WallMs, p.MaxConcurrency, p.Parallelism, verdict(p.MaxConcurrency == p.Parallelism), p.IdealMs, p.WallMs/p.IdealMs)
	}
	tw.Flush()
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "MISSED"
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func best(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return slices.Min(ds)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[len(s)/2]
}
