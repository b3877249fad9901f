package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"
)

// progressEvery is how often a Progress redraws its line.
const progressEvery = 250 * time.Millisecond

// Progress shows how far a long run is on one line of a terminal (standard
// error), redrawn at most every 250ms. It writes nothing when the writer is
// not a terminal, so logs and pipes stay clean; the command prints its
// summary itself. The zero value and nil are disabled. Safe for concurrent
// use.
type Progress struct {
	mu      sync.Mutex
	w       io.Writer
	enabled bool
	start   time.Time
	last    time.Time
	width   int // of the line drawn last
	now     func() time.Time
}

// NewProgress returns a Progress on w, enabled only when w is a terminal.
func NewProgress(w io.Writer) *Progress {
	return newProgress(w, IsTerminal(w))
}

func newProgress(w io.Writer, enabled bool) *Progress {
	now := time.Now
	t := now()
	return &Progress{w: w, enabled: enabled, start: t, now: now}
}

// IsTerminal reports whether w is a character device (a terminal).
func IsTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// Update redraws the line with the formatted text and the elapsed time,
// unless it was drawn less than 250ms ago.
func (p *Progress) Update(format string, args ...any) {
	if p == nil || !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if now.Sub(p.last) < progressEvery {
		return
	}
	p.last = now
	line := fmt.Sprintf(format, args...) + fmt.Sprintf(" [%s]", now.Sub(p.start).Round(time.Second))
	pad := ""
	if n := len(line); n < p.width {
		pad = strings.Repeat(" ", p.width-n)
	}
	p.width = len(line)
	fmt.Fprint(p.w, "\r"+line+pad)
}

// Done clears the line, so that the summary that follows starts clean.
func (p *Progress) Done() {
	if p == nil || !p.enabled {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.width > 0 {
		fmt.Fprint(p.w, "\r"+strings.Repeat(" ", p.width)+"\r")
		p.width = 0
	}
}

// Rate formats n items over d as "1234/s".
func Rate(n int, d time.Duration) string {
	if d <= 0 {
		return "-/s"
	}
	return fmt.Sprintf("%.0f/s", float64(n)/d.Seconds())
}

// Writer returns a writer to the progress line's writer that clears the
// line before each write, for log lines and messages printed during the
// run. Without a terminal it is the writer itself.
func (p *Progress) Writer() io.Writer {
	if p == nil || !p.enabled {
		if p == nil {
			return io.Discard
		}
		return p.w
	}
	return progressWriter{p}
}

type progressWriter struct{ p *Progress }

func (w progressWriter) Write(b []byte) (int, error) {
	w.p.Done()
	w.p.mu.Lock()
	defer w.p.mu.Unlock()
	w.p.last = time.Time{} // redraw at the next Update
	return w.p.w.Write(b)
}
