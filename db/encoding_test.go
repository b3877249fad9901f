package db

import (
	"encoding/json"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/winchester-go/winchester/stream"
)

func TestTraitsRoundTrip(t *testing.T) {
	at := time.Date(2014, 8, 1, 2, 10, 23, 550000, time.UTC)
	traits := map[string]stream.Value{
		"s":          stream.String("plain"),
		"tricky":     stream.String("quote\" back\\slash \n\r\t \x00\x1f <>& é ✓ 😀"),
		"invalid":    stream.String("a\xffb"),
		"empty":      stream.String(""),
		"i":          stream.Int(math.MinInt64),
		"f":          stream.Float(42),
		"tiny":       stream.Float(5e-324),
		"d":          stream.Datetime(at),
		"r":          stream.TimeRange(at, at.Add(24*time.Hour)),
		"key \"x\"":  stream.Int(1),
		"ключ\u2028": stream.Int(2),
	}
	data := EncodeTraits(traits)
	if !json.Valid(data) {
		t.Fatalf("EncodeTraits wrote invalid JSON: %s", data)
	}
	got, err := DecodeTraits(data)
	if err != nil {
		t.Fatalf("DecodeTraits(%s): %v", data, err)
	}
	for k, want := range traits {
		if k == "invalid" {
			want = stream.String("a\ufffdb") // as encoding/json would store it
		}
		if !got[k].Equal(want) {
			t.Errorf("trait %q = %v (%s), want %v (%s)", k, got[k], got[k].Kind(), want, want.Kind())
		}
	}
	if len(got) != len(traits) {
		t.Errorf("%d traits back, want %d", len(got), len(traits))
	}
	// The same text as encoding/json for every string (except HTML
	// escaping, which stored JSON does not need).
	for _, s := range []string{"quote\" back\\slash \n\r\t \x00\x1f é", "a\xffb", ""} {
		want, _ := json.Marshal(s)
		if got := string(appendString(nil, s)); got != string(want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
	if !strings.HasPrefix(string(data), `{"d":`) {
		t.Errorf("keys not sorted: %s", data)
	}
}

func BenchmarkEncodeTraits(b *testing.B) {
	at := time.Date(2014, 8, 1, 2, 10, 23, 550000, time.UTC)
	traits := map[string]stream.Value{}
	for _, k := range []string{"instance_id", "tenant_id", "user_id", "request_id", "service", "host", "state", "os_distro", "display_name"} {
		traits[k] = stream.String("a5f0e2b3-4c5d-4e6f-8a9b-0c1d2e3f4a5b")
	}
	for _, k := range []string{"memory_mb", "disk_gb", "root_gb", "vcpus", "instance_flavor_id"} {
		traits[k] = stream.Int(4096)
	}
	for _, k := range []string{"launched_at", "audit_period_beginning", "audit_period_ending"} {
		traits[k] = stream.Datetime(at)
	}
	b.ReportAllocs()
	for b.Loop() {
		EncodeTraits(traits)
	}
}

// BenchmarkDecodeTraits decodes the distinguishing values of a stream as
// PostgreSQL returns them (jsonb text: a space after colons and commas),
// which the ingest path does for every stream it locks.
func BenchmarkDecodeTraits(b *testing.B) {
	data := []byte(`{"instance_id": {"s": "a5f0e2b3-4c5d-4e6f-8a9b-0c1d2e3f4a5b"}, "timestamp": {"r": [1406851200000000, 1406937600000000]}}`)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DecodeTraits(data); err != nil {
			b.Fatal(err)
		}
	}
}
