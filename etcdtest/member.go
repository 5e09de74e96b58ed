package etcdtest

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
	"google.golang.org/grpc"
)

// readyTimeout bounds how long a start or a restart waits for a member to
// serve, so that a broken setup fails the test instead of hanging it.
const readyTimeout = 20 * time.Second

// timing is a member's raft heartbeat and election timeout. Loopback needs
// far less than etcd's defaults (100ms/1s); the lower bound etcd accepts is
// an election timeout of 5 heartbeats.
type timing struct{ tickMs, electionMs uint }

var (
	// A single member elects itself at its first tick: the heartbeat alone
	// sets how fast it starts.
	singleTiming = timing{tickMs: 10, electionMs: 100}
	// Members of a cluster must not suspect each other of being dead when a
	// loaded CI machine (or the race detector) delays a heartbeat, yet a
	// stopped leader must be replaced quickly.
	clusterTiming = timing{tickMs: 20, electionMs: 400}
)

// clusterSeq makes cluster tokens unique within the process; with the pid
// they are unique on the machine, so members of different clusters can
// never join each other even if a port were reused.
var clusterSeq atomic.Uint64

// newMembers reserves ports and directories for an n-member cluster.
func newMembers(n int, o options, tm timing) ([]*Server, error) {
	token := fmt.Sprintf("etcdtest-%d-%d", os.Getpid(), clusterSeq.Add(1))
	ms := make([]*Server, 0, n)
	for i := range n {
		s, err := newServer(fmt.Sprintf("m%d", i), o, tm)
		if err != nil {
			closeMembers(ms)
			return nil, err
		}
		ms = append(ms, s)
	}
	peers := make([]string, n)
	for i, s := range ms {
		peers[i] = s.name + "=" + s.peerURL.String()
	}
	for _, s := range ms {
		s.initialCluster = strings.Join(peers, ",")
		s.token = token
	}
	return ms, nil
}

// newServer makes a stopped member with its own ports and directory.
func newServer(name string, o options, tm timing) (s *Server, err error) {
	s = &Server{name: name, opts: o, timing: tm}
	defer func() {
		if err != nil {
			s.releaseResources()
		}
	}()
	if s.root, err = os.MkdirTemp("", "etcdtest-"); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	scheme := "http"
	if o.tls {
		scheme = "https"
		if s.pki, err = loadPKI(); err != nil {
			return nil, fmt.Errorf("generate TLS certificates: %w", err)
		}
		if s.certs, err = s.pki.writeFiles(filepath.Join(s.root, "tls")); err != nil {
			return nil, err
		}
	}
	var client, peer string
	if client, err = s.holdPort(); err != nil {
		return nil, err
	}
	if peer, err = s.holdPort(); err != nil {
		return nil, err
	}
	s.clientURL = url.URL{Scheme: scheme, Host: client}
	s.peerURL = url.URL{Scheme: "http", Host: peer}
	// etcd listens on ports of its own, which only the proxies know.
	// Peers always go through a proxy: etcd's own shutdown neither waits
	// for nor closes their keep-alive connections (see proxy).
	s.listenClientURL, s.listenPeerURL = s.clientURL, s.peerURL
	if s.listenPeerURL.Host, err = s.holdPort(); err != nil {
		return nil, err
	}
	s.proxies = []*proxy{newProxy(s.peerURL.Host, s.listenPeerURL.Host)}
	s.proxies[0].peer = true
	if o.noClientProxy {
		return s, nil
	}
	if s.listenClientURL.Host, err = s.holdPort(); err != nil {
		return nil, err
	}
	s.proxies = append(s.proxies, newProxy(s.clientURL.Host, s.listenClientURL.Host))
	return s, nil
}

// holdPort reserves a loopback port for the member's whole life and returns
// its address.
func (s *Server) holdPort() (string, error) {
	h, err := holdPort()
	if err != nil {
		return "", err
	}
	s.holds = append(s.holds, h)
	return loopback(h.port), nil
}

