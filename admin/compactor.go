package admin

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/internal/errs"
)

// Retention says how much history a [Compactor] keeps: [KeepFor] or
// [KeepRevisions].
type Retention interface {
	target(now time.Time, rev int64, s *samples) (int64, time.Time)
}

type keepFor time.Duration

// KeepFor keeps the history of the last d: every revision written less
// than d ago stays readable; older ones go at the next compaction after
// they are d old (within one interval of [CompactEvery]). d must be > 0,
// else [NewCompactor] fails with [etcdkit.ErrInvalidArgument].
func KeepFor(d time.Duration) Retention { return keepFor(d) }

func (k keepFor) target(now time.Time, rev int64, s *samples) (int64, time.Time) {
	s.add(now, rev)
	return s.before(now.Add(-time.Duration(k)))
}

type keepRevisions int64

// KeepRevisions keeps the last n revisions: a compaction removes the
// history before the current revision minus n. n must be > 0, else
// [NewCompactor] fails with [etcdkit.ErrInvalidArgument].
func KeepRevisions(n int64) Retention { return keepRevisions(n) }

func (k keepRevisions) target(_ time.Time, rev int64, _ *samples) (int64, time.Time) {
	return rev - int64(k), time.Time{}
}

// Compaction is one compaction a [Compactor] made.
type Compaction struct {
	Revision int64     // revisions before it are gone
	Round    int64     // the coordination key's version: each round has one compactor
	At       time.Time // when it was made
	// Since is, with KeepFor, the moment from which history is kept:
	// Revision was the current revision then. Zero with KeepRevisions.
	Since time.Time
}

// Compactor compacts the history of the cluster periodically, so that it
// does not grow without bound, and can run in every replica of a service:
// in each interval exactly one of the Compactors sharing a coordination key
// compacts. Make one with [NewCompactor] and call [Compactor.Run].
//
// It uses the scheme of the Kubernetes apiserver: every interval, each
// Compactor tries a compare-and-swap on the key, expecting the version it
// saw last; the one whose swap succeeds compacts, the others learn the new
// version and wait for the next interval. The winner keeps winning while it
// runs; when it stops, another takes over within an interval or two.
type Compactor struct {
	c     *etcdkit.Client
	keep  Retention
	o     compactorOptions
	run   atomic.Bool
	seen  int64 // mod revision of the key when last seen; Run's goroutine only
	ver   int64 // its version then
	done  int64 // the highest revision this Compactor compacted to
	hist  samples
	mu    sync.Mutex
	last  Compaction
	ok    bool
	lastE error
}

// NewCompactor makes a Compactor of the cluster c is connected to, keeping
// history as keep says. A nil client, a nil or non-positive retention or a
// bad option is [etcdkit.ErrInvalidArgument].
func NewCompactor(c *etcdkit.Client, keep Retention, opts ...CompactorOption) (*Compactor, error) {
	o := compactorOptions{every: 5 * time.Minute, key: DefaultCompactorKey}
	for _, opt := range opts {
		if opt != nil {
			opt.applyCompactor(&o)
		}
	}
	if c == nil {
		return nil, invalid("new compactor", "nil client")
	}
	switch k := keep.(type) {
	case keepFor:
		if k <= 0 {
			return nil, invalid("new compactor", "KeepFor(%v): want > 0", time.Duration(k))
		}
	case keepRevisions:
		if k <= 0 {
			return nil, invalid("new compactor", "KeepRevisions(%d): want > 0", int64(k))
		}
	default:
		return nil, invalid("new compactor", "retention %v: use KeepFor or KeepRevisions", keep)
	}
	if o.every <= 0 || o.key == "" {
		return nil, invalid("new compactor", "interval %v and key %q: want an interval > 0 and a key", o.every, o.key)
	}
	return &Compactor{c: c, keep: keep, o: o}, nil
}

