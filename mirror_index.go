package etcdkit

import (
	"slices"

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
// already given replaces the first.
func WithIndex[T any](name string, fn func(Entry[T]) []string) MirrorOption[T] {
	return mirrorOptionFunc[T](func(o *mirrorOptions[T]) {
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

// indexBucket is the keys of the entries an index has under one value: a
// persistent set, so that one change copies a path of it, not all of it.
type indexBucket struct {
	value string
	keys  trie.Map[string]
}

func bucketValue(b *indexBucket) string { return b.value }

func stringKey(s *string) string { return *s }

func newIndex() trie.Map[indexBucket] { return trie.New(bucketValue) }

// indexEdit makes a new version of one index. Each value's set is edited
// once per batch and put back at done, so a revision that changes many
// entries under one value copies that set's nodes once.
type indexEdit struct {
	ed   *trie.Edit[indexBucket]
	open map[string]*trie.Edit[string]
}

func editIndex(t trie.Map[indexBucket]) *indexEdit {
	return &indexEdit{ed: t.Edit(), open: map[string]*trie.Edit[string]{}}
}

func (ie *indexEdit) bucket(value string) *trie.Edit[string] {
	if e := ie.open[value]; e != nil {
		return e
	}
	keys := trie.New(stringKey)
	if b := ie.ed.Get(value); b != nil {
		keys = b.keys
	}
	e := keys.Edit()
	ie.open[value] = e
	return e
}

func (ie *indexEdit) done() trie.Map[indexBucket] {
	for v, e := range ie.open {
		if keys := e.Done(); keys.Len() > 0 {
			ie.ed.Put(indexBucket{value: v, keys: keys})
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

func (m *Mirror[T]) editIndexes(cur []trie.Map[indexBucket]) *indexEdits[T] {
	if len(m.opts.indexes) == 0 {
		return nil
	}
	ie := &indexEdits[T]{ixs: m.opts.indexes, eds: make([]*indexEdit, len(cur))}
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
				ie.eds[i].bucket(v).Delete(old.Key)
			}
		}
		for _, v := range is {
			if !slices.Contains(was, v) {
				ie.eds[i].bucket(v).Put(new.Key)
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

// buildIndexes indexes a fresh listing.
func (m *Mirror[T]) buildIndexes(entries trie.Map[Entry[T]]) []trie.Map[indexBucket] {
	if len(m.opts.indexes) == 0 {
		return nil
	}
	empty := make([]trie.Map[indexBucket], len(m.opts.indexes))
	for i := range empty {
		empty[i] = newIndex()
	}
	ie := m.editIndexes(empty)
	entries.Each(func(e *Entry[T]) bool {
		ie.change(nil, e)
		return true
	})
	return ie.done()
}

// indexNamed returns the position of the index called name, or -1.
func (m *Mirror[T]) indexNamed(name string) int {
	return slices.IndexFunc(m.opts.indexes, func(x mirrorIndex[T]) bool { return x.name == name })
}
