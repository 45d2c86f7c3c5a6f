package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/client"
	"github.com/mloop/mloop/internal/dataset"
)

const dataValidateUsage = `Usage: mloop data validate REF|PATH [flags]

Checks a dataset version, or local data (a file or folder that exists is
read as local data), against a schema and prints the anomalies (missing,
unexpected or mistyped columns, too many nulls, values outside the domain or
range, a row count out of bounds or changed too much, empty data) and the
outcome of the schema's expectations.

The schema is --schema FILE, else the one stored for the dataset (for local
data, name the dataset with --dataset). The baseline for row count changes
is --baseline REF, else the version before REF (for local data, the latest
version of --dataset).

The exit status is 3 when an anomaly or failed expectation of error
severity exists, so pipelines can gate on it; 0 when the data passes.
`

// validate runs `mloop data validate`.
func (d *dataCmd) validate(ctx context.Context, args []string) int {
	fs := d.flags(dataValidateUsage)
	d.cacheFlag(fs)
	schemaFile := fs.String("schema", "", "YAML schema to check against (default: the dataset's stored schema)")
	baselineRef := fs.String("baseline", "", "version to compare the row count with (default: the previous version); none for no baseline")
	datasetName := fs.String("dataset", "", "for local data: the dataset whose schema and latest version apply")
	profileOnly := fs.Bool("profile-only", false, "decide from the profile alone: do not download a version's files (checks that need the data are skipped)")
	quiet := fs.Bool("quiet", false, "show no progress")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	arg := pos[0]
	prog := newProgress(d.stderr, *quiet)

	// What to validate: local data or a version.
	var (
		target  dataset.ValidationTarget
		version *dataset.Version
		name    = *datasetName
	)
	local := false
	if _, err := os.Stat(arg); err == nil {
		local = true
	} else if !errors.Is(err, os.ErrNotExist) {
		return d.fail(err)
	}
	if !local {
		v, code, ok := d.getVersion(ctx, arg, true)
		if !ok {
			return code
		}
		if name != "" && name != v.Dataset {
			return d.usageError("--dataset %s does not match %s", name, v.Ref())
		}
		version, name = v, v.Dataset
	} else if name != "" {
		if err := dataset.ValidateName(name); err != nil {
			return d.fail(err)
		}
	}

	// The schema.
	s, code, ok := d.loadSchema(ctx, *schemaFile, name, arg, version)
	if !ok {
		return code
	}

	if local {
		opts := dataset.ScanOptions{AllowEmpty: true}
		// Text read as the schema's string columns is always a string; other
		// types are inferred so that a mismatch is an anomaly, not a failure.
		for col, t := range s.Types() {
			if t == dataset.TypeString {
				if opts.Profile.Types == nil {
					opts.Profile.Types = map[string]dataset.Type{}
				}
				opts.Profile.Types[col] = t
			}
		}
		opts.Progress = scanProgress(prog)
		scan, err := dataset.ScanPath(ctx, arg, opts)
		prog.done()
		if err != nil {
			return d.fail(err)
		}
		target = dataset.ValidationTarget{Name: arg, Profile: scan.Profile}
		for _, f := range scan.Files {
			target.Files = append(target.Files, scan.LocalPath(f))
		}
	} else {
		target = dataset.ValidationTarget{Name: version.Ref(), Profile: version.Profile}
		if target.Profile == nil {
			return d.fail(fmt.Errorf("%s has no profile: it cannot be validated", version.Ref()))
		}
		if !*profileOnly {
			paths, code, ok := d.materialize(ctx, version, prog)
			if !ok {
				return code
			}
			target.Files = paths
		}
	}

	// The baseline.
	if b, code, ok := d.baseline(ctx, *baselineRef, name, version, s); !ok {
		return code
	} else if b != nil {
		target.Baseline = b.Profile
	}

	rep, err := dataset.Validate(ctx, s, target)
	if err != nil {
		return d.fail(err)
	}
	if d.json {
		if c := d.writeJSON(rep); c != exitOK {
			return c
		}
	} else if err := rep.WriteText(d.stdout); err != nil {
		return d.fail(err)
	}
	if rep.HasErrors() {
		return exitCheckFailed
	}
	return exitOK
}

