package trigger

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

// Outcome says what happened to one event handed to the Manager.
type Outcome int

// Event outcomes.
const (
	// Stored: the event was saved and matched against every trigger.
	Stored Outcome = iota + 1
	// Duplicate: an event with the same message_id was stored before; the
	// event was ignored (not matched again).
	Duplicate
	// Rejected: the event (or notification) cannot enter the system; see
	// Result.Reason.
	Rejected
)

func (o Outcome) String() string {
	switch o {
	case Stored:
		return "stored"
	case Duplicate:
		return "duplicate"
	case Rejected:
		return "rejected"
	}
	return "outcome(?)"
}

// Result is the outcome of one event.
type Result struct {
	MessageID string
	Outcome   Outcome
	// Reason says why the event was rejected or, for a stored event, why
	// a trigger whose match criteria it met could not take it into a
	// stream ("trigger \"NAME\": ..." for each, joined with "; "): its
	// distinguishing values or its stream's expiration could not be
	// computed for it. Such a problem is the event's alone: it is counted
	// (distinguish_failed, expiration_failed) and logged, and the rest of
	// the batch is stored and matched as usual.
	Reason string
	// Matched counts the triggers that took the event into a stream.
	Matched int
	// Err is the error behind a Rejected notification that did not
	// distill: the DistillFunc's (a *distiller.DropError from
	// distiller.Distiller.Event, whose Reason callers inspect with
	// errors.As), or the error of Limits.CheckEvent behind a Rejected
	// event (wrapping stream.ErrInvalidEvent, and stream.ErrSchema when
	// the event does not match its declaration). Nil otherwise.
	Err error
}

// DistillFunc turns a raw notification into an event; (*distiller.Distiller).Event
// is one.
type DistillFunc func(body []byte) (stream.Event, error)

// Store is the part of db.Store the manager uses.
type Store interface {
	InTx(ctx context.Context, fn func(ctx context.Context, tx db.Ops) error) error
}

// ManagerConfig holds the optional collaborators of a Manager.
type ManagerConfig struct {
	// Clock is the one clock of the manager: stream lookup, expiry ($timestamp)
	// and fire times all read it. Default: the wall clock.
	Clock stream.Clock
	// Logger receives warnings about dropped traits and rejected events.
	Logger *slog.Logger
	// DistillFunc converts notifications; without one AddNotification
	// rejects every notification with a clear reason.
	DistillFunc DistillFunc
	// MaxAttempts bounds how often a batch is run again after the
	// database aborted its transaction (db.ErrAborted: a deadlock between
	// ingesters, a busy SQLite file) or it kept losing races for a stream
	// (db.ErrConflict). Default 5.
	MaxAttempts int
	// Limits decide which events may enter the system (zero fields take
	// the defaults of stream.DefaultLimits). An event outside them is
	// Rejected with the reason; the rest of its batch is stored.
	Limits stream.Limits
	// Version is the version of the definitions given to NewManager (0:
	// none). New streams record the manager's version; SetDefinitions
	// changes it.
	Version int64
	// VersionFunc returns the trigger definitions of an earlier version.
	// An open stream created under another version than the manager's
	// takes new events under its own version's definition (fire
	// criteria, expiration), found with VersionFunc. Nil, or a version
	// without the stream's trigger: the current definition serves, and
	// its fire counts are recounted when their number differs.
	VersionFunc VersionFunc
}

// VersionFunc returns the trigger definitions of a version of the
// definitions. It is called inside ingest transactions, with the
// transaction's Ops (on SQLite the store itself would wait for the
// transaction): it should cache.
type VersionFunc func(ctx context.Context, tx db.Ops, version int64) (*Set, error)

// DefaultMaxAttempts is the default of ManagerConfig.MaxAttempts.
const DefaultMaxAttempts = 5

