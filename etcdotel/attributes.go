package etcdotel

import (
	"context"
	"errors"
	"net"
	"reflect"
	"strconv"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"

	"github.com/etcdkit/etcdkit"
)

// The attributes etcdkit adds to OpenTelemetry's database conventions.
const (
	// RevisionKey is the store's revision an operation saw or made, or a
	// notice concerns (the revision a watch resumed from).
	RevisionKey = attribute.Key("etcd.revision")
	// RetriesKey counts an operation's attempts after the first.
	RetriesKey = attribute.Key("etcdkit.retries")
	// OutcomeKey is the answer an operation gave that is no failure, named
	// as [ErrorType] names its error: "not_found" for a Get of a missing
	// key or a TryDequeue of an empty queue, "exists" for a Create of a key
	// already there, "conflict" for a CompareAndSwap or CompareAndDelete
	// whose compare failed, "locked" for a TryLock, TryAcquire or TryRLock
	// that found the hold taken. Such an operation's span keeps the status
	// Unset and has no error.type.
	OutcomeKey = attribute.Key("etcdkit.outcome")
	// KeyKey is the key an operation or event concerns, relative to its
	// prefix; recorded only with [WithKeys].
	KeyKey = attribute.Key("etcdkit.key")
	// AttemptKey is the number of the attempt a conflict made Update or
	// Atomically retry, from 1.
	AttemptKey = attribute.Key("etcdkit.attempt")
	// TransitionKey says what a leader change was to this client:
	// "elected", "stepped_down" or "observed".
	TransitionKey = attribute.Key("etcdkit.election.transition")
	// LagKey is how many revisions a Mirror is behind the server.
	LagKey = attribute.Key("etcdkit.mirror.lag")
	// DepthKey is how many items a queue held.
	DepthKey = attribute.Key("etcdkit.queue.depth")
	// WaitKey is how long a lock was waited for, in seconds.
	WaitKey = attribute.Key("etcdkit.lock.wait")
	// MarginKey is a lease refresh's margin, in seconds: how long before
	// the lease could have expired it was sent.
	MarginKey = attribute.Key("etcdkit.lease.margin")
)

// systemEtcd is db.system.name: etcd is not among the conventions' listed
// systems, which then ask for the system's own lower-case name.
var systemEtcd = semconv.DBSystemNameKey.String("etcd")

// serverAttrs splits an Operation's Server into server.address and
// server.port. A unix socket, or an address without a port, has no port.
func serverAttrs(server string) []attribute.KeyValue {
	if server == "" {
		return nil
	}
	if rest, ok := strings.CutPrefix(server, "unix://"); ok {
		return []attribute.KeyValue{semconv.ServerAddress(rest)}
	}
	if rest, ok := strings.CutPrefix(server, "unix:"); ok {
		return []attribute.KeyValue{semconv.ServerAddress(rest)}
	}
	if _, rest, ok := strings.Cut(server, "://"); ok {
		server = rest
	}
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return []attribute.KeyValue{semconv.ServerAddress(server)}
	}
	n, err := strconv.Atoi(port)
	if err != nil {
		return []attribute.KeyValue{semconv.ServerAddress(host)}
	}
	return []attribute.KeyValue{semconv.ServerAddress(host), semconv.ServerPort(n)}
}

// sentinelNames names the error.type of each of etcdkit's sentinels.
var sentinelNames = []struct {
	err  error
	name string
}{
	{etcdkit.ErrNotFound, "not_found"},
	{etcdkit.ErrExists, "exists"},
	{etcdkit.ErrConflict, "conflict"},
	{etcdkit.ErrCompacted, "compacted"},
	{etcdkit.ErrLocked, "locked"},
	{etcdkit.ErrNoLeader, "no_leader"},
	{etcdkit.ErrLeaseExpired, "lease_expired"},
	{etcdkit.ErrLeaseLost, "lease_lost"},
	{etcdkit.ErrLeaseRevoked, "lease_revoked"},
	{etcdkit.ErrInvalidTTL, "invalid_ttl"},
	{etcdkit.ErrEmptyKey, "empty_key"},
	{etcdkit.ErrTooLarge, "too_large"},
	{etcdkit.ErrTooManyOps, "too_many_ops"},
	{etcdkit.ErrDuplicateKey, "duplicate_key"},
	{etcdkit.ErrClosed, "closed"},
	{etcdkit.ErrPermissionDenied, "permission_denied"},
	{etcdkit.ErrAuthFailed, "auth_failed"},
	{etcdkit.ErrUnavailable, "unavailable"},
	{etcdkit.ErrNoSpace, "no_space"},
	{etcdkit.ErrInvalidArgument, "invalid_argument"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "deadline_exceeded"},
}

// ErrorType returns the name etcdotel records for err: the name of
// the etcdkit sentinel err matches, in lower case with underscores
// ("not_found" for [etcdkit.ErrNotFound], "lease_lost" for
// [etcdkit.ErrLeaseLost]), "canceled" or "deadline_exceeded" for a ctx
// that ended, "decode_error" for an [*etcdkit.DecodeError], and otherwise
// the Go type of the first error in err's chain that is neither etcdkit's
// nor fmt.Errorf's wrapping, such as "*net.OpError". It never looks at
// err's message, which can quote a key. It returns "" for a nil err.
//
// A failed operation's span and duration carry it as error.type; an
// operation whose error is an expected answer (see [OutcomeKey]) carries
// it as etcdkit.outcome instead, and is not marked as failed.
func ErrorType(err error) string {
	if err == nil {
		return ""
	}
	// A value that does not decode matches no sentinel, and its codec's
	// error type says less than that it did not decode.
	if de := (*etcdkit.DecodeError)(nil); errors.As(err, &de) {
		return "decode_error"
	}
	for _, s := range sentinelNames {
		if errors.Is(err, s.err) {
			return s.name
		}
	}
	return semconv.ErrorType(unwrapOwn(err)).Value.AsString()
}

// unwrapOwn follows err's chain past etcdkit's wrappers, which name what
// was attempted, and fmt's, to the error they wrap.
func unwrapOwn(err error) error {
	for range 100 { // a chain that long is a cycle
		next := errors.Unwrap(err)
		if next == nil || !isWrapper(err) {
			return err
		}
		err = next
	}
	return err
}

func isWrapper(err error) bool {
	t := reflect.TypeOf(err)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	pkg := t.PkgPath()
	return pkg == "fmt" || pkg == "github.com/etcdkit/etcdkit" || strings.HasPrefix(pkg, "github.com/etcdkit/etcdkit/")
}
