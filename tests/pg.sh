#!/bin/sh
# pg.sh — a throw-away PostgreSQL server for the tests, on machines that
# have the PostgreSQL binaries but no server to use.
#
#   tests/pg.sh start   initdb (trust auth, superuser "postgres") in a
#                       temporary directory, start the server with a Unix
#                       socket only and fsync=off, create database "test",
#                       print "export TEST_DATABASE_URL='…'"
#   tests/pg.sh stop    stop the server and delete its directory
#   tests/pg.sh restart stop the server (fast shutdown) and start it again
#   tests/pg.sh url     print the URL of the running server
#
# Usage:  eval "$(tests/pg.sh start)" && go test ./... ; tests/pg.sh stop
#
# Settings (environment):
#   PGSH_DIR   directory of the data and the socket
#              (default: ${TMPDIR:-/tmp}/winchester-pg-$(id -u))
#   PGSH_PORT  port number in the socket name (default 5432; no TCP port is
#              opened, so it does not clash with a server on localhost)
#
# initdb and postgres refuse to run as root: as root, the server runs as
# the operating system user "postgres" (runuser), which must exist.
#
# The data lives in a temporary directory without durability (fsync=off,
# synchronous_commit=off, full_page_writes=off): a crash loses it. Never
# use this for anything but tests.
set -eu

dir=${PGSH_DIR:-${TMPDIR:-/tmp}/winchester-pg-$(id -u)}
port=${PGSH_PORT:-5432}
data=$dir/data

die() { echo "pg.sh: $*" >&2; exit 1; }

# find_bin NAME: the PostgreSQL binary NAME from PATH or the usual
# Debian/Ubuntu and RHEL locations (newest version first).
find_bin() {
	if command -v "$1" >/dev/null 2>&1; then
		command -v "$1"
		return
	fi
	for d in $(ls -d /usr/lib/postgresql/*/bin /usr/pgsql-*/bin 2>/dev/null | sort -rV); do
		if [ -x "$d/$1" ]; then
			echo "$d/$1"
			return
		fi
	done
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

url() {
	echo "postgres:///test?host=$dir&port=$port&user=postgres&sslmode=disable"
}

running() {
	[ -f "$data/postmaster.pid" ] && as_owner "$(find_bin pg_ctl)" -D "$data" status >/dev/null 2>&1
}

# launch starts the server on the existing data directory.
launch() {
	as_owner "$(find_bin pg_ctl)" -D "$data" -l "$dir/server.log" -w -t 60 \
		-o "-c listen_addresses='' -c unix_socket_directories='$dir' -p $port -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
		start >/dev/null || die "the server did not start, see $dir/server.log"
}

# restart stops the server with a fast shutdown (every session is
# terminated, as in a real restart) and starts it again on the same data.
restart() {
	running || die "no server running in $dir"
	as_owner "$(find_bin pg_ctl)" -D "$data" -m fast -w stop >/dev/null || die "pg_ctl stop failed"
	launch
}

start() {
	if running; then
		echo "export TEST_DATABASE_URL='$(url)'"
		return
	fi
	initdb=$(find_bin initdb)
	pg_ctl=$(find_bin pg_ctl)
	psql=$(find_bin psql)
	mkdir -p "$dir"
	chmod 700 "$dir"
	if [ "$(id -u)" = 0 ]; then
		chown postgres "$dir"
	fi
	if [ ! -f "$data/PG_VERSION" ]; then
		as_owner "$initdb" -D "$data" -A trust -U postgres -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 ||
			die "initdb failed, see $dir/initdb.log"
	fi
	launch
	if ! as_owner "$psql" -h "$dir" -p "$port" -U postgres -d postgres -Atqc "SELECT 1 FROM pg_database WHERE datname = 'test'" | grep -q 1; then
		as_owner "$psql" -h "$dir" -p "$port" -U postgres -d postgres -qc "CREATE DATABASE test" >/dev/null ||
			die "could not create database test"
	fi
	echo "export TEST_DATABASE_URL='$(url)'"
}

stop() {
	if [ -f "$data/postmaster.pid" ]; then
		as_owner "$(find_bin pg_ctl)" -D "$data" -m fast -w stop >/dev/null || die "pg_ctl stop failed"
	fi
	rm -rf "$dir"
}

case ${1:-} in
start) start ;;
stop) stop ;;
restart) restart ;;
url) running || die "no server running in $dir"; url ;;
*) echo "usage: $0 start|stop|restart|url" >&2; exit 2 ;;
esac
