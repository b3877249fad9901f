package cli

import (
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"
)

func TestProgressOnlyOnATerminal(t *testing.T) {
	var buf bytes.Buffer
	p := NewProgress(&buf)
	p.Update("replay: %d records", 10)
	p.Done()
	if buf.Len() != 0 {
		t.Errorf("progress written to a non-terminal: %q", buf.String())
	}
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if IsTerminal(f) {
		t.Error("a regular file is taken for a terminal")
	}
	var nilP *Progress
	nilP.Update("x")
	nilP.Done()
}

func TestProgressRedrawsAndClears(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, true)
	now := p.start
	p.now = func() time.Time { return now }
	p.Update("ingest: %d events", 100000)
	p.Update("ingest: %d events", 100001) // within 250ms: not drawn
	now = now.Add(time.Second)
	p.Update("ingest: %d events", 5)
	p.Done()
	want := "\ringest: 100000 events [0s]" + "\ringest: 5 events [1s]" + strings.Repeat(" ", len("ingest: 100000 events [0s]")-len("ingest: 5 events [1s]")) +
		"\r" + strings.Repeat(" ", len("ingest: 5 events [1s]")) + "\r"
	if got := buf.String(); got != want {
		t.Errorf("progress output\n%q\nwant\n%q", got, want)
	}
}

func TestProgressWriterClearsTheLine(t *testing.T) {
	var buf bytes.Buffer
	p := newProgress(&buf, true)
	p.Update("replay: %d", 1)
	buf.Reset()
	if _, err := p.Writer().Write([]byte("level=WARN msg=x\n")); err != nil {
		t.Fatal(err)
	}
	if want := "\r" + strings.Repeat(" ", len("replay: 1 [0s]")) + "\r" + "level=WARN msg=x\n"; buf.String() != want {
		t.Errorf("write during progress = %q, want %q", buf.String(), want)
	}
	var plain bytes.Buffer
	if w := newProgress(&plain, false).Writer(); w != io.Writer(&plain) {
		t.Errorf("Writer without a terminal is not the writer itself")
	}
}
