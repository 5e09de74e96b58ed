package etcdkit

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// TestMapError_EveryServerError feeds every error etcd's server defines, in
// both forms a client sees (the raw gRPC status from a stream, and the
// EtcdError clientv3 converts unary errors to), through mapError.
func TestMapError_EveryServerError(t *testing.T) {
	tests := []struct {
		grpc error
		want error
	}{
		{rpctypes.ErrGRPCEmptyKey, ErrEmptyKey},
		{rpctypes.ErrGRPCKeyNotFound, ErrNotFound},
		{rpctypes.ErrGRPCValueProvided, ErrInvalidArgument},
		{rpctypes.ErrGRPCLeaseProvided, ErrInvalidArgument},
		{rpctypes.ErrGRPCTooManyOps, ErrTooManyOps},
		{rpctypes.ErrGRPCDuplicateKey, ErrDuplicateKey},
		{rpctypes.ErrGRPCInvalidClientAPIVersion, ErrInvalidArgument},
		{rpctypes.ErrGRPCInvalidSortOption, ErrInvalidArgument},
		{rpctypes.ErrGRPCCompacted, ErrCompacted},
		{rpctypes.ErrGRPCFutureRev, ErrInvalidArgument},
		{rpctypes.ErrGRPCNoSpace, ErrNoSpace},
		{rpctypes.ErrGRPCLeaseNotFound, ErrLeaseExpired},
		{rpctypes.ErrGRPCLeaseExist, ErrExists},
		{rpctypes.ErrGRPCLeaseTTLTooLarge, ErrInvalidTTL},
		{rpctypes.ErrGRPCMemberExist, ErrExists},
		{rpctypes.ErrGRPCPeerURLExist, ErrExists},
		{rpctypes.ErrGRPCMemberNotEnoughStarted, ErrUnavailable},
		{rpctypes.ErrGRPCMemberBadURLs, ErrInvalidArgument},
		{rpctypes.ErrGRPCMemberNotFound, ErrNotFound},
		{rpctypes.ErrGRPCMemberNotLearner, ErrInvalidArgument},
		{rpctypes.ErrGRPCLearnerNotReady, ErrUnavailable},
		{rpctypes.ErrGRPCTooManyLearners, ErrInvalidArgument},
		{rpctypes.ErrGRPCClusterIDMismatch, ErrInvalidArgument},
		{rpctypes.ErrGRPCRequestTooLarge, ErrTooLarge},
		{rpctypes.ErrGRPCRequestTooManyRequests, ErrUnavailable},
		{rpctypes.ErrGRPCRootUserNotExist, ErrPermissionDenied},
		{rpctypes.ErrGRPCRootRoleNotExist, ErrPermissionDenied},
		{rpctypes.ErrGRPCUserAlreadyExist, ErrExists},
		{rpctypes.ErrGRPCUserEmpty, ErrAuthFailed},
		{rpctypes.ErrGRPCUserNotFound, ErrNotFound},
		{rpctypes.ErrGRPCRoleAlreadyExist, ErrExists},
		{rpctypes.ErrGRPCRoleNotFound, ErrNotFound},
		{rpctypes.ErrGRPCRoleEmpty, ErrInvalidArgument},
		{rpctypes.ErrGRPCAuthFailed, ErrAuthFailed},
		{rpctypes.ErrGRPCPermissionNotGiven, ErrInvalidArgument},
		{rpctypes.ErrGRPCPermissionDenied, ErrPermissionDenied},
		{rpctypes.ErrGRPCRoleNotGranted, ErrPermissionDenied},
		{rpctypes.ErrGRPCPermissionNotGranted, ErrPermissionDenied},
		{rpctypes.ErrGRPCAuthNotEnabled, ErrInvalidArgument},
		{rpctypes.ErrGRPCInvalidAuthToken, ErrAuthFailed},
		{rpctypes.ErrGRPCInvalidAuthMgmt, ErrInvalidArgument},
		{rpctypes.ErrGRPCAuthOldRevision, ErrAuthFailed},
		{rpctypes.ErrGRPCNoLeader, ErrUnavailable},
		{rpctypes.ErrGRPCNotLeader, ErrUnavailable},
		{rpctypes.ErrGRPCLeaderChanged, ErrUnavailable},
		{rpctypes.ErrGRPCNotCapable, ErrUnavailable},
		{rpctypes.ErrGRPCStopped, ErrUnavailable},
		{rpctypes.ErrGRPCTimeout, ErrUnavailable},
		{rpctypes.ErrGRPCTimeoutDueToLeaderFail, ErrUnavailable},
		{rpctypes.ErrGRPCTimeoutDueToConnectionLost, ErrUnavailable},
		{rpctypes.ErrGRPCTimeoutWaitAppliedIndex, ErrUnavailable},
		{rpctypes.ErrGRPCUnhealthy, ErrUnavailable},
		{rpctypes.ErrGRPCCorrupt, ErrUnavailable},
		{rpctypes.ErrGRPCNotSupportedForLearner, ErrUnavailable},
		{rpctypes.ErrGRPCBadLeaderTransferee, ErrInvalidArgument},
		{rpctypes.ErrGRPCWrongDowngradeVersionFormat, ErrInvalidArgument},
		{rpctypes.ErrGRPCInvalidDowngradeTargetVersion, ErrInvalidArgument},
		{rpctypes.ErrGRPCClusterVersionUnavailable, ErrUnavailable},
		{rpctypes.ErrGRPCDowngradeInProcess, ErrUnavailable},
		{rpctypes.ErrGRPCNoInflightDowngrade, ErrInvalidArgument},
		{rpctypes.ErrGRPCCanceled, context.Canceled},
		{rpctypes.ErrGRPCDeadlineExceeded, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		desc := rpctypes.ErrorDesc(tt.grpc)
		t.Run(desc, func(t *testing.T) {
			for name, err := range map[string]error{"grpc status": tt.grpc, "clientv3": rpctypes.Error(tt.grpc)} {
				got := mapError(err)
				assert.ErrorIs(t, got, tt.want, "%s: mapError(%v)", name, err)
				assert.ErrorIs(t, got, err, "%s: mapError(%v) lost the original error", name, err)
				assert.ErrorContains(t, got, desc, "%s: the message does not carry etcd's", name)
			}
		})
	}
}

func TestMapError_Transport(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error
	}{
		{"unavailable", status.Error(codes.Unavailable, "connection refused"), ErrUnavailable},
		{"no endpoints", clientv3.ErrNoAvailableEndpoints, ErrUnavailable},
		{"conn closing", status.Error(codes.Canceled, "grpc: the client connection is closing"), ErrClosed},
		{"unauthenticated", status.Error(codes.Unauthenticated, "bad token"), ErrAuthFailed},
		{"permission", status.Error(codes.PermissionDenied, "nope"), ErrPermissionDenied},
		{"ctx canceled", fmt.Errorf("x: %w", context.Canceled), context.Canceled},
		// How clientv3 reports a watch the server cancelled: the reason is
		// the text of a whole gRPC error.
		{"watch cancel reason", errors.New(rpctypes.ErrGRPCPermissionDenied.Error()), ErrPermissionDenied},
		{"watch cancel reason as status", status.Error(codes.FailedPrecondition, rpctypes.ErrGRPCPermissionDenied.Error()), ErrPermissionDenied},
		{"watch cancel reason, compacted", errors.New(rpctypes.ErrGRPCCompacted.Error()), ErrCompacted},
		{"ctx deadline", context.DeadlineExceeded, context.DeadlineExceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.ErrorIs(t, mapError(tt.err), tt.want, "mapError(%v)", tt.err)
		})
	}
}

