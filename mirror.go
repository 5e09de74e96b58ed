package etcdkit

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Mirror is an in-memory copy of a KV's keys, kept current by a watch. It
// serves reads from memory, without a round trip, at the cost of being a
// little behind etcd; [Mirror.WaitForRevision] catches up with a write the
// caller made. It is safe for concurrent use.
//
// A key whose value does not decode is left out of the mirror (and logged),
// never stored as a zero value.
type Mirror[T any] struct {
	kv   *KV[T]
	spec watchSpec
	opts mirrorOptions[T]
	task *task

	mu      sync.RWMutex
	entries map[string]Entry[T]
	sorted  []Entry[T] // List's answer, nil when stale
	rev     int64
	changed chan struct{} // closed and replaced whenever rev moves
	err     error
}

// MirrorOption changes how [KV.Mirror] works.
type MirrorOption[T any] interface {
	applyMirror(*mirrorOptions[T])
}

type mirrorOptions[T any] struct {
	onChange func(key string, old, new *Entry[T])
}

type mirrorOptionFunc[T any] func(*mirrorOptions[T])

func (f mirrorOptionFunc[T]) applyMirror(o *mirrorOptions[T]) { f(o) }

// OnEntryChange calls fn for every change the mirror applies after its
// first listing: old is nil for a new key, new is nil for a deleted one.
// fn is called from one goroutine, in revision order, after the mirror
// shows the change, so it may read the mirror; while fn runs, later changes
// wait (when it is slow, the watch pauses rather than buffer them). When a compaction made the mirror list its keys again, fn is called
// for the difference.
func OnEntryChange[T any](fn func(key string, old, new *Entry[T])) MirrorOption[T] {
	return mirrorOptionFunc[T](func(o *mirrorOptions[T]) { o.onChange = fn })
}

// entryChange is one change to report to onChange.
type entryChange[T any] struct {
	key      string
	old, new *Entry[T]
}

// Mirror lists the KV's keys at one revision, then follows their changes
// from the next revision on, across reconnects and server restarts. When
// the watch falls behind a compaction, the mirror lists the keys again and
// reports the difference as changes. It ends with ctx, [Mirror.Close] or
// [Client.Close]. Mirror fails if the first listing fails.
func (kv *KV[T]) Mirror(ctx context.Context, opts ...MirrorOption[T]) (*Mirror[T], error) {
	spec, err := kv.watchSpec("mirror", watchOptions{})
	if err != nil {
		return nil, err
	}
	spec.stream = "mirror-" + strconv.FormatUint(mirrorStreams.Add(1), 10)
	m := &Mirror[T]{kv: kv, spec: spec, changed: make(chan struct{})}
	for _, opt := range opts {
		if opt != nil {
			opt.applyMirror(&m.opts)
		}
	}
	if m.task, err = kv.c.newTask(ctx, "mirror", spec.name); err != nil {
		return nil, err
	}
	entries, rev, err := m.list(m.task.ctx)
	if err != nil {
		return nil, m.task.fail("mirror", spec.name, err)
	}
	m.entries, m.rev = entries, rev
	// Established before Mirror returns, so WaitForRevision has a stream
	// to ask for progress on.
	conn := spec.open(m.task.ctx, rev+1)
	m.task.start(func(ctx context.Context) { m.run(ctx, conn) })
	return m, nil
}

// mirrorStreams numbers the mirrors' watch streams.
var mirrorStreams atomic.Uint64

// Get returns the entry at key, and false if the mirror does not have it.
func (m *Mirror[T]) Get(key string) (Entry[T], bool) {
	m.mu.RLock()
	e, ok := m.entries[key]
	m.mu.RUnlock()
	return e, ok
}

// List returns every entry, sorted by key. The slice is the caller's.
func (m *Mirror[T]) List() []Entry[T] {
	m.mu.RLock()
	sorted := m.sorted
	m.mu.RUnlock()
	if sorted == nil {
		m.mu.Lock()
		if m.sorted == nil {
			m.sorted = m.sortLocked()
		}
		sorted = m.sorted
		m.mu.Unlock()
	}
	return slices.Clone(sorted)
}

func (m *Mirror[T]) sortLocked() []Entry[T] {
	s := make([]Entry[T], 0, len(m.entries))
	for _, e := range m.entries {
		s = append(s, e)
	}
	slices.SortFunc(s, func(a, b Entry[T]) int { return strings.Compare(a.Key, b.Key) })
	return s
}

// Len returns the number of entries.
func (m *Mirror[T]) Len() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return len(m.entries)
}

