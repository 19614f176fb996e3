#!/usr/bin/env bash
# Runs the whole test suite with every test database reached through Debian's pgbouncer (1.18)
# in front of a PostgreSQL server, the way a multi-process deployment would (docs/scaling.md).
#
#   scripts/test-via-pgbouncer.sh [transaction|session] [cargo test args...]
#
# Needs pgbouncer (`apt-get install pgbouncer`) and a PostgreSQL server reachable over TCP with
# trust auth (DATABASE_URL, default postgres://postgres@127.0.0.1:5432/postgres). Databases are
# created and dropped directly on the server (crates/testdb: TESTDB_POOLER_URL); everything the
# tests and the apps they start do goes through pgbouncer. pgbouncer < 1.21 cannot carry
# protocol-level prepared statements in transaction mode, so that mode runs with
# OASIS_DB_STATEMENT_CACHE=false; and a pooled connection there cannot LISTEN for its own
# writes, so the read cache is off too (OASIS_READ_CACHE=false).
set -euo pipefail
cd "$(dirname "$0")/.."
mode="${1:-transaction}"
shift || true
case "$mode" in transaction|session) ;; *) echo "mode must be transaction or session" >&2; exit 2 ;; esac
server_url="${DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
hostport="${server_url#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"
exe="$(command -v pgbouncer || echo /usr/sbin/pgbouncer)"
dir="$(mktemp -d /tmp/oasis-pgbouncer.XXXXXX)"
chmod 755 "$dir"
bport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')"
echo '"postgres" ""' > "$dir/users.txt"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
* = host=$host port=$port
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $bport
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
pool_mode = $mode
max_client_conn = 2000
default_pool_size = 20
ignore_startup_parameters = extra_float_digits,options
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
INI
run_as=()
if [ "$(id -u)" = 0 ]; then chown -R postgres "$dir"; run_as=(/usr/sbin/runuser -u postgres --); fi
"${run_as[@]}" "$exe" -d "$dir/pgbouncer.ini"
trap 'kill "$(cat "$dir/pgbouncer.pid")" 2>/dev/null || true' EXIT
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$bport") 2>/dev/null && break; sleep 0.1; done
echo "$("$exe" --version | head -1), pool_mode = $mode, on 127.0.0.1:$bport -> $host:$port"
cache=true scope=connection reads=true
# In transaction mode a session `SET statement_timeout` stays on whichever server connection it
# ran on; the role scope stores it in the database, so every server connection starts with it.
[ "$mode" = transaction ] && cache=false scope=role reads=false
DATABASE_URL="$server_url" \
TESTDB_POOLER_URL="postgres://postgres@127.0.0.1:$bport/postgres" \
OASIS_DB_STATEMENT_CACHE="$cache" \
OASIS_DB_STATEMENT_TIMEOUT_SCOPE="$scope" \
OASIS_READ_CACHE="$reads" \
  cargo test --workspace "$@"
