package dataset

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"sync"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/artifact"
)

// BlobPrefix is the folder of the artifact store that holds the files of
// dataset versions, each stored once under the SHA-256 of its bytes.
const BlobPrefix = "datasets/blobs/sha256"

// BlobKey returns the artifact store key of the blob whose SHA-256 is hex (64
// lower-case hex digits, see ValidBlobDigest):
// datasets/blobs/sha256/<first 2 hex digits>/<hex>. The two-digit folders
// keep any one folder of a local store to a fraction of the blobs.
func BlobKey(hex string) string {
	return BlobPrefix + "/" + hex[:2] + "/" + hex
}

// Blobs is a content-addressed store of dataset files over an artifact
// store: a blob's key is derived from the SHA-256 of its bytes (BlobKey),
// and Put refuses bytes that do not hash to the name they are stored under,
// so a blob's name always tells its content. It is safe for concurrent use.
type Blobs struct {
	// Artifacts is the store the blobs live in.
	Artifacts *artifact.Store
	// Parallel bounds the concurrent checks of Missing and Sizes; 8 when 0.
	Parallel int
}

// NewBlobs returns a blob store over artifacts.
func NewBlobs(artifacts *artifact.Store) *Blobs {
	return &Blobs{Artifacts: artifacts, Parallel: 8}
}

// Put stores the bytes r yields as the blob hex, streaming them into the
// artifact store while hashing them. It reports whether the blob was created
// and its size. When a blob hex already exists, r is drained and discarded
// and nothing is rewritten (created is false). When the bytes do not hash to
// hex, nothing is stored, not even partly, and the error is an
// mloop.EINVALID error naming both digests; a reader that fails or a context
// that ends before r is exhausted also leaves nothing behind.
func (b *Blobs) Put(ctx context.Context, hex string, r io.Reader) (created bool, size int64, err error) {
	if err := ValidBlobDigest(hex); err != nil {
		return false, 0, err
	}
	key := BlobKey(hex)
	if size, err := b.Size(ctx, hex); err == nil {
		if _, err := io.Copy(io.Discard, r); err != nil {
			return false, 0, fmt.Errorf("blob %s: discard the body of an existing blob: %w", hex, err)
		}
		return false, size, nil
	} else if !mloop.IsNotFound(err) {
		return false, 0, err
	}
	hr := &hashingReader{r: r, h: sha256.New(), want: hex}
	if err := b.Artifacts.Put(ctx, key, hr); err != nil {
		return false, 0, fmt.Errorf("blob %s: %w", hex, err)
	}
	return true, hr.n, nil
}

// hashingReader hashes what it reads and, at the end of its input, fails
// with an mloop.EINVALID error instead of io.EOF when the bytes do not hash
// to want, so that the artifact store discards the upload.
type hashingReader struct {
	r    io.Reader
	h    hash.Hash
	n    int64
	want string
}

func (hr *hashingReader) Read(p []byte) (int, error) {
	n, err := hr.r.Read(p)
	hr.h.Write(p[:n])
	hr.n += int64(n)
	if errors.Is(err, io.EOF) {
		if got := hex.EncodeToString(hr.h.Sum(nil)); got != hr.want {
			return n, mloop.Errorf(mloop.EINVALID,
				"The uploaded bytes (%d) hash to sha256:%s, not to sha256:%s as the blob's name says: nothing was stored. Hash the file again and upload it unchanged.",
				hr.n, got, hr.want)
		}
	}
	return n, err
}

// Size returns the size of blob hex; a missing blob is an mloop.ENOTFOUND
// error.
func (b *Blobs) Size(ctx context.Context, hex string) (int64, error) {
	obj, err := b.Open(ctx, hex)
	if err != nil {
		return 0, err
	}
	obj.Close()
	return obj.Size, nil
}

// modTime returns when blob hex was written.
func (b *Blobs) modTime(ctx context.Context, hex string) (time.Time, error) {
	obj, err := b.Open(ctx, hex)
	if err != nil {
		return time.Time{}, err
	}
	obj.Close()
	return obj.ModTime, nil
}

