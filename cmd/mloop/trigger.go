package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/client"
	"github.com/mloop/mloop/internal/pipeline"
)

const triggerUsage = `Usage: mloop trigger <command> [arguments] [flags]

Triggers start pipeline runs on the server when something happens — a new
dataset version, a cron schedule, an event posted by monitoring or any client,
or on demand — within guardrails: cooldown, batching, concurrency, overlap
policy, de-duplication and a pause after repeated failures. Every run records
what triggered it.

Commands:
  create NAME --pipeline FILE (--on-dataset PATTERN | --cron EXPR | --on-event TYPE | --manual)
                  create a trigger
  list            list the triggers
  show NAME       a trigger's definition, state and recent events
  pause NAME      stop a trigger from firing (events still arrive and wait)
  resume NAME     let a paused trigger fire again
  delete NAME     delete a trigger
  fire NAME       fire a trigger now (as an event, within its guardrails)
  events NAME     a trigger's events and what became of them

Every command takes --server (default $MLOOP_SERVER, else ` + client.DefaultServer + `)
and --json (machine-readable output on stdout).

Run 'mloop trigger <command> -h' for a command's flags.
`

// runTrigger dispatches `mloop trigger <command>`.
func runTrigger(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, triggerUsage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	d := &dataCmd{name: "mloop trigger " + cmd, stdout: stdout, stderr: stderr}
	switch cmd {
	case "create":
		return d.triggerCreate(ctx, rest)
	case "list", "ls":
		d.name = "mloop trigger list"
		return d.triggerList(ctx, rest)
	case "show":
		return d.triggerShow(ctx, rest)
	case "pause":
		return d.triggerPause(ctx, rest)
	case "resume":
		return d.triggerResume(ctx, rest)
	case "delete", "rm":
		d.name = "mloop trigger delete"
		return d.triggerDelete(ctx, rest)
	case "fire":
		return d.triggerFire(ctx, rest)
	case "events":
		return d.triggerEvents(ctx, rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, triggerUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mloop trigger: unknown command %q\n\n%s", cmd, triggerUsage)
		return exitUsage
	}
}

const triggerCreateUsage = `Usage: mloop trigger create NAME --pipeline FILE (--on-dataset PATTERN | --cron EXPR | --on-event TYPE | --manual) [flags]

Creates trigger NAME, which runs the pipeline spec FILE on the server:
  --on-dataset PATTERN  on each new version of a dataset whose name matches
                        (a name, or a pattern such as flights-*)
  --cron EXPR           on a schedule: five fields ("0 * * * *") or @hourly,
                        @daily…, in --timezone (default UTC)
  --on-event TYPE       on each event of TYPE posted with ` + "`mloop event post`" + ` or
                        POST /api/v1/events (monitoring posts drift alerts so)
  --manual              only when fired with ` + "`mloop trigger fire NAME`" + `

The spec is checked here first; the server reads it (and the project) from
the same absolute path when the trigger fires.
`

// triggerCreate runs `mloop trigger create NAME`.
func (d *dataCmd) triggerCreate(ctx context.Context, args []string) int {
	fs := d.flags(triggerCreateUsage)
	spec := fs.String("pipeline", "", "pipeline spec `FILE` (mloop.yaml) to run")
	project := fs.String("project", "", "project folder of the spec (default: the spec's folder)")
	onDataset := fs.String("on-dataset", "", "fire on new versions of datasets matching `PATTERN`")
	cron := fs.String("cron", "", "fire on the cron schedule `EXPR`")
	tz := fs.String("timezone", "", "time zone of --cron, such as Europe/Paris (default UTC)")
	onEvent := fs.String("on-event", "", "fire on events of `TYPE`")
	manual := fs.Bool("manual", false, "fire only when asked (mloop trigger fire)")
	params := &keyValues{what: "param"}
	fs.Var(params, "param", "override a pipeline parameter, `KEY=VALUE` (repeatable)")
	cooldown := fs.Duration("cooldown", 0, "least time between two runs, such as 10m")
	batch := fs.Duration("batch", 0, "after an event, wait this long for more and fire once for all, such as 5m")
	maxConc := fs.Int("max-concurrent", 0, "most runs of this trigger at once (default 1)")
	overlap := fs.String("overlap", "", "when max-concurrent runs are active: skip, queue (default) or cancel the oldest")
	dedup := fs.Bool("dedup", false, "do not start a run whose inputs (spec, params, data versions) equal an active or succeeded run's")
	maxFail := fs.Int("max-failures", 0, "pause the trigger after this many consecutive failed runs (default never)")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	t := &pipeline.Trigger{Name: pos[0], Params: params.m, Cooldown: *cooldown, BatchWindow: *batch,
		MaxConcurrent: *maxConc, Overlap: pipeline.OverlapPolicy(*overlap), Dedup: *dedup, MaxFailures: *maxFail}
	var kinds []string
	if *onDataset != "" {
		t.Kind, t.Dataset = pipeline.OnDataset, *onDataset
		kinds = append(kinds, "--on-dataset")
	}
	if *cron != "" {
		t.Kind, t.Cron, t.Timezone = pipeline.OnSchedule, *cron, *tz
		kinds = append(kinds, "--cron")
	}
	if *onEvent != "" {
		t.Kind, t.Event = pipeline.OnEvent, *onEvent
		kinds = append(kinds, "--on-event")
	}
	if *manual {
		t.Kind = pipeline.OnManual
		kinds = append(kinds, "--manual")
	}
	switch {
	case *spec == "":
		return d.usageError("missing --pipeline FILE: the pipeline spec the trigger runs")
	case len(kinds) == 0:
		return d.usageError("say when the trigger fires: --on-dataset PATTERN, --cron EXPR, --on-event TYPE or --manual")
	case len(kinds) > 1:
		return d.usageError("%s cannot be combined: a trigger fires on one kind of thing (create one trigger per kind)", strings.Join(kinds, " and "))
	case *tz != "" && *cron == "":
		return d.usageError("--timezone only applies to --cron")
	case *overlap != "" && *overlap != "skip" && *overlap != "queue" && *overlap != "cancel":
		return d.usageError("invalid --overlap %q: use skip, queue or cancel", *overlap)
	case *cooldown < 0 || *batch < 0 || *maxConc < 0 || *maxFail < 0:
		return d.usageError("--cooldown, --batch, --max-concurrent and --max-failures cannot be negative")
	}
	abs, _, s, code, ok := d.loadSpec(*spec)
	if !ok {
		return code
	}
	if _, err := s.WithParams(params.m); err != nil {
		return d.usageError("%v", err)
	}
	t.SpecFile, t.ProjectDir = abs, filepath.Dir(abs)
	if *project != "" {
		if t.ProjectDir, code, ok = d.projectDir(*project); !ok {
			return code
		}
	}
	created, err := d.client.CreateTrigger(ctx, t)
	if err != nil {
		d.fail(err)
		if mloop.ErrorCode(err) == mloop.EEXISTS {
			fmt.Fprintf(d.stderr, "  choose another name, or delete it first with `mloop trigger delete %s`\n", t.Name)
		}
		return exitFailure
	}
	if d.json {
		return d.writeJSON(created)
	}
	fmt.Fprintf(d.stdout, "created trigger %s: runs pipeline %s %s\n", created.Name, created.Pipeline, triggerWhen(created))
	if g := guardrails(created); g != "" {
		fmt.Fprintf(d.stdout, "  guardrails: %s\n", g)
	}
	return exitOK
}

// triggerWhen says in words when a trigger fires.
func triggerWhen(t *pipeline.Trigger) string {
	switch t.Kind {
	case pipeline.OnDataset:
		return "on each new version of dataset " + t.Dataset
	case pipeline.OnSchedule:
		tz := t.Timezone
		if tz == "" {
			tz = "UTC"
		}
		return fmt.Sprintf("on schedule %q (%s)", t.Cron, tz)
	case pipeline.OnEvent:
		return "on events of type " + t.Event
	case pipeline.OnManual:
		return "when fired (mloop trigger fire " + t.Name + ")"
	}
	return "on " + string(t.Kind)
}

// triggerSource is a short form of triggerWhen for tables.
func triggerSource(t *pipeline.Trigger) string {
	switch t.Kind {
	case pipeline.OnDataset:
		return "dataset " + t.Dataset
	case pipeline.OnSchedule:
		if t.Timezone != "" {
			return "cron " + t.Cron + " " + t.Timezone
		}
		return "cron " + t.Cron
	case pipeline.OnEvent:
		return "event " + t.Event
	}
	return string(t.Kind)
}

// guardrails lists a trigger's guardrails in words.
func guardrails(t *pipeline.Trigger) string {
	var g []string
	if t.Cooldown > 0 {
		g = append(g, "cooldown "+t.Cooldown.String())
	}
	if t.BatchWindow > 0 {
		g = append(g, "batch "+t.BatchWindow.String())
	}
	if t.MaxConcurrent > 0 {
		g = append(g, fmt.Sprintf("max %d concurrent", t.MaxConcurrent))
	}
	if t.Overlap != "" {
		g = append(g, "overlap "+string(t.Overlap))
	}
	if t.Dedup {
		g = append(g, "dedup")
	}
	if t.MaxFailures > 0 {
		g = append(g, fmt.Sprintf("pause after %d failures", t.MaxFailures))
	}
	return strings.Join(g, ", ")
}

// triggerState says whether a trigger is active or paused, and why.
func triggerState(t *pipeline.Trigger) string {
	if t.Paused {
		if t.PauseReason != "" {
			return "paused (" + t.PauseReason + ")"
		}
		return "paused"
	}
	return "active"
}

// failTrigger reports an error about a trigger, pointing at `trigger list`
// when the trigger does not exist.
func (d *dataCmd) failTrigger(err error) int {
	d.fail(err)
	if mloop.IsNotFound(err) {
		fmt.Fprintln(d.stderr, "  `mloop trigger list` lists the triggers there are")
	}
	return exitFailure
}

// triggerList runs `mloop trigger list`.
func (d *dataCmd) triggerList(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop trigger list [flags]\n\nLists the triggers by name.\n")
	if _, code, ok := d.parse(fs, args, 0, 0); !ok {
		return code
	}
	ts, err := d.client.ListTriggers(ctx)
	if err != nil {
		return d.fail(err)
	}
	if d.json {
		return d.writeJSON(map[string]any{"triggers": ts})
	}
	if len(ts) == 0 {
		fmt.Fprintln(d.stdout, "no triggers yet: create one with `mloop trigger create NAME --pipeline mloop.yaml --on-dataset DATASET`")
		return exitOK
	}
	tw := tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tPIPELINE\tON\tSTATE\tLAST FIRED\tGUARDRAILS")
	for _, t := range ts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", t.Name, t.Pipeline, triggerSource(t), triggerState(t),
			formatTime(t.LastFired), dash(guardrails(t)))
	}
	return d.flush(tw)
}

