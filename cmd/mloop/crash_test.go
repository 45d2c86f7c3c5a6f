//go:build unix

package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/pipeline"
)

// crashServer is a real `mloop server` process.
type crashServer struct {
	cmd  *exec.Cmd
	url  string
	out  *syncBuffer
	done chan error
}

var listeningRE = regexp.MustCompile(`listening on (http://\S+)`)

// startCrashServer starts the mloop binary bin as a server on data and
// waits until it listens. Its address is chosen by the kernel (port 0) and
// read from its output, so a restart never races another process for a port.
func startCrashServer(t *testing.T, bin, data string) *crashServer {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command(bin, "server", "--addr", "127.0.0.1:0", "--data", data, "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	s := &crashServer{cmd: cmd, out: out, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			<-s.done
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if m := listeningRE.FindStringSubmatch(out.String()); m != nil {
			s.url = m[1]
			return s
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("server exited before listening (%v):\n%s", err, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not listen within the deadline:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill9 kills the server with SIGKILL, as a crash would, and reaps it.
func (s *crashServer) kill9(t *testing.T) {
	t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 server: %v", err)
	}
	<-s.done
	s.done <- nil
}

// stop stops the server gracefully.
func (s *crashServer) stop(t *testing.T) {
	t.Helper()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(60 * time.Second):
		t.Errorf("server did not stop on SIGTERM:\n%s", s.out.String())
		s.cmd.Process.Kill()
		<-s.done
	}
}

// call sends a JSON request and decodes a JSON answer into out (when not
// nil); it fails the test unless the status is 2xx.
func (s *crashServer) call(t *testing.T, method, path string, body, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: status %d: %s", method, path, resp.StatusCode, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, b, err)
		}
	}
}

// postEvent posts an event of type typ and returns the ids of the events
// stored (one per listening trigger).
func (s *crashServer) postEvent(t *testing.T, typ, key string) []int64 {
	t.Helper()
	var resp struct {
		Events []*pipeline.TriggerEvent `json:"events"`
	}
	s.call(t, "POST", "/api/v1/events", map[string]any{"type": typ, "subject": "crash-test", "dedup_key": key}, &resp)
	ids := make([]int64, len(resp.Events))
	for i, e := range resp.Events {
		ids[i] = e.ID
	}
	return ids
}

func (s *crashServer) runs(t *testing.T, trigger string) []*pipeline.Run {
	t.Helper()
	var resp struct {
		Runs []*pipeline.Run `json:"runs"`
	}
	s.call(t, "GET", "/api/v1/pipeline-runs?max_results=1000&trigger="+trigger, nil, &resp)
	return resp.Runs
}

func (s *crashServer) events(t *testing.T, trigger string) []*pipeline.TriggerEvent {
	t.Helper()
	var resp struct {
		Events []*pipeline.TriggerEvent `json:"events"`
	}
	s.call(t, "GET", "/api/v1/triggers/"+trigger+"/events?limit=1000", nil, &resp)
	return resp.Events
}

func crashRunsState(rs []*pipeline.Run) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "[%s %s events %v", r.ID, r.Status, r.EventIDs)
		for _, st := range r.Steps {
			fmt.Fprintf(&b, " %s:%s#%d", st.Name, st.Status, st.Attempt)
		}
		b.WriteString("] ")
	}
	return b.String()
}

