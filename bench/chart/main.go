// Command chart draws the etcdkit ÷ clientv3 ratios of a benchstat CSV
// (benchstat -format csv -col /impl) as a bar chart in a PNG: time per
// operation on a log scale, where the in-memory reads show as the tiny
// fractions they are, and allocations per operation on a linear one.
//
//	go run ./bench/chart -in bench/results/benchstat.csv -out bench/ratios.png
//
// With -scale it draws the scaling series instead, from the raw go test
// -bench output: one PNG per series (BenchmarkScaleKV → scale-kv.png in the
// -scale directory), the size (keys=, waiters=, items= or handles=) on a
// log x axis, a panel per metric (sec/op and the series' own, such as
// rpcs/handover; not B/op or allocs/op), a line per impl=, each point the
// median of its repetitions. A benchmark in a later file replaces the same
// benchmark of the earlier files.
//
//	go run ./bench/chart -scale bench bench/results/scale.txt bench/results/scale-mirror-after.txt
package main

import (
	"encoding/csv"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"io"
	"math"
	"os"
	"regexp"
	"strconv"
	"strings"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

func main() {
	in := flag.String("in", "bench/results/benchstat.csv", "benchstat -format csv output")
	out := flag.String("out", "bench/ratios.png", "PNG to write")
	scale := flag.String("scale", "", "directory to draw the scaling series of the go test -bench output files given as arguments into")
	flag.Parse()
	err := error(nil)
	if *scale != "" {
		err = runScale(*scale, flag.Args())
	} else {
		err = run(*in, *out)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "chart:", err)
		os.Exit(1)
	}
}

func run(in, out string) error {
	f, err := os.Open(in)
	if err != nil {
		return err
	}
	defer f.Close()
	tables, err := parse(f)
	if err != nil {
		return err
	}
	panels := []panel{
		{unit: "sec/op", title: "time per op, etcdkit / clientv3 (log scale; < 1 is faster)", log: true, min: 1e-5, max: 4, marks: []float64{1e-4, 1e-3, 1e-2, 0.1, 1}},
		{unit: "allocs/op", title: "allocations per op, etcdkit / clientv3", min: 0, max: 1.5, marks: []float64{0, 0.5, 1}},
	}
	for i := range panels {
		panels[i].bars = tables[panels[i].unit]
		if len(panels[i].bars) == 0 {
			return fmt.Errorf("%s: no %s table", in, panels[i].unit)
		}
	}
	return writePNG(out, render(panels))
}

func writePNG(out string, img image.Image) error {
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	if err := png.Encode(w, img); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// bar is one benchmark row and one implementation compared with raw.
type bar struct {
	label string
	ratio float64
}

var procSuffix = regexp.MustCompile(`-\d+$`)

// parse reads benchstat's CSV: tables separated by blank lines, each with a
// row of column names (raw first, the baseline), a row of units, then one
// row per benchmark. It returns, per unit, each non-raw column's ratio to raw.
func parse(r io.Reader) (map[string][]bar, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, err
	}
	tables := map[string][]bar{}
	for i := 0; i+1 < len(rows); i++ {
		if len(rows[i]) < 2 || rows[i][0] != "" || rows[i][1] != "raw" || i+1 >= len(rows) {
			continue
		}
		names, units := rows[i], rows[i+1]
		unit := units[1]
		for j := i + 2; j < len(rows) && len(rows[j]) > 1 && rows[j][0] != ""; j++ {
			row := rows[j]
			if row[0] == "geomean" {
				continue
			}
			base, err := strconv.ParseFloat(row[1], 64)
			if err != nil || base == 0 {
				continue
			}
			for c := 2; c < len(row) && c < len(names); c++ {
				if names[c] == "" || units[c] != unit {
					continue
				}
				v, err := strconv.ParseFloat(row[c], 64)
				if err != nil {
					continue
				}
				label := procSuffix.ReplaceAllString(row[0], "") + "  " + names[c]
				tables[unit] = append(tables[unit], bar{label: label, ratio: v / base})
			}
		}
	}
	return tables, nil
}

type panel struct {
	unit, title string
	log         bool
	min, max    float64
	marks       []float64 // x values with a grid line and a label
	bars        []bar
}

const (
	barH     = 14
	gap      = 3
	labelW   = 400
	plotW    = 560
	margin   = 16
	titleH   = 24
	valueW   = 80
	panelGap = 28
)

var (
	white = color.RGBA{255, 255, 255, 255}
	black = color.RGBA{0, 0, 0, 255}
	grid  = color.RGBA{210, 210, 210, 255}
	one   = color.RGBA{200, 40, 40, 255}
	fast  = color.RGBA{60, 140, 70, 255}
	slow  = color.RGBA{70, 110, 180, 255}
)

func render(panels []panel) image.Image {
	h := margin
	for _, p := range panels {
		h += titleH + len(p.bars)*(barH+gap) + 20 + panelGap
	}
	w := margin + labelW + plotW + valueW + margin
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	fill(img, img.Bounds(), white)
	y := margin
	for _, p := range panels {
		y = drawPanel(img, p, y)
	}
	return img
}

func drawPanel(img *image.RGBA, p panel, y int) int {
	text(img, margin, y+13, p.title, black)
	y += titleH
	x0 := margin + labelW
	top, bottom := y, y+len(p.bars)*(barH+gap)
	for _, m := range p.marks {
		x := x0 + p.pos(m)
		c := grid
		if m == 1 {
			c = one
		}
		fill(img, image.Rect(x, top, x+1, bottom), c)
		text(img, x-len(mark(m))*7/2, bottom+14, mark(m), black)
	}
	for i, b := range p.bars {
		by := top + i*(barH+gap)
		text(img, margin, by+11, b.label, black)
		c := slow
		if b.ratio < 1 {
			c = fast
		}
		fill(img, image.Rect(x0, by+2, x0+max(p.pos(b.ratio), 1), by+barH), c)
		text(img, x0+plotW+6, by+11, value(b.ratio), black)
	}
	if p.pos(1) < plotW { // the line at 1 (parity) over the bars
		fill(img, image.Rect(x0+p.pos(1), top, x0+p.pos(1)+1, bottom), one)
	}
	return bottom + 20 + panelGap
}

// pos is the x offset of v in the plot, clamped to it.
func (p panel) pos(v float64) int {
	var f float64
	if p.log {
		v = math.Max(v, p.min)
		f = (math.Log10(v) - math.Log10(p.min)) / (math.Log10(p.max) - math.Log10(p.min))
	} else {
		f = (v - p.min) / (p.max - p.min)
	}
	return int(math.Round(math.Max(0, math.Min(1, f)) * plotW))
}

func mark(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }

func value(v float64) string {
	if v < 0.01 {
		return fmt.Sprintf("%.1e", v)
	}
	return fmt.Sprintf("%.3f", v)
}

func fill(img *image.RGBA, r image.Rectangle, c color.Color) {
	draw.Draw(img, r, &image.Uniform{C: c}, image.Point{}, draw.Src)
}

func text(img *image.RGBA, x, y int, s string, c color.Color) {
	d := font.Drawer{Dst: img, Src: image.NewUniform(c), Face: basicfont.Face7x13, Dot: fixed.P(x, y)}
	d.DrawString(strings.TrimSpace(s))
}
