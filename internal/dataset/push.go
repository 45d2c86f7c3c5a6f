package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"sync"
)

// ScanOptions tune ScanPath; the zero value scans with the default profile
// options, no progress reports, and fails on files it cannot read as data.
type ScanOptions struct {
	// Profile tunes the profiles computed while scanning.
	Profile ProfileOptions
	// Progress, when set, is called from the scanning goroutines (one call at
	// a time) as bytes are read; see ScanProgress.
	Progress func(ScanProgress)
	// SkipUnknown skips files whose name has no known data extension instead
	// of failing with an *UnknownFilesError.
	SkipUnknown bool
	// AllowEmpty accepts data with no rows at all (header-only files).
	AllowEmpty bool
	// Parallelism is how many files are scanned at once; 0 means GOMAXPROCS.
	Parallelism int
}

// ScanProgress reports how far a scan is. Bytes count what the parsers have
// read (hashing runs alongside and is faster); a file is done when both its
// hash and its profile are.
type ScanProgress struct {
	File       string // the file the report is about (relative, slash separated)
	Bytes      int64  // bytes read so far, over all files
	TotalBytes int64  // bytes of all files
	FilesDone  int    // files completely scanned
	Files      int    // files to scan
}

// Scan is what ScanPath learned about a file or a folder: the dataset
// version it would make, before anything is uploaded.
type Scan struct {
	// Root is the absolute path that was scanned, a file or a folder.
	Root string
	// Dir is the folder the files' paths are relative to: Root itself for a
	// folder, its parent for a single file.
	Dir string
	// Files are the data files sorted by path; paths are relative to Dir and
	// slash separated (a single file's path is its base name).
	Files []File
	// Profile is the merged profile of every file.
	Profile *Profile
	// Rows and Bytes are the totals over Files.
	Rows, Bytes int64
	// Digest is ManifestDigest(Files), the identity of the version.
	Digest string
}

// LocalPath returns the path on this machine of f, one of s.Files.
func (s *Scan) LocalPath(f File) string {
	return filepath.Join(s.Dir, filepath.FromSlash(f.Path))
}

// UnknownFilesError is returned by ScanPath when a folder holds files whose
// names do not say they are data (by extension), and SkipUnknown is unset.
type UnknownFilesError struct {
	Root  string
	Files []string // relative, slash separated, sorted
}

func (e *UnknownFilesError) Error() string {
	const show = 5
	list := e.Files
	more := ""
	if len(list) > show {
		more = fmt.Sprintf(" and %d more", len(list)-show)
		list = list[:show]
	}
	what := fmt.Sprintf("%d files are not data files", len(e.Files))
	if len(e.Files) == 1 {
		what = "1 file is not a data file"
	}
	return fmt.Sprintf("%s: %s (want .csv, .tsv, .ndjson, .jsonl or .parquet, text optionally .gz or .zst): %s%s",
		e.Root, what, strings.Join(list, ", "), more)
}

// ScanPath reads the data file or the folder of data files at path: for
// every file its SHA-256, size, format and profile, and for the whole the
// merged profile and the manifest digest. Folders are walked recursively;
// hidden files and folders (a name starting with ".") are skipped. Each file
// is read twice at the same time, by the hasher and by the parser (the second
// read comes from the page cache), and up to Parallelism files are scanned
// at once. Bad input is an error naming the file (an *InputError from the
// reader or profiler, wrapped); data without any row is an error unless
// opts.AllowEmpty.
func ScanPath(ctx context.Context, path string, opts ScanOptions) (*Scan, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("scan: %w", err)
	}
	s := &Scan{Root: abs}
	var todo []scanItem
	if st.IsDir() {
		s.Dir = abs
		if todo, err = listFolder(path, abs, opts.SkipUnknown); err != nil {
			return nil, err
		}
		if len(todo) == 0 {
			return nil, fmt.Errorf("%s: no data files (want .csv, .tsv, .ndjson, .jsonl or .parquet, text optionally .gz or .zst)", path)
		}
	} else {
		s.Dir = filepath.Dir(abs)
		if !st.Mode().IsRegular() {
			return nil, fmt.Errorf("%s: not a regular file or a folder", path)
		}
		format, comp, err := DetectFormat(abs)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		todo = []scanItem{{display: path, local: abs, file: File{
			Path: filepath.Base(abs), Size: st.Size(), Format: format, Compression: comp}}}
	}

	// Profiles are merged in path order, as soon as every file before them
	// is done, so that at most a few are held at once and the result does
	// not depend on which file finished first.
	merged := 0
	merge := func() error {
		for ; merged < len(todo) && todo[merged].profile != nil; merged++ {
			it := &todo[merged]
			if merged == 0 {
				s.Profile = it.profile
			} else if err := s.Profile.Merge(it.profile); err != nil {
				return fmt.Errorf("%s: %s does not fit the files before it: %w", path, it.display, err)
			}
			it.profile = nil
		}
		return nil
	}
	if err := scanFiles(ctx, todo, opts, merge); err != nil {
		return nil, err
	}
	s.Files = make([]File, len(todo))
	for i, it := range todo {
		s.Files[i] = it.file
		s.Rows += it.file.Rows
		s.Bytes += it.file.Size
	}
	if s.Rows == 0 && !opts.AllowEmpty {
		return nil, fmt.Errorf("%s: no data rows", path)
	}
	s.Digest = ManifestDigest(s.Files)
	return s, nil
}

