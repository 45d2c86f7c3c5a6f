package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
)

const dataSchemaUsage = `Usage: mloop data schema REF [flags]
       mloop data schema NAME --set FILE [flags]

The first form prints the schema of the dataset REF names, as YAML: the one
stored for the dataset, or when none is stored (or with --infer) the schema
inferred from the profile of version REF: each column's type, whether it may
be null and how often, the domain of categorical columns, and with --ranges
the observed numeric ranges.

The second form checks the YAML schema in FILE and stores it as the schema
of dataset NAME; validate uses it from then on.

Example: start from the inferred schema, edit it, store it:
  mloop data schema flights@1 > schema.yaml
  $EDITOR schema.yaml
  mloop data schema flights --set schema.yaml
`

// schema runs `mloop data schema`.
func (d *dataCmd) schema(ctx context.Context, args []string) int {
	fs := d.flags(dataSchemaUsage)
	set := fs.String("set", "", "store the schema in this YAML file for the dataset")
	infer := fs.Bool("infer", false, "print the schema inferred from the version even when one is stored")
	ranges := fs.Bool("ranges", false, "infer numeric and timestamp ranges from the observed minimum and maximum")
	maxDomain := fs.Int("max-domain", dataset.DefaultMaxDomainSize, "largest number of distinct values for which a string column gets a domain")
	maxChange := fs.Float64("max-row-count-change", 0, "when positive, infer this bound on the relative row count change against the previous version")
	pos, code, ok := d.parse(fs, args, 1, 1)
	if !ok {
		return code
	}
	if *set != "" {
		return d.setSchema(ctx, pos[0], *set)
	}
	ref, err := dataset.ParseRef(pos[0])
	if err != nil {
		return d.fail(err)
	}
	if !*infer {
		yaml, err := d.client.GetSchema(ctx, ref.Name)
		switch {
		case err == nil:
			if d.json {
				return d.writeJSON(map[string]any{"dataset": ref.Name, "source": "stored", "schema": string(yaml)})
			}
			fmt.Fprint(d.stdout, string(yaml))
			return exitOK
		case !mloop.IsNotFound(err):
			return d.fail(err)
		}
	}
	v, code, ok := d.getVersion(ctx, ref.String(), true)
	if !ok {
		return code
	}
	if v.Profile == nil {
		return d.fail(fmt.Errorf("%s has no profile to infer a schema from", v.Ref()))
	}
	s := dataset.InferSchema(v.Profile, dataset.InferOptions{Dataset: v.Dataset, Ranges: *ranges,
		MaxDomainSize: *maxDomain, MaxRowCountChange: *maxChange})
	yaml, err := s.YAML()
	if err != nil {
		return d.fail(err)
	}
	if d.json {
		return d.writeJSON(map[string]any{"dataset": v.Dataset, "source": "inferred", "version": v.Ref(), "schema": string(yaml)})
	}
	fmt.Fprintf(d.stdout, "# Inferred from %s (%s rows).\n", v.Ref(), formatCount(v.Rows))
	fmt.Fprint(d.stdout, string(yaml))
	return exitOK
}

// setSchema checks the schema in file and stores it for dataset name.
func (d *dataCmd) setSchema(ctx context.Context, name, file string) int {
	if strings.Contains(name, "@") {
		return d.usageError("a schema belongs to a dataset, not to a version: use `mloop data schema %s --set %s`", strings.SplitN(name, "@", 2)[0], file)
	}
	if err := dataset.ValidateName(name); err != nil {
		return d.fail(err)
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return d.fail(fmt.Errorf("read schema: %w", err))
	}
	s, err := dataset.ParseSchema(data)
	if err != nil {
		return d.fail(fmt.Errorf("%s: %w", file, err))
	}
	if s.Dataset != "" && s.Dataset != name {
		return d.fail(fmt.Errorf("%s: the schema is for dataset %q, not %q: fix its dataset: line or the name", file, s.Dataset, name))
	}
	if err := d.client.SetSchema(ctx, name, data); err != nil {
		return d.fail(err)
	}
	if d.json {
		return d.writeJSON(map[string]any{"dataset": name, "columns": len(s.Columns), "expectations": len(s.Expectations)})
	}
	fmt.Fprintf(d.stdout, "stored the schema of %s: %s, %s\n", name,
		plural(int64(len(s.Columns)), "column", "columns"), plural(int64(len(s.Expectations)), "expectation", "expectations"))
	return exitOK
}
