//go:build !unix

package process

import (
	"os/exec"

	"github.com/mloop/mloop"
)

// setGroup fails: without process groups the runtime could not stop a
// model server's children, so it refuses to start one.
func setGroup(cmd *exec.Cmd) error {
	return mloop.Errorf(mloop.ENOTIMPLEMENTED, "the process runtime needs process groups, which this system lacks")
}

func termGroup(pgid int) error { return nil }

func killGroup(pgid int) {}
