package etcdkit

import (
	"cmp"
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

	"github.com/etcdkit/etcdkit/internal/retry"
	"github.com/etcdkit/etcdkit/internal/trie"
)

// Mirror is an in-memory copy of a KV's keys, kept current by a watch. It
// serves reads from memory, without a round trip, at the cost of being a
// little behind etcd; [Mirror.WaitForRevision] catches up with a write the
// caller made. It is safe for concurrent use, and its reads take no lock:
// each one sees the mirror as of one revision, never half of a transaction.
// Reads that must agree with each other read one [Mirror.Snapshot].
//
// A key whose value does not decode is left out of the mirror (and logged),
// never stored as a zero value.
//
// Every read returns the value the mirror holds, shared with every other
// reader, without a copy: a value that refers to memory (a map, a slice, a
// pointer such as a Proto message) must be treated as read-only. A [Bytes]
// value is the exception: it is copied on its way out, and belongs to the
// caller.
type Mirror[T any] struct {
	kv    *KV[T]
	spec  watchSpec
	opts  mirrorOptions[T]
	task  *task
	clone func(T) T // the codec's clone, nil when values need no copy

	// state is what readers see: replaced whole, never changed, so a
	// read takes no lock and sees every change of a revision or none.
	state atomic.Pointer[Snapshot[T]]

	mu      sync.Mutex    // guards changed and err; held to publish state
	changed chan struct{} // closed and replaced whenever the revision moves
	err     error

	// write is held through each load, edit and publish of the entries,
	// so that AddIndex's publish and the watch's never undo each other.
	write    sync.Mutex
	handlers mirrorHandlers[T]
	lag      mirrorLag
}

// mirrorSorted is List's answer for one version of the entries, made on
// the first List that needs it.
type mirrorSorted[T any] struct {
	once    sync.Once
	entries []Entry[T]
}

// MirrorOption changes how [KV.Mirror] works.
type MirrorOption[T any] interface {
	applyMirror(*mirrorOptions[T])
}

type mirrorOptions[T any] struct {
	onChange func(key string, old, new *Entry[T])
	indexes  []mirrorIndex[T]
	err      error // the first invalid option
}

type mirrorOptionFunc[T any] func(*mirrorOptions[T])

func (f mirrorOptionFunc[T]) applyMirror(o *mirrorOptions[T]) { f(o) }

// OnEntryChange calls fn for every change the mirror applies after its
// first listing: old is nil for a new key, new is nil for a deleted one.
// fn is called from one goroutine, in revision order, after the mirror
// shows the change, so it may read the mirror; while fn runs, later changes
// wait (when it is slow, the watch pauses rather than buffer them). When a
// compaction made the mirror list its keys again, fn is called for the
// difference, in the order of the revisions the keys were changed at, the
// deleted keys last (when they were deleted is no longer known). A [Bytes]
// value in old or new is a copy that fn may keep. For handlers that must
// not hold the watch back, see [Mirror.AddHandler].
func OnEntryChange[T any](fn func(key string, old, new *Entry[T])) MirrorOption[T] {
	return mirrorOptionFunc[T](func(o *mirrorOptions[T]) { o.onChange = fn })
}

// entryChange is one change to report to onChange.
type entryChange[T any] struct {
	key      string
	old, new *Entry[T]
	rev      int64 // the revision of the change
}

