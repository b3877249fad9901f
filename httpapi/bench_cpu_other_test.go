//go:build !unix

package httpapi_test

import (
	"testing"
	"time"
)

// processCPU is unknown here.
func processCPU() time.Duration { return -1 }

// sessionsCPU is unknown here.
func sessionsCPU(*testing.B, benchDB) time.Duration { return -1 }
