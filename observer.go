package etcdkit

import (
	"context"
	"time"
)

// Observer is told of every operation a [Client] runs and of the events
// that happen between operations: a watch resumed, a lease lost, a lock
// lost, a leader changed. Set it in [Config.Observer]; package etcdotel
// implements it with OpenTelemetry, and any other tracing or metrics
// system can implement it in a few lines.
//
// etcdkit calls an Observer from the goroutine that runs the operation, or
// from the background goroutine that noticed the event, so its methods
// must be safe for concurrent use and must return quickly: a slow Observer
// slows every operation. An Observer must not call the Client it observes.
//
// An [Operation] carries the key it works on so that an Observer can tell
// operations apart, but keys name users, tenants and hosts: an Observer
// should record them only when its user asks, and values are never given
// to it.
type Observer interface {
	// OperationStart is called before an operation sends its first
	// request. The ctx it returns is the one the operation runs with and
	// the one given to OperationEnd: a tracer starts its span here.
	OperationStart(ctx context.Context, op Operation) context.Context
	// OperationEnd is called once when the operation has returned, with
	// what it returned in op.Revision, op.Retries and op.Err.
	OperationEnd(ctx context.Context, op Operation)
	// Notice is called for what happens outside any one call, and for what
	// happens inside one that the caller cannot see (a conflict retried).
	Notice(ctx context.Context, n Notice)
}

// Operation describes one call of the library: one method of KV, Lease,
// Lock, Election, Queue, a discovery registration or an admin task. One
// call can send several requests (a lock's join and wait, an Update's
// retries); it is observed once, from the call to its return.
type Operation struct {
	// Name is what was done, in lower case with underscores: one of the
	// Op constants (such as [OpGet]) or, for packages built on etcdkit,
	// a name of their own ("register", "defragment").
	Name string
	// Prefix is the KV's prefix (or the lock's, queue's, election's name),
	// without the Client's namespace: what a database calls a collection.
	Prefix string
	// Key is the key within Prefix, "" when the operation has none (List,
	// Txn). Record it only when asked: keys can name people.
	Key string
	// Start is when the operation began.
	Start time.Time
	// Server is the address (host:port, or a unix socket path) of the
	// member that answered the last request, or of the first endpoint
	// when no request was answered.
	Server string

	// Revision is the store's revision the operation saw or made, 0 if it
	// failed before reaching etcd. Set for OperationEnd only.
	Revision int64
	// Retries counts the attempts after the first: the conflicts Update
	// and Atomically retried, a lock's (semaphore's, RWMutex's, campaign's)
	// join sent again on a new lease after its lease was found gone, a
	// semaphore's limit stored again after a store that did not commit, a
	// Dequeue's reads of the queue again after other consumers took what
	// it found, an Enqueue's append sent again after another writer took
	// its number. Set for OperationEnd.
	Retries int
	// Err is the error the operation returned, nil on success. Set for
	// OperationEnd only.
	Err error
}

// Names of the operations the root package reports in [Operation.Name].
// OpLock names [Client.Lock] and [Client.TryLock] and the holds of a
// [Semaphore] or [RWMutex]; OpCampaign names [Client.Campaign] and each
// campaign of [Client.RunAsLeader]; OpWatch and OpMirror end once the watch
// is set up or the mirror has its first listing, and OpFollow ([KV.Follow])
// once its first read is applied and its watch set up, not when they stop.
const (
	OpGet              = "get"
	OpList             = "list"
	OpPut              = "put"
	OpCreate           = "create"
	OpCompareAndSwap   = "compare_and_swap"
	OpUpdate           = "update"
	OpDelete           = "delete"
	OpCompareAndDelete = "compare_and_delete"
	OpTxn              = "txn"
	OpAtomically       = "atomically"
	OpPutMany          = "put_many"
	OpDeleteMany       = "delete_many"
	OpWatch            = "watch"
	OpMirror           = "mirror"
	OpFollow           = "follow"
	OpLeaseGrant       = "lease_grant"
	OpLeaseRevoke      = "lease_revoke"
	OpLock             = "lock"
	OpUnlock           = "unlock"
	OpCampaign         = "campaign"
	OpResign           = "resign"
	OpEnqueue          = "enqueue"
	OpDequeue          = "dequeue"
	OpAck              = "ack"
)

