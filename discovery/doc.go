// Package discovery registers service instances in etcd, looks them up, and
// follows the live set of a service's instances.
//
// An instance is registered under a lease that is kept alive in the
// background, so it disappears from etcd soon after its process dies; if
// the lease is lost while the process lives (etcd restarted past the TTL,
// its data wiped, a long partition), the instance registers itself again,
// with a new lease, as soon as etcd answers; and if its key is deleted
// (etcdctl del, or another registration of the same ID that closes), it
// puts the key back ([Register] says when exactly):
//
//	reg, err := discovery.Register(ctx, cli, "greeter", discovery.Instance{
//		ID:   "greeter-1",
//		Addr: "10.0.0.7:9000",
//	})
//	if err != nil {
//		return err
//	}
//	defer reg.Close(context.Background())
//
// Keys and values follow the format of etcd's own naming package
// (go.etcd.io/etcd/client/v3/naming/endpoints): instance ID of service S is
// stored at key "S/ID" with the JSON value {"Op":0,"Addr":...,"Metadata":...}.
// So etcd's gRPC resolver dials what this package registers,
//
//	builder, _ := resolver.NewBuilder(cli.Raw())
//	conn, err := grpc.NewClient("etcd:///greeter", grpc.WithResolvers(builder), ...)
//
// and [Lookup] and [Set] see the instances an endpoints.Manager registers.
// With a Client namespace, everything lives in the namespace, and the
// resolver sees the same keys when built on the same client's Raw().
//
// Metadata is a map of strings in the common case ([Instance]); any type
// that encoding/json handles can be used instead with [RegisterOf],
// [LookupOf] and [NewSetOf].
package discovery
