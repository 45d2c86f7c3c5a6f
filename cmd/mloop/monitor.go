package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mloop/mloop/internal/monitor"
)

const monitorUsage = `Usage: mloop monitor DEPLOYMENT [flags]

Prints the monitoring windows the server saved for DEPLOYMENT, newest
first: one line per window and model version with its start, rows,
requests, server errors, p99 latency, the share of features that drifted
from the training data, the most drifted features with their statistic,
data-quality issues and, once labels were pushed (mloop feedback push), the
quality metrics. --current shows the window still open instead.
`

// runMonitor runs `mloop monitor DEPLOYMENT`.
func runMonitor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	d := &dataCmd{name: "mloop monitor", stdout: stdout, stderr: stderr}
	if len(args) > 0 && (args[0] == "-h" || args[0] == "-help" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(stdout, monitorUsage)
		return exitOK
	}
	fs := d.flags(monitorUsage)
	since := fs.Duration("since", 0, "only windows that ended within this `duration` (24h; default: all)")
	limit := fs.Int("limit", 20, "the most windows shown (0: all)")
	modelVersion := fs.String("model-version", "", "only the windows of one model version (MODEL/VERSION)")
	current := fs.Bool("current", false, "show the open window (not yet saved) instead of the history")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *since < 0 || *limit < 0 {
		return d.usageError("--since and --limit cannot be negative")
	}
	name := pos[0]
	var ws []*monitor.WindowSummary
	var err error
	if *current {
		ws, err = d.client.CurrentWindow(ctx, name)
	} else {
		f := monitor.WindowFilter{Limit: *limit, ModelVersion: *modelVersion}
		if *since > 0 {
			f.Since = time.Now().Add(-*since)
		}
		ws, err = d.client.MonitoringWindows(ctx, name, f)
	}
	if err != nil {
		return d.fail(err)
	}
	if d.json {
		return writeList(d, "windows", ws)
	}
	if len(ws) == 0 {
		if *current {
			fmt.Fprintf(d.stdout, "no window is open for %s: it has served no request since the last window closed\n", name)
		} else {
			fmt.Fprintf(d.stdout, "no saved window for %s yet: windows are saved when they close (server flag --monitor-window); --current shows the open one\n", name)
		}
		return exitOK
	}
	tw := tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "START\tEND\tMODEL\tROWS\tREQUESTS\tERRORS\tP99 MS\tDRIFT\tTOP DRIFTED\tDQ ISSUES\tQUALITY")
	for _, w := range ws {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%.1f\t%s\t%s\t%d\t%s\n",
			w.Start.Local().Format("2006-01-02 15:04:05"), w.End.Local().Format("15:04:05"), w.ModelVersion,
			w.Rows, w.Requests, w.Errors, w.LatencyP99, driftCell(w.Drift), topDrifted(w.Drift, 3),
			w.DataQuality.Issues, qualityCell(w.Quality))
	}
	return d.flush(tw)
}

// driftCell summarises a window's dataset drift: "2/7 (29%) DRIFT",
// "0/7 (0%)", or the status when nothing was compared.
func driftCell(dr monitor.Drift) string {
	if dr.Status != monitor.DriftOK {
		return dash(dr.Status)
	}
	s := fmt.Sprintf("%d/%d (%.0f%%)", dr.Drifted, len(dr.Features), 100*dr.Share)
	if dr.DatasetDrift {
		s += " DRIFT"
	}
	return s
}

// topDrifted names the n drifted features with the largest statistic,
// with their method and statistic.
func topDrifted(dr monitor.Drift, n int) string {
	var fs []monitor.FeatureDrift
	for _, f := range dr.Features {
		if f.Drifted {
			fs = append(fs, f)
		}
	}
	slices.SortFunc(fs, func(a, b monitor.FeatureDrift) int {
		if a.Statistic != b.Statistic {
			if a.Statistic > b.Statistic {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Feature, b.Feature)
	})
	parts := make([]string, 0, n)
	for i, f := range fs {
		if i == n {
			parts = append(parts, "+"+strconv.Itoa(len(fs)-n))
			break
		}
		parts = append(parts, fmt.Sprintf("%s %s=%.3g", f.Feature, f.Method, f.Statistic))
	}
	return dash(strings.Join(parts, ", "))
}

// qualityMetricOrder is the order metrics are shown in.
var qualityMetricOrder = []string{
	monitor.MetricAccuracy, monitor.MetricROCAUC, monitor.MetricF1, monitor.MetricPrecision, monitor.MetricRecall,
	monitor.MetricMacroF1, monitor.MetricLogLoss, monitor.MetricRMSE, monitor.MetricMAE, monitor.MetricR2,
}

// qualityCell summarises a window's live quality: "n=200 accuracy=0.91
// roc_auc=0.95 …", or "-" without labels.
func qualityCell(q *monitor.Quality) string {
	if q == nil || q.Labels == 0 {
		return "-"
	}
	m := q.Metrics()
	parts := []string{"n=" + strconv.FormatInt(q.Labels, 10)}
	for _, k := range qualityMetricOrder {
		if v, ok := m[k]; ok {
			parts = append(parts, fmt.Sprintf("%s=%.3f", k, v))
		}
	}
	return strings.Join(parts, " ")
}
