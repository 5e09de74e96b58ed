package discovery_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/naming/endpoints"

	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit/discovery"
)

// sink keeps the benchmarks' results alive.
var sink []discovery.Instance

// BenchmarkLookup compares Lookup, over ten instances, with the same read
// done on clientv3 by hand and with etcd's endpoints.Manager List.
func BenchmarkLookup(b *testing.B) {
	cli := testServer.Client(b)
	ctx := context.Background()
	svc := serviceName(b)
	for i := range 10 {
		reg, err := discovery.Register(ctx, cli, svc, discovery.Instance{
			ID: fmt.Sprintf("i%02d", i), Addr: fmt.Sprintf("10.0.0.%d:80", i), Metadata: map[string]string{"zone": "z1"},
		})
		require.NoError(b, err)
		defer reg.Close(ctx)
	}
	b.Run("discovery", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			got, err := discovery.Lookup(ctx, cli, svc)
			if err != nil || len(got) != 10 {
				b.Fatal(len(got), err)
			}
		}
	})
	// The same read as Lookup, linearizable, done by hand on clientv3.
	b.Run("clientv3", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			resp, err := cli.Raw().Get(ctx, svc+"/", clientv3.WithPrefix())
			if err != nil || len(resp.Kvs) != 10 {
				b.Fatal(err)
			}
			got := make([]discovery.Instance, 0, len(resp.Kvs))
			for _, kv := range resp.Kvs {
				var r struct {
					Addr     string
					Metadata map[string]string
				}
				if err := json.Unmarshal(kv.Value, &r); err != nil {
					b.Fatal(err)
				}
				got = append(got, discovery.Instance{ID: strings.TrimPrefix(string(kv.Key), svc+"/"), Addr: r.Addr, Metadata: r.Metadata})
			}
			sink = got
		}
	})
	// etcd's naming package reads serializably: no round of consensus.
	b.Run("endpoints", func(b *testing.B) {
		em, err := endpoints.NewManager(cli.Raw(), svc)
		require.NoError(b, err)
		b.ReportAllocs()
		for b.Loop() {
			got, err := em.List(ctx)
			if err != nil || len(got) != 10 {
				b.Fatal(len(got), err)
			}
		}
	})
}
