package etcdkit_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/etcdkit/etcdkit"
)

// scribble overwrites every byte of b, as a caller that reuses a buffer
// it was handed would.
func scribble(b []byte) {
	for i := range b {
		b[i] = 'X'
	}
}

// TestBytesBelongToCaller checks the promise of [etcdkit.Bytes]: a []byte
// any read returns is the caller's to change, and changing it changes
// nothing another read sees, nor anything written.
func TestBytesBelongToCaller(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	kv := etcdkit.NewKV(c, testPrefix(t), etcdkit.Bytes())
	ctx := testCtx(t)
	want := []byte("value")
	rev := kvMustPut(t, kv, "k", want)

	t.Run("KV.Get", func(t *testing.T) {
		e, err := kv.Get(ctx, "k")
		require.NoError(t, err)
		scribble(e.Value)
		again, err := kv.Get(ctx, "k")
		require.NoError(t, err)
		assert.Equal(t, want, again.Value)
	})

	t.Run("Mirror.Get", func(t *testing.T) {
		m, err := kv.Mirror(ctx)
		require.NoError(t, err)
		defer m.Close()
		require.NoError(t, m.WaitForRevision(ctx, rev))
		e, ok := m.Get("k")
		require.True(t, ok)
		scribble(e.Value)
		again, ok := m.Get("k")
		require.True(t, ok)
		assert.Equal(t, want, again.Value, "Get after the caller changed its copy")
		assert.Equal(t, want, m.List()[0].Value, "List after the caller changed its copy")
	})

	t.Run("Mirror.List", func(t *testing.T) {
		m, err := kv.Mirror(ctx)
		require.NoError(t, err)
		defer m.Close()
		require.NoError(t, m.WaitForRevision(ctx, rev))
		es := m.List()
		require.Len(t, es, 1)
		scribble(es[0].Value)
		assert.Equal(t, want, m.List()[0].Value, "List after the caller changed its copy")
		e, ok := m.Get("k")
		require.True(t, ok)
		assert.Equal(t, want, e.Value, "Get after the caller changed its copy")
	})

	t.Run("Mirror.OnEntryChange", func(t *testing.T) {
		seen := make(chan []byte, 1)
		m, err := kv.Mirror(ctx, etcdkit.OnEntryChange(func(_ string, _, new *etcdkit.Entry[[]byte]) {
			if new != nil && new.Key == "changed" {
				scribble(new.Value)
				seen <- new.Value
			}
		}))
		require.NoError(t, err)
		defer m.Close()
		rev := kvMustPut(t, kv, "changed", want)
		recv(t, seen, "the change")
		require.NoError(t, m.WaitForRevision(ctx, rev))
		e, ok := m.Get("changed")
		require.True(t, ok)
		assert.Equal(t, want, e.Value, "Get after the callback changed its copy")
	})

	t.Run("Mirror.AddHandler", func(t *testing.T) {
		m, err := kv.Mirror(ctx)
		require.NoError(t, err)
		defer m.Close()
		seen := make(chan []byte, 2)
		record := func(b etcdkit.MirrorBatch[[]byte]) {
			for _, c := range b.Changes {
				if c.New != nil && c.Key == "handled" {
					scribble(c.New.Value)
					seen <- c.New.Value
				}
			}
		}
		<-m.AddHandler(record).Synced()
		<-m.AddHandler(record).Synced()
		rev := kvMustPut(t, kv, "handled", want)
		recv(t, seen, "the change, first handler")
		recv(t, seen, "the change, second handler")
		require.NoError(t, m.WaitForRevision(ctx, rev))
		e, ok := m.Get("handled")
		require.True(t, ok)
		assert.Equal(t, want, e.Value, "Get after the handlers changed their copies")
	})

	t.Run("Live.Load", func(t *testing.T) {
		l, err := kv.Follow(ctx, "k")
		require.NoError(t, err)
		defer l.Close()
		scribble(l.Load())
		assert.Equal(t, want, l.Load())
	})

	t.Run("TxKV.Get", func(t *testing.T) {
		err := c.Atomically(ctx, func(tx *etcdkit.Tx) error {
			h := kv.In(tx)
			v, err := h.Get("k")
			require.NoError(t, err)
			scribble(v)
			again, err := h.Get("k")
			require.NoError(t, err)
			assert.Equal(t, want, again, "second read of the snapshot")

			h.Put("written", want)
			v, err = h.Get("written")
			require.NoError(t, err)
			scribble(v)
			again, err = h.Get("written")
			require.NoError(t, err)
			assert.Equal(t, want, again, "second read of the transaction's own write")
			return nil
		})
		require.NoError(t, err)
		e, err := kv.Get(ctx, "written")
		require.NoError(t, err)
		assert.Equal(t, want, e.Value, "committed value")
	})

	t.Run("TxKV.Put", func(t *testing.T) {
		v := []byte("value")
		err := c.Atomically(ctx, func(tx *etcdkit.Tx) error {
			kv.In(tx).Put("put", v)
			scribble(v) // after Put, before the commit
			return nil
		})
		require.NoError(t, err)
		e, err := kv.Get(ctx, "put")
		require.NoError(t, err)
		assert.Equal(t, want, e.Value, "committed value")
	})
}
