#!/bin/sh
# replica.sh — a streaming replica of the test PostgreSQL server, for the
# tests of database.read_url (a second cluster on another port, made with
# pg_basebackup and kept up to date by streaming replication).
#
#   tests/replica.sh start   make the replica (or reuse a running or stopped
#                            one that still follows the primary), wait until
#                            it has replayed the primary's current WAL, and
#                            print "export TEST_REPLICA_URL='…'"
#   tests/replica.sh stop    stop the replica and delete its directory
#   tests/replica.sh url     print the URL of the running replica
#
# Usage:  eval "$(tests/replica.sh start)" && go test ./tests/replica
#
# The primary must accept replication connections from 127.0.0.1 without a
# password: pg_hba.conf needs "host replication all 127.0.0.1/32 trust"
# (.ci/run adds it). Its wal_level must be replica or logical (the default).
#
# Settings (environment):
#   REPLICA_PRIMARY_HOST  host of the primary (default 127.0.0.1)
#   REPLICA_PRIMARY_PORT  port of the primary (default 5432)
#   REPLICA_PORT          TCP port of the replica on 127.0.0.1 (default 5433)
#   REPLICA_DIR           directory of its data, log and socket
#                         (default: /tmp/winchester-replica-$REPLICA_PORT, which the
#                         user postgres can reach whatever TMPDIR is)
#
# The replica streams through a physical replication slot made with the
# base backup (winchester_test_replica_$REPLICA_PORT), so that it can
# catch up however busy the primary is. So that a replica that is gone
# (killed, never stopped) cannot make the primary keep WAL without end,
# start sets the primary's max_slot_wal_keep_size to 4GB when it is
# unlimited (ALTER SYSTEM): past that the slot is given up, and the next
# start makes the replica again. stop drops the slot. The copy runs
# without durability (fsync=off): tests only.
#
# PostgreSQL refuses to run as root: as root, the replica runs as the
# operating system user "postgres" (runuser), which must exist.
set -eu

phost=${REPLICA_PRIMARY_HOST:-127.0.0.1}
pport=${REPLICA_PRIMARY_PORT:-5432}
port=${REPLICA_PORT:-5433}
dir=${REPLICA_DIR:-/tmp/winchester-replica-$port}
data=$dir/data
slot=winchester_test_replica_$port

die() { echo "replica.sh: $*" >&2; exit 1; }
note() { echo "replica.sh: $*" >&2; }

# find_bin NAME: the PostgreSQL binary NAME of the newest installed version
# (the server binaries are not in PATH on Debian), else from PATH.
find_bin() {
	for d in $(ls -d /usr/lib/postgresql/*/bin /usr/pgsql-*/bin 2>/dev/null | sort -rV); do
		if [ -x "$d/$1" ]; then
			echo "$d/$1"
			return
		fi
	done
	if command -v "$1" >/dev/null 2>&1; then
		command -v "$1"
		return
	fi
	die "$1 not found: install the PostgreSQL server binaries or put them in PATH"
}

