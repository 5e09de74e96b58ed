package etcdkit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/client/v3/namespace"

	"github.com/etcdkit/etcdkit/internal/deadline"
	"github.com/etcdkit/etcdkit/internal/endpoint"
	"github.com/etcdkit/etcdkit/internal/zapslog"
)

// Client is a connection to an etcd cluster. It is safe for concurrent use.
// Make one with [New] or [Wrap], share it, and [Client.Close] it when done:
// Close ends every watcher, lease keep-alive, lock and mirror it started.
type Client struct {
	raw    *clientv3.Client
	owned  bool // Close closes raw only if New made it
	log    *slog.Logger
	bounds *deadline.Bounds
	lim    limits // the server's limits, checked before sending

	obs       Observer                  // nil: nothing is observed
	firstAddr string                    // the address reported when no member answered
	lastAddr  atomic.Pointer[namedAddr] // the last member an observed request reached

	ctx    context.Context // ends when Close is called
	cancel context.CancelFunc
	closed atomic.Bool
	wg     sync.WaitGroup // background goroutines started for this client

	mu        sync.Mutex
	nextID    uint64
	closers   map[uint64]func(context.Context)
	callbacks map[uint64]runningCallback // the caller's functions running now

	closeOnce sync.Once
	closeErr  error

	poolOnce sync.Once
	pool     *sessionPool // the lock sessions, made on first use
	poolErr  error        // why the pool could not be made (the client closed)

	// noRangeStream is set once a member answers RangeStream with
	// Unimplemented (etcd before 3.7, a gRPC proxy, a wrapped KV that
	// does not stream): listings read pages from then on.
	noRangeStream atomic.Bool
}

// New connects to etcd as cfg says and checks that at least one endpoint
// answers within cfg.DialTimeout (or ctx's deadline, if sooner). When none
// does, the error names each endpoint and why it failed (refused, timed out,
// TLS mismatch) and matches [ErrUnavailable]; wrong credentials give
// [ErrAuthFailed].
func New(ctx context.Context, cfg Config) (*Client, error) {
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	dialCtx, cancel := context.WithTimeout(ctx, cfg.DialTimeout)
	defer cancel()
	reachable, err := probeEndpoints(dialCtx, cfg)
	if err != nil {
		return nil, err
	}
	raw, err := clientv3.New(clientv3.Config{
		Endpoints:   cfg.Endpoints,
		DialTimeout: deadline.Remaining(dialCtx, cfg.DialTimeout),
		TLS:         cfg.TLS,
		Username:    cfg.Username,
		Password:    cfg.Password,
		Logger:      zapslog.New(cfg.Logger),
		DialOptions: cfg.dialOptions(),
	})
	if err != nil {
		return nil, connectErr(cfg, err)
	}
	if err := checkStatus(dialCtx, raw, reachable); err != nil {
		raw.Close()
		return nil, connectErr(cfg, err)
	}
	if cfg.Namespace != "" {
		// Replacing the interfaces of the raw client makes everything built on
		// it (concurrency, naming) live in the namespace too.
		raw.KV = namespace.NewKV(raw.KV, cfg.Namespace)
		raw.Watcher = namespace.NewWatcher(raw.Watcher, cfg.Namespace)
		raw.Lease = namespace.NewLease(raw.Lease, cfg.Namespace)
	}
	c := newClient(raw, true, cfg.RequestTimeout, cfg.Logger)
	c.lim = limits{maxTxnOps: cfg.MaxTxnOps, maxRequestBytes: cfg.MaxRequestBytes}
	c.obs, c.firstAddr = cfg.Observer, firstAddress(cfg.Endpoints)
	return c, nil
}

