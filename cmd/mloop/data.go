package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/client"
)

// exitCheckFailed is the exit code of a data command that ran fine but whose
// data failed the check asked for: validation found error-severity
// anomalies, or drift was found with --fail-on-drift. Pipelines tell it
// apart from exitFailure (the check could not run).
const exitCheckFailed = 3

const dataUsage = `Usage: mloop data <command> [arguments] [flags]

Versioned datasets: push data as immutable versions, inspect and pull them,
keep a schema, validate new data against it and measure drift.

Commands:
  push NAME PATH       make a file or folder (CSV, TSV, NDJSON, Parquet; .gz/.zst text)
                       a version of dataset NAME; identical content is not uploaded again
  list [NAME]          list the datasets, or the versions of NAME
  show REF             a version's files, per-column profile and the runs that used it
  pull REF DEST        download a version's files into folder DEST
  schema REF           print the dataset's schema as YAML (stored, else inferred from REF)
  schema NAME --set F  check schema file F and store it as dataset NAME's schema
  validate REF|PATH    check a version or local data against the schema
  drift REF CUR        compare two versions or local paths column by column
  gc                   delete uploaded files no version references (--older-than 24h)

A REF is NAME (its latest version), NAME@3, NAME@latest or NAME@sha256:PREFIX.
Every command takes --server (default $MLOOP_SERVER, else ` + client.DefaultServer + `)
and --json (machine-readable output on stdout).

Exit status: 0 success; 1 the command failed (bad input, server unreachable,
unknown dataset, …); 2 bad usage, nothing done; 3 the command ran but the data
failed its check (validate found an error-severity anomaly; drift found dataset
drift and --fail-on-drift was given).

Run 'mloop data <command> -h' for a command's flags.
`

// runData dispatches `mloop data <command>`.
func runData(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, dataUsage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	d := &dataCmd{name: "mloop data " + cmd, stdout: stdout, stderr: stderr}
	switch cmd {
	case "push":
		return d.push(ctx, rest)
	case "list", "ls":
		d.name = "mloop data list"
		return d.list(ctx, rest)
	case "show":
		return d.show(ctx, rest)
	case "pull":
		return d.pull(ctx, rest)
	case "schema":
		return d.schema(ctx, rest)
	case "validate":
		return d.validate(ctx, rest)
	case "drift":
		return d.drift(ctx, rest)
	case "gc":
		return d.gc(ctx, rest)
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, dataUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mloop data: unknown command %q\n\n%s", cmd, dataUsage)
		return exitUsage
	}
}

// dataCmd holds what every data command shares: its name for messages, its
// output streams, and the common flags once parsed.
type dataCmd struct {
	name           string
	stdout, stderr io.Writer

	server string
	json   bool
	cache  string
	client *client.Client
}

// flags returns a FlagSet for the command with the common flags registered;
// usage is the text printed before the flag list by -h.
func (d *dataCmd) flags(usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(d.name, flag.ContinueOnError)
	fs.SetOutput(d.stderr)
	fs.Usage = func() {
		fmt.Fprint(d.stderr, usage)
		fmt.Fprintln(d.stderr, "\nFlags:")
		fs.PrintDefaults()
	}
	fs.StringVar(&d.server, "server", envOr("MLOOP_SERVER", client.DefaultServer), "URL of the mloop server [MLOOP_SERVER]")
	fs.BoolVar(&d.json, "json", false, "print machine-readable JSON on stdout")
	return fs
}

// cacheFlag registers --cache, the blob cache folder.
func (d *dataCmd) cacheFlag(fs *flag.FlagSet) {
	fs.StringVar(&d.cache, "cache", envOr("MLOOP_CACHE", ""), "folder caching downloaded dataset files (default $XDG_CACHE_HOME/mloop/blobs or ~/.cache/mloop/blobs) [MLOOP_CACHE]")
}

// parse parses args with fs, allowing flags before, between and after the
// positional arguments (`push NAME PATH --tag a=b`); "--" ends the flags.
// It checks the number of positional arguments is within [min, max] (max < 0:
// no limit) and returns them, or an exit code when it should stop.
func (d *dataCmd) parse(fs *flag.FlagSet, args []string, minArgs, maxArgs int) ([]string, int, bool) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, usageExit(err), false
		}
		rest := fs.Args()
		if len(rest) == 0 {
			break
		}
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			pos = append(pos, rest...)
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	if len(pos) < minArgs || (maxArgs >= 0 && len(pos) > maxArgs) {
		if len(pos) < minArgs {
			fmt.Fprintf(d.stderr, "%s: missing arguments\n\n", d.name)
		} else {
			fmt.Fprintf(d.stderr, "%s: unexpected argument %q\n\n", d.name, pos[maxArgs])
		}
		fs.Usage()
		return nil, exitUsage, false
	}
	d.client = client.New(d.server, nil)
	return pos, 0, true
}

// usageError reports a bad argument or flag value.
func (d *dataCmd) usageError(format string, args ...any) int {
	fmt.Fprintf(d.stderr, "%s: %s\n", d.name, fmt.Sprintf(format, args...))
	return exitUsage
}

