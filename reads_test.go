package winchester

import (
	"context"
	"strings"
	"testing"
)

func TestReadURL(t *testing.T) {
	tests := []struct {
		name     string
		text     string
		override *string // --read-url
		want     string  // Config.ReadURL
		problems []string
	}{
		{
			name: "none",
			text: "database:\n  url: postgresql://w@db/winchester\n",
		},
		{
			name: "replica in SQLAlchemy form",
			text: "database:\n  url: postgresql://w@db/winchester\n  read_url: postgresql+psycopg2://r:secret@replica:5433/winchester?sslmode=disable\n",
			want: "postgres://r:secret@replica:5433/winchester?sslmode=disable",
		},
		{
			name:     "flag overrides the file",
			text:     "database:\n  url: postgresql://w@db/winchester\n  read_url: postgresql://r@replica/winchester\n",
			override: ptr("postgresql://r@other/winchester"),
			want:     "postgres://r@other/winchester",
		},
		{
			name:     "an empty flag reads the primary",
			text:     "database:\n  url: postgresql://w@db/winchester\n  read_url: postgresql://r@replica/winchester\n",
			override: ptr(""),
		},
		{
			name:     "a SQLite read URL",
			text:     "database:\n  url: postgresql://w@db/winchester\n  read_url: sqlite:///copy.db\n",
			problems: []string{"w.yaml:3: database.read_url: sqlite:///copy.db: a read replica must be a PostgreSQL database (SQLite has no replicas)"},
		},
		{
			name:     "a SQLite database",
			text:     "database:\n  read_url: postgresql://r:secret@replica/winchester\n",
			problems: []string{"w.yaml:2: database.read_url: read replicas need a PostgreSQL database.url, and the database is SQLite", "--read-url ''"},
		},
		{
			name:     "MySQL",
			text:     "database:\n  url: postgresql://w@db/winchester\n  read_url: mysql://r:secret@replica/winchester\n",
			problems: []string{`w.yaml:3: database.read_url: database URL "mysql://r:xxxxx@replica/winchester": MySQL is not supported`},
		},
		{
			name:     "no scheme",
			text:     "database:\n  url: postgresql://w@db/winchester\n  read_url: replica:5433\n",
			problems: []string{`w.yaml:3: database.read_url: database URL "replica:5433": want scheme://…`},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c, err := Read(writeFile(t, t.TempDir(), "w.yaml", tc.text))
			if err != nil {
				t.Fatalf("Read: %v", err)
			}
			if tc.override != nil {
				if err := c.Override("database.read_url", *tc.override, "flag --read-url"); err != nil {
					t.Fatal(err)
				}
			}
			err = c.Validate()
			if len(tc.problems) > 0 {
				assertErrorContains(t, err, tc.problems)
				if strings.Contains(err.Error(), "secret") {
					t.Errorf("the problem shows the password: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Validate: %v", err)
			}
			if c.ReadURL != tc.want {
				t.Errorf("ReadURL = %q, want %q", c.ReadURL, tc.want)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

// OpenReadStore opens nothing without read_url, and fails, naming the
// key, when the replica does not answer.
func TestOpenReadStore(t *testing.T) {
	t.Parallel()
	c, err := Read(writeFile(t, t.TempDir(), "w.yaml", "database:\n  url: postgresql://w@127.0.0.1:1/winchester\n"))
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if s, err := OpenReadStore(t.Context(), c, nil); s != nil || err != nil {
		t.Errorf("OpenReadStore without read_url = %v, %v; want nil, nil", s, err)
	}
	if err := c.Override("database.read_url", "postgresql://r:secret@127.0.0.1:1/winchester?connect_timeout=5", "flag --read-url"); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	s, err := OpenReadStore(context.Background(), c, nil)
	if s != nil || err == nil || !strings.Contains(err.Error(), "open read replica") || !strings.Contains(err.Error(), "database.read_url") ||
		strings.Contains(err.Error(), "secret") {
		t.Errorf("OpenReadStore with nothing at the read URL = %v, %v; want an error naming the read replica, without the password", s, err)
	}
}
