package distiller

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// benchBodies returns the realistic notifications of testdata: nova
// create/delete/exists, glance and neutron.
func benchBodies(b *testing.B) [][]byte {
	b.Helper()
	var out [][]byte
	for _, name := range []string{"nova_create_start", "nova_exists", "nova_delete_end", "glance_image_upload", "neutron_port_create_end"} {
		body, err := os.ReadFile(filepath.Join("testdata", name+".json"))
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, body)
	}
	return out
}

// BenchmarkDistill measures the whole conversion of one notification:
// JSON decoding, definition lookup, extraction and conversion. Run with
// -cpu 1 for the one-core figure in docs/PERFORMANCE.md.
func BenchmarkDistill(b *testing.B) {
	d := testDistiller(b)
	bodies := benchBodies(b)
	var size int
	for _, body := range bodies {
		size += len(body)
	}
	b.SetBytes(int64(size / len(bodies)))
	b.ReportAllocs()
	start := time.Now()
	i := 0
	for b.Loop() {
		if _, _, err := d.Distill(bodies[i%len(bodies)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/time.Since(start).Seconds(), "notifications/s")
}

// BenchmarkDistillMap measures the conversion alone, on notifications
// already decoded.
func BenchmarkDistillMap(b *testing.B) {
	d := testDistiller(b)
	var maps []map[string]any
	for _, body := range benchBodies(b) {
		n, err := decodeObject(body)
		if err != nil {
			b.Fatal(err)
		}
		maps = append(maps, n)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, _, err := d.DistillMap(maps[i%len(maps)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
}

// BenchmarkPath measures field extraction on a decoded nova notification.
func BenchmarkPath(b *testing.B) {
	body, err := os.ReadFile(filepath.Join("testdata", "nova_exists.json"))
	if err != nil {
		b.Fatal(err)
	}
	doc, err := decodeObject(body)
	if err != nil {
		b.Fatal(err)
	}
	for _, src := range []string{
		"payload.instance_id",
		"payload.image_meta.'org.openstack__1__architecture'",
		"(payload.missing)|(payload.instance_type)",
		"payload..bw_out",
	} {
		p, err := ParsePath(src)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(src, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, ok := p.First(doc); !ok {
					b.Fatal("no match")
				}
			}
		})
	}
}
