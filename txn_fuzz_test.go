package etcdkit

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// FuzzTxnValidation builds transactions from arbitrary keys and sizes and
// checks the checks made before sending: a transaction they accept is within
// every limit, and one they refuse breaks the limit its error names.
func FuzzTxnValidation(f *testing.F) {
	f.Add("a\x00b\x00c", "users/", uint8(3), uint16(10), uint16(512))
	f.Add("a\x00a", "", uint8(8), uint16(1), uint16(512))
	f.Add("\x00x", "p/", uint8(8), uint16(1), uint16(512))
	f.Add("k1\x00k2\x00k3\x00k4", "", uint8(2), uint16(1), uint16(512))
	f.Add("big", "", uint8(8), uint16(4000), uint16(512))
	f.Fuzz(func(t *testing.T, keyList, prefix string, maxOps uint8, valLen, maxBytes uint16) {
		kv := &KV[string]{prefix: prefix, codec: String()}
		lim := limits{maxTxnOps: int(maxOps%16) + 1, maxRequestBytes: int(maxBytes) + 64}
		keys := strings.Split(keyList, "\x00")
		var then []clientv3.Op
		for i, k := range keys {
			op := kv.PutOp(k, strings.Repeat("v", int(valLen%4096)))
			if i%3 == 2 {
				op = kv.DeleteOp(k)
			}
			if op.err != nil {
				require.Empty(t, prefix+k, "op on %q: unexpected %v", prefix+k, op.err)
				require.ErrorIs(t, op.err, ErrEmptyKey, "op on %q", prefix+k)
				continue
			}
			then = append(then, op.op)
		}
		err := lim.checkTxn("txn", nil, then, nil)
		size, dup := reqOverheadBytes, false
		seen := map[string]bool{}
		for _, o := range then {
			size += opOverheadBytes + len(o.KeyBytes()) + len(o.ValueBytes()) + len(o.RangeBytes())
			dup = dup || seen[string(o.KeyBytes())]
			seen[string(o.KeyBytes())] = true
		}
		switch {
		case err == nil:
			accepted := fmt.Sprintf("accepted %d ops (limit %d), duplicate %v, %d bytes (limit %d)", len(then), lim.maxTxnOps, dup, size, lim.maxRequestBytes)
			require.LessOrEqual(t, len(then), lim.maxTxnOps, accepted)
			require.False(t, dup, accepted)
			require.LessOrEqual(t, size, lim.maxRequestBytes, accepted)
		case errors.Is(err, ErrTooManyOps):
			require.Greater(t, len(then), lim.maxTxnOps, "%v, with %d ops and a limit of %d", err, len(then), lim.maxTxnOps)
		case errors.Is(err, ErrDuplicateKey):
			require.True(t, dup, "%v, with no key written twice", err)
		case errors.Is(err, ErrTooLarge):
			require.Greater(t, size, lim.maxRequestBytes, "%v, with %d bytes and a limit of %d", err, size, lim.maxRequestBytes)
		default:
			require.Fail(t, "unexpected error", "%v", err)
		}
		if err != nil {
			require.True(t, strings.HasPrefix(err.Error(), "etcdkit: txn"), "error %q does not say what was attempted", err)
		}
	})
}
