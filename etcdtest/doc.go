// Package etcdtest runs real etcd servers inside the test process, for
// tests of code that uses etcd through etcdkit or clientv3.
//
// A test starts a server, takes a client, and uses it; everything is
// stopped and removed when the test ends:
//
//	func TestConfig(t *testing.T) {
//		srv := etcdtest.Start(t)
//		cli := srv.Client(t)
//		// use cli (an *etcdkit.Client) or srv.RawClient(t) (a *clientv3.Client)
//	}
//
// A server starts in a few tens of milliseconds: it is one member that
// elects itself at once, keeps its data in a temporary directory without
// fsync, and discards etcd's logs. Servers listen on loopback ports the
// kernel picks, so tests that each start their own server can run with
// t.Parallel, and test binaries of several packages can run at the same
// time, without colliding.
//
// Servers also stand in for failures: [Server.Stop] and [Server.Restart]
// take a server down and bring it back on the same address with the same
// data (clients reconnect by themselves), [Server.Compact] compacts the
// history, and [Server.EnableAuth] turns on authentication. [WithTLS] and
// [WithClientCertAuth] serve clients over TLS with certificates made in
// process. [StartCluster] starts several members to test leader loss:
//
//	cl := etcdtest.StartCluster(t, 3)
//	cli := cl.Client(t)
//	cl.StopMember(cl.WaitLeader(t)) // cli keeps working with the other two
//
// Clean stops are the easy faults. The hard ones leave the outcome of a
// call unknown, and the kit makes both kinds on purpose:
//
//   - [Faults] makes chosen calls of a client ambiguous: applied by the
//     server while the caller sees an error or its deadline pass, or failed
//     at once and applied a moment later, after the caller's clean-up ran.
//     Give it to a client with [WithFaults].
//   - [Proxy] cuts one client off the network: [Proxy.Blackhole] holds
//     its traffic one way or both with the connections left open, as a
//     partition does, and [Proxy.Heal] delivers what was held.
//   - [Cluster.Isolate] cuts one member off from the other members while
//     clients still reach it: it falls behind, then catches up when healed.
//
// For example:
//
//	f := etcdtest.NewFaults()
//	p := srv.Proxy(t)
//	cli := p.Client(t, etcdtest.WithFaults(f))
//	f.Inject(etcdtest.RPCTxn, etcdtest.CommitThenFail, 1, 0) // the next txn commits, then fails
//	p.Partition(etcdtest.BothWays, 3*time.Second)            // cli hears nothing for 3s
//
// Each member's traffic goes through a small TCP forwarder in the process,
// between the address in its URLs and the one etcd listens on. It is what
// lets a restart hold reconnecting clients instead of refusing them, and a
// cluster member stop in milliseconds. For benchmarks, [WithoutClientProxy]
// lets clients connect to etcd directly.
//
// Programs without a testing.TB, such as examples, use [Run] and
// [Server.Close].
//
// This package is the only one of etcdkit that imports the etcd server, so
// only test binaries that import it compile the server.
package etcdtest
