package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/winchester-go/winchester/db"
)

// The statements of jobs' and subscribers' rows.
var (
	jobRows        = db.JobTable().Statements(db.QuestionParam)
	subscriberRows = db.SubscriberTable().Statements(db.QuestionParam)
)

// readLeased reads the row name of l with scan.
func readLeased[T any](ctx context.Context, o ops, l db.LeasedStatements, scan func(scanner) (T, error), name string) (T, error) {
	v, err := scan(o.queryRow(ctx, l.Select, name))
	if err != nil {
		return v, fmt.Errorf("sqlite: %s %q: %w", l.Table, name, o.s.translate(err))
	}
	return v, nil
}

// listLeased reads every row of l, by name.
func listLeased[T any](ctx context.Context, o ops, l db.LeasedStatements, scan func(scanner) (T, error)) ([]T, error) {
	out, err := collect(scan)(o.query(ctx, l.List))
	if err != nil {
		return nil, fmt.Errorf("sqlite: %ss: %w", l.Table, o.s.translate(err))
	}
	return out, nil
}

// updateLeased is the compare-and-set of a row of l: it stores set (the
// values of the table's Set columns) in row name if its serial is serial
// and, in the same transaction, runs history (which records the rows that
// go with the change; nil: none). It returns the row as stored;
// db.ErrConflict when the serial differs, db.ErrNotFound when there is no
// such row.
func updateLeased[T any](ctx context.Context, o ops, l db.LeasedStatements, scan func(scanner) (T, error),
	name string, serial int64, set []any, history func(o ops) error) (T, error) {
	var v T
	err := o.atomic(ctx, func(o ops) error {
		var err error
		v, err = scan(o.queryRow(ctx, l.Update, append([]any{name, serial}, set...)...))
		if errors.Is(err, sql.ErrNoRows) {
			_, serr := scan(o.queryRow(ctx, l.Select, name))
			return db.CompareAndSetMissed(serr == nil)
		}
		if err != nil {
			return o.s.translate(err)
		}
		if history != nil {
			return history(o)
		}
		return nil
	})
	if err != nil {
		var zero T
		return zero, fmt.Errorf("sqlite: update %s %q: %w", l.Table, name, err)
	}
	return v, nil
}

// renewLease moves the lease of row name of l to until, if its serial is
// serial and worker holds it; db.ErrConflict otherwise.
func (o ops) renewLease(ctx context.Context, l db.LeasedStatements, name string, serial int64, worker string, until time.Time) error {
	res, err := o.exec(ctx, l.Renew, name, serial, worker, db.Micros(until))
	var n int64
	if err == nil {
		n, err = res.RowsAffected()
	}
	if err == nil && n != 1 {
		err = db.ErrConflict
	}
	if err != nil {
		return fmt.Errorf("sqlite: renew lease of %s %q: %w", l.Table, name, o.s.translate(err))
	}
	return nil
}
