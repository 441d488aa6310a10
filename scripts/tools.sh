#!/usr/bin/env bash
# Installs the tools the deploy/ tests run, when missing: promtool (Debian `prometheus`),
# nginx, systemd-analyze (`systemd`), envsubst (`gettext-base`); and LibreOffice Calc without
# its GUI (`libreoffice-calc-nogui`, about 300 MB), which the exports test opens them with. Their daemons are never
# started: a policy-rc.d that refuses every start is in place during the install (Debian's
# packages otherwise start prometheus and nginx on install). And schemathesis (PyPI, pinned)
# for tests/api/conformance.rs, in a virtualenv under target/. And cargo-fuzz (crates.io, pinned)
# for tests/api/fuzzing.rs: it builds the fuzz targets on the machine's own toolchain with
# --sanitizer none, so no nightly is needed (scripts/fuzz.sh installs nightly only when
# FUZZ_SANITIZER asks for a sanitizer).
#
#   scripts/tools.sh
set -euo pipefail
cd "$(dirname "$0")/.."

note() { echo "tools.sh: $*" >&2; }
die() { echo "tools.sh: $*" >&2; exit 1; }

SCHEMATHESIS_VERSION=4.32.5
venv=target/schemathesis
if [[ $("$venv/bin/schemathesis" --version 2>/dev/null) != *"$SCHEMATHESIS_VERSION"* ]]; then
  note "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

# The version scripts/fuzz.sh asks for.
CARGO_FUZZ_VERSION=$(sed -n 's/^CARGO_FUZZ_VERSION=//p' scripts/fuzz.sh)
if [[ $(cargo fuzz --version 2>/dev/null) != *"$CARGO_FUZZ_VERSION"* ]]; then
  note "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install --quiet cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi

declare -A PACKAGE=([promtool]=prometheus [nginx]=nginx [systemd-analyze]=systemd [envsubst]=gettext-base
  [soffice]=libreoffice-calc-nogui)
missing=()
for t in promtool nginx systemd-analyze envsubst soffice; do
  command -v "$t" >/dev/null 2>&1 || [[ -x /usr/sbin/$t ]] || missing+=("${PACKAGE[$t]}")
done
((${#missing[@]} == 0)) && exit 0

as_root() {
  if [[ $EUID -eq 0 ]]; then "$@"
  elif command -v sudo >/dev/null 2>&1; then sudo "$@"
  else die "need root to install ${missing[*]}"
  fi
}

policy=/usr/sbin/policy-rc.d
added_policy=0
if [[ ! -e $policy ]]; then
  as_root sh -c "printf '#!/bin/sh\nexit 101\n' > $policy && chmod 755 $policy"
  added_policy=1
fi
cleanup() { if ((added_policy)); then as_root rm -f "$policy"; fi; }
trap cleanup EXIT

note "installing ${missing[*]}"
as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 update -qq
as_root env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 \
  install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
