package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
	"github.com/winchester-go/winchester/db/postgres"
	"github.com/winchester-go/winchester/stream"
)

// A read-only store refuses writes even on a primary: its sessions run
// with default_transaction_read_only, so the server refuses them. It
// reads, and tells that a primary is not in recovery.
func TestReadOnlyStoreOnAPrimary(t *testing.T) {
	t.Parallel()
	url := dbtest.PostgresURL(t)
	rw, err := postgres.Open(t.Context(), url, db.Options{Migrate: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rw.Close()
	ev := stream.Event{MessageID: "m-1", Type: "compute.instance.exists", Timestamp: time.Date(2026, 1, 16, 0, 0, 0, 0, time.UTC),
		Traits: map[string]stream.Value{"instance_id": stream.String("i-1")}}
	if _, err := rw.SaveEvents(t.Context(), []stream.Event{ev}); err != nil {
		t.Fatal(err)
	}

	ro, err := postgres.Open(t.Context(), url, db.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	got, err := ro.EventByMessageID(t.Context(), "m-1")
	if err != nil || got.Event.MessageID != "m-1" {
		t.Errorf("EventByMessageID through the read-only store = %+v, %v", got, err)
	}
	ev.MessageID = "m-2"
	if _, err := ro.SaveEvents(t.Context(), []stream.Event{ev}); err == nil || !strings.Contains(err.Error(), "read-only transaction") {
		t.Errorf("SaveEvents through the read-only store: %v, want the server's refusal", err)
	}
	err = ro.InTx(t.Context(), func(ctx context.Context, tx db.Ops) error {
		_, err := tx.PurgeEvents(ctx, []int64{got.ID})
		return err
	})
	if err == nil || !strings.Contains(err.Error(), "read-only transaction") {
		t.Errorf("PurgeEvents in a transaction of the read-only store: %v, want the server's refusal", err)
	}
	if _, err := rw.EventByMessageID(t.Context(), "m-1"); err != nil {
		t.Errorf("the refused purge deleted the event: %v", err)
	}
	st, err := ro.ReplicaStatus(t.Context())
	if err != nil || st.InRecovery || st.Lag != 0 {
		t.Errorf("ReplicaStatus of a primary = %+v, %v; want not in recovery, no lag", st, err)
	}

	// Its sessions are named, unless the URL names them.
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.WithoutCancel(t.Context()))
	var n int
	if err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`,
		postgres.ReadApplicationName).Scan(&n); err != nil || n == 0 {
		t.Errorf("sessions named %s: %d, %v; want some", postgres.ReadApplicationName, n, err)
	}

	if _, err := postgres.Open(t.Context(), url, db.Options{ReadOnly: true, Migrate: true}); err == nil {
		t.Error("Open with ReadOnly and Migrate: no error")
	}
}
