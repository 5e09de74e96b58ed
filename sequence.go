package etcdkit

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// seqDigits is the width of a sequential key's number, so that keys sort by
// number: 20 digits hold any uint64.
const seqDigits = 20

// maxAppendAttempts bounds how often Append retries when other writers keep
// appending between its read and its write.
const maxAppendAttempts = 64

// SequenceKey returns the key where [KV.Append] keeps the last number it
// gave out under prefix. It lies outside the prefix, so that listing the
// prefix shows only appended values; with etcd's RBAC, a user who appends
// needs write access to it too.
func SequenceKey(prefix string) string { return "__etcdkit/seq/" + prefix }

// Append stores v under a new key that sorts after every key Append ever
// made under the prefix, deleted ones included, so that [KV.List] returns
// appended values in arrival order (the order etcd committed them, the same
// for every reader) and a reader can resume after the last key it saw. It
// returns the new key (relative to the prefix: a 20-digit number) and the
// revision of the write. The last number given out is kept at
// [SequenceKey](prefix).
//
// Append never overwrites a key: a number already in use under the prefix
// (a key written by other means) is skipped. Concurrent appends retry on
// contention; after many failed attempts Append fails with [ErrConflict].
func (kv *KV[T]) Append(ctx context.Context, v T) (string, int64, error) {
	if err := kv.check("append", "-"); err != nil {
		return "", 0, err
	}
	val, err := kv.encode("append", "-", v)
	if err != nil {
		return "", 0, err
	}
	return appendSeq(ctx, kv.c, "append", SequenceKey(kv.prefix), kv.prefix, val)
}

// appendSeq writes val at prefix+<n+1>, where n is the number kept at
// counter, and moves the counter to n+1 in the same transaction, if nobody
// moved it meanwhile and nothing is stored at that key yet: an existing key
// (written by hand, or left when the counter was reset) is never
// overwritten, and the next attempt takes the number after it. Each call
// costs one read and one write whatever the number of keys under prefix.
func appendSeq(ctx context.Context, c *Client, op, counter, prefix, val string) (string, int64, error) {
	var taken uint64 // the highest number found in use although the counter was below it
	for attempt := range maxAppendAttempts {
		if attempt > 0 {
			retriedIn(ctx) // Enqueue's, when it is observed
		}
		if err := ctx.Err(); err != nil {
			return "", 0, &opError{op: op, key: prefix, err: err}
		}
		last, modRev, err := readSeq(ctx, c, op, counter)
		if err != nil {
			return "", 0, err
		}
		n := max(last, taken) + 1
		name, rev, counterMoved, err := appendAt(ctx, c, op, counter, modRev, prefix, formatSeq(n), val)
		if err != nil || rev != 0 {
			return name, rev, err
		}
		if !counterMoved {
			taken = n
		}
	}
	return "", 0, &opError{op: op, key: prefix, err: fmt.Errorf("%w: %d attempts lost to other writers", ErrConflict, maxAppendAttempts)}
}

// appendAt writes val at prefix+name and name at counter, if the counter is
// still at modRev and prefix+name does not exist. It returns the revision of
// the write, or 0 and whether the counter had moved.
func appendAt(ctx context.Context, c *Client, op, counter string, modRev int64, prefix, name, val string) (string, int64, bool, error) {
	bctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.raw.KV.Txn(bctx).
		If(clientv3.Compare(clientv3.ModRevision(counter), "=", modRev),
			clientv3.Compare(clientv3.CreateRevision(prefix+name), "=", 0)).
		Then(clientv3.OpPut(counter, name), clientv3.OpPut(prefix+name, val)).
		Else(clientv3.OpGet(counter, clientv3.WithKeysOnly())).
		Commit()
	if err != nil {
		return "", 0, false, opErr(op, prefix+name, err)
	}
	if resp.Succeeded {
		return name, resp.Header.Revision, false, nil
	}
	kvs := resp.Responses[0].GetResponseRange().Kvs
	moved := (len(kvs) > 0 && kvs[0].ModRevision != modRev) || (len(kvs) == 0 && modRev != 0)
	return "", 0, moved, nil
}

// readSeq returns the last number given out under a counter key (0 if none)
// and the counter's mod revision (0 if it does not exist).
func readSeq(ctx context.Context, c *Client, op, counter string) (uint64, int64, error) {
	bctx, cancel := c.bound(ctx)
	resp, err := c.raw.KV.Get(bctx, counter)
	cancel()
	if err != nil {
		return 0, 0, opErr(op, counter, err)
	}
	if len(resp.Kvs) == 0 {
		return 0, 0, nil
	}
	n, err := parseSeq(string(resp.Kvs[0].Value))
	if err != nil {
		return 0, 0, &opError{op: op, key: counter, err: fmt.Errorf("%w: sequence counter holds %q, not a sequence number", ErrInvalidArgument, resp.Kvs[0].Value)}
	}
	return n, resp.Kvs[0].ModRevision, nil
}

func formatSeq(n uint64) string {
	s := strconv.FormatUint(n, 10)
	return strings.Repeat("0", seqDigits-len(s)) + s
}

func parseSeq(s string) (uint64, error) {
	if len(s) != seqDigits {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseUint(s, 10, 64)
}
