package main

// The storage drivers the worker can open, chosen by database URL scheme.
import (
	_ "github.com/winchester-go/winchester/db/postgres"
	_ "github.com/winchester-go/winchester/db/sqlite"
)
