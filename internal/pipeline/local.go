package pipeline

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/execpath"
)

// DefaultGrace is how long the local executor waits between SIGTERM and
// SIGKILL when it stops a task.
const DefaultGrace = 5 * time.Second

// LocalExecutor runs each task as a subprocess of the current process, in a
// process group of its own, so that a timeout or a Cancel reaches the step's
// children and grandchildren too.
//
// The subprocess sees exactly Task.Env and nothing of this process's
// environment: the runner must provide PATH (Argv[0] is looked up in it) and
// anything else the step needs. Output goes to Task.Stdout and Task.Stderr as
// it is written, never buffered until exit. When the command itself exits,
// any process it left behind in its group is killed: a step ends with all of
// its processes.
//
// A timeout or Cancel sends SIGTERM to the whole group, then SIGKILL to the
// whole group after Grace. Ending the ctx given to Wait does not stop the
// task; Cancel does. Tasks do not outlive this process's knowledge of them,
// so Attach always fails with ErrNotAttachable.
//
// Signals go to the group by its id; in the instant between the command's
// exit being collected and the executor noting it, the id could in theory
// be reused by an unrelated group, which the kernel makes practically
// impossible by allocating ids cyclically.
//
// A LocalExecutor is safe for concurrent use. Change its fields only before
// its first use.
type LocalExecutor struct {
	// Grace is the time between SIGTERM and SIGKILL; zero or negative means
	// DefaultGrace. It also bounds how long output is drained after the
	// command exits, if an escaped process keeps the output open.
	Grace time.Duration
	// Logger receives problems that do not fail a task, such as a failing
	// output writer. It defaults to slog.Default().
	Logger *slog.Logger

	mu      sync.Mutex
	running map[string]*LocalHandle
}

// NewLocalExecutor returns a LocalExecutor with the default grace period and
// logger.
func NewLocalExecutor() *LocalExecutor {
	return &LocalExecutor{Grace: DefaultGrace, Logger: slog.Default()}
}

var _ Executor = (*LocalExecutor)(nil)

// Name returns "local".
func (e *LocalExecutor) Name() string { return "local" }

func (e *LocalExecutor) grace() time.Duration {
	if e.Grace <= 0 {
		return DefaultGrace
	}
	return e.Grace
}

func (e *LocalExecutor) logger() *slog.Logger {
	if e.Logger == nil {
		return slog.Default()
	}
	return e.Logger
}

// Start starts t as a subprocess in a new process group and returns at once.
// ctx bounds only the start: the task is not tied to it. Errors are of kind
// EINVALID (empty ID or Argv, negative Timeout, missing working folder, a
// command not found in Env's PATH or not executable), EEXISTS (a task with
// the same ID is running) or EINTERNAL (the process could not be started);
// ENOTIMPLEMENTED on systems without process groups.
func (e *LocalExecutor) Start(ctx context.Context, t Task) (Handle, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("start task %q: %w", t.ID, err)
	}
	if t.ID == "" {
		return nil, mloop.Errorf(mloop.EINVALID, "start task: empty task id")
	}
	if len(t.Argv) == 0 || t.Argv[0] == "" {
		return nil, mloop.Errorf(mloop.EINVALID, "start task %q: empty command", t.ID)
	}
	if t.Timeout < 0 {
		return nil, mloop.Errorf(mloop.EINVALID, "start task %q: negative timeout %s", t.ID, t.Timeout)
	}
	if t.Dir != "" {
		if fi, err := os.Stat(t.Dir); err != nil {
			return nil, mloop.Errorf(mloop.EINVALID, "start task %q: working folder %q: %v", t.ID, t.Dir, err)
		} else if !fi.IsDir() {
			return nil, mloop.Errorf(mloop.EINVALID, "start task %q: working folder %q is not a folder", t.ID, t.Dir)
		}
	}
	path, err := lookPath(t.Argv[0], t.Env, t.Dir)
	if err != nil {
		return nil, fmt.Errorf("start task %q: %w", t.ID, err)
	}

	h := &LocalHandle{
		id:      t.ID,
		exec:    e,
		timeout: t.Timeout,
		done:    make(chan struct{}),
	}
	e.mu.Lock()
	if _, dup := e.running[t.ID]; dup {
		e.mu.Unlock()
		return nil, mloop.Errorf(mloop.EEXISTS, "start task %q: a task with this id is running", t.ID)
	}
	if e.running == nil {
		e.running = make(map[string]*LocalHandle)
	}
	e.running[t.ID] = h
	e.mu.Unlock()

	if err := h.start(path, t); err != nil {
		e.forget(t.ID)
		return nil, fmt.Errorf("start task %q: %w", t.ID, err)
	}
	return h, nil
}

