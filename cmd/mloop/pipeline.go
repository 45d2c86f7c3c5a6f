package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/client"
	"github.com/mloop/mloop/internal/pipeline"
)

const pipelineUsage = `Usage: mloop pipeline <command> [arguments] [flags]

Runs pipelines (mloop.yaml) on the server and shows their runs.

Commands:
  run FILE          check the spec, run it on the server and follow it step by step
  runs              list pipeline runs, newest first
  show RUN          a run's steps: status, attempts, duration, cache, MLflow run, explain
  logs RUN [STEP]   print a step's log, or every step's (-f follows a running step)
  cancel RUN        cancel a queued or running run

Every command takes --server (default $MLOOP_SERVER, else ` + client.DefaultServer + `)
and --json (machine-readable output on stdout).

Exit status: 0 success (for run: the run succeeded); 1 the command failed, or
the run failed or was canceled; 2 bad usage or an invalid spec, nothing done.

Run 'mloop pipeline <command> -h' for a command's flags.
`

// runPipeline dispatches `mloop pipeline <command>`.
func runPipeline(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, pipelineUsage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	d := &dataCmd{name: "mloop pipeline " + cmd, stdout: stdout, stderr: stderr}
	switch cmd {
	case "run":
		return d.pipelineRun(ctx, rest)
	case "runs", "list", "ls":
		d.name = "mloop pipeline runs"
		return d.pipelineRuns(ctx, rest)
	case "show":
		return d.pipelineShow(ctx, rest)
	case "logs":
		return d.pipelineLogs(ctx, rest)
	case "cancel":
		return d.pipelineCancel(ctx, rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, pipelineUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mloop pipeline: unknown command %q\n\n%s", cmd, pipelineUsage)
		return exitUsage
	}
}

const pipelineRunUsage = `Usage: mloop pipeline run FILE [flags]

Checks the pipeline spec FILE (mloop.yaml) here first — any problem is printed
as FILE:LINE:COLUMN and nothing runs — then submits it to the server and
follows the run: one line per step as it starts, succeeds, is cached, fails or
is skipped, and the running steps' output prefixed by their name. Ctrl-C
cancels the run on the server.

Relative paths of the spec are relative to the project folder: the spec's
folder, or --project. The server reads the project there, so run it on the
server's machine (or a shared folder).

Exit status: 0 the run succeeded; 1 it failed or was canceled (or the server
could not be reached); 2 bad usage or an invalid spec.
`

// pipelineRun runs `mloop pipeline run FILE`.
func (d *dataCmd) pipelineRun(ctx context.Context, args []string) int {
	fs := d.flags(pipelineRunUsage)
	params := &keyValues{what: "param"}
	fs.Var(params, "param", "override a pipeline parameter, `KEY=VALUE` (repeatable)")
	explain := fs.Bool("explain", false, "print under each step why it ran or was cached")
	detach := fs.Bool("detach", false, "submit the run, print its id and return without following it")
	quiet := fs.Bool("quiet", false, "do not print the steps' output, only their status lines")
	project := fs.String("project", "", "project folder the spec's relative paths are relative to (default: the spec's folder)")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	file := pos[0]
	abs, data, spec, code, ok := d.loadSpec(file)
	if !ok {
		return code
	}
	if _, err := spec.WithParams(params.m); err != nil {
		return d.usageError("%v", err)
	}
	projectDir := filepath.Dir(abs)
	if *project != "" {
		var code int
		if projectDir, code, ok = d.projectDir(*project); !ok {
			return code
		}
	}
	run, err := d.client.SubmitPipelineRun(ctx, client.PipelineRunRequest{
		SpecFile: abs, ProjectDir: projectDir, Spec: string(data), Params: params.m,
		Explain: *explain, User: currentUser(),
	})
	if mloop.ErrorCode(err) == mloop.EINVALID {
		// The server found a problem the local check cannot see (a
		// built-in step's configuration, a dataset that does not exist):
		// nothing was run, as for a spec error.
		d.fail(err)
		return exitUsage
	} else if err != nil {
		return d.fail(err)
	}
	if *detach {
		if d.json {
			return d.writeJSON(run)
		}
		fmt.Fprintln(d.stdout, run.ID)
		return exitOK
	}
	f := newRunFollower(d, run, *explain, *quiet)
	if !d.json {
		fmt.Fprintf(d.stdout, "run %s of pipeline %s: %s\n", run.ID, run.Pipeline, plural(int64(len(run.Steps)), "step", "steps"))
	}
	final, err := f.follow(ctx)
	if err != nil && ctx.Err() != nil {
		// Interrupted: cancel the run on the server and see it end.
		f.prog.done()
		fmt.Fprintf(d.stderr, "\ninterrupted: canceling run %s on the server…\n", run.ID)
		cctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := d.client.CancelPipelineRun(cctx, run.ID); err != nil && mloop.ErrorCode(err) != mloop.ECONFLICT {
			return d.fail(err) // ECONFLICT: it ended meanwhile
		}
		if final, err = f.follow(cctx); err != nil {
			fmt.Fprintf(d.stderr, "%s: the run is still stopping on the server; see `mloop pipeline show %s`\n", d.name, run.ID)
			return exitFailure
		}
	} else if err != nil {
		return d.fail(err)
	}
	return f.finish(final)
}

// loadSpec reads and checks the spec at file. It prints each problem as
// FILE:LINE:COLUMN and returns exitUsage when the spec is invalid.
func (d *dataCmd) loadSpec(file string) (abs string, data []byte, spec *pipeline.Spec, code int, ok bool) {
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", nil, nil, d.usageError("pipeline spec %s: %v", file, err), false
	}
	data, err = os.ReadFile(file)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return "", nil, nil, d.usageError("no pipeline spec at %s: give the path of an mloop.yaml", file), false
		}
		return "", nil, nil, d.usageError("read pipeline spec: %v", err), false
	}
	spec, err = pipeline.ParseSpec(file, data)
	if err != nil {
		problems := strings.Split(strings.TrimSpace(err.Error()), "\n")
		for _, p := range problems {
			fmt.Fprintln(d.stderr, p)
		}
		fmt.Fprintf(d.stderr, "%s: %s in %s; nothing was run\n", d.name, plural(int64(len(problems)), "problem", "problems"), file)
		return "", nil, nil, exitUsage, false
	}
	return abs, data, spec, exitOK, true
}

