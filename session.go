package etcdkit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// A session is a lease kept alive in the background, the liveness behind the
// keys of locks, semaphores and elections: when the holder dies, the lease
// expires and its keys vanish.
//
// Sessions are shared: one per client and TTL serves all its locks, which
// keeps Lock+Unlock at one round trip each. The exception is two locks (or
// campaigns) on the same name from one client: their key is the name plus
// the lease ID, so they need different leases, and the pool hands out another
// session for the second one.
type session struct {
	id  clientv3.LeaseID
	ttl int64

	// ctx ends when the lease can no longer be relied on. Its cause wraps
	// ErrLeaseLost at the keep-alive's deadline (no refresh confirmed in
	// time: the server may expire the lease at any moment, so holders must
	// stop), ErrLeaseExpired when the server said the lease is gone, and
	// ErrClosed when the session was closed.
	ctx    context.Context
	cancel context.CancelCauseFunc

	stopKeepAlive func() // stops the refreshes without ending ctx

	// Guarded by the pool's mutex.
	names   map[string]struct{} // names with a key on this lease
	users   int                 // live handles using the lease
	retired bool                // handed out no more; revoked when its last user leaves
}

// dead reports whether the lease is no longer kept alive.
func (s *session) dead() bool { return s.ctx.Err() != nil }

// err says why the session ended.
func (s *session) err() error { return context.Cause(s.ctx) }

// maxIdleSessions bounds the extra sessions kept for same-name locks after
// they are released; more are revoked, so a burst does not leave leases
// refreshed forever.
const maxIdleSessions = 2

// sessionPool holds a client's sessions, by TTL in seconds.
type sessionPool struct {
	c      *Client
	mu     sync.Mutex
	byTTL  map[int64][]*session
	closed bool
}

// sessions returns the client's session pool, making it on first use.
func (c *Client) sessions() (*sessionPool, error) {
	c.poolOnce.Do(func() {
		p := &sessionPool{c: c, byTTL: map[int64][]*session{}}
		if _, err := c.onClose(func(ctx context.Context) { p.close(ctx) }); err != nil {
			c.poolErr = err
			return
		}
		c.pool = p
	})
	if c.poolErr != nil {
		return nil, &opError{op: "lock session", err: c.poolErr}
	}
	return c.pool, nil
}

// acquire returns a live session with the TTL and registers one more user.
// With a non-empty name, the session has no other key for that name; the
// caller releases the name with release.
func (p *sessionPool) acquire(ctx context.Context, ttl int64, name string) (*session, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	if s := p.pick(ttl, name); s != nil {
		p.mu.Unlock()
		return s, nil
	}
	p.mu.Unlock()
	s, err := p.grant(ctx, ttl)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		cctx, cancel := context.WithTimeout(context.Background(), closeGrace)
		defer cancel()
		s.close(cctx, p.c)
		return nil, ErrClosed
	}
	p.byTTL[ttl] = append(p.byTTL[ttl], s)
	p.use(s, name)
	return s, nil
}

// pick finds a live session free for name, dropping dead ones on the way.
// p.mu is held.
func (p *sessionPool) pick(ttl int64, name string) *session {
	list := p.byTTL[ttl]
	live := list[:0]
	var found *session
	for _, s := range list {
		if s.dead() {
			continue
		}
		live = append(live, s)
		if found == nil && !s.retired {
			if _, taken := s.names[name]; name == "" || !taken {
				found = s
			}
		}
	}
	clear(list[len(live):])
	p.byTTL[ttl] = live
	if found != nil {
		p.use(found, name)
	}
	return found
}

func (p *sessionPool) use(s *session, name string) {
	s.users++
	if name != "" {
		s.names[name] = struct{}{}
	}
}

// release ends one use of s (and of name on it). Extra idle sessions beyond
// maxIdleSessions, and retired sessions nobody uses, are revoked in the
// background.
func (p *sessionPool) release(s *session, name string) {
	p.mu.Lock()
	s.users--
	if name != "" {
		delete(s.names, name)
	}
	victim := p.surplus(s)
	p.mu.Unlock()
	p.revokeLater(victim)
}

// retire stops handing s out for new locks, because a key may have been
// left on its lease that nobody holds: a put whose answer was lost, or a
// key whose delete failed. Revoking the lease is the one clean-up that is
// sure to work whatever landed, and whenever (a put on a revoked lease
// fails), but it would end the other locks on s; so s serves its current
// users only, and is revoked when the last of them releases it. Until then
// a background sweep deletes the key (see Client.leaveBehind).
func (p *sessionPool) retire(s *session) {
	p.mu.Lock()
	s.retired = true
	victim := p.surplus(s)
	p.mu.Unlock()
	p.revokeLater(victim)
}

