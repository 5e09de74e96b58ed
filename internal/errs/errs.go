// Package errs is what etcdkit's packages share about errors: the shape of
// their messages, and the mapping of etcd's errors to the sentinels of
// package etcdkit.
//
// The sentinels, and the table that maps etcd's errors to them, stay in
// package etcdkit, where users read them. That package imports this one, so
// this one cannot import it: etcdkit hands its mapping ([Map], [Own]) over in
// an init function instead, which runs before any package that imports etcdkit
// (discovery, admin) can call [Map]. Exporting the mapping from etcdkit
// would do the same but add a function to its API that users never need:
// every error etcdkit returns is mapped already.
package errs

import (
	"strconv"
	"strings"
)

// Op is an error that says what was attempted, by which package and on which
// key, and unwraps to its cause.
type Op struct {
	Pkg string // the package below etcdkit, such as "admin"; empty for etcdkit itself
	Op  string // what was attempted, such as "register"
	Key string // the key or name it was attempted on; may be empty
	Err error  // the cause
}

func (e *Op) Error() string { return Message(e.Pkg, e.Op, e.Key, e.Err) }

// Unwrap returns the cause.
func (e *Op) Unwrap() error { return e.Err }

// Message is the text of an error of package pkg (empty for etcdkit itself)
// that says what was attempted, on which key (if any) and why:
//
//	etcdkit: pkg: op "key": cause
//
// The cause is usually an etcdkit error of its own, so its "etcdkit: " and
// "pkg: " prefixes are dropped rather than said twice.
func Message(pkg, op, key string, err error) string {
	var b strings.Builder
	b.WriteString("etcdkit: ")
	cause := strings.TrimPrefix(err.Error(), "etcdkit: ")
	if pkg != "" {
		b.WriteString(pkg)
		b.WriteString(": ")
		cause = strings.TrimPrefix(cause, pkg+": ")
	}
	b.WriteString(op)
	if key != "" {
		b.WriteByte(' ')
		b.WriteString(strconv.Quote(key))
	}
	b.WriteString(": ")
	b.WriteString(cause)
	return b.String()
}

// Map maps an error from clientv3, gRPC or etcd's server to the etcdkit
// sentinel it means, keeping the original in the chain; etcdkit's own
// errors, context errors and errors it does not know come back unchanged.
// Package etcdkit sets it when it is initialised (see the package doc).
var Map func(error) error

// Own reports whether err matches one of etcdkit's sentinels. Package
// etcdkit sets it with [Map].
var Own func(error) bool