// Manager puts events into streams: it stores every event once, matches it
// against every trigger (in file order), and appends it to the open stream
// of its distinguishing values, creating the stream when there is none. It
// is safe for concurrent use, and any number of managers (in any number of
// processes) may share one database: the store's open-stream key and row
// locks keep them from creating twin streams or appending to a stream a
// worker has claimed.
type Manager struct {
	store    Store
	clock    stream.Clock
	log      *slog.Logger
	distill  DistillFunc
	attempts int
	limits   stream.Limits

	versionFunc VersionFunc

	mu      sync.RWMutex
	set     *Set
	version int64

	stats *Stats
}

// NewManager returns a manager over store with the given definitions.
func NewManager(store Store, defs []*Definition, cfg ManagerConfig) (*Manager, error) {
	set, err := NewSet(defs)
	if err != nil {
		return nil, err
	}
	if err := cfg.Limits.Validate(); err != nil {
		return nil, fmt.Errorf("event limits: %w", err)
	}
	m := &Manager{
		store:    store,
		clock:    cfg.Clock,
		log:      cfg.Logger,
		distill:  cfg.DistillFunc,
		attempts: cfg.MaxAttempts,
		limits:   cfg.Limits.WithDefaults(),
		set:      set,
		stats:    newStats(),

		version:     cfg.Version,
		versionFunc: cfg.VersionFunc,
	}
	if m.clock == nil {
		m.clock = stream.SystemClock{}
	}
	if m.log == nil {
		m.log = slog.New(slog.DiscardHandler)
	}
	if m.attempts <= 0 {
		m.attempts = DefaultMaxAttempts
	}
	return m, nil
}

// Definitions returns the current trigger definitions in order.
func (m *Manager) Definitions() []*Definition {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.set.Definitions()
}

// Version returns the version of the manager's definitions (0: none).
func (m *Manager) Version() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.version
}

// SetDefinitions replaces all definitions at once with those of version
// (live definitions): batches that start afterwards match against them,
// and the streams they create record version. Streams already open keep
// their own version's definitions (see ManagerConfig.VersionFunc).
func (m *Manager) SetDefinitions(version int64, defs []*Definition) error {
	set, err := NewSet(defs)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.set, m.version = set, version
	return nil
}

// Definition returns the definition named name.
func (m *Manager) Definition(name string) (*Definition, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.set.Lookup(name)
}

// AddDefinitions appends definitions at runtime. Definitions whose name is
// already known are ignored, as in the original; the names actually added
// are returned.
func (m *Manager) AddDefinitions(defs []*Definition) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	all := m.set.Definitions()
	var added []string
	for _, d := range defs {
		if _, ok := m.set.Lookup(d.Name); ok || slices.Contains(added, d.Name) {
			continue
		}
		all = append(all, d)
		added = append(added, d.Name)
	}
	set, err := NewSet(all)
	if err != nil {
		return nil, err
	}
	m.set = set
	return added, nil
}

// DeleteDefinition removes a definition at runtime and reports whether it
// existed. Streams of a deleted trigger go to an error state when a worker
// processes them.
func (m *Manager) DeleteDefinition(name string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	all := m.set.Definitions()
	i := slices.IndexFunc(all, func(d *Definition) bool { return d.Name == name })
	if i < 0 {
		return false
	}
	set, err := NewSet(slices.Delete(slices.Clone(all), i, i+1))
	if err != nil {
		return false
	}
	m.set = set
	return true
}

// Stats returns the manager's counters.
func (m *Manager) Stats() *Stats { return m.stats }

// AddEvent stores one event and puts it into the streams of every trigger
// that matches it, in one transaction.
func (m *Manager) AddEvent(ctx context.Context, ev stream.Event) (Result, error) {
	res, err := m.AddEvents(ctx, []stream.Event{ev})
	if err != nil {
		return Result{MessageID: ev.MessageID}, err
	}
	return res[0], nil
}

