#!/usr/bin/env bash
# Bring up the three services maskdraw needs on a developer machine or CI container:
# PostgreSQL, Redis and RabbitMQ on loopback, plus the maskdraw database.
#
# Safe to run any number of times: a service that already answers is left alone. A missing
# one is installed from Debian packages (only the packages that are missing) and started
# without systemd, because containers have none. Each wait is bounded and polls; the script
# fails with a message naming the service that did not come up.
#
#   scripts/services.sh
#
# Environment (all optional):
#   MASKDRAW_DB_NAME        database to create                       (default maskdraw)
#   MASKDRAW_PG_PORT        PostgreSQL port on 127.0.0.1              (default 5432)
#   MASKDRAW_REDIS_PORT     Redis port on 127.0.0.1                   (default 6379)
#   MASKDRAW_AMQP_PORT      RabbitMQ AMQP port on 127.0.0.1           (default 5672)
#   MASKDRAW_REDIS_DIR      Redis data directory when we start it     (default /var/lib/redis)
#   MASKDRAW_REDIS_LOG      Redis log file when we start it           (default /var/log/redis/maskdraw.log)
#   MASKDRAW_WAIT_SECONDS   how long to wait for each service         (default 60)
set -euo pipefail

HOST=127.0.0.1
DB_NAME=${MASKDRAW_DB_NAME:-maskdraw}
PG_PORT=${MASKDRAW_PG_PORT:-5432}
REDIS_PORT=${MASKDRAW_REDIS_PORT:-6379}
AMQP_PORT=${MASKDRAW_AMQP_PORT:-5672}
REDIS_DIR=${MASKDRAW_REDIS_DIR:-/var/lib/redis}
REDIS_LOG=${MASKDRAW_REDIS_LOG:-/var/log/redis/maskdraw.log}
WAIT_SECONDS=${MASKDRAW_WAIT_SECONDS:-60}

# The pg_hba.conf line added when local TCP logins as postgres do not work (and only then).
HBA_TRUST_LINE="host all all $HOST/32 trust"

die() { echo "services.sh: $*" >&2; exit 1; }
note() { echo "services.sh: $*" >&2; }

# Run a command as root: directly when we are root, through sudo when it exists.
as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1; then
    sudo "$@"
  else
    die "need root for: $* (run as root or install sudo)"
  fi
}

