//go:build unix

package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// processCPU returns the CPU time (user and system) the test process has
// used, or -1 where unknown.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// clockTick is the unit of the CPU times in /proc/PID/stat (USER_HZ,
// 100 on Linux).
const clockTick = 10 * time.Millisecond

// sessionsCPU returns the CPU time the server processes of d's sessions
// (its application_name) have used, read from /proc, or -1 when the
// server is not on this host or its processes cannot be read. Sessions
// that ended are not counted: the stores keep theirs open.
func sessionsCPU(b *testing.B, d benchDB) time.Duration {
	b.Helper()
	u, err := url.Parse(d.url)
	if err != nil {
		return -1
	}
	if ip := net.ParseIP(u.Hostname()); u.Hostname() != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return -1
	}
	var pids []int32
	d.exec(b, func(conn *pgx.Conn) error {
		rows, _ := conn.Query(context.Background(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND pid <> pg_backend_pid()`, d.app)
		pids, err = pgx.CollectRows(rows, pgx.RowTo[int32])
		return err
	})
	var total time.Duration
	for _, pid := range pids {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return -1
		}
		// pid (comm) state ppid ...: utime and stime are fields 14 and 15.
		i := bytes.LastIndexByte(data, ')')
		if i < 0 || !bytes.Contains(data[:i], []byte("(postgres")) {
			return -1
		}
		f := bytes.Fields(data[i+1:])
		if len(f) < 13 {
			return -1
		}
		utime, err1 := strconv.ParseInt(string(f[11]), 10, 64)
		stime, err2 := strconv.ParseInt(string(f[12]), 10, 64)
		if err1 != nil || err2 != nil {
			return -1
		}
		total += time.Duration(utime+stime) * clockTick
	}
	return total
}
