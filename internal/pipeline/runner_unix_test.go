//go:build unix

package pipeline_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/pipeline"
)

// TestRunner_RecoveryAfterCrash simulates a server killed while a step ran:
// the run is Running, its step Running with a live process group recorded as
// its handle. Open must kill that group, count the attempt as failed and
// retry the step, keeping the step that had already succeeded.
func TestRunner_RecoveryAfterCrash(t *testing.T) {
	e := mustEnv(t)
	ctx := context.Background()
	spec := `name: crash
steps:
  first:
    run: 'echo one > ${{ outputs.o }}; echo ran >> ` + filepath.Join(e.scratch, "first-runs") + `'
    outputs: {o: o.txt}
  second:
    run: 'cat ${{ inputs.x }} > ${{ outputs.o }}'
    inputs: {x: steps.first.outputs.o}
    outputs: {o: o.txt}
    retries: 1
    cache: false
`
	e.write(t, "mloop.yaml", spec)
	req := pipeline.SubmitRequest{SpecFile: filepath.Join(e.project, "mloop.yaml"), ProjectDir: e.project, Spec: spec, User: "t"}

	// A first server ran step first, then crashed during step second.
	e.open(t)
	done := e.waitDone(t, e.submit(t, spec, nil).ID)
	if done.Status != pipeline.RunSucceeded {
		t.Fatalf("setup run: %s %s", done.Status, stepStates(done))
	}
	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}

	r, err := e.svc.NewRun(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.CreateRun(ctx, r); err != nil {
		t.Fatal(err)
	}
	if ok, err := e.store.ClaimRun(ctx, r.ID, "old-server", time.Now()); !ok || err != nil {
		t.Fatalf("claim: %v %v", ok, err)
	}
	first := done.Step("first")
	cached := pipeline.StepCached
	if err := e.store.UpdateStep(ctx, r.ID, "first", pipeline.StepUpdate{Status: &cached, CachedFrom: &done.ID,
		Outputs: first.Outputs}); err != nil {
		t.Fatal(err)
	}

	// The orphan carries the task's ID, as the local executor's processes
	// do. On Linux the server died before recording the handle: recovery
	// finds the process by its ID alone.
	taskID := r.ID + "/second/1"
	orphan := exec.Command("sleep", "60")
	orphan.Env = append(os.Environ(), "MLOOP_TASK_ID="+taskID)
	orphan.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := orphan.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- orphan.Wait() }()
	t.Cleanup(func() { orphan.Process.Kill() })
	running, attempt := pipeline.StepRunning, 1
	handle, executor := strconv.Itoa(orphan.Process.Pid), "local"
	if runtime.GOOS == "linux" {
		handle = ""
	}
	if err := e.store.UpdateStep(ctx, r.ID, "second", pipeline.StepUpdate{Status: &running, Attempt: &attempt,
		TaskID: &taskID, Handle: &handle, Executor: &executor}); err != nil {
		t.Fatal(err)
	}

	// The restarted server.
	e.open(t)
	select {
	case err := <-exited:
		if err == nil || !strings.Contains(err.Error(), "killed") {
			t.Errorf("orphan step process: got %v, want killed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the orphan step process was not killed")
	}
	got := e.waitDone(t, r.ID)
	if got.Status != pipeline.RunSucceeded {
		t.Fatalf("recovered run: got %s (%s), steps %s", got.Status, got.Error, stepStates(got))
	}
	wantStep(t, got, "first", pipeline.StepCached)
	second := wantStep(t, got, "second", pipeline.StepSucceeded)
	if second.Attempt != 2 {
		t.Errorf("second: got attempt %d, want 2", second.Attempt)
	}
	log, _ := os.ReadFile(e.svc.LogPath(r.ID, "second"))
	if !strings.Contains(string(log), "the server stopped while attempt 1 was running") {
		t.Errorf("second's log: got %q", log)
	}
	runs, _ := os.ReadFile(filepath.Join(e.scratch, "first-runs"))
	if string(runs) != "ran\n" {
		t.Errorf("step first ran %q times; want once (kept after the restart)", runs)
	}
	if out := e.readArtifact(t, second.Outputs["o"].URI); out != "one\n" {
		t.Errorf("second's output: got %q", out)
	}
}
