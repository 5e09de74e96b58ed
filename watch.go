package etcdkit

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"

	"github.com/etcdkit/etcdkit/internal/retry"
)

// EventType says what a change did to a key.
type EventType int

// The kinds of [Event].
const (
	EventPut    EventType = iota + 1 // the key was created or changed
	EventDelete                      // the key was deleted, or its lease ended
)

// String returns "PUT" or "DELETE", as etcdctl prints them.
func (t EventType) String() string {
	switch t {
	case EventPut:
		return "PUT"
	case EventDelete:
		return "DELETE"
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event is one change to a key, as seen by a [Watcher].
type Event[T any] struct {
	Type EventType
	// Entry is the key after a put. After a delete only its Key and
	// ModRevision (the revision of the delete) are set.
	Entry Entry[T]
	// Prev is the key before the change, with [WithPrevValue]; nil
	// otherwise, and nil when the key did not exist before.
	Prev *Entry[T]
}

// Watcher delivers the changes to a KV's keys, in revision order, each
// exactly once. Reconnects, leader changes and server restarts do not show:
// it resumes after the last revision it delivered. Read [Watcher.Events]
// until it is closed, then [Watcher.Err] says why.
//
// Memory stays bounded when the reader is slow: the Events channel is
// small, and while it stays full the watch on the server is paused and
// later resumed from the last delivered revision.
type Watcher[T any] struct {
	kv     *KV[T]
	events chan Event[T]
	task   *task
	rev    atomic.Int64 // last revision delivered in full
	timer  *time.Timer  // reused to notice a stalled reader

	mu  sync.Mutex
	err error
}

// watchBuffer is the Events channel's capacity: enough to keep a steady
// reader busy, small enough to be a bound.
const watchBuffer = 64

// stallAfter is how long a reader may leave the Events channel full before
// the server-side watch is paused, so clientv3 stops buffering for it.
const stallAfter = time.Second

// Watch watches the KV's keys (its whole prefix, or one key with
// [WatchKey]) from now on, or from [FromRevision]. It returns once the
// watch is established, so a change made after it returns is delivered;
// or once it failed to be, with [Watcher.Events] closed. On a cluster,
// "now" is the revision of the member serving the watch, which may not yet
// have applied a write another client saw complete: to start right after a
// write of revision rev, pass FromRevision(rev+1).
//
// When etcd does not create the watch within the client's RequestTimeout
// (etcd out of reach), the watch ends at once and its Err matches
// [ErrUnavailable]: nothing is being watched. Once established, it never
// gives up for lack of etcd: it resumes whenever the connection is back.
//
// The watch ends when ctx ends, on [Watcher.Close] or [Client.Close], or
// when it meets a gap it cannot fill: its Err is then a [*CompactedError]
// (matching [ErrCompacted]) when the revisions it needs were compacted, a
// [*DecodeError] (with the events before it delivered) when a value does
// not decode, or an error matching [ErrPermissionDenied].
func (kv *KV[T]) Watch(ctx context.Context, opts ...WatchOption) *Watcher[T] {
	w := &Watcher[T]{kv: kv, events: make(chan Event[T], watchBuffer)}
	o := buildWatchOptions(opts)
	spec, err := kv.watchSpec("watch", o)
	if err == nil && o.rev < 0 {
		err = &opError{op: "watch", key: spec.name, err: fmt.Errorf("%w: negative revision %d", ErrInvalidArgument, o.rev)}
	}
	if err == nil {
		w.task, err = kv.c.newTask(ctx, "watch", spec.name)
	}
	if err != nil {
		w.err = err
		close(w.events)
		return w
	}
	st := watchState{fromNow: o.rev == 0, last: max(o.rev-1, 0)}
	// The observed ctx is not the watch's: a watch outlives its start.
	_, ob := kv.c.opStart(ctx, OpWatch, kv.prefix, spec.rel)
	conn, err := spec.establish(w.task.ctx, "watch", st.next())
	ob.end(st.next(), err)
	if err != nil {
		w.err = w.task.fail("watch", spec.name, err)
		if ctx.Err() != nil && !errors.Is(w.err, ErrClosed) {
			w.err = nil // as for a watch whose ctx ended later
		}
		close(w.events)
		return w
	}
	w.task.start(func(ctx context.Context) { w.run(ctx, spec, st, conn) })
	return w
}

// Events returns the channel of changes. It is closed when the watch ends.
func (w *Watcher[T]) Events() <-chan Event[T] { return w.events }

// Err returns why the watch ended, once [Watcher.Events] is closed: nil
// after its ctx ended or [Watcher.Close]; an error matching [ErrClosed]
// after [Client.Close]; one matching [ErrUnavailable] when it could not be
// established; else the error that ended it (see [KV.Watch]).
func (w *Watcher[T]) Err() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

// Revision returns the revision of the last change handed to the Events
// channel in full (every event of that revision), or the revision the
// watch started after when none was.
func (w *Watcher[T]) Revision() int64 { return w.rev.Load() }

// Close ends the watch and waits until its goroutine has returned and the
// Events channel is closed. It is safe to call more than once.
func (w *Watcher[T]) Close() {
	if w.task != nil {
		w.task.stop()
	}
}

func (w *Watcher[T]) run(ctx context.Context, spec watchSpec, st watchState, conn watchConn) {
	defer close(w.events)
	w.timer = time.NewTimer(time.Hour)
	w.timer.Stop()
	w.rev.Store(st.last)
	err := unwrapHandler(spec.follow(ctx, &st, conn, w))
	if err == nil && w.task.closedByClient() {
		err = &opError{op: "watch", key: spec.name, err: ErrClosed}
	}
	w.mu.Lock()
	w.err = err
	w.mu.Unlock()
}

// handle delivers a batch of whole revisions, in order.
func (w *Watcher[T]) handle(ctx context.Context, evs []*clientv3.Event, stall func()) error {
	for _, ev := range evs {
		e, err := w.kv.event(ev)
		if err != nil {
			return err
		}
		if err := w.send(ctx, e, stall); err != nil {
			return err
		}
	}
	w.rev.Store(evs[len(evs)-1].Kv.ModRevision)
	return nil
}

func (w *Watcher[T]) progress(rev int64) { w.rev.Store(rev) }

// send delivers e, pausing the server-side watch if the reader leaves the
// channel full for longer than stallAfter.
func (w *Watcher[T]) send(ctx context.Context, e Event[T], stall func()) error {
	select {
	case w.events <- e:
		return nil
	default:
	}
	w.timer.Reset(stallAfter)
	defer w.timer.Stop()
	select {
	case w.events <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-w.timer.C:
		stall()
	}
	select {
	case w.events <- e:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// event decodes a clientv3 event. A value that does not decode is an error
// naming the key and revision, never a zero value.
func (kv *KV[T]) event(ev *clientv3.Event) (Event[T], error) {
	var e Event[T]
	var err error
	if ev.Type == mvccpb.PUT {
		e.Type = EventPut
		if e.Entry, err = kv.entry(ev.Kv); err != nil {
			return e, kv.eventErr(ev, err)
		}
	} else {
		e.Type = EventDelete
		e.Entry = Entry[T]{Key: kv.relKey(ev.Kv.Key), ModRevision: ev.Kv.ModRevision}
	}
	if ev.PrevKv != nil {
		prev, err := kv.entry(ev.PrevKv)
		if err != nil {
			return e, kv.eventErr(ev, err)
		}
		e.Prev = &prev
	}
	return e, nil
}

func (kv *KV[T]) eventErr(ev *clientv3.Event, err error) error {
	return &opError{op: fmt.Sprintf("watch: revision %d", ev.Kv.ModRevision), key: string(ev.Kv.Key), err: err}
}

// relKey returns a full key from an event as a key relative to the prefix,
// without a copy, as entryKey does for the keys of a put.
func (kv *KV[T]) relKey(full []byte) string { return kv.entryKey(full) }

// watchSpec says what to watch: one key of kv, or its whole prefix.
func (kv *KV[T]) watchSpec(op string, o watchOptions) (watchSpec, error) {
	if kv == nil || kv.c == nil || kv.codec == nil {
		return watchSpec{}, kv.check(op, o.key)
	}
	if o.hasKey {
		if err := kv.check(op, o.key); err != nil {
			return watchSpec{}, err
		}
		full := kv.prefix + o.key // one string for both: a Follow keeps it
		return watchSpec{c: kv.c, key: full, name: full, prevKV: o.prevKV, pfx: kv.prefix, rel: o.key}, nil
	}
	if err := kv.c.checkOpen(op, kv.prefix); err != nil {
		return watchSpec{}, err
	}
	// An empty prefix watches every key: clientv3 turns it into a range
	// from "\x00" on.
	return watchSpec{c: kv.c, key: kv.prefix, name: kv.prefix, prefix: true, prevKV: o.prevKV, pfx: kv.prefix}, nil
}

// watchSpec is a key or prefix to watch, shared by Watcher, Mirror and
// Live, which differ only in what they do with the events.
type watchSpec struct {
	c      *Client
	key    string // full key or prefix, without the client's namespace
	name   string // what errors call it
	pfx    string // the KV's prefix and the key within it ("" for a
	rel    string // prefix watch), as notices name them
	prefix bool
	prevKV bool
	// stream, when set, gives the watch a gRPC stream of its own: the
	// server answers a progress request only when every watch on the
	// stream has caught up, so a Mirror must not share one with a slow
	// Watcher.
	stream string
}

// streamMetadata is the gRPC metadata key that tells watch streams apart.
const streamMetadata = "etcdkit-watch-stream"

// streamCtx returns ctx with what picks the watch's gRPC stream: clientv3
// shares one stream among the watches whose ctx carry the same metadata.
func (s watchSpec) streamCtx(ctx context.Context) context.Context {
	ctx = requireLeader(ctx)
	if s.stream != "" {
		ctx = metadata.AppendToOutgoingContext(ctx, streamMetadata, s.stream)
	}
	return ctx
}

// watchHandler receives what a watch sees.
type watchHandler interface {
	// handle gets whole revisions, in order, never one twice. It may block
	// (back-pressure) and call stall to pause the server-side watch meanwhile.
	// An error ends the watch with that error.
	handle(ctx context.Context, evs []*clientv3.Event, stall func()) error
	// progress says that every change up to rev was handled.
	progress(rev int64)
}

// serverRevisions is a watchHandler that wants to know how far the server
// has got: each response's header carries the server's revision when it
// was sent (on creation too), whether or not it has events for the watch.
// settled is called once the response was handled, when what the handler
// shows and what the server reported can be compared.
type serverRevisions interface {
	serverRevision(rev int64)
	settled()
}

// watchState is where a watch stands.
type watchState struct {
	last    int64         // every change up to this revision was handled
	fromNow bool          // started without a revision and not yet told which
	backoff retry.Backoff // its bounds are set by follow
}

// next is the revision to resume from; 0 asks the server for "from now".
func (st *watchState) next() int64 {
	if st.fromNow {
		return 0
	}
	return st.last + 1
}

// watchConn is one clientv3 watch.
type watchConn struct {
	ch     clientv3.WatchChan
	cancel context.CancelFunc
}

const (
	minWatchBackoff = 25 * time.Millisecond
	maxWatchBackoff = 2 * time.Second
)

// open starts a clientv3 watch from rev (0: from now). clientv3 returns once
// the server created it, or when ctx ends. WithRequireLeader makes a member
// cut off from its cluster cancel the watch rather than go silent, so it is
// re-established on a member that has a leader.
func (s watchSpec) open(ctx context.Context, rev int64) watchConn {
	ctx, cancel := context.WithCancel(s.streamCtx(ctx))
	return watchConn{ch: s.c.raw.Watcher.Watch(ctx, s.key, s.options(rev)...), cancel: cancel}
}

// establish is open for the start of a watch, which must not wait for an
// unreachable etcd for as long as the watch is meant to last: it fails
// when the server has not created the watch within the client's
// RequestTimeout (an error matching [ErrUnavailable]) or when ctx ends
// first (ctx's error). clientv3 returns from Watch once the server
// answered the create request, so this costs no round trip of its own.
func (s watchSpec) establish(ctx context.Context, op string, rev int64) (watchConn, error) {
	wctx, cancel := context.WithCancel(s.streamCtx(ctx))
	timeout := s.c.bounds.Timeout()
	timer := time.AfterFunc(timeout, cancel)
	ch := s.c.raw.Watcher.Watch(wctx, s.key, s.options(rev)...)
	expired := !timer.Stop()
	switch {
	case ctx.Err() != nil:
		cancel()
		return watchConn{}, &opError{op: op, key: s.name, err: ctx.Err()}
	case expired:
		err := fmt.Errorf("watch not established within the request timeout (%v)", timeout)
		return watchConn{}, &opError{op: op, key: s.name, err: &mappedError{sentinel: ErrUnavailable, cause: err}}
	}
	return watchConn{ch: ch, cancel: cancel}, nil
}

// options are the clientv3 options of a watch from rev (0: from now).
func (s watchSpec) options(rev int64) []clientv3.OpOption {
	opts := make([]clientv3.OpOption, 0, 5)
	opts = append(opts, clientv3.WithCreatedNotify(), clientv3.WithProgressNotify())
	if s.prefix {
		opts = append(opts, clientv3.WithPrefix())
	}
	if s.prevKV {
		opts = append(opts, clientv3.WithPrevKV())
	}
	if rev > 0 {
		opts = append(opts, clientv3.WithRev(rev))
	}
	return opts
}

// follow hands what the watch sees to h, re-establishing it after the last
// handled revision whenever it breaks, until ctx ends (nil) or an error it
// cannot recover from: a gap ([*CompactedError]), h's own error, or an
// error retrying cannot fix.
func (s watchSpec) follow(ctx context.Context, st *watchState, conn watchConn, h watchHandler) error {
	// A watch that worked is resumed at once, then with growing pauses.
	st.backoff.Start, st.backoff.Max, st.backoff.Immediate = minWatchBackoff, maxWatchBackoff, true
	if conn.ch == nil {
		conn = s.open(ctx, st.next())
	}
	for {
		stalled, err := s.consume(ctx, st, conn, h)
		conn.cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err != nil && terminalWatchErr(err) {
			return err
		}
		if !stalled {
			if err != nil {
				s.c.log.Warn("etcdkit: watch interrupted; resuming", "key", s.name, "revision", st.next(), "error", err)
			}
			s.c.notice(ctx, Notice{Kind: NoticeWatchResumed, Prefix: s.pfx, Key: s.rel, Revision: st.next(), Err: err})
			if !st.backoff.Sleep(ctx) {
				return nil
			}
		}
		conn = s.open(ctx, st.next())
	}
}

// consume reads one clientv3 watch until it ends, and reports whether it
// ended because the handler paused it.
func (s watchSpec) consume(ctx context.Context, st *watchState, conn watchConn, h watchHandler) (stalled bool, err error) {
	var paused atomic.Bool
	stall := func() {
		paused.Store(true)
		conn.cancel()
	}
	for {
		var resp clientv3.WatchResponse
		var ok bool
		select {
		case resp, ok = <-conn.ch:
		case <-ctx.Done():
			return false, nil
		}
		if !ok {
			if paused.Load() {
				return true, nil
			}
			if s.c.raw.Ctx().Err() != nil {
				return false, &opError{op: "watch", key: s.name, err: ErrClosed}
			}
			return false, nil
		}
		if err := s.check(resp); err != nil {
			return false, err
		}
		if err := s.dispatch(ctx, st, resp, h, stall); err != nil {
			return false, err
		}
	}
}

// check turns a failed response into an error.
func (s watchSpec) check(resp clientv3.WatchResponse) error {
	if resp.CompactRevision != 0 {
		return &CompactedError{Key: s.name, Revision: resp.CompactRevision}
	}
	if err := resp.Err(); err != nil {
		return opErr("watch", s.name, err)
	}
	return nil
}

func (s watchSpec) dispatch(ctx context.Context, st *watchState, resp clientv3.WatchResponse, h watchHandler, stall func()) error {
	o, ok := h.(serverRevisions)
	if ok && resp.Header.Revision > 0 {
		o.serverRevision(resp.Header.Revision)
	}
	if err := s.handleResponse(ctx, st, resp, h, stall); err != nil {
		return err
	}
	if ok {
		o.settled()
	}
	return nil
}

func (s watchSpec) handleResponse(ctx context.Context, st *watchState, resp clientv3.WatchResponse, h watchHandler, stall func()) error {
	switch {
	case resp.Created:
		st.backoff.Reset()
		if st.fromNow {
			st.fromNow = false
			st.last = resp.Header.Revision
			h.progress(st.last)
		}
	case resp.IsProgressNotify():
		// Every change up to the header's revision was sent already.
		if rev := resp.Header.Revision; !st.fromNow && rev > st.last {
			st.last = rev
			h.progress(rev)
		}
	default:
		evs := resp.Events
		// Never hand over a revision twice, whatever clientv3 resends.
		for len(evs) > 0 && evs[0].Kv.ModRevision <= st.last {
			evs = evs[1:]
		}
		if len(evs) == 0 {
			return nil
		}
		if err := h.handle(ctx, evs, stall); err != nil {
			return &handlerError{err}
		}
		st.last = evs[len(evs)-1].Kv.ModRevision
	}
	return nil
}

// handlerError marks an error of the handler's: it always ends the watch.
type handlerError struct{ err error }

func (e *handlerError) Error() string { return e.err.Error() }
func (e *handlerError) Unwrap() error { return e.err }

// terminalWatchErr reports whether retrying the watch cannot help.
func terminalWatchErr(err error) bool {
	var he *handlerError
	return errors.As(err, &he) ||
		errors.Is(err, ErrCompacted) ||
		errors.Is(err, ErrPermissionDenied) ||
		errors.Is(err, ErrInvalidArgument) ||
		errors.Is(err, ErrClosed)
}

// unwrapHandler strips the handlerError mark.
func unwrapHandler(err error) error {
	var he *handlerError
	if errors.As(err, &he) {
		return he.err
	}
	return err
}

// task is a goroutine tied to a Client: it ends when its ctx ends, on stop,
// or when the client closes, and [Client.Close] waits for it.
type task struct {
	c          *Client
	ctx        context.Context
	cancel     context.CancelFunc
	started    chan struct{} // closed once the goroutine is started, or never will be
	done       chan struct{}
	byClient   atomic.Bool
	unregister func()
}

// newTask prepares a task whose ctx ends with parent. Between newTask and
// start, a [Client.Close] cancels ctx and waits for start.
func (c *Client) newTask(parent context.Context, op, key string) (*task, error) {
	t := &task{c: c, started: make(chan struct{}), done: make(chan struct{})}
	t.ctx, t.cancel = context.WithCancel(parent)
	unregister, err := c.onClose(func(ctx context.Context) {
		t.byClient.Store(true)
		t.cancel()
		select {
		case <-t.started: // so that Close's wait covers the goroutine
		case <-ctx.Done(): // starting is stuck in a callback of the caller's
		}
	})
	if err != nil {
		t.cancel()
		return nil, &opError{op: op, key: key, err: ErrClosed}
	}
	t.unregister = unregister
	return t, nil
}

// start runs fn(ctx) in the background.
func (t *task) start(fn func(ctx context.Context)) {
	t.c.goBackground(func() {
		defer close(t.done)
		defer t.unregister()
		defer t.cancel()
		fn(t.ctx)
	})
	close(t.started)
}

// fail gives up a task that was never started, because of err; when the
// client closing caused err, it says so.
func (t *task) fail(op, key string, err error) error {
	t.cancel()
	t.unregister()
	close(t.done)
	close(t.started)
	if t.closedByClient() {
		return &opError{op: op, key: key, err: ErrClosed}
	}
	return err
}

// stop ends the task and waits for its goroutine.
func (t *task) stop() {
	t.cancel()
	<-t.done
}

// closedByClient reports whether the task ended because the client closed.
func (t *task) closedByClient() bool { return t.byClient.Load() }

// rawWatch yields the responses of a raw watch until its channel closes or
// ctx ends, whichever comes first. clientv3 closes a watch's channel when
// its ctx ends only once the stream's loop gets to it, and that loop can be
// busy re-opening the stream over a bad network for a long time: a caller
// bounded by ctx must not wait for it.
func (c *Client) rawWatch(ctx context.Context, key string, opts ...clientv3.OpOption) iter.Seq[clientv3.WatchResponse] {
	return func(yield func(clientv3.WatchResponse) bool) {
		ch := c.raw.Watcher.Watch(ctx, key, opts...)
		for {
			select {
			case wr, ok := <-ch:
				if !ok || !yield(wr) {
					return
				}
			case <-ctx.Done():
				return
			}
		}
	}
}
