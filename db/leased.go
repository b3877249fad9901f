package db

import (
	"strconv"
	"strings"
)

// LeasedTable is the SQL of a table of leased rows, written once for
// every driver. Scheduled jobs (JobStore) and event subscribers
// (SubscriberStore) are leased rows: one row per name (the key column
// name) guarded by a serial number (serial_no) and held by a worker
// (claimed_by) until its lease runs out (lease_until). A worker claims a
// row, and changes it afterwards, with UpdateSQL: a compare-and-set on
// the serial that increments it; it extends its claim with RenewSQL,
// which checks the serial and the holder and leaves the serial as it is.
// The drivers scan the columns in the order of Columns.
type LeasedTable struct {
	// Table is the table's name.
	Table string
	// Set are the columns a change stores, in the order of UpdateSQL's
	// parameters after the name and the serial.
	Set []string
}

// JobTable is the table of JobStore's rows (table job).
func JobTable() LeasedTable {
	return LeasedTable{Table: "job", Set: []string{"last_end", "window_start", "window_end", "attempts",
		"claimed_by", "lease_until", "retry_at", "last_error", "updated_at"}}
}

// SubscriberTable is the table of SubscriberStore's rows (table
// subscriber).
func SubscriberTable() LeasedTable {
	return LeasedTable{Table: "subscriber", Set: []string{"position_xact", "position_id", "claimed_by",
		"lease_until", "delivered", "failures", "last_error", "updated_at"}}
}

// Param formats the SQL text of a driver's numbered parameter n (from 1):
// "$n" for PostgreSQL, "?n" for SQLite.
type Param func(n int) string

// DollarParam is PostgreSQL's parameter: $n.
func DollarParam(n int) string { return "$" + strconv.Itoa(n) }

// QuestionParam is SQLite's numbered parameter: ?n.
func QuestionParam(n int) string { return "?" + strconv.Itoa(n) }

// Columns returns the columns a row is read with: name, serial_no and
// the Set columns.
func (t LeasedTable) Columns() string {
	return "name, serial_no, " + strings.Join(t.Set, ", ")
}

// SelectSQL reads the row named by parameter 1.
func (t LeasedTable) SelectSQL(p Param) string {
	return `SELECT ` + t.Columns() + ` FROM ` + t.Table + ` WHERE name = ` + p(1)
}

// ListSQL reads every row, by name.
func (t LeasedTable) ListSQL() string {
	return `SELECT ` + t.Columns() + ` FROM ` + t.Table + ` ORDER BY name`
}

// UpdateSQL is the compare-and-set of every change: it stores the Set
// columns (parameters 3 and on) in the row named by parameter 1 if its
// serial is parameter 2, increments the serial and returns the row as
// stored (Columns). No row returned: the serial differs, or no such row
// (CompareAndSetMissed tells which).
func (t LeasedTable) UpdateSQL(p Param) string {
	var b strings.Builder
	b.WriteString(`UPDATE ` + t.Table + ` SET serial_no = serial_no + 1`)
	for i, c := range t.Set {
		b.WriteString(", " + c + " = " + p(i+3))
	}
	b.WriteString(` WHERE name = ` + p(1) + ` AND serial_no = ` + p(2) + ` RETURNING ` + t.Columns())
	return b.String()
}

// RenewSQL moves the lease of the row named by parameter 1 to parameter
// 4, only if its serial is parameter 2 and the worker of parameter 3
// holds it; the serial is unchanged. No row affected: the claim was lost
// (ErrConflict).
func (t LeasedTable) RenewSQL(p Param) string {
	return `UPDATE ` + t.Table + ` SET lease_until = ` + p(4) + ` WHERE name = ` + p(1) + ` AND serial_no = ` + p(2) +
		` AND claimed_by = ` + p(3) + ` AND claimed_by <> ''`
}

// CompareAndSetMissed is the error of an UpdateSQL that returned no row,
// given whether the row exists (read with SelectSQL in the same
// transaction): ErrConflict when it does (another process changed its
// serial), ErrNotFound when it does not.
func CompareAndSetMissed(exists bool) error {
	if exists {
		return ErrConflict
	}
	return ErrNotFound
}

// LeasedStatements are the statements of a LeasedTable in one driver's
// form, built once by the driver.
type LeasedStatements struct {
	Table                       string // the table; also the word errors name a row by
	Select, List, Update, Renew string // SelectSQL, ListSQL, UpdateSQL, RenewSQL
}

// Statements returns t's statements with the parameters of p.
func (t LeasedTable) Statements(p Param) LeasedStatements {
	return LeasedStatements{Table: t.Table, Select: t.SelectSQL(p), List: t.ListSQL(), Update: t.UpdateSQL(p), Renew: t.RenewSQL(p)}
}
