package etcdkit

// FollowOption changes how [KV.Follow] follows its key.
type FollowOption[T any] interface {
	applyFollow(*followOptions[T])
}

type followOptions[T any] struct {
	def      *T
	validate func(T) error
	onReject func(key string, err error)
	onChange func(old, new T)
}

type followOptionFunc[T any] func(*followOptions[T])

func (f followOptionFunc[T]) applyFollow(o *followOptions[T]) { f(o) }

// WithDefault makes [Live.Load] return v while the key does not exist:
// before it is created, and after it is deleted. Without it, [KV.Follow]
// fails with [ErrNotFound] when the key is missing, and a deleted key
// keeps its last value.
func WithDefault[T any](v T) FollowOption[T] {
	return followOptionFunc[T](func(o *followOptions[T]) { o.def = &v })
}

// WithValidator checks every value before it is applied. A value validate
// rejects is not applied: [Live.Load] keeps returning the last good one,
// and the rejection is reported to [WithOnReject].
func WithValidator[T any](validate func(T) error) FollowOption[T] {
	return followOptionFunc[T](func(o *followOptions[T]) { o.validate = validate })
}

// WithOnReject calls fn with the key and the reason whenever a value is not
// applied: it failed validation, it did not decode (a [*DecodeError]), or
// the key was deleted and there is no default (an error matching
// [ErrNotFound]). The type argument cannot be inferred:
//
//	etcdkit.WithOnReject[Config](func(key string, err error) { log.Print(err) })
func WithOnReject[T any](fn func(key string, err error)) FollowOption[T] {
	return followOptionFunc[T](func(o *followOptions[T]) { o.onReject = fn })
}

// OnChange calls fn with the old and the new value whenever a value is
// applied after [KV.Follow] returned, including the default when the key
// is deleted. fn is called from one goroutine, in order, after
// [Live.Load] returns the new value; later changes wait while it runs.
func OnChange[T any](fn func(old, new T)) FollowOption[T] {
	return followOptionFunc[T](func(o *followOptions[T]) { o.onChange = fn })
}