// Wrap adopts a clientv3 client someone else made and owns: [Client.Close]
// ends what this Client started but does not close raw. Calls without a
// deadline are bounded by [DefaultRequestTimeout]; the server limits are
// taken to be etcd's defaults ([DefaultMaxTxnOps], [DefaultMaxRequestBytes]);
// nothing is observed (a [Config.Observer] needs [New], which installs the
// interceptor that tells it which member answered).
func Wrap(raw *clientv3.Client) *Client {
	return newClient(raw, false, DefaultRequestTimeout, slog.New(slog.DiscardHandler))
}

func newClient(raw *clientv3.Client, owned bool, timeout time.Duration, log *slog.Logger) *Client {
	c := &Client{raw: raw, owned: owned, log: log, closers: map[uint64]func(context.Context){},
		callbacks: map[uint64]runningCallback{},
		lim:       limits{maxTxnOps: DefaultMaxTxnOps, maxRequestBytes: DefaultMaxRequestBytes}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.bounds = deadline.New(c.ctx, timeout)
	return c
}

// Raw returns the clientv3 client underneath, for what etcdkit does not
// cover. With a Config.Namespace, its KV, Watcher and Lease are namespaced.
func (c *Client) Raw() *clientv3.Client { return c.raw }

// Close ends every watcher, lease keep-alive, lock and mirror this client
// started, waits for their goroutines, then closes the connection if [New]
// made it. It is safe to call more than once; later calls return the first
// call's result.
//
// Close does not wait for a function of the caller's that etcdkit is running
// (such as an [OnEntryChange] or [OnChange] callback) and that has not
// returned about a second after Close began: it logs, at warn level, which
// callback of which mirror or followed key it left running, and goes on. The
// goroutine that called it ends once it returns.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		c.runClosers()
		c.cancel()
		c.waitBackground()
		if c.owned {
			// clientv3 reports its own cancellation as an error; it is not one.
			if err := c.raw.Close(); err != nil && !errors.Is(err, context.Canceled) {
				c.closeErr = fmt.Errorf("etcdkit: close: %w", err)
			}
		}
	})
	return c.closeErr
}

// closeGrace bounds the clean-up each handle may do on Close (revoke a lease,
// delete a lock key), so that Close never hangs on a dead cluster.
const closeGrace = time.Second

// runClosers lets each live handle clean up, concurrently.
func (c *Client) runClosers() {
	c.mu.Lock()
	fns := c.closers
	c.closers = nil
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), closeGrace)
	defer cancel()
	var wg sync.WaitGroup
	for _, fn := range fns {
		wg.Go(func() { fn(ctx) })
	}
	wg.Wait()
	if ctx.Err() != nil {
		c.logCallbacks() // a handle still starting may be stuck in one
	}
}

// waitBackground waits for the goroutines the client started. Past
// closeGrace, it stops waiting if some are running callbacks: those belong
// to the caller and may never return, while the client's own goroutines end
// promptly once c.ctx is done.
func (c *Client) waitBackground() {
	done := make(chan struct{})
	go func() {
		c.wg.Wait()
		close(done)
	}()
	timer := time.NewTimer(closeGrace)
	defer timer.Stop()
	for {
		select {
		case <-done:
			return
		case <-timer.C:
		}
		if c.logCallbacks() {
			return
		}
		timer.Reset(closeGrace / 10)
	}
}

// runningCallback is a function of the caller's that the client is running.
type runningCallback struct {
	name    string // the option that gave it, e.g. "OnEntryChange"
	op, key string // what runs it: "mirror" and the prefix, "follow" and the key
}

// callback runs fn, which calls a function of the caller's, noting it so
// that Close can tell it is stuck and name it.
func (c *Client) callback(name, op, key string, fn func()) {
	c.mu.Lock()
	c.nextID++
	id := c.nextID
	c.callbacks[id] = runningCallback{name: name, op: op, key: key}
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		delete(c.callbacks, id)
		c.mu.Unlock()
	}()
	fn()
}