// DataFiles returns the data files at path as ScanPath finds them: path
// itself when it is a file, else the data files below the folder (hidden
// ones skipped) sorted by relative path. Files without a data extension are
// an *UnknownFilesError unless skipUnknown.
func DataFiles(path string, skipUnknown bool) ([]string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		if _, _, err := DetectFormat(abs); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		return []string{path}, nil
	}
	items, err := listFolder(path, abs, skipUnknown)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("%s: no data files (want .csv, .tsv, .ndjson, .jsonl or .parquet, text optionally .gz or .zst)", path)
	}
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.local
	}
	return out, nil
}

// scanItem is one file to scan and, after scanning, what was learned.
type scanItem struct {
	display string // the path as the user would recognise it, for errors
	local   string // absolute path
	file    File
	profile *Profile
}

// listFolder walks root (given as path by the user) and returns its data files
// sorted by relative path.
func listFolder(path, root string, skipUnknown bool) ([]scanItem, error) {
	var items []scanItem
	var unknown []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == root {
			return nil
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			return nil
		}
		info, err := os.Stat(p) // follows a symbolic link to a file
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		rel = filepath.ToSlash(rel)
		if !info.Mode().IsRegular() {
			unknown = append(unknown, rel)
			return nil
		}
		format, comp, err := DetectFormat(p)
		if err != nil {
			unknown = append(unknown, rel)
			return nil
		}
		items = append(items, scanItem{display: filepath.Join(path, filepath.FromSlash(rel)), local: p,
			file: File{Path: rel, Size: info.Size(), Format: format, Compression: comp}})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scan %s: %w", path, err)
	}
	if len(unknown) > 0 && !skipUnknown {
		sort.Strings(unknown)
		return nil, &UnknownFilesError{Root: path, Files: unknown}
	}
	sort.Slice(items, func(i, j int) bool { return items[i].file.Path < items[j].file.Path })
	return items, nil
}

// scanFiles hashes and profiles every item, filling its File and profile,
// and calls done (one call at a time) after each item; an error from done
// stops the scan.
func scanFiles(ctx context.Context, items []scanItem, opts ScanOptions, done func() error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	workers := opts.Parallelism
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	workers = min(workers, len(items))

	var total int64
	for _, it := range items {
		total += it.file.Size
	}
	pr := &scanReporter{fn: opts.Progress, total: total, files: len(items)}

	next := make(chan int)
	errs := make([]error, len(items))
	var (
		wg      sync.WaitGroup
		doneMu  sync.Mutex
		doneErr error
	)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				prof, err := scanOne(ctx, &items[i], opts.Profile, pr)
				if err != nil {
					errs[i] = err
					cancel()
					continue
				}
				doneMu.Lock()
				items[i].profile = prof // done reads the profiles of other items
				if doneErr == nil {
					if doneErr = done(); doneErr != nil {
						cancel()
					}
				}
				doneMu.Unlock()
			}
		}()
	}
feed:
	for i := range items {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	// Report the first failing file in path order; a file cancelled because
	// another failed is not the cause.
	if doneErr != nil {
		return doneErr
	}
	var cancelled error
	for _, err := range errs {
		if err != nil && !errors.Is(err, context.Canceled) {
			return err
		} else if err != nil && cancelled == nil {
			cancelled = err
		}
	}
	if cancelled != nil {
		return cancelled
	}
	return ctx.Err()
}

// scanOne hashes it in a goroutine of its own while profiling it in this
// one; it fills it.file and returns the profile.
func scanOne(ctx context.Context, it *scanItem, popts ProfileOptions, pr *scanReporter) (*Profile, error) {
	type hashResult struct {
		sum  string
		size int64
		err  error
	}
	hashed := make(chan hashResult, 1)
	hctx, hcancel := context.WithCancel(ctx)
	defer hcancel()
	go func() {
		sum, size, err := HashFile(hctx, it.local, nil)
		hashed <- hashResult{sum, size, err}
	}()

	prof, perr := profileFile(ctx, it, popts, pr)
	if perr != nil {
		hcancel()
	}
	h := <-hashed
	if perr != nil {
		return nil, perr
	}
	if h.err != nil {
		return nil, fmt.Errorf("hash %s: %w", it.display, h.err)
	}
	if h.size != it.file.Size {
		return nil, fmt.Errorf("%s changed while it was being read (size %d, then %d)", it.display, it.file.Size, h.size)
	}
	it.file.SHA256 = h.sum
	it.file.Rows = prof.Rows
	pr.fileDone(it.file.Path, it.file.Size)
	return prof, nil
}

