//go:build !unix

package pipeline

import (
	"os"
	"os/exec"

	"github.com/mloop/mloop"
)

// setGroup fails: without process groups the local executor could not stop
// a step's children, so it refuses to run.
func setGroup(cmd *exec.Cmd) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "the local executor needs process groups, which this system lacks")
}

func termGroup(pgid int) error { return nil }

func killGroup(pgid int) {}

func exitOf(ps *os.ProcessState) (int, string) {
	if ps == nil {
		return -1, ""
	}
	return ps.ExitCode(), ""
}

// killOrphanGroup does nothing: without process groups no task was started.
func killOrphanGroup(pgid int) error { return nil }