// Mirror lists the KV's keys at one revision, then follows their changes
// from the next revision on, across reconnects and server restarts. When
// the watch falls behind a compaction, the mirror lists the keys again and
// reports the difference as changes. It ends with ctx, [Mirror.Close] or
// [Client.Close].
//
// Mirror fails if the first listing fails (with the read's error, such as
// [ErrPermissionDenied] or ctx's), or if etcd does not create its watch
// within the client's RequestTimeout after the listing (an error matching
// [ErrUnavailable]): a Mirror it returns is following changes. It fails
// with [ErrClosed] after [Client.Close], and at once, sending nothing, with
// [ErrInvalidArgument] for an invalid option (a [WithIndex] without a name
// or a function).
func (kv *KV[T]) Mirror(ctx context.Context, opts ...MirrorOption[T]) (*Mirror[T], error) {
	spec, err := kv.watchSpec("mirror", watchOptions{})
	if err != nil {
		return nil, err
	}
	spec.stream = "mirror-" + strconv.FormatUint(mirrorStreams.Add(1), 10)
	m := &Mirror[T]{kv: kv, spec: spec, changed: make(chan struct{}), clone: kv.clone}
	for _, opt := range opts {
		if opt != nil {
			opt.applyMirror(&m.opts)
		}
	}
	if m.opts.err != nil {
		return nil, &opError{op: "mirror", key: spec.name, err: m.opts.err}
	}
	if m.task, err = kv.c.newTask(ctx, "mirror", spec.name); err != nil {
		return nil, err
	}
	lctx, o := kv.c.opStart(m.task.ctx, OpMirror, kv.prefix, "")
	entries, rev, err := m.list(lctx)
	o.end(rev, err)
	if err != nil {
		return nil, m.task.fail("mirror", spec.name, err)
	}
	ixs := m.opts.indexes
	m.state.Store(&Snapshot[T]{m: m, entries: entries, ixs: ixs, index: buildIndexes(ixs, entries), rev: rev, sorted: new(mirrorSorted[T])})
	m.lag.synced(rev)
	// Established before Mirror returns, so WaitForRevision has a stream
	// to ask for progress on.
	conn, err := spec.establish(m.task.ctx, "mirror", rev+1)
	if err != nil {
		m.handlers.stop()
		return nil, m.task.fail("mirror", spec.name, err)
	}
	m.task.start(func(ctx context.Context) {
		m.run(ctx, conn)
		m.handlers.stop()
	})
	return m, nil
}

// mirrorStreams numbers the mirrors' watch streams.
var mirrorStreams atomic.Uint64

// Get returns the entry at key, and false if the mirror does not have it.
// It takes no lock: concurrent Gets do not slow each other down. It does not
// allocate, except to copy a [Bytes] value.
func (m *Mirror[T]) Get(key string) (Entry[T], bool) {
	if e := m.state.Load().entries.Get(key); e != nil {
		if m.clone != nil {
			return m.own(*e), true
		}
		return *e, true // not through own: the entry would be copied twice more
	}
	return Entry[T]{}, false
}

// List returns every entry, sorted by key, all as of one revision. The
// slice is the caller's, and so are [Bytes] values in it. For the revision
// too, list a [Mirror.Snapshot]: its [Snapshot.Revision] is the list's.
func (m *Mirror[T]) List() []Entry[T] { return m.state.Load().List() }

// own returns e with a value the caller may keep and change.
func (m *Mirror[T]) own(e Entry[T]) Entry[T] {
	if m.clone != nil {
		e.Value = m.clone(e.Value)
	}
	return e
}

func sortEntries[T any](t trie.Map[Entry[T]]) []Entry[T] {
	s := make([]Entry[T], 0, t.Len())
	t.Each(func(e *Entry[T]) bool {
		s = append(s, *e)
		return true
	})
	slices.SortFunc(s, func(a, b Entry[T]) int { return strings.Compare(a.Key, b.Key) })
	return s
}

// Len returns the number of entries.
func (m *Mirror[T]) Len() int { return m.state.Load().entries.Len() }

// Revision returns the revision the mirror is current with: every change up
// to it has been applied.
func (m *Mirror[T]) Revision() int64 { return m.state.Load().rev }

