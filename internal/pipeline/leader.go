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
	leading, err := s.acquireLease(ctx)
	if err != nil {
		return err
	}
	if leading {
		if err := s.startControllers(ctx); err != nil {
			s.releaseLease()
			return err
		}
	} else {
		holder, _, _ := s.Store.Lease(ctx, ControllerLease)
		s.logger().Info("another server runs the pipeline controllers; this one stands by", "leader", holder)
	}
	lctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	s.rs.mu.Lock()
	s.rs.lead = leaderState{stop: stop, done: done, leading: leading}
	s.rs.mu.Unlock()
	go s.leaseLoop(lctx, done, leading)
	return nil
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
// standing by, until ctx ends.
func (s *Service) leaseLoop(ctx context.Context, done chan struct{}, leading bool) {
	defer close(done)
	ttl := s.leaseTTL()
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	renewed := s.now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		ok, err := s.acquireLease(ctx)
		if ctx.Err() != nil {
			return
		}
		switch {
		case leading && ok:
			renewed = s.now()
		case leading:
			lost := err == nil // another server holds it: it expired meanwhile
			if !lost && s.now().Sub(renewed) < 2*ttl/3 {
				s.logger().Warn("renew the pipeline controllers' lease; retrying", "err", err)
				continue
			}
			s.logger().Error("lost the pipeline controllers' lease; stopping them", "err", err)
			s.stopControllers()
			leading = false
		case ok:
			s.logger().Info("took over the pipeline controllers")
			if err := s.startControllers(ctx); err != nil {
				s.logger().Error("start the pipeline controllers", "err", err)
				s.releaseLease()
				continue
			}
			leading, renewed = true, s.now()
		case err != nil:
			s.logger().Warn("look at the pipeline controllers' lease", "err", err)
		}
		s.rs.mu.Lock()
		s.rs.lead.leading = leading
		s.rs.mu.Unlock()
	}
}

// acquireLease takes or renews the controllers' lease, taking it over from a
// holder on this host whose process is gone.
func (s *Service) acquireLease(ctx context.Context) (bool, error) {
	owner, now := s.owner(), s.now()
	takeOver := ""
	if holder, _, err := s.Store.Lease(ctx, ControllerLease); err == nil && holder != owner && deadLocalOwner(holder) {
		takeOver = holder
	} else if err != nil && !mloop.IsNotFound(err) {
		return false, err
	}
	return s.Store.AcquireLease(ctx, ControllerLease, owner, now.Add(s.leaseTTL()), now, takeOver)
}

// releaseLease gives up the lease, best effort.
func (s *Service) releaseLease() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.Store.ReleaseLease(ctx, ControllerLease, s.owner()); err != nil {
		s.logger().Warn("release the pipeline controllers' lease", "err", err)
	}
}

// Leading reports whether this service runs the pipeline controllers.
func (s *Service) Leading() bool {
	s.rs.mu.Lock()
	defer s.rs.mu.Unlock()
	return s.rs.lead.leading
}

// deadLocalOwner reports whether owner ("host:pid:start", see owner) names
// a process of this host, other than this one, that no longer exists.
func deadLocalOwner(owner string) bool {
	host, rest, ok := strings.Cut(owner, ":")
	if !ok {
		return false
	}
	pidText, _, _ := strings.Cut(rest, ":")
	pid, err := strconv.Atoi(pidText)
	if me, _ := os.Hostname(); err != nil || host != me || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return !processAlive(pid)
}
