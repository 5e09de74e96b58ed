package etcdtest_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/etcdtest"
)

// exampleServer starts a server for one example; close it when done.
func exampleServer(opts ...etcdtest.Option) *etcdtest.Server {
	srv, err := etcdtest.Run(opts...)
	if err != nil {
		panic(err)
	}
	return srv
}

// Faults makes the next Put commit and still fail: the caller sees an
// error matching ErrUnavailable, yet the key is there.
func ExampleNewFaults() {
	srv := exampleServer()
	defer srv.Close()
	f := etcdtest.NewFaults()
	cfg := srv.Config()
	cfg.UnaryInterceptors = append(cfg.UnaryInterceptors, f.UnaryInterceptor())
	cli, err := etcdkit.New(context.Background(), cfg)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	kv := etcdkit.NewKV(cli, "faults/", etcdkit.String())

	f.Inject(etcdtest.RPCPut, etcdtest.CommitThenFail, 1, 0)
	_, err = kv.Put(context.Background(), "k", "v")
	fmt.Println("put failed:", errors.Is(err, etcdkit.ErrUnavailable), "injected:", f.Injected())
	e, err := kv.Get(context.Background(), "k")
	fmt.Println("yet it committed:", e.Value, err)
	// Output:
	// put failed: true injected: 1
	// yet it committed: v <nil>
}

// exampleFaulty returns a client of srv whose calls go through f.
func exampleFaulty(srv *etcdtest.Server, f *etcdtest.Faults) *etcdkit.Client {
	cfg := srv.Config()
	cfg.UnaryInterceptors = append(cfg.UnaryInterceptors, f.UnaryInterceptor())
	cli, err := etcdkit.New(context.Background(), cfg)
	if err != nil {
		panic(err)
	}
	return cli
}

// Inject picks the next n calls of one RPC.
func ExampleFaults_Inject() {
	srv := exampleServer()
	defer srv.Close()
	f := etcdtest.NewFaults()
	cli := exampleFaulty(srv, f)
	defer cli.Close()
	kv := etcdkit.NewKV(cli, "inject/", etcdkit.String())
	f.Inject(etcdtest.RPCPut, etcdtest.FailBeforeSend, 1, 0)
	_, err := kv.Put(context.Background(), "k", "v")
	fmt.Println(err != nil)
	_, err = kv.Put(context.Background(), "k", "v")
	fmt.Println(err)
	// Output:
	// true
	// <nil>
}

// Clear withdraws the faults not injected yet.
func ExampleFaults_Clear() {
	srv := exampleServer()
	defer srv.Close()
	f := etcdtest.NewFaults()
	cli := exampleFaulty(srv, f)
	defer cli.Close()
	f.Inject(etcdtest.RPCPut, etcdtest.FailBeforeSend, 5, 0)
	f.Clear()
	_, err := etcdkit.NewKV(cli, "clear/", etcdkit.String()).Put(context.Background(), "k", "v")
	fmt.Println(err, f.Injected())
	// Output: <nil> 0
}

// Injected counts the faults injected so far.
func ExampleFaults_Injected() {
	f := etcdtest.NewFaults()
	fmt.Println(f.Injected())
	// Output: 0
}

// SetRate injects faults at random, reproducibly from a seed; rate 0 stops.
func ExampleFaults_SetRate() {
	srv := exampleServer()
	defer srv.Close()
	f := etcdtest.NewFaults()
	cli := exampleFaulty(srv, f)
	defer cli.Close()
	kv := etcdkit.NewKV(cli, "setrate/", etcdkit.String())
	f.SetRate(1, 42, etcdtest.RPCPut)
	_, err := kv.Put(context.Background(), "k", "v")
	fmt.Println(err != nil)
	f.SetRate(0, 0)
	_, err = kv.Put(context.Background(), "k", "v")
	fmt.Println(err)
	// Output:
	// true
	// <nil>
}

// Wait returns once every late request (FailThenCommit) was sent.
func ExampleFaults_Wait() {
	srv := exampleServer()
	defer srv.Close()
	f := etcdtest.NewFaults()
	cli := exampleFaulty(srv, f)
	defer cli.Close()
	kv := etcdkit.NewKV(cli, "wait/", etcdkit.String())
	f.Inject(etcdtest.RPCPut, etcdtest.FailThenCommit, 1, 0)
	_, err := kv.Put(context.Background(), "k", "late")
	fmt.Println("put failed:", err != nil)
	f.Wait()
	e, _ := kv.Get(context.Background(), "k")
	fmt.Println("then landed:", e.Value)
	// Output:
	// put failed: true
	// then landed: late
}

// UnaryInterceptor puts the faults into any client's Config.
func ExampleFaults_UnaryInterceptor() {
	f := etcdtest.NewFaults()
	cfg := etcdkit.Config{}
	cfg.UnaryInterceptors = append(cfg.UnaryInterceptors, f.UnaryInterceptor())
	fmt.Println(len(cfg.UnaryInterceptors))
	// Output: 1
}