# as_owner CMD...: run CMD as the server's owner (postgres when we are root).
as_owner() {
	if [ "$(id -u)" = 0 ]; then
		id postgres >/dev/null 2>&1 || die "running as root needs an operating system user \"postgres\""
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

url() { echo "postgres://postgres@127.0.0.1:$port/test?sslmode=disable"; }

primary() { psql -X -h "$phost" -p "$pport" -U postgres -d postgres -Atqc "$1"; }
replica() { psql -X -h 127.0.0.1 -p "$port" -U postgres -d postgres -Atqc "$1"; }

running() {
	[ -f "$data/postmaster.pid" ] && as_owner "$(find_bin pg_ctl)" -D "$data" status >/dev/null 2>&1
}

# caught_up SECONDS: the replica is in recovery, replaying, and has replayed
# the WAL the primary had written when called, within SECONDS.
caught_up() {
	lsn=$(primary 'SELECT pg_current_wal_insert_lsn()') || die "cannot reach the primary at $phost:$pport"
	i=0
	while [ "$i" -lt "$1" ]; do
		# A test that paused replay and died leaves it paused.
		replica 'SELECT pg_wal_replay_resume() WHERE pg_is_in_recovery() AND pg_is_wal_replay_paused()' >/dev/null 2>&1 || true
		if [ "$(replica "SELECT pg_is_in_recovery() AND pg_last_wal_replay_lsn() >= '$lsn'::pg_lsn" 2>/dev/null)" = t ]; then
			return 0
		fi
		sleep 1
		i=$((i + 1))
	done
	return 1
}

# launch starts the server on the existing data directory.
launch() {
	as_owner "$(find_bin pg_ctl)" -D "$data" -l "$dir/server.log" -w -t 60 start >/dev/null ||
		die "the replica did not start, see $dir/server.log"
}

halt() {
	if [ -f "$data/postmaster.pid" ]; then
		as_owner "$(find_bin pg_ctl)" -D "$data" -m fast -w stop >/dev/null 2>&1 || true
	fi
}

# drop_slot drops the replica's slot on the primary, if any (waiting for
# the walsender of a replica just stopped to let go of it).
drop_slot() {
	i=0
	while [ "$(primary "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot'")" != 0 ]; do
		primary "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots WHERE slot_name = '$slot' AND NOT active" >/dev/null 2>&1 || true
		i=$((i + 1))
		[ "$i" -lt 30 ] || die "cannot drop the replication slot $slot on the primary: is another replica using it?"
		sleep 1
	done
}

# slot_ok: the replica's slot exists and still holds the WAL it needs.
slot_ok() {
	[ "$(primary "SELECT count(*) FROM pg_replication_slots WHERE slot_name = '$slot' AND wal_status IS DISTINCT FROM 'lost'")" = 1 ]
}

# create makes the data directory from a base backup of the primary.
create() {
	drop_slot
	if [ "$(primary 'SHOW max_slot_wal_keep_size')" = -1 ]; then
		note "bounding the WAL a replication slot keeps on the primary: max_slot_wal_keep_size = 4GB"
		primary "ALTER SYSTEM SET max_slot_wal_keep_size = '4GB'" >/dev/null || die "cannot set max_slot_wal_keep_size on the primary"
		primary 'SELECT pg_reload_conf()' >/dev/null
	fi
	rm -rf "$dir"
	mkdir -p "$dir"
	chmod 700 "$dir"
	if [ "$(id -u)" = 0 ]; then
		chown postgres "$dir"
	fi
	note "base backup of $phost:$pport into $data"
	as_owner "$(find_bin pg_basebackup)" -h "$phost" -p "$pport" -U postgres -D "$data" -R -X stream -C -S "$slot" \
		-c fast --no-sync >"$dir/basebackup.log" 2>&1 ||
		die "pg_basebackup failed, see $dir/basebackup.log (does pg_hba.conf allow \"host replication all 127.0.0.1/32 trust\"?)"
	# A hot standby needs these at least as high as on the primary.
	settings=$(primary "SELECT string_agg(name || ' = ' || setting, E'\n') FROM pg_settings WHERE name IN
		('max_connections', 'max_worker_processes', 'max_wal_senders', 'max_prepared_transactions', 'max_locks_per_transaction')") ||
		die "cannot read the primary's settings"
	# Debian keeps postgresql.conf and pg_hba.conf outside the data
	# directory, so the backup has neither: the replica gets its own.
	as_owner sh -c "cat >'$data/postgresql.conf'" <<EOF
# tests/replica.sh: a test replica of $phost:$pport
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
hot_standby = on
hot_standby_feedback = off
fsync = off
full_page_writes = off
shared_buffers = 32MB
log_min_messages = warning
$settings
EOF
	as_owner sh -c "printf 'local all all trust\nhost all all 127.0.0.1/32 trust\n' >'$data/pg_hba.conf'"
	as_owner touch "$data/pg_ident.conf"
}

start() {
	if running && slot_ok && caught_up 30; then
		url | sed "s/.*/export TEST_REPLICA_URL='&'/"
		return
	fi
	if [ -f "$data/standby.signal" ]; then
		if slot_ok && (running || launch) && caught_up 60; then
			url | sed "s/.*/export TEST_REPLICA_URL='&'/"
			return
		fi
		note "the replica in $data does not start or catch up with the primary: making it again"
		halt
	fi
	create
	launch
	caught_up 300 || die "the new replica did not catch up within 300s, see $dir/server.log"
	url | sed "s/.*/export TEST_REPLICA_URL='&'/"
}

stop() {
	halt
	drop_slot
	rm -rf "$dir"
}

case ${1:-} in
start) start ;;
stop) stop ;;
url) running || die "no replica running in $dir"; url ;;
*) echo "usage: $0 start|stop|url" >&2; exit 2 ;;
esac
