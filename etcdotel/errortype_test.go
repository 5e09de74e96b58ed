package etcdotel_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdotel"
)

// TestErrorType names each kind of error by what it is, never by its
// message.
func TestErrorType(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("etcdkit: get %q: %w", "users/alice", etcdkit.ErrNotFound), "not_found"},
		{&etcdkit.ConflictError{Key: "users/alice"}, "conflict"},
		{&etcdkit.CompactedError{Key: "users/", Revision: 9}, "compacted"},
		{fmt.Errorf("lock: %w", etcdkit.ErrLeaseLost), "lease_lost"},
		{etcdkit.ErrLeaseExpired, "lease_expired"},
		{etcdkit.ErrUnavailable, "unavailable"},
		{&etcdkit.DecodeError{Key: "users/alice", Err: errors.New("invalid character")}, "decode_error"},
		{fmt.Errorf("get: %w", context.DeadlineExceeded), "deadline_exceeded"},
		{context.Canceled, "canceled"},
		{fmt.Errorf("dial users/alice: %w", &net.OpError{Op: "dial", Err: errors.New("refused")}), "*net.OpError"},
	} {
		got := etcdotel.ErrorType(tc.err)
		assert.Equal(t, tc.want, got, "%v", tc.err)
		assert.NotContains(t, got, "alice", "a key leaked into error.type")
	}
}
