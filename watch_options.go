package etcdkit

// WatchOption changes what [KV.Watch] watches and from where.
type WatchOption interface {
	applyWatch(*watchOptions)
}

type watchOptions struct {
	key    string
	hasKey bool
	rev    int64
	prevKV bool
}

type watchOptionFunc func(*watchOptions)

func (f watchOptionFunc) applyWatch(o *watchOptions) { f(o) }

// WatchKey watches the one key key of the KV instead of its whole prefix.
func WatchKey(key string) WatchOption {
	return watchOptionFunc(func(o *watchOptions) { o.key, o.hasKey = key, true })
}

// FromRevision starts the watch at revision rev, replaying every change
// since then, instead of at the current revision. A rev that was compacted
// ends the watch with a [*CompactedError].
func FromRevision(rev int64) WatchOption {
	return watchOptionFunc(func(o *watchOptions) { o.rev = rev })
}

// WithPrevValue fills [Event.Prev] with the key's value before the change.
func WithPrevValue() WatchOption {
	return watchOptionFunc(func(o *watchOptions) { o.prevKV = true })
}

func buildWatchOptions(opts []WatchOption) watchOptions {
	var o watchOptions
	for _, opt := range opts {
		if opt != nil {
			opt.applyWatch(&o)
		}
	}
	return o
}