func (e *LocalExecutor) forget(id string) {
	e.mu.Lock()
	delete(e.running, id)
	e.mu.Unlock()
}

// Attach always fails with an error wrapping ErrNotAttachable (kind
// ENOTFOUND): a local subprocess cannot be re-attached by another process.
func (e *LocalExecutor) Attach(ctx context.Context, id string) (Handle, error) {
	return nil, fmt.Errorf("attach task %q: %w", id, ErrNotAttachable)
}

// LocalHandle is a task started by a LocalExecutor.
type LocalHandle struct {
	id      string
	exec    *LocalExecutor
	timeout time.Duration
	cmd     *exec.Cmd
	pid     int
	started time.Time
	readers []*os.File
	copies  sync.WaitGroup

	mu        sync.Mutex
	exited    bool // the command has exited and its group has been killed
	stopping  bool // SIGTERM has been sent
	timedOut  bool
	canceled  bool
	timer     *time.Timer // the timeout
	killTimer *time.Timer // SIGKILL after the grace period

	done   chan struct{}
	result Result
}

var _ Handle = (*LocalHandle)(nil)

// ID returns the task's ID.
func (h *LocalHandle) ID() string { return h.id }

// PID returns the process id of the command, which is also the id of its
// process group.
func (h *LocalHandle) PID() int { return h.pid }

func (h *LocalHandle) start(path string, t Task) error {
	cmd := &exec.Cmd{Path: path, Args: t.Argv, Dir: t.Dir, Env: append(envList(t.Env), taskIDEnv+"="+t.ID)}
	if err := setGroup(cmd); err != nil {
		return err
	}
	var writeEnds []*os.File
	closeAll := func() {
		for _, f := range writeEnds {
			f.Close()
		}
		for _, f := range h.readers {
			f.Close()
		}
	}
	for _, s := range []struct {
		w   io.Writer
		dst *io.Writer
	}{{t.Stdout, &cmd.Stdout}, {t.Stderr, &cmd.Stderr}} {
		if s.w == nil {
			continue // exec connects the stream to the null device
		}
		r, w, err := os.Pipe()
		if err != nil {
			closeAll()
			return fmt.Errorf("create output pipe: %w", err)
		}
		h.readers = append(h.readers, r)
		writeEnds = append(writeEnds, w)
		*s.dst = w
	}
	if err := cmd.Start(); err != nil {
		closeAll()
		return fmt.Errorf("start %q: %w", t.Argv[0], err)
	}
	h.started = time.Now()
	for _, f := range writeEnds {
		f.Close() // the child holds its own copies
	}
	h.cmd = cmd
	h.pid = cmd.Process.Pid
	outs := []io.Writer{t.Stdout, t.Stderr}
	i := 0
	for _, w := range outs {
		if w == nil {
			continue
		}
		r := h.readers[i]
		i++
		h.copies.Add(1)
		go func(w io.Writer, r *os.File) {
			defer h.copies.Done()
			io.Copy(&forgivingWriter{w: w, h: h}, r)
			r.Close()
		}(w, r)
	}
	if t.Timeout > 0 {
		h.mu.Lock()
		h.timer = time.AfterFunc(t.Timeout, func() { h.terminate(true) })
		h.mu.Unlock()
	}
	go h.reap()
	return nil
}

// reap waits for the command, kills what it left in its group, drains its
// output and publishes the result.
func (h *LocalHandle) reap() {
	waitErr := h.cmd.Wait() // the pipes are files, so this returns at exit
	finished := time.Now()
	code, sig := exitOf(h.cmd.ProcessState)
	if h.cmd.ProcessState == nil {
		h.exec.logger().Error("wait for task", "task", h.id, "err", waitErr)
		code = -1
	}

	h.mu.Lock()
	h.exited = true
	killGroup(h.pid) // leftovers; usually there are none
	if h.timer != nil {
		h.timer.Stop()
	}
	if h.killTimer != nil {
		h.killTimer.Stop()
	}
	res := Result{
		ExitCode: code,
		Signal:   sig,
		TimedOut: h.timedOut,
		Canceled: h.canceled,
		Started:  h.started,
		Finished: finished,
	}
	if res.TimedOut {
		res.Timeout = h.timeout
	}
	h.mu.Unlock()

	drained := make(chan struct{})
	go func() { h.copies.Wait(); close(drained) }()
	select {
	case <-drained:
	case <-time.After(h.exec.grace()):
		// A process outside the group still holds the output open.
		h.exec.logger().Warn("output still open after the task exited; closing it", "task", h.id)
		for _, r := range h.readers {
			r.Close()
		}
		<-drained
	}
	h.result = res
	h.exec.forget(h.id)
	close(h.done)
}

