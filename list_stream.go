package etcdkit

import (
	"context"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rangeRead is a listing of the keys in [start, end) at one revision, as
// [KV.List] and a Mirror's start-up read it.
//
// Its first request is a limited Range, which fixes the revision, counts
// the range and, for a small range, is the whole listing. The rest is read
// with one RangeStream at that revision (etcd 3.7 and later), which sends
// the range in chunks it sizes itself and never counts the keys left, as
// every limited Range does: a listing read in pages costs the square of its
// keys, a streamed one grows with them. Where the server has no
// RangeStream, or the caller fixed the page size, the rest is read in
// pages too.
type rangeRead struct {
	start, end string // what is left to read: start moves past each entry read
	rev        int64  // the snapshot's revision; 0 until the first page fixes it
	count      int64  // the keys in the range, as the first page counted them
	keysOnly   bool
	page       int64 // the next page's size
	fixed      bool  // the page size is the caller's: read pages only
}

// readRange reads r at one revision and calls fn with its entries in key
// order, a page or a chunk at a time, until the range ends or fn returns
// false. fn must not keep the slice. The error is the read's, unmapped.
//
// A stream that breaks, falls silent for the request timeout, or is not
// implemented, is followed by a page from the key after the last one fn
// was given, at the same revision: no entry is given twice or left out,
// and the page's error (a compaction, a lost server) is the listing's.
func (c *Client) readRange(ctx context.Context, r *rangeRead, fn func([]*mvccpb.KeyValue) bool) error {
	resp, err := c.readPage(ctx, r)
	if err != nil {
		return err
	}
	r.count = resp.Count
	if r.rev == 0 {
		r.rev = resp.Header.Revision
	}
	for {
		if !fn(resp.Kvs) || !resp.More || len(resp.Kvs) == 0 {
			return nil
		}
		r.start = keyAfter(resp.Kvs[len(resp.Kvs)-1].Key)
		if !r.fixed {
			r.page = nextPageSize(resp.Kvs)
			if !c.noRangeStream.Load() {
				if done, err := c.streamRange(ctx, r, fn); done || err != nil {
					return err
				}
			}
		}
		if resp, err = c.readPage(ctx, r); err != nil {
			return err
		}
	}
}

// keyAfter returns the smallest key after key.
func keyAfter(key []byte) string {
	return string(key) + "\x00"
}

// readPage reads r's next page.
func (c *Client) readPage(ctx context.Context, r *rangeRead) (*clientv3.GetResponse, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	if r.keysOnly {
		return c.raw.KV.Get(ctx, r.start, clientv3.WithRange(r.end), clientv3.WithLimit(r.page),
			clientv3.WithRev(r.rev), clientv3.WithKeysOnly())
	}
	return c.raw.KV.Get(ctx, r.start, clientv3.WithRange(r.end), clientv3.WithLimit(r.page), clientv3.WithRev(r.rev))
}

// streamRange reads the rest of r with one RangeStream at r.rev, calling
// fn with each chunk as it comes. It returns done when the range was read
// to its end or fn returned false, and an error only when ctx ended.
// Otherwise the stream broke, fell silent, or is not implemented (which
// the client remembers); r.start is then the key after the last one fn was
// given, for the caller to read on from.
//
// Every way out cancels the stream and drains its channel: clientv3's
// receiving goroutine blocks on the channel until someone reads it.
func (c *Client) streamRange(ctx context.Context, r *rangeRead, fn func([]*mvccpb.KeyValue) bool) (done bool, err error) {
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The stream is bounded by the client's life, as each page is.
	defer context.AfterFunc(c.ctx, cancel)()
	opts := []clientv3.OpOption{clientv3.WithRange(r.end), clientv3.WithRev(r.rev)}
	if r.keysOnly {
		opts = append(opts, clientv3.WithKeysOnly())
	}
	ch, err := c.raw.KV.GetStream(sctx, r.start, opts...)
	if err != nil {
		return c.streamBroke(ctx, err)
	}
	defer func() {
		cancel()
		for range ch {
		}
	}()
	idle := time.NewTimer(c.bounds.Timeout())
	defer idle.Stop()
	for {
		select {
		case resp, ok := <-ch:
			if !ok {
				return false, nil // ended without its last chunk
			}
			if err := resp.Err(); err != nil {
				return c.streamBroke(ctx, err)
			}
			if n := len(resp.Kvs); n > 0 {
				if !fn(resp.Kvs) {
					return true, nil
				}
				r.start = keyAfter(resp.Kvs[n-1].Key)
			}
			if resp.Header != nil { // only the last chunk has one
				return !resp.More, nil
			}
			idle.Reset(c.bounds.Timeout())
		case <-idle.C:
			return false, nil
		}
	}
}

// streamBroke says what a failed stream means for the listing: ctx's end
// ends it; anything else is left to the next page, which retries what can
// be retried and fails as a paged listing would.
func (c *Client) streamBroke(ctx context.Context, err error) (done bool, _ error) {
	if ctx.Err() != nil {
		return false, ctx.Err()
	}
	if status.Code(err) == codes.Unimplemented {
		c.noRangeStream.Store(true)
	}
	return false, nil
}
