package etcdkit

import (
	"context"
	"errors"
	"fmt"
	"strings"
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
				if !errors.Is(got, tt.want) {
					t.Errorf("%s: mapError(%v) = %v, want it to match %v", name, err, got, tt.want)
				}
				if !errors.Is(got, err) {
					t.Errorf("%s: mapError(%v) = %v lost the original error", name, err, got)
				}
				if !strings.Contains(got.Error(), desc) {
					t.Errorf("%s: message %q does not carry etcd's %q", name, got, desc)
				}
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
			if got := mapError(tt.err); !errors.Is(got, tt.want) {
				t.Errorf("mapError(%v) = %v, want it to match %v", tt.err, got, tt.want)
			}
		})
	}
}

func TestMapError_PassesThrough(t *testing.T) {
	own := &opError{op: "get", key: "k", err: ErrNotFound}
	if got := mapError(own); got != own {
		t.Errorf("mapError changed an etcdkit error: %v", got)
	}
	plain := errors.New("something else")
	if got := mapError(plain); got != plain {
		t.Errorf("mapError changed an unknown error: %v", got)
	}
	if mapError(nil) != nil {
		t.Error("mapError(nil) is not nil")
	}
}

func TestOpErr_Message(t *testing.T) {
	err := opErr("put", "users/alice", rpctypes.ErrRequestTooLarge)
	want := `etcdkit: put "users/alice": request too large: etcdserver: request is too large`
	if err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, rpctypes.ErrRequestTooLarge) {
		t.Errorf("%v does not match both ErrTooLarge and etcd's error", err)
	}
	if opErr("get", "k", nil) != nil {
		t.Error("opErr with a nil error is not nil")
	}
}

func TestErrorTypes(t *testing.T) {
	cur := &Entry[string]{Key: "k", Value: "v", ModRevision: 7}
	var err error = &opError{op: "cas", key: "p/k", err: &ConflictError{Key: "k", Current: cur}}
	if !errors.Is(err, ErrConflict) {
		t.Errorf("%v does not match ErrConflict", err)
	}
	got, ok := CurrentEntry[string](err)
	if !ok || got != *cur {
		t.Errorf("CurrentEntry = %+v, %v; want %+v, true", got, ok, *cur)
	}
	if _, ok := CurrentEntry[int](err); ok {
		t.Error("CurrentEntry[int] found an entry of another type")
	}
	if _, ok := CurrentEntry[string](&ConflictError{Key: "gone"}); ok {
		t.Error("CurrentEntry found an entry for a deleted key")
	}
	ce := &CompactedError{Key: "p/", Revision: 42}
	if !errors.Is(ce, ErrCompacted) || !strings.Contains(ce.Error(), "42") {
		t.Errorf("CompactedError %q: want ErrCompacted naming revision 42", ce)
	}
	cause := errors.New("bad json")
	de := &DecodeError{Key: "k", Err: cause}
	if !errors.Is(de, cause) || !strings.Contains(de.Error(), `"k"`) {
		t.Errorf("DecodeError %q: want it to wrap the codec error and name the key", de)
	}
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