// AddEventMap normalises a raw flat map (stream.NewEvent) and adds it. An
// invalid event is Rejected with the reason; dropped traits are logged.
func (m *Manager) AddEventMap(ctx context.Context, raw map[string]any) (Result, error) {
	ev, dropped, err := stream.NewEvent(raw)
	if err != nil {
		mid, _ := raw[stream.KeyMessageID].(string)
		m.stats.add(statRejected, 1)
		m.log.Warn("rejected invalid event", "message_id", mid, "error", err)
		return Result{MessageID: mid, Outcome: Rejected, Reason: err.Error()}, nil
	}
	m.logDropped(ev.MessageID, dropped)
	return m.AddEvent(ctx, ev)
}

func (m *Manager) logDropped(messageID string, dropped []stream.Dropped) {
	for _, d := range dropped {
		m.log.Warn("dropped trait of unsupported type", "message_id", messageID, "trait", d.Trait, "reason", d.Reason)
	}
}

// AddEvents stores a batch of events and puts them into streams in one
// transaction, in order. It returns one Result per event. A batch whose
// transaction the database aborted (db.ErrAborted) or that lost races with
// other ingesters for too long (db.ErrConflict) is run again whole; other
// errors are returned at once.
func (m *Manager) AddEvents(ctx context.Context, events []stream.Event) ([]Result, error) {
	return m.addChecked(ctx, m.check(events))
}

// addChecked writes a checked batch in one transaction, running it again
// as AddEvents says, and counts its outcomes once it committed.
func (m *Manager) addChecked(ctx context.Context, c *checkedBatch) ([]Result, error) {
	var results []Result
	var err error
	for attempt := 1; ; attempt++ {
		// The per-trigger counters of an attempt count only once it
		// committed: a retried batch would count its events again.
		st := newStats()
		err = m.store.InTx(ctx, func(ctx context.Context, tx db.Ops) error {
			var err error
			results, err = m.writeChecked(ctx, tx, c, st)
			return err
		})
		if err == nil {
			m.stats.merge(st)
		}
		if err == nil || !retryable(err) || attempt >= m.attempts {
			break
		}
		m.log.Debug("running the event batch again", "attempt", attempt, "error", err)
	}
	if err != nil {
		return nil, err
	}
	for _, r := range results {
		switch r.Outcome {
		case Stored:
			m.stats.add(statSaved, 1)
		case Duplicate:
			m.stats.add(statDuplicates, 1)
		case Rejected:
			m.stats.add(statRejected, 1)
		}
	}
	return results, nil
}

// retryable reports whether a batch that failed with err may succeed when
// run again: its transaction was rolled back because of concurrent work.
func retryable(err error) bool {
	return errors.Is(err, db.ErrAborted) || errors.Is(err, db.ErrConflict)
}

// AddNotification distills a raw notification into an event and adds it.
// A notification that cannot be converted is Rejected with the reason.
func (m *Manager) AddNotification(ctx context.Context, body []byte) (Result, error) {
	res, err := m.AddNotifications(ctx, [][]byte{body})
	if err != nil {
		return Result{}, err
	}
	return res[0], nil
}

// AddNotifications distills a batch of notifications and adds the events
// in one transaction. Results are in input order.
func (m *Manager) AddNotifications(ctx context.Context, bodies [][]byte) ([]Result, error) {
	results := make([]Result, len(bodies))
	var events []stream.Event
	var index []int
	for i, body := range bodies {
		ev, rejected, ok := m.DistillNotification(body)
		if !ok {
			results[i] = rejected
			continue
		}
		events = append(events, ev)
		index = append(index, i)
	}
	if len(events) > 0 {
		res, err := m.AddEvents(ctx, events)
		if err != nil {
			return nil, err
		}
		for j, i := range index {
			results[i] = res[j]
		}
	}
	return results, nil
}

