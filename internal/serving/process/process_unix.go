//go:build unix

package process

import (
	"errors"
	"fmt"
	"os/exec"
	"syscall"
)

// setGroup makes the command the leader of a new process group, so that
// signals sent to the group reach everything it starts.
func setGroup(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return nil
}

// termGroup sends SIGTERM to the process group pgid. A group that is
// already gone is not an error.
func termGroup(pgid int) error { return signalGroup(pgid, syscall.SIGTERM) }

// killGroup sends SIGKILL to the process group pgid, ignoring a group that
// is already gone.
func killGroup(pgid int) { signalGroup(pgid, syscall.SIGKILL) }

func signalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 1 {
		return fmt.Errorf("signal group %d: invalid group id", pgid)
	}
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal group %d with %v: %w", pgid, sig, err)
	}
	return nil
}