// NoticeKind says what a [Notice] reports.
type NoticeKind int

// The notices an [Observer] is told of. Each says which fields of [Notice] it
// sets; Prefix and Key are set whenever the event concerns one.
const (
	// NoticeWatchResumed: a watch (or a Mirror's, or Follow's) was cut and
	// resumed; Revision is the revision it resumed from, Err why it was cut.
	NoticeWatchResumed NoticeKind = iota + 1
	// NoticeCompactionResync: a watch's next revision was compacted, so a
	// Mirror or Follow read the whole prefix again; Revision is the
	// compacted revision.
	NoticeCompactionResync
	// NoticeConflict: Update or Atomically found the data changed under it
	// and is retrying; Value is the attempt number, from 1.
	NoticeConflict
	// NoticeLeaseKeepAlive: a lease was refreshed; Duration is the margin,
	// how long before the lease could have expired the refresh was sent.
	// Value is the lease's ID, as for the two notices that follow.
	NoticeLeaseKeepAlive
	// NoticeLeaseLost: a lease could not be refreshed in time ([ErrLeaseLost]).
	NoticeLeaseLost
	// NoticeLeaseExpired: the server said a lease is gone ([ErrLeaseExpired]).
	NoticeLeaseExpired
	// NoticeLockAcquired: a lock (or semaphore slot, or read or write hold)
	// was taken; Duration is how long the caller waited, Revision is its
	// fence.
	NoticeLockAcquired
	// NoticeLockLost: a held lock (or hold, or leadership) was lost before
	// it was released; Err says why. A loss is noticed by a lock that
	// watches for it: once [Lock.Lost] or [Lock.Err] was called, and always
	// under [Client.WithLock].
	NoticeLockLost
	// NoticeLeaderChanged: an observed or campaigned election has another
	// leader; Revision is the new leader's key's create revision (its
	// fence), 0 when no one leads, and Value is 0. When this client became
	// the leader Value is 1, and when it stopped being it (in
	// [Client.RunAsLeader]) Value is -1 and Revision the fence of the term
	// that ended.
	NoticeLeaderChanged
	// NoticeMirrorLag: how far a Mirror is behind the server ([Mirror.Lag]);
	// Value is the number of revisions, Revision the Mirror's own. It is
	// sent after the Mirror applied a batch or heard of the server's
	// progress, when the lag differs from the one last sent.
	NoticeMirrorLag
	// NoticeDecodeError: a stored value did not decode; Err is the
	// [*DecodeError]. Reads return it; a Mirror, Follow or Queue skips the
	// value and goes on.
	NoticeDecodeError
	// NoticeQueueDepth: how many items a queue held when [Queue.Len]
	// counted them; Value is the count, Revision the revision counted at.
	NoticeQueueDepth
)

var noticeNames = [...]string{
	NoticeWatchResumed:     "watch_resumed",
	NoticeCompactionResync: "compaction_resync",
	NoticeConflict:         "conflict",
	NoticeLeaseKeepAlive:   "lease_keepalive",
	NoticeLeaseLost:        "lease_lost",
	NoticeLeaseExpired:     "lease_expired",
	NoticeLockAcquired:     "lock_acquired",
	NoticeLockLost:         "lock_lost",
	NoticeLeaderChanged:    "leader_changed",
	NoticeMirrorLag:        "mirror_lag",
	NoticeDecodeError:      "decode_error",
	NoticeQueueDepth:       "queue_depth",
}

// String returns the notice's name in lower case with underscores, such as
// "watch_resumed", or "unknown" for a kind not listed here.
func (k NoticeKind) String() string {
	if k > 0 && int(k) < len(noticeNames) {
		return noticeNames[k]
	}
	return "unknown"
}

// Notice is something an [Observer] is told of outside an operation's start
// and end. Its Kind says which fields are set.
type Notice struct {
	Kind NoticeKind
	// Prefix and Key say what it concerns, as in [Operation]: the KV's,
	// lock's, election's or queue's prefix, and the key within it.
	Prefix, Key string
	Revision    int64
	Value       int64
	Duration    time.Duration
	Err         error
}
