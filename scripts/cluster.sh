#!/usr/bin/env bash
# The many-machine layout of deploy/ on this one machine: a Redis Cluster of 3 masters and 3
# replicas, a 3-node RabbitMQ cluster, nginx (deploy/nginx) in front of 2 × `maskdraw serve`,
# and 2 × `maskdraw persist`. Everything runs from its own ports and directories under the
# state directory; the machine's own PostgreSQL, Redis (6379) and RabbitMQ (rabbit@localhost,
# 5672) are left untouched.
#
#   scripts/cluster.sh up       # start what is not running (idempotent); prints the addresses
#   scripts/cluster.sh status   # each component, and the RabbitMQ nodes' memory
#   scripts/cluster.sh down     # stop exactly what `up` started (the data stays)
#   scripts/cluster.sh clean    # down, then remove the state directory
#   scripts/cluster.sh rabbitmqctl N ARGS...   # rabbitmqctl on node N (1-3) of this cluster
#
# serve and persist use this Redis Cluster (redis_cluster_urls: every node) and every node of
# this RabbitMQ cluster (amqp_urls), and trust nginx's X-Forwarded-For (trusted_proxies).
#
# Environment (all optional):
#   MASKDRAW_CLUSTER_DIR           state directory                 (default target/cluster)
#   MASKDRAW_CLUSTER_REDIS_PORTS   6 ports; each port+10000 is its cluster bus
#                                  (default "7001 7002 7003 7004 7005 7006")
#   MASKDRAW_CLUSTER_RABBIT_PORTS  3 AMQP ports                    (default "5681 5682 5683")
#   MASKDRAW_CLUSTER_RABBIT_DIST   3 Erlang distribution ports     (default "25681 25682 25683")
#   MASKDRAW_CLUSTER_NGINX_PORT    nginx on 127.0.0.1              (default 8180)
#   MASKDRAW_CLUSTER_SERVE_PORTS   the serve processes             (default "8181 8182"); each
#                                  one's operator listener (/metrics) is on 1<port>
#   MASKDRAW_CLUSTER_PERSIST_PORTS the persisters' /metrics        (default "9181 9182")
#   MASKDRAW_CLUSTER_APPS          1: start serve and persist; 0: infrastructure only (default 1)
#   MASKDRAW_CLUSTER_ONLY          "redis": `up` starts the Redis Cluster alone (tests)
#   MASKDRAW_CLUSTER_RABBIT_NAME   stem of the RabbitMQ node names (default md: md1..3@localhost)
#   MASKDRAW_CLUSTER_DB_NAME       their database on 127.0.0.1:5432, created if missing
#                                  (default maskdraw_cluster)
#   MASKDRAW_BIN                   the maskdraw binary (default target/release/maskdraw, built)
#   MASKDRAW_WAIT_SECONDS          bound of each wait              (default 90)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

STATE=${MASKDRAW_CLUSTER_DIR:-target/cluster}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
read -r -a REDIS_PORTS <<<"${MASKDRAW_CLUSTER_REDIS_PORTS:-7001 7002 7003 7004 7005 7006}"
read -r -a RABBIT_PORTS <<<"${MASKDRAW_CLUSTER_RABBIT_PORTS:-5681 5682 5683}"
read -r -a RABBIT_DIST <<<"${MASKDRAW_CLUSTER_RABBIT_DIST:-25681 25682 25683}"
NGINX_PORT=${MASKDRAW_CLUSTER_NGINX_PORT:-8180}
read -r -a SERVE_PORTS <<<"${MASKDRAW_CLUSTER_SERVE_PORTS:-8181 8182}"
read -r -a PERSIST_PORTS <<<"${MASKDRAW_CLUSTER_PERSIST_PORTS:-9181 9182}"
APPS=${MASKDRAW_CLUSTER_APPS:-1}
ONLY=${MASKDRAW_CLUSTER_ONLY:-}
APP_DB=${MASKDRAW_CLUSTER_DB_NAME:-maskdraw_cluster}
WAIT_SECONDS=${MASKDRAW_WAIT_SECONDS:-90}
RABBIT_BIN=/usr/lib/rabbitmq/bin   # not /usr/sbin: that wrapper switches to the rabbitmq user

