// Package executortest is the conformance suite that every pipeline executor
// runs: the behaviour the runner relies on, checked the same way for local
// processes and for container executors.
//
// Commands use only /bin/sh and coreutils. The suite gives tasks the PATH
// "/usr/local/bin:/usr/bin:/bin". It exercises Task.Dir, so an executor that
// ignores Dir (a container executor) needs an option added here to skip
// that subtest. Time bounds are generous upper limits that prove a kill
// happened at all, never performance assertions.
package executortest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mloop/mloop"
	"github.com/mloop/mloop/internal/pipeline"
)

// Path is the PATH the suite gives every task.
const Path = "/usr/local/bin:/usr/bin:/bin"

// KillBound is the upper bound within which a timed-out, canceled or
// SIGTERM-ignoring task must have ended. It proves that a kill happened;
// the executor under test should use a grace period of at most a second.
const KillBound = 10 * time.Second

// Run runs the conformance suite as subtests of t. newExecutor returns a
// fresh executor for each subtest, configured with a short grace period.
func Run(t *testing.T, newExecutor func(t *testing.T) pipeline.Executor) {
	t.Run("Success", func(t *testing.T) { testSuccess(t, newExecutor(t)) })
	t.Run("ExitCode", func(t *testing.T) { testExitCode(t, newExecutor(t)) })
	t.Run("Env", func(t *testing.T) { testEnv(t, newExecutor(t)) })
	t.Run("WorkingDir", func(t *testing.T) { testWorkingDir(t, newExecutor(t)) })
	t.Run("StreamsLive", func(t *testing.T) { testStreamsLive(t, newExecutor(t)) })
	t.Run("Timeout", func(t *testing.T) { testTimeout(t, newExecutor(t)) })
	t.Run("Cancel", func(t *testing.T) { testCancel(t, newExecutor(t)) })
	t.Run("IgnoresSIGTERM", func(t *testing.T) { testIgnoresSIGTERM(t, newExecutor(t)) })
	t.Run("Concurrent", func(t *testing.T) { testConcurrent(t, newExecutor(t)) })
	t.Run("WaitTwice", func(t *testing.T) { testWaitTwice(t, newExecutor(t)) })
	t.Run("WaitContextDoesNotKill", func(t *testing.T) { testWaitContext(t, newExecutor(t)) })
	t.Run("DuplicateID", func(t *testing.T) { testDuplicateID(t, newExecutor(t)) })
	t.Run("AttachUnknown", func(t *testing.T) { testAttachUnknown(t, newExecutor(t)) })
}

// Buffer is an io.Writer safe for concurrent use that can wait until its
// content holds a string.
type Buffer struct {
	mu      sync.Mutex
	buf     bytes.Buffer
	changed chan struct{}
}

// Write appends p.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	n, err := b.buf.Write(p)
	if b.changed != nil {
		close(b.changed)
		b.changed = nil
	}
	return n, err
}

// String returns what has been written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// WaitFor blocks until the content contains s, or fails t after bound.
func (b *Buffer) WaitFor(t testing.TB, s string, bound time.Duration) {
	t.Helper()
	deadline := time.NewTimer(bound)
	defer deadline.Stop()
	for {
		b.mu.Lock()
		if strings.Contains(b.buf.String(), s) {
			b.mu.Unlock()
			return
		}
		if b.changed == nil {
			b.changed = make(chan struct{})
		}
		ch := b.changed
		b.mu.Unlock()
		select {
		case <-ch:
		case <-deadline.C:
			t.Fatalf("output %q does not contain %q after %s", b.String(), s, bound)
		}
	}
}

// Shell returns a task running script with /bin/sh -c and the suite's PATH.
func Shell(id, script string) pipeline.Task {
	return pipeline.Task{
		ID:   id,
		Argv: []string{"/bin/sh", "-c", script},
		Env:  map[string]string{"PATH": Path},
	}
}

// MustStart starts task or fails t. The task is canceled when t ends, so a
// failing test leaves no process behind.
func MustStart(t testing.TB, e pipeline.Executor, task pipeline.Task) pipeline.Handle {
	t.Helper()
	h, err := e.Start(context.Background(), task)
	if err != nil {
		t.Fatalf("Start(%q): %v", task.ID, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), KillBound)
		defer cancel()
		if err := h.Cancel(ctx); err != nil {
			t.Errorf("cleanup: Cancel(%q): %v", task.ID, err)
		}
	})
	return h
}

