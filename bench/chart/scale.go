package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// sizeKeys are the name components that carry a scaling series' size.
var sizeKeys = []string{"keys", "waiters", "items", "handles"}

// skipUnits are left out of the scaling charts: the tables report them, and
// they grow with the work each op does rather than with the size.
var skipUnits = map[string]bool{"B/op": true, "allocs/op": true}

// benchLine is one result line of go test -bench: the name without its
// GOMAXPROCS suffix, and each metric's value by unit, ns/op as sec/op.
type benchLine struct {
	name    string
	metrics map[string]float64
}

// parseBenchLine reads one line of go test -bench output. ok is false for
// any other line (headers, PASS, --- FAIL and the logs under it).
//
// The "-N" suffix go test adds for GOMAXPROCS N > 1 is removed; with
// GOMAXPROCS 1 there is none, and a name that ends in "-digits" of its own
// loses them too.
func parseBenchLine(line string) (benchLine, bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
		return benchLine{}, false
	}
	if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
		return benchLine{}, false
	}
	b := benchLine{name: procSuffix.ReplaceAllString(f[0], ""), metrics: map[string]float64{}}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return benchLine{}, false
		}
		unit := f[i+1]
		if unit == "ns/op" {
			v, unit = v*1e-9, "sec/op"
		}
		b.metrics[unit] = v
	}
	return b, true
}

// samples holds every repetition's value of each benchmark and unit, with
// the benchmark names in the order they first appear.
type samples struct {
	names  []string
	values map[string]map[string][]float64 // name → unit → values
}

// readSamples reads go test -bench outputs. A benchmark found in a later file
// replaces the same benchmark of the earlier ones, so that a rerun of some
// series after a fix supersedes the first run's figures for those alone.
func readSamples(files []string) (samples, error) {
	s := samples{values: map[string]map[string][]float64{}}
	for _, file := range files {
		f, err := os.Open(file)
		if err != nil {
			return s, err
		}
		got, err := parseBench(f)
		f.Close()
		if err != nil {
			return s, fmt.Errorf("%s: %w", file, err)
		}
		s.replace(got)
	}
	return s, nil
}

// replace adds got's benchmarks to s, in place of any of the same name.
func (s *samples) replace(got samples) {
	for _, name := range got.names {
		if _, seen := s.values[name]; !seen {
			s.names = append(s.names, name)
		}
		s.values[name] = got.values[name]
	}
}

// parseBench collects the samples of one go test -bench output.
func parseBench(r io.Reader) (samples, error) {
	s := samples{values: map[string]map[string][]float64{}}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		b, ok := parseBenchLine(sc.Text())
		if !ok {
			continue
		}
		units, seen := s.values[b.name]
		if !seen {
			units = map[string][]float64{}
			s.values[b.name] = units
			s.names = append(s.names, b.name)
		}
		for u, v := range b.metrics {
			units[u] = append(units[u], v)
		}
	}
	return s, sc.Err()
}

// benchName is a benchmark name split into its parts: "BenchmarkScaleKV/
// keys=1k/op=get/impl=raw" has series "ScaleKV", size "1k" under "keys",
// impl "raw" and the rest, "op=get", as group "get".
type benchName struct {
	series, sizeKey, size, impl, group string
}

func splitName(name string) (benchName, bool) {
	parts := strings.Split(strings.TrimPrefix(name, "Benchmark"), "/")
	n := benchName{series: parts[0]}
	var rest []string
	for _, p := range parts[1:] {
		k, v, ok := strings.Cut(p, "=")
		switch {
		case !ok:
			rest = append(rest, p)
		case slices.Contains(sizeKeys, k) && n.sizeKey == "":
			n.sizeKey, n.size = k, v
		case k == "impl":
			n.impl = v
		default:
			rest = append(rest, v)
		}
	}
	n.group = strings.Join(rest, " ")
	return n, n.sizeKey != "" && n.impl != ""
}

