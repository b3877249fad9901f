package handlers

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/winchester-go/winchester/pipeline"
	"github.com/winchester-go/winchester/stream"
)

// Event types and values used by the usage handler.
const (
	UsageExistsType   = "compute.instance.exists"
	UsageVerifiedType = "compute.instance.exists.verified"
	UsageFailedType   = "compute.instance.exists.failed"
	UsageWarningsType = "compute.instance.exists.warnings"
	usagePublisher    = "stv3"
)

// Usage is the "usage" handler: it verifies OpenStack Nova usage records
// (compute.instance.exists events) against the other events of the stream
// and appends verdict events (compute.instance.exists.verified or .failed
// with an error code U0-U8, preceded by a .warnings event when warnings were
// recorded). It has no params; it has no side effects, so Commit and
// Rollback do nothing.
//
// The events are cut into blocks: each exists event closes the block of the
// non-exists events since the previous one. The handler returns the input
// followed by the new events. Verdict ids are UUID version 5 values derived
// from the exists message_id and the verdict type, so reprocessing a stream
// yields the same ids.
//
// Differences from the original: a field present on one side only of a
// comparison is a U2 conflict (the original failed the whole pipeline), an
// exists message_id that is not a UUID gets a name-derived id (the original
// failed), and deleted_at is only compared with launched_at when both are
// present. As in the original, warnings accumulate over the blocks of one
// stream: every verdict after the first warning is preceded by a warnings
// event repeating all warnings so far.
type Usage struct {
	warnings []string
}

// NewUsage is the factory of the "usage" handler.
func NewUsage(p pipeline.Params) (pipeline.Builder, error) {
	var cfg struct{}
	if err := p.Decode(&cfg); err != nil {
		return nil, err
	}
	return func() (pipeline.Handler, error) { return &Usage{}, nil }, nil
}

// usageError is a failed check: a verdict, not a handler failure.
type usageError struct {
	code string
	msg  string
}

// HandleEvents checks every exists block and returns the events followed by
// the verdict events.
func (u *Usage) HandleEvents(ctx context.Context, events []stream.Event, env *pipeline.Env) ([]stream.Event, error) {
	u.warnings = nil
	var news, block []stream.Event
	for _, e := range events {
		if e.Type != UsageExistsType {
			block = append(block, e)
			continue
		}
		news = append(news, u.processBlock(ctx, block, e, env)...)
		block = nil
	}
	if len(block) > 0 {
		first := block[0]
		ev := stream.Event{MessageID: derivedID(idSpace(first.MessageID), UsageFailedType+".U0"), Type: UsageFailedType, Timestamp: first.Timestamp, Traits: map[string]stream.Value{
			"stream_id":  stream.Int(env.StreamID),
			"error":      stream.String("Notifications, but no .exists notification found."),
			"error_code": stream.String("U0"),
		}}
		if v, ok := first.Traits["instance_id"]; ok {
			ev.Traits["instance_id"] = v
		}
		news = append(news, ev)
	}
	out := make([]stream.Event, 0, len(events)+len(news))
	out = append(out, events...)
	return append(out, news...), nil
}

