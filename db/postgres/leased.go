package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
)

// The statements of jobs' and subscribers' rows.
var (
	jobRows        = db.JobTable().Statements(db.DollarParam)
	subscriberRows = db.SubscriberTable().Statements(db.DollarParam)
)

// readLeased reads the row name of l with scan (which interprets its
// errors).
func readLeased[T any](ctx context.Context, o *ops, l db.LeasedStatements, scan func(pgx.Row) (T, error), name string) (T, error) {
	v, err := scan(o.q.QueryRow(ctx, l.Select, name))
	if err != nil {
		return v, fmt.Errorf("postgres: %s %q: %w", l.Table, name, err)
	}
	return v, nil
}

// listLeased reads every row of l, by name.
func listLeased[T any](ctx context.Context, o *ops, l db.LeasedStatements, scan func(pgx.Row) (T, error)) ([]T, error) {
	out, err := collect(scan)(o.q.Query(ctx, l.List))
	if err != nil {
		return nil, fmt.Errorf("postgres: %ss: %w", l.Table, err)
	}
	return out, nil
}

// collect returns a function that scans every row of a query with scan
// and closes the rows, interpreting the errors; it takes the query's
// results as they are, so a call reads collect(scanJob)(o.q.Query(...)).
func collect[T any](scan func(pgx.Row) (T, error)) func(pgx.Rows, error) ([]T, error) {
	return func(rows pgx.Rows, err error) ([]T, error) {
		if err != nil {
			return nil, interpretError(err)
		}
		defer rows.Close()
		var out []T
		for rows.Next() {
			v, err := scan(rows)
			if err != nil {
				return nil, interpretError(err)
			}
			out = append(out, v)
		}
		return out, interpretError(rows.Err())
	}
}

// updateLeased is the compare-and-set of a row of l: it stores set (the
// values of the table's Set columns) in row name if its serial is serial
// and, in the same transaction, runs history (which records the rows that
// go with the change; nil: none). It returns the row as stored;
// db.ErrConflict when the serial differs, db.ErrNotFound when there is no
// such row.
func updateLeased[T any](ctx context.Context, o *ops, l db.LeasedStatements, scan func(pgx.Row) (T, error),
	name string, serial int64, set []any, history func(q querier) error) (T, error) {
	var v T
	err := o.inTx(ctx, func(q querier) error {
		var err error
		v, err = scan(q.QueryRow(ctx, l.Update, append([]any{name, serial}, set...)...))
		if errors.Is(err, db.ErrNotFound) {
			_, serr := scan(q.QueryRow(ctx, l.Select, name))
			return db.CompareAndSetMissed(serr == nil)
		}
		if err != nil {
			return err
		}
		if history != nil {
			return history(q)
		}
		return nil
	})
	if err != nil {
		var zero T
		return zero, fmt.Errorf("postgres: update %s %q: %w", l.Table, name, err)
	}
	return v, nil
}

// renewLease moves the lease of row name of l to until, if its serial is
// serial and worker holds it; db.ErrConflict otherwise.
func (o *ops) renewLease(ctx context.Context, l db.LeasedStatements, name string, serial int64, worker string, until time.Time) error {
	tag, err := o.q.Exec(ctx, l.Renew, name, serial, worker, db.Micros(until))
	if err == nil && tag.RowsAffected() != 1 {
		err = db.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("postgres: renew lease of %s %q: %w", l.Table, name, interpretError(err))
	}
	return nil
}