// Run compacts every interval while it wins the round (see [Compactor]),
// until ctx ends or the client closes; it returns ctx's error, or
// [etcdkit.ErrClosed]. A round that fails (etcd unreachable, a lost swap
// that could not read the key) is skipped, and its error is kept for
// [Compactor.Last]. It starts no goroutine: everything happens in the
// caller's. Calling Run while another call runs is
// [etcdkit.ErrInvalidArgument].
func (cp *Compactor) Run(ctx context.Context) error {
	if !cp.run.CompareAndSwap(false, true) {
		return invalid("compactor", "Run is already running")
	}
	defer cp.run.Store(false)
	t := time.NewTicker(cp.o.every)
	defer t.Stop()
	for {
		cp.round(ctx)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-cp.c.Done():
			return &errs.Op{Pkg: "admin", Op: "compactor", Err: etcdkit.ErrClosed}
		case <-t.C:
		}
	}
}

// Last returns the last compaction this Compactor made (false if none yet)
// and the error of its last round (nil if it went well, whether it won or
// not).
func (cp *Compactor) Last() (Compaction, bool, error) {
	cp.mu.Lock()
	defer cp.mu.Unlock()
	return cp.last, cp.ok, cp.lastE
}

// roundTimeout bounds one round's calls, so that a hung etcd costs a
// round, not the Compactor.
const roundTimeout = 10 * time.Second

func (cp *Compactor) round(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, roundTimeout)
	defer cancel()
	cmp, err := cp.tryWin(ctx)
	if err == nil && cmp != nil {
		err = cp.compact(ctx, cmp)
	}
	if ctx.Err() != nil && err != nil {
		return // Run is ending: not the round's fault
	}
	cp.mu.Lock()
	cp.lastE = err
	cp.mu.Unlock()
}

// tryWin takes part in the round: it returns the compaction to make when
// this Compactor won it, nil when it lost.
func (cp *Compactor) tryWin(ctx context.Context) (*Compaction, error) {
	kv := cp.c.Raw().KV
	resp, err := kv.Txn(ctx).
		If(clientv3.Compare(clientv3.ModRevision(cp.o.key), "=", cp.seen)).
		Then(clientv3.OpPut(cp.o.key, "")).
		Else(clientv3.OpGet(cp.o.key)).Commit()
	if err != nil {
		return nil, wrap("compactor round", err)
	}
	now, rev := time.Now(), resp.Header.Revision
	// Every Compactor samples, so that whichever wins knows the history;
	// target also forgets the samples no longer needed.
	target, since := cp.keep.target(now, rev, &cp.hist)
	if !resp.Succeeded {
		cp.seen, cp.ver = 0, 0
		if kvs := resp.Responses[0].GetResponseRange().Kvs; len(kvs) > 0 {
			cp.seen, cp.ver = kvs[0].ModRevision, kvs[0].Version
		}
		return nil, nil
	}
	cp.seen, cp.ver = rev, cp.ver+1
	if target <= cp.done || target <= 0 {
		return nil, nil
	}
	return &Compaction{Revision: target, Round: cp.ver, At: now, Since: since}, nil
}

func (cp *Compactor) compact(ctx context.Context, cmp *Compaction) error {
	// Physical: once reported, the space is free for Defragment.
	octx, end := cp.c.Observe(ctx, "compact", "", "")
	_, err := cp.c.Raw().Compact(octx, cmp.Revision, clientv3.WithCompactPhysical())
	end(cmp.Revision, err)
	if errors.Is(err, rpctypes.ErrCompacted) {
		// Someone else (etcd's own auto-compaction, an operator) went as far.
		cp.done = cmp.Revision
		return nil
	}
	if err != nil {
		return wrap("compact", err)
	}
	cp.done = cmp.Revision
	cp.mu.Lock()
	cp.last, cp.ok = *cmp, true
	cp.mu.Unlock()
	if cp.o.onCompact != nil {
		cp.o.onCompact(*cmp)
	}
	return nil
}

// samples remembers which revision was current when, for KeepFor.
type samples struct {
	t   []time.Time
	rev []int64
}

func (s *samples) add(t time.Time, rev int64) {
	s.t = append(s.t, t)
	s.rev = append(s.rev, rev)
}

// before returns the last revision sampled at or before cutoff, and when,
// and forgets the samples before it, which are of no more use.
func (s *samples) before(cutoff time.Time) (int64, time.Time) {
	i := -1
	for j, t := range s.t {
		if t.After(cutoff) {
			break
		}
		i = j
	}
	if i < 0 {
		return 0, time.Time{}
	}
	rev, t := s.rev[i], s.t[i]
	s.t, s.rev = s.t[i:], s.rev[i:]
	return rev, t
}
