package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progressBar renders progress on stderr: on a terminal a redrawn bar with
// counts, rate and a note (e.g. the loss), at most every 100 ms; elsewhere
// (logs, CI) one line per stage when it ends, and one every 10% of it.
type progressBar struct {
	mu      sync.Mutex
	w       io.Writer
	tty     bool
	enabled bool
	stage   string
	start   time.Time
	last    time.Time
	lastPct int
}

func newProgressBar(quiet bool) *progressBar {
	fi, err := os.Stderr.Stat()
	tty := err == nil && fi.Mode()&os.ModeCharDevice != 0
	return &progressBar{w: os.Stderr, tty: tty, enabled: !quiet}
}

// Update reports that done of total items of stage are finished.
func (p *progressBar) Update(stage string, done, total int, note string) {
	if p == nil || !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if stage != p.stage {
		p.stage, p.start, p.lastPct = stage, now, -1
	}
	elapsed := now.Sub(p.start).Seconds()
	rate := ""
	if elapsed > 0.05 && done > 0 {
		r := float64(done) / elapsed
		if r >= 1 {
			rate = fmt.Sprintf("%.2f it/s", r)
		} else {
			rate = fmt.Sprintf("%.2f s/it", 1/r)
		}
	}
	if !p.tty {
		pct := 0
		if total > 0 {
			pct = 10 * done / total
		}
		if pct != p.lastPct || done >= total {
			p.lastPct = pct
			fmt.Fprintf(p.w, "%s: %d/%d %s %s\n", stage, done, total, rate, note)
		}
		return
	}
	if done < total && now.Sub(p.last) < 100*time.Millisecond {
		return
	}
	p.last = now
	const width = 30
	filled := 0
	if total > 0 {
		filled = min(width, width*done/total)
	}
	fmt.Fprintf(p.w, "\r\033[K%-11s [%s%s] %d/%d %s %s", stage, strings.Repeat("=", filled), strings.Repeat(" ", width-filled), done, total, rate, note)
	if done >= total {
		fmt.Fprintln(p.w)
	}
}
