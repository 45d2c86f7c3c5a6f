package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mloop/mloop/internal/httpapi"
	"github.com/mloop/mloop/internal/monitor"
)

const feedbackUsage = `Usage: mloop feedback push FILE [flags]

Sends ground-truth labels to the server, which joins them by request id
with the predictions its deployments served (the X-Request-Id of each
answer; row i of a request of several rows is REQUEST_ID#i) and updates the
live quality of their windows and model versions. FILE ("-" reads stdin)
is either

  - CSV: request_id,label[,time] per line, with or without that header;
    label is the class index (0 or 1 for binary classifiers; true/false
    accepted) or the target value; time (RFC 3339) is when the truth was
    known, default now; or
  - NDJSON: one {"request_id": "…", "label": 1, "time": "…"} per line.

Labels go in batches of 10,000. The counts printed at the end say how many
were accepted, and how many named an unknown request (a wrong id, or one
older than the monitor keeps), a request already labelled (duplicate), came
after the horizon (late) or had a label the model's task cannot take
(invalid).
`

// feedbackBatch is how many labels one request carries.
const feedbackBatch = 10_000

// runFeedback runs `mloop feedback push FILE`.
func runFeedback(ctx context.Context, args []string, stdout, stderr io.Writer, stdin io.Reader) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, feedbackUsage)
		return exitUsage
	}
	switch args[0] {
	case "push":
	case "-h", "-help", "--help", "help":
		fmt.Fprint(stdout, feedbackUsage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "mloop feedback: unknown command %q\n\n%s", args[0], feedbackUsage)
		return exitUsage
	}
	d := &dataCmd{name: "mloop feedback push", stdout: stdout, stderr: stderr}
	fs := d.flags(feedbackUsage)
	format := fs.String("format", "", "force how FILE is read: csv or ndjson (default: from its extension, else its first byte)")
	quiet := fs.Bool("quiet", false, "no progress on stderr")
	pos, code, ok := d.parse(fs, args[1:], 1, 1)
	if !ok {
		return code
	}
	if *format != "" && *format != "csv" && *format != "ndjson" {
		return d.usageError("invalid --format %q: use csv or ndjson", *format)
	}
	name := pos[0]
	var r io.Reader = stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			if os.IsNotExist(err) {
				return d.usageError("file %s does not exist", name)
			}
			return d.usageError("open %s: %v", name, err)
		}
		defer f.Close()
		r = f
	} else if stdin == nil {
		return d.usageError("FILE -: no standard input")
	}
	br := bufio.NewReaderSize(r, 64<<10)
	isCSV := *format == "csv"
	if *format == "" {
		switch strings.ToLower(filepath.Ext(name)) {
		case ".csv":
			isCSV = true
		case ".ndjson", ".jsonl", ".json":
		default:
			head, _ := br.Peek(512)
			t := bytes.TrimLeft(head, " \t\r\n\ufeff")
			isCSV = len(t) == 0 || t[0] != '{'
		}
	}
	prog := newProgress(d.stderr, *quiet || d.json)
	var total monitor.FeedbackResult
	var sent int64
	send := func(labels []monitor.Label) error {
		res, err := d.client.PushFeedback(ctx, labels)
		if err != nil {
			return err
		}
		total.Accepted += res.Accepted
		total.Unknown += res.Unknown
		total.Duplicate += res.Duplicate
		total.Late += res.Late
		total.Invalid += res.Invalid
		sent += int64(len(labels))
		prog.update(fmt.Sprintf("sent %s labels, %s accepted", formatCount(sent), formatCount(total.Accepted)), false)
		return nil
	}
	err := readFeedback(br, isCSV, feedbackBatch, send)
	prog.done()
	if err != nil {
		var pe *feedbackParseError
		if errors.As(err, &pe) {
			fmt.Fprintf(d.stderr, "%s: %s: %v\n", d.name, name, err)
			if sent > 0 {
				fmt.Fprintf(d.stderr, "  the %s labels before it were sent (%s accepted); fix the line and push the rest\n",
					formatCount(sent), formatCount(total.Accepted))
			}
			return exitFailure
		}
		if sent > 0 {
			fmt.Fprintf(d.stderr, "%s: %s labels were sent (%s accepted) before the failure\n", d.name, formatCount(sent), formatCount(total.Accepted))
		}
		return d.fail(err)
	}
	if d.json {
		return d.writeJSON(total)
	}
	fmt.Fprintf(d.stdout, "%s labels: %s accepted, %s unknown, %s duplicate, %s late, %s invalid\n",
		formatCount(sent), formatCount(total.Accepted), formatCount(total.Unknown), formatCount(total.Duplicate),
		formatCount(total.Late), formatCount(total.Invalid))
	if total.Unknown > 0 {
		fmt.Fprintln(d.stdout, "  unknown: the ids name no prediction the server tracks (check the X-Request-Id values; predictions older than twice the horizon are forgotten)")
	}
	return exitOK
}

