package main

import (
	"fmt"
	"path/filepath"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// plots draws the report's figures into dir and returns their paths by name.
func (r *report) plots(dir string) (map[string]string, error) {
	out := map[string]string{
		"cold":  filepath.Join(dir, "cold-init.png"),
		"warm":  filepath.Join(dir, "latency-by-concurrency.png"),
		"reset": filepath.Join(dir, "reset-by-n.png"),
	}
	msf := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

	// Init p50 per binary, as bars.
	cold := plot.New()
	cold.Title.Text = "Cold start: init p50 (ms)"
	var vals plotter.Values
	var names []string
	for _, c := range r.Cold {
		vals = append(vals, msf(pct(c.Init, 50)))
		n := c.Bin.Name
		if c.Bin.Kind == "function (no cut)" {
			n += " (no cut)"
		}
		names = append(names, n)
	}
	bars, err := plotter.NewBarChart(vals, vg.Points(14))
	if err != nil {
		return nil, err
	}
	cold.Add(bars)
	cold.NominalX(names...)
	cold.X.Tick.Label.Rotation = 0.9
	cold.X.Tick.Label.XAlign, cold.X.Tick.Label.YAlign = -1, -0.5
	if err := cold.Save(9*vg.Inch, 5*vg.Inch, out["cold"]); err != nil {
		return nil, err
	}

	// p50 latency by callers, one line per flow, dotted its own calls made bare (the
	// floor), dashed floor (c) (stand-in calls behind the Runtime API).
	warm := plot.New()
	warm.Title.Text = "Warm latency p50 by concurrent callers (solid: flow; dotted: its own calls made bare; dashed: floor (c))"
	warm.X.Label.Text = "concurrent callers"
	warm.Y.Label.Text = "ms"
	i := 0
	for _, flow := range warmFlows {
		var lat, rt, floor plotter.XYs
		for _, w := range r.Warm {
			if w.Flow == flow {
				lat = append(lat, plotter.XY{X: float64(w.Callers), Y: msf(pct(w.Lat, 50))})
				rt = append(rt, plotter.XY{X: float64(w.Callers), Y: msf(pct(w.Runtime, 50))})
				floor = append(floor, plotter.XY{X: float64(w.Callers), Y: msf(pct(w.Floor, 50))})
			}
		}
		if len(lat) == 0 {
			continue
		}
		for k, xys := range []plotter.XYs{lat, rt, floor} {
			l, err := plotter.NewLine(xys)
			if err != nil {
				return nil, err
			}
			l.Color = plotutil.Color(i)
			switch k {
			case 0:
				warm.Legend.Add(flow, l)
			case 1:
				l.Dashes = []vg.Length{vg.Points(6), vg.Points(3)}
			case 2:
				l.Dashes = []vg.Length{vg.Points(1), vg.Points(3)}
			}
			warm.Add(l)
		}
		i++
	}
	warm.Legend.Top, warm.Legend.Left = true, true
	if err := warm.Save(9*vg.Inch, 5*vg.Inch, out["warm"]); err != nil {
		return nil, err
	}

	// Reset time by N, three ways.
	rp := plot.New()
	rp.Title.Text = "Deleting an organization's vault: seconds by items"
	rp.X.Label.Text = "items"
	rp.Y.Label.Text = "s"
	series := []struct {
		name string
		get  func(resetRow) time.Duration
	}{
		{"reset (whole flow)", func(x resetRow) time.Duration { return x.Reset }},
		{"naive DeleteItem", func(x resetRow) time.Duration { return x.Naive }},
		{"ceiling (BatchWriteItem, known keys)", func(x resetRow) time.Duration { return x.Ceiling }},
	}
	for k, s := range series {
		var xy plotter.XYs
		for _, rr := range r.Reset {
			xy = append(xy, plotter.XY{X: float64(rr.Items), Y: s.get(rr).Seconds()})
		}
		if len(xy) == 0 {
			continue
		}
		l, pts, err := plotter.NewLinePoints(xy)
		if err != nil {
			return nil, err
		}
		l.Color, pts.Color = plotutil.Color(k), plotutil.Color(k)
		rp.Add(l, pts)
		rp.Legend.Add(s.name, l, pts)
	}
	rp.Legend.Top, rp.Legend.Left = true, true
	if err := rp.Save(7*vg.Inch, 4.5*vg.Inch, out["reset"]); err != nil {
		return nil, fmt.Errorf("reset plot: %w", err)
	}
	return out, nil
}
