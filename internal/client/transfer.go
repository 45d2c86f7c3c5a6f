package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/dataset"
	"golang.org/x/sync/errgroup"
)

// DefaultTransfers is how many blobs Push, Pull and BlobCache move at once.
const DefaultTransfers = 3

// TransferProgress reports how far an upload or a download is. Bytes and
// TotalBytes count only what is actually transferred: blobs the server (on
// push) or the destination (on pull) already holds are not part of them.
type TransferProgress struct {
	File       string // the file the report is about (slash separated)
	Bytes      int64  // bytes moved so far
	TotalBytes int64  // bytes to move
	FilesDone  int    // files moved
	Files      int    // files to move
}

// PushOptions adjust Push.
type PushOptions struct {
	// Tags are the version's tags.
	Tags map[string]string
	// User is who pushes (the server records it as given).
	User string
	// Source is where the data came from; "" means the scan's root folder.
	Source string
	// Transfers is how many blobs are uploaded at once; 0 means DefaultTransfers.
	Transfers int
	// Progress, when set, is called (one call at a time) as bytes are sent.
	Progress func(TransferProgress)
}

// PushResult is what Push did.
type PushResult struct {
	// Version is the version the data now has: new, or the existing
	// version with the same manifest digest.
	Version *dataset.Version
	// Created is false when a version with the same content already existed.
	Created bool
	// UploadedFiles and UploadedBytes count the blobs that were sent; files
	// whose bytes the server already held are not sent again.
	UploadedFiles int
	UploadedBytes int64
}

// Push makes the scanned data a version of dataset name: it asks the server
// which blobs it lacks, uploads only those (a few at a time, streaming each
// file from disk) and then commits the version. Pushing content identical to
// an existing version uploads nothing and returns that version with Created
// false. Nothing is visible until the commit, so a failed or cancelled push
// leaves no version behind (uploaded blobs stay, unreferenced, for the next
// attempt to reuse).
//
// A file that changed since the scan is caught by the server's hash check
// (an EINVALID error naming the file) and nothing is committed.
func (c *Client) Push(ctx context.Context, name string, scan *dataset.Scan, opts PushOptions) (*PushResult, error) {
	if scan == nil || len(scan.Files) == 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "push %s: nothing to push", name)
	}
	// One upload per distinct blob: two files with the same bytes share it.
	first := map[string]dataset.File{}
	var digests []string
	for _, f := range scan.Files {
		if _, ok := first[f.SHA256]; !ok {
			first[f.SHA256] = f
			digests = append(digests, f.SHA256)
		}
	}
	missing, err := c.MissingBlobs(ctx, digests)
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", name, err)
	}
	var uploads []dataset.File
	var total int64
	for _, d := range missing {
		f, ok := first[d]
		if !ok {
			return nil, fmt.Errorf("push %s: the server reports blob %s missing, which was not asked about", name, short(d))
		}
		uploads = append(uploads, f)
		total += f.Size
	}
	res := &PushResult{}
	pr := newReporter(opts.Progress, total, len(uploads))
	err = forEach(ctx, len(uploads), opts.Transfers, func(ctx context.Context, i int) error {
		f := uploads[i]
		if err := c.uploadFile(ctx, scan.LocalPath(f), f, pr); err != nil {
			return fmt.Errorf("push %s: %w", name, err)
		}
		pr.fileDone(f.Path)
		return nil
	})
	if err != nil {
		return nil, err
	}
	res.UploadedFiles, res.UploadedBytes = len(uploads), total

	source := opts.Source
	if source == "" {
		source = scan.Root
	}
	res.Version, res.Created, err = c.CreateVersion(ctx, name, dataset.CreateRequest{
		Files: scan.Files, Profile: scan.Profile, Source: source, User: opts.User, Tags: opts.Tags,
	})
	if err != nil {
		return nil, fmt.Errorf("push %s: %w", name, err)
	}
	return res, nil
}

// uploadFile streams the file at local as the blob of f.
func (c *Client) uploadFile(ctx context.Context, local string, f dataset.File, pr *reporter) error {
	fh, err := os.Open(local)
	if err != nil {
		return fmt.Errorf("upload %s: %w", f.Path, err)
	}
	defer fh.Close()
	st, err := fh.Stat()
	if err != nil {
		return fmt.Errorf("upload %s: %w", f.Path, err)
	}
	if st.Size() != f.Size {
		return mloop.Errorf(mloop.ECONFLICT, "upload %s: the file changed since it was scanned (%d bytes, now %d): push again", f.Path, f.Size, st.Size())
	}
	var body io.Reader = fh
	if pr.active() {
		body = &countingReader{r: fh, fn: func(n int64) { pr.add(f.Path, n) }}
	}
	if _, err := c.PutBlob(ctx, f.SHA256, body, f.Size); err != nil {
		if mloop.ErrorCode(err) == mloop.EINVALID {
			return fmt.Errorf("upload %s: %w (did the file change since it was scanned? push again)", f.Path, err)
		}
		return fmt.Errorf("upload %s: %w", f.Path, err)
	}
	return nil
}

