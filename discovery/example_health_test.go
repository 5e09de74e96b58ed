package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/etcdkit/etcdkit/discovery"
)

func ExampleWithCheck() {
	ctx := context.Background()
	cli := exampleClient()

	// The check passes while the instance can do its work: here, always.
	ping := func(ctx context.Context) error { return nil }
	reg, err := discovery.Register(ctx, cli, "example-checked", discovery.Instance{ID: "c1", Addr: "10.0.0.7:9000"},
		discovery.WithCheck(50*time.Millisecond, ping,
			discovery.FailuresBeforeCritical(2), discovery.SuccessesBeforePassing(1)))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close(ctx)
	fmt.Println(reg.Health().Status)
	// Output:
	// passing
}

func ExampleHTTPCheck() {
	ctx := context.Background()
	cli := exampleClient()
	ready := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer ready.Close()

	reg, err := discovery.Register(ctx, cli, "example-http", discovery.Instance{ID: "h1", Addr: "10.0.0.7:9000"},
		discovery.WithCheck(50*time.Millisecond, discovery.HTTPCheck(ready.URL+"/ready")))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close(ctx)
	for reg.Health().Status != discovery.Critical {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println(reg.Health().Status)
	// Output:
	// critical
}

func ExampleGRPCCheck() {
	ctx := context.Background()
	cli := exampleClient()
	// A gRPC server with the standard health service, and a connection to it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	gs := grpc.NewServer()
	hs := health.NewServer()
	healthpb.RegisterHealthServer(gs, hs)
	go gs.Serve(ln)
	defer gs.Stop()
	conn, err := grpc.NewClient(ln.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	hs.SetServingStatus("greeter", healthpb.HealthCheckResponse_NOT_SERVING)

	reg, err := discovery.Register(ctx, cli, "example-grpc", discovery.Instance{ID: "g1", Addr: ln.Addr().String()},
		discovery.WithCheck(50*time.Millisecond, discovery.GRPCCheck(conn, "greeter")))
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close(ctx)
	for reg.Health().Status != discovery.Critical {
		time.Sleep(10 * time.Millisecond)
	}
	fmt.Println(reg.Health().Status, "-", reg.Health().Output)
	// Output:
	// critical - grpc health check of "greeter": NOT_SERVING
}

func ExampleRegistration_SetStatus() {
	ctx := context.Background()
	cli := exampleClient()

	reg, err := discovery.Register(ctx, cli, "example-ttl", discovery.Instance{ID: "w1", Addr: "10.0.0.8:7000"})
	if err != nil {
		log.Fatal(err)
	}
	defer reg.Close(ctx)
	if err := reg.SetStatus(ctx, discovery.Warning, "3000 jobs behind"); err != nil {
		log.Fatal(err)
	}
	found, err := discovery.Lookup(ctx, cli, "example-ttl")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(found[0].ID, found[0].Health.Status, found[0].Health.Output)
	// Output:
	// w1 warning 3000 jobs behind
}

func ExampleWithStatus() {
	ctx := context.Background()
	cli := exampleClient()

	for i, s := range []discovery.Status{discovery.Passing, discovery.Warning, discovery.Critical} {
		reg, err := discovery.Register(ctx, cli, "example-filter", discovery.Instance{
			ID:     fmt.Sprintf("i%d", i),
			Addr:   "10.0.0.9:80",
			Health: discovery.Health{Status: s},
		})
		if err != nil {
			log.Fatal(err)
		}
		defer reg.Close(ctx)
	}
	all, _ := discovery.Lookup(ctx, cli, "example-filter")
	serving, _ := discovery.Lookup(ctx, cli, "example-filter", discovery.WithStatus(discovery.Passing, discovery.Warning))
	passing, _ := discovery.Lookup(ctx, cli, "example-filter", discovery.WithStatus(discovery.Passing))
	fmt.Println(len(all), len(serving), len(passing))
	// Output:
	// 3 2 1
}

func ExampleRegistration_Drain() {
	ctx := context.Background()
	cli := exampleClient()

	reg, err := discovery.Register(ctx, cli, "example-drain", discovery.Instance{ID: "d1", Addr: "10.0.0.7:9000"})
	if err != nil {
		log.Fatal(err)
	}
	// On shutdown: critical at once, so resolvers stop sending new calls;
	// deregistered 100ms later.
	if err := reg.Drain(ctx, 100*time.Millisecond); err != nil {
		log.Fatal(err)
	}
	found, _ := discovery.Lookup(ctx, cli, "example-drain")
	fmt.Println("instances left:", len(found))
	// Output:
	// instances left: 0
}

func ExampleDeregisterCriticalAfter() {
	ctx := context.Background()
	cli := exampleClient()

	reg, err := discovery.Register(ctx, cli, "example-expire", discovery.Instance{ID: "e1", Addr: "10.0.0.7:9000"},
		discovery.WithCheck(20*time.Millisecond, func(context.Context) error { return errors.New("disk full") }),
		discovery.DeregisterCriticalAfter(100*time.Millisecond))
	if err != nil {
		log.Fatal(err)
	}
	<-reg.Done()
	fmt.Println(reg.Err())
	// Output:
	// etcdkit: deregister "example-expire/e1": closed: critical for 100ms: disk full
}

func ExampleNewResolver() {
	cli := exampleClient()

	builder, err := discovery.NewResolver(cli)
	if err != nil {
		log.Fatal(err)
	}
	// Only passing instances of "greeter" are dialled.
	conn, err := grpc.NewClient("etcdkit:///greeter",
		grpc.WithResolvers(builder),
		grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultServiceConfig(`{"loadBalancingConfig":[{"round_robin":{}}]}`))
	if err != nil {
		log.Fatal(err)
	}
	defer conn.Close()
	fmt.Println(builder.Scheme())
	// Output:
	// etcdkit
}
