package etcdkit

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/etcdkit/etcdkit/internal/errs"
)

// Sentinel errors. Every error etcdkit returns matches at most one of them with
// [errors.Is], and also wraps etcd's original error when there was one. A
// cancelled or expired ctx stays [context.Canceled] or [context.DeadlineExceeded].
var (
	// ErrNotFound: the key (or lease, user, member) does not exist.
	ErrNotFound = errors.New("etcdkit: not found")
	// ErrExists: Create found the key already there.
	ErrExists = errors.New("etcdkit: already exists")
	// ErrConflict: a compare-and-swap found another revision; see [ConflictError].
	ErrConflict = errors.New("etcdkit: conflict")
	// ErrCompacted: the revision asked for was compacted away; see [CompactedError].
	ErrCompacted = errors.New("etcdkit: revision compacted")
	// ErrLocked: TryLock found the lock held by someone else.
	ErrLocked = errors.New("etcdkit: locked by another holder")
	// ErrNoLeader: an election has no leader.
	ErrNoLeader = errors.New("etcdkit: no leader elected")
	// ErrLeaseExpired: the server no longer holds the lease (it expired, or
	// is unknown to the server): the keys attached to it are gone.
	ErrLeaseExpired = errors.New("etcdkit: lease expired")
	// ErrLeaseLost: the lease could not be refreshed in time, so the server
	// may expire it at any moment (or already has). Its keys may still exist;
	// what a lock or leadership held by it protects must stop now, before
	// anyone else can take over. It does not match [ErrLeaseExpired].
	ErrLeaseLost = errors.New("etcdkit: lease lost")
	// ErrLeaseRevoked: the lease was revoked by its owner.
	ErrLeaseRevoked = errors.New("etcdkit: lease revoked")
	// ErrInvalidTTL: a TTL under one second, or over the server's maximum.
	ErrInvalidTTL = errors.New("etcdkit: invalid TTL")
	// ErrEmptyKey: a key (with its prefix) is empty.
	ErrEmptyKey = errors.New("etcdkit: empty key")
	// ErrTooLarge: a request is over the server's size limit.
	ErrTooLarge = errors.New("etcdkit: request too large")
	// ErrTooManyOps: a transaction has more operations than the server allows.
	ErrTooManyOps = errors.New("etcdkit: too many operations in transaction")
	// ErrDuplicateKey: a transaction writes the same key twice.
	ErrDuplicateKey = errors.New("etcdkit: duplicate key in transaction")
	// ErrClosed: the Client (or the handle) was closed.
	ErrClosed = errors.New("etcdkit: closed")
	// ErrPermissionDenied: the authenticated user may not do this.
	ErrPermissionDenied = errors.New("etcdkit: permission denied")
	// ErrAuthFailed: wrong user name or password, or an invalid token.
	ErrAuthFailed = errors.New("etcdkit: authentication failed")
	// ErrUnavailable: no endpoint answered, the cluster has no leader, or the
	// server refused for lack of resources. Retrying later may succeed.
	ErrUnavailable = errors.New("etcdkit: etcd unavailable")
	// ErrNoSpace: the cluster's database is over its space quota
	// (--quota-backend-bytes) and etcd raised the NOSPACE alarm: writes are
	// refused until an operator compacts, defragments and disarms the alarm
	// (package admin does all three). Reads and watches keep working.
	ErrNoSpace = errors.New("etcdkit: database space quota exceeded")
	// ErrInvalidArgument: a request etcd (or etcdkit, before sending) rejects as
	// malformed: a nil codec, a bad option, a future revision.
	ErrInvalidArgument = errors.New("etcdkit: invalid argument")
)

// ConflictError is returned when a conditional write finds the key at another
// revision than expected. It matches [ErrConflict].
type ConflictError struct {
	Key string // the key, relative to the KV's prefix
	// Current is what was found: an *Entry[T] of the KV that returned the
	// error, or nil when the key does not exist. Use [CurrentEntry] to read it.
	Current any
}

func (e *ConflictError) Error() string {
	if e.Current == nil {
		return fmt.Sprintf("etcdkit: conflict on %q: the key does not exist", e.Key)
	}
	return fmt.Sprintf("etcdkit: conflict on %q: the key was changed by another writer", e.Key)
}

// Is makes errors.Is(err, ErrConflict) true.
func (e *ConflictError) Is(target error) bool { return target == ErrConflict }

// CurrentEntry returns the entry a [ConflictError] in err's chain found, and
// false when err is no conflict or the key did not exist.
func CurrentEntry[T any](err error) (Entry[T], bool) {
	var ce *ConflictError
	if !errors.As(err, &ce) {
		return Entry[T]{}, false
	}
	e, ok := ce.Current.(*Entry[T])
	if !ok || e == nil {
		return Entry[T]{}, false
	}
	return *e, true
}

// CompactedError is returned when a read or a watch needs a revision that was
// compacted. It matches [ErrCompacted].
type CompactedError struct {
	Key      string // the key or prefix being read or watched
	Revision int64  // the compaction point: the oldest revision still available
}

