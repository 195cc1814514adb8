#!/usr/bin/env bash
# Pod-to-pod networking benchmark: TCP throughput (iperf3) and HTTP request latency
# (wrk, one connection, against agnhost netexec) between two pods on one node and on
# two nodes, for `weft up --backend direct` and `--backend vxlan`, each as a ratio to a
# bare veth pair between two namespaces made by hand in the same run.
#
# Everything runs inside a private network and mount namespace (unshare), so all
# traffic stays in namespaces this script made, and all of it goes when it ends.
# Bounded: each measurement lasts DURATION seconds (default 5), REPEAT times (default
# 4, the median is kept). Needs root. Prints a table; targets: same node >= 0.95,
# direct across nodes >= 0.95, vxlan across nodes >= 0.8.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-5}
REPEAT=${REPEAT:-4}

if [ -z "${WEFT_BENCH_INSIDE:-}" ]; then
  [ "$(id -u)" = 0 ] || { echo "bench/throughput.sh needs root (network namespaces)" >&2; exit 1; }
  missing=()
  for p in iperf3 wrk curl; do command -v $p >/dev/null || missing+=($p); done
  command -v ip >/dev/null || missing+=(iproute2)
  command -v nsenter >/dev/null || missing+=(util-linux)
  command -v kubectl >/dev/null || { echo "kubectl is needed" >&2; exit 1; }
  if [ ${#missing[@]} -gt 0 ]; then
    # No package may start a service on the host (iperf3 ships one).
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  fi
  cargo build -q -p weft --bin weft
  target=$(cargo metadata --format-version 1 --no-deps | sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
  export WEFT_BIN="$target/debug/weft" WEFT_BENCH_INSIDE=1
  exec unshare --net --mount --propagation private --fork --kill-child "$0" "$@"
fi

# --- inside the private namespaces ---------------------------------------------------
ip link set lo up
TMP=$(mktemp -d /tmp/weft-bench.XXXXXX)
SLEEPERS=()
WEFT_PID=
stop_weft() {
  if [ -n "$WEFT_PID" ]; then
    kill "$WEFT_PID" 2>/dev/null || true
    wait "$WEFT_PID" 2>/dev/null || true
    "$WEFT_BIN" down --purge --state-dir "$STATE" >/dev/null 2>&1 || true
    WEFT_PID=
  fi
}

cleanup() {
  stop_weft
  for p in "${SLEEPERS[@]}"; do kill "$p" 2>/dev/null || true; done
  rm -rf "$TMP"
}
trap cleanup EXIT

median() { sort -g | awk '{a[NR]=$1} END {print (NR ? a[int((NR+1)/2)] : 0)}'; }

# Runs "$@" in the network namespace of pid $NS_PID (a baseline namespace) or of the
# namespace file $NS_FILE (a weft pod).
in_ns() {
  if [ -n "${NS_FILE:-}" ]; then nsenter --net="$NS_FILE" "$@"; else nsenter -t "$NS_PID" --net "$@"; fi
}

# One iperf3 run to $1:5201 from the current namespace: receiver Mbit/s.
throughput_once() {
  in_ns timeout $((DURATION + 15)) iperf3 -c "$1" -t "$DURATION" -f m -O 1 | awk '/receiver/ {for (i=1;i<=NF;i++) if ($i ~ /Mbits\/sec/) print $(i-1)}'
}

# One wrk run with one connection to http://$1:8080/echo: "req/s p50_us p99_us".
to_us() { awk '{v=$1; if (v ~ /us$/) {sub(/us/,"",v); print v} else if (v ~ /ms$/) {sub(/ms/,"",v); print v*1000} else if (v ~ /s$/) {sub(/s/,"",v); print v*1000000}}'; }
http_once() {
  local out
  out=$(in_ns timeout $((DURATION + 15)) wrk -t1 -c1 -d"${DURATION}s" --latency "http://$1:8080/echo?msg=hello")
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="50%" {print $2}' <<<"$out" | to_us) $(awk '$1=="99%" {print $2}' <<<"$out" | to_us)"
}

# The bare veth pair between namespaces A and B, made first and kept for the whole run.
unshare --net sleep 100000 & A=$!; SLEEPERS+=($A)
unshare --net sleep 100000 & B=$!; SLEEPERS+=($B)
sleep 0.2
ip link add bench-a type veth peer name bench-b
ip link set bench-a netns "$A"
ip link set bench-b netns "$B"
nsenter -t "$A" --net sh -c 'ip link set lo up; ip addr add 10.200.0.1/24 dev bench-a; ip link set bench-a up'
nsenter -t "$B" --net sh -c 'ip link set lo up; ip addr add 10.200.0.2/24 dev bench-b; ip link set bench-b up'
nsenter -t "$A" --net iperf3 -s >/dev/null 2>&1 & SLEEPERS+=($!)
# Logs to a file, as a container does: each request writes a line.
nsenter -t "$A" --net "$WEFT_BIN" agnhost netexec --http-port=8080 >>"$TMP/netexec.log" 2>&1 & SLEEPERS+=($!)
for _ in $(seq 100); do nsenter -t "$B" --net curl -s -m 1 -o /dev/null http://10.200.0.1:8080/ && break; sleep 0.1; done

# Measures the path from the current client namespace to $1 (iperf3) and $2 (HTTP),
# each run next to a run on the bare veth pair (in turns first and second: on a busy
# machine the order matters), so that both see the same load; records the medians and
# the median of the pairwise ratios.
RESULTS=()
BASE_TP=() BASE_RPS=() BASE_P50=() BASE_P99=()
base() { NS_FILE='' NS_PID=$B "$@"; }
measure() {
  local name=$1 tp=() tpr=() rps=() rpr=() p50=() p99=() i b p bl pl r50 r99
  for i in $(seq "$REPEAT"); do
    if [ $((i % 2)) = 1 ]; then b=$(base throughput_once 10.200.0.1); p=$(throughput_once "$2")
    else p=$(throughput_once "$2"); b=$(base throughput_once 10.200.0.1); fi
    BASE_TP+=("$b"); tp+=("$p"); tpr+=("$(awk -v a="$p" -v b="$b" 'BEGIN {print (b > 0 ? a / b : 0)}')")
    if [ $((i % 2)) = 1 ]; then bl=$(base http_once 10.200.0.1); pl=$(http_once "$3")
    else pl=$(http_once "$3"); bl=$(base http_once 10.200.0.1); fi
    read -r b r50 r99 <<<"$bl"; BASE_RPS+=("$b"); BASE_P50+=("$r50"); BASE_P99+=("$r99")
    read -r p r50 r99 <<<"$pl"; rps+=("$p"); p50+=("$r50"); p99+=("$r99")
    rpr+=("$(awk -v a="$p" -v b="$b" 'BEGIN {print (b > 0 ? a / b : 0)}')")
  done
  RESULTS+=("$name|$(printf '%s\n' "${tp[@]}" | median)|$(printf '%s\n' "${tpr[@]}" | median)|$(printf '%s\n' "${rps[@]}" | median)|$(printf '%s\n' "${rpr[@]}" | median)|$(printf '%s\n' "${p50[@]}" | median)|$(printf '%s\n' "${p99[@]}" | median)")
}

# --- weft ------------------------------------------------------------------------------
pod() {  # name node image command|args items...
  local name=$1 node=$2 image=$3 field=$4; shift 4
  local items; items=$(printf '"%s",' "$@"); items="[${items%,}]"
  printf 'apiVersion: v1\nkind: Pod\nmetadata: {name: %s}\nspec:\n  nodeName: %s\n  containers:\n  - {name: c, image: "%s", %s: %s}\n---\n' "$name" "$node" "$image" "$field" "$items"
}

pod_ns() {
  local uid node
  uid=$(kubectl get pod "$1" -o jsonpath='{.metadata.uid}')
  node=$(kubectl get pod "$1" -o jsonpath='{.spec.nodeName}')
  echo "$STATE/nodes/$node/pods/$uid/netns"
}

AGNHOST=registry.k8s.io/e2e-test-images/agnhost:2.52
for backend in direct vxlan; do
  STATE="$TMP/$backend"
  mkdir -p "$STATE"
  "$WEFT_BIN" up --state-dir "$STATE" --api-port 0 --nodes 2 --backend "$backend" >/dev/null 2>"$STATE.log" &
  WEFT_PID=$!
  export KUBECONFIG="$STATE/kubeconfig"
  for _ in $(seq 300); do [ -f "$KUBECONFIG" ] && kubectl get --raw /readyz >/dev/null 2>&1 && break; sleep 0.1; done
  {
    pod iperf node-1 debian command iperf3 -s
    pod web node-1 "$AGNHOST" args netexec --http-port=8080
    pod near node-1 "$AGNHOST" args pause
    pod far node-2 "$AGNHOST" args pause
  } | kubectl apply -f - >/dev/null
  for _ in $(seq 600); do
    [ "$(kubectl get pods -o jsonpath='{range .items[*]}{.status.phase}{" "}{end}')" = "Running Running Running Running " ] && break
    sleep 0.1
  done
  IPERF=$(kubectl get pod iperf -o jsonpath='{.status.podIP}')
  WEB=$(kubectl get pod web -o jsonpath='{.status.podIP}')
  for client in near far; do
    NS_FILE=$(pod_ns "$client")
    for _ in $(seq 100); do in_ns curl -s -m 1 -o /dev/null "http://$WEB:8080/" && break; sleep 0.2; done
    where=$([ $client = near ] && echo "same node" || echo "across nodes")
    echo "measuring: $backend, $where" >&2
    measure "weft $backend, $where" "$IPERF" "$WEB"
  done
  NS_FILE=
  stop_weft
done

# --- the table ---------------------------------------------------------------------------
target() { case "$1" in *"same node"*) echo 0.95 ;; *direct*) echo 0.95 ;; *vxlan*) echo 0.80 ;; esac; }
printf '\n%-28s %11s %6s %11s %6s %8s %8s %7s  %s\n' "path" "TCP Mbit/s" "ratio" "HTTP req/s" "ratio" "p50 us" "p99 us" "target" "met (TCP, HTTP)"
printf '%-28s %11.0f %6s %11.0f %6s %8.0f %8.0f\n' "bare veth pair (baseline)" \
  "$(printf '%s\n' "${BASE_TP[@]}" | median)" 1.00 "$(printf '%s\n' "${BASE_RPS[@]}" | median)" 1.00 \
  "$(printf '%s\n' "${BASE_P50[@]}" | median)" "$(printf '%s\n' "${BASE_P99[@]}" | median)"
for r in "${RESULTS[@]}"; do
  IFS='|' read -r name tp tpr rps rpr p50 p99 <<<"$r"
  t=$(target "$name")
  met=$(awk -v a="$tpr" -v c="$rpr" -v t="$t" 'BEGIN {printf "%s, %s", (a >= t ? "yes" : "NO"), (c >= t ? "yes" : "NO")}')
  printf '%-28s %11.0f %6.2f %11.0f %6.2f %8.0f %8.0f %7s  %s\n' "$name" "$tp" "$tpr" "$rps" "$rpr" "$p50" "$p99" "$t" "$met"
done
echo "(medians of $REPEAT runs of ${DURATION}s; each ratio is the median of path/baseline over runs made back to back; HTTP: wrk, 1 connection, GET /echo on agnhost netexec)"
