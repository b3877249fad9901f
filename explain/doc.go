// Package explain answers the operator's two questions "why did this
// stream not fire?" and "why did this event not land where I expected?".
//
// An Explainer reads the store and the current trigger definitions; it
// writes nothing and counts nothing, so explaining an event has no effect
// on the engine. It does not match events itself: it asks package trigger,
// whose matcher (Definition.WhyNot, Criteria.Match) is the one ingestion
// uses, for the verdict and the reason behind it.
//
//   - Stream explains a stream by id: every fire criterion with the number
//     of events it needs and has, the fire time and expiry and what they
//     were computed from (the timex expression and its variables), what is
//     left to happen ("waiting for 1 more compute.instance.exists, or
//     expiry at 2014-08-01T12:00:00"), and its state, attempts and last
//     error (in the stream's one JSON form, stream.JSON).
//   - Event, GivenEvent, Notification and Body explain an event (stored,
//     given, distilled from a raw notification, or any of these as JSON)
//     against every trigger: whether it matched, which match criteria entry,
//     the distinguishing values and key and the stream it went to or would
//     go to, or the first reason it did not.
//
// Explanations are made with the definitions in force now: a stream or a
// stored event that was handled under other definitions is explained as
// the current ones see it (a note says so when it shows).
//
// The result types are the JSON answers of GET /v1/streams/{id}/explain and
// POST /v1/explain and of `winchester explain ... -o json`; their field
// names are stable. WriteText renders them for people.
package explain
