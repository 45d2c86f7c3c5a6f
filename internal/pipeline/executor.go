package pipeline

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/mloop/mloop"
)

// Task is one attempt of one step, as an executor sees it: a command, its
// environment and its limits. The runner builds it; the executor runs it.
type Task struct {
	// ID identifies the attempt and is unique per attempt (for example
	// "run/step/attempt"). Executors that keep state outside the process
	// (Kubernetes Jobs) use it as the name to re-attach to.
	ID string
	// Argv is the command and its arguments; Argv[0] is looked up in the
	// PATH given in Env when it holds no slash.
	Argv []string
	// Dir is the working folder of the command for local executors; empty
	// means the executor's own working folder. Container executors ignore it.
	Dir string
	// Env is the complete environment the step sees, besides what the
	// executor itself must add. Nothing is inherited from the runner's
	// process, so the runner must provide PATH.
	Env map[string]string
	// Image is the container image for container executors; local executors
	// ignore it.
	Image string
	// Timeout bounds the task's run time; 0 means no limit. When it passes,
	// the task is terminated gracefully and then killed, and its Result has
	// TimedOut set.
	Timeout time.Duration
	// Stdout and Stderr receive the task's output live, as it is produced
	// (the runner tees them to the terminal and to the log artifact). nil
	// discards the stream. Each writer is used by one goroutine at a time.
	Stdout, Stderr io.Writer
}

// Executor starts tasks somewhere: a local process group, a Kubernetes Job.
// Implementations are safe for concurrent use and run the conformance suite
// in package executortest.
type Executor interface {
	// Name returns the executor's short name ("local", "kubernetes"), as
	// written in specs and recorded with each step run.
	Name() string
	// Start starts t and returns a Handle to it without waiting for it to
	// finish. Errors: EINVALID for a malformed task (empty ID or Argv,
	// negative Timeout) or a command that cannot be found; EEXISTS when a
	// task with the same ID is still running; EUNAVAILABLE or EINTERNAL when
	// the executor could not start it.
	Start(ctx context.Context, t Task) (Handle, error)
	// Attach returns a Handle to a task started earlier with the given ID,
	// possibly by another process (after a restart of the server). It fails
	// with ENOTFOUND when no such task can be reached, and wraps
	// ErrNotAttachable when the executor cannot re-attach at all.
	Attach(ctx context.Context, id string) (Handle, error)
}

// Handle is a started task.
type Handle interface {
	// ID returns the task's ID.
	ID() string
	// Wait blocks until the task has finished and returns its Result. Every
	// call, concurrent or later, returns the same Result. When ctx ends first,
	// Wait returns ctx's error wrapped (errors.Is(err, context.Canceled) or
	// context.DeadlineExceeded holds) and the task keeps running: only Cancel
	// stops it. A Result with a non-zero exit is not an error.
	Wait(ctx context.Context) (Result, error)
	// Cancel stops the task gracefully: SIGTERM (or the executor's
	// equivalent), then a kill after the executor's grace period. It returns
	// once the task has ended, or with ctx's error wrapped when ctx ends
	// first (the kill still happens). Canceling a finished task does nothing
	// and returns nil.
	Cancel(ctx context.Context) error
}

// ErrNotAttachable is wrapped by Attach of executors that cannot re-attach to
// tasks started by another process. Its kind is ENOTFOUND: for the caller, the
// task is gone and the attempt counts as failed.
var ErrNotAttachable = &mloop.Error{Code: mloop.ENOTFOUND, Message: "this executor cannot re-attach to tasks started by another process"}

// Result is how a task ended.
type Result struct {
	// ExitCode is the command's exit status, or -1 when it did not exit by
	// itself (Signal then names what killed it).
	ExitCode int
	// Signal names the signal that ended the command ("SIGKILL"), or is
	// empty when the command exited by itself.
	Signal string
	// TimedOut reports that the task's Timeout passed and the executor
	// terminated it.
	TimedOut bool
	// Timeout is the task's timeout, kept to explain a TimedOut result.
	Timeout time.Duration
	// Canceled reports that Cancel terminated the task.
	Canceled bool
	// Started and Finished are when the task started and ended.
	Started, Finished time.Time
}

// Success reports whether the task ran to completion with exit status 0.
func (r Result) Success() bool {
	return r.ExitCode == 0 && r.Signal == "" && !r.TimedOut && !r.Canceled
}

// String describes the result for people: "exit status 3", "killed after
// timeout 2s", "canceled", "killed by signal SIGSEGV".
func (r Result) String() string {
	switch {
	case r.TimedOut:
		return fmt.Sprintf("killed after timeout %s", r.Timeout)
	case r.Canceled:
		return "canceled"
	case r.Signal != "":
		return "killed by signal " + r.Signal
	default:
		return fmt.Sprintf("exit status %d", r.ExitCode)
	}
}
