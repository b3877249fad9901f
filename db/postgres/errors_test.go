package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/puddle/v2"

	"github.com/winchester-go/winchester/db"
)

func TestInterpretError(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want error // nil: none of the sentinels
	}{
		{name: "no rows", err: pgx.ErrNoRows, want: db.ErrNotFound},
		{name: "wrapped no rows", err: fmt.Errorf("scan: %w", pgx.ErrNoRows), want: db.ErrNotFound},
		{name: "unique violation", err: &pgconn.PgError{Code: "23505", Message: "duplicate key"}, want: db.ErrDuplicate},
		{name: "serialization failure", err: &pgconn.PgError{Code: "40001"}, want: db.ErrAborted},
		{name: "deadlock", err: &pgconn.PgError{Code: "40P01"}, want: db.ErrAborted},
		{name: "admin shutdown", err: &pgconn.PgError{Code: "57P01"}, want: db.ErrUnavailable},
		{name: "connection failure", err: &pgconn.PgError{Code: "08006"}, want: db.ErrUnavailable},
		{name: "cannot connect now", err: &pgconn.PgError{Code: "57P03"}, want: db.ErrUnavailable},
		{name: "network error", err: &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset")}, want: db.ErrUnavailable},
		{name: "unexpected EOF", err: fmt.Errorf("receive message: %w", io.ErrUnexpectedEOF), want: db.ErrUnavailable},
		{name: "closed pool", err: puddle.ErrClosedPool, want: db.ErrUnavailable},
		{name: "closed conn", err: fmt.Errorf("lock: %w", pgconn.ErrConnClosed), want: db.ErrUnavailable},
		{name: "syntax error", err: &pgconn.PgError{Code: "42601", Message: "syntax error"}},
		{name: "foreign key", err: &pgconn.PgError{Code: "23503", Message: "violates foreign key"}},
		{name: "cancelled", err: fmt.Errorf("query: %w", context.Canceled)},
	}
	sentinels := []error{db.ErrNotFound, db.ErrDuplicate, db.ErrConflict, db.ErrAborted, db.ErrUnavailable}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := interpretError(tc.err)
			for _, s := range sentinels {
				if is := errors.Is(got, s); is != (s == tc.want) {
					t.Errorf("interpretError(%v) = %v; errors.Is(_, %v) = %v", tc.err, got, s, is)
				}
			}
			if tc.want == nil && errors.Is(tc.err, context.Canceled) && !errors.Is(got, context.Canceled) {
				t.Errorf("interpretError(%v) = %v, lost context.Canceled", tc.err, got)
			}
		})
	}
	if interpretError(nil) != nil {
		t.Errorf("interpretError(nil) != nil")
	}
}