// parseSize reads a size as benchmark names write it: 10, 1k, 100k, 1M.
func parseSize(s string) (float64, error) {
	mult := 1.0
	switch {
	case strings.HasSuffix(s, "k"):
		s, mult = strings.TrimSuffix(s, "k"), 1e3
	case strings.HasSuffix(s, "M"):
		s, mult = strings.TrimSuffix(s, "M"), 1e6
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 {
		return 0, fmt.Errorf("size %q: not a positive number, k or M", s)
	}
	return v * mult, nil
}

func median(vs []float64) float64 {
	s := slices.Clone(vs)
	sort.Float64s(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// point is one size of a line: the median of its samples.
type point struct {
	x     float64
	label string
	y     float64
}

// line is one implementation's points in a panel, by growing size.
type line struct {
	impl   string
	points []point
}

// chart is one scaling series: a panel per unit (and group, such as an
// operation), a line per implementation in each.
type chart struct {
	series, sizeKey string
	impls           []string // in the order they first appear: one colour each
	panels          []linePanel
}

type linePanel struct {
	unit, group string
	lines       []line
}

// charts groups the samples into one chart per scaling series, in the order
// the series first appear. Benchmarks without a size or an impl are left out.
func charts(s samples) ([]chart, error) {
	var out []chart
	index := map[string]int{}
	for _, name := range s.names {
		n, ok := splitName(name)
		if !ok {
			continue
		}
		x, err := parseSize(n.size)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		i, seen := index[n.series]
		if !seen {
			i = len(out)
			index[n.series] = i
			out = append(out, chart{series: n.series, sizeKey: n.sizeKey})
		}
		c := &out[i]
		if !slices.Contains(c.impls, n.impl) {
			c.impls = append(c.impls, n.impl)
		}
		for _, unit := range sortedUnits(s.values[name]) {
			c.add(unit, n.group, n.impl, point{x: x, label: n.size, y: median(s.values[name][unit])})
		}
	}
	for i := range out {
		out[i].finish()
	}
	return out, nil
}

// sortedUnits puts sec/op first and the rest in name order, so that panels
// come in the same order every time.
func sortedUnits(m map[string][]float64) []string {
	var units []string
	for u := range m {
		if !skipUnits[u] {
			units = append(units, u)
		}
	}
	sort.Slice(units, func(i, j int) bool {
		if (units[i] == "sec/op") != (units[j] == "sec/op") {
			return units[i] == "sec/op"
		}
		return units[i] < units[j]
	})
	return units
}

func (c *chart) add(unit, group, impl string, p point) {
	pi := slices.IndexFunc(c.panels, func(p linePanel) bool { return p.unit == unit && p.group == group })
	if pi < 0 {
		pi = len(c.panels)
		c.panels = append(c.panels, linePanel{unit: unit, group: group})
	}
	lines := &c.panels[pi].lines
	li := slices.IndexFunc(*lines, func(l line) bool { return l.impl == impl })
	if li < 0 {
		li = len(*lines)
		*lines = append(*lines, line{impl: impl})
	}
	(*lines)[li].points = append((*lines)[li].points, p)
}

// finish sorts the points by size, puts sec/op panels first, and drops
// panels whose every value is the same (such as one watch stream at every
// size): a flat line at one value says nothing the tables do not.
func (c *chart) finish() {
	kept := c.panels[:0]
	for _, p := range c.panels {
		first, constant := firstValue(p), true
		for _, l := range p.lines {
			sort.Slice(l.points, func(i, j int) bool { return l.points[i].x < l.points[j].x })
			for _, pt := range l.points {
				constant = constant && pt.y == first
			}
		}
		if !constant {
			kept = append(kept, p)
		}
	}
	sort.SliceStable(kept, func(i, j int) bool {
		return kept[i].unit == "sec/op" && kept[j].unit != "sec/op"
	})
	c.panels = kept
}

func firstValue(p linePanel) float64 {
	for _, l := range p.lines {
		if len(l.points) > 0 {
			return l.points[0].y
		}
	}
	return 0
}

// fileName is the PNG a series is drawn to: ScaleKV → scale-kv.png.
func (c chart) fileName() string {
	return "scale-" + strings.ToLower(strings.TrimPrefix(c.series, "Scale")) + ".png"
}

// runScale draws one PNG per scaling series of the given go test -bench
// outputs into dir.
func runScale(dir string, files []string) error {
	if len(files) == 0 {
		return fmt.Errorf("-scale: no go test -bench output files given")
	}
	s, err := readSamples(files)
	if err != nil {
		return err
	}
	cs, err := charts(s)
	if err != nil {
		return err
	}
	if len(cs) == 0 {
		return fmt.Errorf("no scaling series (names with %s= and impl=) in %s", strings.Join(sizeKeys, "=, "), strings.Join(files, ", "))
	}
	for _, c := range cs {
		if len(c.panels) == 0 {
			continue
		}
		out := filepath.Join(dir, c.fileName())
		if err := writePNG(out, renderChart(c)); err != nil {
			return err
		}
		fmt.Println(out)
	}
	return nil
}
