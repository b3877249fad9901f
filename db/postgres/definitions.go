package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/stream"
)

const definitionColumns = `version, digest, triggers, trigger_file, pipelines, pipeline_file, source, created_at`

func scanDefinitionVersion(row pgx.Row) (db.DefinitionVersion, error) {
	var (
		v       db.DefinitionVersion
		created int64
	)
	err := row.Scan(&v.Version, &v.Digest, &v.Triggers, &v.TriggerFile, &v.Pipelines, &v.PipelineFile, &v.Source, &created)
	if err != nil {
		return v, interpretError(err)
	}
	v.CreatedAt = db.FromMicros(created)
	return v, nil
}

// lockDefinitions serialises the writers of definition versions (the
// mode conflicts with itself, not with readers), so that each sees the
// newest version the other stored.
const lockDefinitions = `LOCK TABLE definition_version IN SHARE ROW EXCLUSIVE MODE`

const insertDefinitionVersion = `
INSERT INTO definition_version (version, digest, triggers, trigger_file, pipelines, pipeline_file, source, created_at)
SELECT COALESCE(MAX(version), 0) + 1, $1, $2, $3, $4, $5, $6, $7 FROM definition_version
RETURNING ` + definitionColumns

// changeStreams makes the active streams of trigger $1 created before
// version $2 and not ready to fire ready to fire ($3 true) or to expire
// at $4, and closes them for new events.
var changeStreams = `
UPDATE stream SET open = FALSE,
       fire_timestamp = CASE WHEN $3 THEN $4 ELSE fire_timestamp END,
       fire_counts = CASE WHEN $3 THEN NULL ELSE fire_counts END,
       expire_timestamp = CASE WHEN $3 THEN expire_timestamp ELSE $4 END
 WHERE name = $1 AND definition_version < $2 AND state = ` + db.StateSQL(stream.StateActive) + ` AND fire_timestamp IS NULL`

// SaveDefinitionVersion implements db.DefinitionStore.
func (o *ops) SaveDefinitionVersion(ctx context.Context, p db.NewDefinitionVersion) (db.DefinitionVersion, bool, int64, error) {
	var (
		v       db.DefinitionVersion
		created bool
		changed int64
	)
	err := o.inTx(ctx, func(q querier) error {
		if _, err := q.Exec(ctx, lockDefinitions); err != nil {
			return interpretError(err)
		}
		latest, err := scanDefinitionVersion(q.QueryRow(ctx, `SELECT `+definitionColumns+` FROM definition_version ORDER BY version DESC LIMIT 1`))
		switch {
		case errors.Is(err, db.ErrNotFound):
		case err != nil:
			return err
		case latest.Digest == p.Digest:
			v = latest
			return nil
		}
		v, err = scanDefinitionVersion(q.QueryRow(ctx, insertDefinitionVersion, p.Digest, p.Triggers, p.TriggerFile,
			p.Pipelines, p.PipelineFile, p.Source, db.Micros(p.Now)))
		if err != nil {
			return err
		}
		created = true
		for _, c := range p.Changes {
			tag, err := q.Exec(ctx, changeStreams, c.Trigger, v.Version, c.Action == db.Fire, db.Micros(p.Now))
			if err != nil {
				return interpretError(err)
			}
			changed += tag.RowsAffected()
		}
		return nil
	})
	if err != nil {
		return db.DefinitionVersion{}, false, 0, fmt.Errorf("postgres: save definition version: %w", err)
	}
	return v, created, changed, nil
}

// LatestDefinitionVersion implements db.DefinitionStore.
func (o *ops) LatestDefinitionVersion(ctx context.Context) (int64, string, error) {
	var (
		version int64
		digest  string
	)
	err := o.q.QueryRow(ctx, `SELECT version, digest FROM definition_version ORDER BY version DESC LIMIT 1`).Scan(&version, &digest)
	if err != nil {
		return 0, "", fmt.Errorf("postgres: latest definition version: %w", interpretError(err))
	}
	return version, digest, nil
}

// DefinitionVersion implements db.DefinitionStore.
func (o *ops) DefinitionVersion(ctx context.Context, version int64) (db.DefinitionVersion, error) {
	v, err := scanDefinitionVersion(o.q.QueryRow(ctx, `SELECT `+definitionColumns+` FROM definition_version WHERE version = $1`, version))
	if err != nil {
		return v, fmt.Errorf("postgres: definition version %d: %w", version, err)
	}
	return v, nil
}

// DefinitionVersions implements db.DefinitionStore.
func (o *ops) DefinitionVersions(ctx context.Context, limit int) ([]db.DefinitionVersion, error) {
	rows, err := o.q.Query(ctx, `
SELECT version, digest, '', trigger_file, '', pipeline_file, source, created_at
  FROM definition_version ORDER BY version DESC LIMIT $1`, limitArg(limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: definition versions: %w", interpretError(err))
	}
	defer rows.Close()
	var out []db.DefinitionVersion
	for rows.Next() {
		v, err := scanDefinitionVersion(rows)
		if err != nil {
			return nil, fmt.Errorf("postgres: definition versions: %w", err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: definition versions: %w", interpretError(err))
	}
	return out, nil
}

var _ db.DefinitionStore = (*Store)(nil)
