package etcdkit

import (
	"context"
	"fmt"
	"strings"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// KV is a typed view of the keys under one prefix: a key k lives at prefix+k
// in etcd, and its value is encoded with the KV's codec. It is safe for
// concurrent use and cheap to make; make one per prefix and value type.
type KV[T any] struct {
	c      *Client
	prefix string
	codec  Codec[T]
}

// Entry is a key with its decoded value and etcd's metadata for it.
type Entry[T any] struct {
	Key            string // relative to the KV's prefix
	Value          T
	CreateRevision int64 // revision of the key's creation
	ModRevision    int64 // revision of the key's last change
	Version        int64 // number of changes since creation, from 1
	Lease          int64 // the lease attached to the key; 0 if none
}

// NewKV returns a KV over the keys under prefix, encoded with codec. No
// separator is added: with prefix "users/", key "alice" is "users/alice".
// A nil codec is reported by every call with [ErrInvalidArgument].
func NewKV[T any](c *Client, prefix string, codec Codec[T]) *KV[T] {
	return &KV[T]{c: c, prefix: prefix, codec: codec}
}

// Prefix returns the prefix the KV's keys live under.
func (kv *KV[T]) Prefix() string { return kv.prefix }

// Client returns the client the KV uses.
func (kv *KV[T]) Client() *Client { return kv.c }

// Get returns the entry at key. It fails with [ErrNotFound] when the key does
// not exist and with a [*DecodeError] when its value does not decode.
func (kv *KV[T]) Get(ctx context.Context, key string) (Entry[T], error) {
	if err := kv.check("get", key); err != nil {
		return Entry[T]{}, err
	}
	ctx, cancel := kv.c.bound(ctx)
	resp, err := kv.c.raw.KV.Get(ctx, kv.prefix+key)
	cancel()
	if err != nil {
		return Entry[T]{}, opErr("get", kv.prefix+key, err)
	}
	if len(resp.Kvs) == 0 {
		return Entry[T]{}, &opError{op: "get", key: kv.prefix + key, err: ErrNotFound}
	}
	return kv.entry(resp.Kvs[0])
}

// Put stores v at key and returns the revision of the write.
func (kv *KV[T]) Put(ctx context.Context, key string, v T, opts ...PutOption) (int64, error) {
	if err := kv.check("put", key); err != nil {
		return 0, err
	}
	val, err := kv.encode("put", key, v)
	if err != nil {
		return 0, err
	}
	ctx, cancel := kv.c.bound(ctx)
	resp, err := kv.c.raw.KV.Put(ctx, kv.prefix+key, val, putOpOptions(opts)...)
	cancel()
	if err != nil {
		return 0, opErr("put", kv.prefix+key, err)
	}
	return resp.Header.Revision, nil
}

// check validates what every call needs before anything is sent.
func (kv *KV[T]) check(op, key string) error {
	if kv == nil || kv.c == nil {
		return &opError{op: op, key: key, err: fmt.Errorf("%w: nil KV or client", ErrInvalidArgument)}
	}
	if kv.codec == nil {
		return &opError{op: op, key: kv.prefix + key, err: fmt.Errorf("%w: nil codec", ErrInvalidArgument)}
	}
	if kv.prefix+key == "" {
		return &opError{op: op, err: ErrEmptyKey}
	}
	return kv.c.checkOpen(op, kv.prefix+key)
}

func (kv *KV[T]) encode(op, key string, v T) (string, error) {
	b, err := kv.codec.Encode(v)
	if err != nil {
		return "", &opError{op: op, key: kv.prefix + key, err: fmt.Errorf("%w: encode: %w", ErrInvalidArgument, err)}
	}
	return string(b), nil
}

// entry decodes a key-value from etcd into an Entry.
func (kv *KV[T]) entry(p *mvccpb.KeyValue) (Entry[T], error) {
	key := strings.TrimPrefix(string(p.Key), kv.prefix)
	v, err := kv.codec.Decode(p.Value)
	if err != nil {
		return Entry[T]{}, &DecodeError{Key: key, Err: err}
	}
	return Entry[T]{
		Key:            key,
		Value:          v,
		CreateRevision: p.CreateRevision,
		ModRevision:    p.ModRevision,
		Version:        p.Version,
		Lease:          p.Lease,
	}, nil
}

// PutOption changes how a value is written.
type PutOption interface {
	applyPut(*putOptions)
}

type putOptions struct {
	lease clientv3.LeaseID
}

type putOptionFunc func(*putOptions)

func (f putOptionFunc) applyPut(o *putOptions) { f(o) }

func putOpOptions(opts []PutOption) []clientv3.OpOption {
	if len(opts) == 0 {
		return nil
	}
	var o putOptions
	for _, opt := range opts {
		if opt != nil {
			opt.applyPut(&o)
		}
	}
	if o.lease != 0 {
		return []clientv3.OpOption{clientv3.WithLease(o.lease)}
	}
	return nil
}