// DistillNotification converts one raw notification into an event with the
// manager's distiller and counts it as received. When it cannot be
// converted, ok is false and rejected is its Rejected result (counted).
// AddNotifications is DistillNotification then AddEvents; callers that
// batch events themselves (group commit) use it to distill on their own
// goroutines. It is safe for concurrent use and does no I/O.
func (m *Manager) DistillNotification(body []byte) (ev stream.Event, rejected Result, ok bool) {
	m.stats.add(statReceived, 1)
	if m.distill == nil {
		m.stats.add(statRejected, 1)
		return stream.Event{}, Result{Outcome: Rejected, Reason: "no distiller configured (set distiller_config)"}, false
	}
	ev, err := m.distill(body)
	if err != nil {
		m.stats.add(statRejected, 1)
		m.log.Info("dropped notification", "error", err)
		return stream.Event{}, Result{MessageID: ev.MessageID, Outcome: Rejected, Reason: err.Error(), Err: err}, false
	}
	return ev, Result{}, true
}

// Distill converts one raw notification into an event with the manager's
// distiller, without counting it or storing anything (explanations of a
// pasted notification use it). It is safe for concurrent use.
func (m *Manager) Distill(body []byte) (stream.Event, error) {
	if m.distill == nil {
		return stream.Event{}, errors.New("no distiller configured (set distiller_config)")
	}
	return m.distill(body)
}

// AddEventsTx does the work of AddEvents inside the caller's transaction
// (the pipeline worker stores a pipeline's new events and completes its
// stream in one transaction). It reads the clock once: the whole batch
// happens at one "now". Its counters are added as it goes: they are not
// taken back if the caller's transaction rolls back.
func (m *Manager) AddEventsTx(ctx context.Context, tx db.Ops, events []stream.Event) ([]Result, error) {
	return m.addEventsTx(ctx, tx, events, m.stats)
}

// addEventsTx is AddEventsTx counting into st.
func (m *Manager) addEventsTx(ctx context.Context, tx db.Ops, events []stream.Event, st *Stats) ([]Result, error) {
	return m.writeChecked(ctx, tx, m.check(events), st)
}

// checkedBatch is a batch of events as the manager writes it: every event
// checked against the limits, the valid ones with their timestamps
// normalised, and the definitions to match them against. A checked batch
// is only read once built, so a retried transaction writes it again.
type checkedBatch struct {
	results  []Result       // one per event: its MessageID and, when rejected, why
	valid    []stream.Event // the events within the limits
	validIdx []int          // the index of each valid event in results
	set      *Set
	version  int64
	// matches are those of valid when matched before the transaction
	// (prepareAhead); nil: matched while the events are saved.
	matches []eventMatch
	// encoded are the valid events encoded before the transaction
	// (prepareAhead), for a store that takes them (db.EncodedEventSaver);
	// nil: SaveEvents encodes them.
	encoded *db.EncodedEvents
}

// check checks events against the limits (logging those rejected) and
// takes the current definitions. It does no I/O.
func (m *Manager) check(events []stream.Event) *checkedBatch {
	c := &checkedBatch{results: make([]Result, len(events))}
	for i, ev := range events {
		c.results[i].MessageID = ev.MessageID
		if err := m.limits.CheckEvent(ev); err != nil {
			c.results[i].Outcome = Rejected
			c.results[i].Reason = err.Error()
			c.results[i].Err = err
			m.log.Warn("rejected invalid event", "message_id", shortID(ev.MessageID), "error", err)
			continue
		}
		ev.Timestamp = stream.NormalizeTime(ev.Timestamp)
		c.valid = append(c.valid, ev)
		c.validIdx = append(c.validIdx, i)
	}
	m.mu.RLock()
	c.set, c.version = m.set, m.version
	m.mu.RUnlock()
	return c
}

