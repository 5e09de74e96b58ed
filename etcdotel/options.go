package etcdotel

import (
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Option changes what [Observer] or [UnaryClientInterceptor] records and
// where it sends it. Make one with [WithTracerProvider],
// [WithMeterProvider], [WithKeys] or [WithPropagator].
type Option interface{ apply(*config) }

// config is what the options build; newConfig fills in the defaults.
type config struct {
	tracerProvider trace.TracerProvider
	meterProvider  metric.MeterProvider
	propagator     propagation.TextMapPropagator
	keys           bool
}

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithTracerProvider makes spans with tp. Default: otel.GetTracerProvider(),
// the global one, as it is when [Observer] is called.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) { c.tracerProvider = tp })
}

// WithMeterProvider records metrics with mp. Default: otel.GetMeterProvider(),
// the global one, as it is when [Observer] is called.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) { c.meterProvider = mp })
}

// WithKeys records the key each operation and event concerns, relative to
// its prefix, as the span attribute etcdkit.key. Keys often name users,
// tenants or hosts, so they are not recorded by default; even with this
// option, metrics never carry them, and values are never recorded at all.
func WithKeys() Option {
	return optionFunc(func(c *config) { c.keys = true })
}

// WithPropagator makes [UnaryClientInterceptor] write the trace context
// into each request's metadata with p. Default: otel.GetTextMapPropagator(),
// or the W3C Trace Context format (propagation.TraceContext) when no global
// propagator has been set, since the default global one writes nothing.
// [Observer] ignores it.
func WithPropagator(p propagation.TextMapPropagator) Option {
	return optionFunc(func(c *config) { c.propagator = p })
}

func newConfig(opts []Option) config {
	var c config
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.tracerProvider == nil {
		c.tracerProvider = otel.GetTracerProvider()
	}
	if c.meterProvider == nil {
		c.meterProvider = otel.GetMeterProvider()
	}
	if c.propagator == nil {
		c.propagator = otel.GetTextMapPropagator()
		if len(c.propagator.Fields()) == 0 {
			c.propagator = propagation.TraceContext{}
		}
	}
	return c
}
