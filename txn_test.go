package etcdkit_test

import (
	"errors"
	"testing"

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
		if err != nil {
			t.Fatalf("Commit: %v", err)
		}
		return res
	}

	t.Run("then", func(t *testing.T) {
		res := commit(t)
		if !res.Succeeded {
			t.Fatal("the conditions held but Else ran")
		}
		if _, err := orders.FromResult(res, "o1"); !errors.Is(err, etcdkit.ErrNotFound) {
			t.Fatalf("FromResult of a key the branch deleted: got %v, want ErrNotFound", err)
		}
		alice, err := users.Get(ctx, "alice")
		if err != nil || alice.Value["order"] != "o1" || alice.ModRevision != res.Revision {
			t.Fatalf("after Then, alice = %+v, %v; want order o1 written at revision %d", alice, err, res.Revision)
		}
		if _, err := users.FromResult(res, "alice"); !errors.Is(err, etcdkit.ErrInvalidArgument) {
			t.Fatalf("FromResult of a key with no GetOp in the branch that ran: got %v, want ErrInvalidArgument", err)
		}
	})
	t.Run("else", func(t *testing.T) {
		res := commit(t)
		if res.Succeeded {
			t.Fatal("the conditions did not hold but Then ran")
		}
		alice, err := users.FromResult(res, "alice")
		if err != nil || alice.Key != "alice" || alice.Value["order"] != "o1" {
			t.Fatalf("FromResult(alice) = %+v, %v; want the entry written by the first commit", alice, err)
		}
		if _, err := orders.FromResult(res, "o1"); !errors.Is(err, etcdkit.ErrNotFound) {
			t.Fatalf("FromResult(o1) after its deletion: got %v, want ErrNotFound", err)
		}
	})
}

func TestTxnExistsAndDecode(t *testing.T) {
	t.Parallel()
	srv := kvServer(t)
	c := srv.Client(t)
	kv := etcdkit.NewKV(c, testPrefix(t), etcdkit.JSON[int]())
	ctx := t.Context()

	res, err := c.Txn(ctx).If(kv.Exists("n")).Then(kv.PutOp("n", 1)).Commit()
	if err != nil || res.Succeeded {
		t.Fatalf("Exists on a missing key: Succeeded %v, %v; want false", res.Succeeded, err)
	}
	if _, err := srv.RawClient(t).Put(ctx, kv.Prefix()+"n", "not json"); err != nil {
		t.Fatal(err)
	}
	res, err = c.Txn(ctx).If(kv.Exists("n")).Then(kv.GetOp("n")).Commit()
	if err != nil || !res.Succeeded {
		t.Fatalf("Exists on an existing key: Succeeded %v, %v; want true", res.Succeeded, err)
	}
	var de *etcdkit.DecodeError
	if _, err := kv.FromResult(res, "n"); !errors.As(err, &de) {
		t.Fatalf("FromResult of a value that does not decode: got %v, want a DecodeError", err)
	}
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
	if _, err := c.Txn(ctx).Then(ops...).Commit(); err != nil {
		t.Fatalf("a txn of 128 ops: %v", err)
	}
	if _, err := c.Txn(ctx).Then(kv.PutOp("k", make([]byte, 1500*1024))).Commit(); err != nil {
		t.Fatalf("a txn of 1.46 MiB: %v", err)
	}
	if _, err := kv.Put(ctx, "k", make([]byte, 1500*1024)); err != nil {
		t.Fatalf("a put of 1.46 MiB: %v", err)
	}
}
