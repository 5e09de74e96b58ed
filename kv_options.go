package etcdkit

import "fmt"

// DefaultPageSize is how many entries [KV.List] reads in its first request
// unless [WithPageSize] says otherwise. The rest comes in one stream, or,
// from a server without RangeStream, in pages sized by the bytes of the
// entries seen, to about 4 MiB a page.
const DefaultPageSize = 500

// ListOption narrows or tunes [KV.List].
type ListOption interface {
	applyList(*listOptions)
}

type listOptions struct {
	pageSize int64
	from, to string // relative to the prefix; to "" is the end of the prefix
	keysOnly bool
	rev      int64 // 0: the latest revision
	fixed    bool  // the page size was set with WithPageSize
}

type listOptionFunc func(*listOptions)

func (f listOptionFunc) applyList(o *listOptions) { f(o) }

// validate reports options that would make etcd misread the request.
func (o listOptions) validate() error {
	switch {
	case o.pageSize <= 0:
		return fmt.Errorf("%w: page size %d, want > 0", ErrInvalidArgument, o.pageSize)
	case o.to != "" && o.to <= o.from:
		return fmt.Errorf("%w: range [%q, %q) is empty", ErrInvalidArgument, o.from, o.to)
	case o.rev < 0:
		return fmt.Errorf("%w: revision %d is negative", ErrInvalidArgument, o.rev)
	}
	return nil
}

// WithPageSize makes [KV.List] read pages of n entries, one request each,
// instead of [DefaultPageSize] first and then one stream (or pages sized
// by bytes). Smaller pages mean smaller responses and more round trips,
// and each page makes etcd count the keys after it, so a listing in pages
// costs more than a streamed one as the prefix grows; n must be > 0, else
// List yields [ErrInvalidArgument].
func WithPageSize(n int) ListOption {
	return listOptionFunc(func(o *listOptions) { o.pageSize, o.fixed = int64(n), true })
}

// WithRange limits [KV.List] to the keys k with from <= k < to, both relative
// to the KV's prefix. An empty to means up to the end of the prefix, so
// WithRange(k, "") lists from key k on.
func WithRange(from, to string) ListOption {
	return listOptionFunc(func(o *listOptions) { o.from, o.to = from, to })
}

// WithKeysOnly makes [KV.List] read keys without values, which is cheaper for
// large values. Each [Entry] then has its Key, CreateRevision, ModRevision
// and Version; its Value is the zero T and its Lease is 0 (etcd does not
// report leases for keys-only reads). Nothing is decoded, so no
// [*DecodeError] is yielded.
func WithKeysOnly() ListOption {
	return listOptionFunc(func(o *listOptions) { o.keysOnly = true })
}

// WithRevision makes [KV.List] read the prefix as it was at revision rev
// instead of now. A compacted rev yields a [*CompactedError].
func WithRevision(rev int64) ListOption {
	return listOptionFunc(func(o *listOptions) { o.rev = rev })
}
