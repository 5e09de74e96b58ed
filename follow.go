package etcdkit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit/internal/retry"
)

// Live is one key followed by a watch and kept in memory, typically a
// service's configuration: read it with [Live.Load] as often as needed, and
// be told of changes with [OnChange]. It is safe for concurrent use.
//
// Like a [Mirror]'s, the value is shared by every reader: one that refers
// to memory (a map, a slice, a Proto message) must be treated as read-only,
// except a [Bytes] value, which is copied for each reader and callback.
type Live[T any] struct {
	kv    *KV[T]
	key   string
	spec  watchSpec
	opts  followOptions[T]
	task  *task
	clone func(T) T // the codec's clone, nil when values need no copy
	// copyLoad is loadCopy when values need a copy, else nil. Load calls
	// it as a func value, which keeps Load within the inlining budget (a
	// method call does not): the other codecs pay nothing for the copy.
	// It is a method expression, not a method value, which would be an
	// allocation per Live.
	copyLoad func(*Live[T]) T
	cur      atomic.Pointer[liveValue[T]]
	seen     int64 // ModRevision of the last value applied or rejected; -1: missing

	mu  sync.Mutex
	err error
}

type liveValue[T any] struct {
	v   T
	rev int64 // ModRevision of v; 0 for the default
}

// Follow reads key and then follows its changes until ctx ends,
// [Live.Close] or [Client.Close], across reconnects, server restarts and
// compactions. A value that does not decode or that the [WithValidator]
// function rejects is not applied: the last good value stays, and the
// rejection goes to [WithOnReject]. While the key is missing, the
// [WithDefault] value applies.
//
// Follow fails with [ErrNotFound] when the key is missing and there is no
// default, and with the rejection's error when its value is rejected and
// there is no default to fall back on. It fails with the read's error
// when the first read fails, with an error matching [ErrUnavailable] when
// etcd does not create its watch within the client's RequestTimeout (a
// Live it returns is following the key), with ctx's error when ctx ends
// first, and with [ErrClosed] after [Client.Close].
func (kv *KV[T]) Follow(ctx context.Context, key string, opts ...FollowOption[T]) (*Live[T], error) {
	spec, err := kv.watchSpec("follow", watchOptions{key: key, hasKey: true})
	if err != nil {
		return nil, err
	}
	l := &Live[T]{kv: kv, key: key, spec: spec, seen: -2, clone: kv.clone}
	for _, opt := range opts {
		if opt != nil {
			opt.applyFollow(&l.opts)
		}
	}
	if l.clone != nil {
		l.copyLoad = (*Live[T]).loadCopy
	}
	if l.opts.def != nil {
		// The default is the caller's slice too: keep a copy of it.
		l.opts.def = ptr(own(l.clone, *l.opts.def))
	}
	if l.task, err = kv.c.newTask(ctx, "follow", spec.name); err != nil {
		return nil, err
	}
	// Observed with the task's ctx, as a Mirror's first listing is: only
	// the first read runs in the observation, not the following after it.
	lctx, o := kv.c.opStart(l.task.ctx, OpFollow, kv.prefix, key)
	rev, conn, err := l.start(lctx)
	o.end(rev, err)
	if err != nil {
		return nil, err
	}
	l.task.start(func(ctx context.Context) { l.run(ctx, rev, conn) })
	return l, nil
}

// start reads the key with ctx and sets up the watch from the revision
// after the read's. On failure it fails the task and returns what Follow
// returns.
func (l *Live[T]) start(ctx context.Context) (int64, watchConn, error) {
	rev, err := l.load(ctx, true)
	if err != nil {
		return rev, watchConn{}, l.task.fail("follow", l.spec.name, err)
	}
	conn, err := l.spec.establish(l.task.ctx, "follow", rev+1)
	if err != nil {
		return rev, watchConn{}, l.task.fail("follow", l.spec.name, err)
	}
	return rev, conn, nil
}

// Load returns the current value, or the default while the key is missing.
// It does not block or lock, and does not allocate except to copy a [Bytes]
// value.
func (l *Live[T]) Load() T {
	if l.copyLoad == nil {
		return l.cur.Load().v
	}
	return l.copyLoad(l)
}

// loadCopy is Load for a codec with a clone.
func (l *Live[T]) loadCopy() T { return l.clone(l.cur.Load().v) }

// Revision returns the ModRevision of the value [Live.Load] returns, or 0
// when that is the default.
func (l *Live[T]) Revision() int64 { return l.cur.Load().rev }

// LoadWithRevision returns what [Live.Load] does and its ModRevision (0
// for the default), both of one value: Load then [Live.Revision] could
// each see a different one. It does not block or lock, and does not
// allocate except to copy a [Bytes] value.
func (l *Live[T]) LoadWithRevision() (T, int64) {
	c := l.cur.Load()
	return own(l.clone, c.v), c.rev
}

// Done returns a channel closed when the key is no longer followed.
func (l *Live[T]) Done() <-chan struct{} { return l.task.done }