// Revision returns the revision the mirror is current with: every change up
// to it has been applied.
func (m *Mirror[T]) Revision() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.rev
}

// WaitForRevision returns once the mirror has applied every change up to
// rev, such as the revision a Put returned: reads after it see that write.
// It fails with ctx's error, or with [Mirror.Err] if the mirror ends first.
func (m *Mirror[T]) WaitForRevision(ctx context.Context, rev int64) error {
	op := fmt.Sprintf("mirror: wait for revision %d", rev)
	var retry <-chan time.Time
	for {
		m.mu.RLock()
		cur, changed := m.rev, m.changed
		m.mu.RUnlock()
		if cur >= rev {
			return nil
		}
		if retry == nil {
			// Changes elsewhere in the keyspace move the revision without
			// an event here: ask the server to say how far it has got.
			m.requestProgress(ctx)
			retry = time.After(progressRetry)
		}
		select {
		case <-changed:
		case <-retry:
			retry = nil
		case <-m.task.done:
			if err := m.Err(); err != nil {
				return err
			}
			return &opError{op: op, key: m.spec.name, err: ErrClosed}
		case <-ctx.Done():
			return &opError{op: op, key: m.spec.name, err: ctx.Err()}
		}
	}
}

// progressRetry is how often WaitForRevision asks again for progress, in
// case a request was lost in a reconnect.
const progressRetry = 200 * time.Millisecond

// requestProgress asks for a progress notification on the mirror's watch
// stream, which clientv3 picks by the ctx's metadata.
func (m *Mirror[T]) requestProgress(ctx context.Context) {
	pctx, cancel := context.WithTimeout(m.spec.streamCtx(m.task.ctx), progressRetry)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel)
	defer stop()
	_ = m.kv.c.raw.Watcher.RequestProgress(pctx) // best effort: WaitForRevision asks again
}

// Done returns a channel closed when the mirror stops following changes.
func (m *Mirror[T]) Done() <-chan struct{} { return m.task.done }

// Err returns nil while the mirror is current, and after it was closed or
// its ctx ended; [ErrClosed] after [Client.Close]; otherwise the error that
// stopped it, such as [ErrPermissionDenied].
func (m *Mirror[T]) Err() error {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.err
}

// Close stops following changes and waits for the mirror's goroutine. The
// mirror keeps answering reads with what it had. Safe to call twice.
func (m *Mirror[T]) Close() { m.task.stop() }

func (m *Mirror[T]) run(ctx context.Context, conn watchConn) {
	st := watchState{}
	for {
		m.mu.RLock()
		st.last = m.rev
		m.mu.RUnlock()
		err := unwrapHandler(m.spec.follow(ctx, &st, conn, m))
		conn = watchConn{}
		if err == nil || !errors.Is(err, ErrCompacted) {
			if err == nil && m.task.closedByClient() {
				err = &opError{op: "mirror", key: m.spec.name, err: ErrClosed}
			}
			m.mu.Lock()
			m.err = err
			m.mu.Unlock()
			return
		}
		if !m.resync(ctx) {
			return
		}
	}
}

// resync lists the keys again after a compaction gap, retrying until it
// succeeds or ctx ends, and applies the difference.
func (m *Mirror[T]) resync(ctx context.Context) bool {
	backoff := minWatchBackoff
	for {
		entries, rev, err := m.list(ctx)
		if err == nil {
			m.replace(entries, rev)
			return true
		}
		m.kv.c.log.Warn("etcdkit: mirror: list after compaction", "key", m.spec.name, "error", err)
		if !sleepCtx(ctx, backoff) {
			return false
		}
		backoff = min(2*backoff, maxWatchBackoff)
	}
}

// listPage is how many keys one request of a listing reads.
const listPage = 1000

// list reads every key under the prefix at one revision, a page at a time.
func (m *Mirror[T]) list(ctx context.Context) (map[string]Entry[T], int64, error) {
	entries := make(map[string]Entry[T])
	from := m.spec.key
	end := clientv3.GetPrefixRangeEnd(m.spec.key)
	if m.spec.key == "" {
		from, end = "\x00", "\x00"
	}
	var rev int64
	for {
		opts := []clientv3.OpOption{clientv3.WithRange(end), clientv3.WithLimit(listPage)}
		if rev > 0 {
			opts = append(opts, clientv3.WithRev(rev))
		}
		rctx, cancel := m.kv.c.bound(ctx)
		resp, err := m.kv.c.raw.KV.Get(rctx, from, opts...)
		cancel()
		if err != nil {
			return nil, 0, opErr("mirror: list", m.spec.name, err)
		}
		if rev == 0 {
			rev = resp.Header.Revision
		}
		for _, kv := range resp.Kvs {
			m.decodeInto(entries, kv)
		}
		if !resp.More || len(resp.Kvs) == 0 {
			return entries, rev, nil
		}
		from = string(append(bytes.Clone(resp.Kvs[len(resp.Kvs)-1].Key), 0))
	}
}

