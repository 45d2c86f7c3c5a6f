package pipeline

import (
	"context"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/mloop/mloop"
)

// Leadership: of the servers sharing one database, the one holding the lease
// ControllerLease runs the pipeline controllers (the runner loop and the
// trigger controller); the others stand by. The holder renews the lease every
// third of LeaseTTL; a holder that could not renew it for two thirds of the
// TTL stops its controllers before the lease can pass to another server, so
// two servers never run the same run. A server that finds the lease held by
// a process of its own host that no longer exists (it was killed) takes it
// over at once instead of waiting for it to expire.

// ControllerLease is the name of the pipeline controllers' lease.
const ControllerLease = "pipeline-controllers"

// DefaultLeaseTTL is the controllers' lease duration when Service.LeaseTTL
// is zero.
const DefaultLeaseTTL = 15 * time.Second

// leaderState is the leadership's in-memory state inside runnerState.
type leaderState struct {
	stop    context.CancelFunc
	done    chan struct{}
	leading bool
}

func (s *Service) leaseTTL() time.Duration {
	if s.LeaseTTL > 0 {
		return s.LeaseTTL
	}
	return DefaultLeaseTTL
}

// openLeadership takes the lease if it can and starts the controllers, then
// keeps renewing (or waiting for) the lease in the background.
func (s *Service) openLeadership(ctx context.Context) error {
	started := s.now()
	leading, err := s.acquireLease(ctx, false)
	if err != nil {
		return err
	}
	if leading {
		if err := s.startControllers(ctx); err != nil {
			s.releaseLease()
			return err
		}
		started, leading = s.confirmLease(ctx, started)
	} else {
		holder, _, _ := s.Store.Lease(ctx, ControllerLease)
		s.logger().Info("another server runs the pipeline controllers; this one stands by", "leader", holder)
	}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	s.rs.mu.Lock()
	s.rs.lead = leaderState{stop: stop, done: done, leading: leading}
	s.rs.mu.Unlock()
	go s.leaseLoop(lctx, done, leading, started)
	return nil
}

// confirmLease renews the lease right after the controllers started (their
// recovery may have taken a while) and returns when the renewal that now
// holds started, and whether this service still leads. A lease lost
// meanwhile stops the controllers again.
func (s *Service) confirmLease(ctx context.Context, acquired time.Time) (time.Time, bool) {
	started := s.now()
	actx, cancel := context.WithTimeout(ctx, s.leaseTTL()/3)
	ok, err := s.acquireLease(actx, true)
	cancel()
	switch {
	case ok:
		return started, true
	case err == nil:
		s.logger().Error("lost the pipeline controllers' lease while starting them; stopping them")
		s.stopControllers()
		return started, false
	default:
		s.logger().Warn("renew the pipeline controllers' lease", "err", err)
		return acquired, true
	}
}

// closeLeadership stops the lease loop and the controllers and releases the
// lease, so that a standby server takes over at once.
func (s *Service) closeLeadership() {
	s.rs.mu.Lock()
	l := s.rs.lead
	s.rs.lead = leaderState{}
	s.rs.mu.Unlock()
	if l.stop != nil {
		l.stop()
		<-l.done
	}
	s.stopControllers()
	s.releaseLease()
}

