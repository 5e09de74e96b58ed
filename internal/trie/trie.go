// Package trie is a persistent hash map from string keys to values: a hash
// array mapped trie whose versions are never changed once made, so readers
// need no lock.
package trie

import (
	"hash/maphash"
	"math/bits"
)

// Map is a persistent hash map from string keys to values of type V, each
// value holding its own key (a hash array mapped trie). A Map value is never changed once published,
// so any number of readers can use it at once with no lock and no write to
// shared memory, and a new version made by an edit shares every part the
// edit did not touch. That is what lets the Mirror's Get scale with the cores
// while each reader still sees whole revisions: it reads one version.
//
// Each node maps 5 bits of the key's hash to up to 32 slots, each holding
// one value inline or a sub-node. Keys whose 64 bits of hash are all equal
// end in a collision node, searched linearly.
type Map[V any] struct {
	root  *node[V]
	len   int
	keyOf func(*V) string // the key a value is stored at

	testHash func(string) uint64 // replaces maphash in tests that need collisions
}

type node[V any] struct {
	owner   *editor // the edit that may still change this node in place
	nodeMap uint32  // slots holding a sub-node
	leafMap uint32  // slots holding a value
	nodes   []*node[V]
	leaves  []V // inline: no allocation and no pointer per value
}

const (
	trieBits  = 5
	trieFan   = 1 << trieBits
	trieDepth = 64 // a node at this shift or deeper is a collision node
)

// editor marks the nodes one edit made. It has a size so that every
// new one has its own address.
type editor struct{ _ byte }

// seed is the one every Map hashes with, so that a key's hash is the same
// in all of them and a caller can keep it beside the key: see [Hash].
var seed = maphash.MakeSeed()

// Hash returns the hash every Map of this process places key by. A caller
// that looks the same keys up often can keep it and give it to
// [Map.GetAll], which then need not read the keys' bytes.
func Hash(key string) uint64 { return maphash.String(seed, key) }

// New returns an empty Map whose values are stored at the key keyOf gives.
// keyOf is called on every lookup, so it should only read a field.
func New[V any](keyOf func(*V) string) Map[V] {
	return Map[V]{root: &node[V]{}, keyOf: keyOf}
}

// Same reports whether t and u are one version: what an edit of one made
// is never the other.
func (t Map[V]) Same(u Map[V]) bool { return t.root == u.root }

// Len returns the number of values.
func (t Map[V]) Len() int { return t.len }

func (t Map[V]) hash(key string) uint64 {
	if t.testHash != nil {
		return t.testHash(key)
	}
	return Hash(key)
}

// slotBit is the bit of a node's maps for hash h at the given shift.
func slotBit(h uint64, shift uint) uint32 { return 1 << ((h >> shift) & (trieFan - 1)) }

// slotIndex is the position in a node's slice of the slot bit, given that
// slice's map: the number of occupied slots before it.
func slotIndex(bitmap, bit uint32) int { return bits.OnesCount32(bitmap & (bit - 1)) }

// Get returns the value at key, or nil. The value is the Map's: copy it.
func (t Map[V]) Get(key string) *V {
	h := t.hash(key)
	n := t.root
	for shift := uint(0); shift < trieDepth; shift += trieBits {
		bit := slotBit(h, shift)
		if n.leafMap&bit != 0 {
			if e := &n.leaves[slotIndex(n.leafMap, bit)]; t.keyOf(e) == key {
				return e
			}
			return nil
		}
		if n.nodeMap&bit == 0 {
			return nil
		}
		n = n.nodes[slotIndex(n.nodeMap, bit)]
	}
	return n.collision(t.keyOf, key)
}

// getLanes is how many lookups GetAll walks down the trie side by side.
const getLanes = 16

// GetAll sets out[i] to the value at keys[i], or nil; out must be at least
// as long as keys. It answers as many Gets would, faster: it walks the
// trie for up to 16 keys at once, a level at a time, so that the memory
// reads of different keys, which do not depend on each other, overlap
// rather than wait for each other. hashes, when not nil, holds [Hash] of
// each key, which spares reading the keys to hash them.
func (t Map[V]) GetAll(keys []string, hashes []uint64, out []*V) {
	var hs [getLanes]uint64
	var ns [getLanes]*node[V]
	for len(keys) > 0 {
		k := keys[:min(len(keys), getLanes)]
		for i := range k {
			if hashes != nil && t.testHash == nil {
				hs[i] = hashes[i]
			} else {
				hs[i] = t.hash(k[i])
			}
			ns[i] = t.root
		}
		t.getLanes(k, hs[:len(k)], ns[:len(k)], out)
		keys, out = keys[len(k):], out[len(k):]
		if hashes != nil {
			hashes = hashes[len(k):]
		}
	}
}

