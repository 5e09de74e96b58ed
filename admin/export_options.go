package admin

// ImportOption changes what [Import] does.
type ImportOption interface{ applyImport(*importOptions) }

type importOptions struct {
	leases bool
	empty  bool
	prefix string
}

type importFunc func(*importOptions)

func (f importFunc) applyImport(o *importOptions) { f(o) }

// KeepLeases makes [Import] give each key with a "lease_ttl" a lease of
// that many seconds, instead of dropping leases.
func KeepLeases() ImportOption {
	return importFunc(func(o *importOptions) { o.leases = true })
}

// IntoEmpty makes [Import] write only if no key under prefix exists, and
// only keys under prefix: a record with another key is
// etcdkit.ErrInvalidArgument, a key already under prefix etcdkit.ErrExists,
// both with nothing written. An empty prefix means the whole key space (of
// the client's namespace).
func IntoEmpty(prefix string) ImportOption {
	return importFunc(func(o *importOptions) { o.empty, o.prefix = true, prefix })
}
