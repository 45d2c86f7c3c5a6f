package modelcheck

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"strings"

	"github.com/mloop/mloop"
)

// Limits bound what ExtractTar accepts.
type Limits struct {
	// MaxFiles is the largest number of regular files.
	MaxFiles int
	// MaxFileBytes is the largest size of one file.
	MaxFileBytes int64
	// MaxTotalBytes is the largest size of all files together.
	MaxTotalBytes int64
	// MaxPathLength is the longest entry name, in bytes.
	MaxPathLength int
}

// DefaultLimits are the limits of a model upload: 10,000 files of at most
// 2 GiB each and 4 GiB in all.
var DefaultLimits = Limits{MaxFiles: 10000, MaxFileBytes: 2 << 30, MaxTotalBytes: 4 << 30, MaxPathLength: 1024}

// ExtractTar unpacks the tar archive read from r into the existing, empty
// folder dir and returns the relative paths of the files it wrote, in
// archive order. It accepts only regular files and folders whose names are
// relative, clean ("a/b", optionally "./a/b"), without "..", backslashes,
// NUL or control characters, and unique; symbolic and hard links, devices
// and FIFOs are refused, as are archives beyond lim. Files are written
// through an os.Root on dir, so nothing can land outside it. A refused or
// malformed archive is EINVALID (ETOOLARGE beyond a limit) and leaves what
// was extracted so far in dir: the caller removes dir.
func ExtractTar(ctx context.Context, r io.Reader, dir string, lim Limits) ([]string, error) {
	root, err := openRoot(dir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	tr := tar.NewReader(r)
	var (
		files []string
		total int64
		seen  = map[string]bool{}
	)
	for {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, mloop.Errorf(mloop.EINVALID, "the model archive is not a valid tar archive: %v", err)
		}
		if h.Typeflag == tar.TypeXGlobalHeader {
			continue // PAX global metadata, no file
		}
		name, err := entryName(h.Name, lim)
		if err != nil {
			return nil, err
		}
		if name == "" && h.Typeflag == tar.TypeDir {
			continue // "./"
		}
		if seen[name] {
			return nil, mloop.Errorf(mloop.EINVALID, "the model archive holds %q twice", name)
		}
		seen[name] = true
		switch h.Typeflag {
		case tar.TypeDir:
			if err := root.MkdirAll(name, 0o755); err != nil {
				return nil, mloop.Errorf(mloop.EINVALID, "the model archive's folder %q cannot be created: %v", name, err)
			}
		case tar.TypeReg, tar.TypeRegA: //nolint:staticcheck // old archivers write TypeRegA
			if len(files) >= lim.MaxFiles {
				return nil, mloop.Errorf(mloop.ETOOLARGE, "the model archive holds more than %d files", lim.MaxFiles)
			}
			if h.Size < 0 || h.Size > lim.MaxFileBytes {
				return nil, mloop.Errorf(mloop.ETOOLARGE, "file %q of the model archive is larger than %d bytes", name, lim.MaxFileBytes)
			}
			if total += h.Size; total > lim.MaxTotalBytes {
				return nil, mloop.Errorf(mloop.ETOOLARGE, "the model archive's files hold more than %d bytes", lim.MaxTotalBytes)
			}
			if err := writeEntry(root, name, h.FileInfo().Mode(), tr, h.Size); err != nil {
				return nil, err
			}
			files = append(files, name)
		case tar.TypeSymlink, tar.TypeLink:
			return nil, mloop.Errorf(mloop.EINVALID, "the model archive holds a link (%q → %q): copy the file it points to instead", name, h.Linkname)
		default:
			return nil, mloop.Errorf(mloop.EINVALID, "the model archive holds %q of tar type %q: only regular files and folders are accepted", name, string(h.Typeflag))
		}
	}
	if len(files) == 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "the model archive holds no files")
	}
	return files, nil
}

// entryName checks the name of an archive entry and returns it cleaned of a
// leading "./" and a trailing "/".
func entryName(name string, lim Limits) (string, error) {
	bad := func(why string) error {
		return mloop.Errorf(mloop.EINVALID, "the model archive holds an entry named %q, which %s: only relative paths inside the model folder are accepted", name, why)
	}
	if len(name) > lim.MaxPathLength {
		return "", bad(fmt.Sprintf("is longer than %d bytes", lim.MaxPathLength))
	}
	for _, c := range name {
		if c < 0x20 || c == 0x7f || c == '\\' || c == ':' {
			return "", bad("holds a control character, a backslash or a colon")
		}
	}
	n := strings.TrimPrefix(name, "./")
	n = strings.TrimSuffix(n, "/")
	if n == "" || n == "." {
		return "", nil
	}
	if strings.HasPrefix(n, "/") {
		return "", bad("is absolute")
	}
	if path.Clean(n) != n || !fs.ValidPath(n) {
		return "", bad("is not a clean relative path (no \"..\", \".\" or empty segments)")
	}
	return n, nil
}
