package etcdkit

import (
	"fmt"
	"slices"
	"strings"

	"github.com/etcdkit/etcdkit/internal/trie"
)

// WithIndex makes the mirror keep an index, called name, of its entries by
// the values fn gives for each: [Mirror.ByIndex] and [Snapshot.ByIndex]
// return the entries for one value without a scan. An entry is indexed
// under every distinct value fn returns, and under none when it returns
// none. The index changes in the same step as the entries, so at every
// revision the two agree.
//
// fn is called from the mirror's goroutine for every entry listed and every
// change, on the entry before and after the change: it must give the same
// values for the same entry, return quickly and not panic. Its [Bytes]
// value is the mirror's own: fn must not change or keep it. Several
// WithIndex options make several indexes; a second one with a name
// already given replaces the first. An empty name or a nil fn makes
// [KV.Mirror] fail with [ErrInvalidArgument].
func WithIndex[T any](name string, fn func(Entry[T]) []string) MirrorOption[T] {
	return mirrorOptionFunc[T](func(o *mirrorOptions[T]) {
		if (name == "" || fn == nil) && o.err == nil {
			o.err = fmt.Errorf("%w: WithIndex(%q) without a name or a function", ErrInvalidArgument, name)
		}
		if fn == nil {
			return
		}
		ix := mirrorIndex[T]{name: name, fn: fn}
		if i := slices.IndexFunc(o.indexes, func(x mirrorIndex[T]) bool { return x.name == name }); i >= 0 {
			o.indexes[i] = ix
			return
		}
		o.indexes = append(o.indexes, ix)
	})
}

// mirrorIndex is one WithIndex.
type mirrorIndex[T any] struct {
	name string
	fn   func(Entry[T]) []string
}

// values returns the distinct values fn gives for e, sorted.
func (ix mirrorIndex[T]) values(e *Entry[T]) []string {
	if e == nil {
		return nil
	}
	vs := ix.fn(*e)
	if len(vs) > 1 {
		vs = slices.Compact(slices.Sorted(slices.Values(vs)))
	}
	return vs
}

// indexBucket is the keys of the entries an index has under one value. A
// few keys are a sorted slice, read in key order. Beyond bigBucket they
// are a persistent set, so that a change copies a path of it rather than
// all of it.
type indexBucket struct {
	value string
	small []indexKey          // sorted by key; nil when big is set
	big   *trie.Map[indexKey] // nil while the keys are few
}

// indexKey is an indexed entry's key with its [trie.Hash]. With the hash
// at hand, [Snapshot.ByIndex] finds the entries without reading their keys'
// bytes to hash them, a cache miss per key saved for 8 bytes per key kept.
// The key's string is the entry's, so it adds no copy of the bytes.
type indexKey struct {
	key  string
	hash uint64
}

func newIndexKey(key string) indexKey { return indexKey{key: key, hash: trie.Hash(key)} }

func cmpIndexKey(a indexKey, key string) int { return strings.Compare(a.key, key) }

const (
	bigBucket   = 64 // more keys than this make a bucket a set
	smallBucket = 32 // this many or fewer make a set a slice again
)

func bucketValue(b *indexBucket) string { return b.value }

func indexKeyOf(k *indexKey) string { return k.key }

func newIndex() trie.Map[indexBucket] { return trie.New(bucketValue) }

// bucketEdit is one bucket being changed: small is the edit's own copy.
type bucketEdit struct {
	small []indexKey
	big   *trie.Edit[indexKey]
}

func editBucket(b *indexBucket) *bucketEdit {
	switch {
	case b == nil:
		return &bucketEdit{}
	case b.big != nil:
		return &bucketEdit{big: b.big.Edit()}
	default:
		return &bucketEdit{small: slices.Clone(b.small)}
	}
}

func (be *bucketEdit) put(key string) {
	if be.big != nil {
		be.big.Put(newIndexKey(key))
		return
	}
	i, found := slices.BinarySearchFunc(be.small, key, cmpIndexKey)
	if found {
		return
	}
	be.small = slices.Insert(be.small, i, newIndexKey(key))
	if len(be.small) > bigBucket {
		ed := trie.New(indexKeyOf).Edit()
		for _, k := range be.small {
			ed.Put(k)
		}
		be.big, be.small = ed, nil
	}
}

func (be *bucketEdit) delete(key string) {
	if be.big != nil {
		be.big.Delete(key)
		return
	}
	if i, found := slices.BinarySearchFunc(be.small, key, cmpIndexKey); found {
		be.small = slices.Delete(be.small, i, i+1)
	}
}

// done returns the bucket of value, and false when it is empty. A slice
// is copied to its length, so that no bucket keeps spare capacity.
func (be *bucketEdit) done(value string) (indexBucket, bool) {
	if be.big != nil {
		keys := be.big.Done()
		if keys.Len() > smallBucket {
			return indexBucket{value: value, big: &keys}, true
		}
		be.small = bucketKeys(&keys)
	}
	if len(be.small) == 0 {
		return indexBucket{}, false
	}
	small := be.small
	if cap(small) != len(small) {
		small = make([]indexKey, len(be.small))
		copy(small, be.small)
	}
	return indexBucket{value: value, small: small}, true
}

