#!/usr/bin/env bash
# Writes the nginx configuration of maskdraw from deploy/nginx/*.template.
#
#   scripts/nginx-conf.sh site > /etc/nginx/conf.d/maskdraw.conf   # for Debian's nginx
#   scripts/nginx-conf.sh local DIR     # DIR/nginx.conf + DIR/maskdraw-site.conf, for
#                                       #   nginx -p DIR -c DIR/nginx.conf (pid, logs, temp in DIR)
#
# Environment (all optional):
#   MASKDRAW_NGINX_LISTEN       listen directive's address   (default 80; local: 127.0.0.1:8088)
#   MASKDRAW_NGINX_UPSTREAMS    the serve processes, host:port separated by spaces
#                               (default "127.0.0.1:8081 127.0.0.1:8082")
#   MASKDRAW_NGINX_SERVER_NAME  server_name                  (default _)
set -euo pipefail
cd "$(dirname "$0")/.."

die() { echo "nginx-conf.sh: $*" >&2; exit 1; }
command -v envsubst >/dev/null 2>&1 || die "envsubst not found (apt-get install gettext-base)"

mode=${1:-}
upstreams=${MASKDRAW_NGINX_UPSTREAMS:-127.0.0.1:8081 127.0.0.1:8082}
servers=""
hostport='^[][A-Za-z0-9.:-]+:[0-9]+$'
for u in $upstreams; do
  [[ $u =~ $hostport ]] || die "not host:port: $u"
  # Passive health: a serve that fails 3 times is left out for 5 s.
  servers+="    server $u max_fails=3 fail_timeout=5s;"$'\n'
done
[[ -n $servers ]] || die "MASKDRAW_NGINX_UPSTREAMS is empty"
export MASKDRAW_NGINX_UPSTREAM_SERVERS=${servers%$'\n'}
export MASKDRAW_NGINX_SERVER_NAME=${MASKDRAW_NGINX_SERVER_NAME:-_}
# Only our own variables are substituted: nginx's $host, $remote_addr... stay as they are.
vars='${MASKDRAW_NGINX_UPSTREAM_SERVERS} ${MASKDRAW_NGINX_LISTEN} ${MASKDRAW_NGINX_SERVER_NAME} ${MASKDRAW_NGINX_PREFIX}'

case $mode in
  site)
    export MASKDRAW_NGINX_LISTEN=${MASKDRAW_NGINX_LISTEN:-80}
    envsubst "$vars" <deploy/nginx/maskdraw-site.conf.template
    ;;
  local)
    dir=${2:-}
    [[ -n $dir ]] || die "usage: nginx-conf.sh local DIR"
    mkdir -p "$dir/logs" "$dir/tmp"
    MASKDRAW_NGINX_PREFIX=$(cd "$dir" && pwd)
    export MASKDRAW_NGINX_PREFIX
    export MASKDRAW_NGINX_LISTEN=${MASKDRAW_NGINX_LISTEN:-127.0.0.1:8088}
    envsubst "$vars" <deploy/nginx/maskdraw-site.conf.template >"$dir/maskdraw-site.conf"
    envsubst "$vars" <deploy/nginx/nginx.conf.template >"$dir/nginx.conf"
    echo "$MASKDRAW_NGINX_PREFIX/nginx.conf"
    ;;
  *)
    die "usage: nginx-conf.sh site | local DIR"
    ;;
esac
