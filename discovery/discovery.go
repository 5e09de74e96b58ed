package discovery

import (
	"encoding/json"
	"fmt"
	"strings"
	"unicode"

	"github.com/etcdkit/etcdkit"
	"github.com/etcdkit/etcdkit/internal/errs"
)

// InstanceOf is one instance of a service: where it listens, and metadata
// of type M, stored as JSON. Most users need only [Instance].
type InstanceOf[M any] struct {
	// ID names the instance within its service: unique, not empty, no '/'.
	ID string
	// Addr is where clients reach it, such as "10.0.0.7:9000"; not empty.
	Addr string
	// Metadata is stored as JSON beside Addr; etcd's resolver ignores it.
	Metadata M
	// Health is the instance's status, stored beside Metadata. [Register]
	// stores it as the instance's first status: the zero Health is
	// passing. An instance registered without a status reads as passing.
	Health Health
}

// Instance is an instance whose metadata, if any, is a map of strings.
type Instance = InstanceOf[map[string]string]

// record is the value etcd's naming/endpoints package stores for an
// endpoint (its internal.Update): Op 0 means "add".
// Health is this package's own field, which etcd's resolver ignores; it is
// left out while the instance is passing with nothing to say, so that such
// a record reads exactly as etcd's endpoints.Manager writes it.
type record[M any] struct {
	Op       uint8
	Addr     string
	Metadata M
	Health   *Health `json:",omitempty"`
}

// recordCodec reads and writes records; it refuses a record without an
// address, which no resolver could dial.
type recordCodec[M any] struct{}

func (recordCodec[M]) Encode(r record[M]) ([]byte, error) { return json.Marshal(r) }

func (recordCodec[M]) Decode(b []byte) (record[M], error) {
	var r record[M]
	if err := json.Unmarshal(b, &r); err != nil {
		return record[M]{}, err
	}
	if r.Addr == "" {
		return record[M]{}, fmt.Errorf("no Addr in %d bytes", len(b))
	}
	return r, nil
}

// instances returns the KV of one service's instances: a key is an ID.
func instances[M any](c *etcdkit.Client, service string) *etcdkit.KV[record[M]] {
	return etcdkit.NewKV[record[M]](c, service+"/", recordCodec[M]{})
}

// instanceOf makes the instance stored at id.
func instanceOf[M any](id string, r record[M]) InstanceOf[M] {
	return InstanceOf[M]{ID: id, Addr: r.Addr, Metadata: r.Metadata, Health: healthOf(r.Health)}
}

// validID reports whether a key under a service's prefix is one of its
// instances: a key with a '/' belongs to a service nested under it.
func validID(id string) bool { return id != "" && !strings.Contains(id, "/") }

// checkService validates a service name: not empty, and without a leading
// or trailing '/', which etcd's resolver could not reach ("etcd:///svc"
// resolves the keys under "svc/").
func checkService(op, service string) error {
	if service == "" {
		return &errs.Op{Op: op, Err: fmt.Errorf("%w: empty service name", etcdkit.ErrInvalidArgument)}
	}
	if strings.HasPrefix(service, "/") || strings.HasSuffix(service, "/") {
		return &errs.Op{Op: op, Key: service, Err: fmt.Errorf("%w: service name %q starts or ends with '/'", etcdkit.ErrInvalidArgument, service)}
	}
	return nil
}

// checkInstance validates what Register needs of an instance.
func checkInstance[M any](op, service string, inst InstanceOf[M]) error {
	if err := checkService(op, service); err != nil {
		return err
	}
	key := service + "/" + inst.ID
	switch {
	case inst.ID == "":
		return &errs.Op{Op: op, Key: key, Err: fmt.Errorf("%w: empty instance ID", etcdkit.ErrInvalidArgument)}
	case strings.Contains(inst.ID, "/"):
		return &errs.Op{Op: op, Key: key, Err: fmt.Errorf("%w: instance ID %q contains '/'", etcdkit.ErrInvalidArgument, inst.ID)}
	case inst.Addr == "":
		return &errs.Op{Op: op, Key: key, Err: fmt.Errorf("%w: instance %q has an empty Addr", etcdkit.ErrInvalidArgument, inst.ID)}
	case strings.IndexFunc(inst.Addr, badAddrRune) >= 0:
		return &errs.Op{Op: op, Key: key, Err: fmt.Errorf("%w: instance %q has an address with a space or control character: %q", etcdkit.ErrInvalidArgument, inst.ID, inst.Addr)}
	case !inst.Health.Status.valid():
		return &errs.Op{Op: op, Key: key, Err: fmt.Errorf("%w: instance %q has status %d", etcdkit.ErrInvalidArgument, inst.ID, uint8(inst.Health.Status))}
	}
	return nil
}

// badAddrRune reports whether r has no place in an address a client dials.
func badAddrRune(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }
