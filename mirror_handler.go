package etcdkit

import (
	"cmp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// BatchKind says what a [MirrorBatch] holds.
type BatchKind int

// The kinds of [MirrorBatch].
const (
	// BatchChanged is changes as the watch delivered them.
	BatchChanged BatchKind = iota
	// BatchInitial is the entries the mirror held when the handler was
	// added, each as a new key: a listing, not changes.
	BatchInitial
	// BatchCompacted is the difference the mirror found when it listed its
	// keys again because a compaction removed the changes it missed.
	BatchCompacted
	// BatchFellBehind is the difference between what the handler was last
	// given and the mirror now: its queue overflowed, and the batches in
	// it were dropped for this one.
	BatchFellBehind
)

// String returns the kind's name, such as "initial".
func (k BatchKind) String() string {
	switch k {
	case BatchChanged:
		return "changed"
	case BatchInitial:
		return "initial"
	case BatchCompacted:
		return "compacted"
	case BatchFellBehind:
		return "fell behind"
	}
	return "unknown"
}

// Resync reports whether the batch is a listing or a difference, made by
// comparing two versions, rather than changes as they happened: the
// changes in between, if any, are not in it.
func (k BatchKind) Resync() bool { return k != BatchChanged }

// MirrorChange is one key's change in a [MirrorBatch].
type MirrorChange[T any] struct {
	Key string
	// Old is the entry before the change, nil for a new key; New is the
	// entry after it, nil for a deleted key.
	Old, New *Entry[T]
	// Revision is that of the change. In a resync it is New's
	// ModRevision, and for a deleted key the batch's Revision: when it was
	// deleted is no longer known.
	Revision int64
}

// MirrorBatch is what a handler is given in one call: the changes of
// whole revisions, in revision order.
type MirrorBatch[T any] struct {
	Kind     BatchKind
	Revision int64 // the mirror's revision once the batch is applied
	// Changes are in revision order, those of one revision by key in a
	// resync and in the transaction's order otherwise.
	Changes []MirrorChange[T]
}

// HandlerOption changes how [Mirror.AddHandler] delivers.
type HandlerOption interface {
	applyHandler(*handlerOptions)
}

type handlerOptions struct {
	queue int
}

type handlerOptionFunc func(*handlerOptions)

func (f handlerOptionFunc) applyHandler(o *handlerOptions) { f(o) }

// defaultHandlerQueue is how many changes a handler's queue holds unless
// [HandlerQueue] says otherwise.
const defaultHandlerQueue = 1024

// HandlerQueue sets how many changes may wait for the handler: 1024 by
// default; n < 1 keeps the default. A batch always fits in an empty queue,
// however large: batches are whole revisions, never split.
func HandlerQueue(n int) HandlerOption {
	return handlerOptionFunc(func(o *handlerOptions) {
		if n > 0 {
			o.queue = n
		}
	})
}

// MirrorHandler is a handler added with [Mirror.AddHandler].
type MirrorHandler struct {
	synced chan struct{}
	done   chan struct{}
	remove func()
}

// Synced returns a channel closed once the handler returned from its
// [BatchInitial] batch.
func (h *MirrorHandler) Synced() <-chan struct{} { return h.synced }

// Done returns a channel closed once the handler will not be called again:
// after [MirrorHandler.Remove] or the mirror's end, when its last call
// returned.
func (h *MirrorHandler) Done() <-chan struct{} { return h.done }

// Remove stops the deliveries to the handler: when it returns, the handler
// may be running, or about to start, with one batch, never more. Safe to
// call twice, and from the handler itself.
func (h *MirrorHandler) Remove() { h.remove() }

// AddHandler calls fn with the mirror's changes, before or after its first
// listing was published alike. fn is first given the entries the mirror
// holds, as one [BatchInitial] batch (empty if it holds none), then each
// later batch of whole revisions in revision order: it sees every revision
// once and never half of a transaction, so folding the batches over the
// initial one gives the mirror at the last batch's revision. The mirror
// shows a batch's changes before fn gets them.
//
// Each handler has its own goroutine and queue, so a slow fn never delays
// the mirror's reads, its watch or other handlers. When fn falls so far
// behind that its queue would overflow ([HandlerQueue]), the queued batches
// are dropped and fn is given, once it returns, a [BatchFellBehind] batch:
// the difference between the last version it was given and the mirror
// then; no memory grows with fn's delay. A compaction the mirror heals is
// a [BatchCompacted] batch.
//
// fn's [Bytes] values are copies that fn may keep; other values are the
// mirror's and read-only. The deliveries end with [MirrorHandler.Remove]
// or with the mirror; [Mirror.Close] waits for the call running, as for
// [OnEntryChange]. On a mirror that has ended, fn is never called and
// Done is closed at once.
func (m *Mirror[T]) AddHandler(fn func(MirrorBatch[T]), opts ...HandlerOption) *MirrorHandler {
	o := handlerOptions{queue: defaultHandlerQueue}
	for _, opt := range opts {
		if opt != nil {
			opt.applyHandler(&o)
		}
	}
	q := &handlerQueue[T]{limit: o.queue, wake: make(chan struct{}, 1)}
	h := &MirrorHandler{synced: make(chan struct{}), done: make(chan struct{})}
	h.remove = func() { m.handlers.remove(q) }
	if fn == nil {
		close(h.done)
		return h
	}
	// Under write, so that the watch's next edit, which decides whether
	// to keep its changes, sees the handler.
	m.write.Lock()
	start, ok := m.handlers.add(q, m.state.Load)
	m.write.Unlock()
	if !ok {
		close(h.done)
		return h
	}
	go func() {
		defer m.handlers.wg.Done()
		defer close(h.done)
		m.deliver(fn, q, start, h.synced)
	}()
	return h
}

// deliver runs one handler until its queue closes. seen is the version
// fn was last given, from which a fell-behind difference is made.
func (m *Mirror[T]) deliver(fn func(MirrorBatch[T]), q *handlerQueue[T], seen *Snapshot[T], synced chan struct{}) {
	m.call(fn, BatchInitial, seen.rev, initialChanges(seen))
	close(synced)
	for {
		it, behind, ok := q.next()
		switch {
		case !ok:
			return
		case behind:
			cur := m.state.Load()
			changes := diffEntries(seen.entries, cur.entries, cur.rev)
			seen = cur
			m.call(fn, BatchFellBehind, cur.rev, changes)
		case it.snap.rev > seen.rev: // older ones are in the version fn was given
			seen = it.snap
			m.call(fn, it.kind, it.snap.rev, it.changes)
		}
	}
}

// initialChanges lists s's entries as new keys, in revision order.
func initialChanges[T any](s *Snapshot[T]) []entryChange[T] {
	changes := make([]entryChange[T], 0, s.Len())
	s.entries.Each(func(e *Entry[T]) bool {
		changes = append(changes, entryChange[T]{key: e.Key, new: e, rev: e.ModRevision})
		return true
	})
	slices.SortFunc(changes, func(a, b entryChange[T]) int {
		return cmp.Or(cmp.Compare(a.rev, b.rev), strings.Compare(a.key, b.key))
	})
	return changes
}

// call gives fn one batch, with values fn may keep.
func (m *Mirror[T]) call(fn func(MirrorBatch[T]), kind BatchKind, rev int64, changes []entryChange[T]) {
	b := MirrorBatch[T]{Kind: kind, Revision: rev, Changes: make([]MirrorChange[T], len(changes))}
	for i, c := range changes {
		// Copies, so that fn cannot change what other handlers are given.
		old, new := copyPtr(c.old), copyPtr(c.new)
		if m.clone != nil {
			old, new = m.ownPtr(c.old), m.ownPtr(c.new)
		}
		b.Changes[i] = MirrorChange[T]{Key: c.key, Old: old, New: new, Revision: c.rev}
	}
	m.kv.c.callback("AddHandler", "mirror", m.spec.name, func() { fn(b) })
}

// copyPtr returns a pointer to a copy of *e, nil staying nil.
func copyPtr[V any](e *V) *V {
	if e == nil {
		return nil
	}
	return ptr(*e)
}

// handlerItem is one batch waiting in a handler's queue: the mirror's
// version once it is applied, and its changes, shared by every handler.
type handlerItem[T any] struct {
	snap    *Snapshot[T]
	kind    BatchKind
	changes []entryChange[T]
}

// handlerQueue is the batches waiting for one handler.
type handlerQueue[T any] struct {
	limit int           // changes it may hold
	wake  chan struct{} // signalled when there is something to take

	mu      sync.Mutex
	items   []handlerItem[T]
	changes int  // in items
	behind  bool // items were dropped: the handler needs a difference
	closed  bool
}

// push queues it, or drops everything queued when it does not fit.
func (q *handlerQueue[T]) push(it handlerItem[T]) {
	q.mu.Lock()
	switch {
	case q.closed:
	case len(q.items) > 0 && q.changes+len(it.changes) > q.limit, q.behind:
		clear(q.items)
		q.items, q.changes, q.behind = q.items[:0], 0, true
	default:
		q.items = append(q.items, it)
		q.changes += len(it.changes)
	}
	q.mu.Unlock()
	q.signal()
}

func (q *handlerQueue[T]) signal() {
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// next waits for a batch, or for the news that batches were dropped; ok
// is false once the queue is closed.
func (q *handlerQueue[T]) next() (it handlerItem[T], behind, ok bool) {
	for {
		q.mu.Lock()
		switch {
		case q.closed:
			q.mu.Unlock()
			return it, false, false
		case q.behind:
			q.behind = false
			q.mu.Unlock()
			return it, true, true
		case len(q.items) > 0:
			it = q.items[0]
			q.items[0] = handlerItem[T]{}
			q.items = q.items[1:]
			q.changes -= len(it.changes)
			q.mu.Unlock()
			return it, false, true
		}
		q.mu.Unlock()
		<-q.wake
	}
}

func (q *handlerQueue[T]) close() {
	q.mu.Lock()
	q.closed, q.items = true, nil
	q.mu.Unlock()
	q.signal()
}

// mirrorHandlers is a mirror's handlers.
type mirrorHandlers[T any] struct {
	mu     sync.Mutex
	set    map[*handlerQueue[T]]struct{}
	n      atomic.Int32 // len(set), read without the lock
	closed bool         // the mirror ended: no handler may be added
	wg     sync.WaitGroup
}

// add registers q and returns the version its handler starts from, taken
// under the lock that send takes: every version published after it is
// queued. It returns false once the mirror ended. The caller holds the
// mirror's write lock.
func (hs *mirrorHandlers[T]) add(q *handlerQueue[T], current func() *Snapshot[T]) (*Snapshot[T], bool) {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if hs.closed {
		return nil, false
	}
	if hs.set == nil {
		hs.set = map[*handlerQueue[T]]struct{}{}
	}
	hs.set[q] = struct{}{}
	hs.n.Store(int32(len(hs.set)))
	hs.wg.Add(1)
	return current(), true
}

func (hs *mirrorHandlers[T]) remove(q *handlerQueue[T]) {
	hs.mu.Lock()
	delete(hs.set, q)
	hs.n.Store(int32(len(hs.set)))
	hs.mu.Unlock()
	q.close()
}

// any reports whether a handler is registered.
func (hs *mirrorHandlers[T]) any() bool { return hs.n.Load() > 0 }

// send queues the changes that made snap for every handler. It never
// waits for one.
func (hs *mirrorHandlers[T]) send(snap *Snapshot[T], changes []entryChange[T], kind BatchKind) {
	if len(changes) == 0 || !hs.any() {
		return
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	for q := range hs.set {
		q.push(handlerItem[T]{snap: snap, kind: kind, changes: changes})
	}
}

// stop ends every handler, lets none be added, and waits for their
// goroutines.
func (hs *mirrorHandlers[T]) stop() {
	hs.mu.Lock()
	hs.closed = true
	for q := range hs.set {
		q.close()
	}
	clear(hs.set)
	hs.n.Store(0)
	hs.mu.Unlock()
	hs.wg.Wait()
}
