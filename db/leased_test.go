package db

import (
	"errors"
	"testing"
)

func TestLeasedTableSQL(t *testing.T) {
	tbl := LeasedTable{Table: "thing", Set: []string{"a", "b"}}
	for _, tc := range []struct {
		name, got, want string
	}{
		{"select", tbl.SelectSQL(DollarParam), `SELECT name, serial_no, a, b FROM thing WHERE name = $1`},
		{"list", tbl.ListSQL(), `SELECT name, serial_no, a, b FROM thing ORDER BY name`},
		{"update", tbl.UpdateSQL(QuestionParam),
			`UPDATE thing SET serial_no = serial_no + 1, a = ?3, b = ?4 WHERE name = ?1 AND serial_no = ?2 RETURNING name, serial_no, a, b`},
		{"renew", tbl.RenewSQL(DollarParam),
			`UPDATE thing SET lease_until = $4 WHERE name = $1 AND serial_no = $2 AND claimed_by = $3 AND claimed_by <> ''`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.got != tc.want {
				t.Errorf("got  %s\nwant %s", tc.got, tc.want)
			}
		})
	}
}

func TestCompareAndSetMissed(t *testing.T) {
	if err := CompareAndSetMissed(true); !errors.Is(err, ErrConflict) {
		t.Errorf("CompareAndSetMissed(true) = %v, want ErrConflict", err)
	}
	if err := CompareAndSetMissed(false); !errors.Is(err, ErrNotFound) {
		t.Errorf("CompareAndSetMissed(false) = %v, want ErrNotFound", err)
	}
}
