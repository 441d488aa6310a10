#!/usr/bin/env bash
# Runs the fuzz targets of fuzz/ (ARCHITECTURE.md "Fuzzing") with cargo-fuzz and libFuzzer, each
# for a bounded time, with a corpus seeded from the repository's own vectors
# (lottery/tests/vectors, copies of shared/vectors) and the hand-written seeds in fuzz/seeds/.
# The corpus each run grows is kept in fuzz/corpus/TARGET (not committed), so later runs start
# where earlier ones stopped. A crash or a broken property leaves its input in
# fuzz/artifacts/TARGET/; replay it with
# `cargo fuzz run -s none -a --codegen-units 16 --target-dir target/fuzz TARGET FILE`, then make
# it a unit test in the crate that owns the parser.
#
#   scripts/fuzz.sh                      # every target, 60 s each
#   scripts/fuzz.sh 5                    # what the test suite runs (tests/api/fuzzing.rs)
#   scripts/fuzz.sh 3600 verify_dir      # one target for an hour
#   FUZZ_JOBS=2 scripts/fuzz.sh 600      # two workers per target
#   FUZZ_SANITIZER=address scripts/fuzz.sh 600   # AddressSanitizer: nightly, installed if missing
#
# Builds on the machine's own toolchain with --sanitizer none (the crates fuzzed forbid unsafe
# code, so a sanitizer would watch only their dependencies), with debug assertions and overflow
# checks on, into target/fuzz (a sanitizer's build goes to target/fuzz-nightly-SANITIZER).
# Prints one line per target and exits non-zero when any target crashed.
set -euo pipefail
cd "$(dirname "$0")/.."

note() { echo "fuzz.sh: $*" >&2; }
die() { echo "fuzz.sh: $*" >&2; exit 1; }

seconds=${1:-60}
[[ $seconds =~ ^[1-9][0-9]*$ ]] || die "SECONDS_PER_TARGET must be a positive number, not '$seconds'"
shift || true

CARGO_FUZZ_VERSION=0.13.2
sanitizer=${FUZZ_SANITIZER:-none}
toolchain=${FUZZ_TOOLCHAIN:-}
if [[ $sanitizer != none && -z $toolchain ]]; then
  toolchain=nightly
fi
if [[ -n $toolchain ]] && ! rustup run "$toolchain" rustc --version >/dev/null 2>&1; then
  note "installing the $toolchain toolchain (needed for --sanitizer $sanitizer)"
  rustup toolchain install "$toolchain" --profile minimal
fi
if [[ $(cargo fuzz --version 2>/dev/null) != *"$CARGO_FUZZ_VERSION"* ]]; then
  note "installing cargo-fuzz $CARGO_FUZZ_VERSION"
  cargo install cargo-fuzz --locked --version "$CARGO_FUZZ_VERSION"
fi
cargo_fuzz() { cargo ${toolchain:++$toolchain} fuzz "$@"; }

# Every build option of `cargo fuzz run` must equal the build's, or it builds again.
# A build per sanitizer, so that switching does not rebuild the other one.
target_dir=target/fuzz${toolchain:+-$toolchain}
[[ $sanitizer == none ]] || target_dir+=-$sanitizer
build=(-s "$sanitizer" --debug-assertions --codegen-units 16 --target-dir "$target_dir")

all=$(cargo_fuzz list)
if (($# > 0)); then
  targets=("$@")
  for t in "${targets[@]}"; do
    grep -qx -- "$t" <<<"$all" || die "no fuzz target $t (there are: $(echo $all))"
  done
else
  mapfile -t targets <<<"$all"
fi

start=$SECONDS
cargo_fuzz build "${build[@]}"
note "built in $((SECONDS - start)) s"

# Seeds from the repository, rebuilt on every run (the vectors may have changed).
seeds=target/fuzz/seeds
rm -rf "$seeds"
vectors=lottery/tests/vectors
days=("$vectors/v1-small" "$vectors/v1-contested")
seed() { # TARGET FILE...
  mkdir -p "$seeds/$1"
  local t=$1 f
  shift
  for f in "$@"; do cp "$f" "$seeds/$t/$(echo "$f" | tr / _)"; done
}
seed entrants_csv "${days[@]/%//entrants.csv}"
seed stock_csv "${days[@]/%//stock.csv}"
seed seal_txt "${days[@]/%//seal.txt}"
seed draw_txt "${days[@]/%//draw.txt}" "$vectors/v1-small/seed.txt"
# verify_dir: a selector byte (the file in bits 0-3, sign again in bit 4, the day in bit 5)
# and the file's bytes, in the order of fuzz/fuzz_targets/verify_dir.rs's FILES.
files=(authority.pub seal.txt seal.sig stock.csv entrants.csv draw.txt draw.sig result.csv
  pools.csv spill.csv audit.txt)
mkdir -p "$seeds/verify_dir"
for d in 0 1; do
  day=${days[d]}
  for i in "${!files[@]}"; do
    file=$day/${files[i]}
    [[ ${files[i]} == audit.txt ]] && file=$vectors/audit-v1/$(basename "$day").txt
    for resign in 0 16; do
      selector=$((i | resign | d << 5))
      { printf "\\x$(printf %02x "$selector")"; cat "$file"; } >"$seeds/verify_dir/$selector"
    done
  done
done
for t in fuzz/seeds/*/; do
  t=$(basename "$t")
  seed "$t" fuzz/seeds/"$t"/*
done

failed=()
mkdir -p target/fuzz/logs
for t in "${targets[@]}"; do
  corpus=fuzz/corpus/$t
  mkdir -p "$corpus" "$seeds/$t" "fuzz/artifacts/$t"
  log=target/fuzz/logs/$t.log
  # -timeout: an input slower than 10 s is a hang; -rss_limit_mb: a runaway allocation.
  if cargo_fuzz run "${build[@]}" "$t" "$corpus" "$seeds/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    ${FUZZ_JOBS:+-fork=$FUZZ_JOBS} >"$log" 2>&1; then
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' | tail -1)
    echo "fuzz.sh: $t ok: ${runs:-?} runs in $seconds s, corpus $(ls "$corpus" | wc -l) inputs"
  else
    failed+=("$t")
    echo "fuzz.sh: $t FAILED: see $log and fuzz/artifacts/$t/"
    grep -E 'panicked at|Assertion|ERROR: libFuzzer|SUMMARY|Test unit written' "$log" | head -n 8 >&2 || true
  fi
done

if ((${#failed[@]} > 0)); then
  die "${#failed[@]} target(s) failed: ${failed[*]}"
fi
note "every target ran $seconds s without a crash ($((SECONDS - start)) s in all)"
