#!/usr/bin/env bash
# Debian's PostgreSQL for the service's tests. Needs root (CI runs as root).
#   ci_postgres.sh start   install it when missing, start its cluster, make the role the tests use
#                          (mosxav_test, allowed to create databases); print the URL to reach it
#   ci_postgres.sh stop    stop the cluster again, if `start` was what started it
set -euo pipefail
exec 3>&1 1>&2  # everything but the URL goes to stderr
started_marker=/tmp/mosxav-ci-postgres-started
if [ "$(id -u)" != "0" ]; then
  echo "ci_postgres.sh needs root" >&2
  exit 1
fi

# Start a server with none of this script's descriptors: fd 3 is the caller's $(...) pipe, which would
# never reach end-of-file while the server runs (the caller would wait forever), fds 1-2 are CI's log,
# and a CI runner may hand down pipes of its own.
detached() {
  (
    for fd in $(ls "/proc/$BASHPID/fd"); do
      if [ "$fd" -gt 2 ]; then
        eval "exec $fd>&-" 2>/dev/null || true
      fi
    done
    exec "$@"
  ) </dev/null >"$start_log" 2>&1
}

if [ "${1:-start}" = "stop" ]; then
  if [ -f "$started_marker" ]; then
    read -r version cluster <"$started_marker"
    pg_ctlcluster "$version" "$cluster" stop || true
    rm -f "$started_marker"
  fi
  exit 0
fi

if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  # Without fd 3: the package's own scripts may start the server.
  timeout 300 apt-get update -qq </dev/null 3>&-
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends postgresql </dev/null >/dev/null 3>&-
fi
read -r version cluster port status _ < <(pg_lsclusters --no-header | head -n 1)
if [ -z "${version:-}" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  cluster=main
  pg_createcluster "$version" "$cluster" </dev/null >/dev/null 3>&-
  read -r port status < <(pg_lsclusters --no-header | awk -v c="$cluster" '$2 == c {print $3, $4}')
fi
if [ "$status" != "online" ]; then
  start_log=$(mktemp)
  if ! detached pg_ctlcluster "$version" "$cluster" start; then
    cat "$start_log"
    rm -f "$start_log"
    exit 1
  fi
  rm -f "$start_log"
  echo "$version $cluster" >"$started_marker"
fi
for _ in $(seq 30); do
  runuser -u postgres -- pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 1
done
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "$port" <<'SQL'
SELECT 'CREATE ROLE mosxav_test LOGIN CREATEDB PASSWORD ''mosxav_test'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mosxav_test') \gexec
SQL
echo "postgresql://mosxav_test:mosxav_test@127.0.0.1:${port}/postgres" >&3