// bucketKeys returns the keys of a big bucket, sorted.
func bucketKeys(keys *trie.Map[indexKey]) []indexKey {
	out := make([]indexKey, 0, keys.Len())
	keys.Each(func(k *indexKey) bool {
		out = append(out, *k)
		return true
	})
	slices.SortFunc(out, func(a, b indexKey) int { return cmpIndexKey(a, b.key) })
	return out
}

// indexEdit makes a new version of one index. Each value's bucket is
// opened once per batch and put back at done, so a revision that changes
// many entries under one value copies that bucket once.
type indexEdit struct {
	ed   *trie.Edit[indexBucket]
	open map[string]*bucketEdit
}

func editIndex(t trie.Map[indexBucket]) *indexEdit {
	return &indexEdit{ed: t.Edit(), open: map[string]*bucketEdit{}}
}

func (ie *indexEdit) bucket(value string) *bucketEdit {
	if be := ie.open[value]; be != nil {
		return be
	}
	be := editBucket(ie.ed.Get(value))
	ie.open[value] = be
	return be
}

func (ie *indexEdit) done() trie.Map[indexBucket] {
	for v, be := range ie.open {
		if b, ok := be.done(v); ok {
			ie.ed.Put(b)
		} else {
			ie.ed.Delete(v)
		}
	}
	return ie.ed.Done()
}

// indexEdits edits every index of the mirror at once.
type indexEdits[T any] struct {
	ixs []mirrorIndex[T]
	eds []*indexEdit
}

func editIndexes[T any](ixs []mirrorIndex[T], cur []trie.Map[indexBucket]) *indexEdits[T] {
	if len(ixs) == 0 {
		return nil
	}
	ie := &indexEdits[T]{ixs: ixs, eds: make([]*indexEdit, len(cur))}
	for i, t := range cur {
		ie.eds[i] = editIndex(t)
	}
	return ie
}

// change moves a key from the values of old to those of new; either may be
// nil. The key stored is the entry's, so the index adds no copy of it.
func (ie *indexEdits[T]) change(old, new *Entry[T]) {
	if ie == nil {
		return
	}
	for i, ix := range ie.ixs {
		was, is := ix.values(old), ix.values(new)
		for _, v := range was {
			if !slices.Contains(is, v) {
				ie.eds[i].bucket(v).delete(old.Key)
			}
		}
		for _, v := range is {
			if !slices.Contains(was, v) {
				ie.eds[i].bucket(v).put(new.Key)
			}
		}
	}
}

func (ie *indexEdits[T]) done() []trie.Map[indexBucket] {
	if ie == nil {
		return nil
	}
	out := make([]trie.Map[indexBucket], len(ie.eds))
	for i, e := range ie.eds {
		out[i] = e.done()
	}
	return out
}

// buildIndexes makes the indexes ixs of a fresh listing.
func buildIndexes[T any](ixs []mirrorIndex[T], entries trie.Map[Entry[T]]) []trie.Map[indexBucket] {
	if len(ixs) == 0 {
		return nil
	}
	empty := make([]trie.Map[indexBucket], len(ixs))
	for i := range empty {
		empty[i] = newIndex()
	}
	ie := editIndexes(ixs, empty)
	entries.Each(func(e *Entry[T]) bool {
		ie.change(nil, e)
		return true
	})
	return ie.done()
}

// indexNamed returns the position of the index called name in ixs, or -1.
func indexNamed[T any](ixs []mirrorIndex[T], name string) int {
	for i := range ixs {
		if ixs[i].name == name {
			return i
		}
	}
	return -1
}

// AddIndex adds an index to the mirror while it runs, as [WithIndex] would
// have, and replaces one of the same name. It builds the index from the
// mirror's current version without stopping reads or taking a lock they
// take, then publishes it with the entries of one revision: every
// [Snapshot] taken after AddIndex returns has it and agrees with it, and
// those taken before never have it. Changes the watch applies meanwhile
// wait only for the index to be brought up to date with them, not for the
// build. fn is called as WithIndex says, also from the caller's goroutine.
// It fails with [ErrInvalidArgument] if fn is nil.
func (m *Mirror[T]) AddIndex(name string, fn func(Entry[T]) []string) error {
	if fn == nil {
		return &opError{op: fmt.Sprintf("mirror: add index %q", name), key: m.spec.name, err: ErrInvalidArgument}
	}
	one := []mirrorIndex[T]{{name: name, fn: fn}}
	base := m.state.Load()
	built := buildIndexes(one, base.entries)
	m.write.Lock()
	defer m.write.Unlock()
	cur := m.state.Load()
	if !cur.entries.Same(base.entries) {
		ie := editIndexes(one, built)
		for _, c := range diffEntries(base.entries, cur.entries, cur.rev) {
			ie.change(c.old, c.new)
		}
		built = ie.done()
	}
	ixs, index := slices.Clone(cur.ixs), slices.Clone(cur.index)
	if i := indexNamed(ixs, name); i >= 0 {
		ixs[i], index[i] = one[0], built[0]
	} else {
		ixs, index = append(ixs, one[0]), append(index, built[0])
	}
	m.publishIndexes(ixs, index)
	return nil
}

// publishIndexes publishes the current entries with other indexes. The
// caller holds m.write, so the entries cannot change meanwhile.
func (m *Mirror[T]) publishIndexes(ixs []mirrorIndex[T], index []trie.Map[indexBucket]) {
	m.mu.Lock()
	defer m.mu.Unlock()
	cur := m.state.Load()
	next := *cur
	next.ixs, next.index = ixs, index
	m.swap(cur, &next)
}
