package etcdkit

import (
	"iter"
	"slices"

	"github.com/etcdkit/etcdkit/internal/trie"
)

// Snapshot is the [Mirror] as of one revision: what [Mirror.Snapshot]
// returned, which later changes to the mirror never alter. Several reads of
// one Snapshot agree with each other, which several reads of the Mirror
// need not: between two of those, the mirror may move on. It is safe for
// concurrent use and its reads take no lock.
//
// Values follow the Mirror's rule: shared and read-only, except a [Bytes]
// value, which is copied on its way out and belongs to the caller.
type Snapshot[T any] struct {
	m       *Mirror[T]
	entries trie.Map[Entry[T]]
	ixs     []mirrorIndex[T]        // the indexes' definitions, never changed once published
	index   []trie.Map[indexBucket] // one per index, in ixs' order
	rev     int64
	sorted  *mirrorSorted[T] // shared by the snapshots with the same entries
}

// Snapshot returns the mirror as it is now. It takes no lock, copies
// nothing and does not allocate: the mirror's current version is never
// changed, only replaced, so the Snapshot is that version.
func (m *Mirror[T]) Snapshot() *Snapshot[T] { return m.state.Load() }

// Get returns the entry at key, and false if the snapshot does not have it.
func (s *Snapshot[T]) Get(key string) (Entry[T], bool) {
	if e := s.entries.Get(key); e != nil {
		return s.m.own(*e), true
	}
	return Entry[T]{}, false
}

// List returns every entry, sorted by key. The slice is the caller's, and
// so are [Bytes] values in it.
func (s *Snapshot[T]) List() []Entry[T] {
	es := slices.Clone(s.sortedEntries())
	if s.m.clone != nil {
		for i := range es {
			es[i].Value = s.m.clone(es[i].Value)
		}
	}
	return es
}

// All yields every entry, sorted by key, without making a slice of them.
func (s *Snapshot[T]) All() iter.Seq[Entry[T]] {
	return func(yield func(Entry[T]) bool) {
		for _, e := range s.sortedEntries() {
			if !yield(s.m.own(e)) {
				return
			}
		}
	}
}

// sortedEntries is the entries sorted by key, made on the first call and
// shared after: the caller must not change it.
func (s *Snapshot[T]) sortedEntries() []Entry[T] {
	s.sorted.once.Do(func() { s.sorted.entries = sortEntries(s.entries) })
	return s.sorted.entries
}

// Len returns the number of entries.
func (s *Snapshot[T]) Len() int { return s.entries.Len() }

// Revision returns the revision the snapshot is current with: it shows
// every change up to it, and none after.
func (s *Snapshot[T]) Revision() int64 { return s.rev }

// ByIndex returns the entries whose [WithIndex] function named gave value,
// sorted by key. The index and the entries are of the same revision, so
// the answer is what filtering [Snapshot.List] with the function would
// give. It returns nil for a value no entry has, and also for a name the
// snapshot has no index of: neither a WithIndex nor a [Mirror.AddIndex]
// that returned before the snapshot was taken.
func (s *Snapshot[T]) ByIndex(name, value string) []Entry[T] {
	i := indexNamed(s.ixs, name)
	if i < 0 {
		return nil
	}
	b := s.index[i].Get(value)
	if b == nil {
		return nil
	}
	keys := b.small
	if b.big != nil {
		keys = bucketKeys(b.big)
	}
	return s.entriesAt(keys)
}

// entriesAt returns the entries at keys, which the snapshot has. It looks
// them up together, a few at a time, which is faster than one by one.
func (s *Snapshot[T]) entriesAt(keys []indexKey) []Entry[T] {
	es := make([]Entry[T], len(keys))
	const lanes = 16
	var (
		ks    [lanes]string
		hs    [lanes]uint64
		found [lanes]*Entry[T]
	)
	for done := 0; done < len(keys); done += lanes {
		part := keys[done:min(len(keys), done+lanes)]
		for j, k := range part {
			ks[j], hs[j] = k.key, k.hash
		}
		s.entries.GetAll(ks[:len(part)], hs[:len(part)], found[:])
		for j := range part {
			es[done+j] = s.m.own(*found[j])
		}
	}
	return es
}

// ByIndex is [Snapshot.ByIndex] on the mirror as it is now.
func (m *Mirror[T]) ByIndex(name, value string) []Entry[T] {
	return m.state.Load().ByIndex(name, value)
}
