package discovery_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"google.golang.org/grpc/attributes"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/discovery"
)

// exampleRegister registers instance id of service at addr.
func exampleRegister(service, id string, opts ...discovery.RegisterOption) *discovery.Registration {
	reg, err := discovery.Register(context.Background(), exampleClient(), service,
		discovery.Instance{ID: id, Addr: "10.0.0.1:9000"}, opts...)
	if err != nil {
		panic(err)
	}
	return reg
}

// Lookup lists the instances registered now.
func ExampleLookup() {
	ctx := context.Background()
	reg := exampleRegister("example-lookup", "a")
	defer reg.Close(ctx)
	found, err := discovery.Lookup(ctx, exampleClient(), "example-lookup")
	fmt.Println(len(found), found[0].ID, err)
	_, err = discovery.Lookup(ctx, exampleClient(), "")
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidArgument))
	// Output:
	// 1 a <nil>
	// true
}

// LookupOf decodes each instance's metadata into M.
func ExampleLookupOf() {
	type meta struct {
		Zone string `json:"zone"`
	}
	ctx := context.Background()
	reg, err := discovery.RegisterOf(ctx, exampleClient(), "example-lookupof",
		discovery.InstanceOf[meta]{ID: "a", Addr: "10.0.0.1:9000", Metadata: meta{Zone: "eu-1"}})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer reg.Close(ctx)
	found, err := discovery.LookupOf[meta](ctx, exampleClient(), "example-lookupof")
	fmt.Println(found[0].Metadata.Zone, err)
	// Output: eu-1 <nil>
}

// WithTTL sets how long an instance outlives its process; under a second
// is refused.
func ExampleWithTTL() {
	ctx := context.Background()
	reg := exampleRegister("example-withttl", "a", discovery.WithTTL(5*time.Second))
	defer reg.Close(ctx)
	_, err := discovery.Register(ctx, exampleClient(), "example-withttl",
		discovery.Instance{ID: "b", Addr: "10.0.0.1:9000"}, discovery.WithTTL(time.Millisecond))
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidTTL))
	// Output: true
}

// Key is where the instance is in etcd.
func ExampleRegistration_Key() {
	reg := exampleRegister("example-key", "a")
	defer reg.Close(context.Background())
	fmt.Println(reg.Key())
	// Output: example-key/a
}

// Close deregisters at once; Done closes, and Err stays nil.
func ExampleRegistration_Close() {
	ctx := context.Background()
	reg := exampleRegister("example-close", "a")
	fmt.Println(reg.Close(ctx), reg.Close(ctx))
	found, _ := discovery.Lookup(ctx, exampleClient(), "example-close")
	fmt.Println(len(found))
	// Output:
	// <nil> <nil>
	// 0
}

// Done closes when the registration stops keeping its instance.
func ExampleRegistration_Done() {
	reg := exampleRegister("example-done", "a")
	reg.Close(context.Background())
	<-reg.Done()
	fmt.Println("done:", reg.Err())
	// Output: done: <nil>
}

// Err is nil while the registration is open.
func ExampleRegistration_Err() {
	reg := exampleRegister("example-err", "a")
	defer reg.Close(context.Background())
	fmt.Println(reg.Err())
	// Output: <nil>
}

// Health is the status this registration last set.
func ExampleRegistration_Health() {
	ctx := context.Background()
	reg := exampleRegister("example-health", "a")
	defer reg.Close(ctx)
	reg.SetStatus(ctx, discovery.Warning, "lagging")
	h := reg.Health()
	fmt.Println(h.Status, h.Output)
	// Output: warning lagging
}

// exampleCheck registers an instance whose check always fails, with opts.
func exampleCheck(service string, opts ...discovery.CheckOption) error {
	reg, err := discovery.Register(context.Background(), exampleClient(), service,
		discovery.Instance{ID: "a", Addr: "10.0.0.1:9000"},
		discovery.WithCheck(time.Hour, func(context.Context) error { return errors.New("down") }, opts...))
	if err == nil {
		reg.Close(context.Background())
	}
	return err
}

// CheckTimeout bounds one run of a check; it must be positive.
func ExampleCheckTimeout() {
	fmt.Println(exampleCheck("example-checktimeout", discovery.CheckTimeout(time.Second)))
	fmt.Println(errors.Is(exampleCheck("example-checktimeout", discovery.CheckTimeout(0)), etcdkit.ErrInvalidArgument))
	// Output:
	// <nil>
	// true
}

// FailuresBeforeCritical tolerates failures in a row; it must be at least 1.
func ExampleFailuresBeforeCritical() {
	fmt.Println(exampleCheck("example-failurescritical", discovery.FailuresBeforeCritical(3)))
	fmt.Println(errors.Is(exampleCheck("example-failurescritical", discovery.FailuresBeforeCritical(0)), etcdkit.ErrInvalidArgument))
	// Output:
	// <nil>
	// true
}

// FailuresBeforeWarning must be under FailuresBeforeCritical.
func ExampleFailuresBeforeWarning() {
	fmt.Println(exampleCheck("example-failureswarning", discovery.FailuresBeforeWarning(1), discovery.FailuresBeforeCritical(3)))
	fmt.Println(errors.Is(exampleCheck("example-failureswarning", discovery.FailuresBeforeWarning(3), discovery.FailuresBeforeCritical(3)), etcdkit.ErrInvalidArgument))
	// Output:
	// <nil>
	// true
}

