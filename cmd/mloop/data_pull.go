package main

import (
	"context"
	"fmt"

	"github.com/mloop/mloop/internal/client"
)

const dataPullUsage = `Usage: mloop data pull REF DEST [flags]

Downloads every file of a dataset version into folder DEST (created if
needed), at the paths it was pushed with. Each file is written to a
temporary name, checked against its SHA-256 and only then renamed, so DEST
never holds a partial file; files already there with the right content are
not downloaded again.
`

// pull runs `mloop data pull REF DEST`.
func (d *dataCmd) pull(ctx context.Context, args []string) int {
	fs := d.flags(dataPullUsage)
	quiet := fs.Bool("quiet", false, "show no progress")
	pos, code, ok := d.parse(fs, args, 2, 2)
	if !ok {
		return code
	}
	v, code, ok := d.getVersion(ctx, pos[0], false)
	if !ok {
		return code
	}
	dest := pos[1]
	prog := newProgress(d.stderr, *quiet)
	st, err := d.client.Pull(ctx, v, dest, func(p client.TransferProgress) { prog.update(transferText("downloading", p), false) })
	prog.done()
	if err != nil {
		return d.fail(err)
	}
	if d.json {
		return d.writeJSON(map[string]any{
			"version": v.Ref(), "digest": v.Digest, "dest": dest,
			"downloaded_files": st.DownloadedFiles, "downloaded_bytes": st.DownloadedBytes, "skipped_files": st.SkippedFiles,
		})
	}
	fmt.Fprintf(d.stdout, "pulled %s into %s: %s, %s downloaded", v.Ref(), dest,
		plural(int64(st.DownloadedFiles), "file", "files"), formatBytes(st.DownloadedBytes))
	if st.SkippedFiles > 0 {
		fmt.Fprintf(d.stdout, ", %s already there", plural(int64(st.SkippedFiles), "file", "files"))
	}
	fmt.Fprintln(d.stdout)
	return exitOK
}
