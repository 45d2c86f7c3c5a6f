package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// DefaultBatchSize is the number of rows in a batch when
// ReadOptions.BatchSize is 0.
const DefaultBatchSize = 8192

// errClosed is returned by Next after Close.
var errClosed = errors.New("reader is closed")

// maxZstdWindow bounds the window a zstd stream may ask for, as the zstd
// command-line tool does by default (128 MiB): a hostile header cannot make
// the reader allocate more.
const maxZstdWindow = 128 << 20

// ReadOptions says how to read a data file. The zero value reads every
// column of a file whose format and compression its name tells.
type ReadOptions struct {
	// Format overrides the format DetectFormat finds from the file name.
	Format Format
	// Compression overrides the compression the file name tells. When
	// neither says, text files are still decompressed when they start with
	// the gzip or zstd magic number (bytes that are never valid UTF-8 text).
	Compression Compression
	// BatchSize is the maximum number of rows in a batch; 0 means
	// DefaultBatchSize. Text readers may end a batch early to bound its
	// memory when its rows are very long.
	BatchSize int
	// Columns projects the file onto these columns: the reader reads and
	// returns only them, in file order. Nil reads every column; a name the
	// file does not have is an *InputError.
	Columns []string
	// Name is the file name errors mention; OpenFile defaults it to the
	// path. Set it when the path is a temporary copy.
	Name string
}

