package admin

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/etcdkit/etcdkit"
)

// ErrMemberDown is returned by [Defragment] when a member does not answer,
// the cluster has no quorum or no leader: defragmenting a member blocks it,
// and with another member down that could cost the cluster its quorum.
var ErrMemberDown = errors.New("etcdkit: admin: a member is down")

// opError says what was attempted; it unwraps to the sentinel and etcd's
// original error.
type opError struct {
	op  string
	err error
}

func (e *opError) Error() string {
	msg := strings.TrimPrefix(strings.TrimPrefix(e.err.Error(), "etcdkit: "), "admin: ")
	return "etcdkit: admin: " + e.op + ": " + msg
}
func (e *opError) Unwrap() error { return e.err }

// wrap maps an error from clientv3 to the etcdkit sentinel it means, keeping
// the original: etcdkit's own mapping is not exported, and this package
// meets only a few of etcd's errors. Context errors and etcdkit errors keep
// their identity.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if isOwn(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &opError{op: op, err: err}
	}
	return &opError{op: op, err: fmt.Errorf("%w: %w", sentinel(err), err)}
}

func isOwn(err error) bool {
	for _, s := range []error{etcdkit.ErrUnavailable, etcdkit.ErrInvalidArgument, etcdkit.ErrClosed,
		etcdkit.ErrNoSpace, etcdkit.ErrCompacted, etcdkit.ErrPermissionDenied, etcdkit.ErrAuthFailed,
		etcdkit.ErrTooManyOps, etcdkit.ErrTooLarge, etcdkit.ErrConflict, etcdkit.ErrNotFound,
		etcdkit.ErrExists, ErrMemberDown} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func sentinel(err error) error {
	switch rpctypes.Error(err) {
	case rpctypes.ErrNoSpace:
		return etcdkit.ErrNoSpace
	case rpctypes.ErrCompacted:
		return etcdkit.ErrCompacted
	case rpctypes.ErrTooManyOps:
		return etcdkit.ErrTooManyOps
	case rpctypes.ErrRequestTooLarge:
		return etcdkit.ErrTooLarge
	case rpctypes.ErrPermissionDenied:
		return etcdkit.ErrPermissionDenied
	case rpctypes.ErrInvalidAuthToken, rpctypes.ErrAuthFailed:
		return etcdkit.ErrAuthFailed
	case rpctypes.ErrFutureRev, rpctypes.ErrLeaseTTLTooLarge:
		return etcdkit.ErrInvalidArgument
	}
	if st, ok := status.FromError(err); ok {
		switch st.Code() {
		case codes.PermissionDenied:
			return etcdkit.ErrPermissionDenied
		case codes.Unauthenticated:
			return etcdkit.ErrAuthFailed
		case codes.InvalidArgument:
			return etcdkit.ErrInvalidArgument
		case codes.Canceled:
			return etcdkit.ErrClosed
		}
	}
	return etcdkit.ErrUnavailable
}

// invalid is the error of a bad argument, found before anything was sent.
func invalid(op, format string, args ...any) error {
	return &opError{op: op, err: fmt.Errorf("%w: %s", etcdkit.ErrInvalidArgument, fmt.Sprintf(format, args...))}
}

// checkClient refuses a nil or closed client before anything is sent.
func checkClient(op string, c *etcdkit.Client) error {
	if c == nil {
		return invalid(op, "nil client")
	}
	select {
	case <-c.Done():
		return &opError{op: op, err: etcdkit.ErrClosed}
	default:
		return nil
	}
}