// writeChecked stores a checked batch and puts its events into streams
// within tx, counting into st. It reads the clock once.
func (m *Manager) writeChecked(ctx context.Context, tx db.Ops, c *checkedBatch, st *Stats) ([]Result, error) {
	now := stream.NormalizeTime(m.clock.Now())
	results := slices.Clone(c.results)
	valid, validIdx, set, version := c.valid, c.validIdx, c.set, c.version
	if len(valid) == 0 {
		return results, nil
	}
	// Matching needs no database: unless done before, it runs while the
	// events are stored, and only the stored (not duplicate) events'
	// matches are used.
	save := func() ([]int64, error) {
		if es, ok := tx.(db.EncodedEventSaver); ok && c.encoded != nil {
			return es.SaveEncodedEvents(ctx, *c.encoded)
		}
		return tx.SaveEvents(ctx, valid)
	}
	matches := c.matches
	var ids []int64
	var err error
	if matches != nil {
		ids, err = save()
	} else {
		matched := make(chan struct{})
		go func() {
			defer close(matched)
			matches = matchEvents(set, valid)
		}()
		ids, err = save()
		<-matched
	}
	if err != nil {
		return nil, fmt.Errorf("save events: %w", err)
	}

	groups := map[groupKey]*group{}
	var tooLong []int64 // stored events whose distinguishing key is beyond the limit
	for j, ev := range valid {
		i := validIdx[j]
		if ids[j] == 0 {
			results[i].Outcome = Duplicate
			continue
		}
		if err := m.checkKeys(matches[j].triggers); err != nil {
			// Rare: matching ran while the event was stored, so the
			// event is taken back out within the transaction.
			results[i].Outcome = Rejected
			results[i].Reason = err.Error()
			m.log.Warn("rejected invalid event", "message_id", shortID(ev.MessageID), "error", err)
			tooLong = append(tooLong, ids[j])
			continue
		}
		results[i].Outcome = Stored
		debugCount(st, set, matches[j].explained)
		for _, mt := range matches[j].triggers {
			if !mt.distinguished {
				st.trigger(mt.def.Name).add(statBadDistinguish, 1)
				m.eventProblem(&results[i], mt.def.Name, mt.err)
				continue
			}
			k := groupKey{trigger: mt.def.Name, key: mt.key}
			g := groups[k]
			if g == nil {
				g = &group{def: mt.def, key: k.key, dist: mt.dist, version: version}
				groups[k] = g
			}
			g.events = append(g.events, pending{ev: ev, id: ids[j], idx: i})
			results[i].Matched++
			st.trigger(mt.def.Name).add(statMatched, 1)
		}
	}
	if len(tooLong) > 0 {
		if _, err := tx.PurgeEvents(ctx, tooLong); err != nil {
			return nil, fmt.Errorf("take back rejected events: %w", err)
		}
	}
	// A fixed order of row locks keeps concurrent batches from deadlocking.
	ordered := make([]*group, 0, len(groups))
	for _, g := range groups {
		ordered = append(ordered, g)
	}
	slices.SortFunc(ordered, func(a, b *group) int {
		return cmp.Or(cmp.Compare(a.def.Name, b.def.Name), cmp.Compare(a.key, b.key))
	})
	if bi, ok := tx.(db.BatchIngester); ok && len(ordered) > 0 {
		if err := m.applyBatch(ctx, tx, bi, ordered, now, st); err != nil {
			return nil, err
		}
	} else {
		for _, g := range ordered {
			if err := m.applyGroup(ctx, tx, g, g.events, now, st); err != nil {
				return nil, fmt.Errorf("trigger %s: %w", g.def.Name, err)
			}
		}
	}
	for _, g := range ordered {
		for _, idx := range slices.Sorted(maps.Keys(g.failed)) {
			results[idx].Matched--
			st.trigger(g.def.Name).add(statExpireFailed, 1)
			m.eventProblem(&results[idx], g.def.Name, g.failed[idx])
		}
	}
	return results, nil
}

// eventProblem records that trigger could not take the event of res into
// a stream, and why (err names the trigger): in the event's Result and
// the log.
func (m *Manager) eventProblem(res *Result, trigger string, err error) {
	reason := err.Error()
	if res.Reason != "" {
		reason = res.Reason + "; " + reason
	}
	res.Reason = reason
	m.log.Warn("event not added to a stream of its trigger", "message_id", shortID(res.MessageID), "trigger", trigger, "error", err)
}

