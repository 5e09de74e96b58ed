package etcdkit_test

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/etcdkit/etcdkit"
)

func TestRWMutexReadersShareWriterExcludes(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	a, b, raw := srv.Client(t), srv.Client(t), srv.RawClient(t)
	name := lockName(t)
	ma, mb := a.RWMutex(name), b.RWMutex(name)

	// Many readers at once, from both clients.
	var readers []*etcdkit.Lock
	for i := range 6 {
		m := ma
		if i%2 == 1 {
			m = mb
		}
		r, err := m.TryRLock(t.Context())
		if err != nil {
			t.Fatalf("read lock #%d while only readers hold: %v", i+1, err)
		}
		readers = append(readers, r)
	}
	if _, err := mb.TryLock(t.Context()); !errors.Is(err, etcdkit.ErrLocked) {
		t.Errorf("write TryLock while readers hold = %v, want ErrLocked", err)
	}
	if n := len(lockKeysUnder(t, raw, name+"/")); n != len(readers) {
		t.Errorf("%d keys after a failed write TryLock, want the %d readers'", n, len(readers))
	}

	// A writer waits for all readers; readers coming after it wait for it.
	wrote := make(chan *etcdkit.Lock, 1)
	go func() {
		w, err := mb.Lock(t.Context())
		if err != nil {
			t.Error(err)
			close(wrote)
			return
		}
		wrote <- w
	}()
	lockWaitKeys(t, raw, name+"/", len(readers)+1)
	if _, err := ma.TryRLock(t.Context()); !errors.Is(err, etcdkit.ErrLocked) {
		t.Errorf("read TryLock with a writer waiting = %v, want ErrLocked", err)
	}
	for i, r := range readers {
		select {
		case <-wrote:
			t.Fatalf("writer got the lock with %d readers still holding", len(readers)-i)
		default:
		}
		if err := r.Unlock(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	var w *etcdkit.Lock
	select {
	case w = <-wrote:
	case <-time.After(20 * time.Second):
		t.Fatal("writer not granted after the readers left")
	}
	if w == nil {
		t.FailNow()
	}
	if _, err := ma.TryRLock(t.Context()); !errors.Is(err, etcdkit.ErrLocked) {
		t.Errorf("read TryLock while a writer holds = %v, want ErrLocked", err)
	}
	if _, err := ma.TryLock(t.Context()); !errors.Is(err, etcdkit.ErrLocked) {
		t.Errorf("write TryLock while a writer holds = %v, want ErrLocked", err)
	}
	if err := w.Unlock(t.Context()); err != nil {
		t.Fatal(err)
	}
	if keys := lockKeysUnder(t, raw, name+"/"); len(keys) != 0 {
		t.Errorf("keys after all unlocked = %q", keys)
	}
}

func TestRWMutexStress(t *testing.T) {
	t.Parallel()
	srv := lockServer(t)
	name := lockName(t)
	var readers, writers, maxReaders atomic.Int32
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 2 {
		m := srv.Client(t).RWMutex(name)
		for j := range 4 {
			write := j == 0
			wg.Go(func() {
				for range 5 {
					if err := rwRound(t, m, write, &readers, &writers, &maxReaders); err != nil {
						errs <- fmt.Errorf("client %d worker %d: %w", i, j, err)
						return
					}
				}
			})
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// rwRound takes a read or write hold and checks who else holds.
func rwRound(t *testing.T, m *etcdkit.RWMutex, write bool, readers, writers, maxReaders *atomic.Int32) error {
	if write {
		w, err := m.Lock(t.Context())
		if err != nil {
			return err
		}
		if n := writers.Add(1); n != 1 || readers.Load() != 0 {
			return fmt.Errorf("writer holds with %d writers and %d readers", n, readers.Load())
		}
		time.Sleep(time.Millisecond)
		writers.Add(-1)
		return w.Unlock(t.Context())
	}
	r, err := m.RLock(t.Context())
	if err != nil {
		return err
	}
	n := readers.Add(1)
	for p := maxReaders.Load(); n > p && !maxReaders.CompareAndSwap(p, n); p = maxReaders.Load() {
	}
	if writers.Load() != 0 {
		return fmt.Errorf("reader holds with a writer")
	}
	time.Sleep(time.Millisecond)
	readers.Add(-1)
	return r.Unlock(t.Context())
}
