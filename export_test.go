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