// leaseLoop renews the lease while leading, and tries to take it while
// standing by, until ctx ends. A leader fences itself: when its last
// successful renewal, started at t, is about to lapse (t + TTL − TTL/3)
// without another, it stops its controllers, so they have stopped before
// any other server can take the lease at t + TTL.
func (s *Service) leaseLoop(ctx context.Context, done chan struct{}, leading bool, renewed time.Time) {
	defer close(done)
	ttl := s.leaseTTL()
	interval := ttl / 3
	fenceAt := renewed.Add(ttl - interval)
	for {
		wait := interval
		if leading {
			wait = min(wait, max(fenceAt.Sub(s.now()), 0))
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		if leading && !s.now().Before(fenceAt) {
			s.logger().Error("could not renew the pipeline controllers' lease in time; stopping them")
			s.stopControllers()
			leading = false
			s.setLeading(false)
			continue
		}
		started := s.now()
		actx, cancel := context.WithTimeout(ctx, interval)
		ok, err := s.acquireLease(actx, leading)
		cancel()
		if ctx.Err() != nil {
			return
		}
		switch {
		case leading && ok:
			fenceAt = started.Add(ttl - interval)
		case leading && err == nil:
			// Another server holds the lease: this one lost it (it had
			// lapsed). Stop at once; taking it back goes through recovery.
			s.logger().Error("lost the pipeline controllers' lease to another server; stopping them")
			s.stopControllers()
			leading = false
		case leading:
			s.logger().Warn("renew the pipeline controllers' lease; retrying", "err", err, "fence_in", fenceAt.Sub(s.now()))
		case ok:
			s.logger().Info("took over the pipeline controllers")
			if err := s.startControllers(ctx); err != nil {
				s.logger().Error("start the pipeline controllers", "err", err)
				s.releaseLease()
				continue
			}
			started, leading = s.confirmLease(ctx, started)
			fenceAt = started.Add(ttl - interval)
		case err != nil:
			s.logger().Warn("look at the pipeline controllers' lease", "err", err)
		}
		s.setLeading(leading)
	}
}

func (s *Service) setLeading(leading bool) {
	s.rs.mu.Lock()
	s.rs.lead.leading = leading
	s.rs.mu.Unlock()
}

// leaseOwner is this service's name in the lease: its owner name and, where
// the system tells, its process identity (see processIdentity), which lets
// a successor on the same host tell that it died.
func (s *Service) leaseOwner() string {
	if id, ok := processIdentity(os.Getpid()); ok {
		return s.owner() + "|" + id
	}
	return s.owner()
}

// acquireLease takes or renews the controllers' lease. A standby (not
// leading) also takes it over from a holder that is a dead process of this
// host; a leader never takes over: a lease held by someone else means it
// lost it.
func (s *Service) acquireLease(ctx context.Context, leading bool) (bool, error) {
	owner, now := s.leaseOwner(), s.now()
	takeOver := ""
	if !leading {
		holder, _, err := s.Store.Lease(ctx, ControllerLease)
		switch {
		case err == nil && holder != owner && deadHolder(holder):
			takeOver = holder
		case err != nil && !mloop.IsNotFound(err):
			return false, err
		}
	}
	return s.Store.AcquireLease(ctx, ControllerLease, owner, now.Add(s.leaseTTL()), now, takeOver)
}

// releaseLease gives up the lease, best effort.
func (s *Service) releaseLease() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Store.ReleaseLease(ctx, ControllerLease, s.leaseOwner()); err != nil {
		s.logger().Warn("release the pipeline controllers' lease", "err", err)
	}
}

// Leading reports whether this service runs the pipeline controllers.
func (s *Service) Leading() bool {
	s.rs.mu.Lock()
	defer s.rs.mu.Unlock()
	return s.rs.lead.leading
}

// deadHolder reports whether a lease holder (see leaseOwner) is a process
// that no longer exists: one of this boot and PID namespace whose pid is
// gone or now names another process (another start time). A holder without
// a process identity, or of another host, boot or container, is presumed
// alive: its lease expires instead.
func deadHolder(holder string) bool {
	base, ident, ok := strings.Cut(holder, "|")
	if !ok {
		return false
	}
	host, rest, ok := strings.Cut(base, ":")
	if !ok {
		return false
	}
	pidText, _, _ := strings.Cut(rest, ":")
	pid, err := strconv.Atoi(pidText)
	if me, _ := os.Hostname(); err != nil || host != me || pid <= 0 || pid == os.Getpid() {
		return false
	}
	mine, ok := processIdentity(os.Getpid())
	if !ok {
		return false
	}
	// Identities are "boot/pidns/start": compare the boot and namespace.
	if space := func(id string) string { return id[:strings.LastIndexByte(id, '/')+1] }; !strings.Contains(ident, "/") || space(ident) != space(mine) {
		return false
	}
	now, alive := processIdentity(pid)
	return !alive || now != ident
}
