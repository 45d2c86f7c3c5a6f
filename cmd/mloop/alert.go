package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/alert"
	"github.com/mloop/mloop/internal/client"
	"github.com/mloop/mloop/internal/monitor"
)

const alertUsage = `Usage: mloop alert <command> [arguments] [flags]

Alert rules watch the windows the server's monitor closes for each
deployment — drift, live quality, error rate, p99 latency — and fire a
signed webhook or a continuous-training trigger event when a condition
holds long enough (docs/alerts.md).

Commands:
  apply FILE.yaml   create or replace the rules of a rules document
  rules [NAME]      list the rules, or show one (webhook secrets are hidden)
  delete NAME       delete a rule (its alerts stay as history)
  list              list alerts, newest first (--deployment, --state, --limit)
  show ID           an alert with its delivery attempts

Every command takes --server (default $MLOOP_SERVER, else ` + client.DefaultServer + `)
and --json (machine-readable output on stdout).

Exit status: 0 success; 1 the command failed (bad rules, server unreachable,
unknown rule or alert, …); 2 bad usage, nothing done.

Run 'mloop alert <command> -h' for a command's flags.
`

// runAlert dispatches `mloop alert <command>`.
func runAlert(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, alertUsage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	d := &dataCmd{name: "mloop alert " + cmd, stdout: stdout, stderr: stderr}
	switch cmd {
	case "apply":
		return d.alertApply(ctx, rest)
	case "rules":
		return d.alertRules(ctx, rest)
	case "delete", "rm":
		d.name = "mloop alert delete"
		return d.alertDelete(ctx, rest)
	case "list", "ls":
		d.name = "mloop alert list"
		return d.alertList(ctx, rest)
	case "show":
		return d.alertShow(ctx, rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, alertUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mloop alert: unknown command %q\n\n%s", cmd, alertUsage)
		return exitUsage
	}
}

const alertApplyUsage = `Usage: mloop alert apply FILE.yaml [flags]

Creates or replaces every rule of the rules document FILE (docs/alerts.md):

  rules:
    - name: flights-errors
      deployment: flights
      condition: {kind: error_rate_above, threshold: 0.05}
      windows: 2
      actions:
        - webhook: {url: https://hooks.example.com/mloop, secret: s3cret}

The document is checked here first: an error names its line and column,
and then no rule is sent. Rules of the server not in the document stay.
`

// alertApply runs `mloop alert apply FILE`.
func (d *dataCmd) alertApply(ctx context.Context, args []string) int {
	fs := d.flags(alertApplyUsage)
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	file := pos[0]
	data, err := os.ReadFile(file)
	if err != nil {
		return d.fail(fmt.Errorf("read the rules: %w", err))
	}
	rules, err := alert.ParseRules(data)
	if err != nil {
		return d.fail(fmt.Errorf("%s: %w", file, err))
	}
	if len(rules) == 0 {
		return d.fail(mloop.Errorf(mloop.EINVALID, "%s has no rules: write them in a list under \"rules:\"", file))
	}
	applied := make([]*alert.Rule, 0, len(rules))
	for _, r := range rules {
		put, err := d.client.PutAlertRule(ctx, r)
		if err != nil {
			if len(applied) > 0 {
				fmt.Fprintf(d.stderr, "%s: %d of %d rules applied before the error; apply the file again once fixed\n", d.name, len(applied), len(rules))
			}
			return d.fail(err)
		}
		applied = append(applied, put)
	}
	if d.json {
		return writeList(d, "rules", applied)
	}
	names := make([]string, len(applied))
	for i, r := range applied {
		names[i] = r.Name
	}
	fmt.Fprintf(d.stdout, "applied %d rules: %s\n", len(applied), strings.Join(names, ", "))
	return exitOK
}

// failAlertRule reports err and, for an unknown rule, how to find them.
func (d *dataCmd) failAlertRule(err error) int {
	d.fail(err)
	if mloop.IsNotFound(err) {
		fmt.Fprintln(d.stderr, "  `mloop alert rules` lists the rules there are")
	}
	return exitFailure
}

// alertRules runs `mloop alert rules [NAME]`.
func (d *dataCmd) alertRules(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop alert rules [NAME] [flags]\n\nLists the alert rules by name, or shows rule NAME. Webhook secrets read \"redacted\".\n")
	pos, code, ok := d.parse(fs, args, 0, 1)
	if !ok {
		return code
	}
	if len(pos) == 1 {
		r, err := d.client.AlertRule(ctx, pos[0])
		if err != nil {
			return d.failAlertRule(err)
		}
		if d.json {
			return d.writeJSON(r)
		}
		return d.printRule(r)
	}
	rs, err := d.client.AlertRules(ctx)
	if err != nil {
		return d.fail(err)
	}
	if d.json {
		return writeList(d, "rules", rs)
	}
	if len(rs) == 0 {
		fmt.Fprintln(d.stdout, "no alert rules: write a rules document and `mloop alert apply` it (docs/alerts.md)")
		return exitOK
	}
	tw := tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tDEPLOYMENT\tCONDITION\tWINDOWS\tFOR\tMIN SAMPLES\tACTIONS\tENABLED")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\t%d\t%s\t%t\n", r.Name, r.Deployment, conditionText(r.Condition),
			max(r.Windows, 1), durationCell(r.For.D()), r.MinSamples, actionsText(r.Actions), !r.Disabled)
	}
	return d.flush(tw)
}

