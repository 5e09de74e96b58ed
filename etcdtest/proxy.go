package etcdtest

import (
	"errors"
	"net"
	"sync"
	"time"
)

// proxy forwards TCP connections from a member's public address (the one in
// its URLs) to the address etcd listens on, which only the kit knows.
//
// Owning the connections is what makes stops and restarts fast:
//   - While a member restarts, the proxy keeps accepting and holds new
//     connections until etcd listens again. A client that reconnects at once
//     finds the server within milliseconds; it would otherwise be refused and
//     back off for about a second (gRPC's first reconnect delay).
//   - Stopping a member drops its connections at once. etcd's peer server
//     cannot end idle keep-alive connections from other members (its
//     connections reset their read deadline on every read, which defeats
//     net/http's shutdown), so its Close waits a second for them and then
//     leaves their goroutines, and the other members' ends, running.
//
// While the member is stopped, the proxy does not listen: clients are
// refused, as by a server that is down.
//
// Each direction has a gate, closed by a blackhole (see [Proxy]): bytes
// stop flowing that way but the connections stay open, as when a network
// drops packets, and what was held flows again when the gate reopens, as
// TCP retransmits after a partition heals.
//
// A member's peer proxy also reads the HTTP requests that flow through it,
// to learn which member sent each connection, so that one member can be cut
// off from the others (see isolate.go).
type proxy struct {
	addr   string // public, e.g. 127.0.0.1:41234
	target string // where etcd listens

	mu    sync.Mutex
	ln    net.Listener  // nil while closed
	shut  chan struct{} // closed when ln closes
	up    chan struct{} // closed while the target accepts connections
	isUp  bool
	conns map[net.Conn]struct{}
	gen   chan struct{} // closed and replaced each time the connections are dropped

	gates [2]gate // by direction: toTarget, toClient

	peer bool // raft's HTTP flows through it: requests are read for their sender
	cuts cuts // guarded by mu

	wg sync.WaitGroup // accept loop and forwarding goroutines
}

// The two directions of a proxied connection.
const (
	toTarget = iota // from the client to the server
	toClient        // from the server to the client
)

func newProxy(addr, target string) *proxy {
	p := &proxy{addr: addr, target: target, up: make(chan struct{}), conns: map[net.Conn]struct{}{}, gen: make(chan struct{})}
	p.gates[toTarget].init()
	p.gates[toClient].init()
	return p
}

// listenAddr returns the address the proxy listens on, which differs from
// addr when addr has port 0.
func (p *proxy) listenAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return p.addr
	}
	return p.ln.Addr().String()
}

// open starts listening, if not already. Connections wait for resume.
func (p *proxy) open() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		return nil
	}
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		return err
	}
	p.ln, p.shut = ln, make(chan struct{})
	p.wg.Add(1)
	go p.acceptLoop(ln, p.shut)
	return nil
}

// resume lets connections through to the target.
func (p *proxy) resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.isUp {
		close(p.up)
		p.isUp = true
	}
}

// pause drops every connection and makes new ones wait for resume, while
// the target restarts.
func (p *proxy) pause() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.pauseLocked()
}

func (p *proxy) pauseLocked() {
	if p.isUp {
		p.up = make(chan struct{})
		p.isUp = false
	}
	for c := range p.conns {
		c.Close()
		delete(p.conns, c)
	}
	close(p.gen) // frees forwarders held at a closed gate
	p.gen = make(chan struct{})
}

// close stops listening, drops every connection and returns once every
// goroutine of the proxy has ended.
func (p *proxy) close() {
	p.mu.Lock()
	if p.ln != nil {
		p.ln.Close()
		close(p.shut)
		p.ln = nil
	}
	p.pauseLocked()
	p.mu.Unlock()
	p.wg.Wait()
}

func (p *proxy) acceptLoop(ln net.Listener, shut chan struct{}) {
	defer p.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// Out of file descriptors, or the like: try again shortly.
			select {
			case <-shut:
				return
			case <-time.After(10 * time.Millisecond):
				continue
			}
		}
		p.mu.Lock()
		if p.ln != ln {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[c] = struct{}{}
		up, gen := p.up, p.gen
		p.wg.Add(1)
		p.mu.Unlock()
		go p.forward(c, up, shut, gen)
	}
}

// forward waits until the target is up, then copies both ways until either
// side closes.
func (p *proxy) forward(c net.Conn, up, shut, gen chan struct{}) {
	defer p.wg.Done()
	defer p.drop(c)
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case <-up:
	case <-shut:
		return
	case <-timer.C:
		return
	}
	b, err := net.DialTimeout("tcp", p.target, time.Second)
	if err != nil {
		return
	}
	defer p.drop(b)
	p.mu.Lock()
	_, live := p.conns[c] // not dropped by pause or close meanwhile
	if live {
		p.conns[b] = struct{}{}
	}
	p.mu.Unlock()
	if !live {
		return
	}
	done := make(chan struct{})
	ended := make(chan struct{}) // either way ended: the other stops waiting at its gate
	end := sync.OnceFunc(func() { close(ended) })
	l := &link{}
	toSrv := &flow{p: p, dir: toTarget, link: l, stops: [3]chan struct{}{shut, gen, ended}}
	down := &flow{p: p, dir: toClient, link: l, stops: toSrv.stops}
	go func() {
		defer close(done)
		if p.peer {
			toSrv.copyHTTP(b, c)
		} else {
			toSrv.copy(b, c)
		}
		end()
		b.Close()
		c.Close()
	}()
	down.copy(c, b)
	end()
	c.Close()
	b.Close()
	<-done
}

func (p *proxy) drop(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
}

// gate lets bytes through one direction of every connection of a proxy, or
// holds them while closed.
type gate struct {
	mu     sync.Mutex
	closed bool
	open   chan struct{} // closed while the gate is open
}

func (g *gate) init() {
	g.open = make(chan struct{})
	close(g.open)
}

// set closes (blocked) or opens the gate.
func (g *gate) set(blocked bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	switch {
	case blocked && !g.closed:
		g.open = make(chan struct{})
	case !blocked && g.closed:
		close(g.open)
	}
	g.closed = blocked
}

// wait returns true once the gate is open, false if any of the stop
// channels closes first.
func (g *gate) wait(stops ...chan struct{}) bool {
	g.mu.Lock()
	open := g.open
	g.mu.Unlock()
	select {
	case <-open:
		return true
	case <-stops[0]:
	case <-stops[1]:
	case <-stops[2]:
	}
	return false
}
