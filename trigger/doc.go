// Package trigger holds trigger definitions (triggers.yaml) and everything
// needed to evaluate them against events: criteria matching, distinguishing
// traits, expiry and fire criteria, and the Manager that puts events into
// streams.
//
// # Loading
//
// Load and Parse decode a triggers file from yaml.v3 nodes, so every
// problem is a *DefinitionError naming file, line, trigger and field; all
// problems of a file are reported together (errors.Join). Unknown keys are
// errors, except map_distingushed_by (the misspelling shipped in the
// original sample), read as map_distinguished_by with a Warning. Loading
// also rejects what the original accepted and then failed on, or silently
// never matched: duplicate trigger names, distinguished_by given as a plain
// string, empty or multi-key distinguishing mappings, numeric operators
// other than =, > and <, unknown criterion types, boolean, null and list
// constants, a non-numeric fire_delay or debug_level, and time expressions
// that do not parse (expiration, distinguishing mappings, criteria
// timestamps and datetime criteria are all parsed here, once; a parse
// failure wraps the *timex.SyntaxError).
//
// # Matching
//
// Event types are matched with Python fnmatch semantics: "*" crosses dots,
// "?" is one character, "[a-c]" and "[!a-c]" are classes, everything else
// is literal, case-sensitive and anchored; "!pattern" excludes. Patterns
// are compiled to anchored regular expressions at load (plain names are
// compared as strings). Trait criteria compare with typed semantics: an int
// equals a float of the same value but never a string, and a value of the
// wrong type is simply no match. Matching sees the normalised stream.Event,
// in which null and unsupported trait values no longer exist.
//
// A trigger is applied to an event in two steps: Definition.Match finds the
// first match criteria entry the event satisfies and checks that every
// distinguishing trait is present (read through that entry's
// map_distinguished_by); Definition.Distinguish computes the values, which
// can still fail (an expression over a trait that is not a datetime).
// Set.Candidates narrows the definitions to those whose event-type
// patterns accept the event's type, so an event visits only triggers that
// can match.
//
// # Fire criteria
//
// Fire criteria are evaluated incrementally: FireCounts adds one event's
// contributions to per-criterion counts (each capped at its number) and
// Satisfied tells whether every criterion reached its number. Counts only
// grow while a stream is active, so a stream can keep its counts instead of
// re-reading its events; ShouldFire evaluates a whole list at once.
//
// Definitions, Criteria and Sets are read-only after loading and safe for
// concurrent use.
package trigger
