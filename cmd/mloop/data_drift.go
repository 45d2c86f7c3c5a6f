package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/mloop/mloop/internal/dataset"
)

const dataDriftUsage = `Usage: mloop data drift REF CUR [flags]

Compares the current data CUR with the reference REF column by column and
says which columns drifted and whether the dataset did (when the share of
drifted columns reaches --drift-share). Each side is a version (NAME@N, …)
or local data (a file or folder that exists).

By default every value is loaded (exact statistics). --from-profiles
compares the two stored profiles instead: instant whatever the size, within
the sketches' documented error (see 'go doc dataset.DriftProfiles').

Methods: ks, chisquare, jensenshannon (js), psi, wasserstein, ztest. Without
--methods each column gets a default by type and size, as Evidently chooses:
a reference of at most 1000 values gets a p-value test (ks for numeric
columns with more than 5 distinct values, else chisquare, or ztest for at
most 2 values), a larger one a distance (wasserstein for numeric columns
with more than 5 distinct values, else jensenshannon).
Thresholds default to 0.05 for p-values (drift when p < threshold) and 0.1
for distances (drift when distance ≥ threshold).

The exit status is 0 whether or not drift is found, unless --fail-on-drift
is given: then it is 3 when the dataset drifted.
`

// drift runs `mloop data drift REF CUR`.
func (d *dataCmd) drift(ctx context.Context, args []string) int {
	fs := d.flags(dataDriftUsage)
	d.cacheFlag(fs)
	methods := fs.String("methods", "", "comma-separated methods for every column (default: one per column by type and size)")
	columns := fs.String("columns", "", "comma-separated columns to compare (default: every column on both sides)")
	thresholds := &keyValues{what: "threshold"}
	fs.Var(thresholds, "threshold", "a method's threshold: METHOD=VALUE (repeatable)")
	columnMethods := &keyValues{what: "column method"}
	fs.Var(columnMethods, "column-method", "methods of one column: COLUMN=M1,M2 (repeatable; wins over --methods)")
	driftShare := fs.Float64("drift-share", 0.5, "share of drifted columns at which the dataset counts as drifted")
	bins := fs.Int("bins", 0, "equal-width bins for numeric psi, jensenshannon and chisquare (default: Sturges' rule)")
	jsBase := fs.Float64("js-base", 0, "logarithm base of the Jensen–Shannon distance (default e)")
	fromProfiles := fs.Bool("from-profiles", false, "compare stored profiles instead of the data (approximate, instant)")
	failOnDrift := fs.Bool("fail-on-drift", false, "exit with status 3 when the dataset drifted")
	quiet := fs.Bool("quiet", false, "show no progress")
	pos, code, ok := d.parse(fs, args, 2, 2)
	if !ok {
		return code
	}
	opts := dataset.DriftOptions{DriftShare: *driftShare, Bins: *bins, JSBase: *jsBase}
	var err error
	if opts.Methods, err = dataset.ParseMethods(*methods); err != nil {
		return d.usageError("--methods: %v", err)
	}
	if *columns != "" {
		for _, c := range strings.Split(*columns, ",") {
			if c = strings.TrimSpace(c); c != "" {
				opts.Columns = append(opts.Columns, c)
			}
		}
	}
	for _, k := range thresholds.keys {
		ms, err := dataset.ParseMethods(k)
		if err != nil || len(ms) != 1 {
			return d.usageError("--threshold %s=%s: %v", k, thresholds.m[k], err)
		}
		x, err := strconv.ParseFloat(thresholds.m[k], 64)
		if err != nil {
			return d.usageError("--threshold %s=%s: not a number", k, thresholds.m[k])
		}
		if opts.Thresholds == nil {
			opts.Thresholds = map[dataset.Method]float64{}
		}
		opts.Thresholds[ms[0]] = x
	}
	for _, col := range columnMethods.keys {
		ms, err := dataset.ParseMethods(columnMethods.m[col])
		if err != nil || len(ms) == 0 {
			return d.usageError("--column-method %s=%s: %v", col, columnMethods.m[col], err)
		}
		if opts.ColumnMethods == nil {
			opts.ColumnMethods = map[string][]dataset.Method{}
		}
		opts.ColumnMethods[col] = ms
	}
	prog := newProgress(d.stderr, *quiet)

	sides := make([]*driftSide, 2)
	for i, arg := range pos {
		s, code, ok := d.resolveSide(ctx, arg)
		if !ok {
			return code
		}
		sides[i] = s
	}
	var rep *dataset.DriftReport
	if *fromProfiles {
		for _, s := range sides {
			if err := s.profile(ctx, prog); err != nil {
				return d.fail(err)
			}
		}
		rep, err = dataset.DriftProfiles(sides[0].prof, sides[1].prof, opts)
	} else {
		var tables [2]*dataset.Table
		for i, s := range sides {
			paths, code, ok := d.sideFiles(ctx, s, prog)
			if !ok {
				return code
			}
			lo := dataset.LoadOptions{Columns: opts.Columns}
			switch {
			case i == 1:
				// The current side is read with the reference's types, so
				// that text columns are parsed alike.
				lo.Types = tableTypes(tables[0])
			case s.version != nil && s.version.Profile != nil:
				lo.Types = profileTypes(s.version.Profile)
			}
			prog.update("loading "+s.name, true)
			if tables[i], err = dataset.LoadTable(ctx, paths, lo); err != nil {
				prog.done()
				return d.fail(err)
			}
		}
		prog.done()
		rep, err = dataset.DriftTables(tables[0], tables[1], opts)
	}
	if err != nil {
		return d.fail(err)
	}
	rep.Reference, rep.Current = sides[0].name, sides[1].name
	if d.json {
		if c := d.writeJSON(rep); c != exitOK {
			return c
		}
	} else {
		fmt.Fprintf(d.stdout, "Drift of %s against %s\n\n", rep.Current, rep.Reference)
		if err := rep.WriteText(d.stdout); err != nil {
			return d.fail(err)
		}
	}
	if *failOnDrift && rep.DatasetDrift {
		return exitCheckFailed
	}
	return exitOK
}