// Err returns nil while the key is followed, and after [Live.Close] or its
// ctx ended; [ErrClosed] after [Client.Close]; otherwise the error that
// stopped it, such as [ErrPermissionDenied].
func (l *Live[T]) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Close stops following the key and waits for its goroutine; [Live.Load]
// keeps returning the last value. It is safe to call more than once.
func (l *Live[T]) Close() { l.task.stop() }

func (l *Live[T]) run(ctx context.Context, rev int64, conn watchConn) {
	st := watchState{last: rev}
	for {
		err := unwrapHandler(l.spec.follow(ctx, &st, conn, l))
		conn = watchConn{}
		if err != nil && errors.Is(err, ErrCompacted) {
			// The changes in the gap are gone, but only the latest matters.
			l.kv.c.notice(ctx, Notice{Kind: NoticeCompactionResync, Prefix: l.kv.prefix, Key: l.key,
				Revision: compactedAt(err)})
			if rev, ok := l.reload(ctx); ok {
				st.last = rev
				continue
			}
			err = nil
		}
		if err == nil && l.task.closedByClient() {
			err = &opError{op: "follow", key: l.spec.name, err: ErrClosed}
		}
		l.mu.Lock()
		l.err = err
		l.mu.Unlock()
		return
	}
}

// reload reads the key again until it succeeds or ctx ends.
func (l *Live[T]) reload(ctx context.Context) (int64, bool) {
	backoff := retry.Backoff{Start: minWatchBackoff, Max: maxWatchBackoff}
	for {
		rev, err := l.load(ctx, false)
		if err == nil {
			return rev, true
		}
		l.kv.c.log.Warn("etcdkit: follow: read after compaction", "key", l.spec.name, "error", err)
		if !backoff.Sleep(ctx) {
			return 0, false
		}
	}
}

// load reads the key, applies what it finds, and returns the revision read.
func (l *Live[T]) load(ctx context.Context, initial bool) (int64, error) {
	rctx, cancel := l.kv.c.bound(ctx)
	resp, err := l.kv.c.raw.KV.Get(rctx, l.spec.key)
	cancel()
	if err != nil {
		return 0, opErr("follow", l.spec.name, err)
	}
	if len(resp.Kvs) == 0 {
		err = l.applyDelete(initial)
	} else {
		err = l.applyPut(resp.Kvs[0], initial)
	}
	return resp.Header.Revision, err
}

func (l *Live[T]) handle(_ context.Context, evs []*clientv3.Event, _ func()) error {
	for _, ev := range evs {
		if ev.Type == mvccpb.PUT {
			_ = l.applyPut(ev.Kv, false) // rejections are reported, not fatal
		} else {
			_ = l.applyDelete(false)
		}
	}
	return nil
}

func (l *Live[T]) progress(int64) {}

func (l *Live[T]) applyPut(kv *mvccpb.KeyValue, initial bool) error {
	if kv.ModRevision == l.seen {
		return nil
	}
	l.seen = kv.ModRevision
	v, err := l.kv.codec.Decode(kv.Value)
	if err != nil {
		derr := &DecodeError{Key: l.key, Err: err}
		l.kv.c.notice(l.task.ctx, Notice{Kind: NoticeDecodeError, Prefix: l.kv.prefix, Key: l.key,
			Revision: kv.ModRevision, Err: derr})
		return l.reject(derr, initial)
	}
	if l.opts.validate != nil {
		if err := l.validate(v); err != nil {
			op := fmt.Sprintf("follow: value at revision %d rejected", kv.ModRevision)
			return l.reject(&opError{op: op, key: l.spec.name, err: err}, initial)
		}
	}
	l.set(v, kv.ModRevision, initial)
	return nil
}

func (l *Live[T]) applyDelete(initial bool) error {
	if l.seen == -1 {
		return nil
	}
	l.seen = -1
	if l.opts.def != nil {
		l.set(*l.opts.def, 0, initial)
		return nil
	}
	return l.reject(&opError{op: "follow", key: l.spec.name, err: ErrNotFound}, initial)
}

// reject reports err. Before the first value there is nothing to keep:
// the default applies, or Follow fails with err.
func (l *Live[T]) reject(err error, initial bool) error {
	if initial && l.cur.Load() == nil {
		if l.opts.def == nil {
			return err
		}
		l.set(*l.opts.def, 0, true)
	}
	if l.opts.onReject != nil {
		l.kv.c.callback("WithOnReject", "follow", l.spec.name, func() { l.opts.onReject(l.key, err) })
	}
	return nil
}

func (l *Live[T]) set(v T, rev int64, initial bool) {
	old := l.cur.Swap(&liveValue[T]{v: v, rev: rev})
	if !initial && old != nil && l.opts.onChange != nil {
		l.kv.c.callback("OnChange", "follow", l.spec.name, func() {
			l.opts.onChange(own(l.clone, old.v), own(l.clone, v))
		})
	}
}

// validate runs the WithValidator function on a copy of v that it may keep.
func (l *Live[T]) validate(v T) (err error) {
	l.kv.c.callback("WithValidator", "follow", l.spec.name, func() { err = l.opts.validate(own(l.clone, v)) })
	return err
}
