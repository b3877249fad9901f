package dbtest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// exercisePoison specifies what the stores do with input at the edges:
// distinguishing values of any length.
func exercisePoison(t *testing.T, open OpenFunc) {
	t.Run("LongKeys", func(t *testing.T) {
		t.Parallel()
		exerciseLongKeys(t, open(t))
	})
}

// longDist returns distinguishing values whose key is far longer than a
// btree index entry may be (about 2.7 KB on PostgreSQL, after compression:
// the text is random, so it does not compress); keys built with different
// last bytes differ only at their end.
func longDist(n int, last string) map[string]stream.Value {
	return map[string]stream.Value{"instance_id": stream.String(noise(n) + last)}
}

// noise returns n bytes of printable text that does not compress, the same
// for every call.
func noise(n int) string {
	var b strings.Builder
	sum := sha256.Sum256([]byte("noise"))
	for b.Len() < n {
		b.WriteString(hex.EncodeToString(sum[:]))
		sum = sha256.Sum256(sum[:])
	}
	return b.String()[:n]
}

// exerciseLongKeys: streams whose distinguishing key is 100 KB long are
// created, found, refused as twins and closed like any other; two keys
// that differ only in their last byte are two streams.
func exerciseLongKeys(t *testing.T, s db.Store) {
	ctx := t.Context()
	distA, distB := longDist(100_000, "a"), longDist(100_000, "b")
	ids := save(t, s, newEvent("long-1", "test.long", base, nil), newEvent("long-2", "test.long", base, nil))
	createLong := func(dist map[string]stream.Value, events []int64) int64 {
		t.Helper()
		id, created, err := s.CreateStream(ctx, db.NewStream{Name: "long", Key: stream.Key(dist), DistinguishedBy: dist,
			FirstEvent: base, LastEvent: base, ExpireTimestamp: at(24 * time.Hour), EventIDs: events, Now: base})
		if err != nil || !created || id == 0 {
			t.Fatalf("CreateStream(key of %d bytes) = %d, %v, %.300v; want a new stream", len(stream.Key(dist)), id, created, err)
		}
		return id
	}
	a := createLong(distA, ids[:1])
	b := createLong(distB, ids[1:])
	if a == b {
		t.Fatalf("CreateStream of two keys that differ in their last byte returned one stream %d", a)
	}
	for _, tc := range []struct {
		dist map[string]stream.Value
		want int64
	}{{distA, a}, {distB, b}} {
		got, err := s.OpenStream(ctx, "long", stream.Key(tc.dist))
		if err != nil || got.ID != tc.want {
			t.Fatalf("OpenStream(long key) = %d, %.300v; want stream %d", got.ID, err, tc.want)
		}
		if diff := cmp.Diff(tc.dist, got.DistinguishedBy, cmpOpts); diff != "" {
			t.Errorf("OpenStream(long key) distinguishing values (-want +got):\n%s", diff)
		}
	}
	_, err := s.OpenStream(ctx, "long", stream.Key(longDist(100_000, "c")))
	wantErr(t, "OpenStream(long key never stored)", err, db.ErrNotFound)

	twin := db.NewStream{Name: "long", Key: stream.Key(distA), DistinguishedBy: distA,
		FirstEvent: base, LastEvent: base, ExpireTimestamp: at(24 * time.Hour), Now: base}
	if id, created, err := s.CreateStream(ctx, twin); err != nil || created {
		t.Fatalf("CreateStream(open long key again) = %d, %v, %.300v; want not created", id, created, err)
	}
	if err := s.CloseStream(ctx, a); err != nil {
		t.Fatalf("CloseStream(%d): %v", a, err)
	}
	if id := createLong(distA, nil); id == a {
		t.Fatalf("CreateStream(long key after close) = %d, the closed stream", id)
	}

	// The batch operations, where a store has them.
	err = s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
		bi, ok := tx.(db.BatchIngester)
		if !ok {
			return nil
		}
		keys := []db.StreamKey{{Name: "long", Key: stream.Key(distB)}, {Name: "long", Key: stream.Key(longDist(100_000, "d"))}}
		open, err := bi.OpenStreams(ctx, keys)
		if err != nil {
			t.Fatalf("OpenStreams(long keys): %.300v", err)
		}
		if len(open) != 1 || open[keys[0]].ID != b {
			t.Fatalf("OpenStreams(long keys) found %d streams; want only stream %d", len(open), b)
		}
		distD := longDist(100_000, "d")
		created, ok2, err := bi.CreateStreams(ctx, []db.BatchNewStream{
			{NewStream: db.NewStream{Name: "long", Key: stream.Key(distB), DistinguishedBy: distB,
				FirstEvent: base, LastEvent: base, ExpireTimestamp: at(24 * time.Hour), Now: base}},
			{NewStream: db.NewStream{Name: "long", Key: stream.Key(distD), DistinguishedBy: distD,
				FirstEvent: base, LastEvent: base, ExpireTimestamp: at(24 * time.Hour), Now: base}},
		})
		if err != nil || ok2[0] || !ok2[1] || created[1] == 0 {
			t.Fatalf("CreateStreams(taken long key, new long key) = %v, %v, %.300v; want [false true]", created, ok2, err)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
}