// PullStats is what Pull did.
type PullStats struct {
	// DownloadedFiles and DownloadedBytes count the files fetched.
	DownloadedFiles int
	DownloadedBytes int64
	// SkippedFiles were already at the destination with the right hash.
	SkippedFiles int
}

// Pull writes every file of v below dest (dest/<path>), creating folders as
// needed. Each file is downloaded into a temporary file in its destination
// folder, checked against its SHA-256 and size, and only then renamed into
// place, so dest never holds a partial or corrupt file under a version's
// name. Files already present with the right hash are left alone.
// progress, when non-nil, reports the bytes downloaded.
func (c *Client) Pull(ctx context.Context, v *dataset.Version, dest string, progress func(TransferProgress)) (PullStats, error) {
	var st PullStats
	type job struct {
		f    dataset.File
		path string
	}
	var jobs []job
	var total int64
	for _, f := range v.Files {
		p, err := localPath(dest, f)
		if err != nil {
			return st, fmt.Errorf("pull %s: %w", v.Ref(), err)
		}
		ok, err := hasFile(ctx, p, f)
		if err != nil {
			return st, fmt.Errorf("pull %s: %w", v.Ref(), err)
		}
		if ok {
			st.SkippedFiles++
			continue
		}
		jobs = append(jobs, job{f, p})
		total += f.Size
	}
	pr := newReporter(progress, total, len(jobs))
	err := forEach(ctx, len(jobs), DefaultTransfers, func(ctx context.Context, i int) error {
		j := jobs[i]
		if err := c.download(ctx, j.f, j.path, pr); err != nil {
			return fmt.Errorf("pull %s: %w", v.Ref(), err)
		}
		pr.fileDone(j.f.Path)
		return nil
	})
	if err != nil {
		return st, err
	}
	st.DownloadedFiles, st.DownloadedBytes = len(jobs), total
	return st, nil
}

// localPath returns where f goes below dest, refusing paths that would leave
// it (the manifest comes from the server and is not trusted with the disk).
func localPath(dest string, f dataset.File) (string, error) {
	rel := filepath.FromSlash(f.Path)
	if !cleanRelPath(f.Path) || !filepath.IsLocal(rel) {
		return "", mloop.Errorf(mloop.EINVALID, "file path %q is not a clean relative path inside the destination folder", f.Path)
	}
	if !isSHA256Hex(f.SHA256) {
		return "", mloop.Errorf(mloop.EINVALID, "file %q: invalid sha256 %q", f.Path, f.SHA256)
	}
	return filepath.Join(dest, rel), nil
}

