package winchester

import (
	"errors"
	"path/filepath"
	"strings"
	"testing"
)

func TestNormalizeDatabaseURL(t *testing.T) {
	const base = "/srv/winchester/etc"
	tests := []struct {
		name    string
		raw     string
		want    string
		wantErr string
		mysql   bool
	}{
		{name: "sqlite relative", raw: "sqlite:///winchester.db", want: "sqlite:///srv/winchester/etc/winchester.db"},
		{name: "sqlite relative subdirectory", raw: "sqlite:///../var/w.db", want: "sqlite:///srv/winchester/var/w.db"},
		{name: "sqlite absolute", raw: "sqlite:////var/lib/winchester/w.db", want: "sqlite:///var/lib/winchester/w.db"},
		{name: "sqlite memory, empty path", raw: "sqlite://", want: "sqlite://:memory:"},
		{name: "sqlite memory, explicit", raw: "sqlite:///:memory:", want: "sqlite://:memory:"},
		{name: "sqlite with query", raw: "sqlite:///w.db?_pragma=foreign_keys(1)", want: "sqlite:///srv/winchester/etc/w.db?_pragma=foreign_keys(1)"},
		{name: "sqlite driver suffix", raw: "sqlite+pysqlite:///w.db", want: "sqlite:///srv/winchester/etc/w.db"},
		{name: "sqlite scheme case", raw: "SQLite:///w.db", want: "sqlite:///srv/winchester/etc/w.db"},
		{name: "sqlite with host", raw: "sqlite://host/w.db", wantErr: "a SQLite URL has no host"},
		{name: "postgresql", raw: "postgresql://w:pw@db:5432/winchester?sslmode=disable", want: "postgres://w:pw@db:5432/winchester?sslmode=disable"},
		{name: "postgres", raw: "postgres://w@db/winchester", want: "postgres://w@db/winchester"},
		{name: "psycopg2 suffix", raw: "postgresql+psycopg2://w:pw@db/winchester", want: "postgres://w:pw@db/winchester"},
		{name: "postgres socket", raw: "postgres:///winchester?host=/var/run/postgresql", want: "postgres:///winchester?host=/var/run/postgresql"},
		{name: "postgres bad port hides password", raw: "postgresql://w:secret@db:port/x", wantErr: `"postgresql://xxxxx@db:port/x": invalid port`},
		{name: "mysql", raw: "mysql://winchester:testpasswd@localhost/winchester", wantErr: "MySQL is not supported; use PostgreSQL or SQLite", mysql: true},
		{name: "mysql pymysql", raw: "mysql+pymysql://w@localhost/w", wantErr: "MySQL is not supported", mysql: true},
		{name: "unknown scheme", raw: "oracle://w@db/x", wantErr: `unsupported scheme "oracle"`},
		{name: "not a URL", raw: "winchester.db", wantErr: "want scheme://"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := NormalizeDatabaseURL(tc.raw, base)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("NormalizeDatabaseURL(%q) = %q, %v, want error containing %q", tc.raw, got, err, tc.wantErr)
				}
				if errors.Is(err, ErrMySQL) != tc.mysql {
					t.Errorf("errors.Is(%v, ErrMySQL) = %v, want %v", err, !tc.mysql, tc.mysql)
				}
				if strings.Contains(err.Error(), "secret") || strings.Contains(err.Error(), "testpasswd") {
					t.Errorf("error %q shows the password", err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Errorf("NormalizeDatabaseURL(%q) = %q, %v, want %q", tc.raw, got, err, tc.want)
			}
		})
	}
}

func TestNormalizeDatabaseURLRelativeBase(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	got, err := NormalizeDatabaseURL("sqlite:///w.db", ".")
	if want := "sqlite://" + filepath.Join(dir, "w.db"); err != nil || got != want {
		t.Errorf("NormalizeDatabaseURL(sqlite:///w.db, .) = %q, %v, want %q", got, err, want)
	}
}

func TestMaskURL(t *testing.T) {
	tests := []struct{ raw, want string }{
		{"postgres://w:secret@db:5432/x?sslmode=disable", "postgres://w:xxxxx@db:5432/x?sslmode=disable"},
		{"postgres://w@db/x", "postgres://w@db/x"},
		{"postgres://db/x?user=w&password=secret", "postgres://db/x?password=xxxxx&user=w"},
		{"sqlite:///srv/w.db", "sqlite:///srv/w.db"},
		{"sqlite://:memory:", "sqlite://:memory:"},
		{"postgresql://w:secret@db:port/x", "postgresql://xxxxx@db:port/x"},
	}
	for _, tc := range tests {
		if got := MaskURL(tc.raw); got != tc.want {
			t.Errorf("MaskURL(%q) = %q, want %q", tc.raw, got, tc.want)
		}
	}
}
