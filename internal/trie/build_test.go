package trie

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testHashes are the hashes the tests build with: the real maphash, and
// ones that put many keys in one slot, or all keys in one collision node.
var testHashes = map[string]func(string) uint64{
	"maphash":  nil,
	"four":     func(k string) uint64 { return uint64(len(k)%4) * 0x9e3779b97f4a7c15 },
	"one":      func(string) uint64 { return 42 },
	"low-zero": func(k string) uint64 { return uint64(len(k)) << 5 },
	"two-high": func(k string) uint64 { return uint64(len(k)%2) << 63 },
}

// builderSizes are the numbers of keys TestBuilderMatchesPuts builds with
// hash h. With "one", every key lands in one collision node, where putting
// one by one is quadratic: 1,000 keys show the same as 5,000 would.
func builderSizes(h string) []int {
	if h == "one" {
		return []int{0, 1, 2, 33, 1000}
	}
	return []int{0, 1, 2, 33, 1000, 5000}
}

// TestBuilderMatchesPuts adds random keys, some several times, to a
// Builder and puts them one by one through an Edit: both hold the same
// values, the last added at each key, in nodes of the same shape.
func TestBuilderMatchesPuts(t *testing.T) {
	for name, h := range testHashes {
		for _, n := range builderSizes(name) {
			t.Run(fmt.Sprintf("%s/n=%d", name, n), func(t *testing.T) {
				r := rand.New(rand.NewPCG(uint64(n), uint64(len(name))))
				b := NewBuilder(entryKeyOf, n)
				b.t.testHash = h
				put := b.t.Edit()
				model := map[string]int{}
				for i := range n {
					e := entry{Key: fmt.Sprintf("k%d", r.IntN(n+n/4+1)), Value: i}
					b.Add(e)
					put.Put(e)
					model[e.Key] = e.Value
				}
				built, want := b.Done(), put.Done()
				checkTrie(t, built, model)
				assert.Equal(t, want.Len(), built.Len())
				assert.NoError(t, sameShape(want.root, built.root, 0))
			})
		}
	}
}

// TestBuiltMapEditCopies edits a built map: the built version is left as it
// was, since its nodes belong to no edit and the edit copies them.
func TestBuiltMapEditCopies(t *testing.T) {
	for name, h := range testHashes {
		t.Run(name, func(t *testing.T) {
			b := NewBuilder(entryKeyOf, 0)
			b.t.testHash = h
			model := map[string]int{}
			for i := range 500 {
				b.Add(entry{Key: fmt.Sprint(i), Value: i})
				model[fmt.Sprint(i)] = i
			}
			built := b.Done()
			checkTrie(t, built, model)

			ed := built.Edit()
			edited := maps.Clone(model)
			for i := 0; i < 500; i += 3 {
				ed.Delete(fmt.Sprint(i))
				delete(edited, fmt.Sprint(i))
			}
			for i := 1; i < 700; i += 3 {
				ed.Put(entry{Key: fmt.Sprint(i), Value: -i})
				edited[fmt.Sprint(i)] = -i
			}
			next := ed.Done()
			checkTrie(t, next, edited)
			checkTrie(t, built, model)
			require.False(t, next.Same(built))
		})
	}
}

func entryKeyOf(e *entry) string { return e.Key }

// sameShape reports how a and b differ in shape or contents, or nil: the
// same maps, the same values in the same slots, and collision nodes with
// the same values in any order.
func sameShape(a, b *node[entry], depth int) error {
	if a.nodeMap != b.nodeMap || a.leafMap != b.leafMap {
		return fmt.Errorf("depth %d: maps %x/%x, want %x/%x", depth, b.nodeMap, b.leafMap, a.nodeMap, a.leafMap)
	}
	if len(a.leaves) != len(b.leaves) || len(a.nodes) != len(b.nodes) {
		return fmt.Errorf("depth %d: %d leaves, %d nodes; want %d, %d", depth, len(b.leaves), len(b.nodes), len(a.leaves), len(a.nodes))
	}
	if depth*trieBits >= trieDepth {
		got := map[entry]bool{}
		for _, e := range b.leaves {
			got[e] = true
		}
		for _, e := range a.leaves {
			if !got[e] {
				return fmt.Errorf("collision node lacks %+v", e)
			}
		}
		return nil
	}
	for i := range a.leaves {
		if a.leaves[i] != b.leaves[i] {
			return fmt.Errorf("depth %d: leaf %d is %+v, want %+v", depth, i, b.leaves[i], a.leaves[i])
		}
	}
	for i := range a.nodes {
		if err := sameShape(a.nodes[i], b.nodes[i], depth+1); err != nil {
			return err
		}
	}
	return nil
}

// BenchmarkBuild makes a map of n keys by putting them one by one in one
// Edit (impl=edit) and with a Builder (impl=builder).
func BenchmarkBuild(b *testing.B) {
	for _, n := range []int{10_000, 100_000} {
		keys := make([]string, n)
		for i := range keys {
			keys[i] = fmt.Sprintf("prefix/key-%07d", i)
		}
		b.Run(fmt.Sprintf("keys=%dk/impl=edit", n/1000), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				ed := newTestMap().Edit()
				for i, k := range keys {
					ed.Put(entry{Key: k, Value: i})
				}
				ed.Done()
			}
		})
		b.Run(fmt.Sprintf("keys=%dk/impl=builder", n/1000), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				bl := NewBuilder(entryKeyOf, n)
				for i, k := range keys {
					bl.Add(entry{Key: k, Value: i})
				}
				bl.Done()
			}
		})
	}
}
