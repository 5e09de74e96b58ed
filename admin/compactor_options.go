package admin

import "time"

// DefaultCompactorKey is the key [Compactor]s coordinate on unless
// [CompactorKey] says otherwise. With a client namespace, it lives in the
// namespace: Compactors of different namespaces of one cluster do not see
// each other, and each compacts the whole cluster.
const DefaultCompactorKey = "etcdkit/compactor"

// CompactorOption changes a [Compactor].
type CompactorOption interface{ applyCompactor(*compactorOptions) }

type compactorOptions struct {
	every     time.Duration
	key       string
	onCompact func(Compaction)
}

type compactorFunc func(*compactorOptions)

func (f compactorFunc) applyCompactor(o *compactorOptions) { f(o) }

// CompactEvery sets the interval of the rounds; default 5 minutes, as the
// Kubernetes apiserver. Every Compactor sharing a key should use the same.
// d must be > 0, else [NewCompactor] fails with
// [etcdkit.ErrInvalidArgument].
func CompactEvery(d time.Duration) CompactorOption {
	return compactorFunc(func(o *compactorOptions) { o.every = d })
}

// CompactorKey sets the key the Compactors coordinate on; those that should
// take turns must share it. Default: [DefaultCompactorKey].
func CompactorKey(key string) CompactorOption {
	return compactorFunc(func(o *compactorOptions) { o.key = key })
}

// OnCompact makes the Compactor call fn after each compaction it made, from
// the goroutine running [Compactor.Run].
func OnCompact(fn func(Compaction)) CompactorOption {
	return compactorFunc(func(o *compactorOptions) { o.onCompact = fn })
}
