package discovery

import (
	"fmt"
	"slices"
	"time"

	"github.com/etcdkit/etcdkit"
)

// Status is how an instance says it is doing: [Passing], [Warning] or
// [Critical]. It is stored as text ("passing", "warning", "critical").
type Status uint8

const (
	// Passing: the instance serves. An instance that never reported a
	// status (one registered by etcd's endpoints.Manager, say) is passing.
	Passing Status = iota
	// Warning: the instance serves, but something is off.
	Warning
	// Critical: the instance should get no traffic.
	Critical
)

var statusNames = [...]string{Passing: "passing", Warning: "warning", Critical: "critical"}

// String returns "passing", "warning" or "critical".
func (s Status) String() string {
	if s.valid() {
		return statusNames[s]
	}
	return fmt.Sprintf("Status(%d)", uint8(s))
}

func (s Status) valid() bool { return s <= Critical }

// MarshalText stores s as its name. It fails for a value that is not one
// of the three statuses, with an error matching [etcdkit.ErrInvalidArgument].
func (s Status) MarshalText() ([]byte, error) {
	if !s.valid() {
		return nil, fmt.Errorf("%w: status %d", etcdkit.ErrInvalidArgument, uint8(s))
	}
	return []byte(statusNames[s]), nil
}

// UnmarshalText reads a status name. A name it does not know (written by a
// later version, say) reads as [Critical]: an instance whose state is not
// understood gets no traffic from those that filter on status.
func (s *Status) UnmarshalText(b []byte) error {
	*s = Critical
	if i := slices.Index(statusNames[:], string(b)); i >= 0 {
		*s = Status(i)
	}
	return nil
}

// Health is an instance's status, with what its checks last said.
type Health struct {
	Status Status
	// Output is what made the status: the error of a failing check, or
	// the text given to [Registration.SetStatus]. Empty when passing
	// without a word.
	Output string `json:",omitempty"`
	// Since is when the instance entered Status. It is the zero time for
	// an instance that never reported a status.
	Since time.Time `json:",omitzero"`
}

// StatusFilter keeps the instances whose status is one of a set; make one
// with [WithStatus]. It is an option of [Lookup], [NewSet] and
// [NewResolver].
type StatusFilter struct {
	keep [Critical + 1]bool
	err  error
}

// WithStatus keeps only the instances whose status is one of ss:
// WithStatus(Passing) for passing instances only, WithStatus(Passing,
// Warning) for those that serve. Without it, [Lookup] and [NewSet] keep
// every instance, and [NewResolver] keeps passing ones only. A status that
// is none of the three, or no status at all, makes the call that gets the
// option fail with [etcdkit.ErrInvalidArgument]. For a set of instances
// with metadata of another type than a map of strings, use
// [WithStatusOf].
func WithStatus(ss ...Status) StatusFilter {
	var f StatusFilter
	if len(ss) == 0 {
		f.err = fmt.Errorf("%w: WithStatus without a status", etcdkit.ErrInvalidArgument)
	}
	for _, s := range ss {
		if !s.valid() {
			f.err = fmt.Errorf("%w: status %d", etcdkit.ErrInvalidArgument, uint8(s))
			return f
		}
		f.keep[s] = true
	}
	return f
}

// WithStatusOf is [WithStatus] for [NewSetOf], with metadata of type M.
func WithStatusOf[M any](ss ...Status) SetOption[M] {
	f := WithStatus(ss...)
	return setOptionFunc[M](func(o *setOptions[M]) { o.filter = &f })
}

// keeps reports whether the filter keeps an instance with status s; a nil
// filter keeps every instance.
func (f *StatusFilter) keeps(s Status) bool { return f == nil || f.keep[s] }

func (f StatusFilter) applyLookup(o *lookupOptions) { o.filter = &f }

func (f StatusFilter) applySet(o *setOptions[map[string]string]) { o.filter = &f }

func (f StatusFilter) applyResolver(o *resolverOptions) { o.filter = &f }

// healthOf returns the health stored in a record: passing when it has none.
func healthOf(h *Health) Health {
	if h == nil {
		return Health{}
	}
	return *h
}

// sameHealth reports whether a and b say the same, Since compared as times.
func sameHealth(a, b Health) bool {
	return a.Status == b.Status && a.Output == b.Output && a.Since.Equal(b.Since)
}
