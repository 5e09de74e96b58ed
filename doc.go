// Package etcdkit is a typed, safe facade over etcd's official Go client
// (go.etcd.io/etcd/client/v3).
//
// It covers what services use etcd for: typed keys and values ([KV], with a
// [Codec] per type), transactions, leases, resumable watches, a local mirror
// of a prefix, live configuration, locks and leader election. It handles the
// sharp edges clientv3 leaves to its users: keep-alive channels that must be
// drained, watches that end after a compaction, transactions over the
// server's limits, and errors that say what was attempted and on which key.
//
//	cli, err := etcdkit.New(ctx, etcdkit.Config{Endpoints: []string{"127.0.0.1:2379"}})
//	if err != nil {
//		return err
//	}
//	defer cli.Close()
//
//	users := etcdkit.NewKV(cli, "users/", etcdkit.JSON[User]())
//	rev, err := users.Put(ctx, "alice", User{Name: "Alice"})
//	e, err := users.Get(ctx, "alice") // e.Value is a User; ErrNotFound if missing
//
// Errors match the sentinels of this package with [errors.Is] ([ErrNotFound],
// [ErrConflict], [ErrUnavailable], …) and keep etcd's original error in their
// chain. A cancelled or expired ctx stays [context.Canceled] or
// [context.DeadlineExceeded].
//
// Every call that touches the network takes a ctx; a ctx without a deadline
// is bounded by [Config.RequestTimeout]. Whatever a [Client] starts in the
// background ends when it is closed.
//
// For tests, package etcdtest starts a real etcd in-process.
package etcdkit
