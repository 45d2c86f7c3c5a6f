package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
)

const dataListUsage = `Usage: mloop data list [NAME] [flags]

Without NAME, lists every dataset with its latest version; with NAME, lists
that dataset's versions, newest first.
`

// list runs `mloop data list [NAME]`.
func (d *dataCmd) list(ctx context.Context, args []string) int {
	fs := d.flags(dataListUsage)
	pos, code, ok := d.parse(fs, args, 0, 1)
	if !ok {
		return code
	}
	if len(pos) == 0 {
		ds, err := d.client.ListDatasets(ctx)
		if err != nil {
			return d.fail(err)
		}
		if d.json {
			return writeList(d, "datasets", ds)
		}
		if len(ds) == 0 {
			fmt.Fprintln(d.stdout, "no datasets yet: push one with `mloop data push NAME PATH`")
			return exitOK
		}
		tw := tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tLATEST\tVERSIONS\tROWS\tUPDATED")
		for _, s := range ds {
			fmt.Fprintf(tw, "%s\t@%d\t%d\t%s\t%s\n", s.Name, s.LatestVersion, s.Versions, formatCount(s.Rows), formatTime(s.UpdatedAt))
		}
		return d.flush(tw)
	}
	name := pos[0]
	if n, _, found := strings.Cut(name, "@"); found {
		return d.usageError("list takes a dataset NAME, not a version reference: try `mloop data list %s` or `mloop data show %s`", n, name)
	}
	vs, err := d.client.ListVersions(ctx, name)
	if err != nil {
		if mloop.IsNotFound(err) {
			d.fail(err)
			fmt.Fprintln(d.stderr, "  `mloop data list` shows the datasets there are")
			return exitFailure
		}
		return d.fail(err)
	}
	if d.json {
		return writeList(d, "versions", vs)
	}
	tw := tabwriter.NewWriter(d.stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "VERSION\tDIGEST\tROWS\tSIZE\tFILES\tCREATED\tUSER\tTAGS")
	for _, v := range vs {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", v.Ref(), shortDigest(v.Digest), formatCount(v.Rows),
			formatBytes(v.Bytes), len(v.Files), formatTime(v.CreatedAt), v.User, formatTags(v.Tags))
	}
	return d.flush(tw)
}

func (d *dataCmd) flush(tw *tabwriter.Writer) int {
	if err := tw.Flush(); err != nil {
		return d.fail(fmt.Errorf("write output: %w", err))
	}
	return exitOK
}

const dataShowUsage = `Usage: mloop data show REF [flags]

Shows a dataset version: its digest, files, who pushed it from where, a
per-column profile (type, count, nulls, min, mean, max, distinct values and
the most frequent ones) and the MLflow runs that logged it as an input.
--json prints the version as the API returns it, profile included.
`

// show runs `mloop data show REF`.
func (d *dataCmd) show(ctx context.Context, args []string) int {
	fs := d.flags(dataShowUsage)
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	v, code, ok := d.getVersion(ctx, pos[0], true)
	if !ok {
		return code
	}
	if d.json {
		return d.writeJSON(v)
	}
	runs, err := d.client.VersionRuns(ctx, v.Dataset, strconv.FormatInt(v.Version, 10))
	if err != nil {
		return d.fail(err)
	}
	if err := writeVersion(d.stdout, v, runs); err != nil {
		return d.fail(err)
	}
	return exitOK
}

// getVersion fetches the version ref names, explaining unknown ones.
func (d *dataCmd) getVersion(ctx context.Context, ref string, withProfile bool) (*dataset.Version, int, bool) {
	r, err := dataset.ParseRef(ref)
	if err != nil {
		return nil, d.fail(err), false
	}
	v, err := d.client.GetVersion(ctx, r.Name, r.Selector(), withProfile)
	if err != nil {
		d.fail(err)
		if mloop.IsNotFound(err) {
			fmt.Fprintf(d.stderr, "  `mloop data list %s` shows its versions; `mloop data list` the datasets\n", r.Name)
		}
		return nil, exitFailure, false
	}
	return v, 0, true
}

