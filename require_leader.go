package etcdkit

import (
	"context"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/metadata"
)

// leaderMetadata holds the outgoing metadata of clientv3.WithRequireLeader
// and nothing else. gRPC never changes the metadata of a ctx, so every
// request that needs a leader (watches, keep-alives, queue waits) can
// share it.
var leaderMetadata = clientv3.WithRequireLeader(context.Background())

// requireLeader is clientv3.WithRequireLeader(ctx). That makes a metadata
// map per call, which a watch keeps as long as it lasts (about 0.5 KB, a
// good part of a Follow's memory): a ctx without metadata of its own gets
// the shared one instead.
func requireLeader(ctx context.Context) context.Context {
	if _, ok := metadata.FromOutgoingContext(ctx); ok {
		return clientv3.WithRequireLeader(ctx) // merged with the caller's
	}
	return leaderCtx{ctx}
}

// leaderCtx is a ctx with leaderMetadata added: its parent has no outgoing
// metadata, and leaderMetadata has no other value.
type leaderCtx struct{ context.Context }

func (c leaderCtx) Value(key any) any {
	if v := leaderMetadata.Value(key); v != nil {
		return v
	}
	return c.Context.Value(key)
}
