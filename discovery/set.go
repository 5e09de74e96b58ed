package discovery

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/internal/errs"
)

// SetOption changes how [NewSetOf] follows a service.
type SetOption[M any] interface {
	applySet(*setOptions[M])
}

type setOptions[M any] struct {
	onAdd, onRemove func(InstanceOf[M])
	filter          *StatusFilter // nil: every instance
}

type setOptionFunc[M any] func(*setOptions[M])

func (f setOptionFunc[M]) applySet(o *setOptions[M]) { f(o) }

// OnAdd calls fn for each instance of the service: those registered when
// the set is made, before [NewSet] returns, then each one that appears, and
// again for one that changes its address, metadata or health. With
// [WithStatus], an instance appears when it enters one of the statuses
// kept, and leaves when it leaves them. Calls of fn and of
// the [OnRemove] function never overlap and come in etcd's order; while
// one runs, later changes wait. fn may call [SetOf.Snapshot], which already
// shows the change, but not [SetOf.Close].
func OnAdd[M any](fn func(InstanceOf[M])) SetOption[M] {
	return setOptionFunc[M](func(o *setOptions[M]) { o.onAdd = fn })
}

// OnRemove calls fn with the last known state of each instance that
// leaves the service: deregistered, or its lease expired; with
// [WithStatus], also one whose status is no longer kept (fn then sees the
// last status kept). See [OnAdd].
func OnRemove[M any](fn func(InstanceOf[M])) SetOption[M] {
	return setOptionFunc[M](func(o *setOptions[M]) { o.onRemove = fn })
}

// SetOf is the live set of a service's instances, kept current in memory by
// a watch, across reconnects and etcd restarts. Make one with [NewSet] or
// [NewSetOf]. It is safe for concurrent use.
type SetOf[M any] struct {
	opts   setOptions[M]
	mirror *etcdkit.Mirror[record[M]]

	// order serializes changes with their callbacks; mu guards state only,
	// so that a callback may call Snapshot.
	order sync.Mutex
	mu    sync.Mutex
	state map[string]etcdkit.Entry[record[M]] // what the callbacks were told
}

// Set is the live set of instances whose metadata is a map of strings.
type Set = SetOf[map[string]string]

// NewSet lists the instances of service, then follows their changes until
// [SetOf.Close], ctx ends, or the client closes. It holds every instance,
// whatever its status, unless [WithStatus] says otherwise. Values that do
// not decode are left out. NewSet fails if the first listing fails: with
// an error matching [etcdkit.ErrInvalidArgument] for a bad service name or
// option,
// [etcdkit.ErrUnavailable] or ctx's error when etcd does not answer, or
// [etcdkit.ErrClosed] after the client's Close.
func NewSet(ctx context.Context, c *etcdkit.Client, service string, opts ...SetOption[map[string]string]) (*Set, error) {
	return NewSetOf(ctx, c, service, opts...)
}

// NewSetOf is [NewSet] for instances with metadata of type M.
func NewSetOf[M any](ctx context.Context, c *etcdkit.Client, service string, opts ...SetOption[M]) (*SetOf[M], error) {
	if err := checkService("follow", service); err != nil {
		return nil, err
	}
	if c == nil {
		return nil, &errs.Op{Op: "follow", Key: service, Err: fmt.Errorf("%w: nil client", etcdkit.ErrInvalidArgument)}
	}
	s := &SetOf[M]{state: map[string]etcdkit.Entry[record[M]]{}}
	for _, opt := range opts {
		if opt != nil {
			opt.applySet(&s.opts)
		}
	}
	// Holding mu until the first listing is taken makes the mirror's
	// first changes wait, so that they come after it.
	if f := s.opts.filter; f != nil && f.err != nil {
		return nil, &errs.Op{Op: "follow", Key: service, Err: f.err}
	}
	s.order.Lock()
	defer s.order.Unlock()
	m, err := instances[M](c, service).Mirror(ctx, etcdkit.OnEntryChange(s.changed))
	if err != nil {
		return nil, &errs.Op{Op: "follow", Key: service, Err: err}
	}
	s.mirror = m
	var first []etcdkit.Entry[record[M]]
	s.mu.Lock()
	for _, e := range m.List() {
		if validID(e.Key) && s.kept(&e) != nil {
			s.state[e.Key] = e
			first = append(first, e)
		}
	}
	s.mu.Unlock()
	for _, e := range first {
		s.added(e)
	}
	return s, nil
}

// Snapshot returns the instances the set holds now, sorted by ID. The
// slice is the caller's.
func (s *SetOf[M]) Snapshot() []InstanceOf[M] {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]InstanceOf[M], 0, len(s.state))
	for id, e := range s.state {
		out = append(out, instanceOf(id, e.Value))
	}
	slices.SortFunc(out, func(a, b InstanceOf[M]) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// Done returns a channel that is closed when the set stops following the
// service: after [SetOf.Close], when NewSet's ctx ends or the client closes.
func (s *SetOf[M]) Done() <-chan struct{} { return s.mirror.Done() }

// Err returns why the set stopped following the service: nil while it
// follows it, after Close or when NewSet's ctx ended; an error matching
// [etcdkit.ErrClosed] after the client's Close; otherwise the error that
// stopped it, such as one matching [etcdkit.ErrPermissionDenied].
func (s *SetOf[M]) Err() error { return s.mirror.Err() }

// Close stops following the service. It is safe to call more than once.
func (s *SetOf[M]) Close() { s.mirror.Close() }

// changed applies one change from the mirror. The first listing may
// already show it (the mirror applies a batch of changes before reporting
// it), so a change is applied only if the set holds what it changes from.
func (s *SetOf[M]) changed(id string, old, new *etcdkit.Entry[record[M]]) {
	if !validID(id) {
		return
	}
	old, new = s.kept(old), s.kept(new)
	s.order.Lock()
	defer s.order.Unlock()
	s.mu.Lock()
	cur, ok := s.state[id]
	if sameEntry(cur, ok, new) || !sameEntry(cur, ok, old) {
		s.mu.Unlock()
		return
	}
	if new == nil {
		delete(s.state, id)
	} else {
		s.state[id] = *new
	}
	s.mu.Unlock()
	switch {
	case new == nil:
		if s.opts.onRemove != nil {
			s.opts.onRemove(instanceOf(id, cur.Value))
		}
	case ok && sameInstance(cur.Value, new.Value):
		// Registered again with a new lease: nothing a caller would see.
	default:
		s.added(*new)
	}
}

// kept returns e if the set keeps it, else nil: the set follows the
// instances its filter keeps as if the others did not exist.
func (s *SetOf[M]) kept(e *etcdkit.Entry[record[M]]) *etcdkit.Entry[record[M]] {
	if e == nil || !s.opts.filter.keeps(healthOf(e.Value.Health).Status) {
		return nil
	}
	return e
}

func (s *SetOf[M]) added(e etcdkit.Entry[record[M]]) {
	if s.opts.onAdd != nil {
		s.opts.onAdd(instanceOf(e.Key, e.Value))
	}
}

// sameEntry reports whether the set's entry (cur, present if ok) is e, nil
// meaning absent.
func sameEntry[T any](cur etcdkit.Entry[T], ok bool, e *etcdkit.Entry[T]) bool {
	if e == nil {
		return !ok
	}
	return ok && cur.ModRevision == e.ModRevision
}

func sameInstance[M any](a, b record[M]) bool {
	return a.Addr == b.Addr && reflect.DeepEqual(a.Metadata, b.Metadata) && sameHealth(healthOf(a.Health), healthOf(b.Health))
}
