package db

import (
	"context"
	"time"
)

// DefinitionStore is the optional capability of storing versioned trigger
// and pipeline definitions (live definitions): each version holds the
// source texts of the two files and their digest, and the newest version
// is the running one. Versions are numbered 1, 2, … and never change once
// stored; a rollback stores an old version's texts as a new version. Both
// drivers implement it on their Store; dbtest.Exercise specifies it. What
// the texts mean (parsing, validation, diffs) is the root package's
// business: the store only keeps them.
type DefinitionStore interface {
	// SaveDefinitionVersion stores p as the next version (the newest plus
	// one, 1 when there is none), in one transaction with p.Changes
	// applied to the open streams of earlier versions, and returns it with
	// the number of streams changed. When the newest version has
	// p.Digest already, nothing is written and created is false: applying
	// the same definitions twice makes one version. Concurrent calls are
	// serialised: each sees the version the other stored.
	SaveDefinitionVersion(ctx context.Context, p NewDefinitionVersion) (v DefinitionVersion, created bool, changed int64, err error)
	// LatestDefinitionVersion returns the number and digest of the newest
	// version; ErrNotFound when none is stored. It is the cheap query
	// every process polls.
	LatestDefinitionVersion(ctx context.Context) (version int64, digest string, err error)
	// DefinitionVersion returns one version with its texts; ErrNotFound
	// when it does not exist.
	DefinitionVersion(ctx context.Context, version int64) (DefinitionVersion, error)
	// DefinitionVersions lists up to limit versions (0: all), newest
	// first, without their texts.
	DefinitionVersions(ctx context.Context, limit int) ([]DefinitionVersion, error)
}

// DefinitionVersion is one stored version of the definitions.
type DefinitionVersion struct {
	Version int64
	// Digest identifies the texts (the root package computes it).
	Digest string
	// Triggers and Pipelines are the source texts of triggers.yaml and
	// pipelines.yaml; TriggerFile and PipelineFile the names their
	// problems are reported under.
	Triggers     string
	TriggerFile  string
	Pipelines    string
	PipelineFile string
	// Source says where the version came from ("files", "api", "cli",
	// "rollback to 3").
	Source    string
	CreatedAt time.Time
}

// NewDefinitionVersion is a version to store.
type NewDefinitionVersion struct {
	Digest       string
	Triggers     string
	TriggerFile  string
	Pipelines    string
	PipelineFile string
	Source       string
	// Changes are applied, in the same transaction, to the streams of
	// earlier versions that are still active and not ready to fire.
	Changes []StreamChange
	Now     time.Time
}

// StreamChange says what becomes of the active streams of a trigger that
// were created under an earlier version and are not ready to fire yet:
// Fire sets their fire timestamp to Now, Expire their expire timestamp;
// either also closes them for new events, which then go to a new stream
// of the new version. Streams ready to fire are left to fire.
type StreamChange struct {
	Trigger string
	Action  Action
}
