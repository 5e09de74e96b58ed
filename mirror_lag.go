package etcdkit

import "sync/atomic"

// mirrorLag is what the mirror knows of the server's progress.
type mirrorLag struct {
	server atomic.Int64  // the newest revision the server reported on the watch
	ready  chan struct{} // closed once the first listing is published
	told   atomic.Int64  // the lag last reported as a NoticeMirrorLag
}

// synced records the first listing, made at rev.
func (l *mirrorLag) synced(rev int64) {
	l.server.Store(rev)
	l.ready = make(chan struct{})
	close(l.ready)
}

// saw records that the server had reached rev.
func (l *mirrorLag) saw(rev int64) {
	for {
		cur := l.server.Load()
		if rev <= cur || l.server.CompareAndSwap(cur, rev) {
			return
		}
	}
}

// serverRevision is told the revision of every response on the mirror's
// watch.
func (m *Mirror[T]) serverRevision(rev int64) { m.lag.saw(rev) }

// Synced returns a channel closed once the mirror's first listing is
// published: from then on its reads answer with the whole prefix as of a
// revision. [KV.Mirror] returns only then, so the channel is closed for
// every Mirror it returned; it is there for code that is handed a Mirror
// and waits for it, as an informer's HasSynced is waited for.
func (m *Mirror[T]) Synced() <-chan struct{} { return m.lag.ready }

// Lag returns how many revisions the server has reached that the mirror
// has not yet shown it applied: the newest revision the server reported on
// the mirror's watch, less [Mirror.Revision], and 0 when the mirror is
// current with it. The server reports its revision when the watch is
// (re)created, with every batch of changes and with every progress
// notification, so Lag is as fresh as the last of those: it grows when the
// server is seen ahead, and falls back to 0 once the mirror applies
// everything up to there, or a progress notification (which
// [Mirror.WaitForRevision] asks for) says nothing under the prefix
// changed meanwhile. Changes elsewhere in the keyspace count as lag until
// then, since the mirror cannot tell them from its own without asking.
func (m *Mirror[T]) Lag() int64 {
	rev := m.Revision()
	return max(0, m.lag.server.Load()-rev)
}

// settled tells the Observer and the debug log of the mirror's lag once a
// response of its watch was handled, when the lag differs from what was
// last told: a mirror that keeps up is reported once, not on every batch.
func (m *Mirror[T]) settled() {
	c := m.kv.c
	if !c.observed(m.task.ctx) {
		return
	}
	lag := m.Lag()
	if m.lag.told.Swap(lag) == lag {
		return
	}
	c.notice(m.task.ctx, Notice{Kind: NoticeMirrorLag, Prefix: m.kv.prefix, Revision: m.Revision(), Value: lag})
}