// projectDir returns dir as an absolute path after checking it is a folder.
func (d *dataCmd) projectDir(dir string) (string, int, bool) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", d.usageError("project folder %s: %v", dir, err), false
	}
	if fi, err := os.Stat(abs); err != nil || !fi.IsDir() {
		return "", d.usageError("project folder %s is not a folder: give --project an existing folder", dir), false
	}
	return abs, exitOK, true
}

// pollInterval is how often a followed run is polled.
const pollInterval = 150 * time.Millisecond

// runFollower prints a run's progress as it polls it: a line per step state
// change, the running steps' new output, a status line on a terminal.
type runFollower struct {
	d       *dataCmd
	id      string
	explain bool
	quiet   bool
	out     io.Writer // nil with --json: only the final run is printed
	prog    *progressLine
	width   int
	steps   map[string]*followedStep
}

// followedStep is what the follower has shown of a step.
type followedStep struct {
	status    pipeline.StepStatus
	attempt   int
	explained bool
	drained   bool // its log was read to the end after it finished
	log       *linePrefixer
}

func newRunFollower(d *dataCmd, run *pipeline.Run, explain, quiet bool) *runFollower {
	f := &runFollower{d: d, id: run.ID, explain: explain, quiet: quiet, steps: map[string]*followedStep{}}
	if !d.json {
		f.out = d.stdout
	}
	if isTerminal(d.stderr) {
		f.prog = newProgress(d.stderr, false)
	}
	for _, st := range run.Steps {
		f.width = max(f.width, len(st.Name))
	}
	return f
}

