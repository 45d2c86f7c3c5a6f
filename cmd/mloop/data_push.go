package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mloop/mloop/internal/client"
	"github.com/mloop/mloop/internal/dataset"
)

const dataPushUsage = `Usage: mloop data push NAME PATH [flags]

Makes the file or folder PATH a new version of dataset NAME. Every file is
hashed (SHA-256) and profiled in one pass; only files the server does not
hold yet are uploaded, and the version is committed last, so an interrupted
push leaves no version behind. Pushing content identical to an existing
version uploads nothing and reports that version.

Folders are read recursively; hidden files are skipped. Data files are
.csv, .tsv, .ndjson/.jsonl and .parquet, text ones optionally .gz or .zst.

Example:
  mloop data push flights ./flights-2001-01.parquet --tag month=2001-01
`

// push runs `mloop data push NAME PATH`.
func (d *dataCmd) push(ctx context.Context, args []string) int {
	fs := d.flags(dataPushUsage)
	tags := &keyValues{what: "tag"}
	types := &keyValues{what: "type"}
	fs.Var(tags, "tag", "tag the version: KEY=VALUE (repeatable)")
	fs.Var(types, "type", "force a text column's type: COLUMN=TYPE, TYPE one of integer, float, boolean, string, timestamp (repeatable)")
	message := fs.String("message", "", "describe the version (stored as the tag \"message\")")
	userName := fs.String("user", currentUser(), "who pushes [USER]")
	quiet := fs.Bool("quiet", false, "show no progress")
	skipUnknown := fs.Bool("skip-unknown", false, "skip files that are not data files instead of failing")
	allowEmpty := fs.Bool("allow-empty", false, "accept data without any row")
	pos, code, ok := d.parse(fs, args, 2, 2)
	if !ok {
		return code
	}
	name, path := pos[0], pos[1]
	if strings.Contains(name, "@") {
		return d.usageError("the dataset name %q holds an @: push takes a NAME, the server numbers the versions", name)
	}
	// The server checks the name too; checking it first saves scanning.
	if err := dataset.ValidateName(name); err != nil {
		return d.fail(err)
	}
	opts := dataset.ScanOptions{SkipUnknown: *skipUnknown, AllowEmpty: *allowEmpty}
	if len(types.m) > 0 {
		opts.Profile.Types = map[string]dataset.Type{}
		for col, t := range types.m {
			typ, err := parseType(t)
			if err != nil {
				return d.usageError("--type %s=%s: %v", col, t, err)
			}
			opts.Profile.Types[col] = typ
		}
	}
	tagMap := tags.m
	if *message != "" {
		if tagMap == nil {
			tagMap = map[string]string{}
		}
		tagMap["message"] = *message
	}

	prog := newProgress(d.stderr, *quiet)
	opts.Progress = scanProgress(prog)
	scan, err := dataset.ScanPath(ctx, path, opts)
	prog.done()
	if err != nil {
		var unknown *dataset.UnknownFilesError
		if errors.As(err, &unknown) {
			d.fail(err)
			fmt.Fprintln(d.stderr, "  move them away, or pass --skip-unknown to push only the data files")
			return exitFailure
		}
		return d.fail(err)
	}

	res, err := d.client.Push(ctx, name, scan, client.PushOptions{
		Tags: tagMap, User: *userName,
		Progress: func(p client.TransferProgress) { prog.update(transferText("uploading", p), false) },
	})
	prog.done()
	if err != nil {
		return d.fail(err)
	}
	if d.json {
		v := *res.Version
		v.Profile = nil
		return d.writeJSON(map[string]any{
			"version": &v, "created": res.Created,
			"uploaded_files": res.UploadedFiles, "uploaded_bytes": res.UploadedBytes,
		})
	}
	v := res.Version
	if !res.Created {
		what := "nothing uploaded"
		if res.UploadedFiles > 0 {
			what = fmt.Sprintf("%s re-uploaded", plural(int64(res.UploadedFiles), "missing file", "missing files"))
		}
		fmt.Fprintf(d.stdout, "%s already exists with identical content (%s)\n", v.Ref(), what)
		return exitOK
	}
	fmt.Fprintf(d.stdout, "pushed %s (%s, %s, %s, %s)\n", v.Ref(), shortDigest(v.Digest),
		plural(v.Rows, "row", "rows"), formatBytes(v.Bytes), plural(int64(len(v.Files)), "file", "files"))
	if reused := len(scan.Files) - res.UploadedFiles; reused > 0 && res.UploadedFiles > 0 {
		fmt.Fprintf(d.stdout, "  %s uploaded (%s); the server already held the others\n",
			plural(int64(res.UploadedFiles), "file", "files"), formatBytes(res.UploadedBytes))
	}
	return exitOK
}

// parseType parses a column type name.
func parseType(s string) (dataset.Type, error) {
	switch t := dataset.Type(strings.ToLower(strings.TrimSpace(s))); t {
	case dataset.TypeInteger, dataset.TypeFloat, dataset.TypeBoolean, dataset.TypeString, dataset.TypeTimestamp:
		return t, nil
	case "int":
		return dataset.TypeInteger, nil
	case "double", "number":
		return dataset.TypeFloat, nil
	case "bool":
		return dataset.TypeBoolean, nil
	case "text", "categorical":
		return dataset.TypeString, nil
	}
	return "", fmt.Errorf("unknown type %q: use integer, float, boolean, string or timestamp", s)
}