// logCallbacks logs the callbacks running now, and reports whether there
// were any. It logs names and keys, never values.
func (c *Client) logCallbacks() bool {
	c.mu.Lock()
	running := slices.Collect(maps.Values(c.callbacks))
	c.mu.Unlock()
	for _, cb := range running {
		c.log.Warn("etcdkit: close: a callback has not returned; not waiting for it",
			"callback", cb.name, "op", cb.op, "key", cb.key)
	}
	return len(running) > 0
}

// onClose registers fn to run when the client closes, and returns the
// function that unregisters it. It fails with ErrClosed once Close began.
func (c *Client) onClose(fn func(context.Context)) (unregister func(), err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closers == nil {
		return nil, ErrClosed
	}
	c.nextID++
	id := c.nextID
	c.closers[id] = fn
	return func() {
		c.mu.Lock()
		delete(c.closers, id)
		c.mu.Unlock()
	}, nil
}

// goBackground runs fn in a goroutine that Close waits for. fn must return
// once c.ctx is done.
func (c *Client) goBackground(fn func()) {
	c.mu.Lock()
	if c.closers == nil {
		// Close has begun: adding to the WaitGroup now could race with its
		// Wait. fn still ends promptly, as Close cancels c.ctx.
		c.mu.Unlock()
		go fn()
		return
	}
	c.wg.Add(1)
	c.mu.Unlock()
	go func() {
		defer c.wg.Done()
		fn()
	}()
}

// Done returns a channel that is closed when [Client.Close] is called, for
// work of the caller's own that should end with the client.
func (c *Client) Done() <-chan struct{} { return c.ctx.Done() }

// checkOpen returns ErrClosed, wrapped with op, once Close was called.
func (c *Client) checkOpen(op, key string) error {
	if c.closed.Load() {
		return &opError{op: op, key: key, err: ErrClosed}
	}
	return nil
}

// sleep waits for d, and returns ctx's error if ctx ends first, or
// ErrClosed if the client closes first.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return ErrClosed
	}
}

// bound bounds ctx by the request timeout when it has no deadline.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	return c.bounds.Bound(ctx)
}

// probeEndpoints dials every endpoint at once and returns those that answer.
// It fails only if none does; its error explains each failure.
func probeEndpoints(ctx context.Context, cfg Config) ([]string, error) {
	reachable, failed := endpoint.ProbeAll(ctx, cfg.Endpoints, cfg.TLS)
	if len(reachable) == 0 {
		return nil, &opError{op: "connect", err: &mappedError{sentinel: ErrUnavailable, cause: joinLines(failed)}}
	}
	for _, err := range failed {
		cfg.Logger.Warn("etcdkit: endpoint unreachable", "error", err)
	}
	return reachable, nil
}

// checkStatus asks each reachable endpoint for its status, at once, so that a
// server that accepts connections but is not a working etcd is caught here
// rather than at the first request. One answer is enough.
func checkStatus(ctx context.Context, raw *clientv3.Client, endpoints []string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errs := make(chan error, len(endpoints))
	for _, ep := range endpoints {
		go func() {
			_, err := raw.Status(ctx, ep)
			if err != nil {
				err = &endpoint.Error{Endpoint: ep, Err: err}
			}
			errs <- err
		}()
	}
	var failed []error
	for range endpoints {
		err := <-errs
		if err == nil {
			return nil
		}
		failed = append(failed, err)
	}
	return joinLines(failed)
}

func connectErr(cfg Config, err error) error {
	op := "connect"
	if cfg.Username != "" {
		op = fmt.Sprintf("connect as %q", cfg.Username)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		err = &mappedError{sentinel: ErrUnavailable, cause: err}
	}
	return opErr(op+" to "+strings.Join(cfg.Endpoints, ","), "", err)
}

// joinedErr lists several errors on one line, separated by "; ".
type joinedErr []error

func joinLines(errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return joinedErr(errs)
}

func (j joinedErr) Error() string {
	parts := make([]string, len(j))
	for i, err := range j {
		parts[i] = err.Error()
	}
	return strings.Join(parts, "; ")
}

func (j joinedErr) Unwrap() []error { return j }
