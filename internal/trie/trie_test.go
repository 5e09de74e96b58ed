package trie

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// entry is a value that holds its key, as the Mirror's entries do.
type entry struct {
	Key   string
	Value int
	Batch int
}

func newTestMap() Map[entry] { return New(func(e *entry) string { return e.Key }) }

// TestTrie applies random puts and deletes in batches to a trie and to a Go
// map, and checks after each batch that the trie holds exactly the map and
// that every earlier version is unchanged. The hashes run from the real
// maphash to ones that put many keys in one slot, or all keys in one
// collision node, so every shape of node is made and unmade.
func TestTrie(t *testing.T) {
	hashes := map[string]func(string) uint64{
		"maphash": nil,
		// 4 distinct hashes: deep paths down to shared collision nodes.
		"four": func(k string) uint64 { return uint64(len(k)%4) * 0x9e3779b97f4a7c15 },
		// One hash: every key in one collision node.
		"one": func(string) uint64 { return 42 },
		// Low bits equal: every key one level down in slot 0, then spread.
		"low-zero": func(k string) uint64 { return uint64(len(k)) << 5 },
	}
	for name, h := range hashes {
		t.Run(name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(len(name))))
			tr := newTestMap()
			tr.testHash = h
			model := map[string]int{}
			type version struct {
				t     Map[entry]
				model map[string]int
			}
			var versions []version
			for batch := range 200 {
				ed := tr.Edit()
				for range 1 + r.IntN(40) {
					key := fmt.Sprintf("k%d", r.IntN(300))
					if r.IntN(3) == 0 {
						ed.Delete(key)
						delete(model, key)
					} else {
						v := r.Int()
						ed.Put(entry{Key: key, Value: v, Batch: batch})
						model[key] = v
					}
				}
				tr = ed.Done()
				checkTrie(t, tr, model)
				versions = append(versions, version{tr, maps.Clone(model)})
			}
			for i, v := range versions {
				require.True(t, equalTrie(v.t, v.model), "version %d changed after later edits", i)
			}
		})
	}
}

// TestTrieEmptied deletes every key: the trie ends with an empty root.
func TestTrieEmptied(t *testing.T) {
	tr := newTestMap()
	ed := tr.Edit()
	for i := range 1000 {
		ed.Put(entry{Key: fmt.Sprint(i), Value: i})
	}
	tr = ed.Done()
	ed = tr.Edit()
	for i := range 1000 {
		ed.Delete(fmt.Sprint(i))
	}
	empty := ed.Done()
	assert.Zero(t, empty.len, "after deleting every key")
	assert.Zero(t, empty.root.nodeMap, "after deleting every key: the root's sub-nodes")
	assert.Empty(t, empty.root.leaves, "after deleting every key: the root's values")
	assert.Empty(t, empty.root.nodes, "after deleting every key: the root's sub-nodes")
	assert.Equal(t, 1000, tr.len, "the version before the deletes")
	assert.NotNil(t, tr.Get("999"), "the version before the deletes")
}

func checkTrie(t *testing.T, tr Map[entry], model map[string]int) {
	t.Helper()
	if !equalTrie(tr, model) {
		var got []string
		tr.Each(func(e *entry) bool { got = append(got, fmt.Sprintf("%s=%d", e.Key, e.Value)); return true })
		slices.Sort(got)
		require.Failf(t, "the trie does not hold the model", "trie (len %d) = %v, want %d keys %v", tr.len, got, len(model), model)
	}
	for i := range 50 {
		key := fmt.Sprintf("missing%d", i)
		require.Nil(t, tr.Get(key), "get(%q) found an entry that was never put", key)
	}
}

// equalTrie says whether tr holds exactly model, checked both ways.
func equalTrie(tr Map[entry], model map[string]int) bool {
	if tr.len != len(model) {
		return false
	}
	for k, v := range model {
		if e := tr.Get(k); e == nil || e.Value != v {
			return false
		}
	}
	n := 0
	ok := true
	tr.Each(func(e *entry) bool {
		n++
		v, in := model[e.Key]
		ok = in && v == e.Value
		return ok
	})
	return ok && n == len(model)
}

// TestGetAll: GetAll answers as Get does, for keys present and missing,
// also in collision nodes and beyond one batch of lanes, with the hashes
// given or not.
func TestGetAll(t *testing.T) {
	for _, collide := range []bool{false, true} {
		tr := newTestMap()
		if collide {
			tr.testHash = func(k string) uint64 { return uint64(len(k) % 2) }
		}
		ed := tr.Edit()
		for i := range 100 {
			ed.Put(entry{Key: strconv.Itoa(i), Value: i})
		}
		tr = ed.Done()
		var keys []string
		var hashes []uint64
		for i := range 150 {
			keys = append(keys, strconv.Itoa(i*3%200))
			hashes = append(hashes, Hash(keys[i]))
		}
		for _, given := range [][]uint64{nil, hashes} {
			out := make([]*entry, len(keys))
			tr.GetAll(keys, given, out)
			for i, k := range keys {
				require.Same(t, tr.Get(k), out[i], "collide=%v, hashes given=%v: GetAll(%q)", collide, given != nil, k)
			}
		}
	}
}

// BenchmarkGet looks up 10 random keys of 100,000, one Get each
// (impl=get) and with one GetAll (impl=getall).
func BenchmarkGet(b *testing.B) {
	tr := newTestMap()
	ed := tr.Edit()
	const n = 100_000
	for i := range n {
		ed.Put(entry{Key: fmt.Sprintf("prefix/key-%06d", i), Value: i})
	}
	tr = ed.Done()
	sets := make([][]string, 10_000)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range sets {
		for range 10 {
			sets[i] = append(sets[i], fmt.Sprintf("prefix/key-%06d", r.IntN(n)))
		}
	}
	out := make([]*entry, 10)
	b.Run("impl=get", func(b *testing.B) {
		i := 0
		for b.Loop() {
			for j, k := range sets[i%len(sets)] {
				out[j] = tr.Get(k)
			}
			i++
		}
	})
	b.Run("impl=getall", func(b *testing.B) {
		i := 0
		for b.Loop() {
			tr.GetAll(sets[i%len(sets)], nil, out)
			i++
		}
	})
}