// terminate sends SIGTERM to the group and schedules SIGKILL after the grace
// period, once per task.
func (h *LocalHandle) terminate(timedOut bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.exited || h.stopping {
		return
	}
	h.stopping = true
	if timedOut {
		h.timedOut = true
	} else {
		h.canceled = true
	}
	if err := termGroup(h.pid); err != nil {
		h.exec.logger().Warn("terminate task", "task", h.id, "err", err)
	}
	h.killTimer = time.AfterFunc(h.exec.grace(), func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		if !h.exited {
			killGroup(h.pid)
		}
	})
}

// Wait returns the task's Result once it has finished; see Handle.Wait.
func (h *LocalHandle) Wait(ctx context.Context) (Result, error) {
	select {
	case <-h.done:
		return h.result, nil
	case <-ctx.Done():
		return Result{}, fmt.Errorf("wait for task %q: %w", h.id, ctx.Err())
	}
}

// Cancel terminates the task's whole process group; see Handle.Cancel.
func (h *LocalHandle) Cancel(ctx context.Context) error {
	h.terminate(false)
	select {
	case <-h.done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("cancel task %q: %w", h.id, ctx.Err())
	}
}

// forgivingWriter keeps draining a task's output when the destination
// fails, so that a broken log never blocks or kills the step; the first
// failure is logged.
type forgivingWriter struct {
	w      io.Writer
	h      *LocalHandle
	failed bool
}

func (f *forgivingWriter) Write(p []byte) (int, error) {
	if f.failed {
		return len(p), nil
	}
	if _, err := f.w.Write(p); err != nil {
		f.failed = true
		f.h.exec.logger().Warn("task output writer failed; discarding the rest", "task", f.h.id, "err", err)
	}
	return len(p), nil
}

// envList turns env into the sorted KEY=value list exec expects; it is
// never nil, so nothing is inherited from this process.
func envList(env map[string]string) []string {
	list := make([]string, 0, len(env))
	for k, v := range env {
		list = append(list, k+"="+v)
	}
	sort.Strings(list)
	return list
}

// lookPath resolves name against the task's PATH (see execpath.Look).
func lookPath(name string, env map[string]string, dir string) (string, error) {
	pathEnv, ok := env["PATH"]
	if !ok && !strings.Contains(name, "/") {
		return "", mloop.Errorf(mloop.EINVALID, "command %q not found: the task's environment has no PATH", name)
	}
	return execpath.Look(name, pathEnv, dir)
}

// KillOrphan kills what is left of a task started by an earlier process of
// the server, given its recorded handle: the process group id as decimal
// (see LocalHandle.PID). A group that no longer exists is not an error; a
// malformed handle, or one naming this process's own group, is EINVALID.
// Process group ids are reused only after the whole group is gone, so a
// live group with this id is the task's, unless the machine restarted in
// between and an unrelated group took the id: recovery happens at server
// start, which keeps that window small.
func (e *LocalExecutor) KillOrphan(handle string) error {
	return e.KillTask("", handle)
}

// taskIDEnv is the environment variable the local executor adds to every
// task: the task's ID, by which KillTask finds its processes after a crash.
const taskIDEnv = "MLOOP_TASK_ID"

// KillTask kills what is left of a task started by an earlier process of
// the server. Where the system lists processes' environments (Linux /proc),
// it kills the process groups of every process whose environment holds
// MLOOP_TASK_ID=taskID — which finds the task even when the server died
// before recording its handle, and never kills an unrelated group that
// reused the id. Elsewhere, or without a taskID, it kills the recorded
// handle's group as KillOrphan does.
func (e *LocalExecutor) KillTask(taskID, handle string) error {
	if taskID != "" {
		if groups, ok := taskGroups(taskID); ok {
			for _, g := range groups {
				if err := killOrphanGroup(g); err != nil {
					return err
				}
			}
			pgid, err := strconv.Atoi(handle)
			if len(groups) > 0 || err != nil || pgid <= 1 || !envUnreadable(pgid) {
				return nil
			}
			// The recorded group's leader hides its environment (it
			// changed user): it cannot be told apart, so it goes as the
			// handle says.
			return killOrphanGroup(pgid)
		}
	}
	if handle == "" {
		return nil
	}
	pgid, err := strconv.Atoi(handle)
	if err != nil || pgid <= 1 {
		return mloop.Errorf(mloop.EINVALID, "kill leftover task: invalid process group handle %q", handle)
	}
	return killOrphanGroup(pgid)
}
