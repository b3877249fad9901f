package postgres_test

import (
	"testing"

	"github.com/winchester-go/winchester/db"
	"github.com/winchester-go/winchester/db/dbtest"
)

func TestExerciseBatch(t *testing.T) {
	dbtest.ExerciseBatch(t, func(t *testing.T) db.Store { return openStore(t) })
}
