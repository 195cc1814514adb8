#!/usr/bin/env bash
# Pod start benchmark: 100 pods created at once on a one-node `weft up`; prints
# create -> Running-with-IP latency (client-side) and the CNI ADD time the kubelet
# saw. PODS=N changes the count; WEFT_CNI_WORKERS=0 runs every ADD at once on its
# pod's task instead of one per core (root).
set -euo pipefail
cd "$(dirname "$0")/.."
target=${CARGO_TARGET_DIR:-target}
cargo build --release -p weft --bin weft --example pod_start_bench
# In network and mount namespaces of its own: everything `weft up` makes dies with it.
WEFT_BIN=$target/release/weft unshare --net --mount --propagation private --fork \
  sh -c "ip link set lo up && exec $target/release/examples/pod_start_bench"
