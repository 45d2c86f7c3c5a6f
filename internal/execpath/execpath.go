// Package execpath finds the program of a command in a PATH given
// explicitly: that of a pipeline step or a model server, whose environment
// is built for it, rather than the server's own (which exec.LookPath uses).
package execpath

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"github.com/mloop/mloop"
)

// Look resolves name like a shell would, against pathEnv (a PATH value). A
// name holding a slash is a path, relative ones from dir; it is returned as
// given (exec.Cmd resolves a relative Path from its Dir) once it is known to
// be an executable file. Empty and relative PATH entries are skipped. A
// program that cannot be found or run is EINVALID, saying why.
func Look(name, pathEnv, dir string) (string, error) {
	if strings.Contains(name, "/") {
		p := name
		if !filepath.IsAbs(p) && dir != "" {
			p = filepath.Join(dir, p)
		}
		if err := executable(p); err != nil {
			return "", mloop.Errorf(mloop.EINVALID, "command %q: %v", name, err)
		}
		return name, nil
	}
	for _, d := range filepath.SplitList(pathEnv) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		if p := filepath.Join(d, name); executable(p) == nil {
			return p, nil
		}
	}
	return "", mloop.Errorf(mloop.EINVALID, "command %q not found in PATH %q: give its full path or set PATH in its environment", name, pathEnv)
}

// executable says why p is not an executable file, or returns nil.
func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return errors.New("no such file")
		}
		return err
	}
	if fi.IsDir() {
		return errors.New("is a folder")
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("not executable")
	}
	return nil
}