// feedbackParseError is a line of a feedback file that could not be read.
type feedbackParseError struct {
	line int
	err  error
}

func (e *feedbackParseError) Error() string { return fmt.Sprintf("line %d: %v", e.line, e.err) }
func (e *feedbackParseError) Unwrap() error { return e.err }

// readFeedback reads labels from r (CSV when isCSV, else NDJSON) and
// calls send with each batch of at most batch labels, in order. A line
// that cannot be read stops it with a *feedbackParseError naming the line
// (the batches before were sent); an error of send stops it too.
func readFeedback(r io.Reader, isCSV bool, batch int, send func([]monitor.Label) error) error {
	buf := make([]monitor.Label, 0, batch)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		err := send(buf)
		buf = buf[:0]
		return err
	}
	add := func(l monitor.Label) error {
		buf = append(buf, l)
		if len(buf) == batch {
			return flush()
		}
		return nil
	}
	if isCSV {
		cr := csv.NewReader(r)
		cr.FieldsPerRecord = -1
		cr.ReuseRecord = true
		for first := true; ; first = false {
			rec, err := cr.Read()
			if err == io.EOF {
				break
			}
			if err != nil {
				var pe *csv.ParseError
				if errors.As(err, &pe) {
					return &feedbackParseError{pe.StartLine, pe.Err}
				}
				return fmt.Errorf("read: %w", err)
			}
			line, _ := cr.FieldPos(0)
			if first && len(rec) > 0 && strings.EqualFold(strings.TrimSpace(strings.TrimPrefix(rec[0], "\ufeff")), "request_id") {
				continue // the header
			}
			if len(rec) == 1 && strings.TrimSpace(rec[0]) == "" {
				continue
			}
			if len(rec) < 2 || len(rec) > 3 {
				return &feedbackParseError{line, fmt.Errorf("%d fields: want request_id,label[,time]", len(rec))}
			}
			fl := httpapi.FeedbackLabel{RequestID: strings.TrimSpace(rec[0]), Label: csvLabel(rec[1])}
			if len(rec) == 3 {
				fl.Time = strings.TrimSpace(rec[2])
			}
			l, err := httpapi.ParseFeedbackLabel(fl)
			if err != nil {
				return &feedbackParseError{line, err}
			}
			if err := add(l); err != nil {
				return err
			}
		}
		return flush()
	}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; sc.Scan(); line++ {
		b := bytes.TrimSpace(sc.Bytes())
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\ufeff"))
		}
		if len(b) == 0 {
			continue
		}
		var fl httpapi.FeedbackLabel
		if err := json.Unmarshal(b, &fl); err != nil {
			return &feedbackParseError{line, fmt.Errorf("not a JSON object {\"request_id\": …, \"label\": …}: %v", err)}
		}
		l, err := httpapi.ParseFeedbackLabel(fl)
		if err != nil {
			return &feedbackParseError{line, err}
		}
		if err := add(l); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("a line is longer than 1 MiB: is this NDJSON, one label per line?")
		}
		return fmt.Errorf("read: %w", err)
	}
	return flush()
}

// csvLabel turns a CSV label cell into the JSON that ParseFeedbackLabel
// reads: a number or a boolean as it is, anything else as a string (which
// it refuses, naming it).
func csvLabel(s string) json.RawMessage {
	s = strings.TrimSpace(s)
	switch strings.ToLower(s) {
	case "true":
		return json.RawMessage("true")
	case "false":
		return json.RawMessage("false")
	case "":
		return nil
	}
	if v, err := strconv.ParseFloat(s, 64); err == nil {
		return strconv.AppendFloat(nil, v, 'g', -1, 64)
	}
	return strconv.AppendQuote(nil, s)
}
