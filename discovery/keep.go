package discovery

import (
	"bytes"
	"context"
	"errors"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/internal/retry"
)

// hold keeps the instance at its key while lease lives: it follows the key
// from after revision rev, where the instance was put, and puts it back
// when it must (see mustPutBack). It returns when the lease is gone, ctx
// ends or the client closes.
func (r *Registration) hold(ctx context.Context, lease *etcdkit.Lease, rev int64) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := afterDone(lease.Done(), cancel)
	defer stop()
	pause := retry.Backoff{Start: minRetryPause, Max: maxRetryPause}
	for {
		seen, err := r.follow(ctx, lease, rev)
		if ctx.Err() != nil || errors.Is(err, etcdkit.ErrClosed) {
			return
		}
		if seen {
			// The watch worked: only a failure since calls for a pause.
			pause.Reset()
		}
		// The watch could not go on (its revisions were compacted during
		// a restart, say), or a put back failed and may still have been
		// applied: pause, then read the key to learn where it stands.
		for {
			if !pause.Sleep(ctx) {
				return
			}
			if rev, err = r.sync(ctx, lease); err == nil {
				break
			}
			if ctx.Err() != nil || errors.Is(err, etcdkit.ErrClosed) {
				return
			}
		}
	}
}

// follow watches the key from after revision rev and puts the instance
// back after each change that calls for it. It returns when the watch
// ends, whether it saw a change, and why it ended: nil when ctx ended, else
// the watch's error (a compaction, say) or that of a failed put back.
//
// It also puts a new status (see recompute) when woken.
func (r *Registration) follow(ctx context.Context, lease *etcdkit.Lease, rev int64) (seen bool, err error) {
	w := r.kv.Watch(ctx, etcdkit.WatchKey(r.id), etcdkit.FromRevision(rev+1))
	defer w.Close()
	for {
		select {
		case e, ok := <-w.Events():
			if !ok {
				return seen, w.Err()
			}
			seen = true
			deleted := e.Type == etcdkit.EventDelete
			if !r.mustPutBack(lease.ID(), !deleted, e.Entry.Value, e.Entry.Lease) {
				continue
			}
			if err := r.putBack(ctx, lease); err != nil {
				return seen, err
			}
		case <-r.wake:
			if err := r.putIfHeld(ctx, lease); err != nil {
				return seen, err
			}
		}
	}
}

// putIfHeld puts the current value under lease if the key is on lease: a
// missing key is put back when its delete is seen, and a key another lease
// holds is another registration's, not to be written over.
func (r *Registration) putIfHeld(ctx context.Context, lease *etcdkit.Lease) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	val, version := r.current()
	resp, err := r.c.Raw().Txn(ctx).
		If(clientv3.Compare(clientv3.LeaseValue(r.key), "=", clientv3.LeaseID(lease.ID()))).
		Then(clientv3.OpPut(r.key, string(val), clientv3.WithLease(clientv3.LeaseID(lease.ID())))).
		Commit()
	if err == nil && resp.Succeeded {
		r.stored(version)
	}
	return err
}

// sync reads the key, puts the instance back if it must, and returns the
// revision of the read, after which the key is to be followed.
func (r *Registration) sync(ctx context.Context, lease *etcdkit.Lease) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	_, version := r.current() // before the read: what it finds is at least as new
	resp, err := r.c.Raw().Get(ctx, r.key)
	if err != nil {
		return 0, err
	}
	exists, val, keyLease := false, []byte(nil), int64(0)
	if len(resp.Kvs) > 0 {
		exists, val, keyLease = true, resp.Kvs[0].Value, resp.Kvs[0].Lease
	}
	if r.mustPutBack(lease.ID(), exists, val, keyLease) {
		if err := r.putBack(ctx, lease); err != nil {
			return 0, err
		}
	} else if keyLease == lease.ID() {
		r.stored(version)
	}
	return resp.Header.Revision, nil
}

// mustPutBack reports whether the instance must be put back, when the key
// exists or not, with val on keyLease: when it is absent, or holds
// anything but the instance on lease, except a key another lease holds.
// That key is another registration's, which won by registering last; the
// instance is put back when that key is deleted or its lease ends, which
// etcd shows as a delete.
func (r *Registration) mustPutBack(lease int64, exists bool, val []byte, keyLease int64) bool {
	switch {
	case !exists:
		return true
	case keyLease != 0 && keyLease != lease:
		return false
	default:
		cur, _ := r.current()
		return keyLease != lease || !bytes.Equal(val, cur)
	}
}

// putBack puts the instance at its key under lease, within attemptTimeout.
func (r *Registration) putBack(ctx context.Context, lease *etcdkit.Lease) error {
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	_, err := r.put(ctx, lease)
	return err
}