// eventMatch is what matching found for one event: the triggers whose
// match criteria it satisfies, in trigger order, and for the triggers with
// a debug level (Set.Debugged, in order) why it did not match them.
type eventMatch struct {
	triggers  []triggerMatch
	explained [][]string
}

// triggerMatch is one trigger an event matched, with its distinguishing
// values and their key when they could be computed (distinguished), or
// why they could not (err).
type triggerMatch struct {
	def           *Definition
	err           error
	distinguished bool
	dist          map[string]stream.Value
	key           string
}

// matchEvents matches each event against the triggers of set. It only
// reads set and the events.
func matchEvents(set *Set, events []stream.Event) []eventMatch {
	out := make([]eventMatch, len(events))
	debugged := set.Debugged()
	for i, ev := range events {
		em := &out[i]
		if len(debugged) > 0 {
			em.explained = make([][]string, len(debugged))
			for j, d := range debugged {
				em.explained[j] = d.ExplainMatch(ev)
			}
		}
		for _, d := range set.Candidates(ev.Type) {
			ci, ok := d.Match(ev)
			if !ok {
				continue
			}
			tm := triggerMatch{def: d}
			if dist, err := d.DistinguishError(ev, ci); err == nil {
				tm.distinguished, tm.dist, tm.key = true, dist, stream.Key(dist)
			} else {
				tm.err = err
			}
			em.triggers = append(em.triggers, tm)
		}
	}
	return out
}

// debugCount records, for triggers with a debug level, whether a stored
// event matched and (level 2) why not, from matchEvents' explanations.
// Triggers without a debug level cost nothing here.
func debugCount(st *Stats, set *Set, explained [][]string) {
	for j, d := range set.Debugged() {
		c := st.trigger(d.Name)
		reasons := explained[j]
		if len(reasons) == 0 {
			c.add(statMatchPassed, 1)
			continue
		}
		c.add(statMatchFailed, 1)
		if d.DebugLevel > 1 {
			for _, r := range reasons {
				c.add(mismatchPrefix+r, 1)
			}
		}
	}
}

type groupKey struct{ trigger, key string }

type pending struct {
	ev  stream.Event
	id  int64
	idx int // of the event's Result
}

// group is the events of one batch for one trigger and key, in order.
type group struct {
	def     *Definition
	version int64 // of def: new streams record it
	key     string
	dist    map[string]stream.Value
	events  []pending
	// failed holds the events (by Result index) whose stream's expiration
	// could not be evaluated: they are left out of the stream.
	failed map[int]error
}

// segment is one stream that a group's events go to, as they leave it:
// the stored open stream they are appended to, or a new stream. All but
// the last segment of a group are closed: a later event found them
// expired.
type segment struct {
	s      stream.Stream // ID set unless isNew
	isNew  bool          // not yet in the database
	ids    []int64       // events to link to it
	from   int           // index of its first event (a stored stream: 0)
	closed bool          // close it for new events once written
}

// applyGroup appends events (a group's, in order) to the open stream of
// the group's key, creating, closing and re-creating streams as the
// events require, one stream at a time. When another transaction created
// or claimed a stream first, it looks up the open stream again and goes
// on with the events not yet written.
func (m *Manager) applyGroup(ctx context.Context, tx db.Ops, g *group, events []pending, now time.Time, st *Stats) error {
	d := g.def
	ts := st.trigger(d.Name)
	rest := events
	for attempt := 0; len(rest) > 0; attempt++ {
		if attempt > 100 {
			return fmt.Errorf("stream key %q: %w (gave up after repeated races)", g.key, db.ErrConflict)
		}
		var cur *stream.Stream
		s, err := tx.OpenStream(ctx, d.Name, g.key)
		switch {
		case errors.Is(err, db.ErrNotFound):
		case err != nil:
			return fmt.Errorf("look up stream: %w", err)
		default:
			cur = &s
		}
		curDef, err := m.streamDefinition(ctx, tx, g, cur)
		if err != nil {
			return err
		}
		segs := m.plan(g, cur, curDef, rest, now, ts)
		n, err := m.write(ctx, tx, segs, len(rest), now)
		rest = rest[n:]
		if errors.Is(err, errRace) {
			continue // someone else created or claimed the stream: look again
		}
		if err != nil {
			return err
		}
	}
	return nil
}

