// Package reliability holds etcdkit's tests under faults: linearizability of
// the KV API checked with porcupine while members of a three-member cluster
// stop, restart and lose leadership and clients are partitioned or see
// ambiguous commits; watch and mirror histories checked against the store's
// revision log; locks and elections checked for two holders at once, in the
// store and in time; queues checked for lost and doubled items;
// registrations checked for coming back; TLS and RBAC checked for keeping
// strangers out.
//
// The package has no code of its own. By default its tests run a short form
// (under a few minutes); run the long form with
//
//	go test -race ./reliability -long -timeout 30m -v
//
// TESTING.md at the repository root has what is tested and the figures of
// the last long run.
package reliability