// follow polls the run until it is done or ctx ends, and returns it.
func (f *runFollower) follow(ctx context.Context) (*pipeline.Run, error) {
	// Short runs (a fully cached one ends within milliseconds) are seen
	// ending at once; longer ones are polled every pollInterval.
	delay := 5 * time.Millisecond
	for {
		run, err := f.d.client.GetPipelineRun(ctx, f.id)
		if err != nil {
			return nil, err
		}
		if err := f.update(ctx, run); err != nil {
			return nil, err
		}
		if run.Status.Done() {
			f.prog.done()
			return run, nil
		}
		f.status(run)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, pollInterval)
	}
}

// update prints what changed in run since the last poll.
func (f *runFollower) update(ctx context.Context, run *pipeline.Run) error {
	if f.out == nil {
		return nil
	}
	for _, st := range run.Steps {
		f.width = max(f.width, len(st.Name))
		fs := f.steps[st.Name]
		if fs == nil {
			fs = &followedStep{status: pipeline.StepPending, log: &linePrefixer{prefix: st.Name + " │ ", hideMarkers: true}}
			f.steps[st.Name] = fs
		}
		changed := st.Status != fs.status || st.Attempt != fs.attempt
		fs.status, fs.attempt = st.Status, st.Attempt
		// A step that starts is announced before its output; one that
		// ends after all of it.
		if changed && st.Status == pipeline.StepRunning {
			f.announce(st, fs)
		}
		ran := st.Attempt > 0 && st.Status != pipeline.StepCached && st.Status != pipeline.StepSkipped
		if !f.quiet && ran && (st.Status == pipeline.StepRunning || (st.Status.Done() && !fs.drained)) {
			if err := f.streamLog(ctx, st.Name, fs); err != nil {
				return err
			}
			if st.Status.Done() {
				fs.drained = true
				f.print(fs.log.flush())
			}
		}
		if changed && st.Status != pipeline.StepRunning {
			f.announce(st, fs)
		}
	}
	return nil
}

// announce prints a step's new state and, with --explain, why it ran or
// was cached (once).
func (f *runFollower) announce(st *pipeline.StepRun, fs *followedStep) {
	line := f.stepLine(st)
	if line == "" {
		return
	}
	var b strings.Builder
	b.WriteString(line + "\n")
	if f.explain && !fs.explained && len(st.Explain) > 0 {
		fs.explained = true
		for _, e := range st.Explain {
			fmt.Fprintf(&b, "      · %s\n", e)
		}
	}
	f.print(b.String())
}

// streamLog prints the step's log written since the last call.
func (f *runFollower) streamLog(ctx context.Context, step string, fs *followedStep) error {
	rc, err := f.d.client.PipelineRunLogs(ctx, f.id, step, fs.log.offset, false)
	if mloop.IsNotFound(err) {
		return nil
	} else if err != nil {
		return err
	}
	defer rc.Close()
	var b bytes.Buffer
	if _, err := fs.log.copy(&b, rc); err != nil {
		return fmt.Errorf("read the log of step %s: %w", step, err)
	}
	f.print(b.String())
	return nil
}

// print writes s to the output, clearing the status line first.
func (f *runFollower) print(s string) {
	if s == "" {
		return
	}
	f.prog.done()
	io.WriteString(f.out, s)
}

