package modelcheck

import (
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"time"

	"github.com/mloop/mloop"
)

// openRoot opens dir as an os.Root, so that no path below it can escape.
func openRoot(dir string) (*os.Root, error) {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("open extraction folder: %w", err)
	}
	return root, nil
}

// writeEntry writes size bytes of r to the new file name under root, with
// the executable bits of mode kept (a process model's scripts need them).
func writeEntry(root *os.Root, name string, mode fs.FileMode, r io.Reader, size int64) error {
	if dir := path.Dir(name); dir != "." {
		if err := root.MkdirAll(dir, 0o755); err != nil {
			return mloop.Errorf(mloop.EINVALID, "the model archive's file %q cannot be created: %v", name, err)
		}
	}
	perm := fs.FileMode(0o644)
	if mode&0o111 != 0 {
		perm = 0o755
	}
	f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm)
	if err != nil {
		return mloop.Errorf(mloop.EINVALID, "the model archive's file %q cannot be created: %v", name, err)
	}
	n, err := io.Copy(f, io.LimitReader(r, size))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return mloop.Errorf(mloop.EINVALID, "the model archive's file %q cannot be read or written: %v", name, err)
	}
	if n != size {
		return mloop.Errorf(mloop.EINVALID, "the model archive is truncated in file %q", name)
	}
	return nil
}

// nowMillis returns the current time in milliseconds since the epoch.
func nowMillis() int64 { return time.Now().UnixMilli() }