// triggerShow runs `mloop trigger show NAME`.
func (d *dataCmd) triggerShow(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop trigger show NAME [flags]\n\nShows a trigger's definition, its state and its latest events.\n")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	t, err := d.client.GetTrigger(ctx, pos[0])
	if err != nil {
		return d.failTrigger(err)
	}
	evs, err := d.client.TriggerEvents(ctx, t.Name, 10)
	if err != nil {
		return d.fail(err)
	}
	if d.json {
		if evs == nil {
			evs = []*pipeline.TriggerEvent{}
		}
		return d.writeJSON(map[string]any{"trigger": t, "events": evs})
	}
	fmt.Fprintf(d.stdout, "trigger:    %s\n", t.Name)
	fmt.Fprintf(d.stdout, "pipeline:   %s (%s)\n", t.Pipeline, t.SpecFile)
	fmt.Fprintf(d.stdout, "fires:      %s\n", triggerWhen(t))
	if len(t.Params) > 0 {
		fmt.Fprintf(d.stdout, "params:     %s\n", formatTags(t.Params))
	}
	fmt.Fprintf(d.stdout, "guardrails: %s\n", dash(guardrails(t)))
	fmt.Fprintf(d.stdout, "state:      %s\n", triggerState(t))
	if t.ConsecutiveFailures > 0 {
		fmt.Fprintf(d.stdout, "failures:   %d in a row\n", t.ConsecutiveFailures)
	}
	if t.LastError != "" {
		fmt.Fprintf(d.stdout, "error:      %s (pending events wait until this is fixed)\n", t.LastError)
	}
	if !t.NextFire.IsZero() {
		fmt.Fprintf(d.stdout, "next fire:  %s\n", formatTime(t.NextFire))
	}
	fmt.Fprintf(d.stdout, "last fired: %s\n", formatTime(t.LastFired))
	fmt.Fprintf(d.stdout, "created:    %s\n", formatTime(t.CreatedAt))
	if len(evs) == 0 {
		fmt.Fprintln(d.stdout, "\nno events yet")
		return exitOK
	}
	fmt.Fprintln(d.stdout, "\nlatest events:")
	return d.writeEvents(evs)
}

