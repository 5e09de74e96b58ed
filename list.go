package etcdkit

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// List returns the entries under the prefix in key order, all read at one
// revision, so the listing is one consistent snapshot even while the
// prefix changes. Its first request reads [DefaultPageSize] entries and
// fixes the revision; the rest comes in one RangeStream at that revision
// (etcd 3.7 and later), which the server sends in chunks it sizes itself
// and List yields as they arrive, holding a chunk or two at a time. Against a server without RangeStream it
// reads the rest in pages of about 4 MiB (at most 10,000 entries) instead,
// and the [Client] remembers that and reads pages from then on. With
// [WithPageSize] it reads pages of that size only. A stream that breaks is
// followed by a page from the key after the last entry yielded, at the
// same revision, so no entry is yielded twice or left out. The options
// narrow it: [WithRange], [WithKeysOnly], [WithRevision].
//
// A value that does not decode yields a [*DecodeError] for its key and the
// listing goes on; any other error ends it. When the snapshot's revision is
// compacted before the last entry is read, it yields a [*CompactedError]
// (matching [ErrCompacted]). Stopping the loop early stops the reading and
// leaves nothing running.
func (kv *KV[T]) List(ctx context.Context, opts ...ListOption) iter.Seq2[Entry[T], error] {
	o := listOptions{pageSize: DefaultPageSize}
	for _, opt := range opts {
		if opt != nil {
			opt.applyList(&o)
		}
	}
	return func(yield func(Entry[T], error) bool) {
		if err := kv.checkList(ctx, "list", o); err != nil {
			yield(Entry[T]{}, err)
			return
		}
		ctx, ob := kv.c.opStart(ctx, OpList, kv.prefix, "")
		rev, err := kv.list(ctx, o, yield)
		ob.end(rev, err)
	}
}

// list yields the entries, and returns the snapshot's revision and the error
// that ended the listing, if one did.
func (kv *KV[T]) list(ctx context.Context, o listOptions, yield func(Entry[T], error) bool) (int64, error) {
	start, end := kv.keyRange(o)
	r := &rangeRead{start: start, end: end, rev: o.rev, keysOnly: o.keysOnly, page: o.pageSize, fixed: o.fixed}
	err := kv.c.readRange(ctx, r, func(kvs []*mvccpb.KeyValue) bool {
		for _, p := range kvs {
			if !yield(kv.listEntry(p, o.keysOnly)) {
				return false
			}
		}
		return true
	})
	if err != nil {
		err = kv.listErr(ctx, err, r.rev)
		yield(Entry[T]{}, err)
	}
	return r.rev, err
}

// Unless WithPageSize fixes it, List sizes its pages after the first one by
// bytes rather than by count: each round trip (and etcd's count of the rest
// of the range, which it makes for every page) costs about the same whatever
// the page holds, so small entries come in large pages, while a page of
// large values stays near listPageBytes in memory.
const (
	listPageBytes   = 4 << 20 // what a page should weigh
	maxListPageSize = 10000   // the most entries in one page
	entryOverhead   = 48      // revisions, version, lease and framing of an entry
)

// nextPageSize is the page size that makes a page of entries like these
// weigh about listPageBytes.
func nextPageSize(kvs []*mvccpb.KeyValue) int64 {
	total := 0
	for _, p := range kvs {
		total += len(p.Key) + len(p.Value) + entryOverhead
	}
	n := int64(listPageBytes / max(total/len(kvs), 1))
	return min(max(n, DefaultPageSize), maxListPageSize)
}

func (kv *KV[T]) listEntry(p *mvccpb.KeyValue, keysOnly bool) (Entry[T], error) {
	if !keysOnly {
		return kv.entry(p)
	}
	return Entry[T]{
		Key:            kv.entryKey(p.Key),
		CreateRevision: p.CreateRevision,
		ModRevision:    p.ModRevision,
		Version:        p.Version,
		Lease:          p.Lease,
	}, nil
}

// listErr turns a failed page read into List's error; a compacted snapshot
// becomes a CompactedError naming the compaction point.
func (kv *KV[T]) listErr(ctx context.Context, err error, rev int64) error {
	err = mapError(err)
	if !errors.Is(err, ErrCompacted) || rev == 0 {
		return &opError{op: "list", key: kv.prefix, err: err}
	}
	return &opError{op: "list", key: kv.prefix, err: &CompactedError{Key: kv.prefix, Revision: kv.c.compactRevision(ctx, kv.prefix, rev)}}
}

// keyRange returns the etcd range [start, end) List and Count read.
func (kv *KV[T]) keyRange(o listOptions) (start, end string) {
	start = kv.prefix + o.from
	if o.to != "" {
		end = kv.prefix + o.to
	} else {
		end = prefixRangeEnd(kv.prefix)
	}
	if start == "" {
		start = "\x00" // etcd rejects an empty key; no key sorts before this one
	}
	return start, end
}

// prefixRangeEnd returns the end of the range of keys that start with prefix;
// "\x00" (every key from the start key on) when prefix is "" or all 0xff.
func prefixRangeEnd(prefix string) string {
	if prefix == "" {
		return "\x00"
	}
	return clientv3.GetPrefixRangeEnd(prefix)
}

// Count returns the number of keys under the prefix.
func (kv *KV[T]) Count(ctx context.Context) (int64, error) {
	if err := kv.checkList(ctx, "count", listOptions{pageSize: 1}); err != nil {
		return 0, err
	}
	start, end := kv.keyRange(listOptions{})
	ctx, cancel := kv.c.bound(ctx)
	resp, err := kv.c.raw.KV.Get(ctx, start, clientv3.WithRange(end), clientv3.WithCountOnly())
	cancel()
	if err != nil {
		return 0, opErr("count", kv.prefix, err)
	}
	return resp.Count, nil
}

// checkList validates a List or Count, which may cover the whole keyspace
// and so accept an empty prefix.
func (kv *KV[T]) checkList(ctx context.Context, op string, o listOptions) error {
	if kv == nil || kv.c == nil {
		return &opError{op: op, err: fmt.Errorf("%w: nil KV or client", ErrInvalidArgument)}
	}
	if kv.codec == nil {
		return &opError{op: op, key: kv.prefix, err: fmt.Errorf("%w: nil codec", ErrInvalidArgument)}
	}
	if err := o.validate(); err != nil {
		return &opError{op: op, key: kv.prefix, err: err}
	}
	if err := kv.c.checkOpen(op, kv.prefix); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return &opError{op: op, key: kv.prefix, err: err}
	}
	return nil
}
