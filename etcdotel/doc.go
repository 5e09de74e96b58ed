// Package etcdotel records what an [etcdkit.Client] does as OpenTelemetry
// spans and metrics. It is the only etcdkit package that imports
// OpenTelemetry: a program that does not import it pays nothing for it.
//
// Turn it on with one field of [etcdkit.Config]:
//
//	cfg.Observer = etcdotel.Observer() // the global TracerProvider and MeterProvider
//	cli, err := etcdkit.New(ctx, cfg)
//
// Every operation (a KV's Get, Put, Update, a Txn, a Lock, a Campaign, a
// queue's Enqueue…) becomes a span of kind CLIENT, a child of the span in
// the caller's ctx, named "{db.operation.name} {db.collection.name}" (such
// as "get users/") and carrying OpenTelemetry's database attributes:
//
//	db.system.name       etcd
//	db.operation.name    get, put, update, lock, … (the etcdkit.Op constants)
//	db.collection.name   the KV's prefix (or the lock's, election's, queue's name)
//	server.address       the member that answered
//	server.port          its port (absent for a unix socket)
//	error.type           on failure: unavailable, deadline_exceeded, lease_lost, … (see below)
//	etcdkit.outcome      an answer that is no failure: not_found, exists, conflict, locked (see below)
//	etcd.revision        the store's revision the operation saw or made
//	etcdkit.retries      the attempts after the first (conflicts retried by Update, …: see etcdkit.Operation)
//
// A failed operation's span has the status Error. Some errors are the
// answer the call exists to find out, as a miss is for a cache: a Get of a
// missing key ([etcdkit.ErrNotFound]), a Create of a key already there
// ([etcdkit.ErrExists]), a CompareAndSwap or CompareAndDelete whose
// compare failed ([etcdkit.ErrConflict]), a TryDequeue of an empty queue
// (not_found), a TryLock, TryAcquire or TryRLock that found the
// hold taken ([etcdkit.ErrLocked]). Those spans keep the status Unset and
// have no error.type: their answer is etcdkit.outcome, named as error.type
// would be. The same errors from other operations (a Follow of a missing
// key) are failures.
//
// Each operation's duration goes to the histogram
// db.client.operation.duration (seconds, with the buckets the conventions
// advise) with the same attributes but the revision and retries. What
// happens between operations becomes metrics too (see [Observer] for the
// list), and, when it happens inside an operation whose span is recording,
// an event on that span: a conflict retried by Update is an event
// "etcdkit.conflict" on the update's span.
//
// # What is never recorded
//
// Values are never recorded, and keys only with [WithKeys] (keys name
// users, tenants and hosts), and then only on spans: metrics never carry a
// key, so that their cardinality stays that of the prefixes. etcdkit's
// error messages quote keys, and a codec's can quote part of a value, so
// no error message is ever recorded: a failure is named by error.type, the
// name of the etcdkit sentinel it matches ("not_found" for
// [etcdkit.ErrNotFound], "decode_error" for an [*etcdkit.DecodeError]) or
// else the Go type of the innermost error, and a failed span's status
// description is that same name.
//
// # Propagation to etcd
//
// The trace context is not sent to etcd unless asked: add
// [UnaryClientInterceptor] to [etcdkit.Config.UnaryInterceptors] and each
// request carries the caller's trace context in its gRPC metadata, for an
// etcd server run with distributed tracing on.
package etcdotel