// cleanRelPath reports whether p is a relative slash-separated path whose
// every segment names something: no empty, "." or ".." segment, no
// backslash (a separator elsewhere) and no NUL.
func cleanRelPath(p string) bool {
	if p == "" || strings.ContainsAny(p, "\\\x00") {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// hasFile reports whether path holds exactly the bytes of f.
func hasFile(ctx context.Context, path string, f dataset.File) (bool, error) {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	} else if err != nil {
		return false, err
	}
	if !st.Mode().IsRegular() {
		return false, fmt.Errorf("%s exists and is not a regular file", path)
	}
	if st.Size() != f.Size {
		return false, nil
	}
	sum, _, err := dataset.HashFile(ctx, path, nil)
	if err != nil {
		return false, fmt.Errorf("hash %s: %w", path, err)
	}
	return sum == f.SHA256, nil
}

// download fetches f's blob into path atomically: a temporary file in the
// same folder, checked, then renamed.
func (c *Client) download(ctx context.Context, f dataset.File, path string, pr *reporter) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("download %s: %w", f.Path, err)
	}
	body, _, err := c.GetBlob(ctx, f.SHA256)
	if err != nil {
		return fmt.Errorf("download %s: %w", f.Path, err)
	}
	defer body.Close()
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*.part")
	if err != nil {
		return fmt.Errorf("download %s: %w", f.Path, err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	h := sha256.New()
	var src io.Reader = body
	if pr.active() {
		src = &countingReader{r: body, fn: func(n int64) { pr.add(f.Path, n) }}
	}
	// Read no more than one byte past the expected size: a longer answer is
	// wrong whatever it holds, and must not fill the disk.
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(src, f.Size+1))
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			err = ctxErr
		}
		return fmt.Errorf("download %s: %w", f.Path, err)
	}
	if n != f.Size {
		return mloop.Errorf(mloop.EINTERNAL, "download %s: got %d bytes, want %d", f.Path, n, f.Size)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != f.SHA256 {
		return mloop.Errorf(mloop.EINTERNAL, "download %s: got bytes with sha256 %s, want %s", f.Path, short(got), short(f.SHA256))
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("download %s: %w", f.Path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("download %s: %w", f.Path, err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return fmt.Errorf("download %s: %w", f.Path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("download %s: %w", f.Path, err)
	}
	return nil
}

// BlobCache keeps verified local copies of blobs so that commands needing a
// version's bytes (validation, exact drift) download each blob once. A blob
// lives at Dir/sha256/<first two hex digits>/<hex>/<file name>: keeping the
// file's name keeps its extension (which says how to read it) and makes
// errors of readers name something recognisable. Entries are written
// atomically after their hash is checked, so an entry of the right size is
// trusted without hashing it again.
type BlobCache struct {
	// Dir is the cache folder.
	Dir string
	// Client fetches missing blobs.
	Client *Client
}

// DefaultCacheDir returns the default cache folder: $XDG_CACHE_HOME/mloop/blobs,
// or ~/.cache/mloop/blobs when XDG_CACHE_HOME is unset.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("find the cache folder: %w (set MLOOP_CACHE)", err)
	}
	return filepath.Join(dir, "mloop", "blobs"), nil
}

// NewBlobCache returns a cache in dir fed by c.
func NewBlobCache(dir string, c *Client) *BlobCache { return &BlobCache{Dir: dir, Client: c} }

// Path returns where f's blob is (or would be) cached.
func (b *BlobCache) Path(f dataset.File) (string, error) {
	if !isSHA256Hex(f.SHA256) {
		return "", mloop.Errorf(mloop.EINVALID, "file %q: invalid sha256 %q", f.Path, f.SHA256)
	}
	base := pathBase(f.Path)
	if base == "" || base == "." || base == ".." {
		return "", mloop.Errorf(mloop.EINVALID, "file path %q has no file name", f.Path)
	}
	return filepath.Join(b.Dir, "sha256", f.SHA256[:2], f.SHA256, base), nil
}

// pathBase is the last element of a slash-separated path.
func pathBase(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		p = p[i+1:]
	}
	if strings.ContainsAny(p, `\`) {
		return ""
	}
	return p
}

// Materialize makes sure every file of v is in the cache and returns their
// local paths, in the order of v.Files. progress, when non-nil, reports the
// bytes downloaded.
func (b *BlobCache) Materialize(ctx context.Context, v *dataset.Version, progress func(TransferProgress)) ([]string, error) {
	paths := make([]string, len(v.Files))
	var todo []int
	var total int64
	for i, f := range v.Files {
		p, err := b.Path(f)
		if err != nil {
			return nil, fmt.Errorf("cache %s: %w", v.Ref(), err)
		}
		paths[i] = p
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Size() == f.Size {
			continue
		}
		todo = append(todo, i)
		total += f.Size
	}
	pr := newReporter(progress, total, len(todo))
	err := forEach(ctx, len(todo), DefaultTransfers, func(ctx context.Context, k int) error {
		f := v.Files[todo[k]]
		if err := b.Client.download(ctx, f, paths[todo[k]], pr); err != nil {
			return fmt.Errorf("cache %s: %w", v.Ref(), err)
		}
		pr.fileDone(f.Path)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return paths, nil
}

// forEach runs fn for 0..n-1, up to par at a time (DefaultTransfers when
// par <= 0). The first error cancels the others' context and is returned.
func forEach(ctx context.Context, n, par int, fn func(ctx context.Context, i int) error) error {
	if par <= 0 {
		par = DefaultTransfers
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(par)
	for i := range n {
		if gctx.Err() != nil {
			break
		}
		g.Go(func() error { return fn(gctx, i) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	return ctx.Err()
}

// reporter serialises progress reports of parallel transfers.
type reporter struct {
	fn    func(TransferProgress)
	total int64
	files int

	mu    sync.Mutex
	bytes int64
	done  int
}

func newReporter(fn func(TransferProgress), total int64, files int) *reporter {
	r := &reporter{fn: fn, total: total, files: files}
	if fn != nil {
		fn(TransferProgress{TotalBytes: total, Files: files})
	}
	return r
}

func (r *reporter) active() bool { return r.fn != nil }

func (r *reporter) add(file string, n int64) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bytes += n
	r.fn(TransferProgress{File: file, Bytes: r.bytes, TotalBytes: r.total, FilesDone: r.done, Files: r.files})
}

func (r *reporter) fileDone(file string) {
	if r.fn == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.done++
	r.fn(TransferProgress{File: file, Bytes: r.bytes, TotalBytes: r.total, FilesDone: r.done, Files: r.files})
}

// countingReader reports every read's size.
type countingReader struct {
	r  io.Reader
	fn func(n int64)
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if n > 0 {
		c.fn(int64(n))
	}
	return n, err
}
