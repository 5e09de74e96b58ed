package etcdkit

// EndLockSessions ends every lock session of c with cause, as the
// keep-alive does when it gives up on a lease, without touching the server.
func EndLockSessions(c *Client, cause error) {
	p, err := c.sessions()
	if err != nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, list := range p.byTTL {
		for _, s := range list {
			s.cancel(cause)
		}
	}
}

// SemaphoreHolders is the prefix of the holders' keys of the semaphore
// called name.
func SemaphoreHolders(name string) string { return (&Semaphore{name: name}).holders() }

// SemaphoreLimitKey is the key the limit of the semaphore called name is
// stored at.
func SemaphoreLimitKey(name string) string { return (&Semaphore{name: name}).limitKey() }

// RWMutexKeys is the prefix of the keys of the reader/writer lock called
// name.
func RWMutexKeys(name string) string { return name + kindSep + "rwmutex/" }

// LockOf returns the Lock behind a Leadership.
func LockOf(ld *Leadership) *Lock { return ld.l }

// LockWatched reports whether the watch behind Lock.Lost was started.
func LockWatched(l *Lock) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lost != nil
}