func loopback(port int) string { return "127.0.0.1:" + strconv.Itoa(port) }

// startMembers makes n members, starts them together and waits until every
// one serves. On Linux ports cannot be taken from under a member; elsewhere
// a port lost between reservation and bind is retried with new ports.
func startMembers(n int, o options, tm timing) ([]*Server, error) {
	var err error
	for range 3 {
		var ms []*Server
		if ms, err = newMembers(n, o, tm); err != nil {
			return nil, fmt.Errorf("etcdtest: start: %w", err)
		}
		if err = bootMembers(ms); err == nil {
			return ms, nil
		}
		closeMembers(ms)
		if !errors.Is(err, syscall.EADDRINUSE) {
			break
		}
	}
	return nil, err
}

func bootMembers(ms []*Server) error {
	deadline := time.Now().Add(readyTimeout)
	for _, s := range ms {
		if err := s.startInstance(); err != nil {
			return err
		}
	}
	for _, s := range ms {
		if err := s.waitReady(deadline); err != nil {
			return err
		}
	}
	return nil
}

// closeMembers closes members concurrently, and returns once all are
// closed.
func closeMembers(ms []*Server) error {
	errs := make([]error, len(ms))
	var wg sync.WaitGroup
	for i, s := range ms {
		wg.Go(func() { errs[i] = s.Close() })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// instance is one run of a member, from StartEtcd to Close.
type instance struct {
	etcd *embed.Etcd

	mu       sync.Mutex
	grpcs    []*grpc.Server // etcd's client-facing gRPC servers
	stopping bool
}

// registerGRPC is etcd's ServiceRegister hook: it hands us each gRPC server
// it creates, which lets stop end client streams at once (see stop).
func (in *instance) registerGRPC(gs *grpc.Server) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if !in.stopping {
		in.grpcs = append(in.grpcs, gs)
	}
}

// stop shuts etcd down and returns once every goroutine of the member is
// gone. Leadership is not handed over: the caller does that first, if it
// wants to, while peers are still reachable.
//
// embed's Close stops gRPC gracefully, which waits up to its request
// timeout (over 5s) while a client holds a stream open, as every watcher
// and lease keep-alive does; stopping the gRPC servers hard first makes a
// stop take milliseconds. HardStop before Close keeps Close from trying a
// leadership transfer that cannot succeed any more.
func (in *instance) stop() {
	in.mu.Lock()
	in.stopping = true
	grpcs := in.grpcs
	in.mu.Unlock()
	for _, gs := range grpcs {
		gs.Stop()
	}
	in.etcd.Server.HardStop()
	in.etcd.Close()
	<-in.etcd.Server.StopNotify()
}

// embedConfig is the etcd configuration of every run of the member.
func (s *Server) embedConfig(in *instance) *embed.Config {
	cfg := embed.NewConfig()
	cfg.Name = s.name
	cfg.Dir = filepath.Join(s.root, "data")
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())

	// Behind proxies, etcd listens where only they connect, and tells
	// clients and peers the public addresses.
	cfg.ListenClientUrls = []url.URL{s.listenClientURL}
	cfg.AdvertiseClientUrls = []url.URL{s.clientURL}
	cfg.ListenPeerUrls = []url.URL{s.listenPeerURL}
	cfg.AdvertisePeerUrls = []url.URL{s.peerURL}
	cfg.InitialCluster = s.initialCluster
	cfg.InitialClusterToken = s.token
	cfg.ClusterState = s.joinState() // ignored once data exists

	cfg.TickMs = s.timing.tickMs
	cfg.ElectionMs = s.timing.electionMs
	cfg.UnsafeNoFsync = true // data need not survive a power cut
	cfg.SnapshotCount = 1000 // bounds the WAL replayed by a restart
	cfg.EnableGRPCGateway = false
	cfg.BcryptCost = 4 // bcrypt.MinCost: authenticating costs microseconds, not 50ms
	cfg.ServiceRegister = in.registerGRPC

	if s.opts.tls {
		cfg.ClientTLSInfo.CertFile = s.certs.cert
		cfg.ClientTLSInfo.KeyFile = s.certs.key
		if s.opts.clientCertAuth {
			cfg.ClientTLSInfo.TrustedCAFile = s.certs.ca
			cfg.ClientTLSInfo.ClientCertAuth = true
		}
	}
	for _, hook := range s.opts.hooks {
		hook(cfg)
	}
	return cfg
}

