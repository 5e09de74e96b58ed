package etcdkit

import (
	"fmt"
	"time"
)

// DefaultLeaderTTL is the lease TTL behind [Client.RunAsLeader] when no
// [LeaderTTL] is given: if the leader's process dies, the next leader
// starts at most this long after.
const DefaultLeaderTTL = 10 * time.Second

// DefaultLeaderStopGrace is how long [Client.RunAsLeader] keeps the
// leadership for a function whose ctx ended but that has not returned,
// when no [LeaderStopGrace] is given.
const DefaultLeaderStopGrace = 10 * time.Second

// Default bounds of the pause between attempts of [Client.RunAsLeader]
// that failed (a lease that could not be granted, a campaign cut short),
// when no [LeaderBackoff] is given.
const (
	DefaultLeaderBackoffMin = 100 * time.Millisecond
	DefaultLeaderBackoffMax = 5 * time.Second
)

// LeaderOption changes how [Client.RunAsLeader] campaigns and runs.
type LeaderOption interface {
	applyLeader(*leaderOptions)
}

type leaderOptions struct {
	ttl                    time.Duration
	grace                  time.Duration
	backoffMin, backoffMax time.Duration
	onEvent                func(LeaderEvent)
}

type leaderOptionFunc func(*leaderOptions)

func (f leaderOptionFunc) applyLeader(o *leaderOptions) { f(o) }

// LeaderTTL sets the TTL of the lease behind the candidacy: how long the
// leadership outlives a leader that stopped refreshing it, for example
// because its process died or its network was cut. It is rounded up to whole
// seconds, as etcd counts TTLs in seconds. Under one second, RunAsLeader
// fails with [ErrInvalidTTL]. The default is [DefaultLeaderTTL].
func LeaderTTL(d time.Duration) LeaderOption {
	return leaderOptionFunc(func(o *leaderOptions) { o.ttl = d })
}

// LeaderStopGrace sets how long the leadership is kept for a function whose
// ctx ended but that has not returned. Past it, the lease is no longer
// refreshed, so the key lapses with it at most a TTL later, and a
// [LeaderStopOverrun] event and a warning say so. A negative duration makes
// RunAsLeader fail with [ErrInvalidArgument]; zero stops refreshing at once.
// The default is [DefaultLeaderStopGrace].
func LeaderStopGrace(d time.Duration) LeaderOption {
	return leaderOptionFunc(func(o *leaderOptions) { o.grace = d })
}

// LeaderBackoff sets the bounds of the pause after a failed attempt (a
// lease that could not be granted, a campaign cut short by the network),
// which doubles with each failure in a row, from least to most. A least
// that is not positive, or a most under least, makes RunAsLeader fail with
// [ErrInvalidArgument]. The defaults are [DefaultLeaderBackoffMin] and
// [DefaultLeaderBackoffMax].
func LeaderBackoff(least, most time.Duration) LeaderOption {
	return leaderOptionFunc(func(o *leaderOptions) { o.backoffMin, o.backoffMax = least, most })
}

// OnLeaderEvent calls fn with each [LeaderEvent] of the run: this client
// started and stopped leading, the stop grace overran, and a new leader of
// the name (any client's) was observed. Calls are never concurrent; fn
// should return quickly, as the run waits for it.
func OnLeaderEvent(fn func(LeaderEvent)) LeaderOption {
	return leaderOptionFunc(func(o *leaderOptions) { o.onEvent = fn })
}

// leaderOpts applies opts and checks them.
func leaderOpts(name string, opts []LeaderOption) (leaderOptions, error) {
	o := leaderOptions{ttl: DefaultLeaderTTL, grace: DefaultLeaderStopGrace,
		backoffMin: DefaultLeaderBackoffMin, backoffMax: DefaultLeaderBackoffMax}
	for _, opt := range opts {
		if opt != nil {
			opt.applyLeader(&o)
		}
	}
	bad := func(sentinel error, format string, args ...any) error {
		return &opError{op: "run as leader", key: name, err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
	}
	switch {
	case o.ttl < time.Second:
		return o, bad(ErrInvalidTTL, "%v is under one second", o.ttl)
	case o.grace < 0:
		return o, bad(ErrInvalidArgument, "negative stop grace %v", o.grace)
	case o.backoffMin <= 0 || o.backoffMax < o.backoffMin:
		return o, bad(ErrInvalidArgument, "backoff from %v to %v", o.backoffMin, o.backoffMax)
	}
	return o, nil
}

// ttlSeconds is the TTL rounded up to whole seconds.
func (o leaderOptions) ttlSeconds() int64 {
	return int64((o.ttl + time.Second - 1) / time.Second)
}