// An Outcome prints as what it does.
func ExampleOutcome() {
	fmt.Println(etcdtest.CommitThenFail, "/", etcdtest.FailThenCommit)
	// Output: commit then fail / fail then commit
}

// ConfigFromEnvOrRun uses ETCD_ENDPOINTS when set, else an embedded server.
func ExampleConfigFromEnvOrRun() {
	os.Unsetenv(etcdkit.EnvEndpoints)
	cfg, stop, err := etcdtest.ConfigFromEnvOrRun()
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	fmt.Println(len(cfg.Endpoints))
	// Output: 1
}

// Connect is a client of the environment's etcd, or of an embedded one.
func ExampleConnect() {
	os.Unsetenv(etcdkit.EnvEndpoints)
	cli, stop, err := etcdtest.Connect(context.Background())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer stop()
	_, err = etcdkit.NewKV(cli, "connect/", etcdkit.String()).Put(context.Background(), "k", "v")
	fmt.Println(err)
	// Output: <nil>
}

// WithTLS serves clients over TLS; Config carries the CA.
func ExampleWithTLS() {
	srv := exampleServer(etcdtest.WithTLS())
	defer srv.Close()
	fmt.Println(strings.HasPrefix(srv.Endpoints()[0], "https://"), srv.Config().TLS != nil)
	// Output: true true
}