// MustWait waits for h for at most KillBound or fails t.
func MustWait(t testing.TB, h pipeline.Handle) pipeline.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), KillBound)
	defer cancel()
	res, err := h.Wait(ctx)
	if err != nil {
		t.Fatalf("Wait(%q): %v", h.ID(), err)
	}
	return res
}

func testSuccess(t *testing.T, e pipeline.Executor) {
	var out Buffer
	task := Shell("success", "echo hello")
	task.Stdout = &out
	h := MustStart(t, e, task)
	if got, want := h.ID(), "success"; got != want {
		t.Errorf("ID() = %q, want %q", got, want)
	}
	res := MustWait(t, h)
	if !res.Success() || res.ExitCode != 0 {
		t.Errorf("result = %+v (%s), want success with exit status 0", res, res)
	}
	if got, want := res.String(), "exit status 0"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if got, want := out.String(), "hello\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if res.Started.IsZero() || res.Finished.Before(res.Started) {
		t.Errorf("Started %v, Finished %v: want Started set and Finished not before it", res.Started, res.Finished)
	}
}

func testExitCode(t *testing.T, e pipeline.Executor) {
	res := MustWait(t, MustStart(t, e, Shell("exit-3", "exit 3")))
	if got, want := res.ExitCode, 3; got != want {
		t.Errorf("ExitCode = %d, want %d", got, want)
	}
	if res.Success() {
		t.Errorf("Success() = true for %+v, want false", res)
	}
	if got, want := res.String(), "exit status 3"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func testEnv(t *testing.T, e pipeline.Executor) {
	var out Buffer
	task := Shell("env", `printf '%s|%s|%s' "$MLOOP_A" "$MLOOP_B" "${MLOOP_UNSET-unset}"`)
	task.Env["MLOOP_A"] = "one two"
	task.Env["MLOOP_B"] = "x=y"
	task.Stdout = &out
	res := MustWait(t, MustStart(t, e, task))
	if !res.Success() {
		t.Fatalf("result = %s, want success", res)
	}
	if got, want := out.String(), "one two|x=y|unset"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func testWorkingDir(t *testing.T, e pipeline.Executor) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "marker.txt"), []byte("here"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out Buffer
	task := Shell("dir", "cat marker.txt")
	task.Dir = dir
	task.Stdout = &out
	res := MustWait(t, MustStart(t, e, task))
	if !res.Success() {
		t.Fatalf("result = %s, want success", res)
	}
	if got, want := out.String(), "here"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func testStreamsLive(t *testing.T, e pipeline.Executor) {
	var stdout, stderr Buffer
	task := Shell("live", "echo to-out; echo to-err >&2; sleep 30")
	task.Stdout, task.Stderr = &stdout, &stderr
	h := MustStart(t, e, task)
	// Both lines must arrive while the task is still sleeping.
	stdout.WaitFor(t, "to-out\n", KillBound)
	stderr.WaitFor(t, "to-err\n", KillBound)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Wait(ctx); err == nil {
		t.Fatalf("Wait returned a result before the task ended: output was not streamed live")
	}
	if err := h.Cancel(context.Background()); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	MustWait(t, h)
	if got, want := stdout.String(), "to-out\n"; got != want {
		t.Errorf("stdout = %q, want %q", got, want)
	}
	if got, want := stderr.String(), "to-err\n"; got != want {
		t.Errorf("stderr = %q, want %q", got, want)
	}
}

func testTimeout(t *testing.T, e pipeline.Executor) {
	task := Shell("timeout", "sleep 30")
	task.Timeout = 300 * time.Millisecond
	start := time.Now()
	res := MustWait(t, MustStart(t, e, task))
	if elapsed := time.Since(start); elapsed >= KillBound {
		t.Errorf("task ended after %s, want under %s", elapsed, KillBound)
	}
	if !res.TimedOut || res.Success() {
		t.Errorf("result = %+v, want TimedOut and not Success", res)
	}
	if got, want := res.String(), "killed after timeout 300ms"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
}

func testCancel(t *testing.T, e pipeline.Executor) {
	var out Buffer
	task := Shell("cancel", "echo started; sleep 30")
	task.Stdout = &out
	h := MustStart(t, e, task)
	out.WaitFor(t, "started", KillBound)
	ctx, cancel := context.WithTimeout(context.Background(), KillBound)
	defer cancel()
	if err := h.Cancel(ctx); err != nil {
		t.Fatalf("Cancel: %v", err)
	}
	res := MustWait(t, h)
	if !res.Canceled || res.Success() || res.TimedOut {
		t.Errorf("result = %+v, want Canceled, not TimedOut, not Success", res)
	}
	if got, want := res.String(), "canceled"; got != want {
		t.Errorf("String() = %q, want %q", got, want)
	}
	if err := h.Cancel(ctx); err != nil {
		t.Errorf("second Cancel: %v, want nil", err)
	}
}

func testIgnoresSIGTERM(t *testing.T, e pipeline.Executor) {
	var out Buffer
	task := Shell("stubborn", `trap "" TERM; sleep 30 & echo ready; wait; sleep 30`)
	task.Stdout = &out
	h := MustStart(t, e, task)
	out.WaitFor(t, "ready", KillBound)
	ctx, cancel := context.WithTimeout(context.Background(), KillBound)
	defer cancel()
	if err := h.Cancel(ctx); err != nil {
		t.Fatalf("Cancel of a task ignoring SIGTERM: %v", err)
	}
	res := MustWait(t, h)
	if !res.Canceled || res.Success() {
		t.Errorf("result = %+v, want Canceled and not Success", res)
	}
}

func testConcurrent(t *testing.T, e pipeline.Executor) {
	const n = 20
	outs := make([]Buffer, n)
	handles := make([]pipeline.Handle, n)
	for i := range n {
		task := Shell(fmt.Sprintf("many-%d", i), fmt.Sprintf("echo task-%d; exit %d", i, i%4))
		task.Stdout = &outs[i]
		handles[i] = MustStart(t, e, task)
	}
	var wg sync.WaitGroup
	results := make([]pipeline.Result, n)
	errs := make([]error, n)
	for i, h := range handles {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), KillBound)
			defer cancel()
			results[i], errs[i] = h.Wait(ctx)
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("task %d: Wait: %v", i, errs[i])
			continue
		}
		if got, want := results[i].ExitCode, i%4; got != want {
			t.Errorf("task %d: ExitCode = %d, want %d", i, got, want)
		}
		if got, want := outs[i].String(), fmt.Sprintf("task-%d\n", i); got != want {
			t.Errorf("task %d: output = %q, want %q", i, got, want)
		}
	}
}