// writeEvents prints events as a table.
func (d *dataCmd) writeEvents(evs []*pipeline.TriggerEvent) int {
	tw := tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSOURCE\tSUBJECT\tSTATUS\tRUN\tREASON\tCREATED")
	for _, e := range evs {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%s\n", e.ID, e.Source, dash(e.Subject), e.Status, dash(e.RunID),
			dash(e.Reason), formatTime(e.CreatedAt))
	}
	return d.flush(tw)
}

// triggerPause runs `mloop trigger pause NAME`.
func (d *dataCmd) triggerPause(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop trigger pause NAME [flags]\n\nStops a trigger from firing. Its events still arrive and wait; `mloop trigger resume` lets it fire again.\n")
	reason := fs.String("reason", "", "why the trigger is paused (default: paused by $USER)")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *reason == "" {
		*reason = "paused by " + dash(currentUser())
	}
	t, err := d.client.PauseTrigger(ctx, pos[0], *reason)
	if err != nil {
		return d.failTrigger(err)
	}
	if d.json {
		return d.writeJSON(t)
	}
	fmt.Fprintf(d.stdout, "trigger %s %s: resume it with `mloop trigger resume %s`\n", t.Name, triggerState(t), t.Name)
	return exitOK
}

// triggerResume runs `mloop trigger resume NAME`.
func (d *dataCmd) triggerResume(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop trigger resume NAME [flags]\n\nLets a paused trigger fire again (its waiting events are then decided) and resets its failure count.\n")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	t, err := d.client.ResumeTrigger(ctx, pos[0])
	if err != nil {
		return d.failTrigger(err)
	}
	if d.json {
		return d.writeJSON(t)
	}
	fmt.Fprintf(d.stdout, "trigger %s %s\n", t.Name, triggerState(t))
	return exitOK
}