var errRace = errors.New("stream changed concurrently")

// streamDefinition returns the definition a stored open stream of the
// group takes events under (nil when there is none): its own version's
// (version 1's for a stream older than versions, when the manager has
// one), or the group's when the stream has the group's version, or its
// version lacks its trigger. The fire counts are then recounted if their
// number differs, or if the stream has another version: counts built
// under other criteria are never reused, even when there are as many.
func (m *Manager) streamDefinition(ctx context.Context, tx db.Ops, g *group, s *stream.Stream) (*Definition, error) {
	if s == nil {
		return nil, nil
	}
	v := s.DefinitionVersion
	if v == 0 && g.version != 0 {
		v = 1 // created before versions: under the files that became version 1
	}
	if v != g.version && m.versionFunc != nil {
		set, err := m.versionFunc(ctx, tx, v)
		if err != nil {
			return nil, fmt.Errorf("definitions of version %d of stream %d: %w", v, s.ID, err)
		}
		if d, ok := set.Lookup(g.def.Name); ok {
			return d, nil
		}
	}
	if err := m.checkCounts(ctx, tx, g.def, s, s.DefinitionVersion != 0 && s.DefinitionVersion != g.version); err != nil {
		return nil, err
	}
	return g.def, nil
}

// checkCounts recounts the fire counts of a stored stream from its
// events when the definition changed since the stream was created (always
// or, unless always, when the number of fire criteria differs) and it is
// not ready to fire yet.
func (m *Manager) checkCounts(ctx context.Context, tx db.Ops, d *Definition, s *stream.Stream, always bool) error {
	if (!always && len(s.FireCounts) == len(d.FireCriteria)) || !s.FireTimestamp.IsZero() {
		return nil
	}
	events, err := tx.StreamEvents(ctx, s.ID)
	if err != nil {
		return fmt.Errorf("recount stream %d: %w", s.ID, err)
	}
	counts := make([]int, len(d.FireCriteria))
	for _, ev := range events {
		counts = d.FireCounts(ev, counts)
	}
	s.FireCounts = counts
	return nil
}

