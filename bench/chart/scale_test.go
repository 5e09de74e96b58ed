package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseBenchLine(t *testing.T) {
	b, ok := parseBenchLine("BenchmarkScaleLock/waiters=10/impl=raw-2        \t     130\t  14294089 ns/op\t         1.138 events/handover\t         4.992 rpcs/handover")
	require.True(t, ok)
	assert.Equal(t, "BenchmarkScaleLock/waiters=10/impl=raw", b.name)
	assert.InDelta(t, 0.014294089, b.metrics["sec/op"], 1e-12)
	assert.Equal(t, 1.138, b.metrics["events/handover"])
	assert.Equal(t, 4.992, b.metrics["rpcs/handover"])

	for _, line := range []string{
		"goos: linux",
		"PASS",
		"--- FAIL: BenchmarkPutMany/impl=raw-serial",
		"    bulk_test.go:47: rpc error: code = Unavailable",
		"BenchmarkPutMany/impl=raw-serial",
		"BenchmarkX-2 \t notanumber \t 12 ns/op",
		"BenchmarkX-2 \t 10 \t 12 ns/op \t 3",
	} {
		_, ok := parseBenchLine(line)
		assert.False(t, ok, line)
	}
}

func TestParseBenchKeepsNamesWithDigits(t *testing.T) {
	b, ok := parseBenchLine("BenchmarkPutMany/impl=raw-32-2 \t 1 \t 2425560940 ns/op \t 4123 keys/s")
	require.True(t, ok)
	assert.Equal(t, "BenchmarkPutMany/impl=raw-32", b.name)
}

func TestSplitName(t *testing.T) {
	n, ok := splitName("BenchmarkScaleKV/keys=1M/op=get/impl=etcdkit")
	require.True(t, ok)
	assert.Equal(t, benchName{series: "ScaleKV", sizeKey: "keys", size: "1M", impl: "etcdkit", group: "get"}, n)

	_, ok = splitName("BenchmarkPutMany/impl=etcdkit")
	assert.False(t, ok, "no size: not a scaling series")
}

func TestParseSize(t *testing.T) {
	for s, want := range map[string]float64{"10": 10, "1k": 1e3, "100k": 1e5, "1M": 1e6} {
		got, err := parseSize(s)
		require.NoError(t, err, s)
		assert.Equal(t, want, got, s)
	}
	_, err := parseSize("many")
	assert.Error(t, err)
}

// A later file replaces the same benchmark of an earlier one, and the
// points are the medians of their repetitions, ordered by size.
func TestChartsMedianAndLaterFileWins(t *testing.T) {
	first, err := parseBench(strings.NewReader(`
BenchmarkScaleList/keys=10k/impl=raw-2 	 1 	 100 ns/op 	 8 B/op
BenchmarkScaleList/keys=1k/impl=raw-2 	 1 	 10 ns/op
BenchmarkScaleList/keys=1k/impl=raw-2 	 1 	 30 ns/op
BenchmarkScaleList/keys=1k/impl=raw-2 	 1 	 20 ns/op
BenchmarkScaleList/keys=1k/impl=etcdkit-2 	 1 	 40 ns/op
`))
	require.NoError(t, err)
	second, err := parseBench(strings.NewReader("BenchmarkScaleList/keys=10k/impl=raw-2 \t 1 \t 500 ns/op\n"))
	require.NoError(t, err)
	s := samples{values: map[string]map[string][]float64{}}
	s.replace(first)
	s.replace(second)

	cs, err := charts(s)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	c := cs[0]
	assert.Equal(t, "scale-list.png", c.fileName())
	assert.Equal(t, []string{"raw", "etcdkit"}, c.impls)
	require.Len(t, c.panels, 1, "only sec/op: B/op is left out")
	raw := c.panels[0].lines[0]
	require.Len(t, raw.points, 2)
	assert.Equal(t, "1k", raw.points[0].label)
	assert.InDelta(t, 20e-9, raw.points[0].y, 1e-15, "median of 10, 30, 20")
	assert.InDelta(t, 500e-9, raw.points[1].y, 1e-15, "the later file's 500 replaces 100")
}

// A metric with the same value at every point (one watch stream) gets no
// panel; B/op and allocs/op get none either.
func TestChartsLeaveOutConstantMetrics(t *testing.T) {
	s, err := parseBench(strings.NewReader(`
BenchmarkScaleFollow/keys=10/impl=raw-2 	 1 	 100 ns/op 	 1.000 streams 	 1.000 watches/key 	 8 B/op 	 2 allocs/op
BenchmarkScaleFollow/keys=100/impl=raw-2 	 1 	 100 ns/op 	 1.000 streams 	 0.5 watches/key 	 9 B/op 	 3 allocs/op
`))
	require.NoError(t, err)
	cs, err := charts(s)
	require.NoError(t, err)
	require.Len(t, cs, 1)
	var units []string
	for _, p := range cs[0].panels {
		units = append(units, p.unit)
	}
	assert.Equal(t, []string{"watches/key"}, units, "sec/op and streams are the same everywhere")
}

// The y axis is logarithmic when the values span more than 20×, linear
// from 0 otherwise.
func TestYAxisScale(t *testing.T) {
	panel := func(ys ...float64) linePanel {
		l := line{impl: "raw"}
		for i, y := range ys {
			l.points = append(l.points, point{x: float64(i + 1), y: y})
		}
		return linePanel{unit: "sec/op", lines: []line{l}}
	}
	a := newYAxis(panel(0.075, 28))
	assert.True(t, a.log)
	assert.LessOrEqual(t, a.lo, 0.075)
	assert.GreaterOrEqual(t, a.hi, 28.0)

	a = newYAxis(panel(0.1, 1.9))
	assert.False(t, a.log)
	assert.Equal(t, 0.0, a.lo)
	assert.GreaterOrEqual(t, a.hi, 1.9)
	assert.Equal(t, "500ms", a.label("sec/op", 0.5))
	assert.Equal(t, "20k", a.label("heap-B/key", 20000))
}
