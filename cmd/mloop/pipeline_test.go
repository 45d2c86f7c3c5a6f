package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/pipeline"
)

// execCLI runs `mloop ARGS… --server URL` against m with ctx and returns
// the exit code and both outputs.
func execCLI(ctx context.Context, m *Main, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	args = append(args, "--server", m.URL())
	code := run(ctx, args, &out, &errb)
	return code, out.String(), errb.String()
}

// mustCLI runs a command that must exit with want and returns its stdout.
func mustCLI(t *testing.T, m *Main, want int, args ...string) (string, string) {
	t.Helper()
	code, out, errs := execCLI(context.Background(), m, args...)
	if code != want {
		t.Fatalf("mloop %s: got exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errs)
	}
	return out, errs
}

// writeSpec writes a pipeline spec as dir/mloop.yaml and returns its path.
func writeSpec(t *testing.T, dir, spec string) string {
	t.Helper()
	p := filepath.Join(dir, "mloop.yaml")
	if err := os.WriteFile(p, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// twoSteps is a pipeline of two shell steps: make writes a file from a
// parameter, use reads it.
const twoSteps = `name: hello
params:
  greeting: hi
steps:
  make:
    run: echo "${{ params.greeting }}" > "$MLOOP_OUTPUT_DATA"; echo made it
    outputs:
      data: data.txt
  use:
    run: cat "${{ inputs.data }}" > "$MLOOP_OUTPUT_REPORT"; cat "$MLOOP_OUTPUT_REPORT"; printf 'no newline at the end'
    inputs:
      data: steps.make.outputs.data
    outputs:
      report: report.txt
`

var runIDRE = regexp.MustCompile(`\bpr-[0-9a-f]{12}\b`)

// firstRunID returns the first pipeline run id in s.
func firstRunID(t *testing.T, s string) string {
	t.Helper()
	id := runIDRE.FindString(s)
	if id == "" {
		t.Fatalf("no run id in %q", s)
	}
	return id
}

func TestPipelineRunCLI(t *testing.T) {
	m := MustOpenMain(t)
	dir := t.TempDir()
	file := writeSpec(t, dir, twoSteps)

	// First run: both steps run; their output is streamed with a prefix.
	out, _ := mustCLI(t, m, exitOK, "pipeline", "run", file)
	id1 := firstRunID(t, out)
	for _, want := range []string{"run " + id1 + " of pipeline hello: 2 steps", "✓ make", "✓ use", "make │ made it",
		"use │ hi", "use │ no newline at the end", "run " + id1 + " succeeded in"} {
		if !strings.Contains(out, want) {
			t.Errorf("first run: output lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(out, "2 ran, 0 cached") {
		t.Errorf("first run: got %q, want 2 ran, 0 cached", out)
	}

	// Second run: everything cached, and --explain says why.
	out, _ = mustCLI(t, m, exitOK, "pipeline", "run", file, "--explain")
	id2 := firstRunID(t, out)
	for _, want := range []string{"○ make", "○ use", "cached (" + id1 + ")", "· cache hit", "0 ran, 2 cached"} {
		if !strings.Contains(out, want) {
			t.Errorf("second run: output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "│") {
		t.Errorf("second run: cached steps printed output:\n%s", out)
	}

	// A parameter override changes make's inputs: it runs again, and
	// --explain names the parameter.
	out, _ = mustCLI(t, m, exitOK, "pipeline", "run", file, "--param", "greeting=hello", "--explain", "--quiet")
	if !strings.Contains(out, "✓ make") || !strings.Contains(out, `\"hello\"`) || strings.Contains(out, "│") {
		t.Errorf("run with --param: want make to run, explained by the changed command, and no output (--quiet):\n%s", out)
	}

	// --json prints the final run only.
	out, _ = mustCLI(t, m, exitOK, "pipeline", "run", file, "--json")
	r := decodeJSON[pipeline.Run](t, out)
	if r.Status != pipeline.RunSucceeded || len(r.Steps) != 2 || r.Steps[0].Status != pipeline.StepCached {
		t.Errorf("run --json: got status %s with %d steps (%+v), want succeeded with 2 cached steps", r.Status, len(r.Steps), r.Steps)
	}

	// logs: one step, or all under headers.
	out, _ = mustCLI(t, m, exitOK, "pipeline", "logs", id1, "make")
	if !strings.Contains(out, "\nmade it\n") || strings.Contains(out, "==>") {
		t.Errorf("logs %s make: got %q, want the step's output", id1, out)
	}
	out, _ = mustCLI(t, m, exitOK, "pipeline", "logs", id1)
	if !regexp.MustCompile(`(?s)^==> make <==\n.*made it\n.*\n\n==> use <==\n.*hi\nno newline at the end`).MatchString(out) {
		t.Errorf("logs %s: got %q, want both steps' logs under headers", id1, out)
	}
	out, _ = mustCLI(t, m, exitOK, "pipeline", "logs", id1, "use", "-f")
	if !strings.Contains(out, "\nhi\n") {
		t.Errorf("logs -f of a finished step: got %q, want its log", out)
	}
	_, errs := mustCLI(t, m, exitFailure, "pipeline", "logs", id1, "nosuch")
	if !strings.Contains(errs, `no step "nosuch"`) || !strings.Contains(errs, "make, use") {
		t.Errorf("logs of an unknown step: got %q, want the step named and the steps listed", errs)
	}

	// show and runs.
	out, _ = mustCLI(t, m, exitOK, "pipeline", "show", id2)
	for _, want := range []string{"run:        " + id2, "pipeline:   hello", "status:     succeeded", "STEP", "from " + id1, "why each step ran"} {
		if !strings.Contains(out, want) {
			t.Errorf("show: output lacks %q:\n%s", want, out)
		}
	}
	out, _ = mustCLI(t, m, exitOK, "pipeline", "runs", "--pipeline", "hello", "--status", "succeeded")
	if !strings.Contains(out, id1) || !strings.Contains(out, id2) || !strings.HasPrefix(out, "RUN") {
		t.Errorf("runs: got %q, want a table with %s and %s", out, id1, id2)
	}
	runs := decodeJSON[struct {
		Runs []*pipeline.Run `json:"runs"`
	}](t, mustOut(mustCLI(t, m, exitOK, "pipeline", "runs", "--json", "--limit", "2")))
	if len(runs.Runs) != 2 {
		t.Errorf("runs --limit 2: got %d runs, want 2", len(runs.Runs))
	}
	_, errs = mustCLI(t, m, exitFailure, "pipeline", "show", "pr-000000000000")
	if !strings.Contains(errs, "mloop pipeline runs") {
		t.Errorf("show of an unknown run: got %q, want a pointer to `mloop pipeline runs`", errs)
	}

	// cancel of a finished run: nothing to do.
	out, _ = mustCLI(t, m, exitOK, "pipeline", "cancel", id1)
	if !strings.Contains(out, "nothing to cancel") {
		t.Errorf("cancel of a finished run: got %q", out)
	}

	// lineage of the first run: its steps and what they wrote.
	out, _ = mustCLI(t, m, exitOK, "lineage", id1, "--down")
	if !strings.Contains(out, "pipeline run "+id1) || !strings.Contains(out, "──") {
		t.Errorf("lineage: got %q, want edges from the pipeline run", out)
	}
}

// mustOut returns the stdout of a mustCLI result.
func mustOut(out, _ string) string { return out }

func TestPipelineRunCLIErrors(t *testing.T) {
	m := MustOpenMain(t)

	// A failing step: exit 1, the step named with the command to see its log,
	// downstream steps skipped.
	dir := t.TempDir()
	file := writeSpec(t, dir, `name: broken
steps:
  evaluate:
    run: echo about to fail; exit 3
  after:
    run: "true"
    inputs:
      x: steps.evaluate.outputs.x
  evaluate2:
    run: "true"
`)
	// evaluate has no output x: that is a spec error, exit 2, nothing run.
	code, out, errs := execCLI(context.Background(), m, "pipeline", "run", file)
	if code != exitUsage || !regexp.MustCompile(`mloop\.yaml:\d+(:\d+)?: `).MatchString(errs) || out != "" {
		t.Fatalf("spec error: got exit %d, stdout %q, stderr %q; want exit 2 and file:line:col on stderr", code, out, errs)
	}
	if !strings.Contains(errs, "nothing was run") {
		t.Errorf("spec error: got %q, want it to say nothing was run", errs)
	}

	file = writeSpec(t, dir, `name: broken
steps:
  evaluate:
    run: echo about to fail; exit 3
    outputs:
      x: x.txt
  after:
    run: "true"
    inputs:
      x: steps.evaluate.outputs.x
`)
	code, out, errs = execCLI(context.Background(), m, "pipeline", "run", file)
	if code != exitFailure {
		t.Fatalf("failing run: got exit %d, want 1\nstdout: %s\nstderr: %s", code, out, errs)
	}
	id := firstRunID(t, out)
	for _, want := range []string{"✗ evaluate", "failed", "mloop pipeline logs " + id + " evaluate", "evaluate │ about to fail", "- after"} {
		if !strings.Contains(out, want) {
			t.Errorf("failing run: stdout lacks %q:\n%s", want, out)
		}
	}
	if !strings.Contains(errs, "run "+id+" failed") {
		t.Errorf("failing run: stderr %q, want it to say the run failed", errs)
	}

	// A problem only the server sees (a built-in step's configuration):
	// exit 2 too, nothing run.
	bad := writeSpec(t, t.TempDir(), `name: badgate
steps:
  gate:
    uses: gate
    with:
      bogus: 1
`)
	code, out, errs = execCLI(context.Background(), m, "pipeline", "run", bad)
	if code != exitUsage || out != "" || !strings.Contains(errs, "gate") {
		t.Errorf("server-side spec error: got exit %d, stdout %q, stderr %q; want exit 2 and the problem", code, out, errs)
	}

	// Usage errors: exit 2 before contacting the server.
	for _, args := range [][]string{
		{"pipeline", "run"},
		{"pipeline", "run", filepath.Join(dir, "nosuch.yaml")},
		{"pipeline", "run", file, "--param", "nosuch=1"},
		{"pipeline", "run", file, "--project", filepath.Join(dir, "nosuch")},
		{"pipeline", "nosuch"},
		{"pipeline", "runs", "--status", "done"},
		{"trigger", "create", "t", "--pipeline", file},
		{"trigger", "create", "t", "--pipeline", file, "--manual", "--cron", "@daily"},
		{"trigger", "create", "t", "--pipeline", file, "--manual", "--overlap", "sometimes"},
		{"trigger", "fire", "t", "--payload", "{not json"},
		{"lineage", "x", "--up", "--down"},
	} {
		if code, _, errs := execCLI(context.Background(), m, args...); code != exitUsage || errs == "" {
			t.Errorf("mloop %s: got exit %d (stderr %q), want 2 and a message", strings.Join(args, " "), code, errs)
		}
	}

	// An unreachable server says what to do.
	var o, e bytes.Buffer
	if code := run(context.Background(), []string{"pipeline", "runs", "--server", "http://127.0.0.1:1"}, &o, &e); code != exitFailure ||
		!strings.Contains(e.String(), "mloop server") {
		t.Errorf("unreachable server: got exit %d, stderr %q", code, e.String())
	}
}

func TestPipelineRunCLIInterrupt(t *testing.T) {
	m := MustOpenMain(t)
	file := writeSpec(t, t.TempDir(), `name: slow
steps:
  wait:
    run: echo waiting; sleep 60
`)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		// Interrupt once the step runs, as Ctrl-C would.
		deadline := time.Now().Add(30 * time.Second)
		for time.Now().Before(deadline) {
			runs, _, err := m.Pipelines.ListRuns(context.Background(), pipeline.RunFilter{Pipeline: "slow"})
			if err == nil && len(runs) == 1 && runs[0].Steps[0].Status == pipeline.StepRunning {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
	}()
	code, out, errs := execCLI(ctx, m, "pipeline", "run", file)
	if code != exitFailure {
		t.Fatalf("interrupted run: got exit %d, want 1\nstdout: %s\nstderr: %s", code, out, errs)
	}
	id := firstRunID(t, out)
	if !strings.Contains(errs, "canceling run "+id) || !strings.Contains(errs, "canceled") {
		t.Errorf("interrupted run: stderr %q, want it to say the run is canceled", errs)
	}
	r, err := m.Pipelines.GetRun(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != pipeline.RunCanceled {
		t.Errorf("interrupted run: got status %s on the server, want canceled", r.Status)
	}
}

func TestPipelineDetachAndFollowLogs(t *testing.T) {
	m := MustOpenMain(t)
	dir := t.TempDir()
	file := writeSpec(t, dir, `name: ticker
steps:
  tick:
    run: for i in 1 2 3; do echo tick $i; sleep 0.2; done
`)
	out, _ := mustCLI(t, m, exitOK, "pipeline", "run", file, "--detach")
	id := strings.TrimSpace(out)
	if !runIDRE.MatchString(id) || id != runIDRE.FindString(id) {
		t.Fatalf("run --detach: got %q, want the run id alone", out)
	}
	// -f follows the step to its end, whenever it starts.
	out, _ = mustCLI(t, m, exitOK, "pipeline", "logs", id, "tick", "-f")
	if !strings.Contains(out, "\ntick 1\ntick 2\ntick 3\n") {
		t.Errorf("logs -f: got %q, want the three ticks", out)
	}
}

func TestTriggerCLI(t *testing.T) {
	m := MustOpenMain(t)
	dir := t.TempDir()
	file := writeSpec(t, dir, twoSteps)

	out, _ := mustCLI(t, m, exitOK, "trigger", "create", "nightly", "--pipeline", file, "--manual", "--cooldown", "1s",
		"--max-concurrent", "2", "--overlap", "skip", "--dedup", "--max-failures", "3", "--param", "greeting=yo")
	for _, want := range []string{"created trigger nightly", "pipeline hello", "cooldown 1s", "max 2 concurrent", "overlap skip", "dedup", "pause after 3 failures"} {
		if !strings.Contains(out, want) {
			t.Errorf("trigger create: output lacks %q:\n%s", want, out)
		}
	}
	_, errs := mustCLI(t, m, exitFailure, "trigger", "create", "nightly", "--pipeline", file, "--manual")
	if !strings.Contains(errs, "mloop trigger delete nightly") {
		t.Errorf("trigger create twice: got %q, want advice", errs)
	}
	mustCLI(t, m, exitOK, "trigger", "create", "ondrift", "--pipeline", file, "--on-event", "drift")

	out, _ = mustCLI(t, m, exitOK, "trigger", "list")
	if !strings.Contains(out, "nightly") || !strings.Contains(out, "event drift") || !strings.Contains(out, "active") {
		t.Errorf("trigger list: got %q", out)
	}

	// fire starts a run that records the trigger.
	out, _ = mustCLI(t, m, exitOK, "trigger", "fire", "nightly")
	if !strings.Contains(out, "fired trigger nightly: event") {
		t.Errorf("trigger fire: got %q", out)
	}
	r := waitTriggeredRun(t, m, "nightly")
	if r.Trigger != "nightly" || r.Params["greeting"] != "yo" {
		t.Errorf("triggered run: got trigger %q params %v, want nightly with greeting=yo", r.Trigger, r.Params)
	}
	out, _ = mustCLI(t, m, exitOK, "trigger", "events", "nightly")
	if !strings.Contains(out, "manual") || !strings.Contains(out, r.ID) {
		t.Errorf("trigger events: got %q, want the manual event and its run %s", out, r.ID)
	}

	// event post reaches the trigger listening to it.
	out, _ = mustCLI(t, m, exitOK, "event", "post", "drift", "--subject", "model-a", "--payload", `{"psi": 0.4}`, "--dedup-key", "k1")
	if !strings.Contains(out, "recorded by ondrift") {
		t.Errorf("event post: got %q", out)
	}
	out, _ = mustCLI(t, m, exitOK, "event", "post", "drift", "--dedup-key", "k1")
	if !strings.Contains(out, "no trigger recorded it") {
		t.Errorf("event post with a repeated dedup key: got %q", out)
	}
	waitTriggeredRun(t, m, "ondrift")

	// pause, show, resume, delete.
	out, _ = mustCLI(t, m, exitOK, "trigger", "pause", "nightly", "--reason", "maintenance")
	if !strings.Contains(out, "paused (maintenance)") {
		t.Errorf("trigger pause: got %q", out)
	}
	out, _ = mustCLI(t, m, exitOK, "trigger", "show", "nightly")
	for _, want := range []string{"trigger:    nightly", "paused (maintenance)", "params:     greeting=yo", "latest events:"} {
		if !strings.Contains(out, want) {
			t.Errorf("trigger show: output lacks %q:\n%s", want, out)
		}
	}
	out, _ = mustCLI(t, m, exitOK, "trigger", "resume", "nightly")
	if !strings.Contains(out, "active") {
		t.Errorf("trigger resume: got %q", out)
	}
	mustCLI(t, m, exitOK, "trigger", "delete", "nightly")
	_, errs = mustCLI(t, m, exitFailure, "trigger", "show", "nightly")
	if !strings.Contains(errs, "mloop trigger list") {
		t.Errorf("show of a deleted trigger: got %q, want a pointer to `mloop trigger list`", errs)
	}
}

// waitTriggeredRun waits until trigger has a finished run and returns it.
func waitTriggeredRun(t *testing.T, m *Main, trigger string) *pipeline.Run {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		code, out, errs := execCLI(context.Background(), m, "pipeline", "runs", "--trigger", trigger, "--json")
		if code != exitOK {
			t.Fatalf("pipeline runs: exit %d: %s", code, errs)
		}
		runs := decodeJSON[struct {
			Runs []*pipeline.Run `json:"runs"`
		}](t, out)
		if len(runs.Runs) > 0 && runs.Runs[0].Status.Done() {
			if runs.Runs[0].Status != pipeline.RunSucceeded {
				t.Fatalf("run %s of trigger %s %s: %s", runs.Runs[0].ID, trigger, runs.Runs[0].Status, runs.Runs[0].Error)
			}
			return runs.Runs[0]
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, out, _ := execCLI(context.Background(), m, "trigger", "events", trigger)
	t.Fatalf("trigger %s started no run that finished within 60s; its events:\n%s", trigger, out)
	return nil
}

// FuzzLinePrefixer checks that a step's log prints the same however it
// arrives in pieces, that the offset counts every byte read, and that every
// printed line carries the prefix.
func FuzzLinePrefixer(f *testing.F) {
	f.Add([]byte("a\nb\n"), uint8(1))
	f.Add([]byte("--- attempt 1/2 (started x)\nout\nno newline--- attempt ended: exit status 0 after 1ms\n"), uint8(3))
	f.Add([]byte("x--- attempt 1/2 failed: boom\n--- attempt 2/2 (started y)\n\n\n"), uint8(7))
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8) {
		for _, hide := range []bool{false, true} {
			whole := &linePrefixer{prefix: "s │ ", hideMarkers: hide}
			var want bytes.Buffer
			if _, err := whole.copy(&want, bytes.NewReader(data)); err != nil {
				t.Fatal(err)
			}
			want.WriteString(whole.flush())

			pieces := &linePrefixer{prefix: "s │ ", hideMarkers: hide}
			var got bytes.Buffer
			n := int(chunk)%16 + 1
			for i := 0; i < len(data); i += n {
				if _, err := pieces.copy(&got, bytes.NewReader(data[i:min(i+n, len(data))])); err != nil {
					t.Fatal(err)
				}
			}
			got.WriteString(pieces.flush())

			if got.String() != want.String() {
				t.Fatalf("hide=%v: in pieces of %d got %q, at once %q", hide, n, got.String(), want.String())
			}
			if pieces.offset != int64(len(data)) {
				t.Fatalf("offset: got %d, want %d", pieces.offset, len(data))
			}
			for _, l := range strings.SplitAfter(got.String(), "\n") {
				if l != "" && !strings.HasPrefix(l, "s │ ") {
					t.Fatalf("line %q lacks the prefix", l)
				}
			}
			if !hide && !bytes.Contains(data, []byte(attemptMarker)) {
				// Without markers, stripping the prefixes gives the log back
				// (with a final newline added).
				var back strings.Builder
				for _, l := range strings.SplitAfter(got.String(), "\n") {
					back.WriteString(strings.TrimPrefix(l, "s │ "))
				}
				wantBack := string(data)
				if wantBack != "" && !strings.HasSuffix(wantBack, "\n") {
					wantBack += "\n"
				}
				if back.String() != wantBack {
					t.Fatalf("log round trip: got %q, want %q", back.String(), wantBack)
				}
			}
		}
	})
}
