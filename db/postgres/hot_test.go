package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/stream"
)

// TestAppendsAreHOTUpdates checks that an append which changes no indexed
// column of stream (its expiry and fire times stay) rewrites the row on
// its own page without touching the indexes (a HOT update), through both
// the single-stream and the batch path, even where the streams were
// created back to back and their pages filled up: migration 000009
// leaves room on every page for a few new versions of its rows. With full
// pages, all but the rows of the last page moved to another page and
// added an entry to each index of the table.
//
// Every tenth stream gets an append, so that no page receives more new
// versions than its free space holds: whether the old versions can be
// pruned to make more room depends on the transactions other clients of
// the server hold open.
func TestAppendsAreHOTUpdates(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	url := dbtest.PostgresURL(t)
	s, err := postgres.Open(ctx, url, db.Options{Migrate: true})
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	defer s.Close()

	const streams = 300 // about ten pages of stream
	base := time.Date(2014, 8, 1, 0, 0, 0, 0, time.UTC)
	expire := base.Add(30 * 24 * time.Hour)
	events := make([]stream.Event, 2*streams)
	for i := range events {
		events[i] = stream.Event{MessageID: fmt.Sprintf("hot-%d", i), Type: "compute.instance.update",
			Timestamp: base.Add(time.Duration(i) * time.Second), Traits: map[string]stream.Value{}}
	}
	eventIDs, err := s.SaveEvents(ctx, events)
	if err != nil {
		t.Fatalf("SaveEvents = %v", err)
	}
	news := make([]db.BatchNewStream, streams)
	for i := range news {
		dist := map[string]stream.Value{"instance_id": stream.String(fmt.Sprintf("inst-%d", i))}
		news[i] = db.BatchNewStream{NewStream: db.NewStream{Name: "per_instance", Key: stream.Key(dist), DistinguishedBy: dist,
			FirstEvent: base, LastEvent: base, ExpireTimestamp: expire, FireCounts: []int{0},
			EventIDs: eventIDs[i : i+1], Now: base}}
	}
	ids, created, err := s.CreateStreams(ctx, news)
	if err != nil {
		t.Fatalf("CreateStreams = %v", err)
	}
	for i, ok := range created {
		if !ok {
			t.Fatalf("CreateStreams: stream %d not created", i)
		}
	}
	const every = 10
	appends := streams / every
	appendTo := func(n int) db.AppendParams {
		i := n * every
		return db.AppendParams{StreamID: ids[i], EventIDs: eventIDs[streams+i : streams+i+1], FirstEvent: base,
			LastEvent: events[streams+i].Timestamp, ExpireTimestamp: expire, FireCounts: []int{0}}
	}
	// The first half through the batch path, the second one stream at a
	// time, each in a transaction as the manager runs them.
	half := appends / 2
	err = s.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
		ps := make([]db.AppendParams, half)
		for i := range ps {
			ps[i] = appendTo(i)
		}
		conflicted, err := tx.(db.BatchIngester).AppendToStreams(ctx, ps)
		if err == nil && len(conflicted) > 0 {
			err = fmt.Errorf("conflicted: %v", conflicted)
		}
		return err
	})
	if err != nil {
		t.Fatalf("AppendToStreams = %v", err)
	}
	for i := half; i < appends; i++ {
		err := s.InTx(ctx, func(ctx context.Context, tx db.Ops) error { return tx.AppendToStream(ctx, appendTo(i)) })
		if err != nil {
			t.Fatalf("AppendToStream(stream %d) = %v", i, err)
		}
	}

	// A backend reports its table statistics when it exits at the latest:
	// close the store's connections, then wait for the counts.
	s.Close()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var updates, hot int
	deadline := time.Now().Add(20 * time.Second)
	for {
		err := conn.QueryRow(ctx, `SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relid = 'stream'::regclass`).Scan(&updates, &hot)
		if err != nil {
			t.Fatalf("read the table statistics of stream: %v", err)
		}
		if updates >= appends || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if updates != appends || hot != appends {
		t.Errorf("%d appends: %d updates of stream, %d of them HOT; want %d and %d", appends, updates, hot, appends, appends)
	}
}
