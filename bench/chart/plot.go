package main

import (
	"image"
	"image/color"
	"math"
	"slices"
	"strconv"
)

// Layout of a scaling chart: a title and a legend, then the panels in two
// columns, each with its y ticks on the left and the sizes below.
const (
	panelW  = 440
	panelH  = 270
	axisL   = 64 // room for the y tick labels
	axisB   = 42 // room for the size labels and the size key
	panelT  = 22 // room for the panel's title
	panelR  = 16
	headerH = 58
	charW   = 7 // basicfont.Face7x13's advance
)

// palette colours the implementations in the order they first appear; raw
// comes first in every series.
var palette = []color.RGBA{
	{70, 110, 180, 255}, // blue
	{210, 80, 40, 255},  // orange
	{60, 140, 70, 255},  // green
	{140, 70, 160, 255}, // purple
	{120, 90, 50, 255},  // brown
}

func renderChart(c chart) image.Image {
	cols := min(2, len(c.panels))
	rows := (len(c.panels) + cols - 1) / cols
	title := c.series + ": median of the runs; x = " + c.sizeKey + ", log scale"
	w := 2*margin + max(cols*panelW, len(title)*charW)
	img := image.NewRGBA(image.Rect(0, 0, w, headerH+rows*panelH+margin))
	fill(img, img.Bounds(), white)
	text(img, margin, margin+11, title, black)
	drawLegend(img, c.impls, margin, margin+34)
	xs := sizes(c)
	for i, p := range c.panels {
		r := image.Rect(0, 0, panelW, panelH).Add(image.Pt(margin+(i%cols)*panelW, headerH+(i/cols)*panelH))
		drawLinePanel(img, r, c, p, xs)
	}
	return img
}

func drawLegend(img *image.RGBA, impls []string, x, y int) {
	for i, impl := range impls {
		c := palette[i%len(palette)]
		fill(img, image.Rect(x, y-5, x+26, y-3), c)
		marker(img, x+13, y-4, i, c)
		text(img, x+34, y, impl, black)
		x += 34 + len(impl)*charW + 24
	}
}

// sizes are the chart's distinct sizes, shared by its panels' x axes.
func sizes(c chart) []point {
	var xs []point
	for _, p := range c.panels {
		for _, l := range p.lines {
			for _, pt := range l.points {
				if !slices.ContainsFunc(xs, func(q point) bool { return q.x == pt.x }) {
					xs = append(xs, pt)
				}
			}
		}
	}
	slices.SortFunc(xs, func(a, b point) int { return int(math.Copysign(1, a.x-b.x)) })
	return xs
}

func drawLinePanel(img *image.RGBA, r image.Rectangle, c chart, p linePanel, xs []point) {
	plot := image.Rect(r.Min.X+axisL, r.Min.Y+panelT, r.Max.X-panelR, r.Max.Y-axisB)
	y := newYAxis(p)
	title := p.unit
	if p.group != "" {
		title = p.group + ": " + title
	}
	if y.log {
		title += " (log scale)"
	}
	text(img, plot.Min.X, r.Min.Y+14, title, black)

	xpos := func(v float64) int {
		lo, hi := math.Log10(xs[0].x), math.Log10(xs[len(xs)-1].x)
		if hi == lo {
			return (plot.Min.X + plot.Max.X) / 2
		}
		pad := 0.06 * float64(plot.Dx())
		return plot.Min.X + int(math.Round(pad+(math.Log10(v)-lo)/(hi-lo)*(float64(plot.Dx())-2*pad)))
	}
	ypos := func(v float64) int { return plot.Max.Y - int(math.Round(y.frac(v)*float64(plot.Dy()))) }

	for _, t := range y.ticks {
		py := ypos(t)
		fill(img, image.Rect(plot.Min.X, py, plot.Max.X, py+1), grid)
		s := y.label(p.unit, t)
		text(img, plot.Min.X-6-len(s)*charW, py+4, s, black)
	}
	for _, x := range xs {
		px := xpos(x.x)
		fill(img, image.Rect(px, plot.Min.Y, px+1, plot.Max.Y), grid)
		text(img, px-len(x.label)*charW/2, plot.Max.Y+15, x.label, black)
	}
	fill(img, image.Rect(plot.Min.X, plot.Min.Y, plot.Min.X+1, plot.Max.Y+1), black)
	fill(img, image.Rect(plot.Min.X, plot.Max.Y, plot.Max.X, plot.Max.Y+1), black)
	text(img, (plot.Min.X+plot.Max.X-len(c.sizeKey)*charW)/2, plot.Max.Y+33, c.sizeKey, black)

	for _, l := range p.lines {
		n := slices.Index(c.impls, l.impl)
		col := palette[n%len(palette)]
		for i, pt := range l.points {
			if i > 0 {
				prev := l.points[i-1]
				segment(img, xpos(prev.x), ypos(prev.y), xpos(pt.x), ypos(pt.y), col)
			}
			marker(img, xpos(pt.x), ypos(pt.y), n, col)
		}
	}
}

