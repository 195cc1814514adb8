#!/usr/bin/env bash
# Fuzzes the DNS packet path with libFuzzer for a bounded time (default 60 s).
# With cargo-fuzz installed: `cargo fuzz run packet` (nightly or RUSTC_BOOTSTRAP=1).
# Without it, this builds the same target on the stable toolchain with the
# sanitizer-coverage passes libFuzzer needs (no AddressSanitizer: safe Rust).
set -euo pipefail
cd "$(dirname "$0")"
SECONDS_TO_RUN=${1:-60}
export CARGO_TARGET_DIR=${FUZZ_TARGET_DIR:-$PWD/target}
# An explicit target keeps the instrumentation off build scripts and proc macros.
TRIPLE=$(rustc -vV | sed -n 's/^host: //p')
RUSTFLAGS="--cfg fuzzing -Cpasses=sancov-module -Cllvm-args=-sanitizer-coverage-level=4 \
 -Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-pc-table \
 -Cllvm-args=-sanitizer-coverage-trace-compares -Cdebug-assertions -Coverflow-checks" \
  cargo build --release --bin packet --target "$TRIPLE"
mkdir -p corpus
"$CARGO_TARGET_DIR/$TRIPLE/release/packet" -max_total_time="$SECONDS_TO_RUN" -max_len=4096 corpus