// getLanes walks ns down the trie for keys, whose hashes are hs. It
// first finds, for every key, the one slot that can hold it, and only then
// reads those slots' keys: the slots are where the trie's memory is
// coldest, and reading them in a loop of their own lets all those reads be
// in flight at once rather than one behind each node walk.
func (t Map[V]) getLanes(keys []string, hs []uint64, ns []*node[V], out []*V) {
	left := len(keys)
	for shift := uint(0); left > 0 && shift < trieDepth; shift += trieBits {
		for i, n := range ns {
			if n == nil {
				continue
			}
			bit := slotBit(hs[i], shift)
			switch {
			case n.leafMap&bit != 0:
				out[i] = &n.leaves[slotIndex(n.leafMap, bit)]
			case n.nodeMap&bit != 0:
				ns[i] = n.nodes[slotIndex(n.nodeMap, bit)]
				continue
			default:
				out[i] = nil
			}
			ns[i] = nil
			left--
		}
	}
	for i, n := range ns {
		if n != nil {
			out[i] = n.collision(t.keyOf, keys[i])
		}
	}
	for i, e := range out[:len(keys)] {
		if e != nil && t.keyOf(e) != keys[i] {
			out[i] = nil
		}
	}
}

func (n *node[V]) collision(keyOf func(*V) string, key string) *V {
	for i := range n.leaves {
		if keyOf(&n.leaves[i]) == key {
			return &n.leaves[i]
		}
	}
	return nil
}

// Each calls fn for every value, in no particular order, until fn returns
// false.
func (t Map[V]) Each(fn func(*V) bool) { t.root.each(fn) }

func (n *node[V]) each(fn func(*V) bool) bool {
	for i := range n.leaves {
		if !fn(&n.leaves[i]) {
			return false
		}
	}
	for _, c := range n.nodes {
		if !c.each(fn) {
			return false
		}
	}
	return true
}

// Edit starts a new version of t. The nodes the edit copies are its own
// and change in place until [Edit.Done], so a batch of changes costs
// one copy of each node it touches, not one per change.
func (t Map[V]) Edit() *Edit[V] {
	return &Edit[V]{t: t, owner: new(editor)}
}

// Edit makes a new version of a Map; see [Map.Edit].
type Edit[V any] struct {
	t     Map[V]
	owner *editor
}

// Done returns the new version. The edit must not be used after it.
func (ed *Edit[V]) Done() Map[V] {
	ed.owner = nil
	return ed.t
}

// Get returns the value at key in the version being made, or nil.
func (ed *Edit[V]) Get(key string) *V { return ed.t.Get(key) }

// Put sets the value at its key.
func (ed *Edit[V]) Put(e V) {
	var added bool
	key := ed.t.keyOf(&e)
	ed.t.root, added = ed.put1(ed.t.root, 0, ed.t.hash(key), key, e)
	if added {
		ed.t.len++
	}
}

// Delete removes the value at key, if there is one.
func (ed *Edit[V]) Delete(key string) {
	var removed bool
	ed.t.root, removed = ed.delete1(ed.t.root, 0, ed.t.hash(key), key)
	if removed {
		ed.t.len--
	}
}

// own returns n if this edit made it, else a copy this edit may change.
func (ed *Edit[V]) own(n *node[V]) *node[V] {
	if n.owner == ed.owner {
		return n
	}
	return &node[V]{
		owner:   ed.owner,
		nodeMap: n.nodeMap,
		leafMap: n.leafMap,
		nodes:   cloneExact(n.nodes),
		leaves:  cloneExact(n.leaves),
	}
}

