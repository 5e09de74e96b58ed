package etcdkit_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

func TestTxnBranches(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	c := srv.Client(t)
	users := etcdkit.NewKV(c, testPrefix(t)+"users/", etcdkit.JSON[map[string]string]())
	orders := etcdkit.NewKV(c, testPrefix(t)+"orders/", etcdkit.String())
	ctx := t.Context()

	orderRev := kvMustPut(t, orders, "o1", "pending")
	commit := func(t *testing.T) etcdkit.TxnResult {
		t.Helper()
		res, err := c.Txn(ctx).
			If(users.Missing("alice"), orders.ModRevisionIs("o1", orderRev), orders.ValueIs("o1", "pending")).
			Then(users.PutOp("alice", map[string]string{"order": "o1"}), orders.DeleteOp("o1"), orders.GetOp("o1")).
			Else(users.GetOp("alice"), orders.GetOp("o1")).
			Commit()
		require.NoError(t, err, "Commit")
		return res
	}

	t.Run("then", func(t *testing.T) {
		res := commit(t)
		require.True(t, res.Succeeded, "the conditions held but Else ran")
		_, err := orders.FromResult(res, "o1")
		require.ErrorIs(t, err, etcdkit.ErrNotFound, "FromResult of a key the branch deleted")
		alice, err := users.Get(ctx, "alice")
		require.NoError(t, err, "after Then, get alice")
		require.Equal(t, "o1", alice.Value["order"], "after Then, alice = %+v", alice)
		require.Equal(t, res.Revision, alice.ModRevision, "after Then, alice's ModRevision, want the commit's revision")
		_, err = users.FromResult(res, "alice")
		require.ErrorIs(t, err, etcdkit.ErrInvalidArgument, "FromResult of a key with no GetOp in the branch that ran")
	})
	t.Run("else", func(t *testing.T) {
		res := commit(t)
		require.False(t, res.Succeeded, "the conditions did not hold but Then ran")
		alice, err := users.FromResult(res, "alice")
		require.NoError(t, err, "FromResult(alice), want the entry written by the first commit")
		require.Equal(t, "alice", alice.Key, "FromResult(alice)")
		require.Equal(t, "o1", alice.Value["order"], "FromResult(alice) = %+v, want the entry written by the first commit", alice)
		_, err = orders.FromResult(res, "o1")
		require.ErrorIs(t, err, etcdkit.ErrNotFound, "FromResult(o1) after its deletion")
	})
}

func TestTxnExistsAndDecode(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	c := srv.Client(t)
	kv := etcdkit.NewKV(c, testPrefix(t), etcdkit.JSON[int]())
	ctx := t.Context()

	res, err := c.Txn(ctx).If(kv.Exists("n")).Then(kv.PutOp("n", 1)).Commit()
	require.NoError(t, err, "Exists on a missing key")
	require.False(t, res.Succeeded, "Exists on a missing key: Succeeded")
	_, err = srv.RawClient(t).Put(ctx, kv.Prefix()+"n", "not json")
	require.NoError(t, err)
	res, err = c.Txn(ctx).If(kv.Exists("n")).Then(kv.GetOp("n")).Commit()
	require.NoError(t, err, "Exists on an existing key")
	require.True(t, res.Succeeded, "Exists on an existing key: Succeeded")
	var de *etcdkit.DecodeError
	_, err = kv.FromResult(res, "n")
	require.ErrorAs(t, err, &de, "FromResult of a value that does not decode")
}

func TestTxnLimitsAreTheServers(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	c := srv.Client(t)
	kv := etcdkit.NewKV(c, testPrefix(t), etcdkit.Bytes())
	ctx := t.Context()

	// Right at the limits, the transaction is sent and accepted.
	ops := make([]etcdkit.Op, 128)
	for i := range ops {
		ops[i] = kv.PutOp(string(rune('a'+i%26))+string(rune('a'+i/26)), []byte("v"))
	}
	_, err := c.Txn(ctx).Then(ops...).Commit()
	require.NoError(t, err, "a txn of 128 ops")
	_, err = c.Txn(ctx).Then(kv.PutOp("k", make([]byte, 1500*1024))).Commit()
	require.NoError(t, err, "a txn of 1.46 MiB")
	_, err = kv.Put(ctx, "k", make([]byte, 1500*1024))
	require.NoError(t, err, "a put of 1.46 MiB")
}
