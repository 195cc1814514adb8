#!/usr/bin/env bash
# weft's DNS server next to Unbound serving the same records as local data, in the same
# run, with dnsperf: queries per second and latency for cluster names and for cached
# external names (the "external" upstream is a stub on loopback). Everything runs on
# loopback inside a private network namespace: no packet leaves it.
#
#   bench/dns.sh                     # 10 s per run, 10,000 services / 100,000 endpoints
#   DURATION=30 bench/dns.sh
#
# Each server is pinned to CPU 0 with one UDP socket / one thread (a per-core figure);
# dnsperf runs on CPU 1.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
SERVICES=${SERVICES:-10000}
ENDPOINTS=${ENDPOINTS:-100000}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$CARGO_TARGET_DIR/release/examples/serve

if [ "${1:-}" != "--inside" ]; then
  need=()
  command -v dnsperf >/dev/null || need+=(dnsperf)
  command -v unbound >/dev/null || need+=(unbound)
  command -v dig >/dev/null || need+=(dnsutils)
  if [ ${#need[@]} -gt 0 ]; then
    # No package may start a service on the host (unbound's would listen on port 53).
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  fi
  cargo build --release -q -p weft-dns --example serve
  echo "== memory: $SERVICES services, $ENDPOINTS endpoints"
  "$BIN" --memory --services "$SERVICES" --endpoints "$ENDPOINTS"
  exec unshare --net --fork bash "$0" --inside
fi

ip link set lo up
work=$(mktemp -d)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT

taskset -c 1 "$BIN" --stub 127.0.0.1:5399 & pids+=($!)
taskset -c 0 "$BIN" --listen 127.0.0.1:5300 --http 127.0.0.1:9153 --sockets 1 --upstream 127.0.0.1:5399 \
  --services "$SERVICES" --endpoints "$ENDPOINTS" --unbound-conf "$work/peer.conf" --queries "$work/cluster.txt" >/dev/null & pids+=($!)
cat > "$work/unbound.conf" <<CONF
server:
  interface: 127.0.0.1@5301
  num-threads: 1
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$work"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  do-not-query-localhost: no
  module-config: "iterator"
  msg-cache-size: 64m
  rrset-cache-size: 128m
  include: "$work/peer.conf"
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@5399
CONF
for i in $(seq 1 600); do [ -s "$work/cluster.txt" ] && dig +time=1 +tries=1 -p 5300 @127.0.0.1 svc-1.ns-1.svc.cluster.local +short | grep -q . && break; sleep 0.1; done
sleep 1
taskset -c 0 unbound -d -c "$work/unbound.conf" & pids+=($!)
for i in $(seq 1 300); do dig +time=1 +tries=1 -p 5301 @127.0.0.1 svc-1.ns-1.svc.cluster.local +short | grep -q . && break; sleep 0.1; done
for i in $(seq 0 999); do echo "ext-$i.example.test A"; done > "$work/external.txt"
# Warm both caches with every external name.
for p in 5300 5301; do dnsperf -s 127.0.0.1 -p $p -d "$work/external.txt" -n 1 >/dev/null 2>&1; done

run() { # port file [extra dnsperf args] -> "qps avg_ms lost"
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l "$DURATION" -c 1 -q 500 -O suppress=timeouts "${@:3}" 2>&1 |
    awk '/Queries per second/ {q=$4} /Average Latency/ {l=$4*1000} /Queries lost/ {lost=$3} END {printf "%.0f %.3f %s\n", q, l, lost}'
}
pct() { # port file qps -> client-side p50/p99 latency (ms) at that rate
  taskset -c 1 dnsperf -s 127.0.0.1 -p "$1" -d "$2" -l 5 -c 1 -q 500 -Q "$3" -v 2>/dev/null |
    awk '$1=="<" || $1=="T" {next} NF>=3 && $(NF) ~ /^[0-9.]+$/ && $1 ~ /^>/ {print $(NF)*1000}' | sort -n |
    awk '{a[NR]=$1} END {if (NR==0) {print "n/a"; exit} printf "p50 %.3f ms, p99 %.3f ms (%d samples)", a[int(NR*0.5)+1], a[int(NR*0.99)], NR}'
}
server_p99() { # the histogram of /metrics: the bucket bound under which 99% of requests fall
  curl -s http://127.0.0.1:9153/metrics | awk -F'[{}" ]+' '/request_duration_seconds_bucket/ {for (i=1;i<=NF;i++) if ($i=="le=") le=$(i+1); n[++k]=$NF; b[k]=le} END {tot=n[k]; for (i=1;i<=k;i++) if (n[i] >= tot*0.99) {printf "%s s (of %d requests)", b[i], tot; exit}}'
}

printf '\n== dnsperf, %ss per run, 1 server thread on CPU 0, dnsperf on CPU 1\n' "$DURATION"
printf '%-8s %-18s %10s %10s %6s\n' server names QPS avg_ms lost
declare -A peak
for s in weft:5300 unbound:5301; do
  name=${s%%:*}; port=${s##*:}
  for set in cluster external; do
    read -r q l lost < <(run "$port" "$work/$set.txt")
    peak[$name-$set]=$q
    printf '%-8s %-18s %10s %10s %6s\n' "$name" "$set" "$q" "$l" "$lost"
  done
done
printf '\n== latency at 80%% of each server'"'"'s own peak (cluster names, client side)\n'
for s in weft:5300 unbound:5301; do
  name=${s%%:*}; port=${s##*:}
  q=$(( ${peak[$name-cluster]} * 8 / 10 ))
  printf '%-8s at %6s qps: %s\n' "$name" "$q" "$(pct "$port" "$work/cluster.txt" "$q")"
done
printf '\nweft server-side p99 bound over every request so far: %s\n' "$(server_p99)"
