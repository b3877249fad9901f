package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

const definitionColumns = `version, digest, triggers, trigger_file, pipelines, pipeline_file, source, created_at`

func scanDefinitionVersion(sc scanner) (db.DefinitionVersion, error) {
	var (
		v       db.DefinitionVersion
		created int64
	)
	if err := sc.Scan(&v.Version, &v.Digest, &v.Triggers, &v.TriggerFile, &v.Pipelines, &v.PipelineFile, &v.Source, &created); err != nil {
		return v, err
	}
	v.CreatedAt = db.FromMicros(created)
	return v, nil
}

const insertDefinitionVersionSQL = `
INSERT INTO definition_version (version, digest, triggers, trigger_file, pipelines, pipeline_file, source, created_at)
SELECT COALESCE(MAX(version), 0) + 1, ?, ?, ?, ?, ?, ?, ? FROM definition_version
RETURNING ` + definitionColumns

// changeStreamsSQL makes the active streams of a trigger created before a
// version and not ready to fire ready to fire (or to expire) now, and
// closes them for new events.
var changeStreamsSQL = `
UPDATE stream SET open = 0,
       fire_timestamp = CASE WHEN ?1 THEN ?2 ELSE fire_timestamp END,
       fire_counts = CASE WHEN ?1 THEN NULL ELSE fire_counts END,
       expire_timestamp = CASE WHEN ?1 THEN expire_timestamp ELSE ?2 END
 WHERE name = ?3 AND definition_version < ?4 AND state = ` + db.StateSQL(stream.StateActive) + ` AND fire_timestamp IS NULL`

// SaveDefinitionVersion implements db.DefinitionStore. Write transactions
// are serialised (BEGIN IMMEDIATE), so concurrent savers see each other's
// versions.
func (o ops) SaveDefinitionVersion(ctx context.Context, p db.NewDefinitionVersion) (db.DefinitionVersion, bool, int64, error) {
	var (
		v       db.DefinitionVersion
		created bool
		changed int64
	)
	err := o.atomic(ctx, func(o ops) error {
		latest, err := scanDefinitionVersion(o.queryRow(ctx, `SELECT `+definitionColumns+` FROM definition_version ORDER BY version DESC LIMIT 1`))
		switch {
		case errors.Is(err, sql.ErrNoRows):
		case err != nil:
			return o.s.translate(err)
		case latest.Digest == p.Digest:
			v = latest
			return nil
		}
		v, err = scanDefinitionVersion(o.queryRow(ctx, insertDefinitionVersionSQL, p.Digest, p.Triggers, p.TriggerFile,
			p.Pipelines, p.PipelineFile, p.Source, db.Micros(p.Now)))
		if err != nil {
			return o.s.translate(err)
		}
		created = true
		for _, c := range p.Changes {
			res, err := o.exec(ctx, changeStreamsSQL, c.Action == db.Fire, db.Micros(p.Now), c.Trigger, v.Version)
			if err != nil {
				return o.s.translate(err)
			}
			n, err := res.RowsAffected()
			if err != nil {
				return o.s.translate(err)
			}
			changed += n
		}
		return nil
	})
	if err != nil {
		return db.DefinitionVersion{}, false, 0, fmt.Errorf("sqlite: save definition version: %w", err)
	}
	return v, created, changed, nil
}

// LatestDefinitionVersion implements db.DefinitionStore.
func (o ops) LatestDefinitionVersion(ctx context.Context) (int64, string, error) {
	var (
		version int64
		digest  string
	)
	err := o.queryRow(ctx, `SELECT version, digest FROM definition_version ORDER BY version DESC LIMIT 1`).Scan(&version, &digest)
	if err != nil {
		return 0, "", fmt.Errorf("sqlite: latest definition version: %w", o.s.translate(err))
	}
	return version, digest, nil
}

// DefinitionVersion implements db.DefinitionStore.
func (o ops) DefinitionVersion(ctx context.Context, version int64) (db.DefinitionVersion, error) {
	v, err := scanDefinitionVersion(o.queryRow(ctx, `SELECT `+definitionColumns+` FROM definition_version WHERE version = ?`, version))
	if err != nil {
		return v, fmt.Errorf("sqlite: definition version %d: %w", version, o.s.translate(err))
	}
	return v, nil
}

// DefinitionVersions implements db.DefinitionStore.
func (o ops) DefinitionVersions(ctx context.Context, limit int) ([]db.DefinitionVersion, error) {
	if limit <= 0 {
		limit = -1
	}
	out, err := collect(scanDefinitionVersion)(o.query(ctx, `
SELECT version, digest, '', trigger_file, '', pipeline_file, source, created_at
  FROM definition_version ORDER BY version DESC LIMIT ?`, limit))
	if err != nil {
		return nil, fmt.Errorf("sqlite: definition versions: %w", o.s.translate(err))
	}
	return out, nil
}

var _ db.DefinitionStore = (*Store)(nil)
