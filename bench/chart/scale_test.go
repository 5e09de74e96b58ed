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
