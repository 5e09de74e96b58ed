package admin

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/internal/errs"
)

// record is one line of an export: a key, its value, and its lease's
// remaining time to live.
type record struct {
	Key       *string `json:"key,omitempty"`        // the key, when it is valid UTF-8
	KeyBase64 []byte  `json:"key_base64,omitempty"` // the key otherwise
	Value     []byte  `json:"value"`                // base64, as encoding/json writes []byte
	LeaseTTL  int64   `json:"lease_ttl,omitempty"`  // seconds; absent for a key without a lease
}

func (r record) key() string {
	if r.Key != nil {
		return *r.Key
	}
	return string(r.KeyBase64)
}

// Export writes every key under prefix, as it was at one revision, to w as
// JSON lines, one key a line, in key order:
//
//	{"key":"/config/a","value":"dmFsdWU=","lease_ttl":30}
//
// "key" is the whole key (prefix included) when it is valid UTF-8, else
// "key_base64" holds it; "value" is base64; "lease_ttl" is the seconds left
// to the key's lease when it was read, absent for a key without a lease.
// Pages are read at the revision of the first, so the export is one
// snapshot however many keys there are. An empty prefix exports every key
// (of the client's namespace).
//
// Export returns how many keys it wrote. An error says how many were
// written before it; it matches [etcdkit.ErrCompacted] when the snapshot
// revision was compacted while paging, [etcdkit.ErrUnavailable] when etcd
// does not answer, ctx's error when ctx ends, or is w's error. A nil client
// or writer is [etcdkit.ErrInvalidArgument].
func Export(ctx context.Context, c *etcdkit.Client, prefix string, w io.Writer) (n int, err error) {
	if err := checkClient("export", c); err != nil {
		return 0, err
	}
	if w == nil {
		return 0, invalid("export", "nil writer")
	}
	ctx, end := c.Observe(ctx, "export", prefix, "")
	defer func() { end(0, err) }()
	bw := bufio.NewWriter(w)
	ttls := map[int64]int64{}
	kv := etcdkit.NewKV(c, prefix, etcdkit.Bytes())
	for e, err := range kv.List(ctx) {
		if err != nil {
			return n, fmt.Errorf("etcdkit: admin: export %q after %d keys: %w", prefix, n, err)
		}
		rec := newRecord(prefix + e.Key)
		rec.Value = e.Value
		if rec.LeaseTTL, err = leaseTTL(ctx, c, e.Lease, ttls); err != nil {
			return n, fmt.Errorf("etcdkit: admin: export %q after %d keys: %w", prefix, n, err)
		}
		if err := writeRecord(bw, rec); err != nil {
			return n, fmt.Errorf("etcdkit: admin: export %q after %d keys: %w", prefix, n, err)
		}
		n++
	}
	if err := bw.Flush(); err != nil {
		return n, fmt.Errorf("etcdkit: admin: export %q: %w", prefix, err)
	}
	return n, nil
}

func newRecord(key string) record {
	if utf8.ValidString(key) {
		return record{Key: &key}
	}
	return record{KeyBase64: []byte(key)}
}

// writeRecord writes one line; Go's JSON escapes nothing a reader of
// another language would misread, and a line never holds a raw newline.
func writeRecord(w *bufio.Writer, rec record) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	b = append(b, '\n')
	_, err = w.Write(b)
	return err
}

// leaseTTL returns the seconds left to lease id, asking etcd once per lease.
// A lease gone meanwhile counts as none: its keys are gone too.
func leaseTTL(ctx context.Context, c *etcdkit.Client, id int64, cache map[int64]int64) (int64, error) {
	if id == 0 {
		return 0, nil
	}
	if ttl, ok := cache[id]; ok {
		return ttl, nil
	}
	resp, err := c.Raw().TimeToLive(ctx, clientv3.LeaseID(id))
	if err != nil && !errors.Is(err, rpctypes.ErrLeaseNotFound) {
		return 0, wrap(fmt.Sprintf("lease %x time to live", id), ctxErr(ctx, err))
	}
	var ttl int64
	if err == nil && resp.TTL > 0 {
		ttl = resp.TTL
	}
	cache[id] = ttl
	return ttl, nil
}

// Import reads what [Export] wrote and puts every key, in transactions of
// up to 128 operations ([etcdkit.DefaultMaxTxnOps]; fewer when the server
// refuses that many, or when the values are large). The whole input is read
// and checked before anything is sent: a line that is not a record, a key
// that is empty or twice in the input, is [etcdkit.ErrInvalidArgument] with
// nothing written.
//
// Leases are dropped by default: imported keys have no lease, whatever
// "lease_ttl" says. With [KeepLeases], keys with a lease_ttl get a new lease
// of that TTL (one per distinct TTL), which Import does not keep alive: the
// keys go when it expires, unless their owner takes the lease over.
//
// With [IntoEmpty], Import refuses, with [etcdkit.ErrExists] and nothing
// written, when a key under the given prefix exists; and every later
// transaction is made only if no one else wrote under the prefix
// meanwhile, else Import stops with [etcdkit.ErrConflict].
//
// Import returns how many keys it wrote. The transactions are separate: an
// error says how many keys were written before it (a transaction whose
// answer was lost may be written too); it matches [etcdkit.ErrNoSpace] when
// the database is full, [etcdkit.ErrUnavailable] when etcd does not answer,
// ctx's error when ctx ends, or is r's error.
func Import(ctx context.Context, c *etcdkit.Client, r io.Reader, opts ...ImportOption) (n int, err error) {
	var o importOptions
	for _, opt := range opts {
		if opt != nil {
			opt.applyImport(&o)
		}
	}
	if err := checkClient("import", c); err != nil {
		return 0, err
	}
	if r == nil {
		return 0, invalid("import", "nil reader")
	}
	recs, err := readRecords(r, o)
	if err != nil {
		return 0, err
	}
	im := importer{c: c, o: o, leases: map[int64]clientv3.LeaseID{}, maxOps: etcdkit.DefaultMaxTxnOps}
	ctx, end := c.Observe(ctx, "import", "", "")
	n, err = im.run(ctx, recs)
	end(0, err)
	return n, err
}