// printRule prints one rule, a field a line.
func (d *dataCmd) printRule(r *alert.Rule) int {
	tw := tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "Name:\t%s\n", r.Name)
	fmt.Fprintf(tw, "Deployment:\t%s\n", r.Deployment)
	fmt.Fprintf(tw, "Condition:\t%s\n", conditionText(r.Condition))
	fmt.Fprintf(tw, "Windows:\t%d\n", max(r.Windows, 1))
	fmt.Fprintf(tw, "For:\t%s\n", durationCell(r.For.D()))
	fmt.Fprintf(tw, "Min samples:\t%d\n", r.MinSamples)
	fmt.Fprintf(tw, "Enabled:\t%t\n", !r.Disabled)
	fmt.Fprintf(tw, "Created:\t%s\n", timeCell(r.CreatedAt))
	fmt.Fprintf(tw, "Updated:\t%s\n", timeCell(r.UpdatedAt))
	if len(r.Actions) == 0 {
		fmt.Fprintf(tw, "Actions:\tnone (the alert is only recorded)\n")
	}
	for i, a := range r.Actions {
		fmt.Fprintf(tw, "Action %d:\t%s\n", i, actionText(a))
	}
	return d.flush(tw)
}

// conditionText writes a condition as "error_rate_above > 0.05",
// "quality_below roc_auc < 0.65 (min 100 labels)", "dataset_drift".
func conditionText(c alert.Condition) string {
	var b strings.Builder
	b.WriteString(string(c.Kind))
	if c.Feature != "" {
		b.WriteString(" " + c.Feature)
	}
	if c.Metric != "" {
		b.WriteString(" " + c.Metric)
	}
	if c.Threshold != nil {
		op := ">"
		switch c.Kind {
		case alert.DatasetDrift, alert.FeatureDrift:
			op = "≥"
		case alert.QualityBelow:
			op = "<"
			switch c.Metric {
			case monitor.MetricLogLoss, monitor.MetricRMSE, monitor.MetricMAE:
				op = ">"
			}
		}
		b.WriteString(" " + op + " " + strconv.FormatFloat(*c.Threshold, 'g', -1, 64))
	}
	if c.Kind == alert.LatencyP99Above {
		b.WriteString(" ms")
	}
	if c.Kind == alert.QualityBelow {
		n := c.MinLabels
		if n == 0 {
			n = alert.DefaultMinLabels
		}
		fmt.Fprintf(&b, " (min %d labels)", n)
	}
	return b.String()
}

// actionsText summarises a rule's actions: "webhook, trigger".
func actionsText(as []alert.Action) string {
	kinds := make([]string, len(as))
	for i, a := range as {
		kinds[i] = a.Kind()
	}
	return dash(strings.Join(kinds, ", "))
}

// actionText describes one action.
func actionText(a alert.Action) string {
	switch {
	case a.Webhook != nil:
		w := a.Webhook
		s := "webhook " + w.URL
		if w.Secret != "" {
			s += " (signed)"
		}
		if w.OnResolve {
			s += ", also on resolve"
		}
		return s
	case a.Trigger != nil:
		typ := a.Trigger.EventType
		if typ == "" {
			typ = alert.DefaultEventType
		}
		return "trigger event " + typ
	}
	return "-"
}

// durationCell writes a duration, or "-" for none.
func durationCell(d time.Duration) string {
	if d == 0 {
		return "-"
	}
	return d.String()
}

// timeCell writes a time in local time, or "-" for none.
func timeCell(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05")
}