// plan applies events, in order, in memory to cur, the stored open stream
// of the group's key (nil: none), and returns the streams to write. A
// stream whose expiry time is not after now is never extended: it is
// closed (it waits for a worker to expire it) and a new stream takes the
// event. A stored stream that takes no event and is not closed needs no
// write and is left out. An event whose stream's expiration cannot be
// evaluated is left out of the stream and recorded in g.failed.
func (m *Manager) plan(g *group, cur *stream.Stream, curDef *Definition, events []pending, now time.Time, ts *counters) []segment {
	var segs []segment
	if cur != nil {
		s := *cur
		s.FireCounts = slices.Clone(s.FireCounts)
		segs = append(segs, segment{s: s})
	}
	for i, p := range events {
		if n := len(segs); n > 0 && !segs[n-1].s.ExpireTimestamp.After(now) {
			segs[n-1].closed = true
		}
		startNew := len(segs) == 0 || segs[len(segs)-1].closed
		// The stored stream goes on under its own definition; new
		// streams follow the group's.
		d := g.def
		if !startNew && !segs[len(segs)-1].isNew {
			d = curDef
		}
		first, last := p.ev.Timestamp, p.ev.Timestamp
		if !startNew {
			s := &segs[len(segs)-1].s
			first, last = minTime(s.FirstEvent, first), maxTime(s.LastEvent, last)
		}
		exp, err := d.Expire(now, first, last)
		if err != nil {
			// The event's problem, not the batch's: it stays out of the
			// stream, which is left as it was.
			if g.failed == nil {
				g.failed = map[int]error{}
			}
			g.failed[p.idx] = err
			continue
		}
		if startNew {
			segs = append(segs, segment{isNew: true, from: i, s: stream.Stream{
				Name: d.Name, Key: g.key, DistinguishedBy: g.dist, State: stream.StateActive, Open: true,
				FireCounts: make([]int, len(d.FireCriteria)), DefinitionVersion: g.version,
			}})
			ts.add(statNewStreams, 1)
		}
		w := &segs[len(segs)-1]
		s := &w.s
		s.FirstEvent, s.LastEvent, s.ExpireTimestamp = first, last, exp
		if s.FireTimestamp.IsZero() {
			s.FireCounts = d.FireCounts(p.ev, s.FireCounts)
			if d.Satisfied(s.FireCounts) {
				s.FireTimestamp = d.FireAt(now)
				s.FireCounts = nil
				ts.add(statReadyToFire, 1)
			}
		}
		w.ids = append(w.ids, p.id)
		ts.add(statAddedEvents, 1)
	}
	if len(segs) > 0 && !segs[0].isNew && len(segs[0].ids) == 0 && !segs[0].closed {
		segs = segs[1:]
	}
	return segs
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// write writes segs, in order, with the single-stream operations, for a
// plan of n events. It returns how many of the events were written: n,
// or on a race the first event of the segment that lost it (nothing of
// that segment or the later ones was written) with errRace.
func (m *Manager) write(ctx context.Context, tx db.Ops, segs []segment, n int, now time.Time) (int, error) {
	for _, w := range segs {
		switch {
		case w.isNew:
			id, created, err := tx.CreateStream(ctx, newStream(w, now))
			if err != nil {
				return w.from, fmt.Errorf("create stream: %w", err)
			}
			if !created {
				return w.from, errRace
			}
			w.s.ID = id
		case len(w.ids) > 0:
			err := tx.AppendToStream(ctx, appendParams(w))
			if errors.Is(err, db.ErrConflict) {
				return w.from, errRace
			}
			if err != nil {
				return w.from, fmt.Errorf("append to stream %d: %w", w.s.ID, err)
			}
		}
		if w.closed {
			if err := tx.CloseStream(ctx, w.s.ID); err != nil {
				return w.from, fmt.Errorf("close expired stream %d: %w", w.s.ID, err)
			}
		}
	}
	return n, nil
}

func newStream(w segment, now time.Time) db.NewStream {
	s := &w.s
	return db.NewStream{
		Name: s.Name, Key: s.Key, DistinguishedBy: s.DistinguishedBy,
		FirstEvent: s.FirstEvent, LastEvent: s.LastEvent,
		ExpireTimestamp: s.ExpireTimestamp, FireTimestamp: s.FireTimestamp,
		FireCounts: s.FireCounts, EventIDs: w.ids, Now: now, DefinitionVersion: s.DefinitionVersion,
	}
}

func appendParams(w segment) db.AppendParams {
	s := &w.s
	return db.AppendParams{
		StreamID: s.ID, EventIDs: w.ids,
		FirstEvent: s.FirstEvent, LastEvent: s.LastEvent,
		ExpireTimestamp: s.ExpireTimestamp, FireTimestamp: s.FireTimestamp,
		FireCounts: s.FireCounts,
	}
}

// checkKeys reports the first distinguishing key of an event's matches
// that is beyond the limits.
func (m *Manager) checkKeys(matches []triggerMatch) error {
	for _, mt := range matches {
		if mt.distinguished {
			if err := m.limits.CheckKey(mt.def.Name, mt.key); err != nil {
				return err
			}
		}
	}
	return nil
}

// shortID keeps a message id readable in logs (it may be the reason its
// event was rejected: very long, or not valid text).
func shortID(id string) string {
	const keep = 128
	if len(id) <= keep {
		return id
	}
	return fmt.Sprintf("%s…(%d bytes)", id[:keep], len(id))
}
