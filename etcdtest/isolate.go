package etcdtest

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
)

// Isolate cuts member i off from the other members of the cluster, as a
// network partition around it would, and returns a function that heals the
// cut. Clients still reach every member: only the traffic between members
// stops. With a quorum on the other side, the cluster goes on committing
// writes while member i applies none of them; member i soon knows no
// leader, and its pre-vote keeps it from disturbing the others.
//
// Raft's messages flow in both directions on connections that either member
// opens, so Isolate holds, in every member's peer proxy, the connections
// member i opened (each raft request names its sender), and every
// connection to member i's own peer address. Held bytes go nowhere: the
// connections stay open, as when packets are dropped. Healing drops the
// connections that held bytes, as TCP gives up after a long partition; the
// members reconnect within a fraction of a second and member i catches up.
// Peer requests other than raft's (version checks, lease renewals member i
// forwards to the leader) do not name their sender, and pass until the
// connection carrying them carries a raft request too.
//
// The cut stays while member i stops and restarts, and covers learners
// added meanwhile. The returned heal is safe to call more than once and is
// called when the test ends. Isolate fails tb if i is out of range or the
// member never started. Isolate and heal are safe for concurrent use;
// isolating a member twice needs both heals.
func (c *Cluster) Isolate(tb testing.TB, i int) (heal func()) {
	tb.Helper()
	c.cutMu.Lock()
	members := slices.Clone(c.members)
	c.cutMu.Unlock()
	if i < 0 || i >= len(members) {
		tb.Fatalf("etcdtest: isolate member %d: out of range: the cluster has %d members", i, len(members))
	}
	m := members[i]
	id := m.id.Load()
	if id == 0 {
		tb.Fatalf("etcdtest: isolate member %d: it never started, so it has no member ID", i)
	}
	c.cutMu.Lock()
	c.isolated = append(c.isolated, id)
	c.setCutLocked(m, id, 1)
	c.cutMu.Unlock()
	heal = sync.OnceFunc(func() {
		c.cutMu.Lock()
		k := slices.Index(c.isolated, id)
		c.isolated = slices.Delete(c.isolated, k, k+1)
		c.setCutLocked(m, id, -1)
		c.cutMu.Unlock()
	})
	tb.Cleanup(heal)
	return heal
}

// setCutLocked adds (by 1) or removes (by -1) the isolation of member m,
// whose ID is id, in the peer proxy of every member. The caller holds
// c.cutMu.
func (c *Cluster) setCutLocked(m *Server, id uint64, by int) {
	for _, o := range c.members {
		if o == m {
			o.peerProxy().cut(0, by)
		} else {
			o.peerProxy().cut(id, by)
		}
	}
}

// addMember adds a member joining the cluster, cut off from the members
// isolated meanwhile.
func (c *Cluster) addMember(s *Server) {
	c.cutMu.Lock()
	defer c.cutMu.Unlock()
	for _, id := range c.isolated {
		s.peerProxy().cut(id, 1)
	}
	c.members = append(c.members, s)
}

func (s *Server) peerProxy() *proxy { return s.proxies[0] }

// cuts says which connections of a peer proxy are held by isolations.
type cuts struct {
	all    int            // isolations of the proxy's own member: every connection
	from   map[uint64]int // isolations of other members: their connections
	healed chan struct{}  // closed and replaced when an isolation ends
}

// cut adds (by 1) or removes (by -1) an isolation: of the proxy's own
// member when from is 0, else of the member from.
func (p *proxy) cut(from uint64, by int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := &p.cuts
	if cs.from == nil {
		cs.from = map[uint64]int{}
		cs.healed = make(chan struct{})
	}
	if from == 0 {
		cs.all += by
	} else if cs.from[from] += by; cs.from[from] == 0 {
		delete(cs.from, from)
	}
	if by < 0 {
		close(cs.healed) // held connections end
		cs.healed = make(chan struct{})
	}
}

// isCut reports whether a connection from member from is held, and the
// channel closed when an isolation ends.
func (p *proxy) isCut(from uint64) (bool, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	cs := &p.cuts
	return cs.all > 0 || (from != 0 && cs.from[from] > 0), cs.healed
}

// link is what both directions of a proxied connection know about it.
type link struct {
	from atomic.Uint64 // the member that opened it; 0 until known
}

// flow is one direction of a proxied connection.
type flow struct {
	p     *proxy
	dir   int // toTarget or toClient
	link  *link
	stops [3]chan struct{} // shut, gen, ended: the connection ends
}

// send writes b to dst once the proxy's gate lets it through. It returns
// false when the connection must end: it ended, dst failed, or b was held
// by an isolation that has now ended.
func (f *flow) send(dst net.Conn, b []byte) bool {
	shut, gen, ended := f.stops[0], f.stops[1], f.stops[2]
	if !f.p.gates[f.dir].wait(shut, gen, ended) {
		return false
	}
	if cut, healed := f.p.isCut(f.link.from.Load()); cut {
		select {
		case <-healed:
		case <-shut:
		case <-gen:
		case <-ended:
		}
		return false
	}
	_, err := dst.Write(b)
	return err == nil
}

// copy moves bytes from src to dst until either fails or send refuses.
func (f *flow) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !f.send(dst, buf[:n]) {
			return
		}
		if err != nil {
			return
		}
	}
}

// copyHTTP is copy for a peer connection: it reads each HTTP request's
// head and body as they pass, to learn the member that sent it from
// rafthttp's X-Server-From header. A connection comes from one member, so
// the first request that names it tags the connection for good; requests
// that name no one (rafthttp's probes) can come first on it.
func (f *flow) copyHTTP(dst, src net.Conn) {
	rec := &recorder{r: src}
	br := bufio.NewReader(rec)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			if f.flush(dst, rec) && !isClosed(err) {
				f.copy(dst, src) // not HTTP: pass it through
			}
			return
		}
		if from, err := strconv.ParseUint(req.Header.Get("X-Server-From"), 16, 64); err == nil && from != 0 {
			f.link.from.CompareAndSwap(0, from)
		}
		if !f.flush(dst, rec) || !f.passBody(dst, rec, req.Body) {
			return
		}
	}
}

// passBody reads a request's body to its end, sending its bytes as they
// come; it returns false when the connection must end.
func (f *flow) passBody(dst net.Conn, rec *recorder, body io.ReadCloser) bool {
	defer body.Close()
	buf := make([]byte, 32<<10)
	for {
		_, err := body.Read(buf)
		if !f.flush(dst, rec) {
			return false
		}
		if errors.Is(err, io.EOF) {
			return true
		}
		if err != nil {
			return false
		}
	}
}

// flush sends what rec read since the last flush.
func (f *flow) flush(dst net.Conn, rec *recorder) bool {
	if len(rec.buf) == 0 {
		return true
	}
	ok := f.send(dst, rec.buf)
	rec.buf = rec.buf[:0]
	return ok
}

// isClosed reports whether a read error means the connection ended rather
// than it carried something other than HTTP.
func isClosed(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne)
}

// recorder keeps every byte read through it, so that what the HTTP parser
// read (buffered ahead included) is forwarded exactly as it came.
type recorder struct {
	r   io.Reader
	buf []byte
}

func (r *recorder) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.buf = append(r.buf, p[:n]...)
	return n, err
}