func testWaitTwice(t *testing.T, e pipeline.Executor) {
	h := MustStart(t, e, Shell("twice", "sleep 0.2; exit 5"))
	var wg sync.WaitGroup
	var first [3]pipeline.Result
	for i := range first {
		wg.Go(func() { first[i] = MustWait(t, h) })
	}
	wg.Wait()
	again := MustWait(t, h)
	for i, r := range first {
		if r != again {
			t.Errorf("concurrent Wait %d = %+v, later Wait = %+v, want equal", i, r, again)
		}
	}
	if got, want := again.ExitCode, 5; got != want {
		t.Errorf("ExitCode = %d, want %d", got, want)
	}
}

func testWaitContext(t *testing.T, e pipeline.Executor) {
	var out Buffer
	task := Shell("wait-ctx", "echo first; sleep 1; echo second")
	task.Stdout = &out
	h := MustStart(t, e, task)
	out.WaitFor(t, "first", KillBound)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a canceled ctx: err = %v, want context.Canceled", err)
	}
	res := MustWait(t, h)
	if !res.Success() {
		t.Errorf("result = %s, want success: ending Wait's ctx must not stop the task", res)
	}
	if got, want := out.String(), "first\nsecond\n"; got != want {
		t.Errorf("output = %q, want %q", got, want)
	}
}

func testDuplicateID(t *testing.T, e pipeline.Executor) {
	MustStart(t, e, Shell("dup", "sleep 30"))
	_, err := e.Start(context.Background(), Shell("dup", "true"))
	if got, want := mloop.ErrorCode(err), mloop.EEXISTS; got != want {
		t.Errorf("second Start with the same id: kind %q (%v), want %q", got, err, want)
	}
}

func testAttachUnknown(t *testing.T, e pipeline.Executor) {
	_, err := e.Attach(context.Background(), "no-such-task-7f3a")
	if got, want := mloop.ErrorCode(err), mloop.ENOTFOUND; got != want {
		t.Errorf("Attach of an unknown id: kind %q (%v), want %q", got, err, want)
	}
}
