package trigger

import (
	"context"
	"fmt"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// applyBatch does what applyGroup does for every group (in key order),
// with a few statements for the whole batch: it locks the open streams of
// every key at once, plans every group in memory, then appends to and
// closes the stored streams and creates the new ones (those that expired
// within the batch already closed, so that only the last of a key holds
// the open key). A group that lost a race (its stream was created by
// another transaction since the lookup, or claimed by a worker) goes on,
// from its first event not written, through applyGroup.
func (m *Manager) applyBatch(ctx context.Context, tx db.Ops, bi db.BatchIngester, groups []*group, now time.Time, st *Stats) error {
	keys := make([]db.StreamKey, len(groups))
	for i, g := range groups {
		keys[i] = db.StreamKey{Name: g.def.Name, Key: g.key}
	}
	open, err := bi.OpenStreams(ctx, keys)
	if err != nil {
		return fmt.Errorf("look up %d streams: %w", len(keys), err)
	}
	plans := make([][]segment, len(groups))
	for i, g := range groups {
		var cur *stream.Stream
		if s, ok := open[keys[i]]; ok {
			cur = &s
		}
		curDef, err := m.streamDefinition(ctx, tx, g, cur)
		if err != nil {
			return fmt.Errorf("trigger %s: %w", g.def.Name, err)
		}
		plans[i] = m.plan(g, cur, curDef, g.events, now, st.trigger(g.def.Name))
	}
	// redo[i] >= 0: group i lost a race at that event; it goes through
	// applyGroup from there.
	redo := make([]int, len(groups))
	for i := range redo {
		redo[i] = -1
	}

	// Stored streams: at most the first segment of a group.
	var appends []db.AppendParams
	storedOf := map[int64]int{}
	for i, segs := range plans {
		if len(segs) > 0 && !segs[0].isNew && len(segs[0].ids) > 0 {
			appends = append(appends, appendParams(segs[0]))
			storedOf[segs[0].s.ID] = i
		}
	}
	if len(appends) > 0 {
		conflicted, err := bi.AppendToStreams(ctx, appends)
		if err != nil {
			return fmt.Errorf("append to %d streams: %w", len(appends), err)
		}
		for _, id := range conflicted {
			i, ok := storedOf[id]
			if !ok {
				return fmt.Errorf("append to %d streams: the store reported stream %d, which was not in the batch", len(appends), id)
			}
			redo[i] = 0
		}
	}
	var closes []int64
	for i, segs := range plans {
		if redo[i] < 0 && len(segs) > 0 && !segs[0].isNew && segs[0].closed {
			closes = append(closes, segs[0].s.ID)
		}
	}
	if len(closes) > 0 {
		if err := bi.CloseStreams(ctx, closes); err != nil {
			return fmt.Errorf("close %d expired streams: %w", len(closes), err)
		}
	}

	// New streams, after the closes so that their keys are free.
	var creates []db.BatchNewStream
	var createdFor []int // group of each create
	for i, segs := range plans {
		if redo[i] >= 0 {
			continue
		}
		for _, w := range segs {
			if w.isNew {
				creates = append(creates, db.BatchNewStream{NewStream: newStream(w, now), Closed: w.closed})
				createdFor = append(createdFor, i)
			}
		}
	}
	if len(creates) > 0 {
		_, created, err := bi.CreateStreams(ctx, creates)
		if err != nil {
			return fmt.Errorf("create %d streams: %w", len(creates), err)
		}
		// Only the last, open, stream of a group can be refused: its
		// events are the group's last, none of them written.
		for j, ok := range created {
			if i := createdFor[j]; !ok && redo[i] < 0 {
				segs := plans[i]
				redo[i] = segs[len(segs)-1].from
			}
		}
	}

	for i, g := range groups {
		if redo[i] < 0 {
			continue
		}
		m.log.Debug("stream changed concurrently: looking it up again", "trigger", g.def.Name, "key", g.key)
		if err := m.applyGroup(ctx, tx, g, g.events[redo[i]:], now, st); err != nil {
			return fmt.Errorf("trigger %s: %w", g.def.Name, err)
		}
	}
	return nil
}
