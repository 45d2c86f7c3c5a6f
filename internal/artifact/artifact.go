// Package artifact stores artifacts — the files of runs, models and datasets —
// in a blob bucket through gocloud.dev/blob: a local folder by default, any
// S3-compatible store when users outgrow one machine, and memory for tests.
//
// Keys are '/'-separated paths relative to the store's root. Every method
// normalises its key with CleanPath first, so a key taken from a client can
// never leave the root; a rejected key is an mloop.EINVALID error. Folders do
// not exist on their own: a folder is the common prefix of the keys under it,
// as in S3. Data streams through: Put copies its reader into the bucket and
// Get returns a reader, so no artifact is ever held whole in memory here.
//
// The package also knows MLflow's conventions around artifacts: the
// mlflow-artifacts:/ URI scheme (KeyFromURI) and the media types MLflow
// serves artifacts with (ContentType).
package artifact

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/blob/fileblob"
	"gocloud.dev/blob/memblob"
	"gocloud.dev/blob/s3blob"
	"gocloud.dev/gcerrors"

	"github.com/mloop/mloop"
)

// Store is an artifact store over one blob bucket. It is safe for concurrent
// use. Open it with Open and release it with Close.
type Store struct {
	bucket *blob.Bucket
	// dir is the local folder of a file store ("" for other stores); Delete
	// removes the folders it leaves empty there.
	dir string
}

// Open opens the artifact store at rawURL:
//
//   - a plain path ("./mlruns", "/var/lib/mloop/artifacts") or a file:// URL
//     ("file:///var/lib/mloop/artifacts") is a local folder, created if
//     missing;
//   - "s3://bucket/prefix?endpoint=http://127.0.0.1:9000&region=us-east-1"
//     is a bucket of any S3-compatible store, optionally under a key prefix.
//     The query takes gocloud's s3blob parameters (endpoint, region,
//     use_path_style, hostname_immutable, disable_https, profile, ...);
//     credentials come from the standard AWS environment variables
//     (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY) or AWS config files;
//   - "mem://" is an empty store in memory, for tests.
//
// Open does not contact S3: a missing bucket or wrong credentials surface on
// first use. A malformed URL or an unknown scheme is an mloop.EINVALID error.
func Open(ctx context.Context, rawURL string) (*Store, error) {
	switch {
	case rawURL == "":
		return nil, mloop.Errorf(mloop.EINVALID, "The artifact store location is empty: give a folder, a file://, s3:// or mem:// URL.")
	case strings.HasPrefix(rawURL, "file:"):
		u, err := url.Parse(rawURL)
		if err != nil {
			return nil, mloop.Errorf(mloop.EINVALID, "Invalid artifact store URL %q: %v.", rawURL, err)
		}
		if u.Host != "" && u.Host != "localhost" {
			return nil, mloop.Errorf(mloop.EINVALID, "Invalid artifact store URL %q: a file URL names a local folder, not host %q.", rawURL, u.Host)
		}
		dir := u.Path
		if u.Opaque != "" {
			dir = u.Opaque // "file:relative/dir"
		}
		return openDir(dir)
	case !strings.Contains(rawURL, "://"):
		return openDir(rawURL)
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid artifact store URL %q: %v.", rawURL, err)
	}
	switch u.Scheme {
	case "mem":
		return &Store{bucket: memblob.OpenBucket(nil)}, nil
	case "s3":
		return openS3(ctx, u)
	}
	return nil, mloop.Errorf(mloop.EINVALID, "Unsupported artifact store URL %q: want a folder, or a file://, s3:// or mem:// URL.", u.Redacted())
}

// openDir opens (and creates) a local folder as a store. Files are written to
// a temporary file next to their final name and renamed into place, so a
// reader never sees half an artifact and the data folder may live on any
// mount (the temporary file, "<name>.<hex nanoseconds>.tmp", is listed while its
// upload runs). No metadata side files are written, so the folder holds
// exactly the artifacts.
func openDir(dir string) (*Store, error) {
	if dir == "" {
		return nil, mloop.Errorf(mloop.EINVALID, "The artifact store folder is empty.")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("artifact: resolve folder %q: %w", dir, err)
	}
	b, err := fileblob.OpenBucket(abs, &fileblob.Options{
		CreateDir: true,
		NoTempDir: true,
		Metadata:  fileblob.MetadataDontWrite,
	})
	if err != nil {
		return nil, fmt.Errorf("artifact: open folder %q: %w", abs, err)
	}
	return &Store{bucket: b, dir: abs}, nil
}