// fail reports err, with a hint on what to do next when one helps, and
// returns exitFailure.
func (d *dataCmd) fail(err error) int {
	msg := errorText(err)
	fmt.Fprintf(d.stderr, "%s: %s\n", d.name, msg)
	if hint := d.hint(err); hint != "" {
		fmt.Fprintf(d.stderr, "  %s\n", hint)
	}
	return exitFailure
}

// hint returns advice for the common failures.
func (d *dataCmd) hint(err error) string {
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted: nothing was committed"
	case mloop.ErrorCode(err) == mloop.EUNAVAILABLE:
		return fmt.Sprintf("is the server running? start one with `mloop server`, or point --server (MLOOP_SERVER) at it (now %s)", d.server)
	case mloop.ErrorCode(err) == mloop.ENOTIMPLEMENTED:
		return "the server is older than this client: upgrade it"
	}
	return ""
}

// errorText returns err's message with any *mloop.Error in its chain shown as
// its message only, without the kind.
func errorText(err error) string {
	s := err.Error()
	var e *mloop.Error
	if errors.As(err, &e) {
		s = strings.Replace(s, e.Error(), e.Message, 1)
	}
	return s
}

// writeJSON prints v as indented JSON on stdout.
func (d *dataCmd) writeJSON(v any) int {
	enc := json.NewEncoder(d.stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return d.fail(fmt.Errorf("write JSON: %w", err))
	}
	return exitOK
}

// writeList writes {"key": items} as JSON, with [] rather than null for no
// items, so scripts can always iterate.
func writeList[T any](d *dataCmd, key string, items []T) int {
	if items == nil {
		items = []T{}
	}
	return d.writeJSON(map[string]any{key: items})
}

// currentUser is who runs the command: $USER, else the account's name.
func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	if u, err := user.Current(); err == nil {
		return u.Username
	}
	return ""
}

// keyValues is a repeatable flag of KEY=VALUE pairs.
type keyValues struct {
	what string // for messages: "tag", "type"
	m    map[string]string
	keys []string // in the order given
}

func (kv *keyValues) String() string {
	if kv == nil {
		return ""
	}
	parts := make([]string, len(kv.keys))
	for i, k := range kv.keys {
		parts[i] = k + "=" + kv.m[k]
	}
	return strings.Join(parts, ",")
}

func (kv *keyValues) Set(s string) error {
	k, v, ok := strings.Cut(s, "=")
	if !ok || strings.TrimSpace(k) == "" {
		return fmt.Errorf("invalid %s %q: want KEY=VALUE", kv.what, s)
	}
	if kv.m == nil {
		kv.m = map[string]string{}
	}
	if _, seen := kv.m[k]; !seen {
		kv.keys = append(kv.keys, k)
	}
	kv.m[k] = v
	return nil
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// progressLine shows the progress of a long operation on stderr: redrawn in
// place on a terminal, otherwise a line every few seconds once the
// operation has taken more than a second. It is safe for concurrent use.
type progressLine struct {
	w     io.Writer
	tty   bool
	quiet bool
	start time.Time

	mu    sync.Mutex
	last  time.Time
	shown bool
}

func newProgress(w io.Writer, quiet bool) *progressLine {
	return &progressLine{w: w, tty: isTerminal(w), quiet: quiet, start: time.Now()}
}

// update shows text unless the last update was too recent; final forces it.
func (p *progressLine) update(text string, final bool) {
	if p == nil || p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if p.tty {
		if !final && now.Sub(p.last) < 100*time.Millisecond {
			return
		}
		fmt.Fprintf(p.w, "\r\033[K%s", text)
		p.shown = true
	} else {
		if now.Sub(p.start) < time.Second || (!final && now.Sub(p.last) < 2*time.Second) {
			return
		}
		fmt.Fprintln(p.w, text)
	}
	p.last = now
}

// done ends the progress display (clears the line on a terminal).
func (p *progressLine) done() {
	if p == nil || p.quiet || !p.tty {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}

// formatCount writes n with thousands separators: 1234567 → 1,234,567.
func formatCount(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// formatBytes writes a size in decimal units: 4200000 → 4.2 MB.
func formatBytes(n int64) string {
	const unit = 1000
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 5; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	prec := 1
	if v >= 100 {
		prec = 0
	}
	return strconv.FormatFloat(v, 'f', prec, 64) + " " + string("kMGTPE"[exp]) + "B"
}

// plural returns "1 file" or "3 files".
func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return formatCount(n) + " " + many
}

// shortDigest abbreviates "sha256:<hex>" to its first 12 hex digits.
func shortDigest(d string) string {
	if hex, ok := strings.CutPrefix(d, "sha256:"); ok && len(hex) > 12 {
		return "sha256:" + hex[:12] + "…"
	}
	return d
}

// transferText describes a TransferProgress for the progress line.
func transferText(verb string, p client.TransferProgress) string {
	pct := 100.0
	if p.TotalBytes > 0 {
		pct = 100 * float64(p.Bytes) / float64(p.TotalBytes)
	}
	return fmt.Sprintf("%s %3.0f%%  %s / %s  %d/%d files", verb, pct, formatBytes(p.Bytes), formatBytes(p.TotalBytes), p.FilesDone, p.Files)
}