// yAxis maps a panel's values to [0, 1]: on a log scale when they span more
// than 20×, so that a series where one side grows a thousandfold still shows
// the other; otherwise linearly from 0, so that flat looks flat.
type yAxis struct {
	log    bool
	lo, hi float64
	ticks  []float64
}

func newYAxis(p linePanel) yAxis {
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, l := range p.lines {
		for _, pt := range l.points {
			lo, hi = math.Min(lo, pt.y), math.Max(hi, pt.y)
		}
	}
	if lo > 0 && hi/lo > 20 {
		a := yAxis{log: true, lo: steps125(lo, false), hi: steps125(hi, true)}
		decades := math.Log10(a.hi / a.lo)
		for v := a.lo; v <= a.hi*1.0001; v = steps125(v*1.01, true) {
			if decades <= 3 || isDecade(v) {
				a.ticks = append(a.ticks, v)
			}
		}
		return a
	}
	lo = math.Min(lo, 0)
	step := steps125(math.Max(hi-lo, 1e-12)/4, true)
	a := yAxis{lo: math.Floor(lo/step) * step, hi: math.Ceil(hi*1.05/step) * step}
	for v := a.lo; v <= a.hi+step/2; v += step {
		a.ticks = append(a.ticks, roundSig(v))
	}
	return a
}

func (a yAxis) frac(v float64) float64 {
	if a.log {
		return (math.Log10(v) - math.Log10(a.lo)) / (math.Log10(a.hi) - math.Log10(a.lo))
	}
	return (v - a.lo) / (a.hi - a.lo)
}

// label writes a tick: sec/op as a duration, anything else as a number.
func (a yAxis) label(unit string, v float64) string {
	if unit != "sec/op" || v == 0 {
		return number(v)
	}
	for _, u := range []struct {
		name  string
		scale float64
	}{{"s", 1}, {"ms", 1e-3}, {"us", 1e-6}} {
		if v >= u.scale {
			return strconv.FormatFloat(roundSig(v/u.scale), 'g', 4, 64) + u.name
		}
	}
	return strconv.FormatFloat(roundSig(v/1e-9), 'g', 4, 64) + "ns"
}

// number writes a tick value, thousands and millions as k and M.
func number(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(roundSig(v/1e6), 'g', 4, 64) + "M"
	case v >= 1e4:
		return strconv.FormatFloat(roundSig(v/1e3), 'g', 4, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// steps125 is the nearest of 1, 2, 5 × 10^k at or above v (up) or at or
// below it.
func steps125(v float64, up bool) float64 {
	dec := math.Pow(10, math.Floor(math.Log10(v)))
	ms := []float64{1, 2, 5, 10}
	if up {
		for _, m := range ms {
			if m*dec >= v*0.9999 {
				return roundSig(m * dec)
			}
		}
	}
	for i := len(ms) - 1; i >= 0; i-- {
		if ms[i]*dec <= v*1.0001 {
			return roundSig(ms[i] * dec)
		}
	}
	return dec
}

func isDecade(v float64) bool {
	l := math.Log10(v)
	return math.Abs(l-math.Round(l)) < 1e-9
}

// roundSig drops the float noise of tick arithmetic (0.30000000000000004).
func roundSig(v float64) float64 {
	f, _ := strconv.ParseFloat(strconv.FormatFloat(v, 'g', 6, 64), 64)
	return f
}

// segment draws a line two pixels wide.
func segment(img *image.RGBA, x0, y0, x1, y1 int, c color.RGBA) {
	n := max(abs(x1-x0), abs(y1-y0), 1)
	for i := 0; i <= n; i++ {
		x := x0 + (x1-x0)*i/n
		y := y0 + (y1-y0)*i/n
		fill(img, image.Rect(x, y, x+2, y+2), c)
	}
}

// marker draws the n-th impl's mark at a point: a filled square for the
// first, then ever larger hollow ones, so that where two lines coincide
// (the same count of watches on both sides) both still show.
func marker(img *image.RGBA, x, y, n int, c color.RGBA) {
	if n == 0 {
		fill(img, image.Rect(x-3, y-3, x+4, y+4), c)
		return
	}
	r := 3 + 2*n
	for _, e := range []image.Rectangle{
		image.Rect(x-r, y-r, x+r+1, y-r+2), image.Rect(x-r, y+r-1, x+r+1, y+r+1),
		image.Rect(x-r, y-r, x-r+2, y+r+1), image.Rect(x+r-1, y-r, x+r+1, y+r+1),
	} {
		fill(img, e, c)
	}
}

func abs(v int) int {
	if v < 0 {
		return -v
	}
	return v
}