// stepLine describes a step's new state, or "" for a state not shown.
func (f *runFollower) stepLine(st *pipeline.StepRun) string {
	name := fmt.Sprintf("%-*s", f.width, st.Name)
	elapsed := stepElapsed(st)
	switch st.Status {
	case pipeline.StepRunning:
		if st.Attempt > 1 {
			return fmt.Sprintf("  ▸ %s  running (attempt %d)", name, st.Attempt)
		}
		return fmt.Sprintf("  ▸ %s  running", name)
	case pipeline.StepSucceeded:
		return fmt.Sprintf("  ✓ %s  succeeded  %s", name, elapsed)
	case pipeline.StepCached:
		return fmt.Sprintf("  ○ %s  cached (%s)", name, dash(st.CachedFrom))
	case pipeline.StepFailed:
		return fmt.Sprintf("  ✗ %s  failed  %s: %s — mloop pipeline logs %s %s", name, elapsed, stepError(st), f.id, st.Name)
	case pipeline.StepCanceled:
		return fmt.Sprintf("  ✗ %s  canceled  %s", name, elapsed)
	case pipeline.StepSkipped:
		if st.Error != "" {
			return fmt.Sprintf("  - %s  skipped: %s", name, st.Error)
		}
		return fmt.Sprintf("  - %s  skipped", name)
	}
	return ""
}

// stepError says why a step failed.
func stepError(st *pipeline.StepRun) string {
	switch {
	case st.Error != "":
		return st.Error
	case st.ExitCode != nil:
		return "exit status " + strconv.Itoa(*st.ExitCode)
	}
	return "failed"
}

// stepElapsed is how long the step's last attempt took (so far).
func stepElapsed(st *pipeline.StepRun) string {
	if st.StartedAt.IsZero() {
		return "-"
	}
	end := st.FinishedAt
	if end.IsZero() {
		end = time.Now()
	}
	return formatElapsed(end.Sub(st.StartedAt))
}

// runElapsed is how long the run took (so far).
func runElapsed(r *pipeline.Run) time.Duration {
	start := r.StartedAt
	if start.IsZero() {
		start = r.CreatedAt
	}
	end := r.FinishedAt
	if end.IsZero() {
		end = time.Now()
	}
	return end.Sub(start)
}