// writeVersion prints a version for people.
func writeVersion(w io.Writer, v *dataset.Version, runs []dataset.LineageRun) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s  %s\n", v.Ref(), v.Digest)
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	created := formatTime(v.CreatedAt)
	if v.User != "" {
		created += " by " + v.User
	}
	fmt.Fprintf(tw, "created\t%s\n", created)
	if v.Source != "" {
		fmt.Fprintf(tw, "source\t%s\n", v.Source)
	}
	fmt.Fprintf(tw, "rows\t%s\n", formatCount(v.Rows))
	fmt.Fprintf(tw, "size\t%s in %s\n", formatBytes(v.Bytes), plural(int64(len(v.Files)), "file", "files"))
	if len(v.Tags) > 0 {
		fmt.Fprintf(tw, "tags\t%s\n", formatTags(v.Tags))
	}
	tw.Flush()

	b.WriteString("\nFILES\n")
	tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	for _, f := range v.Files {
		format := string(f.Format)
		if f.Compression != "" {
			format += "+" + string(f.Compression)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s rows\t%s\tsha256:%s\n", f.Path, format, formatCount(f.Rows), formatBytes(f.Size), f.SHA256)
	}
	tw.Flush()

	if v.Profile != nil && len(v.Profile.Columns) > 0 {
		b.WriteString("\nPROFILE\n")
		writeProfile(&b, v.Profile)
	}

	b.WriteString("\nRUNS\n")
	if len(runs) == 0 {
		b.WriteString("  no MLflow run has logged this version as an input yet\n")
	} else {
		tw = tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  RUN\tEXPERIMENT\tNAME\tCONTEXT\tSTATUS\tSTARTED")
		for _, r := range runs {
			started := "-"
			if r.StartTime > 0 {
				started = formatTime(time.UnixMilli(r.StartTime))
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", r.RunID, dash(r.ExperimentID), dash(r.RunName), dash(r.Context), dash(r.Status), started)
		}
		tw.Flush()
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// writeProfile prints one line per column of p.
func writeProfile(w io.Writer, p *dataset.Profile) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  COLUMN\tTYPE\tCOUNT\tNULLS\tMIN\tMEAN\tMAX\tDISTINCT\tTOP VALUES")
	for _, c := range p.Columns {
		nulls := formatCount(c.Nulls)
		if total := c.Count + c.Nulls; c.Nulls > 0 && total > 0 {
			nulls += fmt.Sprintf(" (%s)", formatShare(float64(c.Nulls)/float64(total)))
		}
		distinct := formatCount(c.Distinct)
		if c.Frequent == nil || !c.Frequent.Exact() {
			distinct = "~" + distinct // from the distinct-count sketch
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", c.Name, c.Type, formatCount(c.Count), nulls,
			formatStat(c.Type, c.Min), formatStat(c.Type, c.Mean), formatStat(c.Type, c.Max), distinct, formatTop(c))
	}
	tw.Flush()
}

// formatStat formats a summary value of a column of type t.
func formatStat(t dataset.Type, v *float64) string {
	if v == nil {
		return "-"
	}
	x := *v
	switch {
	case math.IsNaN(x):
		return "NaN"
	case math.IsInf(x, 0):
		return strconv.FormatFloat(x, 'g', -1, 64)
	case t == dataset.TypeTimestamp:
		return time.UnixMicro(int64(x)).UTC().Format("2006-01-02T15:04:05Z")
	case t == dataset.TypeInteger && x == math.Trunc(x) && math.Abs(x) < 1e15:
		return formatCount(int64(x))
	}
	return strconv.FormatFloat(x, 'g', 5, 64)
}

// formatTop lists a column's three most frequent values with their share.
func formatTop(c *dataset.ColumnProfile) string {
	if len(c.Top) == 0 || c.Count == 0 {
		return "-"
	}
	var parts []string
	for i, it := range c.Top {
		if i == 3 {
			break
		}
		val := it.Value
		if len(val) > 24 {
			val = val[:21] + "…"
		}
		parts = append(parts, fmt.Sprintf("%s (%s)", val, formatShare(float64(it.Count)/float64(c.Count))))
	}
	return strings.Join(parts, ", ")
}

// formatShare prints a fraction as a percentage with useful precision.
func formatShare(f float64) string {
	switch p := 100 * f; {
	case p == 0:
		return "0%"
	case p < 0.1:
		return "<0.1%"
	case p < 10:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	default:
		return strconv.FormatFloat(p, 'f', 0, 64) + "%"
	}
}

// formatTags prints tags sorted by key as k=v pairs.
func formatTags(tags map[string]string) string {
	if len(tags) == 0 {
		return "-"
	}
	keys := make([]string, 0, len(tags))
	for k := range tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for i, k := range keys {
		keys[i] = k + "=" + tags[k]
	}
	return strings.Join(keys, ",")
}

// formatTime prints a time in UTC to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