// triggerDelete runs `mloop trigger delete NAME`.
func (d *dataCmd) triggerDelete(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop trigger delete NAME [flags]\n\nDeletes a trigger. Its runs are kept; its waiting events are skipped.\n")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	if err := d.client.DeleteTrigger(ctx, pos[0]); err != nil {
		return d.failTrigger(err)
	}
	if d.json {
		return d.writeJSON(map[string]string{"deleted": pos[0]})
	}
	fmt.Fprintf(d.stdout, "deleted trigger %s\n", pos[0])
	return exitOK
}

// triggerFire runs `mloop trigger fire NAME`.
func (d *dataCmd) triggerFire(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop trigger fire NAME [flags]\n\nFires a trigger now: records a manual event that the server turns into a run\nwithin the trigger's guardrails (cooldown, concurrency, de-duplication…).\n")
	payload := fs.String("payload", "", "JSON payload recorded with the event (default {\"user\": $USER}; its \"user\" names who fired)")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	raw, code, ok := d.jsonFlag("--payload", *payload)
	if !ok {
		return code
	}
	if raw == nil {
		// The server names who fired from the payload's "user".
		raw, _ = json.Marshal(map[string]string{"user": currentUser()})
	}
	ev, err := d.client.FireTrigger(ctx, pos[0], raw)
	if err != nil {
		return d.failTrigger(err)
	}
	if d.json {
		return d.writeJSON(ev)
	}
	fmt.Fprintf(d.stdout, "fired trigger %s: event %d %s", pos[0], ev.ID, ev.Status)
	if ev.RunID != "" {
		fmt.Fprintf(d.stdout, ", run %s (follow with `mloop pipeline show %s`)\n", ev.RunID, ev.RunID)
	} else {
		fmt.Fprintf(d.stdout, " — the server decides within the guardrails; see `mloop trigger events %s`\n", pos[0])
	}
	return exitOK
}

