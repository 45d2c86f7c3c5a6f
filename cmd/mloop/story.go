package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/registry"
	"github.com/mloop/mloop/internal/serving/deploy"
	"github.com/mloop/mloop/internal/story"
)

const storyUsage = `Usage: mloop story DEPLOYMENT [flags]

Tells how DEPLOYMENT came to serve what it serves, one chain per
retraining, newest first: the alert that fired, the trigger event it
posted, the pipeline run that event started, the run's gate verdict, the
model version it registered and the rollout of that version (canary
started, promoted or rolled back) — each with its time and the command that
shows more (docs/story.md).

A chain's header is its outcome: promoted, rolled back, deployed, replaced,
in progress, not deployed, gate rejected, run failed, run canceled,
no model registered, deduplicated, skipped, not triggered, trigger failed.

Exit status: 0 success; 1 the command failed (unknown deployment, server
unreachable, …); 2 bad usage, nothing done.
`

// runStory runs `mloop story DEPLOYMENT`.
func runStory(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	d := &dataCmd{name: "mloop story", stdout: stdout, stderr: stderr}
	fs := d.flags(storyUsage)
	limit := fs.Int("limit", story.DefaultLimit, fmt.Sprintf("the most chains shown (1 to %d)", story.MaxLimit))
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *limit < 1 || *limit > story.MaxLimit {
		return d.usageError("invalid --limit %d: want 1 to %d", *limit, story.MaxLimit)
	}
	s, err := d.client.Story(ctx, pos[0], *limit)
	if err != nil {
		d.fail(err)
		if mloop.IsNotFound(err) {
			fmt.Fprintln(d.stderr, "  `mloop deploy list` lists the deployments there are")
		}
		return exitFailure
	}
	if d.json {
		return d.writeJSON(s)
	}
	if err := writeStory(d.stdout, s); err != nil {
		return d.fail(fmt.Errorf("write output: %w", err))
	}
	return exitOK
}

// writeStory prints a story: per chain a header with its outcome, then one
// line per link: time, kind, ref, title and the command that shows more.
func writeStory(w io.Writer, s *story.Story) error {
	var b strings.Builder
	what := "story of " + s.Deployment
	if s.Model != "" {
		what += " (serves " + s.Model + ")"
	}
	switch len(s.Chains) {
	case 0:
		fmt.Fprintf(&b, "%s: nothing yet — no alert, pipeline run or rollout recorded\n", what)
	case 1:
		fmt.Fprintf(&b, "%s: 1 chain\n", what)
	default:
		fmt.Fprintf(&b, "%s: %d chains, newest first\n", what, len(s.Chains))
	}
	for i, c := range s.Chains {
		fmt.Fprintf(&b, "\n%d. %s\n", i+1, c.Outcome)
		tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		for _, l := range c.Links {
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\n", timeCell(l.Time), l.Kind, l.Ref, clip(oneLine(l.Title), maxTitle), l.Command)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, n := range s.Notes {
		fmt.Fprintf(&b, "\nnote: %s\n", n)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// maxTitle is the most characters of a link's title the table shows
// (--json has them whole).
const maxTitle = 100

// clip shortens s to at most n characters, ending it with "…" when cut.
func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// oneLine keeps a title on one line of the table (messages come from
// users and services).
func oneLine(s string) string {
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\t", " ")), " ")
}

// newStory returns a server's story service over its deployments,
// pipelines and registry, and its alerts when it evaluates alert rules
// (alerts is nil otherwise).
func newStory(deployments *deploy.Service, pipelines *pipeline.Service, reg *registry.Service, alerts *alert.Engine) *story.Service {
	var a story.Alerts
	if alerts != nil {
		a = alerts // a nil *alert.Engine in the interface would not be nil
	}
	return story.New(deployments, pipelines, reg, a)
}