// SuccessesBeforePassing must be at least 1.
func ExampleSuccessesBeforePassing() {
	fmt.Println(exampleCheck("example-successes", discovery.SuccessesBeforePassing(2)))
	fmt.Println(errors.Is(exampleCheck("example-successes", discovery.SuccessesBeforePassing(0)), etcdkit.ErrInvalidArgument))
	// Output:
	// <nil>
	// true
}

// A Status is stored and printed as its name; one out of range does not
// encode, and a name from a later version reads as critical.
func ExampleStatus() {
	b, err := discovery.Warning.MarshalText()
	fmt.Println(string(b), err)
	_, err = discovery.Status(9).MarshalText()
	fmt.Println(errors.Is(err, etcdkit.ErrInvalidArgument))
	var s discovery.Status
	fmt.Println(s.UnmarshalText([]byte("maintenance")), s)
	// Output:
	// warning <nil>
	// true
	// <nil> critical
}

type exampleMeta struct {
	Zone string `json:"zone"`
}

// exampleSetOf registers one instance with metadata and follows service.
func exampleSetOf(service string, opts ...discovery.SetOption[exampleMeta]) (*discovery.Registration, *discovery.SetOf[exampleMeta]) {
	ctx := context.Background()
	reg, err := discovery.RegisterOf(ctx, exampleClient(), service,
		discovery.InstanceOf[exampleMeta]{ID: "a", Addr: "10.0.0.1:9000", Metadata: exampleMeta{Zone: "eu-1"}})
	if err != nil {
		panic(err)
	}
	set, err := discovery.NewSetOf(ctx, exampleClient(), service, opts...)
	if err != nil {
		panic(err)
	}
	return reg, set
}

// NewSetOf follows instances with metadata of type M.
func ExampleNewSetOf() {
	reg, set := exampleSetOf("example-newsetof")
	defer reg.Close(context.Background())
	defer set.Close()
	fmt.Println(set.Snapshot()[0].Metadata.Zone)
	// Output: eu-1
}

// Snapshot is the instances now, sorted by ID.
func ExampleSetOf_Snapshot() {
	reg, set := exampleSetOf("example-snapshot")
	defer reg.Close(context.Background())
	defer set.Close()
	for _, inst := range set.Snapshot() {
		fmt.Println(inst.ID, inst.Addr)
	}
	// Output: a 10.0.0.1:9000
}

// OnAdd is told of each instance, those there already first.
func ExampleOnAdd() {
	reg, set := exampleSetOf("example-onadd", discovery.OnAdd(func(i discovery.InstanceOf[exampleMeta]) {
		fmt.Println("added", i.ID)
	}))
	defer reg.Close(context.Background())
	defer set.Close()
	// Output: added a
}

// OnRemove is told of each instance that leaves.
func ExampleOnRemove() {
	removed := make(chan string, 1)
	reg, set := exampleSetOf("example-onremove", discovery.OnRemove(func(i discovery.InstanceOf[exampleMeta]) {
		removed <- i.ID
	}))
	defer set.Close()
	reg.Close(context.Background())
	fmt.Println("removed", <-removed)
	// Output: removed a
}

// WithStatusOf keeps only the instances in the given statuses.
func ExampleWithStatusOf() {
	ctx := context.Background()
	reg, set := exampleSetOf("example-withstatusof", discovery.WithStatusOf[exampleMeta](discovery.Passing))
	defer reg.Close(ctx)
	defer set.Close()
	fmt.Println(len(set.Snapshot()))
	// Output: 1
}

// Close stops following; Done closes and Err stays nil.
func ExampleSetOf_Close() {
	reg, set := exampleSetOf("example-setclose")
	defer reg.Close(context.Background())
	set.Close()
	<-set.Done()
	fmt.Println(set.Err())
	// Output: <nil>
}

// Done closes when the set stops following the service.
func ExampleSetOf_Done() {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	set, err := discovery.NewSetOf[exampleMeta](ctx, exampleClient(), "example-setdone")
	if err != nil {
		fmt.Println(err)
		return
	}
	cancel()
	<-set.Done()
	fmt.Println("stopped:", set.Err())
	// Output: stopped: <nil>
}

// Err says why the set stopped: ErrClosed after the client's Close.
func ExampleSetOf_Err() {
	cli, err := etcdkit.New(context.Background(), testServer.Config())
	if err != nil {
		fmt.Println(err)
		return
	}
	set, err := discovery.NewSetOf[exampleMeta](context.Background(), cli, "example-seterr")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(set.Err())
	cli.Close()
	<-set.Done()
	fmt.Println(errors.Is(set.Err(), etcdkit.ErrClosed))
	// Output:
	// <nil>
	// true
}

// ResolvedInstance reads the instance behind a resolver's endpoint, as a
// balancer does; attributes without one give false.
func ExampleResolvedInstance() {
	_, ok := discovery.ResolvedInstance[map[string]string](attributes.New("other", 1))
	fmt.Println(ok)
	// Output: false
}
