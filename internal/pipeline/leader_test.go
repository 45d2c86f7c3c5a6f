package pipeline_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mloop/mloop/internal/pipeline"
)

const leaderSpec = `name: lead
steps:
  one:
    run: 'echo hi > ${{ outputs.o }}'
    outputs: {o: o.txt}
    cache: false
`

// Two servers on one database: one runs the controllers, the other stands
// by, accepts runs for the leader and takes over when the leader stops.
func TestLeadership(t *testing.T) {
	e := mustEnv(t)
	e.svc.LeaseTTL = 300 * time.Millisecond
	e.open(t)
	if !e.svc.Leading() {
		t.Fatal("the first server does not lead")
	}
	standby := pipeline.NewService(e.store, e.tr, nil, e.ds, e.arts, filepath.Join(t.TempDir(), "work"))
	standby.PollInterval, standby.LeaseTTL, standby.Owner = 50*time.Millisecond, 300*time.Millisecond, "standby"
	if err := standby.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { standby.Close() })
	if standby.Leading() {
		t.Fatal("the second server leads while the first holds the lease")
	}
	e.write(t, "mloop.yaml", leaderSpec)
	req := pipeline.SubmitRequest{SpecFile: filepath.Join(e.project, "mloop.yaml"), ProjectDir: e.project, Spec: leaderSpec, User: "t"}
	r, err := standby.Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.waitDone(t, r.ID); got.Status != pipeline.RunSucceeded || got.Owner != "test" {
		t.Fatalf("run submitted to the standby: got %s by %q, want succeeded by the leader %q", got.Status, got.Owner, "test")
	}

	if err := e.svc.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !standby.Leading() {
		if time.Now().After(deadline) {
			t.Fatal("the standby did not take over after the leader stopped")
		}
		time.Sleep(20 * time.Millisecond)
	}
	r, err = standby.Submit(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.waitDone(t, r.ID); got.Status != pipeline.RunSucceeded || got.Owner != "standby" {
		t.Fatalf("run after the take-over: got %s by %q, want succeeded by %q", got.Status, got.Owner, "standby")
	}
}

// A lease held by a process of this host that no longer exists (a server
// killed with kill -9) is taken over at once, not after it expires.
func TestLeadershipTakesOverFromDeadProcess(t *testing.T) {
	e := mustEnv(t)
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	now := time.Now()
	me, ok := pipeline.ProcessIdentity(os.Getpid())
	if !ok {
		t.Skip("this system does not identify processes; leases of dead servers expire instead")
	}
	// The holder's identity: this boot and PID namespace, the dead pid.
	dead := host + ":" + strconv.Itoa(gone.Process.Pid) + ":1|" + me[:strings.LastIndexByte(me, '/')+1] + "12345"
	if ok, err := e.store.AcquireLease(context.Background(), pipeline.ControllerLease, dead, now.Add(time.Hour), now, ""); !ok || err != nil {
		t.Fatalf("set up the dead holder's lease: %v %v", ok, err)
	}
	e.open(t)
	if !e.svc.Leading() {
		t.Fatal("the server does not lead although the lease's holder is dead")
	}

	// A live holder (another host, as far as this one can tell) is waited for.
	e2 := mustEnv(t)
	if ok, err := e2.store.AcquireLease(context.Background(), pipeline.ControllerLease, "elsewhere:1:1", now.Add(time.Hour), now, ""); !ok || err != nil {
		t.Fatalf("set up the live holder's lease: %v %v", ok, err)
	}
	e2.open(t)
	if e2.svc.Leading() {
		t.Fatal("the server took the lease of a live holder")
	}
}

// Two live servers never both lead, whatever their names: a holder whose
// process cannot be shown dead keeps the lease until it lapses.
func TestLeadershipIsExclusive(t *testing.T) {
	e := mustEnv(t)
	e.svc.LeaseTTL, e.svc.Owner = 300*time.Millisecond, "host:999991:1"
	e.open(t)
	other := pipeline.NewService(e.store, e.tr, nil, e.ds, e.arts, filepath.Join(t.TempDir(), "work"))
	other.PollInterval, other.LeaseTTL, other.Owner = 50*time.Millisecond, 300*time.Millisecond, "host:999992:1"
	if err := other.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	for range 20 { // several renewal periods
		if e.svc.Leading() == other.Leading() {
			t.Fatalf("leading: first %v, second %v; want exactly one", e.svc.Leading(), other.Leading())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// failingLeases is a store whose lease renewals fail once told to, as when
// the database cannot be reached.
type failingLeases struct {
	pipeline.Store
	fail atomic.Bool
}

func (f *failingLeases) AcquireLease(ctx context.Context, name, owner string, until, now time.Time, takeOver string) (bool, error) {
	if f.fail.Load() {
		return false, errors.New("database unreachable")
	}
	return f.Store.AcquireLease(ctx, name, owner, until, now, takeOver)
}

// A leader that cannot renew its lease stops its controllers by itself.
func TestLeadershipFencesWhenRenewalsFail(t *testing.T) {
	e := mustEnv(t)
	store := &failingLeases{Store: e.store}
	svc := pipeline.NewService(store, e.tr, nil, e.ds, e.arts, filepath.Join(t.TempDir(), "work"))
	svc.PollInterval, svc.LeaseTTL = 20*time.Millisecond, 300*time.Millisecond
	if err := svc.Open(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { svc.Close() })
	if !svc.Leading() {
		t.Fatal("the only server does not lead")
	}
	store.fail.Store(true)
	deadline := time.Now().Add(10 * time.Second)
	for svc.Leading() {
		if time.Now().After(deadline) {
			t.Fatal("the leader kept leading without renewing its lease")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Renewals work again: it takes the lease back and leads.
	store.fail.Store(false)
	for !svc.Leading() {
		if time.Now().After(deadline) {
			t.Fatal("the server did not lead again once its lease could be taken")
		}
		time.Sleep(10 * time.Millisecond)
	}
}
