package etcdkit

import (
	"hash/maphash"
	"math/bits"
)

// trie is the Mirror's store: a persistent hash map from keys to entries
// (a hash array mapped trie). A trie value is never changed once published,
// so any number of readers can use it at once with no lock and no write to
// shared memory, and a new version made by an edit shares every part the
// edit did not touch. That is what lets Mirror.Get scale with the cores
// while each reader still sees whole revisions: it reads one version.
//
// Each node maps 5 bits of the key's hash to up to 32 slots, each holding
// one entry inline or a sub-node. Keys whose 64 bits of hash are all equal
// end in a collision node, searched linearly.
type trie[T any] struct {
	root *trieNode[T]
	len  int
	seed maphash.Seed

	testHash func(string) uint64 // replaces maphash in tests that need collisions
}

type trieNode[T any] struct {
	owner   *trieEditor // the edit that may still change this node in place
	nodeMap uint32      // slots holding a sub-node
	leafMap uint32      // slots holding an entry
	nodes   []*trieNode[T]
	leaves  []Entry[T] // inline: no allocation and no pointer per entry
}

const (
	trieBits  = 5
	trieFan   = 1 << trieBits
	trieDepth = 64 // a node at this shift or deeper is a collision node
)

// trieEditor marks the nodes one edit made. It has a size so that every
// new one has its own address.
type trieEditor struct{ _ byte }

func newTrie[T any]() trie[T] {
	return trie[T]{root: &trieNode[T]{}, seed: maphash.MakeSeed()}
}

func (t trie[T]) hash(key string) uint64 {
	if t.testHash != nil {
		return t.testHash(key)
	}
	return maphash.String(t.seed, key)
}

// slotBit is the bit of a node's maps for hash h at the given shift.
func slotBit(h uint64, shift uint) uint32 { return 1 << ((h >> shift) & (trieFan - 1)) }

// slotIndex is the position in a node's slice of the slot bit, given that
// slice's map: the number of occupied slots before it.
func slotIndex(bitmap, bit uint32) int { return bits.OnesCount32(bitmap & (bit - 1)) }

// get returns the entry at key, or nil. The entry is the trie's: copy it.
func (t trie[T]) get(key string) *Entry[T] {
	h := t.hash(key)
	n := t.root
	for shift := uint(0); shift < trieDepth; shift += trieBits {
		bit := slotBit(h, shift)
		if n.leafMap&bit != 0 {
			if e := &n.leaves[slotIndex(n.leafMap, bit)]; e.Key == key {
				return e
			}
			return nil
		}
		if n.nodeMap&bit == 0 {
			return nil
		}
		n = n.nodes[slotIndex(n.nodeMap, bit)]
	}
	return n.collision(key)
}

func (n *trieNode[T]) collision(key string) *Entry[T] {
	for i := range n.leaves {
		if n.leaves[i].Key == key {
			return &n.leaves[i]
		}
	}
	return nil
}

// each calls fn for every entry, in no particular order, until fn returns
// false.
func (t trie[T]) each(fn func(*Entry[T]) bool) { t.root.each(fn) }

func (n *trieNode[T]) each(fn func(*Entry[T]) bool) bool {
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

// edit starts a new version of t. The nodes the edit copies are its own
// and change in place until [trieEdit.done], so a batch of changes costs
// one copy of each node it touches, not one per change.
func (t trie[T]) edit() *trieEdit[T] {
	return &trieEdit[T]{t: t, owner: new(trieEditor)}
}

type trieEdit[T any] struct {
	t     trie[T]
	owner *trieEditor
}

// done returns the new version. The edit must not be used after it.
func (ed *trieEdit[T]) done() trie[T] {
	ed.owner = nil
	return ed.t
}

func (ed *trieEdit[T]) get(key string) *Entry[T] { return ed.t.get(key) }

// put sets the entry at e.Key.
func (ed *trieEdit[T]) put(e Entry[T]) {
	var added bool
	ed.t.root, added = ed.put1(ed.t.root, 0, ed.t.hash(e.Key), e)
	if added {
		ed.t.len++
	}
}

// delete removes the entry at key, if there is one.
func (ed *trieEdit[T]) delete(key string) {
	var removed bool
	ed.t.root, removed = ed.delete1(ed.t.root, 0, ed.t.hash(key), key)
	if removed {
		ed.t.len--
	}
}

// own returns n if this edit made it, else a copy this edit may change.
func (ed *trieEdit[T]) own(n *trieNode[T]) *trieNode[T] {
	if n.owner == ed.owner {
		return n
	}
	return &trieNode[T]{
		owner:   ed.owner,
		nodeMap: n.nodeMap,
		leafMap: n.leafMap,
		nodes:   cloneExact(n.nodes),
		leaves:  cloneExact(n.leaves),
	}
}

func (ed *trieEdit[T]) put1(n *trieNode[T], shift uint, h uint64, e Entry[T]) (*trieNode[T], bool) {
	if shift >= trieDepth {
		n = ed.own(n)
		if old := n.collision(e.Key); old != nil {
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
		child, added := ed.put1(n.nodes[i], shift+trieBits, h, e)
		if child != n.nodes[i] {
			n = ed.own(n)
			n.nodes[i] = child
		}
		return n, added
	case n.leafMap&bit != 0:
		n = ed.own(n)
		i := slotIndex(n.leafMap, bit)
		if n.leaves[i].Key == e.Key {
			n.leaves[i] = e
			return n, false
		}
		// Two keys share the slot: both move one level down.
		old := n.leaves[i]
		child := ed.pair(shift+trieBits, ed.t.hash(old.Key), old, h, e)
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

// pair makes the node at shift that holds two entries with distinct keys.
func (ed *trieEdit[T]) pair(shift uint, h1 uint64, e1 Entry[T], h2 uint64, e2 Entry[T]) *trieNode[T] {
	n := &trieNode[T]{owner: ed.owner}
	if shift >= trieDepth {
		n.leaves = []Entry[T]{e1, e2}
		return n
	}
	b1, b2 := slotBit(h1, shift), slotBit(h2, shift)
	if b1 == b2 {
		n.nodeMap = b1
		n.nodes = []*trieNode[T]{ed.pair(shift+trieBits, h1, e1, h2, e2)}
		return n
	}
	n.leafMap = b1 | b2
	if b1 < b2 {
		n.leaves = []Entry[T]{e1, e2}
	} else {
		n.leaves = []Entry[T]{e2, e1}
	}
	return n
}

func (ed *trieEdit[T]) delete1(n *trieNode[T], shift uint, h uint64, key string) (*trieNode[T], bool) {
	if shift >= trieDepth {
		for i := range n.leaves {
			if n.leaves[i].Key == key {
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
		if n.leaves[i].Key != key {
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
// below it. A child left with one entry and no sub-node gives the entry
// back to n, so the trie stays as shallow as its keys need, which keeps
// reads short and memory small after deletes.
func (ed *trieEdit[T]) replaceChild(n *trieNode[T], bit uint32, i int, child *trieNode[T]) {
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