// openS3 opens an S3 bucket; the URL's path, if any, is a key prefix.
func openS3(ctx context.Context, u *url.URL) (*Store, error) {
	if u.Host == "" {
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid artifact store URL %q: it names no bucket.", u.Redacted())
	}
	prefix, err := CleanPath(strings.Trim(u.Path, "/"))
	if err != nil {
		return nil, fmt.Errorf("artifact store URL prefix: %w", err)
	}
	bu := *u
	bu.Path, bu.RawPath = "", ""
	b, err := (&s3blob.URLOpener{}).OpenBucketURL(ctx, &bu)
	if err != nil {
		return nil, mloop.Errorf(mloop.EINVALID, "Invalid artifact store URL %q: %v.", u.Redacted(), err)
	}
	if prefix != "" {
		b = blob.PrefixedBucket(b, prefix+"/")
	}
	return &Store{bucket: b}, nil
}

// KeyOf returns the key in s of the artifact (or folder) that the artifact
// URI uri names. Besides what KeyFromURI maps (mlflow-artifacts:/ URIs and
// http(s) URIs of the proxied artifact API), a local store also maps the
// local paths and file: URIs (see LocalPath) that lie inside its folder, such
// as the artifact URIs of runs under a --default-artifact-root of
// file:///<the store's folder>. Any other URI, including a local path outside
// the folder, names storage this server does not serve: the error is of kind
// mloop.ENOTIMPLEMENTED.
func (s *Store) KeyOf(uri string) (string, error) {
	p, local := LocalPath(uri)
	if !local {
		return KeyFromURI(uri)
	}
	if s.dir != "" {
		if rel, err := filepath.Rel(s.dir, p); err == nil && filepath.IsLocal(rel) {
			return CleanPath(filepath.ToSlash(rel))
		}
	}
	return "", mloop.Errorf(mloop.ENOTIMPLEMENTED, "Artifact URI %q is not in this server's artifact store, so this server cannot serve it.", uri)
}

// Close releases the store's resources.
func (s *Store) Close() error {
	if err := s.bucket.Close(); err != nil {
		return fmt.Errorf("artifact: close store: %w", err)
	}
	return nil
}

// Object is an artifact opened for reading by Get. Read it, then Close it.
type Object struct {
	io.ReadCloser
	// Size is the artifact's length in bytes.
	Size int64
	// ContentType is the media type the store recorded for the artifact
	// (application/octet-stream when it recorded none).
	ContentType string
	// ModTime is when the artifact was last written.
	ModTime time.Time
}

// Entry is one child of a folder, as returned by List.
type Entry struct {
	// Path is the child's key relative to the store's root, such as
	// "1/5f2c/artifacts/model/MLmodel".
	Path string
	// Name is the last segment of Path.
	Name string
	// IsDir reports whether the child is a folder (a prefix of other keys).
	IsDir bool
	// Size is a file's length in bytes; 0 for folders.
	Size int64
}

// fileKey cleans a key that must name a file or folder, not the root.
func fileKey(k string) (string, error) {
	c, err := CleanPath(k)
	if err != nil {
		return "", err
	}
	if c == "" {
		return "", mloop.Errorf(mloop.EINVALID, "Invalid artifact path %q: it names the root, not an artifact.", k)
	}
	return c, nil
}

// Put writes the artifact at key with everything r yields, replacing any
// artifact already there. The data streams into the bucket in chunks. If r
// fails or ctx ends before r is exhausted, nothing is written: the artifact
// at key keeps its old content, or stays missing.
func (s *Store) Put(ctx context.Context, k string, r io.Reader) error {
	k, err := fileKey(k)
	if err != nil {
		return err
	}
	// Cancelling the writer's context before Close discards the upload.
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	w, err := s.bucket.NewWriter(wctx, k, &blob.WriterOptions{ContentType: ContentType(k)})
	if err != nil {
		return s.wrap(err, "put", k)
	}
	if _, err := io.Copy(w, r); err != nil {
		cancel()
		_ = w.Close()
		return s.wrap(err, "put", k)
	}
	if err := w.Close(); err != nil {
		return s.wrap(err, "put", k)
	}
	return nil
}

// Get opens the artifact at key for reading. A missing artifact (or a key
// that names a folder) is an mloop.ENOTFOUND error.
func (s *Store) Get(ctx context.Context, k string) (*Object, error) {
	k, err := fileKey(k)
	if err != nil {
		return nil, err
	}
	r, err := s.bucket.NewReader(ctx, k, nil)
	if err != nil {
		return nil, s.wrap(err, "get", k)
	}
	return &Object{ReadCloser: r, Size: r.Size(), ContentType: r.ContentType(), ModTime: r.ModTime()}, nil
}

// Exists reports whether an artifact (a file, not a folder) exists at key.
func (s *Store) Exists(ctx context.Context, k string) (bool, error) {
	k, err := fileKey(k)
	if err != nil {
		return false, err
	}
	ok, err := s.bucket.Exists(ctx, k)
	if err != nil {
		return false, s.wrap(err, "check", k)
	}
	return ok, nil
}

// List returns the immediate children of the folder dir ("" for the root):
// its files with their sizes and its sub-folders, sorted by path. A folder
// with nothing under it, or a dir that names a file, has no children: the
// result is empty, not an error.
func (s *Store) List(ctx context.Context, dir string) ([]Entry, error) {
	dir, err := CleanPath(dir)
	if err != nil {
		return nil, err
	}
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	entries := []Entry{}
	it := s.bucket.List(&blob.ListOptions{Prefix: prefix, Delimiter: "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return nil, s.wrap(err, "list", dir)
		}
		p := strings.TrimSuffix(obj.Key, "/")
		name := strings.TrimPrefix(p, prefix)
		// Skip folder marker objects ("dir/") and the empty segments of
		// keys written by other tools ("dir//x"): they name no child.
		if name == "" {
			continue
		}
		e := Entry{Path: p, Name: name, IsDir: obj.IsDir}
		if !obj.IsDir {
			e.Size = obj.Size
		}
		entries = append(entries, e)
	}
	sort.Slice(entries, func(i, j int) bool { return entries[i].Path < entries[j].Path })
	return entries, nil
}

// Delete deletes the artifact at key, or, when key names a folder, the
// folder and everything under it. Nothing at key is an mloop.ENOTFOUND error.
func (s *Store) Delete(ctx context.Context, k string) error {
	k, err := fileKey(k)
	if err != nil {
		return err
	}
	// Check first: a local store cannot "delete" a key that is a folder.
	deleted, err := s.bucket.Exists(ctx, k)
	if err != nil {
		return s.wrap(err, "delete", k)
	}
	if deleted {
		if err := s.bucket.Delete(ctx, k); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return s.wrap(err, "delete", k)
		}
	}
	it := s.bucket.List(&blob.ListOptions{Prefix: k + "/"})
	for {
		obj, err := it.Next(ctx)
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return s.wrap(err, "delete", k)
		}
		if err := s.bucket.Delete(ctx, obj.Key); err != nil && gcerrors.Code(err) != gcerrors.NotFound {
			return s.wrap(err, "delete", obj.Key)
		}
		deleted = true
	}
	if s.dir != "" {
		s.pruneDirs(k)
	}
	if !deleted {
		return mloop.Errorf(mloop.ENOTFOUND, "No artifact exists at path %q.", k)
	}
	return nil
}

// pruneDirs removes, in a local folder, the directory of key and its parents
// once they are empty, so that a deleted folder disappears from disk and its
// name can hold a file again. Directories that are not empty stay, so this is
// safe against concurrent writers; failures are therefore ignored.
func (s *Store) pruneDirs(k string) {
	root := filepath.Clean(s.dir)
	top := filepath.Join(root, filepath.FromSlash(k))
	// Remove the empty directories under top, deepest first.
	var dirs []string
	_ = filepath.WalkDir(top, func(p string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		_ = os.Remove(dirs[i])
	}
	for d := filepath.Dir(top); d != root && strings.HasPrefix(d, root+string(filepath.Separator)); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			return
		}
	}
}

// wrap translates a bucket error: not found becomes an mloop.ENOTFOUND
// error naming the key, a cancelled context stays recognisable with
// errors.Is, anything else is wrapped with the operation and key.
func (s *Store) wrap(err error, op, k string) error {
	if gcerrors.Code(err) == gcerrors.NotFound {
		return mloop.Errorf(mloop.ENOTFOUND, "No artifact exists at path %q.", k)
	}
	return fmt.Errorf("artifact: %s %q: %w", op, k, err)
}

// Check reports whether the store can be reached: for S3, that the bucket
// exists and the credentials may use it. The error is EUNAVAILABLE and says
// what to check.
func (s *Store) Check(ctx context.Context) error {
	ok, err := s.bucket.IsAccessible(ctx)
	switch {
	case err != nil:
		return mloop.Errorf(mloop.EUNAVAILABLE, "The artifact store cannot be reached: %v. Check the endpoint and the AWS_* credentials.", err)
	case !ok:
		return mloop.Errorf(mloop.EUNAVAILABLE, "The artifact store's bucket does not exist or these credentials may not use it: create the bucket or fix the AWS_* credentials.")
	}
	return nil
}
