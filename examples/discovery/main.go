// Command discovery runs two tiny gRPC servers that register themselves in
// etcd, and a client that finds them through etcd's own gRPC resolver
// ("etcd:///greeter") and balances calls between them. Then one server
// deregisters and stops, and the client stops calling it.
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

	"go.etcd.io/etcd/client/v3/naming/resolver"
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
	// alive: if a process dies, its instance disappears within the TTL.
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

	// The client knows only the service name; etcd's resolver follows
	// the instances and round_robin spreads the calls over them.
	builder, err := resolver.NewBuilder(cli.Raw())
	if err != nil {
		log.Fatal(err)
	}
	conn, err := grpc.NewClient("etcd:///"+service,
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
		if _, err := greeter.Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Peer(&p)); err != nil {
			log.Fatal(err)
		}
		return names[p.Addr.String()]
	}

	// Both backends answer once the client has connected to both.
	seen := map[string]bool{}
	if !waitUntil(func() bool { seen[call()] = true; return len(seen) == 2 }) {
		log.Fatal("the calls never reached both backends")
	}
	fmt.Println("calls answered by:", call(), call(), call(), call())

	// backend-2 leaves: it deregisters first, and stops once clients no
	// longer send it calls.
	if err := servers[1].reg.Close(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("backend-2 deregistered")
	if !waitUntil(func() bool {
		for range 10 {
			if call() != "backend-1" {
				return false
			}
		}
		return true
	}) {
		log.Fatal("the client kept calling backend-2")
	}
	if err := servers[1].stop(ctx); err != nil {
		log.Fatal(err)
	}
	fmt.Println("backend-2 stopped")
	fmt.Println("calls answered by:", call(), call(), call(), call())

	left, err := discovery.Lookup(ctx, cli, service)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("registered instances of %s: %v\n", service, left)
}

// backend is a gRPC server with the health service, registered in etcd.
type backend struct {
	addr    string
	grpc    *grpc.Server
	reg     *discovery.Registration
	served  chan struct{}
	stopped bool
}

func startBackend(ctx context.Context, cli *etcdkit.Client, id string) (*backend, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &backend{addr: ln.Addr().String(), grpc: grpc.NewServer(), served: make(chan struct{})}
	healthpb.RegisterHealthServer(b.grpc, health.NewServer())
	go func() {
		defer close(b.served)
		_ = b.grpc.Serve(ln)
	}()
	b.reg, err = discovery.Register(ctx, cli, service, discovery.Instance{
		ID:       id,
		Addr:     b.addr,
		Metadata: map[string]string{"version": "1.0"},
	})
	if err != nil {
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