// startInstance starts etcd without waiting for it to serve. The proxies
// listen first, so that peers and clients that connect meanwhile wait
// instead of being refused. The caller holds s.life.
func (s *Server) startInstance() error {
	for _, p := range s.proxies {
		if err := p.open(); err != nil {
			s.closeProxies()
			return fmt.Errorf("etcdtest: start member %s: listen on %s: %w", s.name, p.addr, err)
		}
	}
	in := &instance{}
	e, err := embed.StartEtcd(s.embedConfig(in))
	if err != nil {
		s.closeProxies()
		return fmt.Errorf("etcdtest: start member %s on %s: %w", s.name, s.clientURL.String(), err)
	}
	in.etcd = e
	s.id.Store(uint64(e.Server.MemberID()))
	s.mu.Lock()
	s.cur = in
	s.mu.Unlock()
	// etcd's listeners are bound once StartEtcd returns: connections queue
	// in their backlog until etcd serves.
	for _, p := range s.proxies {
		p.resume()
	}
	return nil
}

// waitReady waits until the running instance serves clients, which for etcd
// means it has joined the cluster and a leader exists.
func (s *Server) waitReady(deadline time.Time) error {
	in := s.current()
	if in == nil {
		return fmt.Errorf("etcdtest: member %s is not running", s.name)
	}
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	select {
	case <-in.etcd.Server.ReadyNotify():
		return nil
	case err, ok := <-in.etcd.Err():
		if !ok {
			err = errors.New("it stopped")
		}
		return fmt.Errorf("etcdtest: member %s failed while starting: %w", s.name, err)
	case <-in.etcd.Server.StopNotify():
		return fmt.Errorf("etcdtest: member %s stopped while starting", s.name)
	case <-timer.C:
		return fmt.Errorf("etcdtest: member %s (%s) not ready after %v: is a quorum of its cluster running?",
			s.name, s.clientURL.String(), readyTimeout)
	}
}

// current returns the running instance, or nil while stopped.
func (s *Server) current() *instance {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cur
}

// stopMode says what a stop is for.
type stopMode int

const (
	stopKeep    stopMode = iota // Stop: hand leadership over, refuse clients
	stopRestart                 // Restart: hand leadership over, hold clients
	stopClose                   // Close: the whole cluster may be going away
)

// stopInstance stops the running instance, if any, and returns once it is
// fully stopped. The caller holds s.life.
func (s *Server) stopInstance(mode stopMode) {
	s.mu.Lock()
	in := s.cur
	s.cur = nil
	s.mu.Unlock()
	if in != nil && mode != stopClose {
		// Best effort, and only while peers are still reachable: it fails
		// when no other member is connected, and then an election follows.
		_ = in.etcd.Server.TryTransferLeadershipOnShutdown()
	}
	if mode == stopRestart {
		for _, p := range s.proxies {
			p.pause()
		}
	} else {
		s.closeProxies()
	}
	if in != nil {
		in.stop()
	}
}

func (s *Server) closeProxies() {
	for _, p := range s.proxies {
		p.close()
	}
}

// releaseResources gives back the ports and removes the directory.
func (s *Server) releaseResources() error {
	for _, h := range s.holds {
		h.release()
	}
	if s.root == "" {
		return nil
	}
	if err := os.RemoveAll(s.root); err != nil {
		return fmt.Errorf("etcdtest: remove data of member %s: %w", s.name, err)
	}
	return nil
}