// profileFile reads the item with the reader of its format and profiles it,
// reporting the bytes the reader consumes as progress.
func profileFile(ctx context.Context, it *scanItem, popts ProfileOptions, pr *scanReporter) (*Profile, error) {
	f, err := os.Open(it.local)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", it.display, err)
	}
	defer f.Close()
	var ra io.ReaderAt = f
	if pr.fn != nil {
		ra = &progressReaderAt{r: f, size: it.file.Size, report: func(n int64) { pr.add(it.file.Path, n) }}
	}
	r, err := NewReader(it.display, ra, it.file.Size, ReadOptions{
		Format: it.file.Format, Compression: it.file.Compression, Name: it.display,
	})
	if err != nil {
		return nil, nameFile("read", it.display, err)
	}
	prof, err := ProfileReader(ctx, it.display, r, popts)
	if cerr := r.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("close %s: %w", it.display, cerr)
	}
	if err != nil {
		return nil, nameFile("profile", it.display, err)
	}
	return prof, nil
}

// nameFile wraps err with what was done to which file, unless err is an
// *InputError, which names the file (and line, and column) already.
func nameFile(op, file string, err error) error {
	var ie *InputError
	if errors.As(err, &ie) {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, file, err)
}

// progressReaderAt reports the bytes read through it, counting each byte of
// the file at most once in total (a Parquet reader may read its footer more
// than once).
type progressReaderAt struct {
	r      io.ReaderAt
	size   int64
	report func(n int64)

	mu   sync.Mutex
	seen int64
}

func (p *progressReaderAt) ReadAt(b []byte, off int64) (int, error) {
	n, err := p.r.ReadAt(b, off)
	if n > 0 {
		p.mu.Lock()
		add := min(int64(n), p.size-p.seen)
		p.seen += add
		p.mu.Unlock()
		if add > 0 {
			p.report(add)
		}
	}
	return n, err
}

// scanReporter serialises progress reports. Bytes count what the parsers
// have read (the slower of the two reads of each file); when a file is done
// its remaining bytes are counted, so the total ends at TotalBytes.
type scanReporter struct {
	fn    func(ScanProgress)
	total int64
	files int

	mu        sync.Mutex
	bytes     int64
	filesDone int
	perFile   map[string]int64
}

func (r *scanReporter) add(file string, n int64) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bytes += n
	if r.perFile == nil {
		r.perFile = map[string]int64{}
	}
	r.perFile[file] += n
	r.fn(ScanProgress{File: file, Bytes: r.bytes, TotalBytes: r.total, FilesDone: r.filesDone, Files: r.files})
}

func (r *scanReporter) fileDone(file string, size int64) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.filesDone++
	r.bytes += size - r.perFile[file]
	delete(r.perFile, file)
	r.fn(ScanProgress{File: file, Bytes: r.bytes, TotalBytes: r.total, FilesDone: r.filesDone, Files: r.files})
}

// hashBufferSize is the read size of HashFile: large enough that system calls
// cost nothing next to hashing.
const hashBufferSize = 1 << 20

var hashBuffers = sync.Pool{New: func() any { b := make([]byte, hashBufferSize); return &b }}

// HashFile returns the SHA-256 (lower-case hex) and the size of the file at
// path, reading it in 1 MiB chunks straight into the hash. progress, when
// non-nil, is called with the number of bytes of each chunk read.
func HashFile(ctx context.Context, path string, progress func(n int64)) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	return HashReader(ctx, f, progress)
}

// HashReader returns the SHA-256 (lower-case hex) of everything r yields and
// its length, as HashFile does for a file.
func HashReader(ctx context.Context, r io.Reader, progress func(n int64)) (string, int64, error) {
	bp := hashBuffers.Get().(*[]byte)
	defer hashBuffers.Put(bp)
	buf := *bp
	h := sha256.New()
	var size int64
	for {
		if err := ctx.Err(); err != nil {
			return "", size, err
		}
		n, err := r.Read(buf)
		if n > 0 {
			h.Write(buf[:n])
			size += int64(n)
			if progress != nil {
				progress(int64(n))
			}
		}
		if err == io.EOF {
			break
		} else if err != nil {
			return "", size, err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), size, nil
}