((${#REDIS_PORTS[@]} == 6)) || { echo "cluster.sh: need 6 Redis ports" >&2; exit 1; }
((${#RABBIT_PORTS[@]} == 3 && ${#RABBIT_DIST[@]} == 3)) || { echo "cluster.sh: need 3 RabbitMQ ports" >&2; exit 1; }

die() { echo "cluster.sh: $*" >&2; exit 1; }
note() { echo "cluster.sh: $*" >&2; }

# wait_for <what> <command...>: poll every 0.5 s, at most WAIT_SECONDS.
wait_for() {
  local what=$1; shift
  local tries=$((WAIT_SECONDS * 2))
  while ((tries-- > 0)); do
    if "$@" >/dev/null 2>&1; then return 0; fi
    sleep 0.5
  done
  die "$what not ready within ${WAIT_SECONDS}s"
}

pid_alive() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# ---------------------------------------------------------------- packages

ensure_packages() {
  local missing=()
  command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  command -v redis-cli >/dev/null 2>&1 || missing+=(redis-tools)
  [[ -x $RABBIT_BIN/rabbitmq-server ]] || missing+=(rabbitmq-server)
  command -v nginx >/dev/null 2>&1 || [[ -x /usr/sbin/nginx ]] || missing+=(nginx)
  command -v envsubst >/dev/null 2>&1 || missing+=(gettext-base)
  ((${#missing[@]} == 0)) && return 0
  [[ $EUID -eq 0 ]] || die "missing ${missing[*]}: run as root to install them"
  note "installing ${missing[*]} (their own services are not started)"
  local policy=/usr/sbin/policy-rc.d added=0
  if [[ ! -e $policy ]]; then printf '#!/bin/sh\nexit 101\n' >"$policy"; chmod 755 "$policy"; added=1; fi
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
  ((added)) && rm -f "$policy"
  return 0
}

# ---------------------------------------------------------------- Redis Cluster

redis_dir() { echo "$STATE/redis/$1"; }

redis_start() {
  local port=$1 dir
  dir=$(redis_dir "$port")
  mkdir -p "$dir"
  if pid_alive "$dir/redis.pid"; then return 0; fi
  # deploy/redis/redis.conf, with this node's port, files, and the cluster settings on.
  cat >"$dir/redis.conf" <<EOF
include $ROOT/deploy/redis/redis.conf
bind 127.0.0.1
port $port
dir $dir
pidfile $dir/redis.pid
logfile $dir/redis.log
daemonize yes
maxmemory 256mb
cluster-enabled yes
cluster-config-file nodes.conf
cluster-node-timeout 5000
cluster-require-full-coverage yes
EOF
  redis-server "$dir/redis.conf"
}

redis_ping() { [[ $(redis-cli -p "$1" ping 2>/dev/null) == PONG ]]; }
redis_cluster_ok() { redis-cli -p "${REDIS_PORTS[0]}" cluster info 2>/dev/null | grep -q '^cluster_state:ok'; }
# Every replica has finished its first sync: until then it cannot take over from its master
# (it would be "disconnected from master for longer than allowed").
redis_replicas_synced() {
  local p info
  for p in "${REDIS_PORTS[@]}"; do
    info=$(redis-cli -p "$p" info replication 2>/dev/null | tr -d '\r')
    if grep -q '^role:slave' <<<"$info" && ! grep -q '^master_link_status:up' <<<"$info"; then
      return 1
    fi
  done
}

redis_up() {
  local p
  for p in "${REDIS_PORTS[@]}"; do redis_start "$p"; done
  for p in "${REDIS_PORTS[@]}"; do wait_for "redis $p" redis_ping "$p"; done
  if redis_cluster_ok; then return 0; fi
  local known
  known=$(redis-cli -p "${REDIS_PORTS[0]}" cluster info | awk -F: '/^cluster_known_nodes/ {print $2}' | tr -d '\r')
  if [[ $known == 1 ]]; then
    local addrs=()
    for p in "${REDIS_PORTS[@]}"; do addrs+=("127.0.0.1:$p"); done
    redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes >"$STATE/redis/create.log"
  fi
  wait_for "redis cluster_state:ok" redis_cluster_ok
  wait_for "redis replicas in sync" redis_replicas_synced
}

redis_down() {
  local p dir
  for p in "${REDIS_PORTS[@]}"; do
    dir=$(redis_dir "$p")
    if pid_alive "$dir/redis.pid"; then
      # SHUTDOWN fsyncs the AOF; the cluster forms again from nodes.conf on the next `up`.
      redis-cli -p "$p" shutdown >/dev/null 2>&1 || kill "$(cat "$dir/redis.pid")" 2>/dev/null || true
    fi
  done
}

redis_status() {
  local p dir role
  for p in "${REDIS_PORTS[@]}"; do
    dir=$(redis_dir "$p")
    if pid_alive "$dir/redis.pid"; then
      role=$(redis-cli -p "$p" info replication 2>/dev/null | awk -F: '/^role/ {print $2}' | tr -d '\r')
      echo "redis 127.0.0.1:$p: running, $role"
    else
      echo "redis 127.0.0.1:$p: stopped"
    fi
  done
  redis-cli -p "${REDIS_PORTS[0]}" cluster info 2>/dev/null | grep -E '^cluster_(state|known_nodes|size)' | tr -d '\r' | sed 's/^/redis cluster: /' || true
}

# ---------------------------------------------------------------- RabbitMQ cluster

# Node names are md1..3@localhost unless MASKDRAW_CLUSTER_RABBIT_NAME gives another stem (two
# clusters on one host need different names: epmd knows each name once).
RABBIT_NAME=${MASKDRAW_CLUSTER_RABBIT_NAME:-md}
[[ $RABBIT_NAME =~ ^[a-z][a-z0-9]{0,15}$ ]] || die "MASKDRAW_CLUSTER_RABBIT_NAME must match [a-z][a-z0-9]*"
rabbit_node() { echo "$RABBIT_NAME$(($1 + 1))@localhost"; }
rabbit_dir() { echo "$STATE/rabbitmq/md$(($1 + 1))"; }

# The environment of node i (its name, ports, directories, and a cookie of its own in HOME,
# shared by the three nodes and the CLI, not the machine's rabbit@localhost one).
rabbit_env() {
  local i=$1 dir base=$STATE/rabbitmq
  dir=$(rabbit_dir "$i")
  echo HOME="$base/home" \
    RABBITMQ_NODENAME="$(rabbit_node "$i")" \
    RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 \
    RABBITMQ_NODE_PORT="${RABBIT_PORTS[$i]}" \
    RABBITMQ_DIST_PORT="${RABBIT_DIST[$i]}" \
    RABBITMQ_MNESIA_BASE="$dir/mnesia" \
    RABBITMQ_LOG_BASE="$dir/log" \
    RABBITMQ_PID_FILE="$dir/rabbit.pid" \
    RABBITMQ_CONFIG_FILE="$dir/rabbitmq.conf" \
    RABBITMQ_ADVANCED_CONFIG_FILE="$dir/advanced.config" \
    RABBITMQ_CONF_ENV_FILE="$base/rabbitmq-env.conf" \
    RABBITMQ_ENABLED_PLUGINS_FILE="$base/enabled_plugins" \
    ERL_EPMD_ADDRESS=127.0.0.1
}

rabbitmqctl_on() {
  local i=$1; shift
  # shellcheck disable=SC2046
  env $(rabbit_env "$i") "$RABBIT_BIN/rabbitmqctl" -n "$(rabbit_node "$i")" "$@"
}

rabbit_start() {
  local i=$1 dir base=$STATE/rabbitmq
  dir=$(rabbit_dir "$i")
  mkdir -p "$dir/mnesia" "$dir/log" "$base/home"
  if pid_alive "$dir/rabbit.pid"; then return 0; fi
  if [[ ! -s $base/home/.erlang.cookie ]]; then
    head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$base/home/.erlang.cookie"
    chmod 400 "$base/home/.erlang.cookie"
  fi
  : >"$base/rabbitmq-env.conf"
  # No plugins: no management listener to clash with the machine's broker.
  echo '[].' >"$base/enabled_plugins"
  echo '[].' >"$dir/advanced.config"
  # deploy/rabbitmq/rabbitmq.conf's queue and safety settings; this node's listener; the
  # cluster is joined explicitly below rather than by classic_config, whose node names are
  # the deployment's (rabbit@mq1..3).
  {
    grep -E '^(cluster_partition_handling|vm_memory_high_watermark|loopback_users)' "$ROOT/deploy/rabbitmq/rabbitmq.conf"
    echo "listeners.tcp.default = 127.0.0.1:${RABBIT_PORTS[$i]}"
    echo "disk_free_limit.absolute = 50MB"
    echo "load_definitions = $ROOT/deploy/rabbitmq/definitions.json"
  } >"$dir/rabbitmq.conf"
  # In the background, with every descriptor redirected (so no caller's pipe stays open).
  # shellcheck disable=SC2046
  (cd "$dir" && exec env $(rabbit_env "$i") setsid "$RABBIT_BIN/rabbitmq-server") \
    >"$dir/log/stdout.log" 2>&1 </dev/null &
}

rabbit_running_nodes() {
  rabbitmqctl_on 0 cluster_status --formatter json 2>/dev/null |
    tr ',' '\n' | sed -n '/"running_nodes"/,/\]/p' | grep -o "$RABBIT_NAME[0-9]@localhost" | sort -u | wc -l
}
rabbit_all_running() { [[ $(rabbit_running_nodes) == 3 ]]; }

rabbit_up() {
  local i
  for i in 0 1 2; do rabbit_start "$i"; done
  for i in 0 1 2; do
    wait_for "rabbitmq $(rabbit_node "$i")" rabbitmqctl_on "$i" await_startup --timeout 5
  done
  if ! rabbit_all_running; then
    for i in 1 2; do
      if ! rabbitmqctl_on 0 cluster_status 2>/dev/null | grep -q "$(rabbit_node "$i")"; then
        rabbitmqctl_on "$i" stop_app >/dev/null
        rabbitmqctl_on "$i" join_cluster "$(rabbit_node 0)" >/dev/null
        rabbitmqctl_on "$i" start_app >/dev/null
      fi
    done
    wait_for "rabbitmq cluster of 3" rabbit_all_running
  fi
  # deploy/rabbitmq/definitions.json made the `maskdraw` vhost (quorum by default) and, as in
  # production, no guest user: the apps get a user of their own, its password in the state dir.
  local pw_file=$STATE/rabbitmq/maskdraw.password
  if [[ ! -s $pw_file ]]; then
    head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$pw_file"
    chmod 600 "$pw_file"
  fi
  if ! rabbitmqctl_on 0 list_users -q 2>/dev/null | grep -q '^maskdraw[[:space:]]'; then
    rabbitmqctl_on 0 add_user maskdraw "$(cat "$pw_file")" >/dev/null
    rabbitmqctl_on 0 set_permissions -p maskdraw maskdraw '.*' '.*' '.*' >/dev/null
  fi
}

rabbit_down() {
  local i dir
  for i in 2 1 0; do
    dir=$(rabbit_dir "$i")
    if pid_alive "$dir/rabbit.pid"; then
      rabbitmqctl_on "$i" stop "$dir/rabbit.pid" >/dev/null 2>&1 || kill "$(cat "$dir/rabbit.pid")" 2>/dev/null || true
    fi
  done
}

# Resident memory of each node's Erlang VM, in MiB.
rabbit_memory() {
  local i dir rss total=0
  for i in 0 1 2; do
    dir=$(rabbit_dir "$i")
    if pid_alive "$dir/rabbit.pid"; then
      rss=$(ps -o rss= -p "$(cat "$dir/rabbit.pid")" | tr -d ' ')
      total=$((total + rss))
      echo "rabbitmq $(rabbit_node "$i"): $((rss / 1024)) MiB resident"
    fi
  done
  echo "rabbitmq total: $((total / 1024)) MiB resident"
}

rabbit_status() {
  local i dir
  for i in 0 1 2; do
    dir=$(rabbit_dir "$i")
    if pid_alive "$dir/rabbit.pid"; then
      echo "rabbitmq $(rabbit_node "$i") amqp://127.0.0.1:${RABBIT_PORTS[$i]}: running"
    else
      echo "rabbitmq $(rabbit_node "$i"): stopped"
    fi
  done
  local n
  n=$(rabbit_running_nodes 2>/dev/null) || true
  echo "rabbitmq cluster: ${n:-0} nodes running"
  rabbit_memory
}

# ---------------------------------------------------------------- nginx

NGINX_DIR=$STATE/nginx
nginx_bin() { command -v nginx 2>/dev/null || echo /usr/sbin/nginx; }

nginx_up() {
  if pid_alive "$NGINX_DIR/nginx.pid"; then return 0; fi
  local ups=()
  local p
  for p in "${SERVE_PORTS[@]}"; do ups+=("127.0.0.1:$p"); done
  MASKDRAW_NGINX_LISTEN="127.0.0.1:$NGINX_PORT" MASKDRAW_NGINX_UPSTREAMS="${ups[*]}" \
    bash "$ROOT/scripts/nginx-conf.sh" local "$NGINX_DIR" >/dev/null
  "$(nginx_bin)" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -t -q
  "$(nginx_bin)" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf"
  wait_for "nginx" pid_alive "$NGINX_DIR/nginx.pid"
}

nginx_down() {
  if pid_alive "$NGINX_DIR/nginx.pid"; then
    "$(nginx_bin)" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" -s quit 2>/dev/null || true
  fi
}

nginx_status() {
  if pid_alive "$NGINX_DIR/nginx.pid"; then
    echo "nginx http://127.0.0.1:$NGINX_PORT/ -> serve ${SERVE_PORTS[*]}: running"
  else
    echo "nginx: stopped"
  fi
}

# ---------------------------------------------------------------- serve and persist (hooks)

APP_DIR=$STATE/apps
BIN=${MASKDRAW_BIN:-$ROOT/target/release/maskdraw}
# Lists in the environment are TOML arrays (no spaces: app_env's words are split on them).
# The brokers: vhost `maskdraw`, user `maskdraw`, made by rabbit_up.
app_amqp_urls() {
  local pw urls=() p
  pw=$(cat "$STATE/rabbitmq/maskdraw.password" 2>/dev/null)
  for p in "${RABBIT_PORTS[@]}"; do urls+=("\"amqp://maskdraw:$pw@127.0.0.1:$p/maskdraw\""); done
  (IFS=,; echo "[${urls[*]}]")
}

app_redis_urls() {
  local urls=() p
  for p in "${REDIS_PORTS[@]}"; do urls+=("\"redis://127.0.0.1:$p\""); done
  (IFS=,; echo "[${urls[*]}]")
}

app_env() {
  # Its own database and Redis key prefix: nothing shared with scripts/run.sh's `maskdraw`.
  echo MASKDRAW_REDIS_CLUSTER_URLS="$(app_redis_urls)" MASKDRAW_AMQP_URLS="$(app_amqp_urls)" \
    MASKDRAW_TRUSTED_PROXIES='["127.0.0.1"]' \
    MASKDRAW_DATABASE_URL="postgres://postgres@127.0.0.1:5432/$APP_DB" \
    MASKDRAW_KEY_PREFIX=mdcluster MASKDRAW_STATIC_DIR="$ROOT/static" \
    MASKDRAW_ENVIRONMENT="${MASKDRAW_ENVIRONMENT:-development}"
}

# start_app <name> <args...>: one maskdraw process in the background, pid and log in APP_DIR.
start_app() {
  local name=$1; shift
  mkdir -p "$APP_DIR"
  if pid_alive "$APP_DIR/$name.pid"; then return 0; fi
  # shellcheck disable=SC2046
  env $(app_env) setsid "$BIN" "$@" >"$APP_DIR/$name.log" 2>&1 </dev/null &
  echo $! >"$APP_DIR/$name.pid"
}

http_ok() { timeout 3 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1; printf 'GET /healthz HTTP/1.0\r\n\r\n' >&3; head -c 12 <&3" 2>/dev/null | grep -q ' 200'; }

start_serve() { start_app "serve-$1" serve --bind "127.0.0.1:$1" --admin-bind "127.0.0.1:1$1"; wait_for "serve on $1" http_ok "$1"; }
start_persist() { start_app "persist-$1" persist --metrics-bind "127.0.0.1:$1"; wait_for "persist metrics on $1" http_ok "$1"; }

apps_up() {
  [[ $APPS == 1 ]] || return 0
  if [[ -z ${MASKDRAW_BIN:-} ]]; then
    (cd "$ROOT" && cargo build --release --locked --bin maskdraw)
  fi
  [[ $APP_DB =~ ^[a-z_][a-z0-9_]{0,62}$ ]] || die "MASKDRAW_CLUSTER_DB_NAME must match [a-z_][a-z0-9_]*"
  if [[ $(psql -X -w -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$APP_DB'") != 1 ]]; then
    createdb -w -h 127.0.0.1 -U postgres "$APP_DB"
  fi
  local p
  # One at a time: the first serve migrates the database.
  for p in "${SERVE_PORTS[@]}"; do start_serve "$p"; done
  for p in "${PERSIST_PORTS[@]}"; do start_persist "$p"; done
}

apps_down() {
  local f
  for f in "$APP_DIR"/*.pid; do
    [[ -e $f ]] || continue
    if pid_alive "$f"; then kill "$(cat "$f")" 2>/dev/null || true; fi
    rm -f "$f"
  done
}

apps_status() {
  local f
  for f in "$APP_DIR"/*.pid; do
    [[ -e $f ]] || continue
    if pid_alive "$f"; then echo "$(basename "$f" .pid): running"; else echo "$(basename "$f" .pid): stopped"; fi
  done
}

# ---------------------------------------------------------------- commands

addresses() {
  local r=() p
  for p in "${REDIS_PORTS[@]}"; do r+=("127.0.0.1:$p"); done
  echo "redis cluster:   ${r[*]} (3 masters, 3 replicas)"
  echo "rabbitmq:        $(for i in 0 1 2; do printf 'amqp://127.0.0.1:%s (%s) ' "${RABBIT_PORTS[$i]}" "$(rabbit_node "$i")"; done)"
  echo "nginx:           http://127.0.0.1:$NGINX_PORT/"
  if [[ $APPS == 1 ]]; then
    echo "serve:           ${SERVE_PORTS[*]} (the Redis Cluster and the 3 brokers above; /metrics on 1<port>)"
    echo "persist metrics: ${PERSIST_PORTS[*]}"
  fi
  echo "state:           $STATE"
}

case ${1:-} in
  up)
    ensure_packages
    redis_up
    if [[ $ONLY == redis ]]; then
      echo "redis cluster:   $(printf '127.0.0.1:%s ' "${REDIS_PORTS[@]}")(3 masters, 3 replicas)"
      exit 0
    fi
    rabbit_up
    apps_up
    nginx_up
    addresses
    ;;
  down)
    nginx_down
    apps_down
    rabbit_down
    redis_down
    ;;
  status)
    redis_status
    rabbit_status
    nginx_status
    apps_status
    ;;
  clean)
    "$0" down
    rm -rf "$STATE"
    ;;
  rabbitmqctl)
    n=${2:-}
    [[ $n =~ ^[123]$ ]] || die "usage: cluster.sh rabbitmqctl 1|2|3 ARGS..."
    shift 2
    rabbitmqctl_on $((n - 1)) "$@"
    ;;
  *)
    die "usage: cluster.sh up | down | status | clean | rabbitmqctl N ARGS..."
    ;;
esac
