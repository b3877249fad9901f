package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5"
)

// clockTicks is USER_HZ, the unit of the CPU times in /proc/PID/stat (100
// on every Linux architecture Go supports).
const clockTicks = 100

// procCPU returns the user and system CPU time of a process from
// /proc/PID/stat (Linux; the process may belong to another user).
func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name, field 2, is in parentheses and may hold spaces.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, fmt.Errorf("/proc/%d/stat: no command name", pid)
	}
	f := strings.Fields(s[i+1:])
	// After the name: state is field 3, utime 14 and stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("/proc/%d/stat: %w", pid, err)
		}
		ticks += n
	}
	return time.Duration(ticks) * time.Second / clockTicks, nil
}

// selfCPU returns the CPU time this process used so far.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// backendCPU returns the CPU time of each PostgreSQL backend connected to
// the database name, by pid, read from /proc: it works only when the
// server runs on this machine. A backend that exits between two readings
// loses what it used since the first (the server's pool keeps its
// connections, so they are few).
func backendCPU(ctx context.Context, adminURL, name string) (map[int32]time.Duration, error) {
	conn, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		return nil, fmt.Errorf("backend CPU: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	rows, err := conn.Query(ctx, `SELECT pid FROM pg_stat_activity WHERE datname = $1`, name)
	if err != nil {
		return nil, fmt.Errorf("backend CPU: %w", err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		return nil, fmt.Errorf("backend CPU: %w", err)
	}
	out := map[int32]time.Duration{}
	for _, pid := range pids {
		if d, err := procCPU(int(pid)); err == nil {
			out[pid] = d
		}
	}
	return out, nil
}

// cpuDelta is the CPU time used between two readings of backendCPU.
func cpuDelta(before, after map[int32]time.Duration) (total time.Duration, n int) {
	for pid, d := range after {
		total += d - before[pid]
		n++
	}
	return total, n
}
