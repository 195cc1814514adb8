#!/usr/bin/env bash
# The API benchmark: 10,000 pods created by 64 concurrent clients, listed, and
# watched by 10 watchers; prints throughput, latency percentiles and memory.
# PODS=N and CONCURRENCY=C override the defaults.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release -p weft --bin weft --example api_bench
# In network and mount namespaces of its own: the node namespaces and links that
# `weft up` makes die with it, and nothing touches the host's network.
WEFT_BIN=target/release/weft unshare --net --mount --propagation private --fork \
  sh -c 'ip link set lo up && exec ./target/release/examples/api_bench' 