// formatElapsed writes a duration for people: 0.4s, 3.2s, 2m05s, 1h02m.
func formatElapsed(d time.Duration) string {
	switch {
	case d < 0:
		return "0.0s"
	case d < time.Minute:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + "s"
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// status shows the run's state on the status line.
func (f *runFollower) status(run *pipeline.Run) {
	if f.prog == nil {
		return
	}
	var done int
	var running []string
	for _, st := range run.Steps {
		if st.Status.Done() {
			done++
		} else if st.Status == pipeline.StepRunning {
			running = append(running, st.Name+" "+stepElapsed(st))
		}
	}
	text := fmt.Sprintf("%s %s %s · %d/%d steps done", run.ID, run.Status, formatElapsed(runElapsed(run)), done, len(run.Steps))
	if len(running) > 0 {
		text += " · running: " + strings.Join(running, ", ")
	}
	f.prog.update(text, false)
}

// finish prints the run's outcome and returns the exit code it means.
func (f *runFollower) finish(run *pipeline.Run) int {
	code := exitFailure
	if run.Status == pipeline.RunSucceeded {
		code = exitOK
	}
	if f.d.json {
		if c := f.d.writeJSON(run); c != exitOK {
			return c
		}
		return code
	}
	var ran, cached int
	for _, st := range run.Steps {
		switch st.Status {
		case pipeline.StepSucceeded:
			ran++
		case pipeline.StepCached:
			cached++
		}
	}
	elapsed := formatElapsed(runElapsed(run))
	switch run.Status {
	case pipeline.RunSucceeded:
		fmt.Fprintf(f.d.stdout, "run %s succeeded in %s: %d ran, %d cached\n", run.ID, elapsed, ran, cached)
	case pipeline.RunCanceled:
		fmt.Fprintf(f.d.stderr, "%s: run %s canceled after %s\n", f.d.name, run.ID, elapsed)
	default:
		msg := run.Error
		if msg == "" {
			msg = "a step failed"
		}
		fmt.Fprintf(f.d.stderr, "%s: run %s %s after %s: %s\n", f.d.name, run.ID, run.Status, elapsed, msg)
		fmt.Fprintf(f.d.stderr, "  see what happened: mloop pipeline show %s; mloop pipeline logs %s STEP\n", run.ID, run.ID)
	}
	return code
}

// linePrefixer copies a log to an output line by line, each line preceded
// by a prefix; it remembers how many bytes it read (the next offset) and
// the last line until its end arrives.
//
// The runner writes marker lines into step logs ("--- attempt 1/3 (started
// …)", "--- attempt ended: …", "--- attempt 1/3 failed: …"), after the
// step's last byte even when that was not a newline. A marker is always put
// on a line of its own; with hideMarkers, the start and end markers are
// dropped (the follower's status lines say as much) and failures kept.
type linePrefixer struct {
	prefix      string
	hideMarkers bool
	offset      int64
	partial     []byte
}

// attemptMarker starts the runner's marker lines in step logs.
const attemptMarker = "--- attempt "

// copy writes the complete lines read from r to w and keeps the rest.
func (p *linePrefixer) copy(w io.Writer, r io.Reader) (int64, error) {
	buf := make([]byte, 32<<10)
	var total int64
	for {
		n, err := r.Read(buf)
		if n > 0 {
			total += int64(n)
			p.offset += int64(n)
			p.partial = append(p.partial, buf[:n]...)
			for {
				i := bytes.IndexByte(p.partial, '\n')
				if i < 0 {
					break
				}
				p.line(w, string(p.partial[:i]))
				p.partial = p.partial[i+1:]
			}
		}
		if errors.Is(err, io.EOF) {
			return total, nil
		} else if err != nil {
			return total, err
		}
	}
}

// line writes one complete line.
func (p *linePrefixer) line(w io.Writer, s string) {
	if i := strings.Index(s, attemptMarker); i > 0 {
		p.line(w, s[:i])
		s = s[i:]
	}
	if p.hideMarkers && strings.HasPrefix(s, attemptMarker) &&
		(strings.Contains(s, " (started ") || strings.HasPrefix(s, attemptMarker+"ended: ")) {
		return
	}
	fmt.Fprintf(w, "%s%s\n", p.prefix, s)
}

// flush returns the last, unterminated line, if any.
func (p *linePrefixer) flush() string {
	if len(p.partial) == 0 {
		return ""
	}
	var b strings.Builder
	p.line(&b, string(p.partial))
	p.partial = nil
	return b.String()
}

const pipelineRunsUsage = `Usage: mloop pipeline runs [flags]

Lists pipeline runs, newest first.
`

// pipelineRuns runs `mloop pipeline runs`.
func (d *dataCmd) pipelineRuns(ctx context.Context, args []string) int {
	fs := d.flags(pipelineRunsUsage)
	name := fs.String("pipeline", "", "only the runs of this pipeline")
	trigger := fs.String("trigger", "", "only the runs started by this trigger")
	status := fs.String("status", "", "only the runs in these states: queued, running, succeeded, failed, canceled (comma-separated)")
	limit := fs.Int("limit", 20, "list at most this many runs")
	if _, code, ok := d.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *limit < 1 {
		return d.usageError("invalid --limit %d: want at least 1", *limit)
	}
	f := pipeline.RunFilter{Pipeline: *name, Trigger: *trigger, MaxResults: min(*limit, 1000)}
	for _, s := range strings.Split(*status, ",") {
		switch st := pipeline.RunStatus(strings.TrimSpace(s)); st {
		case "":
		case pipeline.RunQueued, pipeline.RunRunning, pipeline.RunSucceeded, pipeline.RunFailed, pipeline.RunCanceled:
			f.Statuses = append(f.Statuses, st)
		default:
			return d.usageError("invalid --status %q: use queued, running, succeeded, failed or canceled (comma-separated)", s)
		}
	}
	var runs []*pipeline.Run
	for len(runs) < *limit {
		page, next, err := d.client.ListPipelineRuns(ctx, f)
		if err != nil {
			return d.fail(err)
		}
		runs = append(runs, page...)
		if next == "" {
			break
		}
		f.PageToken = next
	}
	if len(runs) > *limit {
		runs = runs[:*limit]
	}
	if d.json {
		return writeList(d, "runs", runs)
	}
	if len(runs) == 0 {
		fmt.Fprintln(d.stdout, "no pipeline runs yet: start one with `mloop pipeline run mloop.yaml`")
		return exitOK
	}
	tw := tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "RUN\tPIPELINE\tSTATUS\tSTEPS\tDURATION\tCREATED\tCAUSE")
	for _, r := range runs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Pipeline, r.Status, stepCounts(r),
			formatElapsed(runElapsed(r)), formatTime(r.CreatedAt), dash(r.Cause))
	}
	return d.flush(tw)
}