// put1 puts e, whose key and hash are given so that e's address is never
// taken: keyOf is a func value, so that would move e to the heap once per
// level.
func (ed *Edit[V]) put1(n *node[V], shift uint, h uint64, key string, e V) (*node[V], bool) {
	if shift >= trieDepth {
		n = ed.own(n)
		if old := n.collision(ed.t.keyOf, key); old != nil {
			*old = e
			return n, false
		}
		n.leaves = insertExact(n.leaves, len(n.leaves), e)
		return n, true
	}
	bit := slotBit(h, shift)
	switch {
	case n.nodeMap&bit != 0:
		i := slotIndex(n.nodeMap, bit)
		child, added := ed.put1(n.nodes[i], shift+trieBits, h, key, e)
		if child != n.nodes[i] {
			n = ed.own(n)
			n.nodes[i] = child
		}
		return n, added
	case n.leafMap&bit != 0:
		n = ed.own(n)
		i := slotIndex(n.leafMap, bit)
		if ed.t.keyOf(&n.leaves[i]) == key {
			n.leaves[i] = e
			return n, false
		}
		// Two keys share the slot: both move one level down.
		old := n.leaves[i]
		child := ed.pair(shift+trieBits, ed.t.hash(ed.t.keyOf(&n.leaves[i])), old, h, e)
		n.leaves = deleteExact(n.leaves, i)
		n.leafMap &^= bit
		n.nodes = insertExact(n.nodes, slotIndex(n.nodeMap, bit), child)
		n.nodeMap |= bit
		return n, true
	default:
		n = ed.own(n)
		n.leaves = insertExact(n.leaves, slotIndex(n.leafMap, bit), e)
		n.leafMap |= bit
		return n, true
	}
}

// pair makes the node at shift that holds two values with distinct keys.
func (ed *Edit[V]) pair(shift uint, h1 uint64, e1 V, h2 uint64, e2 V) *node[V] {
	n := &node[V]{owner: ed.owner}
	if shift >= trieDepth {
		n.leaves = []V{e1, e2}
		return n
	}
	b1, b2 := slotBit(h1, shift), slotBit(h2, shift)
	if b1 == b2 {
		n.nodeMap = b1
		n.nodes = []*node[V]{ed.pair(shift+trieBits, h1, e1, h2, e2)}
		return n
	}
	n.leafMap = b1 | b2
	if b1 < b2 {
		n.leaves = []V{e1, e2}
	} else {
		n.leaves = []V{e2, e1}
	}
	return n
}

func (ed *Edit[V]) delete1(n *node[V], shift uint, h uint64, key string) (*node[V], bool) {
	if shift >= trieDepth {
		for i := range n.leaves {
			if ed.t.keyOf(&n.leaves[i]) == key {
				n = ed.own(n)
				n.leaves = deleteExact(n.leaves, i)
				return n, true
			}
		}
		return n, false
	}
	bit := slotBit(h, shift)
	switch {
	case n.leafMap&bit != 0:
		i := slotIndex(n.leafMap, bit)
		if ed.t.keyOf(&n.leaves[i]) != key {
			return n, false
		}
		n = ed.own(n)
		n.leaves = deleteExact(n.leaves, i)
		n.leafMap &^= bit
		return n, true
	case n.nodeMap&bit != 0:
		i := slotIndex(n.nodeMap, bit)
		child, removed := ed.delete1(n.nodes[i], shift+trieBits, h, key)
		if !removed {
			return n, false
		}
		n = ed.own(n)
		ed.replaceChild(n, bit, i, child)
		return n, true
	}
	return n, false
}

// replaceChild puts child in n's slot bit (at nodes[i]) after a delete
// below it. A child left with one value and no sub-node gives the value
// back to n, so the trie stays as shallow as its keys need, which keeps
// reads short and memory small after deletes.
func (ed *Edit[V]) replaceChild(n *node[V], bit uint32, i int, child *node[V]) {
	switch {
	case child.nodeMap == 0 && len(child.leaves) == 0:
		n.nodes = deleteExact(n.nodes, i)
		n.nodeMap &^= bit
	case child.nodeMap == 0 && len(child.leaves) == 1:
		n.nodes = deleteExact(n.nodes, i)
		n.nodeMap &^= bit
		n.leaves = insertExact(n.leaves, slotIndex(n.leafMap, bit), child.leaves[0])
		n.leafMap |= bit
	default:
		n.nodes[i] = child
	}
}

// cloneExact copies s into a slice of exactly its length: a node's slices
// are sized to their contents, never to append's growth.
func cloneExact[E any](s []E) []E {
	if len(s) == 0 {
		return nil
	}
	return append(make([]E, 0, len(s)), s...)
}

// insertExact inserts v at i, reallocating to exactly the new length when
// s is full.
func insertExact[E any](s []E, i int, v E) []E {
	if len(s) < cap(s) {
		s = s[:len(s)+1]
		copy(s[i+1:], s[i:])
		s[i] = v
		return s
	}
	out := make([]E, len(s)+1)
	copy(out, s[:i])
	out[i] = v
	copy(out[i+1:], s[i:])
	return out
}

// deleteExact removes s[i] in place, clearing the freed element so it
// keeps nothing alive.
func deleteExact[E any](s []E, i int) []E {
	copy(s[i:], s[i+1:])
	var zero E
	s[len(s)-1] = zero
	return s[:len(s)-1]
}