func (e *CompactedError) Error() string {
	return fmt.Sprintf("etcdkit: %q: revisions before %d were compacted", e.Key, e.Revision)
}

// Is makes errors.Is(err, ErrCompacted) true.
func (e *CompactedError) Is(target error) bool { return target == ErrCompacted }

// DecodeError is returned when a stored value does not decode with the KV's
// codec. A value that does not decode is never returned as a zero value.
type DecodeError struct {
	Key string // the key, relative to the KV's prefix
	Err error  // the codec's error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("etcdkit: decode value of %q: %v", e.Key, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// opError says what was attempted and on which key. It unwraps to both the
// sentinel and the original error.
type opError struct {
	op, key string
	err     error
}

func (e *opError) Error() string { return errs.Message("", e.op, e.key, e.err) }

func (e *opError) Unwrap() error { return e.err }

// opErr wraps err with the operation and key, after mapping it with [mapError].
// It returns nil for a nil err.
func opErr(op, key string, err error) error {
	if err == nil {
		return nil
	}
	return &opError{op: op, key: key, err: mapError(err)}
}

// mappedError pairs a sentinel with etcd's original error.
type mappedError struct {
	sentinel, cause error
}

func (e *mappedError) Error() string {
	return e.sentinel.Error() + ": " + e.cause.Error()
}

func (e *mappedError) Unwrap() []error { return []error{e.sentinel, e.cause} }

// The packages that build on this one (discovery, admin) map the errors
// they meet from clientv3 with this package's table.
func init() { errs.Map, errs.Own = mapError, isOwn }

// mapError maps an error from clientv3, gRPC or etcd's server to the sentinel
// it means, keeping the original in the chain. Errors etcdkit made itself,
// context errors and unknown errors pass through unchanged.
func mapError(err error) error {
	if err == nil || isOwn(err) {
		return err
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	if s := sentinelFor(err); s != nil {
		return &mappedError{sentinel: s, cause: err}
	}
	return err
}

func isOwn(err error) bool {
	for _, s := range allSentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

var allSentinels = []error{
	ErrNotFound, ErrExists, ErrConflict, ErrCompacted, ErrLocked, ErrNoLeader,
	ErrLeaseExpired, ErrLeaseLost, ErrLeaseRevoked, ErrInvalidTTL, ErrEmptyKey, ErrTooLarge,
	ErrTooManyOps, ErrDuplicateKey, ErrClosed, ErrPermissionDenied, ErrAuthFailed,
	ErrUnavailable, ErrInvalidArgument, ErrNoSpace,
}

// sentinelFor finds the sentinel for an etcd error: first by etcd's own error
// value, then by gRPC status code for transport-level failures.
func sentinelFor(err error) error {
	if errors.Is(err, clientv3.ErrNoAvailableEndpoints) {
		return ErrUnavailable
	}
	var ee rpctypes.EtcdError
	if errors.As(err, &ee) {
		if s, ok := rpcSentinels[ee]; ok {
			return s
		}
	}
	// Errors that arrive as raw gRPC statuses (from streams) are converted the
	// same way clientv3 converts unary errors.
	if s := etcdSentinel(err); s != nil {
		return s
	}
	// A cancelled watch carries its reason as text, and etcd writes that
	// reason as a whole gRPC error: "rpc error: code = PermissionDenied desc
	// = etcdserver: permission denied".
	if msg := rpctypes.ErrorDesc(err); strings.HasPrefix(msg, "rpc error: code = ") {
		if _, desc, found := strings.Cut(msg, " desc = "); found {
			if s := etcdSentinel(errors.New(desc)); s != nil {
				return s
			}
		}
	}
	return codeSentinel(err)
}

func etcdSentinel(err error) error {
	if ee, ok := rpctypes.Error(err).(rpctypes.EtcdError); ok {
		return rpcSentinels[ee]
	}
	return nil
}

func codeSentinel(err error) error {
	st, ok := status.FromError(err)
	if !ok {
		return nil
	}
	switch st.Code() {
	case codes.Unavailable, codes.ResourceExhausted, codes.Aborted:
		return ErrUnavailable
	case codes.PermissionDenied:
		return ErrPermissionDenied
	case codes.Unauthenticated:
		return ErrAuthFailed
	case codes.Canceled:
		if strings.Contains(st.Message(), "client connection is closing") {
			return ErrClosed
		}
		return context.Canceled
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	case codes.InvalidArgument, codes.OutOfRange:
		return ErrInvalidArgument
	case codes.NotFound:
		return ErrNotFound
	case codes.AlreadyExists:
		return ErrExists
	}
	return nil
}

// rpcSentinels maps every error etcd's server can return to a sentinel.
var rpcSentinels = map[rpctypes.EtcdError]error{
	asEtcd(rpctypes.ErrEmptyKey):          ErrEmptyKey,
	asEtcd(rpctypes.ErrKeyNotFound):       ErrNotFound,
	asEtcd(rpctypes.ErrValueProvided):     ErrInvalidArgument,
	asEtcd(rpctypes.ErrLeaseProvided):     ErrInvalidArgument,
	asEtcd(rpctypes.ErrTooManyOps):        ErrTooManyOps,
	asEtcd(rpctypes.ErrDuplicateKey):      ErrDuplicateKey,
	asEtcd(rpctypes.ErrInvalidSortOption): ErrInvalidArgument,
	asEtcd(rpctypes.ErrCompacted):         ErrCompacted,
	asEtcd(rpctypes.ErrFutureRev):         ErrInvalidArgument,
	asEtcd(rpctypes.ErrNoSpace):           ErrNoSpace,

	asEtcd(rpctypes.ErrLeaseNotFound):    ErrLeaseExpired,
	asEtcd(rpctypes.ErrLeaseExist):       ErrExists,
	asEtcd(rpctypes.ErrLeaseTTLTooLarge): ErrInvalidTTL,

	asEtcd(rpctypes.ErrMemberExist):            ErrExists,
	asEtcd(rpctypes.ErrPeerURLExist):           ErrExists,
	asEtcd(rpctypes.ErrMemberNotEnoughStarted): ErrUnavailable,
	asEtcd(rpctypes.ErrMemberBadURLs):          ErrInvalidArgument,
	asEtcd(rpctypes.ErrMemberNotFound):         ErrNotFound,
	asEtcd(rpctypes.ErrMemberNotLearner):       ErrInvalidArgument,
	asEtcd(rpctypes.ErrMemberLearnerNotReady):  ErrUnavailable,
	asEtcd(rpctypes.ErrTooManyLearners):        ErrInvalidArgument,
	asEtcd(rpctypes.ErrClusterIDMismatch):      ErrInvalidArgument,

	asEtcd(rpctypes.ErrRequestTooLarge): ErrTooLarge,
	asEtcd(rpctypes.ErrTooManyRequests): ErrUnavailable,

	asEtcd(rpctypes.ErrRootUserNotExist):     ErrPermissionDenied,
	asEtcd(rpctypes.ErrRootRoleNotExist):     ErrPermissionDenied,
	asEtcd(rpctypes.ErrUserAlreadyExist):     ErrExists,
	asEtcd(rpctypes.ErrUserEmpty):            ErrAuthFailed,
	asEtcd(rpctypes.ErrUserNotFound):         ErrNotFound,
	asEtcd(rpctypes.ErrRoleAlreadyExist):     ErrExists,
	asEtcd(rpctypes.ErrRoleNotFound):         ErrNotFound,
	asEtcd(rpctypes.ErrRoleEmpty):            ErrInvalidArgument,
	asEtcd(rpctypes.ErrAuthFailed):           ErrAuthFailed,
	asEtcd(rpctypes.ErrPermissionDenied):     ErrPermissionDenied,
	asEtcd(rpctypes.ErrRoleNotGranted):       ErrPermissionDenied,
	asEtcd(rpctypes.ErrPermissionNotGranted): ErrPermissionDenied,
	asEtcd(rpctypes.ErrAuthNotEnabled):       ErrInvalidArgument,
	asEtcd(rpctypes.ErrInvalidAuthToken):     ErrAuthFailed,
	asEtcd(rpctypes.ErrAuthOldRevision):      ErrAuthFailed,
	asEtcd(rpctypes.ErrInvalidAuthMgmt):      ErrInvalidArgument,

	asEtcd(rpctypes.ErrNoLeader):                   ErrUnavailable,
	asEtcd(rpctypes.ErrNotLeader):                  ErrUnavailable,
	asEtcd(rpctypes.ErrLeaderChanged):              ErrUnavailable,
	asEtcd(rpctypes.ErrNotCapable):                 ErrUnavailable,
	asEtcd(rpctypes.ErrStopped):                    ErrUnavailable,
	asEtcd(rpctypes.ErrTimeout):                    ErrUnavailable,
	asEtcd(rpctypes.ErrTimeoutDueToLeaderFail):     ErrUnavailable,
	asEtcd(rpctypes.ErrTimeoutDueToConnectionLost): ErrUnavailable,
	asEtcd(rpctypes.ErrUnhealthy):                  ErrUnavailable,
	asEtcd(rpctypes.ErrCorrupt):                    ErrUnavailable,
	// ErrTimeoutWaitAppliedIndex has no client-side value: codeSentinel maps it.
	asEtcd(rpctypes.ErrBadLeaderTransferee): ErrInvalidArgument,
	// A learner refuses what it cannot serve; another member can.
	asEtcd(rpctypes.Error(rpctypes.ErrGRPCNotSupportedForLearner)): ErrUnavailable,

	asEtcd(rpctypes.ErrClusterVersionUnavailable):     ErrUnavailable,
	asEtcd(rpctypes.ErrWrongDowngradeVersionFormat):   ErrInvalidArgument,
	asEtcd(rpctypes.ErrInvalidDowngradeTargetVersion): ErrInvalidArgument,
	asEtcd(rpctypes.ErrDowngradeInProcess):            ErrUnavailable,
	asEtcd(rpctypes.ErrNoInflightDowngrade):           ErrInvalidArgument,
}

func asEtcd(err error) rpctypes.EtcdError { return err.(rpctypes.EtcdError) }