// stepCounts summarizes a run's steps: "2 ok, 1 cached, 1 failed / 5".
func stepCounts(r *pipeline.Run) string {
	counts := map[pipeline.StepStatus]int{}
	for _, st := range r.Steps {
		counts[st.Status]++
	}
	var parts []string
	for _, s := range []pipeline.StepStatus{pipeline.StepSucceeded, pipeline.StepCached, pipeline.StepRunning,
		pipeline.StepFailed, pipeline.StepCanceled, pipeline.StepSkipped, pipeline.StepPending} {
		if n := counts[s]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}

const pipelineShowUsage = `Usage: mloop pipeline show RUN [flags]

Shows a pipeline run: what started it, its state, and each step's status,
attempts, duration, cache reuse, MLflow run and why it ran or was cached.
`

// pipelineShow runs `mloop pipeline show RUN`.
func (d *dataCmd) pipelineShow(ctx context.Context, args []string) int {
	fs := d.flags(pipelineShowUsage)
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	run, err := d.client.GetPipelineRun(ctx, pos[0])
	if err != nil {
		return d.failRun(err)
	}
	if d.json {
		return d.writeJSON(run)
	}
	if err := writeRun(d.stdout, run); err != nil {
		return d.fail(fmt.Errorf("write output: %w", err))
	}
	return exitOK
}

// failRun reports an error about a run, pointing at `pipeline runs` when
// the run does not exist.
func (d *dataCmd) failRun(err error) int {
	d.fail(err)
	if mloop.IsNotFound(err) {
		fmt.Fprintln(d.stderr, "  `mloop pipeline runs` lists the runs there are")
	}
	return exitFailure
}

// writeRun writes a run and its steps for people.
func writeRun(w io.Writer, r *pipeline.Run) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "run:        %s\n", r.ID)
	fmt.Fprintf(&b, "pipeline:   %s (%s)\n", r.Pipeline, r.SpecFile)
	fmt.Fprintf(&b, "status:     %s", r.Status)
	if r.CancelRequested && !r.Status.Done() {
		b.WriteString(" (cancel requested)")
	}
	b.WriteByte('\n')
	if r.Error != "" {
		fmt.Fprintf(&b, "error:      %s\n", r.Error)
	}
	fmt.Fprintf(&b, "cause:      %s\n", dash(r.Cause))
	if r.Trigger != "" {
		fmt.Fprintf(&b, "trigger:    %s\n", r.Trigger)
	}
	fmt.Fprintf(&b, "created:    %s\n", formatTime(r.CreatedAt))
	if !r.StartedAt.IsZero() {
		fmt.Fprintf(&b, "duration:   %s\n", formatElapsed(runElapsed(r)))
	}
	if len(r.Params) > 0 {
		fmt.Fprintf(&b, "params:     %s\n", formatTags(r.Params))
	}
	if len(r.Datasets) > 0 {
		refs := make([]string, 0, len(r.Datasets))
		for ref, h := range r.Datasets {
			refs = append(refs, ref+" → "+h.Ref)
		}
		sort.Strings(refs)
		fmt.Fprintf(&b, "datasets:   %s\n", strings.Join(refs, ", "))
	}
	if r.MLflowRunID != "" {
		fmt.Fprintf(&b, "mlflow run: %s (experiment %s)\n", r.MLflowRunID, r.ExperimentID)
	}
	b.WriteByte('\n')
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATUS\tATTEMPTS\tDURATION\tCACHE\tMLFLOW RUN\tERROR")
	for _, st := range r.Steps {
		cache := "-"
		if st.CachedFrom != "" {
			cache = "from " + st.CachedFrom
		}
		dur := "-"
		if !st.StartedAt.IsZero() && st.Status != pipeline.StepCached {
			dur = stepElapsed(st)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%s\n", st.Name, st.Status, st.Attempt, dur, cache,
			dash(st.MLflowRunID), dash(st.Error))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var explained bool
	for _, st := range r.Steps {
		if len(st.Explain) == 0 {
			continue
		}
		if !explained {
			b.WriteString("\nwhy each step ran or was cached:\n")
			explained = true
		}
		fmt.Fprintf(&b, "  %s:\n", st.Name)
		for _, e := range st.Explain {
			fmt.Fprintf(&b, "      · %s\n", e)
		}
	}
	_, err := w.Write(b.Bytes())
	return err
}