// loadSchema returns the schema in file, else the one stored for dataset
// name; arg is what the user validates, for the advice when there is none.
func (d *dataCmd) loadSchema(ctx context.Context, file, name, arg string, v *dataset.Version) (*dataset.Schema, int, bool) {
	if file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, d.fail(fmt.Errorf("read schema: %w", err)), false
		}
		s, err := dataset.ParseSchema(data)
		if err != nil {
			return nil, d.fail(fmt.Errorf("%s: %w", file, err)), false
		}
		return s, 0, true
	}
	if name == "" {
		fmt.Fprintf(d.stderr, "%s: no schema to validate %s against: pass --schema FILE, or --dataset NAME to use that dataset's stored schema\n", d.name, arg)
		return nil, exitUsage, false
	}
	data, err := d.client.GetSchema(ctx, name)
	if mloop.IsNotFound(err) {
		from := name + "@1"
		if v != nil {
			from = v.Ref()
		}
		fmt.Fprintf(d.stderr, "%s: dataset %s has no schema yet. Infer one from a good version, review it and store it:\n"+
			"  mloop data schema %s > schema.yaml && mloop data schema %s --set schema.yaml\n"+
			"or pass one with --schema FILE\n", d.name, name, from, name)
		return nil, exitFailure, false
	} else if err != nil {
		return nil, d.fail(err), false
	}
	s, err := dataset.ParseSchema(data)
	if err != nil {
		return nil, d.fail(fmt.Errorf("the stored schema of %s: %w", name, err)), false
	}
	return s, 0, true
}

// baseline returns the version whose profile row count changes are measured
// against: ref when given ("none": no baseline), else the version before v,
// else (local data) the latest version of dataset name. It fetches nothing
// when the schema bounds no change and no ref is given.
func (d *dataCmd) baseline(ctx context.Context, ref, name string, v *dataset.Version, s *dataset.Schema) (*dataset.Version, int, bool) {
	switch {
	case ref == "none":
		return nil, 0, true
	case ref != "":
		b, code, ok := d.getVersion(ctx, ref, true)
		return b, code, ok
	case s.MaxRowCountChange == nil || name == "":
		return nil, 0, true
	case v != nil && v.Version <= 1:
		return nil, 0, true
	}
	sel := "latest"
	if v != nil {
		sel = strconv.FormatInt(v.Version-1, 10)
	}
	b, err := d.client.GetVersion(ctx, name, sel, true)
	if mloop.IsNotFound(err) && v == nil {
		return nil, 0, true // a new dataset: nothing to compare with
	} else if err != nil {
		return nil, d.fail(err), false
	}
	return b, 0, true
}

// materialize makes v's files local through the blob cache.
func (d *dataCmd) materialize(ctx context.Context, v *dataset.Version, prog *progressLine) ([]string, int, bool) {
	dir := d.cache
	if dir == "" {
		var err error
		if dir, err = client.DefaultCacheDir(); err != nil {
			return nil, d.fail(err), false
		}
	}
	cache := client.NewBlobCache(dir, d.client)
	paths, err := cache.Materialize(ctx, v, func(p client.TransferProgress) {
		prog.update(transferText("downloading "+v.Ref(), p), false)
	})
	prog.done()
	if err != nil {
		return nil, d.fail(err), false
	}
	return paths, 0, true
}

// scanProgress shows a scan's progress on prog.
func scanProgress(prog *progressLine) func(dataset.ScanProgress) {
	return func(p dataset.ScanProgress) {
		pct := 100.0
		if p.TotalBytes > 0 {
			pct = 100 * float64(p.Bytes) / float64(p.TotalBytes)
		}
		prog.update(fmt.Sprintf("scanning %3.0f%%  %s / %s  %d/%d files", pct,
			formatBytes(p.Bytes), formatBytes(p.TotalBytes), p.FilesDone, p.Files), false)
	}
}
