package discovery

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/etcdkit/etcdkit"
)

// CheckOption changes how a check of [WithCheck] turns its results into a
// status.
type CheckOption interface {
	applyCheck(*checkSpec)
}

type checkOptionFunc func(*checkSpec)

func (f checkOptionFunc) applyCheck(s *checkSpec) { f(s) }

// FailuresBeforeCritical sets how many failures in a row make the check
// critical (default 1). It must be at least 1, else Register fails with
// [etcdkit.ErrInvalidArgument].
func FailuresBeforeCritical(n int) CheckOption {
	return checkOptionFunc(func(s *checkSpec) { s.critAfter = n })
}

// FailuresBeforeWarning sets how many failures in a row make the check
// warning, before it turns critical (default 0: no warning, a check goes
// from passing to critical). It must be 0, or from 1 to one less than
// [FailuresBeforeCritical], else Register fails with
// [etcdkit.ErrInvalidArgument].
func FailuresBeforeWarning(n int) CheckOption {
	return checkOptionFunc(func(s *checkSpec) { s.warnAfter = n })
}

// SuccessesBeforePassing sets how many successes in a row make a check
// that failed passing again (default 1). It must be at least 1, else
// Register fails with [etcdkit.ErrInvalidArgument].
func SuccessesBeforePassing(n int) CheckOption {
	return checkOptionFunc(func(s *checkSpec) { s.passAfter = n })
}

// CheckTimeout bounds one run of the check (default: its interval); a run
// that takes longer fails. It must be positive, else Register fails with
// [etcdkit.ErrInvalidArgument].
func CheckTimeout(d time.Duration) CheckOption {
	return checkOptionFunc(func(s *checkSpec) { s.timeout = d })
}

// checkSpec is what WithCheck was given.
type checkSpec struct {
	interval, timeout               time.Duration
	fn                              func(context.Context) error
	warnAfter, critAfter, passAfter int
}

// WithCheck runs fn every interval, from the moment Register returns, for
// as long as the registration is open, and sets the instance's status from
// its results: a nil error is a success, any other a failure whose text
// becomes the status's output. By default one failure makes the check
// critical and one success passing again; a failure never makes a check's
// status better (a critical check that fails once more after a success
// stays critical, whatever [FailuresBeforeWarning] says); [FailuresBeforeWarning],
// [FailuresBeforeCritical] and [SuccessesBeforePassing] change that. The
// instance's status is the worst of its checks' (and of
// [Registration.SetStatus]'s), and each new status is written to etcd
// within one round trip. A check starts in the status of the instance
// given to Register: passing unless it says otherwise.
//
// [HTTPCheck] and [GRPCCheck] make ready-made fns. Register fails with an
// error matching [etcdkit.ErrInvalidArgument], writing nothing, for an
// interval or timeout that is not positive, a nil fn, or thresholds out of
// range.
func WithCheck(interval time.Duration, fn func(ctx context.Context) error, opts ...CheckOption) RegisterOption {
	spec := checkSpec{interval: interval, timeout: interval, fn: fn, critAfter: 1, passAfter: 1}
	for _, opt := range opts {
		if opt != nil {
			opt.applyCheck(&spec)
		}
	}
	err := spec.validate()
	return registerOptionFunc(func(o *registerOptions) {
		if err != nil && o.err == nil {
			o.err = err
		}
		o.checks = append(o.checks, spec)
	})
}

func (s checkSpec) validate() error {
	var bad string
	switch {
	case s.interval <= 0:
		bad = fmt.Sprintf("check interval %v is not positive", s.interval)
	case s.timeout <= 0:
		bad = fmt.Sprintf("check timeout %v is not positive", s.timeout)
	case s.fn == nil:
		bad = "nil check function"
	case s.critAfter < 1:
		bad = fmt.Sprintf("FailuresBeforeCritical(%d) is under 1", s.critAfter)
	case s.passAfter < 1:
		bad = fmt.Sprintf("SuccessesBeforePassing(%d) is under 1", s.passAfter)
	case s.warnAfter < 0 || s.warnAfter > 0 && s.warnAfter >= s.critAfter:
		bad = fmt.Sprintf("FailuresBeforeWarning(%d) is not from 0 to FailuresBeforeCritical(%d)-1", s.warnAfter, s.critAfter)
	default:
		return nil
	}
	return fmt.Errorf("%w: %s", etcdkit.ErrInvalidArgument, bad)
}