// Open opens blob hex for reading; the caller closes it. A missing blob is
// an mloop.ENOTFOUND error.
func (b *Blobs) Open(ctx context.Context, hex string) (*artifact.Object, error) {
	if err := ValidBlobDigest(hex); err != nil {
		return nil, err
	}
	obj, err := b.Artifacts.Get(ctx, BlobKey(hex))
	if mloop.IsNotFound(err) {
		return nil, mloop.Errorf(mloop.ENOTFOUND, "No blob sha256:%s is stored.", hex)
	} else if err != nil {
		return nil, fmt.Errorf("open blob %s: %w", hex, err)
	}
	return obj, nil
}

// Missing returns the digests among hexes (each 64 lower-case hex digits)
// that name no stored blob, in the order given, each once. A malformed
// digest is an mloop.EINVALID error.
func (b *Blobs) Missing(ctx context.Context, hexes []string) ([]string, error) {
	uniq, err := uniqueDigests(hexes)
	if err != nil {
		return nil, err
	}
	missing := make([]bool, len(uniq))
	if err := b.each(len(uniq), func(i int) error {
		ok, err := b.Artifacts.Exists(ctx, BlobKey(uniq[i]))
		if err != nil {
			return fmt.Errorf("check blob %s: %w", uniq[i], err)
		}
		missing[i] = !ok
		return nil
	}); err != nil {
		return nil, err
	}
	out := []string{}
	for i, h := range uniq {
		if missing[i] {
			out = append(out, h)
		}
	}
	return out, nil
}

// Sizes returns the size of each stored blob among hexes; missing blobs
// have no entry. A malformed digest is an mloop.EINVALID error.
func (b *Blobs) Sizes(ctx context.Context, hexes []string) (map[string]int64, error) {
	uniq, err := uniqueDigests(hexes)
	if err != nil {
		return nil, err
	}
	sizes := make([]int64, len(uniq))
	if err := b.each(len(uniq), func(i int) error {
		n, err := b.Size(ctx, uniq[i])
		if mloop.IsNotFound(err) {
			n = -1
		} else if err != nil {
			return err
		}
		sizes[i] = n
		return nil
	}); err != nil {
		return nil, err
	}
	out := make(map[string]int64, len(uniq))
	for i, h := range uniq {
		if sizes[i] >= 0 {
			out[h] = sizes[i]
		}
	}
	return out, nil
}

// uniqueDigests validates hexes and returns them in order, each once.
func uniqueDigests(hexes []string) ([]string, error) {
	seen := make(map[string]bool, len(hexes))
	var uniq []string
	for _, h := range hexes {
		if err := ValidBlobDigest(h); err != nil {
			return nil, err
		}
		if !seen[h] {
			seen[h] = true
			uniq = append(uniq, h)
		}
	}
	return uniq, nil
}

// each calls fn(i) for i in [0, n) on up to b.Parallel goroutines (the
// store's round trips dominate, most of all on S3) and returns the error of
// the smallest i that failed.
func (b *Blobs) each(n int, fn func(i int) error) error {
	workers := b.Parallel
	if workers <= 0 {
		workers = 8
	}
	errs := make([]error, n)
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for i := range next {
				errs[i] = fn(i)
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// Walk calls fn with the digest and size of every stored blob. Objects
// under BlobPrefix that are not blobs (an upload's temporary file, say) are
// skipped.
func (b *Blobs) Walk(ctx context.Context, fn func(hex string, size int64) error) error {
	dirs, err := b.Artifacts.List(ctx, BlobPrefix)
	if err != nil {
		return fmt.Errorf("list blobs: %w", err)
	}
	for _, d := range dirs {
		if !d.IsDir || len(d.Name) != 2 {
			continue
		}
		files, err := b.Artifacts.List(ctx, d.Path)
		if err != nil {
			return fmt.Errorf("list blobs: %w", err)
		}
		for _, f := range files {
			if f.IsDir || ValidBlobDigest(f.Name) != nil || f.Name[:2] != d.Name {
				continue
			}
			if err := fn(f.Name, f.Size); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete deletes blob hex; a missing blob is an mloop.ENOTFOUND error.
func (b *Blobs) Delete(ctx context.Context, hex string) error {
	if err := ValidBlobDigest(hex); err != nil {
		return err
	}
	if err := b.Artifacts.Delete(ctx, BlobKey(hex)); err != nil {
		return fmt.Errorf("delete blob %s: %w", hex, err)
	}
	return nil
}