// WaitForRevision returns once the mirror has applied every change up to
// rev, such as the revision a Put returned: reads after it see that write.
// It fails with ctx's error, or with [Mirror.Err] if the mirror ends first.
func (m *Mirror[T]) WaitForRevision(ctx context.Context, rev int64) error {
	op := fmt.Sprintf("mirror: wait for revision %d", rev)
	var retry <-chan time.Time
	for {
		m.mu.Lock()
		cur, changed := m.state.Load().rev, m.changed
		m.mu.Unlock()
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
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.err
}

// Close stops following changes and waits for the mirror's goroutine. The
// mirror keeps answering reads with what it had. Safe to call twice.
func (m *Mirror[T]) Close() { m.task.stop() }

func (m *Mirror[T]) run(ctx context.Context, conn watchConn) {
	st := watchState{}
	for {
		st.last = m.state.Load().rev
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
		m.kv.c.notice(ctx, Notice{Kind: NoticeCompactionResync, Prefix: m.kv.prefix, Revision: compactedAt(err)})
		if !m.resync(ctx) {
			return
		}
	}
}

// resync lists the keys again after a compaction gap, retrying until it
// succeeds or ctx ends, and applies the difference.
func (m *Mirror[T]) resync(ctx context.Context) bool {
	backoff := retry.Backoff{Start: minWatchBackoff, Max: maxWatchBackoff}
	for {
		entries, rev, err := m.list(ctx)
		if err == nil {
			m.replace(entries, rev)
			return true
		}
		m.kv.c.log.Warn("etcdkit: mirror: list after compaction", "key", m.spec.name, "error", err)
		if !backoff.Sleep(ctx) {
			return false
		}
	}
}

// listPage is how many keys the first request of a listing reads.
const listPage = 1000

// list reads every key under the prefix at one revision, as [KV.List]
// does: a first page, then one stream, or pages from a server without
// RangeStream.
//
// The entries are gathered in a [trie.Builder], sized by the first page's
// count of the range, which makes the trie's nodes once at their final
// size when the listing ends: putting them one by one re-allocated the
// nodes on the way to each key, and took most of the start-up's time.
func (m *Mirror[T]) list(ctx context.Context) (trie.Map[Entry[T]], int64, error) {
	var b *trie.Builder[Entry[T]]
	r := &rangeRead{start: m.spec.key, end: clientv3.GetPrefixRangeEnd(m.spec.key), page: listPage}
	if m.spec.key == "" {
		r.start, r.end = "\x00", "\x00"
	}
	err := m.kv.c.readRange(ctx, r, func(kvs []*mvccpb.KeyValue) bool {
		if b == nil {
			b = trie.NewBuilder(entryKey[T], int(r.count))
		}
		for _, kv := range kvs {
			if e, ok := m.decodeEntry(kv); ok {
				b.Add(e)
			}
		}
		return true
	})
	if err != nil {
		return trie.Map[Entry[T]]{}, 0, opErr("mirror: list", m.spec.name, err)
	}
	return b.Done(), r.rev, nil
}

// decode returns kv's entry, or nil (logged) when its value does not decode.
// The entry's key is copied out of kv's full key, which would otherwise
// keep the prefix's bytes alive once per entry.
func (m *Mirror[T]) decode(kv *mvccpb.KeyValue) *Entry[T] {
	if e, ok := m.decodeEntry(kv); ok {
		return &e
	}
	return nil
}

// decodeEntry is decode without the pointer, which costs a listing an
// allocation per entry.
func (m *Mirror[T]) decodeEntry(kv *mvccpb.KeyValue) (Entry[T], bool) {
	e, err := m.kv.entry(kv)
	if err != nil {
		m.kv.c.log.Warn("etcdkit: mirror: value left out", "key", string(kv.Key), "revision", kv.ModRevision, "error", err)
		m.kv.c.notice(m.task.ctx, Notice{Kind: NoticeDecodeError, Prefix: m.kv.prefix,
			Key: m.kv.relKey(kv.Key), Revision: kv.ModRevision, Err: err})
		return Entry[T]{}, false
	}
	e.Key = strings.Clone(e.Key)
	return e, true
}

// replace swaps in a fresh listing and reports what differs from before.
func (m *Mirror[T]) replace(entries trie.Map[Entry[T]], rev int64) {
	m.write.Lock()
	cur := m.state.Load()
	var changes []entryChange[T]
	if m.opts.onChange != nil || m.handlers.any() {
		changes = diffEntries(cur.entries, entries, rev)
	}
	next := m.publish(entries, cur.ixs, buildIndexes(cur.ixs, entries), rev)
	m.handlers.send(next, changes, BatchCompacted)
	m.write.Unlock()
	m.report(changes)
}

// diffEntries lists the changes that turn old into new at rev in the order
// they happened: by the revision of the entry in new, and deletions last.
// What came between the two is gone, so a deletion's own revision is not
// known; it lies after the last revision old shows, and putting it at rev
// cannot reorder a key's changes, since each key changes once here.
func diffEntries[T any](old, new trie.Map[Entry[T]], rev int64) []entryChange[T] {
	var changes []entryChange[T]
	new.Each(func(n *Entry[T]) bool {
		switch o := old.Get(n.Key); {
		case o == nil:
			changes = append(changes, entryChange[T]{key: n.Key, new: ptr(*n), rev: n.ModRevision})
		case o.ModRevision != n.ModRevision:
			changes = append(changes, entryChange[T]{key: n.Key, old: ptr(*o), new: ptr(*n), rev: n.ModRevision})
		}
		return true
	})
	old.Each(func(o *Entry[T]) bool {
		if new.Get(o.Key) == nil {
			changes = append(changes, entryChange[T]{key: o.Key, old: ptr(*o), rev: rev})
		}
		return true
	})
	slices.SortFunc(changes, func(a, b entryChange[T]) int {
		return cmp.Or(cmp.Compare(a.rev, b.rev), cmp.Compare(a.deleted(), b.deleted()), strings.Compare(a.key, b.key))
	})
	return changes
}

// deleted is 1 for a deletion, 0 otherwise: deletions sort after.
func (c entryChange[T]) deleted() int {
	if c.new == nil {
		return 1
	}
	return 0
}

// entryKey is the key the mirror's trie stores an entry at.
func entryKey[T any](e *Entry[T]) string { return e.Key }

// ptr returns a pointer to a copy of v.
func ptr[V any](v V) *V { return &v }

// handle applies whole revisions of changes to a new version of the
// entries, then publishes it: readers see all of them or none.
func (m *Mirror[T]) handle(_ context.Context, evs []*clientv3.Event, stall func()) error {
	m.write.Lock()
	cur := m.state.Load()
	ed, ie := cur.entries.Edit(), editIndexes(cur.ixs, cur.index)
	keep := m.opts.onChange != nil || m.handlers.any()
	var changes []entryChange[T]
	for _, ev := range evs {
		c, ok := m.apply(ed, ev)
		if !ok {
			continue
		}
		ie.change(c.old, c.new)
		if keep {
			changes = append(changes, c)
		}
	}
	next := m.publish(ed.Done(), cur.ixs, ie.done(), evs[len(evs)-1].Kv.ModRevision)
	m.handlers.send(next, changes, BatchChanged)
	m.write.Unlock()
	if m.opts.onChange != nil && len(changes) > 0 {
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

// apply makes ev's change in ed and says what changed: nothing when a key
// the mirror does not have is deleted.
func (m *Mirror[T]) apply(ed *trie.Edit[Entry[T]], ev *clientv3.Event) (entryChange[T], bool) {
	c := entryChange[T]{rev: ev.Kv.ModRevision}
	if ev.Type == mvccpb.PUT {
		c.new = m.decode(ev.Kv) // nil when it does not decode: the key goes
	}
	if c.new != nil {
		c.key = c.new.Key
	} else {
		c.key = m.kv.relKey(ev.Kv.Key)
	}
	if old := ed.Get(c.key); old != nil {
		c.old = ptr(*old)
	}
	switch {
	case c.new != nil:
		ed.Put(*c.new)
	case c.old != nil:
		ed.Delete(c.key)
		c.key = c.old.Key // the mirror's copy, not a view of ev's bytes
	}
	return c, c.old != nil || c.new != nil
}

// progress moves the revision on, keeping the entries, their indexes and
// List's sorted copy.
func (m *Mirror[T]) progress(rev int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.state.Load()
	if rev <= cur.rev {
		return
	}
	next := *cur
	next.rev = rev
	m.swap(cur, &next)
}

// publish makes entries and their indexes at rev the mirror's state, and
// wakes WaitForRevision if rev is newer. It returns the new state.
func (m *Mirror[T]) publish(entries trie.Map[Entry[T]], ixs []mirrorIndex[T], index []trie.Map[indexBucket], rev int64) *Snapshot[T] {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.state.Load()
	next := &Snapshot[T]{m: m, entries: entries, ixs: ixs, index: index, rev: max(rev, cur.rev), sorted: new(mirrorSorted[T])}
	m.swap(cur, next)
	return next
}

// swap stores next in place of cur, m.mu held.
func (m *Mirror[T]) swap(cur, next *Snapshot[T]) {
	m.state.Store(next)
	if next.rev > cur.rev {
		close(m.changed)
		m.changed = make(chan struct{})
	}
}

func (m *Mirror[T]) report(changes []entryChange[T]) {
	if len(changes) == 0 || m.opts.onChange == nil {
		return
	}
	m.kv.c.callback("OnEntryChange", "mirror", m.spec.name, func() {
		for _, c := range changes {
			m.opts.onChange(c.key, m.ownPtr(c.old), m.ownPtr(c.new))
		}
	})
}

// ownPtr is own for an entry given to the callback, nil staying nil.
func (m *Mirror[T]) ownPtr(e *Entry[T]) *Entry[T] {
	if e == nil || m.clone == nil {
		return e
	}
	return ptr(m.own(*e))
}