// check is one check of one registration. Its state is guarded by the
// registration's mu.
type check struct {
	spec       checkSpec
	status     Status
	output     string
	fails, oks int // in a row
}

// run runs the check every interval until ctx ends, reporting each result.
func (ch *check) run(ctx context.Context, r *Registration) {
	t := time.NewTicker(ch.spec.interval)
	defer t.Stop()
	for {
		err := ch.probe(ctx)
		if ctx.Err() != nil {
			return
		}
		r.mu.Lock()
		ch.record(err)
		r.recompute()
		r.mu.Unlock()
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe runs the check once within its timeout. A panic is a failure,
// not the end of the process the check watches.
func (ch *check) probe(ctx context.Context) (err error) {
	ctx, cancel := context.WithTimeout(ctx, ch.spec.timeout)
	defer cancel()
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("check panicked: %v", p)
		}
	}()
	if err = ch.spec.fn(ctx); err == nil && ctx.Err() != nil {
		err = fmt.Errorf("check took over %v", ch.spec.timeout)
	}
	return err
}

// record applies one result to the check's status, as the thresholds say.
func (ch *check) record(err error) {
	s := ch.spec
	if err == nil {
		ch.oks, ch.fails = ch.oks+1, 0
		if ch.oks >= s.passAfter {
			ch.status, ch.output = Passing, ""
		}
		return
	}
	ch.fails, ch.oks = ch.fails+1, 0
	switch {
	case ch.fails >= s.critAfter:
		ch.status = Critical
	case s.warnAfter > 0 && ch.fails >= s.warnAfter:
		ch.status = max(ch.status, Warning) // a failure makes nothing better
	default:
		return
	}
	ch.output = err.Error()
}

// maxCheckBody bounds how much of an HTTP check's answer is read.
const maxCheckBody = 4 << 10

// HTTPCheck returns a check, for [WithCheck], that GETs rawURL and passes
// on a 2xx answer; any other answer, or none, is a failure saying which.
// The URL's password, if any, never appears in a status. A URL that does
// not parse, or is not http or https, fails every run with an error
// matching [etcdkit.ErrInvalidArgument].
func HTTPCheck(rawURL string) func(ctx context.Context) error {
	u, err := parseCheckURL(rawURL)
	if err != nil {
		return func(context.Context) error { return err }
	}
	client := &http.Client{}
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err != nil {
			return err // a *url.Error, which hides the password
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxCheckBody))
		resp.Body.Close()
		if resp.StatusCode < 200 || resp.StatusCode > 299 {
			return fmt.Errorf("GET %s: %s", u.Redacted(), resp.Status)
		}
		return nil
	}
}

// parseCheckURL parses an HTTP check's URL; its error does not repeat the
// URL, which may hold a password.
func parseCheckURL(rawURL string) (*url.URL, error) {
	u, err := url.Parse(rawURL)
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	if err == nil && u.Scheme != "http" && u.Scheme != "https" {
		err = fmt.Errorf("scheme %q is not http or https", u.Scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: HTTP check URL: %w", etcdkit.ErrInvalidArgument, err)
	}
	return u, nil
}

// GRPCCheck returns a check, for [WithCheck], that asks conn's gRPC health
// service (grpc.health.v1.Health/Check) about service, "" meaning the
// whole server, and passes when the answer is SERVING. conn stays the
// caller's, to close after the registration.
func GRPCCheck(conn grpc.ClientConnInterface, service string) func(ctx context.Context) error {
	if conn == nil {
		err := fmt.Errorf("%w: gRPC check of %q: nil connection", etcdkit.ErrInvalidArgument, service)
		return func(context.Context) error { return err }
	}
	client := healthpb.NewHealthClient(conn)
	return func(ctx context.Context) error {
		resp, err := client.Check(ctx, &healthpb.HealthCheckRequest{Service: service})
		if err != nil {
			return fmt.Errorf("grpc health check of %q: %w", service, err)
		}
		if s := resp.GetStatus(); s != healthpb.HealthCheckResponse_SERVING {
			return fmt.Errorf("grpc health check of %q: %s", service, s)
		}
		return nil
	}
}
