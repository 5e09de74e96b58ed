package trie

import "slices"

// Builder makes a Map from many values at once. Putting n values one by
// one through an [Edit] grows each node's slices one slot at a time, a new
// allocation of exactly the new size for each value, so the trie is
// re-allocated about once per level per value. A Builder only gathers the
// values and their hashes; [Builder.Done] then sorts them by hash a level
// at a time and makes each node once, at its final size.
//
// The nodes Done makes belong to no edit, so every later [Edit] copies the
// ones it changes, as it does for any published version.
type Builder[V any] struct {
	t     Map[V]
	items []item
	vals  []V
}

// item is a value waiting in a Builder: its hash and its position in the
// order it was added, which decides between two values at one key.
type item struct {
	h uint64
	i int
}

// NewBuilder returns a Builder of a Map whose values are stored at the key
// keyOf gives, as [New]'s are; size is how many values to expect.
func NewBuilder[V any](keyOf func(*V) string, size int) *Builder[V] {
	return &Builder[V]{
		t:     New(keyOf),
		items: make([]item, 0, size),
		vals:  make([]V, 0, size),
	}
}

// Add sets the value at its key; of values added at one key, the last
// stays, as with [Edit.Put].
func (b *Builder[V]) Add(v V) {
	// Hashed in place: keyOf is a func value, so &v would escape and cost
	// an allocation per value.
	b.vals = append(b.vals, v)
	i := len(b.vals) - 1
	b.items = append(b.items, item{h: b.t.hash(b.t.keyOf(&b.vals[i])), i: i})
}

// Len returns the number of values added so far, counting each of those
// at one key.
func (b *Builder[V]) Len() int { return len(b.vals) }

// Done returns the Map of the values added. The Builder must not be used
// after it.
func (b *Builder[V]) Done() Map[V] {
	t := b.t
	if len(b.items) > 0 {
		scratch := make([]item, len(b.items))
		t.root, t.len = b.build(b.items, scratch, 0)
	}
	b.items, b.vals = nil, nil
	return t
}

// build makes the node at shift holding items, whose hashes agree below
// shift, and returns it with the number of distinct keys in it. scratch is
// as long as items and is overwritten.
func (b *Builder[V]) build(items, scratch []item, shift uint) (*node[V], int) {
	if shift >= trieDepth {
		return b.collision(items)
	}
	// A counting sort by this level's slot, so that each slot's items lie
	// side by side for the level below.
	var count [trieFan]int32
	for _, it := range items {
		count[(it.h>>shift)&(trieFan-1)]++
	}
	var start [trieFan + 1]int32
	for s := range trieFan {
		start[s+1] = start[s] + count[s]
	}
	next := start
	for _, it := range items {
		s := (it.h >> shift) & (trieFan - 1)
		scratch[next[s]] = it
		next[s]++
	}
	copy(items, scratch)

	var kids [trieFan]*node[V]
	var leafMap, nodeMap uint32
	var leafOf [trieFan]int // the value of each slot in leafMap
	nLeaves, nNodes, total := 0, 0, 0
	for s := range trieFan {
		lo, hi := start[s], start[s+1]
		switch {
		case hi == lo:
			continue
		case hi-lo == 1:
			leafMap |= 1 << s
			leafOf[s] = items[lo].i
			nLeaves++
			total++
			continue
		}
		kid, n := b.build(items[lo:hi], scratch[lo:hi], shift+trieBits)
		total += n
		// Values all at one key leave one value: it is kept in this node,
		// as an Edit keeps it.
		if kid.nodeMap == 0 && len(kid.leaves) == 1 {
			leafMap |= 1 << s
			leafOf[s] = b.only(items[lo:hi])
			nLeaves++
			continue
		}
		nodeMap |= 1 << s
		kids[s] = kid
		nNodes++
	}
	n := &node[V]{leafMap: leafMap, nodeMap: nodeMap}
	if nLeaves > 0 {
		n.leaves = make([]V, 0, nLeaves)
	}
	if nNodes > 0 {
		n.nodes = make([]*node[V], 0, nNodes)
	}
	for s := range trieFan {
		switch {
		case leafMap&(1<<s) != 0:
			n.leaves = append(n.leaves, b.vals[leafOf[s]])
		case nodeMap&(1<<s) != 0:
			n.nodes = append(n.nodes, kids[s])
		}
	}
	return n, total
}

// only returns the value that stays of items, which are all at one key:
// the last added.
func (b *Builder[V]) only(items []item) int {
	last := items[0].i
	for _, it := range items[1:] {
		last = max(last, it.i)
	}
	return last
}

// collision makes the node of items whose hashes are all equal, keeping
// the last value added at each key, in the order added.
func (b *Builder[V]) collision(items []item) (*node[V], int) {
	keep := make([]int, 0, len(items))
	last := make(map[string]int, len(items))
	for _, it := range items {
		keep = append(keep, it.i)
		last[b.t.keyOf(&b.vals[it.i])] = max(last[b.t.keyOf(&b.vals[it.i])], it.i)
	}
	slices.Sort(keep)
	n := &node[V]{leaves: make([]V, 0, len(last))}
	for _, i := range keep {
		if last[b.t.keyOf(&b.vals[i])] == i {
			n.leaves = append(n.leaves, b.vals[i])
		}
	}
	return n, len(n.leaves)
}
