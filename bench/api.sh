#!/usr/bin/env bash
# The API benchmark: 10,000 pods created by 64 concurrent clients, listed, and
# watched by 10 watchers; prints throughput, latency percentiles and memory.
# PODS=N and CONCURRENCY=C override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p weft --bin weft --example api_bench
WEFT_BIN=target/release/weft ./target/release/examples/api_bench