// crashWait polls cond until it holds, failing the test at the deadline.
func crashWait(t *testing.T, s *crashServer, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; state: %s\nserver output:\n%s", what, state, s.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// runningFirstAttempt returns the run whose step is running its first
// attempt, or nil.
func runningFirstAttempt(rs []*pipeline.Run) *pipeline.Run {
	for _, r := range rs {
		if st := r.Step("work"); st != nil && r.Status == pipeline.RunRunning && st.Status == pipeline.StepRunning && st.Attempt == 1 {
			return r
		}
	}
	return nil
}

// retryRunning reports whether a run's step is running a retry.
func retryRunning(rs []*pipeline.Run) bool {
	for _, r := range rs {
		if st := r.Step("work"); st != nil && st.Status == pipeline.StepRunning && st.Attempt > 1 {
			return true
		}
	}
	return false
}

// TestCrashSafety kills a real server with SIGKILL at several moments —
// right after events were acknowledged, while a step runs — restarts it on
// the same data folder, and checks that no event was lost or decided twice,
// no run or step attempt started twice, the interrupted step was failed for
// that attempt and retried, every run succeeded, and no process of the
// killed server's steps is left.
func TestCrashSafety(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and kills real servers")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "mloop")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	data := filepath.Join(dir, "data")
	proj := filepath.Join(dir, "proj")
	if err := os.MkdirAll(proj, 0o755); err != nil {
		t.Fatal(err)
	}
	// Each attempt records its start (with its shell's pid and its child's)
	// and its end in journal. A run's first attempt waits for the file
	// release, so that an attempt killed with the server can only have
	// ended by being killed; a retry finishes at once, so that the test
	// never kills a last attempt. The attempt number comes from the task id
	// the local executor sets (MLOOP_TASK_ID=run/step/attempt): a first
	// attempt killed before its process wrote anything is still told apart
	// from its retry.
	journal := filepath.Join(dir, "journal")
	release := filepath.Join(dir, "release")
	script := fmt.Sprintf(`case "$MLOOP_TASK_ID" in */1) w=0;; *) w=1;; esac; echo "start $MLOOP_RUN_ID $$" >> %[1]s; (while [ $w = 0 ] && [ ! -f %[2]s ]; do sleep 0.05; done) & echo "child $MLOOP_RUN_ID $!" >> %[1]s; wait; echo "end $MLOOP_RUN_ID" >> %[1]s`, journal, release)
	spec := fmt.Sprintf("name: crashy\nsteps:\n  work:\n    run: %q\n    retries: 1\n    cache: false\n", script)
	specFile := filepath.Join(proj, "mloop.yaml")
	if err := os.WriteFile(specFile, []byte(spec), 0o644); err != nil {
		t.Fatal(err)
	}

	var posted []int64
	post := func(s *crashServer, key string) {
		t.Helper()
		ids := s.postEvent(t, "go", key)
		if len(ids) != 1 {
			t.Fatalf("post event %s: stored %v, want one event", key, ids)
		}
		posted = append(posted, ids...)
	}

	// 1. Kill right after an event was acknowledged.
	s := startCrashServer(t, bin, data)
	s.call(t, "POST", "/api/v1/triggers", map[string]any{"name": "crashy", "spec_file": specFile, "event": "go", "max_concurrent": 2}, nil)
	post(s, "e1")
	s.kill9(t)

	// 2. Kill while a step runs its first attempt (two runs may be active, so
	// that a run whose first attempt was killed above and now waits for
	// release does not hold back the others).
	s = startCrashServer(t, bin, data)
	post(s, "e2")
	post(s, "e3")
	var interrupted *pipeline.Run
	crashWait(t, s, "a step running its first attempt", func() (bool, string) {
		rs := s.runs(t, "crashy")
		interrupted = runningFirstAttempt(rs)
		// The store counts an attempt just before its process starts: wait
		// until the process has written its start, and until no retry
		// (of a run killed above) is still running.
		j, _ := os.ReadFile(journal)
		return interrupted != nil && strings.Contains(string(j), "start "+interrupted.ID) && !retryRunning(rs), crashRunsState(rs)
	})
	s.kill9(t)

	// 3. The restarted server killed the interrupted attempt's processes
	// before it listened. Then the steps may finish; once the interrupted
	// run was retried and succeeded, kill right after another event.
	s = startCrashServer(t, bin, data)
	// The journal lists the first attempt's shell and child first (the
	// retry may have started since).
	killed := journalPIDs(t, journal, interrupted.ID)
	if len(killed) < 2 {
		t.Fatalf("journal has pids %v for run %s, want its first attempt's shell and child", killed, interrupted.ID)
	}
	killed = killed[:2]
	crashWait(t, s, "the processes of the interrupted attempt to be gone", func() (bool, string) {
		for _, pid := range killed {
			if crashProcessAlive(pid) {
				return false, fmt.Sprintf("process %d alive", pid)
			}
		}
		return true, ""
	})
	if err := os.WriteFile(release, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	crashWait(t, s, "the interrupted run to succeed and no retry to run", func() (bool, string) {
		var r pipeline.Run
		s.call(t, "GET", "/api/v1/pipeline-runs/"+interrupted.ID, nil, &r)
		rs := s.runs(t, "crashy")
		return r.Status == pipeline.RunSucceeded && !retryRunning(rs), crashRunsState(rs)
	})
	post(s, "e4")
	s.kill9(t)

	// 4. Let everything settle.
	s = startCrashServer(t, bin, data)
	defer s.stop(t)
	crashWait(t, s, "every event decided and every run ended", func() (bool, string) {
		evs := s.events(t, "crashy")
		rs := s.runs(t, "crashy")
		for _, e := range evs {
			if e.Status == pipeline.EventPending {
				return false, crashRunsState(rs)
			}
		}
		for _, r := range rs {
			if !r.Status.Done() {
				return false, crashRunsState(rs)
			}
		}
		return len(evs) == len(posted), crashRunsState(rs)
	})

	evs := s.events(t, "crashy")
	rs := s.runs(t, "crashy")
	state := crashRunsState(rs)
	t.Logf("events posted %v; runs: %s", posted, state)
	// Every posted event is stored once and fired once, by a run that
	// answers it.
	byID := map[int64]*pipeline.TriggerEvent{}
	for _, e := range evs {
		if byID[e.ID] != nil {
			t.Errorf("event %d listed twice", e.ID)
		}
		byID[e.ID] = e
	}
	if len(evs) != len(posted) {
		t.Errorf("trigger has %d events, want the %d posted (%v)", len(evs), len(posted), posted)
	}
	runOf := map[int64]string{}
	for _, r := range rs {
		if len(r.EventIDs) == 0 {
			t.Errorf("run %s answers no event: %s", r.ID, state)
		}
		for _, id := range r.EventIDs {
			if prev, ok := runOf[id]; ok {
				t.Errorf("event %d answered by runs %s and %s: %s", id, prev, r.ID, state)
			}
			runOf[id] = r.ID
		}
		if r.Status != pipeline.RunSucceeded {
			t.Errorf("run %s ended %s (%s), want succeeded: %s", r.ID, r.Status, r.Error, state)
		}
	}
	for _, id := range posted {
		e := byID[id]
		switch {
		case e == nil:
			t.Errorf("posted event %d was lost", id)
		case e.Status != pipeline.EventFired || e.RunID == "" || runOf[id] != e.RunID:
			t.Errorf("event %d: status %s run %q reason %q; want fired by the run answering it (%q)", id, e.Status, e.RunID, e.Reason, runOf[id])
		}
	}

	// No step attempt started twice: the journal has at most one start per
	// attempt the store counted (a kill between the count and the process
	// start leaves one fewer). An attempt may have ended just before a kill
	// that kept the server from recording it: it is then counted failed and
	// retried, so a run may show more than one end, never more than starts.
	starts, ends := map[string]int{}, map[string]int{}
	var pids []int
	f, err := os.Open(journal)
	if err != nil {
		t.Fatalf("open journal: %v", err)
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 2 {
			continue
		}
		switch fields[0] {
		case "start":
			starts[fields[1]]++
		case "end":
			ends[fields[1]]++
		}
		if len(fields) == 3 {
			pid, _ := strconv.Atoi(fields[2])
			pids = append(pids, pid)
		}
	}
	f.Close()
	for _, r := range rs {
		st := r.Step("work")
		if st == nil {
			t.Fatalf("run %s has no step work", r.ID)
		}
		if starts[r.ID] < 1 || starts[r.ID] > st.Attempt || ends[r.ID] < 1 || ends[r.ID] > starts[r.ID] || st.Attempt > 2 {
			t.Errorf("run %s: journal has %d starts and %d ends, the store %d attempts; want at most one start per attempt, an end, at most 2 attempts", r.ID, starts[r.ID], ends[r.ID], st.Attempt)
		}
	}
	if len(starts) != len(rs) {
		t.Errorf("the journal shows attempts of %d runs, the store has %d runs: %v", len(starts), len(rs), starts)
	}
	// The interrupted step was failed for its first attempt and retried.
	var r pipeline.Run
	s.call(t, "GET", "/api/v1/pipeline-runs/"+interrupted.ID, nil, &r)
	if st := r.Step("work"); st == nil || st.Attempt != 2 || starts[r.ID] != 2 || st.Status != pipeline.StepSucceeded {
		t.Errorf("interrupted run %s: step %+v, want succeeded at attempt 2", r.ID, st)
	}
	resp, err := http.Get(s.url + "/api/v1/pipeline-runs/" + interrupted.ID + "/logs?step=work")
	if err != nil {
		t.Fatal(err)
	}
	log, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(log), "attempt 1 failed: the server stopped") {
		t.Errorf("log of the interrupted step does not record the failed attempt:\n%s", log)
	}
	// No process of a killed server's steps is left.
	for _, pid := range pids {
		if crashProcessAlive(pid) {
			t.Errorf("process %d of a step is still alive", pid)
		}
	}
}

// journalPIDs returns the pids the journal records for run.
func journalPIDs(t *testing.T, journal, run string) []int {
	t.Helper()
	b, err := os.ReadFile(journal)
	if err != nil {
		t.Fatalf("read journal: %v", err)
	}
	var pids []int
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 3 && f[1] == run {
			pid, err := strconv.Atoi(f[2])
			if err != nil {
				t.Fatalf("journal line %q: %v", line, err)
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

// crashProcessAlive reports whether pid is a live step process (not a
// zombie, and not another process that reused the pid: a step's processes
// carry MLOOP_RUN_ID in their environment).
func crashProcessAlive(pid int) bool {
	if pid <= 0 || syscall.Kill(pid, 0) != nil {
		return false
	}
	if env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid)); err == nil && !bytes.Contains(env, []byte("MLOOP_RUN_ID=")) {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no /proc: trust kill(0)
	}
	// The state follows the command name in parentheses.
	s := string(b)
	if i := strings.LastIndexByte(s, ')'); i >= 0 && i+2 < len(s) {
		return s[i+2] != 'Z'
	}
	return true
}