// DetectFormat returns the format and compression a file name's extension
// tells: .csv, .tsv or .tab, .ndjson or .jsonl, .parquet or .pq; text
// formats may end in .gz, .zst or .zstd. Case does not matter. Any other
// name is an error that lists the supported extensions.
func DetectFormat(name string) (Format, Compression, error) {
	base := strings.ToLower(path.Base(strings.ReplaceAll(name, `\`, "/")))
	comp := CompressionNone
	switch ext := path.Ext(base); ext {
	case ".gz":
		comp = CompressionGzip
	case ".zst", ".zstd":
		comp = CompressionZstd
	}
	if comp != CompressionNone {
		base = strings.TrimSuffix(base, path.Ext(base))
	}
	var f Format
	switch path.Ext(base) {
	case ".csv":
		f = FormatCSV
	case ".tsv", ".tab":
		f = FormatTSV
	case ".ndjson", ".jsonl":
		f = FormatNDJSON
	case ".parquet", ".pq":
		if comp != CompressionNone {
			return "", "", fmt.Errorf("%s: a Parquet file cannot be compressed as a whole (Parquet compresses its pages itself)", name)
		}
		f = FormatParquet
	default:
		return "", "", fmt.Errorf("%s: unknown data file extension; supported: .csv, .tsv, .tab, .ndjson, .jsonl, .parquet, .pq, and .gz, .zst or .zstd after a text format", name)
	}
	return f, comp, nil
}

// OpenFile opens the data file at path for reading with opts; see
// NewReader. The Reader's Close closes the file.
func OpenFile(ctx context.Context, path string, opts ReadOptions) (Reader, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open data file: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("open data file: %w", err)
	}
	if st.IsDir() {
		f.Close()
		return nil, fmt.Errorf("open data file %s: is a directory", path)
	}
	if opts.Name == "" {
		opts.Name = path
	}
	if opts.Format == "" {
		// Detect from the path too, so that Name may be any label.
		if ff, c, err := DetectFormat(path); err == nil {
			opts.Format = ff
			if opts.Compression == CompressionNone {
				opts.Compression = c
			}
		}
	}
	r, err := newReader(ctx, opts.Name, f, st.Size(), opts, f.Close)
	if err != nil {
		f.Close()
		return nil, err
	}
	return r, nil
}

// NewReader returns a Reader of the data file r of the given size. name is
// the file's name in errors and, unless opts says, tells its format and
// compression (see DetectFormat). Text formats are read sequentially from
// the start; Parquet reads only the column chunks of the projected columns.
//
// Bad input is an *InputError naming the file, the line or row, and the
// column where that applies; an NDJSON file is read through once here to
// learn its columns and their types (see the NDJSON reader's rules), so
// its bad input may already show here.
func NewReader(name string, r io.ReaderAt, size int64, opts ReadOptions) (Reader, error) {
	if opts.Name == "" {
		opts.Name = name
	}
	return newReader(context.Background(), name, r, size, opts, nil)
}

func newReader(ctx context.Context, name string, r io.ReaderAt, size int64, opts ReadOptions, closeFile func() error) (Reader, error) {
	if opts.Name != "" {
		name = opts.Name
	}
	format, comp := opts.Format, opts.Compression
	if format == "" {
		f, c, err := DetectFormat(name)
		if err != nil {
			return nil, err
		}
		format = f
		if comp == CompressionNone {
			comp = c
		}
	}
	switch {
	case opts.BatchSize == 0:
		opts.BatchSize = DefaultBatchSize
	case opts.BatchSize < 0:
		return nil, fmt.Errorf("read %s: batch size %d is negative", name, opts.BatchSize)
	}
	switch comp {
	case CompressionNone, CompressionGzip, CompressionZstd:
	default:
		return nil, fmt.Errorf("read %s: unknown compression %q; supported: gzip, zstd", name, comp)
	}
	switch format {
	case FormatCSV, FormatTSV:
		delim := byte(',')
		if format == FormatTSV {
			delim = '\t'
		}
		open := func() (*textStream, error) { return openTextStream(name, r, size, comp) }
		return newCSVReader(name, open, delim, opts, closeFile)
	case FormatNDJSON:
		open := func() (*textStream, error) { return openTextStream(name, r, size, comp) }
		return newNDJSONReader(ctx, name, open, opts, closeFile)
	case FormatParquet:
		if comp != CompressionNone {
			return nil, fmt.Errorf("read %s: a Parquet file cannot be compressed as a whole", name)
		}
		return newParquetReader(name, r, size, opts, closeFile)
	}
	return nil, fmt.Errorf("read %s: unknown format %q; supported: csv, tsv, ndjson, parquet", name, format)
}

// textStream is the decompressed byte stream of a text file. Errors of the
// decompressor are *InputError (the stream is corrupt); errors of the file
// underneath pass through wrapped.
type textStream struct {
	name    string
	comp    Compression
	src     *errReader // the file's bytes
	r       io.Reader  // the decompressed bytes
	closeFn func()
	// size is the number of bytes the stream has when it is not
	// compressed, else -1.
	size int64
	// streamErr is the last error wrap made of a decompressor's error.
	streamErr *InputError
}

// errReader remembers the error its reader returned, so that a
// decompressor's error can be told from the file's.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

var (
	gzipMagic = []byte{0x1f, 0x8b}
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
)

// openTextStream opens a text file's byte stream from its start,
// decompressing it as comp says or, when comp is none, as its magic number
// says.
func openTextStream(name string, ra io.ReaderAt, size int64, comp Compression) (*textStream, error) {
	src := &errReader{r: io.NewSectionReader(ra, 0, size)}
	ts := &textStream{name: name, comp: comp, src: src, r: src, size: size}
	if comp == CompressionNone {
		var head [4]byte
		n, err := ra.ReadAt(head[:], 0)
		if err != nil && err != io.EOF {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		switch {
		case bytes.HasPrefix(head[:n], gzipMagic):
			comp = CompressionGzip
		case bytes.HasPrefix(head[:n], zstdMagic):
			comp = CompressionZstd
		}
		ts.comp = comp
	}
	if comp != CompressionNone {
		ts.size = -1
	}
	switch comp {
	case CompressionGzip:
		zr, err := gzip.NewReader(src)
		if err != nil {
			return nil, ts.wrap(err)
		}
		ts.r = zr
		ts.closeFn = func() { zr.Close() }
	case CompressionZstd:
		zr, err := zstd.NewReader(src, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(maxZstdWindow))
		if err != nil {
			return nil, ts.wrap(err)
		}
		ts.r = zr
		ts.closeFn = zr.Close
	}
	return ts, nil
}

// Read reads decompressed bytes; see wrap for its errors.
func (t *textStream) Read(p []byte) (int, error) {
	n, err := t.r.Read(p)
	if err != nil && err != io.EOF {
		return n, t.wrap(err)
	}
	return n, err
}

// wrap turns an error of the stream into an *InputError when the compressed
// data is at fault, else into an error naming the file.
func (t *textStream) wrap(err error) error {
	if t.comp == CompressionNone || t.src.err != nil {
		return fmt.Errorf("read %s: %w", t.name, err)
	}
	what := "corrupt"
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		what = "truncated"
	}
	t.streamErr = &InputError{File: t.name, Msg: fmt.Sprintf("%s %s stream: %v", what, t.comp, err)}
	return t.streamErr
}

// blame returns err, an error found in the decompressed data, or the
// stream's own error when the stream turns out to be corrupt: a damaged
// compressed stream may yield garbage before its checksum fails, and the
// garbage is not what the user must fix. It reads the rest of the stream
// to find out, so it is only for the error path.
func (t *textStream) blame(err error) error {
	var ie *InputError
	if t.comp == CompressionNone || !errors.As(err, &ie) || ie == t.streamErr {
		return err
	}
	_, cerr := io.Copy(io.Discard, t)
	var se *InputError
	if !errors.As(cerr, &se) {
		return err
	}
	se.Line, se.Row = ie.Line, ie.Row
	se.Msg += "; the data read before the damage was found already fails: " + ie.Msg
	return se
}

// Close releases the decompressor.
func (t *textStream) Close() {
	if t.closeFn != nil {
		t.closeFn()
		t.closeFn = nil
	}
}