// decodeInto adds kv to entries, or leaves it out when it does not decode.
func (m *Mirror[T]) decodeInto(entries map[string]Entry[T], kv *mvccpb.KeyValue) {
	if e := m.decode(kv); e != nil {
		entries[e.Key] = *e
	}
}

// decode returns kv's entry, or nil (logged) when its value does not decode.
func (m *Mirror[T]) decode(kv *mvccpb.KeyValue) *Entry[T] {
	e, err := m.kv.entry(kv)
	if err != nil {
		m.kv.c.log.Warn("etcdkit: mirror: value left out", "key", string(kv.Key), "revision", kv.ModRevision, "error", err)
		return nil
	}
	return &e
}

// replace swaps in a fresh listing and reports what differs from before.
func (m *Mirror[T]) replace(entries map[string]Entry[T], rev int64) {
	var changes []entryChange[T]
	m.mu.Lock()
	if m.opts.onChange != nil {
		changes = diffEntries(m.entries, entries)
	}
	m.entries, m.sorted = entries, nil
	m.advanceLocked(rev)
	m.mu.Unlock()
	m.report(changes)
}

// diffEntries lists the changes that turn old into new.
func diffEntries[T any](old, new map[string]Entry[T]) []entryChange[T] {
	var changes []entryChange[T]
	for k, o := range old {
		if _, ok := new[k]; !ok {
			changes = append(changes, entryChange[T]{key: k, old: &o})
		}
	}
	for k, n := range new {
		o, ok := old[k]
		switch {
		case !ok:
			changes = append(changes, entryChange[T]{key: k, new: &n})
		case o.ModRevision != n.ModRevision:
			changes = append(changes, entryChange[T]{key: k, old: &o, new: &n})
		}
	}
	slices.SortFunc(changes, func(a, b entryChange[T]) int { return strings.Compare(a.key, b.key) })
	return changes
}

// handle applies whole revisions of changes. Values are decoded before the
// lock is taken, so readers wait only for the map updates.
func (m *Mirror[T]) handle(_ context.Context, evs []*clientv3.Event, stall func()) error {
	decoded := make([]*Entry[T], len(evs)) // nil: the key is to be absent
	for i, ev := range evs {
		if ev.Type == mvccpb.PUT {
			decoded[i] = m.decode(ev.Kv)
		}
	}
	var changes []entryChange[T]
	m.mu.Lock()
	for i, ev := range evs {
		if c, ok := m.applyLocked(m.kv.relKey(ev.Kv.Key), decoded[i]); ok && m.opts.onChange != nil {
			changes = append(changes, c)
		}
	}
	m.sorted = nil
	m.advanceLocked(evs[len(evs)-1].Kv.ModRevision)
	m.mu.Unlock()
	if len(changes) > 0 {
		start := time.Now()
		m.report(changes)
		if time.Since(start) > stallAfter {
			// A slow callback: stop clientv3 buffering the changes that
			// arrive meanwhile; the watch resumes from here.
			stall()
		}
	}
	return nil
}

// applyLocked sets key to e, or removes it when e is nil.
func (m *Mirror[T]) applyLocked(key string, e *Entry[T]) (entryChange[T], bool) {
	c := entryChange[T]{key: key, new: e}
	if old, ok := m.entries[key]; ok {
		c.old = &old
	}
	if e != nil {
		m.entries[key] = *e
	} else {
		delete(m.entries, key)
	}
	return c, c.old != nil || c.new != nil
}

func (m *Mirror[T]) progress(rev int64) {
	m.mu.Lock()
	m.advanceLocked(rev)
	m.mu.Unlock()
}

func (m *Mirror[T]) advanceLocked(rev int64) {
	if rev <= m.rev {
		return
	}
	m.rev = rev
	close(m.changed)
	m.changed = make(chan struct{})
}

func (m *Mirror[T]) report(changes []entryChange[T]) {
	for _, c := range changes {
		m.opts.onChange(c.key, c.old, c.new)
	}
}