const pipelineLogsUsage = `Usage: mloop pipeline logs RUN [STEP] [flags]

Prints the log (stdout and stderr) of a step of a pipeline run, or of every
step one after the other under "==> STEP <==" headers. With -f, follows the
log as the step writes it until the step ends.
`

// pipelineLogs runs `mloop pipeline logs RUN [STEP]`.
func (d *dataCmd) pipelineLogs(ctx context.Context, args []string) int {
	fs := d.flags(pipelineLogsUsage)
	follow := fs.Bool("f", false, "follow the log until the step ends")
	fs.BoolVar(follow, "follow", false, "same as -f")
	pos, code, ok := d.parse(fs, args, 1, 2)
	if !ok {
		return code
	}
	step := ""
	if len(pos) == 2 {
		step = pos[1]
	}
	rc, err := d.client.PipelineRunLogs(ctx, pos[0], step, 0, *follow)
	if err != nil {
		return d.failRun(err)
	}
	defer rc.Close()
	if _, err := io.Copy(d.stdout, rc); err != nil {
		if ctx.Err() != nil {
			return exitOK // interrupted while following: not a failure
		}
		return d.fail(fmt.Errorf("read the log: %w", err))
	}
	return exitOK
}

const pipelineCancelUsage = `Usage: mloop pipeline cancel RUN [flags]

Cancels a queued or running pipeline run: its running steps are stopped
(their whole process group) and the steps after them skipped.
`

// pipelineCancel runs `mloop pipeline cancel RUN`.
func (d *dataCmd) pipelineCancel(ctx context.Context, args []string) int {
	fs := d.flags(pipelineCancelUsage)
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	run, err := d.client.CancelPipelineRun(ctx, pos[0])
	if mloop.ErrorCode(err) == mloop.ECONFLICT {
		// The run already ended: there is nothing left to do.
		if d.json {
			if run, err = d.client.GetPipelineRun(ctx, pos[0]); err != nil {
				return d.failRun(err)
			}
			return d.writeJSON(run)
		}
		fmt.Fprintf(d.stdout, "nothing to cancel: %s\n", errorText(err))
		return exitOK
	} else if err != nil {
		return d.failRun(err)
	}
	if d.json {
		return d.writeJSON(run)
	}
	if run.Status.Done() {
		fmt.Fprintf(d.stdout, "run %s %s\n", run.ID, run.Status)
		return exitOK
	}
	fmt.Fprintf(d.stdout, "canceling run %s: its running steps are being stopped (follow with `mloop pipeline show %s`)\n", run.ID, run.ID)
	return exitOK
}
