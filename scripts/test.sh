#!/usr/bin/env bash
# The whole test suite: brings up PostgreSQL, Redis and RabbitMQ if needed (scripts/services.sh),
# installs the tools the deploy/ tests run (scripts/tools.sh: promtool, nginx, systemd-analyze),
# then runs every test of the workspace against them. Exits non-zero when any test fails.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -p lottery # extra arguments go to cargo test
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh
bash scripts/tools.sh
cargo test --workspace --locked "$@"