// alertDelete runs `mloop alert delete NAME`.
func (d *dataCmd) alertDelete(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop alert delete NAME [flags]\n\nDeletes rule NAME and its evaluation states; its firing alerts are marked resolved, and all its alerts stay as history.\n")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	if err := d.client.DeleteAlertRule(ctx, pos[0]); err != nil {
		return d.failAlertRule(err)
	}
	if d.json {
		return d.writeJSON(map[string]string{"deleted": pos[0]})
	}
	fmt.Fprintf(d.stdout, "deleted alert rule %s\n", pos[0])
	return exitOK
}

// alertList runs `mloop alert list`.
func (d *dataCmd) alertList(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop alert list [flags]\n\nLists the alerts, newest first.\n")
	rule := fs.String("rule", "", "only the alerts of rule `NAME`")
	deployment := fs.String("deployment", "", "only the alerts of deployment `D`")
	state := fs.String("state", "", "only firing or resolved alerts")
	limit := fs.Int("limit", 50, "the most alerts shown (0: all)")
	if _, code, ok := d.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *limit < 0 {
		return d.usageError("--limit cannot be negative")
	}
	f := alert.AlertFilter{Rule: *rule, Deployment: *deployment, Limit: *limit}
	switch st := alert.State(*state); st {
	case "", alert.StateFiring, alert.StateResolved:
		f.State = st
	default:
		return d.usageError("invalid --state %q: use firing or resolved", *state)
	}
	as, err := d.client.Alerts(ctx, f)
	if err != nil {
		return d.fail(err)
	}
	if d.json {
		return writeList(d, "alerts", as)
	}
	if len(as) == 0 {
		fmt.Fprintln(d.stdout, "no alerts")
		return exitOK
	}
	tw := tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATE\tRULE\tDEPLOYMENT\tMODEL\tSTARTED\tRESOLVED\tVALUE\tTHRESHOLD")
	for _, a := range as {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%.4g\t%.4g\n", a.ID, a.State, a.Rule, a.Deployment,
			a.ModelVersion, timeCell(a.StartedAt), timeCell(a.ResolvedAt), a.Value, a.Threshold)
	}
	return d.flush(tw)
}

// alertShow runs `mloop alert show ID`.
func (d *dataCmd) alertShow(ctx context.Context, args []string) int {
	fs := d.flags("Usage: mloop alert show ID [flags]\n\nShows an alert and every attempt to run its actions.\n")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	det, err := d.client.Alert(ctx, pos[0])
	if err != nil {
		d.fail(err)
		if mloop.IsNotFound(err) {
			fmt.Fprintln(d.stderr, "  `mloop alert list` lists the alerts there are")
		}
		return exitFailure
	}
	if d.json {
		return d.writeJSON(det)
	}
	a := det.Alert
	tw := tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "ID:\t%s\n", a.ID)
	fmt.Fprintf(tw, "State:\t%s\n", a.State)
	fmt.Fprintf(tw, "Rule:\t%s\n", a.Rule)
	fmt.Fprintf(tw, "Deployment:\t%s\n", a.Deployment)
	fmt.Fprintf(tw, "Model version:\t%s\n", a.ModelVersion)
	fmt.Fprintf(tw, "Started:\t%s\n", timeCell(a.StartedAt))
	fmt.Fprintf(tw, "Resolved:\t%s\n", timeCell(a.ResolvedAt))
	fmt.Fprintf(tw, "Value:\t%.6g (threshold %.6g)\n", a.Value, a.Threshold)
	fmt.Fprintf(tw, "Message:\t%s\n", a.Message)
	fmt.Fprintf(tw, "Windows:\t%s\n", dash(strings.Join(a.Windows, ", ")))
	if a.ResolvedBy != "" {
		fmt.Fprintf(tw, "Resolved by:\t%s\n", a.ResolvedBy)
	}
	if code := d.flush(tw); code != exitOK {
		return code
	}
	if len(det.Deliveries) == 0 {
		fmt.Fprintln(d.stdout, "\nno deliveries")
		return exitOK
	}
	fmt.Fprintln(d.stdout, "\nDeliveries:")
	tw = tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tACTION\tEVENT\tATTEMPT\tOUTCOME\tSTATUS\tERROR")
	for _, dl := range det.Deliveries {
		status := "-"
		if dl.StatusCode != 0 {
			status = strconv.Itoa(dl.StatusCode)
		}
		fmt.Fprintf(tw, "%s\t%d %s\t%s\t%d\t%s\t%s\t%s\n", timeCell(dl.Time), dl.Action, dl.Kind, dl.Event,
			dl.Attempt, dl.Outcome, status, dash(dl.Error))
	}
	return d.flush(tw)
}
