#!/usr/bin/env bash
# The whole test suite: brings up PostgreSQL, Redis and RabbitMQ if needed (scripts/services.sh),
# installs what the page's tests need when it is missing (Node.js and npm, Debian's Chromium, a
# Chinese font for the screenshots, the harness's playwright-core) and the tools the deploy/
# tests run (scripts/tools.sh: promtool, nginx, systemd-analyze, LibreOffice Calc for the exports
# test, schemathesis from PyPI in a virtualenv under target/ for the generated-requests test, and
# cargo-fuzz from crates.io for the fuzz targets), then runs every test of the workspace against
# them. The page's Node unit tests and the browser tests run inside `cargo test`
# (tests/api/browser.rs), and so does a five-second run of every fuzz target
# (tests/api/fuzzing.rs: scripts/fuzz.sh 5). Exits non-zero when any test fails.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -p lottery # extra arguments go to cargo test
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/services.sh

note() { echo "test.sh: $*" >&2; }
as_root() { if [[ $EUID -eq 0 ]]; then "$@"; else sudo "$@"; fi; }
APT_UPDATED=
apt_install() {
  if [[ -z $APT_UPDATED ]]; then
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
    APT_UPDATED=1
  fi
  note "installing $*"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# Only what is missing, so a prepared machine pays nothing here.
command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || apt_install nodejs npm
[[ -x /usr/bin/chromium ]] || apt_install chromium
# Without a CJK font the screenshots show boxes for the Chinese text.
[[ -n $(fc-list :lang=zh 2>/dev/null) ]] || apt_install fonts-wqy-zenhei
# npm ci when node_modules is missing or older than the lock file (npm records what it installed
# in node_modules/.package-lock.json). playwright-core never downloads a browser; the tests use
# /usr/bin/chromium.
if [[ ! -f tests/browser/node_modules/.package-lock.json ||
      tests/browser/package-lock.json -nt tests/browser/node_modules/.package-lock.json ]]; then
  note "npm ci in tests/browser"
  (cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error)
fi

bash scripts/tools.sh
cargo test --workspace --locked "$@"
