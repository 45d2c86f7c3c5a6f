//go:build unix

package pipeline_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/pipeline"
	"github.com/mloop/mloop/internal/pipeline/executortest"
)

func newLocal(t *testing.T) *pipeline.LocalExecutor {
	e := pipeline.NewLocalExecutor()
	e.Grace = 300 * time.Millisecond
	return e
}

func TestLocalConformance(t *testing.T) {
	executortest.Run(t, func(t *testing.T) pipeline.Executor { return newLocal(t) })
}

// groupMembers returns the live (not zombie) processes whose process group
// is pgid, read from /proc.
func groupMembers(t *testing.T, pgid int) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skipf("no /proc to inspect process groups: %v", err)
	}
	var pids []int
	for _, ent := range entries {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "stat"))
		if err != nil {
			continue // the process ended meanwhile
		}
		// Fields after the parenthesised command: state ppid pgrp ...
		s := string(b)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) < 3 || fields[0] == "Z" {
			continue
		}
		if g, _ := strconv.Atoi(fields[2]); g == pgid {
			pids = append(pids, pid)
		}
	}
	return pids
}

// groupEmptied waits until process group pgid has no live process, at most
// executortest.KillBound: a SIGKILL takes effect when the kernel next
// schedules the process, not when kill(2) returns. It returns what is left.
func groupEmptied(t *testing.T, pgid int) []int {
	t.Helper()
	deadline := time.Now().Add(executortest.KillBound)
	for {
		left := groupMembers(t, pgid)
		if len(left) == 0 || time.Now().After(deadline) {
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestLocalCancelKillsWholeGroup(t *testing.T) {
	e := newLocal(t)
	var out executortest.Buffer
	task := executortest.Shell("group", `trap "" TERM; sh -c 'sleep 100 & sleep 100 & echo ready; wait' & wait`)
	task.Stdout = &out
	h := executortest.MustStart(t, e, task)
	pgid := h.(*pipeline.LocalHandle).PID()
	out.WaitFor(t, "ready", executortest.KillBound)
	if got := len(groupMembers(t, pgid)); got < 4 {
		t.Fatalf("group %d has %d live processes before Cancel, want 4 (shell, child shell, 2 grandchild sleeps)", pgid, got)
	}
	if err := h.Cancel(context.Background()); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	res := executortest.MustWait(t, h)
	if !res.Canceled {
		t.Errorf("result = %+v, want Canceled", res)
	}
	if got := groupEmptied(t, pgid); len(got) != 0 {
		t.Errorf("group %d still has live processes %v after Cancel, want none", pgid, got)
	}
	if err := syscall.Kill(-pgid, 0); err == nil {
		// Zombies not yet reaped by init still count for kill; /proc says
		// they are not running, which is what matters.
		t.Logf("group %d still has unreaped zombies", pgid)
	}
}

func TestLocalKillsLeftoversAtExit(t *testing.T) {
	e := newLocal(t)
	h := executortest.MustStart(t, e, executortest.Shell("leftover", "sleep 100 & exit 0"))
	pgid := h.(*pipeline.LocalHandle).PID()
	res := executortest.MustWait(t, h)
	if !res.Success() {
		t.Errorf("result = %s, want success", res)
	}
	if got := groupEmptied(t, pgid); len(got) != 0 {
		t.Errorf("group %d still has live processes %v after the command exited, want none", pgid, got)
	}
}

func TestLocalTimeoutSignal(t *testing.T) {
	e := newLocal(t)
	task := executortest.Shell("timeout-sig", `trap "" TERM; sleep 100`)
	task.Timeout = 200 * time.Millisecond
	res := executortest.MustWait(t, executortest.MustStart(t, e, task))
	if !res.TimedOut {
		t.Errorf("TimedOut = false, want true")
	}
	if got, want := res.Signal, "SIGKILL"; got != want {
		t.Errorf("Signal = %q, want %q (the shell ignores SIGTERM)", got, want)
	}
	if got, want := res.ExitCode, -1; got != want {
		t.Errorf("ExitCode = %d, want %d", got, want)
	}
}

func TestLocalEnvIsExact(t *testing.T) {
	t.Setenv("MLOOP_LEAK_CHECK", "leaked")
	e := newLocal(t)
	var out executortest.Buffer
	task := executortest.Shell("exact-env", `env`)
	task.Stdout = &out
	res := executortest.MustWait(t, executortest.MustStart(t, e, task))
	if !res.Success() {
		t.Fatalf("result = %s, want success", res)
	}
	if strings.Contains(out.String(), "MLOOP_LEAK_CHECK") {
		t.Errorf("env output %q contains the runner's MLOOP_LEAK_CHECK, want only the task's Env", out.String())
	}
	if !strings.Contains(out.String(), "PATH="+executortest.Path) {
		t.Errorf("env output %q lacks PATH=%s", out.String(), executortest.Path)
	}
}

func TestLocalStartErrors(t *testing.T) {
	e := newLocal(t)
	tests := []struct {
		name    string
		task    pipeline.Task
		kind    string
		mention string
	}{
		{"missing command", pipeline.Task{ID: "a", Argv: []string{"no-such-cmd-xyz"}, Env: map[string]string{"PATH": executortest.Path}}, mloop.EINVALID, "no-such-cmd-xyz"},
		{"no PATH", pipeline.Task{ID: "b", Argv: []string{"sh"}}, mloop.EINVALID, "PATH"},
		{"missing path command", pipeline.Task{ID: "c", Argv: []string{"/no/such/tool"}}, mloop.EINVALID, "/no/such/tool"},
		{"empty argv", pipeline.Task{ID: "d"}, mloop.EINVALID, "empty command"},
		{"empty id", pipeline.Task{Argv: []string{"/bin/sh"}}, mloop.EINVALID, "empty task id"},
		{"negative timeout", pipeline.Task{ID: "e", Argv: []string{"/bin/sh"}, Timeout: -time.Second}, mloop.EINVALID, "negative timeout"},
		{"missing dir", pipeline.Task{ID: "f", Argv: []string{"/bin/sh"}, Dir: "/no/such/dir"}, mloop.EINVALID, "/no/such/dir"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := e.Start(context.Background(), tt.task)
			if err == nil {
				executortest.MustWait(t, h)
				t.Fatalf("Start succeeded, want an error of kind %q", tt.kind)
			}
			if got := mloop.ErrorCode(err); got != tt.kind {
				t.Errorf("kind = %q (%v), want %q", got, err, tt.kind)
			}
			if !strings.Contains(err.Error(), tt.mention) {
				t.Errorf("error %q does not mention %q", err, tt.mention)
			}
		})
	}
}

func TestLocalAttachNotAttachable(t *testing.T) {
	_, err := newLocal(t).Attach(context.Background(), "run/step/1")
	if !errors.Is(err, pipeline.ErrNotAttachable) {
		t.Errorf("Attach: err = %v, want ErrNotAttachable", err)
	}
}

func TestResultString(t *testing.T) {
	tests := []struct {
		r    pipeline.Result
		want string
		ok   bool
	}{
		{pipeline.Result{}, "exit status 0", true},
		{pipeline.Result{ExitCode: 3}, "exit status 3", false},
		{pipeline.Result{ExitCode: -1, Signal: "SIGKILL", TimedOut: true, Timeout: 2 * time.Second}, "killed after timeout 2s", false},
		{pipeline.Result{ExitCode: -1, Signal: "SIGTERM", Canceled: true}, "canceled", false},
		{pipeline.Result{ExitCode: -1, Signal: "SIGSEGV"}, "killed by signal SIGSEGV", false},
	}
	for _, tt := range tests {
		if got := tt.r.String(); got != tt.want {
			t.Errorf("%+v.String() = %q, want %q", tt.r, got, tt.want)
		}
		if got := tt.r.Success(); got != tt.ok {
			t.Errorf("%+v.Success() = %v, want %v", tt.r, got, tt.ok)
		}
	}
}
