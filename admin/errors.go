package admin

import (
	"context"
	"errors"
	"fmt"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/internal/errs"
)

// ErrMemberDown is returned by [Defragment] when a member does not answer,
// the cluster has no quorum or no leader: defragmenting a member blocks it,
// and with another member down that could cost the cluster its quorum.
var ErrMemberDown = errors.New("etcdkit: admin: a member is down")

// wrap says what was attempted, with err mapped to the etcdkit sentinel it
// means by etcdkit's own table. An error the table does not know is taken
// for an unreachable cluster: the calls of this package fail that way, not
// for a reason of their own. Context errors and etcdkit errors keep their
// identity.
func wrap(op string, err error) error {
	if err == nil {
		return nil
	}
	if mapped := errs.Map(err); mapped != err || isOwn(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return &errs.Op{Pkg: "admin", Op: op, Err: mapped}
	}
	return &errs.Op{Pkg: "admin", Op: op, Err: fmt.Errorf("%w: %w", etcdkit.ErrUnavailable, err)}
}

// isOwn reports whether err is already an error of etcdkit's or of this
// package's.
func isOwn(err error) bool { return errors.Is(err, ErrMemberDown) || errs.Own(err) }

// invalid is the error of a bad argument, found before anything was sent.
func invalid(op, format string, args ...any) error {
	return &errs.Op{Pkg: "admin", Op: op, Err: fmt.Errorf("%w: %s", etcdkit.ErrInvalidArgument, fmt.Sprintf(format, args...))}
}

// checkClient refuses a nil or closed client before anything is sent.
func checkClient(op string, c *etcdkit.Client) error {
	if c == nil {
		return invalid(op, "nil client")
	}
	select {
	case <-c.Done():
		return &errs.Op{Pkg: "admin", Op: op, Err: etcdkit.ErrClosed}
	default:
		return nil
	}
}