// forget releases name on s once its key is known to be gone.
func (p *sessionPool) forget(s *session, name string) {
	if name == "" {
		return
	}
	p.mu.Lock()
	delete(s.names, name)
	p.mu.Unlock()
}

// revokeLater closes s, if not nil, in the background.
func (p *sessionPool) revokeLater(s *session) {
	if s == nil {
		return
	}
	p.c.goBackground(func() {
		ctx, cancel := context.WithTimeout(p.c.ctx, closeGrace)
		defer cancel()
		s.close(ctx, p.c)
	})
}

// surplus removes and returns s if nobody uses it and it is retired, or an
// idle extra session beyond the allowance. p.mu is held.
func (p *sessionPool) surplus(s *session) *session {
	if s.users > 0 || p.closed {
		return nil
	}
	list := p.byTTL[s.ttl]
	idle := 0
	at := -1
	for i, o := range list {
		if o == s {
			at = i
		}
		if i > 0 && o.users == 0 {
			idle++
		}
	}
	switch {
	case at < 0:
		return nil // dropped already, being dead
	case s.retired:
	case at == 0 || idle <= maxIdleSessions:
		return nil
	}
	p.byTTL[s.ttl] = append(list[:at:at], list[at+1:]...)
	return s
}

// discard drops a session whose lease turned out to be gone, so that it is
// replaced rather than reused.
func (p *sessionPool) discard(s *session) {
	s.cancel(&opError{op: "keep lease alive", key: leaseKey(s.id), err: ErrLeaseExpired})
	s.stopKeepAlive()
}

// grant makes a session: a new lease and its keep-alive.
func (p *sessionPool) grant(ctx context.Context, ttl int64) (*session, error) {
	s, _, err := p.c.grantSession(ctx, ttl)
	return s, err
}

// grantSession grants a lease and starts keeping it alive. A grant whose
// answer was lost leaves a lease with no key on it, which expires by itself.
func (c *Client) grantSession(ctx context.Context, ttl int64) (*session, *keeper, error) {
	gctx, cancel := c.bound(ctx)
	sent := time.Now() // the server counts the TTL from a moment after this
	resp, err := c.raw.Lease.Grant(gctx, ttl)
	cancel()
	if err != nil {
		return nil, nil, opErr("grant lease", "", err)
	}
	s := &session{id: resp.ID, ttl: ttl, names: map[string]struct{}{}}
	s.ctx, s.cancel = context.WithCancelCause(context.Background())
	ka := newKeeper(c, resp.ID, time.Duration(resp.TTL)*time.Second, sent, s.end)
	s.stopKeepAlive = ka.stop
	_ = ka.start() // a keeper that ended already has ended s.ctx
	return s, ka, nil
}

// end ends the session's ctx with why, keeping the first reason.
func (s *session) end(why error) {
	s.cancel(&opError{op: "keep lease alive", key: leaseKey(s.id), err: why})
}

// close stops the keep-alive and revokes the lease, which deletes every key
// still on it. Holders learn of the close before the revocation deletes
// their keys, so that they see it as a close and not a loss.
func (s *session) close(ctx context.Context, c *Client) {
	s.stopKeepAlive()
	s.end(ErrClosed)
	if _, err := c.raw.Lease.Revoke(ctx, s.id); err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		c.log.Warn("etcdkit: revoke session lease", "lease", leaseKey(s.id), "error", err)
	}
}

// close revokes every session, concurrently, within ctx.
func (p *sessionPool) close(ctx context.Context) {
	p.mu.Lock()
	p.closed = true
	var all []*session
	for _, list := range p.byTTL {
		all = append(all, list...)
	}
	p.byTTL = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, s := range all {
		wg.Go(func() { s.close(ctx, p.c) })
	}
	wg.Wait()
}

// isLeaseGone reports whether err says the lease does not exist.
func isLeaseGone(err error) bool {
	return errors.Is(err, rpctypes.ErrLeaseNotFound) || errors.Is(err, rpctypes.ErrGRPCLeaseNotFound)
}

// leaseKey names a lease in errors and logs.
func leaseKey(id clientv3.LeaseID) string { return fmt.Sprintf("lease %x", int64(id)) }
