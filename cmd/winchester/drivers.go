package main

// The storage drivers this command can open (by URL scheme).
import (
	_ "github.com/winchester-go/winchester/db/postgres"
	_ "github.com/winchester-go/winchester/db/sqlite"
)
