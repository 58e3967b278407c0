#!/usr/bin/env bash
# Install Debian's PostgreSQL (when missing), start its cluster, make the role the tests use (mosxav_test,
# allowed to create databases) and print the URL to reach it. Needs root (CI runs as root).
set -euo pipefail
exec 3>&1 1>&2  # everything but the URL goes to stderr
if [ "$(id -u)" != "0" ]; then
  echo "ci_postgres.sh needs root" >&2
  exit 1
fi
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
  timeout 300 apt-get update -qq
  DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -qq --no-install-recommends postgresql >/dev/null
fi
read -r version cluster port _ < <(pg_lsclusters --no-header | head -n 1)
if [ -z "${version:-}" ]; then
  version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
  cluster=main
  pg_createcluster "$version" "$cluster" >/dev/null
  port=$(pg_lsclusters --no-header | awk -v c="$cluster" '$2 == c {print $3}')
fi
pg_ctlcluster "$version" "$cluster" start 2>/dev/null || pg_ctlcluster "$version" "$cluster" status >/dev/null
for _ in $(seq 30); do
  runuser -u postgres -- pg_isready -q -h 127.0.0.1 -p "$port" && break
  sleep 1
done
runuser -u postgres -- psql -q -v ON_ERROR_STOP=1 -h /var/run/postgresql -p "$port" <<'SQL'
SELECT 'CREATE ROLE mosxav_test LOGIN CREATEDB PASSWORD ''mosxav_test'''
WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'mosxav_test') \gexec
SQL
echo "postgresql://mosxav_test:mosxav_test@127.0.0.1:${port}/postgres" >&3
