package statuspage

import (
	"fmt"
	"html/template"
	"strings"

	"corriere/core/reputation"
)

// Chart geometry, in pixels: one bar per hour.
const (
	chartBar    = 4
	chartGap    = 1
	chartHeight = 28
)

// chart draws a row's last 24 hours as stacked bars, one per hour:
// delivered (green), deferred (amber) and bounced (red), scaled to the
// busiest hour. Only numbers go into the markup, so it is safe HTML.
func chart(points []reputation.Point) template.HTML {
	if len(points) == 0 {
		return ""
	}
	var peak int64
	var total reputation.Point
	for _, p := range points {
		peak = max(peak, p.Delivered+p.Deferred+p.Bounced)
		total.Delivered += p.Delivered
		total.Deferred += p.Deferred
		total.Bounced += p.Bounced
	}
	width := len(points) * (chartBar + chartGap)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="chart" width="%d" height="%d" viewBox="0 0 %d %d" role="img">`, width, chartHeight, width, chartHeight)
	fmt.Fprintf(&b, `<title>last 24 hours: %d delivered, %d deferred, %d bounced</title>`, total.Delivered, total.Deferred, total.Bounced)
	fmt.Fprintf(&b, `<rect x="0" y="%d" width="%d" height="1" fill="#ccc"/>`, chartHeight-1, width)
	if peak > 0 {
		for i, p := range points {
			x := i * (chartBar + chartGap)
			y := chartHeight - 1
			for _, part := range []struct {
				n     int64
				color string
			}{{p.Delivered, "#2e8b57"}, {p.Deferred, "#e0a000"}, {p.Bounced, "#c0392b"}} {
				if part.n == 0 {
					continue
				}
				h := max(1, int(part.n*int64(chartHeight-2)/peak))
				y -= h
				fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="%s"/>`, x, y, chartBar, h, part.color)
			}
		}
	}
	b.WriteString(`</svg>`)
	return template.HTML(b.String())
}

// progressBar draws how much of a warm-up cap is used.
func progressBar(sent, limit int64) template.HTML {
	const width, height = 120, 10
	fill := 0
	if limit > 0 {
		fill = int(min(sent, limit) * width / limit)
	}
	return template.HTML(fmt.Sprintf(`<svg class="bar" width="%d" height="%d" viewBox="0 0 %d %d" role="img"><title>%d of %d</title>`+
		`<rect width="%d" height="%d" fill="#e6e6e6"/><rect width="%d" height="%d" fill="#3867d6"/></svg>`,
		width, height, width, height, sent, limit, width, height, fill, height))
}
