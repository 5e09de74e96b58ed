// Command discovery runs two tiny gRPC servers that register themselves in
// etcd with a health check, and a client that finds them through
// discovery.NewResolver ("etcdkit:///greeter"), which dials passing
// instances only, and balances calls between them. Then one server fails
// its check: the client's calls move to the other; it recovers and gets
// calls again. Last, it drains on shutdown: marked critical, it gets no new
// calls, then deregisters and stops.
//
// It connects to $ETCD_ENDPOINTS (see etcdkit.ConfigFromEnv); when that is
// not set, it starts an embedded etcd of its own:
//
//	go run ./examples/discovery
package main

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/discovery"
	"github.com/etcdkit/etcdkit/etcdtest"
)

const service = "examples/discovery/greeter"

func main() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	cli, stop, err := etcdtest.Connect(ctx)
	if err != nil {
		log.Fatal(err)
	}
	defer stop()

	// Two servers, each registered under a lease that its process keeps
	// alive, with a check that asks its own gRPC health service every
	// 100ms: its status in etcd follows what the server says of itself.
	names := map[string]string{} // address -> instance ID
	var servers []*backend
	for _, id := range []string{"backend-1", "backend-2"} {
		b, err := startBackend(ctx, cli, id)
		if err != nil {
			log.Fatal(err)
		}
		defer b.stop(ctx)
		names[b.addr] = id
		servers = append(servers, b)
		fmt.Printf("%s listens on %s and is registered as %s/%s\n", id, b.addr, service, id)
	}

	// The client knows only the service name; the resolver follows the
	// passing instances and round_robin spreads the calls over them.
	builder, err := discovery.NewResolver(cli)
	if err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient("etcdkit:///"+service,
		grpc.WithResolvers(builder),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	greeter := healthpb.NewHealthClient(conn)
	call := func() string {
		var p peer.Peer
		if _, err := greeter.Check(ctx, &healthpb.HealthCheckRequest{Service: "greeter"}, grpc.Peer(&p), grpc.WaitForReady(true)); err != nil {
			log.Fatal(err)
		}
		return names[p.Addr.String()]
	}
	onlyTo := func(id string) func() bool {
		return func() bool {
			for range 10 {
				if call() != id {
					return false
				}
			}
			return true
		}
	}
	both := func() bool {
		seen := map[string]bool{}
		for range 10 {
			seen[call()] = true
		}
		return len(seen) == 2
	}

	if !waitUntil(both) {
		log.Fatal("the calls never reached both backends")
	}
	fmt.Println("calls answered by:", call(), call(), call(), call())

	// backend-2 falls ill: its health service says NOT_SERVING, its check
	// fails, it is critical in etcd, and the resolver stops dialling it.
	servers[1].health.SetServingStatus("", healthpb.HealthCheckResponse_NOT_SERVING)
	if !waitUntil(onlyTo("backend-1")) {
		log.Fatal("the client kept calling the critical backend-2")
	}
	printStatuses(ctx, cli)
	fmt.Println("calls answered by:", call(), call(), call(), call())

	// It recovers: passing again, it gets calls again.
	servers[1].health.SetServingStatus("", healthpb.HealthCheckResponse_SERVING)
	if !waitUntil(both) {
		log.Fatal("the recovered backend-2 got no calls")
	}
	printStatuses(ctx, cli)
	fmt.Println("calls answered by:", call(), call(), call(), call())

	// backend-2 shuts down gracefully: critical first, so clients stop
	// sending it new calls, then deregistered after 500ms, then stopped.
	if err := servers[1].reg.Drain(ctx, 500*time.Millisecond); err != nil {
		log.Fatal(err)
	}
	if err := servers[1].stop(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("backend-2 drained and stopped")
	fmt.Println("calls answered by:", call(), call(), call(), call())
	printStatuses(ctx, cli)
}

// printStatuses prints each registered instance of the service and its status.
func printStatuses(ctx context.Context, cli *etcdkit.Client) {
	insts, err := discovery.Lookup(ctx, cli, service)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print("registered:")
	for _, inst := range insts {
		fmt.Printf(" %s=%s", inst.ID, inst.Health.Status)
		if inst.Health.Output != "" {
			fmt.Printf(" (%s)", inst.Health.Output)
		}
	}
	fmt.Println()
}

// backend is a gRPC server with the health service, registered in etcd.
type backend struct {
	addr    string
	grpc    *grpc.Server
	health  *health.Server
	self    *grpc.ClientConn // the check's connection to its own server
	reg     *discovery.Registration
	served  chan struct{}
	stopped bool
}

func startBackend(ctx context.Context, cli *etcdkit.Client, id string) (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{addr: ln.Addr().String(), grpc: grpc.NewServer(), health: health.NewServer(), served: make(chan struct{})}
	b.health.SetServingStatus("greeter", healthpb.HealthCheckResponse_SERVING)
	healthpb.RegisterHealthServer(b.grpc, b.health)
	go func() {
		defer close(b.served)
		_ = b.grpc.Serve(ln)
	}()
	if b.self, err = grpc.NewClient(b.addr, grpc.WithTransportCredentials(insecure.NewCredentials())); err != nil {
		b.grpc.Stop()
		return nil, err
	}
	b.reg, err = discovery.Register(ctx, cli, service, discovery.Instance{
		ID:       id,
		Addr:     b.addr,
		Metadata: map[string]string{"version": "1.0"},
	}, discovery.WithCheck(100*time.Millisecond, discovery.GRPCCheck(b.self, "")))
	if err != nil {
		b.self.Close()
		b.grpc.Stop()
		return nil, err
	}
	return b, nil
}

// stop deregisters the backend, if it was not yet, then stops its server.
// It is safe to call twice.
func (b *backend) stop(ctx context.Context) error {
	if b.stopped {
		return nil
	}
	b.stopped = true
	err := b.reg.Close(ctx)
	b.self.Close()
	b.grpc.GracefulStop()
	<-b.served
	return err
}

// waitUntil calls cond until it returns true, for at most five seconds.
func waitUntil(cond func() bool) bool {
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return false
}