// readRecords reads and checks the whole input.
func readRecords(r io.Reader, o importOptions) ([]record, error) {
	var recs []record
	seen := map[string]bool{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 64<<20)
	for line := 1; sc.Scan(); line++ {
		raw := bytes.TrimSpace(sc.Bytes())
		if len(raw) == 0 {
			continue
		}
		var rec record
		dec := json.NewDecoder(bytes.NewReader(raw))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&rec); err != nil {
			return nil, invalid("import", "line %d: %v", line, err)
		}
		if err := checkRecord(rec, o, seen); err != nil {
			return nil, invalid("import", "line %d: %v", line, err)
		}
		recs = append(recs, rec)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("etcdkit: admin: import: read: %w", err)
	}
	return recs, nil
}

func checkRecord(rec record, o importOptions, seen map[string]bool) error {
	k := rec.key()
	switch {
	case (rec.Key == nil) == (rec.KeyBase64 == nil):
		return errors.New(`want exactly one of "key" and "key_base64"`)
	case k == "":
		return errors.New("empty key")
	case seen[k]:
		return fmt.Errorf("key %q twice", k)
	case rec.LeaseTTL < 0 || rec.LeaseTTL > clientv3.MaxLeaseTTL:
		return fmt.Errorf("key %q: lease_ttl %d out of range", k, rec.LeaseTTL)
	case o.empty && !strings.HasPrefix(k, o.prefix):
		return fmt.Errorf("key %q is not under %q", k, o.prefix)
	}
	seen[k] = true
	return nil
}

type importer struct {
	c      *etcdkit.Client
	o      importOptions
	leases map[int64]clientv3.LeaseID // by TTL
	maxOps int
	rev    int64 // revision of the last transaction, for IntoEmpty
}

// maxBatchBytes keeps a transaction well under etcd's default request
// limit (1.5 MiB).
const maxBatchBytes = 1 << 20

func (im *importer) run(ctx context.Context, recs []record) (int, error) {
	n := 0
	for n < len(recs) {
		size := im.batch(recs[n:])
		err := im.write(ctx, recs[n:n+size])
		if (errors.Is(err, etcdkit.ErrTooManyOps) || errors.Is(err, etcdkit.ErrTooLarge)) && size > 1 {
			// Refused before it was applied: try smaller transactions.
			im.maxOps = max(1, size/2)
			continue
		}
		if err != nil {
			return n, fmt.Errorf("etcdkit: admin: import after %d keys: %w", n, err)
		}
		n += size
	}
	return n, nil
}

// batch returns how many of recs the next transaction takes.
func (im *importer) batch(recs []record) int {
	size, bytes := 0, 0
	for size < len(recs) && size < im.maxOps {
		bytes += len(recs[size].key()) + len(recs[size].Value) + 16
		if size > 0 && bytes > maxBatchBytes {
			break
		}
		size++
	}
	return size
}

func (im *importer) write(ctx context.Context, recs []record) error {
	ops := make([]clientv3.Op, 0, len(recs))
	for _, rec := range recs {
		var opts []clientv3.OpOption
		if im.o.leases && rec.LeaseTTL > 0 {
			id, err := im.lease(ctx, rec.LeaseTTL)
			if err != nil {
				return err
			}
			opts = append(opts, clientv3.WithLease(id))
		}
		ops = append(ops, clientv3.OpPut(rec.key(), string(rec.Value), opts...))
	}
	txn := im.c.Raw().KV.Txn(ctx)
	if im.o.empty {
		txn = txn.If(im.guard())
	}
	resp, err := txn.Then(ops...).Commit()
	if err != nil {
		return wrap("txn", ctxErr(ctx, err))
	}
	if !resp.Succeeded {
		if im.rev == 0 {
			return &errs.Op{Pkg: "admin", Op: "import", Err: fmt.Errorf("%w: keys exist under %q", etcdkit.ErrExists, im.o.prefix)}
		}
		return &errs.Op{Pkg: "admin", Op: "import", Err: fmt.Errorf("%w: another writer wrote under %q", etcdkit.ErrConflict, im.o.prefix)}
	}
	im.rev = resp.Header.Revision
	return nil
}

// guard holds when nothing under the prefix changed since our last
// transaction (or, before the first, when nothing is there).
func (im *importer) guard() clientv3.Cmp {
	if im.rev == 0 {
		return clientv3.Compare(clientv3.CreateRevision(im.o.prefix), "=", 0).WithPrefix()
	}
	return clientv3.Compare(clientv3.ModRevision(im.o.prefix), "<", im.rev+1).WithPrefix()
}

func (im *importer) lease(ctx context.Context, ttl int64) (clientv3.LeaseID, error) {
	if id, ok := im.leases[ttl]; ok {
		return id, nil
	}
	resp, err := im.c.Raw().Grant(ctx, ttl)
	if err != nil {
		return 0, wrap(fmt.Sprintf("grant lease of %v", time.Duration(ttl)*time.Second), ctxErr(ctx, err))
	}
	im.leases[ttl] = resp.ID
	return resp.ID, nil
}
