// Package workload generates a deterministic, realistic load for the
// engine: OpenStack nova compute notifications for a number of instances
// over a number of days, shaped like the notifications nova emits (the
// envelope with its _context_* keys, publisher_id, priority, and a full
// instance payload with flavor sizes, state, image_meta with dotted keys,
// launched_at, deleted_at and audit periods).
//
// # What is generated
//
// Every instance gets a tenant and user (a tenant has about eight
// instances), a compute host (about one host per 25 instances), a flavor
// (m1.tiny … m1.xlarge, small ones more often) and an image. About half of
// the instances exist before the first day (they were launched up to 90
// days earlier); the others are created on a random day of the period
// (compute.instance.create.start, then .create.end 15 to 90 seconds later).
// About a quarter are deleted on a later day of the period
// (delete.start, delete.end). On any day an instance may be updated
// (compute.instance.update, one day in five), resized
// (resize.prep.start/.end, resize.start/.end, finish_resize.start/.end,
// one day in 25, changing its flavor and sometimes its host) or rebuilt
// (rebuild.start/.end, one day in 50, changing its image). Actions of one
// instance on one day never overlap and happen between 00:20 and about
// 23:15.
//
// Just after midnight of each day (within the first twenty minutes) nova's
// audit sends one compute.instance.exists per instance that existed at any
// time of the day before, with that day as audit_period_beginning and
// audit_period_ending. The exists notifications of the last day of the
// period are therefore timestamped just after the period: Days days give
// Days audit periods.
//
// Notifications come out in timestamp order (ties keep their generation
// order); timestamps carry random microseconds, so the order interleaves
// instances and hosts as a real message bus would. Message ids and request
// ids are random version 4 UUIDs drawn from the seeded generator, so they
// are unique yet reproducible.
//
// # Determinism
//
// All randomness comes from one math/rand/v2 PCG source seeded with
// Config.Seed: the same Config gives byte-identical output. Memory use is
// proportional to the number of instances, not to the output: notifications
// are produced one day at a time.
package workload