func TestMapError_PassesThrough(t *testing.T) {
	own := &opError{op: "get", key: "k", err: ErrNotFound}
	assert.Same(t, own, mapError(own), "mapError changed an etcdkit error")
	plain := errors.New("something else")
	assert.Same(t, plain, mapError(plain), "mapError changed an unknown error")
	assert.NoError(t, mapError(nil), "mapError(nil) is not nil")
}

func TestOpErr_Message(t *testing.T) {
	err := opErr("put", "users/alice", rpctypes.ErrRequestTooLarge)
	want := `etcdkit: put "users/alice": request too large: etcdserver: request is too large`
	assert.EqualError(t, err, want, "message")
	assert.ErrorIs(t, err, ErrTooLarge)
	assert.ErrorIs(t, err, rpctypes.ErrRequestTooLarge, "want it to match etcd's error too")
	assert.NoError(t, opErr("get", "k", nil), "opErr with a nil error is not nil")
}

func TestErrorTypes(t *testing.T) {
	cur := &Entry[string]{Key: "k", Value: "v", ModRevision: 7}
	var err error = &opError{op: "cas", key: "p/k", err: &ConflictError{Key: "k", Current: cur}}
	assert.ErrorIs(t, err, ErrConflict)
	got, ok := CurrentEntry[string](err)
	assert.True(t, ok, "CurrentEntry found no entry")
	assert.Equal(t, *cur, got, "CurrentEntry")
	_, ok = CurrentEntry[int](err)
	assert.False(t, ok, "CurrentEntry[int] found an entry of another type")
	_, ok = CurrentEntry[string](&ConflictError{Key: "gone"})
	assert.False(t, ok, "CurrentEntry found an entry for a deleted key")
	ce := &CompactedError{Key: "p/", Revision: 42}
	assert.ErrorIs(t, ce, ErrCompacted)
	assert.ErrorContains(t, ce, "42", "CompactedError, want it to name revision 42")
	cause := errors.New("bad json")
	de := &DecodeError{Key: "k", Err: cause}
	assert.ErrorIs(t, de, cause, "DecodeError, want it to wrap the codec error")
	assert.ErrorContains(t, de, `"k"`, "DecodeError, want it to name the key")
}

// TestSentinelsMatchOnlyThemselves: every sentinel is known to mapError
// and matches no other, so that, say, a lost lease is never taken for an
// expired one.
func TestSentinelsMatchOnlyThemselves(t *testing.T) {
	require.Contains(t, allSentinels, ErrLeaseLost)
	for i, a := range allSentinels {
		for j, b := range allSentinels {
			assert.Equal(t, i == j, errors.Is(a, b), "errors.Is(%v, %v)", a, b)
		}
	}
}
