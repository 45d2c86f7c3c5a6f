package main

import (
	"context"
	"fmt"
	"time"
)

const dataGCUsage = `Usage: mloop data gc [--older-than 24h] [flags]

Deletes the dataset files (blobs) that no version references, such as the
uploads of interrupted pushes, once they are older than the grace period.
A push in flight is never affected: its blobs are younger than the grace
period, and a commit and the collection exclude each other on the server.
`

// gc runs `mloop data gc`.
func (d *dataCmd) gc(ctx context.Context, args []string) int {
	fs := d.flags(dataGCUsage)
	olderThan := fs.Duration("older-than", 24*time.Hour, "delete only unreferenced blobs written at least this long ago")
	if _, code, ok := d.parse(fs, args, 0, 0); !ok {
		return code
	}
	if *olderThan < 0 {
		fmt.Fprintf(d.stderr, "%s: --older-than must not be negative, not %s\n", d.name, *olderThan)
		return exitUsage
	}
	res, err := d.client.GC(ctx, *olderThan)
	if err != nil {
		return d.fail(err)
	}
	if d.json {
		return d.writeJSON(res)
	}
	fmt.Fprintf(d.stdout, "deleted %s (%s) of %s; kept %d referenced and %d younger than %s\n",
		plural(int64(len(res.Deleted)), "blob", "blobs"), formatBytes(res.DeletedBytes),
		plural(int64(res.Scanned), "blob", "blobs"), res.Referenced, res.Recent, *olderThan)
	return exitOK
}