func (u *Usage) processBlock(ctx context.Context, block []stream.Event, exists stream.Event, env *pipeline.Env) []stream.Event {
	uerr := u.check(block, exists)
	var out []stream.Event
	if len(u.warnings) > 0 {
		inst := stream.String("n/a")
		if v, ok := exists.Traits["instance_id"]; ok {
			inst = v
		}
		out = append(out, stream.Event{MessageID: derivedID(idSpace(exists.MessageID), UsageWarningsType), Type: UsageWarningsType, Timestamp: exists.Timestamp, Traits: map[string]stream.Value{
			"publisher_id": stream.String(usagePublisher),
			"stream_id":    stream.Int(env.StreamID),
			"instance_id":  inst,
			"warnings":     stream.String(strings.Join(u.warnings, ", ")),
		}})
	}
	v := exists.Clone()
	for k, def := range map[string]stream.Value{"bandwidth_in": stream.Int(0), "bandwidth_out": stream.Int(0), "rax_options": stream.String("0")} {
		if _, ok := v.Traits[k]; !ok {
			v.Traits[k] = def
		}
	}
	v.Traits["original_message_id"] = stream.String(exists.MessageID)
	v.Traits["publisher_id"] = stream.String(usagePublisher)
	v.Traits["stream_id"] = stream.Int(env.StreamID)
	if uerr == nil {
		v.Type = UsageVerifiedType
		v.Traits["error"] = stream.String("None")
		delete(v.Traits, "error_code")
	} else {
		v.Type = UsageFailedType
		v.Traits["error"] = stream.String(uerr.msg)
		v.Traits["error_code"] = stream.String(uerr.code)
	}
	if _, err := uuid.Parse(exists.MessageID); err != nil {
		env.Log().WarnContext(ctx, "usage: exists message_id is not a UUID, deriving the verdict id from its text",
			"message_id", exists.MessageID)
	}
	v.MessageID = uuid.NewSHA1(idSpace(exists.MessageID), []byte(v.Type)).String()
	return append(out, v)
}

// idSpace is the UUID namespace of ids derived from an event: its message
// id when that is a UUID, else a name-based UUID of its text.
func idSpace(messageID string) uuid.UUID {
	if ns, err := uuid.Parse(messageID); err == nil {
		return ns
	}
	return uuid.NewSHA1(uuid.Nil, []byte(messageID))
}

// derivedID is the id of a warnings or U0 event. The original gave them
// random UUID4s; deriving them from the event they describe (SHA-1 name
// based, laid out as a version 4 UUID, which is what consumers of the
// original expect) makes a re-run of the pipeline produce the same ids, so
// the store drops the repeats and replays are deterministic.
func derivedID(ns uuid.UUID, name string) string {
	u := uuid.NewSHA1(ns, []byte(name))
	u[6] = u[6]&0x0f | 0x40 // version 4
	return u.String()
}

var usageOperationTypes = map[string]bool{
	"compute.instance.rebuild.end":       true,
	"compute.instance.finish_resize.end": true,
	"compute.instance.rescue.end":        true,
}

var usageOperationFields = []string{"launched_at", "instance_flavor_id", "tenant_id", "os_architecture", "os_version", "os_distro"}

// check runs the checks of one (block, exists) pair; the first failure wins.
func (u *Usage) check(block []stream.Event, exists stream.Event) *usageError {
	apb, hasAPB := datetimeTrait(exists, "audit_period_beginning")
	ape, hasAPE := datetimeTrait(exists, "audit_period_ending")
	inPeriod := func(t time.Time) bool { return hasAPB && hasAPE && !t.Before(apb) && !t.After(ape) }
	state, _ := exists.Traits["state"]
	launchedV, hasLaunched := exists.Traits["launched_at"]
	launched, launchedIsTime := datetimeTrait(exists, "launched_at")

	// 1. Launch check.
	if state.Kind() == stream.KindString && state.Text() == "active" {
		if !hasLaunched || falsy(launchedV) {
			return &usageError{"U1", ".exists has no launched_at value."}
		}
		if launchedIsTime && inPeriod(launched) && len(block) == 0 {
			return &usageError{"U8", ".exists launched_at in audit period, but no related events found."}
		}
	}

	// 2. Operation check: the last interesting event of the block.
	var op *stream.Event
	for i := range block {
		if usageOperationTypes[block[i].Type] {
			op = &block[i]
		}
	}
	if op != nil {
		if err := compareFields(*op, exists, usageOperationFields); err != nil {
			return err
		}
	} else if hasAPB && hasAPE && !sameDate(ape, apb.AddDate(0, 0, 1)) {
		u.warnings = append(u.warnings, fmt.Sprintf("Non-EOD .exists found (msg_id: %s) with no operation event.", exists.MessageID))
	}

	// 3. Delete check.
	var deletes []stream.Event
	for _, e := range block {
		if e.Type == "compute.instance.delete.end" {
			deletes = append(deletes, e)
		}
	}
	deletedV, hasDeleted := exists.Traits["deleted_at"]
	if hasDeleted && falsy(deletedV) {
		hasDeleted = false
	}
	deleted, deletedIsTime := datetimeTrait(exists, "deleted_at")
	if len(deletes) > 0 && !hasDeleted {
		return &usageError{"U6", ".deleted events found but .exists has no deleted_at value."}
	}
	if hasDeleted && !(state.Kind() == stream.KindString && state.Text() == "deleted") {
		return &usageError{"U3", ".exists state not 'deleted' but .exists deleted_at is set."}
	}
	if hasDeleted && len(deletes) == 0 {
		if deletedIsTime && launchedIsTime && deleted.Before(launched) {
			return &usageError{"U4", ".exists deleted_at < .exists launched_at."}
		}
		if deletedIsTime && inPeriod(deleted) {
			return &usageError{"U5", ".exists deleted_at in audit period, but no matching .delete event found."}
		}
	}
	if len(deletes) > 1 {
		return &usageError{"U7", "Multiple .delete.end events"}
	}
	if len(deletes) == 1 {
		if err := compareFields(exists, deletes[0], []string{"launched_at", "deleted_at"}); err != nil {
			return err
		}
	}
	return nil
}