// driftSide is one side of a comparison: a version or local data.
type driftSide struct {
	name    string           // as reports name it: NAME@N or the path
	path    string           // local data, or ""
	version *dataset.Version // a version, or nil
	prof    *dataset.Profile
}

// resolveSide looks arg up: an existing path is local data, anything else a
// version reference, fetched with its profile (the exact mode reads the
// reference's column types from it; it is small next to the data).
func (d *dataCmd) resolveSide(ctx context.Context, arg string) (*driftSide, int, bool) {
	if _, err := os.Stat(arg); err == nil {
		return &driftSide{name: arg, path: arg}, 0, true
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, d.fail(err), false
	}
	v, code, ok := d.getVersion(ctx, arg, true)
	if !ok {
		return nil, code, false
	}
	return &driftSide{name: v.Ref(), version: v, prof: v.Profile}, 0, true
}

// profile makes sure s has a profile, scanning local data for it.
func (s *driftSide) profile(ctx context.Context, prog *progressLine) error {
	if s.prof != nil {
		return nil
	}
	if s.version != nil {
		return fmt.Errorf("%s has no stored profile: compare it without --from-profiles", s.name)
	}
	scan, err := dataset.ScanPath(ctx, s.path, dataset.ScanOptions{Progress: scanProgress(prog), AllowEmpty: true})
	prog.done()
	if err != nil {
		return err
	}
	s.prof = scan.Profile
	return nil
}

// sideFiles returns the local files of a side, downloading a version's
// through the blob cache.
func (d *dataCmd) sideFiles(ctx context.Context, s *driftSide, prog *progressLine) ([]string, int, bool) {
	if s.version != nil {
		return d.materialize(ctx, s.version, prog)
	}
	paths, err := dataset.DataFiles(s.path, false)
	if err != nil {
		return nil, d.fail(err), false
	}
	return paths, 0, true
}

// profileTypes returns the column types of a profile.
func profileTypes(p *dataset.Profile) map[string]dataset.Type {
	m := make(map[string]dataset.Type, len(p.Columns))
	for _, c := range p.Columns {
		m[c.Name] = c.Type
	}
	return m
}

// tableTypes returns the column types of a loaded table.
func tableTypes(t *dataset.Table) map[string]dataset.Type {
	m := make(map[string]dataset.Type, len(t.Columns))
	for _, c := range t.Columns {
		m[c.Name] = c.Type
	}
	return m
}
