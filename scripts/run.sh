#!/usr/bin/env bash
# Runs maskdraw on this machine: brings up PostgreSQL, Redis and RabbitMQ if needed, builds,
# migrates, then serves the API and the pages with the persister in the same process.
#
#   scripts/run.sh                      # serve on MASKDRAW_BIND (default 127.0.0.1:8080)
#   scripts/run.sh --demo 2000          # first run a whole simulated day with 2000 citizens
#                                       # (drawn yesterday, so its results are published) and
#                                       # serve that day
#
# Configuration: maskdraw.toml beside this repository's root, then MASKDRAW_* variables.
# Unless the operator chose an environment (MASKDRAW_ENVIRONMENT, or `environment` in the
# configuration file), this runs in development mode: the built-in secrets, phone codes not
# required and printed to the log when asked for. Production needs its own secrets (README).
set -euo pipefail
cd "$(dirname "$0")/.."
config=${MASKDRAW_CONFIG:-maskdraw.toml}
if [[ -z ${MASKDRAW_ENVIRONMENT:-} ]] && ! { [[ -f $config ]] && grep -Eq '^[[:space:]]*environment[[:space:]]*=' "$config"; }; then
  export MASKDRAW_ENVIRONMENT=development
  echo "maskdraw: development mode (built-in secrets, phone codes optional); set MASKDRAW_ENVIRONMENT=production and your own secrets for anything real" >&2
fi
bash scripts/services.sh
cargo build --release --locked --bins
bin=target/release/maskdraw
"$bin" migrate
if [[ "${1:-}" == "--demo" ]]; then
  # The demo keeps its own database, Redis keys and queues; the server below shows its day.
  env_file=target/demo.env
  "$bin" demo --citizens "${2:-2000}" --published --env-file "$env_file"
  set -a
  # shellcheck disable=SC1090
  . "$env_file"
  set +a
fi
echo "maskdraw: serving on ${MASKDRAW_BIND:-127.0.0.1:8080}: the page at http://${MASKDRAW_BIND:-127.0.0.1:8080}/ (API at /api/v1; metrics at http://${MASKDRAW_ADMIN_BIND:-127.0.0.1:18080}/metrics)"
exec "$bin" serve --with-persister