// compareFields compares fields of a and b (a's value first in the
// message). Fields absent on both sides are skipped; a field present on one
// side only is a conflict.
func compareFields(a, b stream.Event, fields []string) *usageError {
	for _, f := range fields {
		av, aok := a.Traits[f]
		bv, bok := b.Traits[f]
		if !aok && !bok {
			continue
		}
		if aok && bok && valuesEqual(av, bv) {
			continue
		}
		return &usageError{"U2", fmt.Sprintf("Conflicting '%s' values ('%s' != '%s')", f, pyStr(av, aok), pyStr(bv, bok))}
	}
	return nil
}

// valuesEqual is typed equality, except that an int and a float with the
// same numeric value are equal (as in the original).
func valuesEqual(a, b stream.Value) bool {
	if a.Equal(b) {
		return true
	}
	x, xok := a.Number()
	y, yok := b.Number()
	return xok && yok && x == y
}

// pyStr renders a value as the original's messages do: datetimes as
// "YYYY-MM-DD HH:MM:SS[.ffffff]", a missing value as None.
func pyStr(v stream.Value, ok bool) string {
	if !ok {
		return "None"
	}
	switch v.Kind() {
	case stream.KindDatetime:
		t := v.Time()
		if t.Nanosecond() == 0 {
			return t.Format("2006-01-02 15:04:05")
		}
		return t.Format("2006-01-02 15:04:05.000000")
	case stream.KindInt:
		return strconv.FormatInt(v.IntValue(), 10)
	}
	return v.String()
}

// falsy reports the original's notion of an empty value.
func falsy(v stream.Value) bool {
	switch v.Kind() {
	case stream.KindString:
		return v.Text() == ""
	case stream.KindInt:
		return v.IntValue() == 0
	case stream.KindFloat:
		return v.FloatValue() == 0
	}
	return false
}

func datetimeTrait(e stream.Event, name string) (time.Time, bool) {
	v, ok := e.Traits[name]
	if !ok || v.Kind() != stream.KindDatetime {
		return time.Time{}, false
	}
	return v.Time(), true
}

func sameDate(a, b time.Time) bool {
	ay, am, ad := a.Date()
	by, bm, bd := b.Date()
	return ay == by && am == bm && ad == bd
}

// Commit does nothing: the verdicts are new events, stored by the worker.
func (u *Usage) Commit(context.Context) error { return nil }

// Rollback does nothing.
func (u *Usage) Rollback(context.Context) error { return nil }

var _ pipeline.Handler = (*Usage)(nil)