// WithClientCertAuth requires a client certificate, which Config carries.
func ExampleWithClientCertAuth() {
	srv := exampleServer(etcdtest.WithClientCertAuth())
	defer srv.Close()
	cli, err := etcdkit.New(context.Background(), srv.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	fmt.Println(len(srv.ClientTLS().Certificates))
	// Output: 1
}

// ClientTLS is the TLS configuration a client of the server needs.
func ExampleServer_ClientTLS() {
	srv := exampleServer(etcdtest.WithTLS())
	defer srv.Close()
	fmt.Println(srv.ClientTLS().RootCAs != nil)
	// Output: true
}

// WithoutClientProxy serves clients from etcd's own listener.
func ExampleWithoutClientProxy() {
	srv := exampleServer(etcdtest.WithoutClientProxy())
	defer srv.Close()
	fmt.Println(srv.Running())
	// Output: true
}

// WithEmbedConfig changes etcd's own configuration, such as its limits.
func ExampleWithEmbedConfig() {
	srv := exampleServer(etcdtest.WithEmbedConfig(func(c *embed.Config) { c.MaxTxnOps = 16 }))
	defer srv.Close()
	fmt.Println(srv.Running())
	// Output: true
}

// Stop stops the server keeping its data; a client reconnects by itself.
func ExampleServer_Stop() {
	srv := exampleServer()
	defer srv.Close()
	srv.Stop()
	fmt.Println(srv.Running())
	// Output: false
}

// Running says whether the server is started.
func ExampleServer_Running() {
	srv := exampleServer()
	fmt.Println(srv.Running())
	srv.Close()
	fmt.Println(srv.Running())
	// Output:
	// true
	// false
}

// Close stops the server and removes its data; it is safe twice.
func ExampleServer_Close() {
	srv := exampleServer()
	fmt.Println(srv.Close(), srv.Close())
	// Output: <nil> <nil>
}

// Config is a client configuration for the server.
func ExampleServer_Config() {
	srv := exampleServer()
	defer srv.Close()
	fmt.Println(srv.Config().Endpoints[0] == srv.Endpoints()[0])
	// Output: true
}

// Endpoints is the server's client URL; it survives restarts.
func ExampleServer_Endpoints() {
	srv := exampleServer()
	defer srv.Close()
	fmt.Println(strings.HasPrefix(srv.Endpoints()[0], "http://127.0.0.1:"))
	// Output: true
}

// exampleProxy starts a server and a proxy in front of it; call stop when done.
func exampleProxy() (*etcdtest.Proxy, func()) {
	srv := exampleServer()
	px, err := etcdtest.RunProxy(srv.Config())
	if err != nil {
		panic(err)
	}
	return px, func() { px.Close(); srv.Close() }
}

// RunProxy puts a proxy in front of a program's etcd, so that the program
// can cut its own clients off.
func ExampleRunProxy() {
	px, stop := exampleProxy()
	defer stop()
	cli, err := etcdkit.New(context.Background(), px.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	_, err = etcdkit.NewKV(cli, "proxy/", etcdkit.String()).Put(context.Background(), "k", "v")
	fmt.Println(err)
	_, err = etcdtest.RunProxy(etcdkit.Config{})
	fmt.Println(err != nil)
	// Output:
	// <nil>
	// true
}

// Blackhole holds traffic, as a partition does: calls get no answer, and
// Heal lets them through.
func ExampleProxy_Blackhole() {
	px, stop := exampleProxy()
	defer stop()
	cli, err := etcdkit.New(context.Background(), px.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	kv := etcdkit.NewKV(cli, "blackhole/", etcdkit.String())
	px.Blackhole(etcdtest.BothWays)
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err = kv.Put(ctx, "k", "v")
	fmt.Println("cut off:", errors.Is(err, context.DeadlineExceeded))
	px.Heal()
	_, err = kv.Put(context.Background(), "k", "v")
	fmt.Println("healed:", err)
	// Output:
	// cut off: true
	// healed: <nil>
}

// Heal ends a blackhole; what was held is delivered.
func ExampleProxy_Heal() {
	px, stop := exampleProxy()
	defer stop()
	px.Blackhole(etcdtest.ToClient)
	px.Heal()
	cli, err := etcdkit.New(context.Background(), px.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	_, err = etcdkit.NewKV(cli, "heal/", etcdkit.String()).Put(context.Background(), "k", "v")
	fmt.Println(err)
	// Output: <nil>
}

// Partition cuts the network for a while, without waiting.
func ExampleProxy_Partition() {
	px, stop := exampleProxy()
	defer stop()
	cli, err := etcdkit.New(context.Background(), px.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	px.Partition(etcdtest.BothWays, 300*time.Millisecond)
	_, err = etcdkit.NewKV(cli, "partition/", etcdkit.String()).Put(context.Background(), "k", "v")
	fmt.Println("went through once healed:", err)
	// Output: went through once healed: <nil>
}

// Drop resets every connection; clients reconnect by themselves.
func ExampleProxy_Drop() {
	px, stop := exampleProxy()
	defer stop()
	cli, err := etcdkit.New(context.Background(), px.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	px.Drop()
	kv := etcdkit.NewKV(cli, "drop/", etcdkit.String())
	for range 50 { // the first call may meet the reset connection
		if _, err = kv.Put(context.Background(), "k", "v"); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	fmt.Println(err)
	// Output: <nil>
}

// Config and Endpoints reach the server through the proxy.
func ExampleProxy_Config() {
	px, stop := exampleProxy()
	defer stop()
	fmt.Println(px.Config().Endpoints[0] == px.Endpoints()[0])
	// Output: true
}

// Endpoints lists the proxy's URLs, one per server behind it.
func ExampleProxy_Endpoints() {
	px, stop := exampleProxy()
	defer stop()
	fmt.Println(len(px.Endpoints()))
	// Output: 1
}

// Close stops the proxy; it is safe twice.
func ExampleProxy_Close() {
	px, stop := exampleProxy()
	defer stop()
	px.Close()
	px.Close()
	fmt.Println("closed")
	// Output: closed
}

// RunCluster starts a cluster for a program; Close stops it.
func ExampleRunCluster() {
	c, err := etcdtest.RunCluster(3)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	fmt.Println(c.Size(), len(c.Endpoints()), len(c.Config().Endpoints))
	_, err = etcdtest.RunCluster(0)
	fmt.Println(err != nil)
	// Output:
	// 3 3 3
	// true
}

// exampleCluster starts a three-member cluster; close it when done.
func exampleCluster() *etcdtest.Cluster {
	c, err := etcdtest.RunCluster(3)
	if err != nil {
		panic(err)
	}
	return c
}

// Size is the number of members.
func ExampleCluster_Size() {
	c := exampleCluster()
	defer c.Close()
	fmt.Println(c.Size())
	// Output: 3
}

// Endpoints lists every member's client URL.
func ExampleCluster_Endpoints() {
	c := exampleCluster()
	defer c.Close()
	fmt.Println(len(c.Endpoints()))
	// Output: 3
}

// Config reaches the whole cluster.
func ExampleCluster_Config() {
	c := exampleCluster()
	defer c.Close()
	cli, err := etcdkit.New(context.Background(), c.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cli.Close()
	resp, err := cli.Raw().MemberList(context.Background())
	fmt.Println(len(resp.Members), err)
	// Output: 3 <nil>
}

// StopMember stops one member; the others keep a quorum.
func ExampleCluster_StopMember() {
	c := exampleCluster()
	defer c.Close()
	c.StopMember(0)
	fmt.Println(c.Member(0).Running(), c.Member(1).Running())
	// Output: false true
}

// RestartMember starts a stopped member again, with its data.
func ExampleCluster_RestartMember() {
	c := exampleCluster()
	defer c.Close()
	c.StopMember(2)
	c.RestartMember(2)
	fmt.Println(c.Member(2).Running())
	// Output: true
}

// Member is one member, as a Server.
func ExampleCluster_Member() {
	c := exampleCluster()
	defer c.Close()
	fmt.Println(c.Member(1).Endpoints()[0] == c.Endpoints()[1])
	// Output: true
}

// Leader is the index of the member that leads, or -1.
func ExampleCluster_Leader() {
	c := exampleCluster()
	defer c.Close()
	var leader int
	for range 100 { // an election may still be under way
		if leader = c.Leader(); leader >= 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	fmt.Println(leader >= 0 && leader < c.Size())
	// Output: true
}

// Close stops every member and removes their data; it is safe twice.
func ExampleCluster_Close() {
	c := exampleCluster()
	fmt.Println(c.Close(), c.Close())
	// Output: <nil> <nil>
}