// jsonFlag checks that the value of flag is JSON; "" gives nil.
func (d *dataCmd) jsonFlag(flag, v string) (json.RawMessage, int, bool) {
	if strings.TrimSpace(v) == "" {
		return nil, exitOK, true
	}
	if !json.Valid([]byte(v)) {
		return nil, d.usageError("invalid %s: not JSON (quote it for the shell, such as '{\"psi\": 0.3}')", flag), false
	}
	return json.RawMessage(v), exitOK, true
}

// triggerEvents runs `mloop trigger events NAME`.
func (d *dataCmd) triggerEvents(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop trigger events NAME [flags]\n\nLists a trigger's events, newest first, and what became of each: fired (with\nits run), skipped or deduplicated (with the reason), or still pending.\n")
	limit := fs.Int("limit", 20, "list at most this many events")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *limit < 1 {
		return d.usageError("invalid --limit %d: want at least 1", *limit)
	}
	evs, err := d.client.TriggerEvents(ctx, pos[0], *limit)
	if err != nil {
		return d.failTrigger(err)
	}
	if d.json {
		return writeList(d, "events", evs)
	}
	if len(evs) == 0 {
		fmt.Fprintf(d.stdout, "no events for trigger %s yet\n", pos[0])
		return exitOK
	}
	return d.writeEvents(evs)
}

const eventUsage = `Usage: mloop event post TYPE [flags]

Posts an event of TYPE to the server. Every trigger created with
--on-event TYPE records it and starts a run within its guardrails; with
--dedup-key, posting the same key again is a no-op, so retries are safe.
`

// runEvent dispatches `mloop event <command>`.
func runEvent(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "post" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, eventUsage)
			return exitOK
		}
		if len(args) > 0 {
			fmt.Fprintf(stderr, "mloop event: unknown command %q\n\n", args[0])
		}
		fmt.Fprint(stderr, eventUsage)
		return exitUsage
	}
	d := &dataCmd{name: "mloop event post", stdout: stdout, stderr: stderr}
	fs := d.flags(eventUsage)
	subject := fs.String("subject", "", "what the event is about, such as a model or dataset name")
	payload := fs.String("payload", "", "JSON payload of the event")
	dedupKey := fs.String("dedup-key", "", "key that makes a repeated post of the same event a no-op")
	pos, code, ok := d.parse(fs, args[1:], 1, 1)
	if !ok {
		return code
	}
	raw, code, ok := d.jsonFlag("--payload", *payload)
	if !ok {
		return code
	}
	evs, err := d.client.PostEvent(ctx, pos[0], *subject, raw, *dedupKey)
	if err != nil {
		return d.fail(err)
	}
	if d.json {
		return writeList(d, "events", evs)
	}
	if len(evs) == 0 {
		fmt.Fprintf(d.stdout, "posted event %s: no trigger recorded it (none listens to %s, or the dedup key was seen)\n", pos[0], pos[0])
		return exitOK
	}
	parts := make([]string, len(evs))
	for i, e := range evs {
		parts[i] = fmt.Sprintf("%s (event %d)", e.Trigger, e.ID)
	}
	fmt.Fprintf(d.stdout, "posted event %s: recorded by %s\n", pos[0], strings.Join(parts, ", "))
	return exitOK
}
