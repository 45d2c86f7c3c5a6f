//go:build unix

package pipeline

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/mloop/mloop"
)

// setGroup makes the command the leader of a new process group.
func setGroup(cmd *exec.Cmd) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	return nil
}

// termGroup sends SIGTERM to the process group pgid. A group that is
// already gone is not an error.
func termGroup(pgid int) error {
	return signalGroup(pgid, syscall.SIGTERM)
}

// killGroup sends SIGKILL to the process group pgid, ignoring a group that
// is already gone.
func killGroup(pgid int) {
	signalGroup(pgid, syscall.SIGKILL)
}

func signalGroup(pgid int, sig syscall.Signal) error {
	if pgid <= 0 {
		return fmt.Errorf("signal group %d: invalid group id", pgid)
	}
	if err := syscall.Kill(-pgid, sig); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("signal group %d with %s: %w", pgid, signalName(sig), err)
	}
	return nil
}

// exitOf returns the exit code and the name of the ending signal of a
// finished process; the code is -1 when a signal ended it.
func exitOf(ps *os.ProcessState) (int, string) {
	if ps == nil {
		return -1, ""
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -1, signalName(ws.Signal())
	}
	return ps.ExitCode(), ""
}

var signalNames = map[syscall.Signal]string{
	syscall.SIGABRT: "SIGABRT",
	syscall.SIGALRM: "SIGALRM",
	syscall.SIGBUS:  "SIGBUS",
	syscall.SIGFPE:  "SIGFPE",
	syscall.SIGHUP:  "SIGHUP",
	syscall.SIGILL:  "SIGILL",
	syscall.SIGINT:  "SIGINT",
	syscall.SIGKILL: "SIGKILL",
	syscall.SIGPIPE: "SIGPIPE",
	syscall.SIGQUIT: "SIGQUIT",
	syscall.SIGSEGV: "SIGSEGV",
	syscall.SIGTERM: "SIGTERM",
	syscall.SIGUSR1: "SIGUSR1",
	syscall.SIGUSR2: "SIGUSR2",
}

// signalName returns the conventional name of sig ("SIGTERM"), or
// "signal N" for signals without one here.
func signalName(sig syscall.Signal) string {
	if n, ok := signalNames[sig]; ok {
		return n
	}
	return fmt.Sprintf("signal %d", int(sig))
}

// killOrphanGroup sends SIGKILL to the process group pgid unless it is gone
// or is this process's own group.
func killOrphanGroup(pgid int) error {
	if pgid == syscall.Getpgrp() {
		return mloop.Errorf(mloop.EINVALID, "kill leftover task: process group %d is the server's own", pgid)
	}
	if err := syscall.Kill(-pgid, 0); errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return signalGroup(pgid, syscall.SIGKILL)
}