APT_UPDATED=0
apt_install() {
  if [[ $APT_UPDATED -eq 0 ]]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  note "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive \
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# wait_for <what> <command...>: poll every 0.5 s until the command succeeds, at most
# WAIT_SECONDS; fail with a message naming <what>.
wait_for() {
  local what=$1; shift
  local tries=$((WAIT_SECONDS * 2))
  while ((tries-- > 0)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "$what did not answer within ${WAIT_SECONDS}s"
}

# ---------------------------------------------------------------- probes

pg_up() {
  if command -v pg_isready >/dev/null 2>&1; then
    pg_isready -q -h "$HOST" -p "$PG_PORT" -t 3
  else
    timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$PG_PORT" 2>/dev/null
  fi
}

# A login as postgres over TCP, without a password prompt (PGPASSWORD or ~/.pgpass still apply).
pg_login() {
  [[ $(psql -X -w -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -tAc 'SELECT 1' 2>/dev/null) == 1 ]]
}

redis_up() {
  if command -v redis-cli >/dev/null 2>&1; then
    [[ $(timeout 3 redis-cli -h "$HOST" -p "$REDIS_PORT" ping 2>/dev/null) == PONG ]]
  else
    # RESP inline PING without redis-tools.
    timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$REDIS_PORT; printf 'PING\r\n' >&3; head -c 5 <&3" \
      2>/dev/null | grep -q '^+PONG'
  fi
}

# An open port is not enough (RabbitMQ accepts TCP before it is ready to talk on some
# versions): send the AMQP 0-9-1 protocol header and expect a method frame (type 1,
# connection.start) back.
amqp_up() {
  timeout 3 bash -c "exec 3<>/dev/tcp/$HOST/$AMQP_PORT; printf 'AMQP\x00\x00\x09\x01' >&3; head -c 1 <&3" \
    2>/dev/null | od -An -tx1 | grep -q '01'
}

# ---------------------------------------------------------------- PostgreSQL

pg_server_installed() {
  command -v pg_ctlcluster >/dev/null 2>&1 && compgen -G '/usr/lib/postgresql/*/bin/postgres' >/dev/null
}

# Newest installed server version, e.g. "15".
pg_newest_version() {
  ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1
}

# "<version> <cluster> <status>" of the cluster configured for PG_PORT, if any.
pg_cluster_on_port() {
  pg_lsclusters -h 2>/dev/null | awk -v port="$PG_PORT" '$3 == port { print $1, $2, $4; exit }'
}

pg_start() {
  local cluster version name status
  cluster=$(pg_cluster_on_port)
  if [[ -z $cluster ]]; then
    if [[ -n $(ls /etc/postgresql 2>/dev/null) ]]; then
      die "postgresql: clusters exist but none on port $PG_PORT:"$'\n'"$(pg_lsclusters)"
    fi
    version=$(pg_newest_version)
    [[ -n $version ]] || die "postgresql: no server version under /usr/lib/postgresql"
    note "creating cluster $version/main on port $PG_PORT"
    as_root pg_createcluster -p "$PG_PORT" "$version" main >/dev/null
    cluster="$version main down"
  fi
  read -r version name status <<<"$cluster"
  # A cluster can be online yet not answer on $HOST (listen_addresses); starting it again
  # would fail, so leave it and let the wait report it.
  if [[ $status != online* ]]; then
    as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" start
  fi
}

# Make TCP logins as postgres from 127.0.0.1 work with trust auth, but only if they fail:
# a setup that already works (trust, or a password we were given) is never touched.
pg_ensure_login() {
  pg_login && return 0
  local cluster version name hba
  cluster=$(pg_cluster_on_port)
  [[ -n $cluster ]] || die "postgresql: cannot log in as postgres on $HOST:$PG_PORT and no local cluster serves that port"
  read -r version name _ <<<"$cluster"
  hba=/etc/postgresql/$version/$name/pg_hba.conf
  as_root test -f "$hba" || die "postgresql: $hba not found"
  if as_root grep -qxF "$HBA_TRUST_LINE" "$hba"; then
    die "postgresql: '$HBA_TRUST_LINE' is already in $hba but login as postgres still fails"
  fi
  note "login as postgres over TCP failed; adding '$HBA_TRUST_LINE' at the top of $hba"
  as_root sed -i "1i # added by maskdraw scripts/services.sh: local TCP logins without a password\n$HBA_TRUST_LINE" "$hba"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" "$name" reload
  wait_for "postgresql login as postgres on $HOST:$PG_PORT" pg_login
  PG_HBA_CHANGED=1
}

pg_ensure_database() {
  [[ $DB_NAME =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "MASKDRAW_DB_NAME must match [a-z_][a-z0-9_]*, got '$DB_NAME'"
  local query="SELECT 1 FROM pg_database WHERE datname='$DB_NAME'"
  local psql=(psql -X -w -h "$HOST" -p "$PG_PORT" -U postgres -d postgres -tAc)
  if [[ $("${psql[@]}" "$query") == 1 ]]; then
    echo "database $DB_NAME: exists (already)"
  elif createdb -w -h "$HOST" -p "$PG_PORT" -U postgres "$DB_NAME" 2>/dev/null \
      || [[ $("${psql[@]}" "$query") == 1 ]]; then  # lost a race with another run: fine
    echo "database $DB_NAME: created"
  else
    die "could not create database $DB_NAME"
  fi
}

ensure_postgresql() {
  local state="running (already)"
  PG_HBA_CHANGED=0
  if ! pg_up; then
    if pg_server_installed; then
      state="started"
    else
      apt_install postgresql postgresql-client
      state="installed and started"
    fi
    # The package's postinst may already have started it.
    pg_up || pg_start
    wait_for "postgresql on $HOST:$PG_PORT" pg_up
  fi
  if ! command -v psql >/dev/null 2>&1 || ! command -v createdb >/dev/null 2>&1; then
    apt_install postgresql-client
  fi
  pg_ensure_login
  if [[ $PG_HBA_CHANGED -eq 1 ]]; then state="$state; pg_hba trust for $HOST added"; fi
  echo "postgresql: $state"
  pg_ensure_database
}

# ---------------------------------------------------------------- Redis

redis_start() {
  as_root mkdir -p "$REDIS_DIR" "$(dirname "$REDIS_LOG")"
  # AOF with fsync every second: the fallback stream is the one thing Redis holds that
  # exists nowhere else (DESIGN.md, "Never lose an accepted reservation").
  as_root redis-server --daemonize yes --bind "$HOST" -::1 --port "$REDIS_PORT" \
    --appendonly yes --appendfsync everysec --dir "$REDIS_DIR" --logfile "$REDIS_LOG"
}

ensure_redis() {
  local state="running (already)"
  if ! redis_up; then
    if command -v redis-server >/dev/null 2>&1; then
      state="started"
    else
      apt_install redis-server redis-tools
      state="installed and started"
    fi
    redis_up || redis_start
    wait_for "redis on $HOST:$REDIS_PORT" redis_up
  fi
  echo "redis: $state"
  # Not ours to change on a running server, but worth saying: without AOF a crash can lose
  # reservations parked in the fallback stream.
  if command -v redis-cli >/dev/null 2>&1 &&
     [[ $(redis-cli -h "$HOST" -p "$REDIS_PORT" config get appendonly 2>/dev/null | tail -n 1) == no ]]; then
    note "warning: redis on $HOST:$REDIS_PORT runs without appendonly (AOF); fine for tests, not for production"
  fi
}

# ---------------------------------------------------------------- RabbitMQ

ensure_rabbitmq() {
  local state="running (already)"
  if ! amqp_up; then
    if command -v rabbitmq-server >/dev/null 2>&1; then
      state="started"
    else
      apt_install rabbitmq-server
      state="installed and started"
    fi
    # Start the node unless it is already running (started by the package, or still
    # booting): a second start would fail on the node name.
    if ! amqp_up && ! as_root timeout 15 rabbitmq-diagnostics -q ping >/dev/null 2>&1; then
      as_root rabbitmq-server -detached
    fi
    wait_for "rabbitmq on $HOST:$AMQP_PORT" amqp_up
  fi
  echo "rabbitmq: $state"
}

main() {
  ensure_postgresql
  ensure_redis
  ensure_rabbitmq
}

# Sourcing the file (for tests) defines the functions without running anything.
if [[ ${BASH_SOURCE[0]} == "$0" ]]; then
  main "$@"
fi
