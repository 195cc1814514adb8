#!/usr/bin/env bash
# weft's DNS server next to Unbound serving the same records as local data, in the same
# run, with dnsperf: queries per second and latency for cluster names and for cached
# external names (the "external" upstream is a stub inside the namespace).
#
#   bench/dns.sh                     # 10 s per run, 10,000 services / 100,000 endpoints
#   DURATION=30 bench/dns.sh
#
# Every figure is taken for two server sizes and two paths:
#   1 thread   the server pinned to CPU 0 with one UDP socket (Unbound: num-threads 1),
#              dnsperf on CPU 1: a per-core figure with the client out of the way;
#   2 threads  the server on CPUs 0-1 with two SO_REUSEPORT sockets (Unbound: num-threads
#              2, so-reuseport), dnsperf sharing those CPUs (a 2-core machine has no
#              third), so raw QPS cannot double; QPS per server CPU-second, read from the
#              server's own /proc/PID/stat around each run, shows whether a core's worth
#              of work still buys as many answers;
#   loopback   dnsperf in the servers' network namespace, to 127.0.0.1;
#   veth       dnsperf in a second namespace ("the pod") joined by a veth pair, so
#              queries and answers cross veth as a pod's do.
# Servers and dnsperf run at nice -10 so that other work on the machine (builds)
# disturbs them less, or with PRIO=rt as SCHED_FIFO (chrt -f 10) so that it cannot
# delay them at all: the latency percentiles are otherwise mostly the waits for a CPU
# behind that other work. The load is printed with every table.
# Peak QPS is dnsperf with 500 queries outstanding over 16 sockets; latency is then
# measured at 80 % of that peak with at most 100 outstanding (dnsperf's default: a
# saturated client with 500 sends them in bursts that queue at any server), paced with
# dnsperf -Q: client-side p50/p99 from dnsperf's per-query report, and for weft the
# server-side p99 from its histograms on /metrics, taken as the difference of
# two scrapes around the run: from the kernel's receive timestamp to the reply sent
# (queues in the stack and the socket included; on loopback and veth the stamp is taken
# on the client's CPU, so a busy client's backlog counts too), and in the server's own
# hands (read off the socket to reply sent).
#
# Everything runs in private network, mount and PID namespaces with a tmpfs on /tmp:
# when the script ends, however it ends, its processes, namespaces and files go with it.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-10}
SERVICES=${SERVICES:-10000}
ENDPOINTS=${ENDPOINTS:-100000}
PRIO=${PRIO:-nice}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$CARGO_TARGET_DIR/release/examples/serve

if [ "${1:-}" != "--inside" ]; then
  need=()
  command -v dnsperf >/dev/null || need+=(dnsperf)
  command -v unbound >/dev/null || need+=(unbound)
  command -v dig >/dev/null || need+=(dnsutils)
  command -v curl >/dev/null || need+=(curl)
  if [ ${#need[@]} -gt 0 ]; then
    # No package may start a service on the host (unbound's would listen on port 53).
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
    rm -f /usr/sbin/policy-rc.d
  fi
  cargo build --release -q -p weft-dns --example serve
  echo "== $(date -u +%FT%TZ), $(nproc) CPUs, load:$(uptime | sed 's/.*load average://')"
  echo "== memory: $SERVICES services, $ENDPOINTS endpoints"
  "$BIN" --memory --services "$SERVICES" --endpoints "$ENDPOINTS"
  exec unshare --net --pid --mount-proc --kill-child bash "$0" --inside
fi

mount -t tmpfs -o size=256m dns-bench /tmp
work=$(mktemp -d)
ip link set lo up
# The pod: a namespace of its own, held by a sleeping process, joined by a veth pair.
unshare --net sleep 1000000 &
holder=$!
sleep 0.2
pod() { nsenter --net="/proc/$holder/ns/net" "$@"; }
ip link add wv0 type veth peer name wv1 netns "$holder"
ip addr add 10.123.0.1/24 dev wv0 && ip link set wv0 up
pod ip link set lo up && pod ip addr add 10.123.0.2/24 dev wv1 && pod ip link set wv1 up

taskset -c 1 "$BIN" --stub 127.0.0.1:5399 &
TICK=$(getconf CLK_TCK)
if [ "$PRIO" = rt ]; then prio=(chrt -f 10); else prio=(nice -n -10); fi
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
metrics() { curl -s http://127.0.0.1:9153/metrics; }

# The same records for both servers (written once by weft's example).
"$BIN" --services "$SERVICES" --endpoints "$ENDPOINTS" --unbound-conf "$work/peer.conf" --queries "$work/cluster.txt" --write-only
for i in $(seq 0 999); do echo "ext-$i.example.test A"; done > "$work/external.txt"

start_weft() { # threads cpus
  "${prio[@]}" taskset -c "$2" "$BIN" --listen 0.0.0.0:5300 --http 127.0.0.1:9153 --sockets "$1" --upstream 127.0.0.1:5399 \
    --services "$SERVICES" --endpoints "$ENDPOINTS" >/dev/null &
  WEFT=$!
  for _ in $(seq 1 600); do dig +time=1 +tries=1 -p 5300 @127.0.0.1 svc-1.ns-1.svc.cluster.local +short 2>/dev/null | grep -q . && break; sleep 0.1; done
}
start_unbound() { # threads cpus
  cat > "$work/unbound.conf" <<CONF
server:
  interface: 127.0.0.1@5301
  interface: 10.123.0.1@5301
  num-threads: $1
  so-reuseport: yes
  so-rcvbuf: 4m
  so-sndbuf: 4m
  do-daemonize: no
  username: ""
  chroot: ""
  directory: "$work"
  pidfile: ""
  use-syslog: no
  logfile: ""
  verbosity: 0
  access-control: 127.0.0.0/8 allow
  access-control: 10.123.0.0/24 allow
  do-not-query-localhost: no
  module-config: "iterator"
  msg-cache-size: 64m
  rrset-cache-size: 128m
  include: "$work/peer.conf"
forward-zone:
  name: "."
  forward-addr: 127.0.0.1@5399
CONF
  "${prio[@]}" taskset -c "$2" unbound -d -c "$work/unbound.conf" 2>/dev/null &
  UNBOUND=$!
  for _ in $(seq 1 600); do dig +time=1 +tries=1 -p 5301 @127.0.0.1 svc-1.ns-1.svc.cluster.local +short 2>/dev/null | grep -q . && break; sleep 0.1; done
}
stop() { kill "$@" 2>/dev/null || true; for p in "$@"; do while kill -0 "$p" 2>/dev/null; do sleep 0.1; done; done; }

# dnsperf from the chosen path with this row's client CPUs and threads.
perf() { # path port file [dnsperf args]
  local at=127.0.0.1 ns=()
  if [ "$1" = veth ]; then at=10.123.0.1; ns=(nsenter --net="/proc/$holder/ns/net"); fi
  "${ns[@]}" "${prio[@]}" taskset -c "$CLIENT_CPUS" dnsperf -s "$at" -p "$2" -d "$3" -c 16 -T "$CLIENT_THREADS" -q "${OUTSTANDING:-500}" -t 2 -O suppress=timeouts,unexpected "${@:4}" 2>&1
}
peak() { # pid path port file -> "qps lost qps_per_cpu_second server_cores"
  local c0 c1 out
  c0=$(cpu_ticks "$1")
  out=$(perf "$2" "$3" "$4" -l "$DURATION")
  c1=$(cpu_ticks "$1")
  awk -v d=$((c1 - c0)) -v t="$TICK" -v l="$DURATION" '/Queries per second/ {q=$4} /Queries lost/ {lost=$3} /Queries completed/ {n=$3}
    END {s=d/t; printf "%.0f %s %.0f %.2f\n", q, lost, (s>0 ? n/s : 0), s/l}' <<<"$out"
}
client_pct() { # dnsperf -v output -> "p50_ms p99_ms"
  awk '$1 == ">" && $(NF) ~ /^[0-9.]+$/ {print $(NF) * 1000}' | sort -n |
    awk '{a[NR]=$1} END {if (NR == 0) {print "n/a n/a"; exit} printf "%.3f %.3f\n", a[int(NR*0.5)+1], a[int(NR*0.99)]}'
}
# p99 of the requests between two scrapes of one of weft's histograms: interpolated in its
# bucket, and the bucket's bounds (what the histogram can tell).
server_p99() { # histogram before after -> "ms lo-hi"
  awk -F'"' -v h="^weft_dns_$1_bucket" 'FNR == 1 {f++} $0 ~ h {split($3, v, " "); c[f, $2] = v[2]; if (f == 1) {le[++k] = $2}}
    END {tot = c[2, "+Inf"] - c[1, "+Inf"]; if (tot <= 0) {print "n/a -"; exit}
         lo = 0; below = 0
         for (i = 1; i <= k; i++) {n = c[2, le[i]] - c[1, le[i]]
           if (n >= tot * 0.99) {hi = (le[i] == "+Inf") ? lo : le[i] + 0
             printf "%.3f %g-%g\n", (lo + (hi - lo) * (tot * 0.99 - below) / ((n - below) > 0 ? n - below : 1)) * 1000, lo * 1000, hi * 1000; exit}
           lo = le[i] + 0; below = n}}' "$2" "$3"
}
socket_spread() { # before after -> "#0 50% #1 50%"
  awk -F'[#"]' 'FNR == 1 {f++} /^weft_dns_udp_socket_requests_total/ {split($4, v, " "); c[f, $3] = v[2]; s[$3] = 1}
    END {for (k in s) {d[k] = c[2, k] - c[1, k]; t += d[k]} for (k in s) printf "#%s %.0f%% ", k, (t ? 100 * d[k] / t : 0)}' "$1" "$2"
}

rows=()
for threads in 1 2; do
  if [ "$threads" = 1 ]; then SERVER_CPUS=0 CLIENT_CPUS=1 CLIENT_THREADS=1; else SERVER_CPUS=0,1 CLIENT_CPUS=0,1 CLIENT_THREADS=2; fi
  start_weft "$threads" "$SERVER_CPUS"
  start_unbound "$threads" "$SERVER_CPUS"
  for p in 5300 5301; do dnsperf -s 127.0.0.1 -p $p -d "$work/external.txt" -n 1 >/dev/null 2>&1; done # warm both caches
  printf '\n== %s; %s server thread(s) on CPU %s, dnsperf (%s thread(s), 16 sockets) on CPU %s, %ss per run, load:%s\n' \
    "${prio[*]}" "$threads" "$SERVER_CPUS" "$CLIENT_THREADS" "$CLIENT_CPUS" "$DURATION" "$(uptime | sed 's/.*load average://')"
  printf '%-8s %-9s %-9s %9s %7s %12s %12s\n' server path names QPS lost QPS/CPU-s server-CPUs
  for path in loopback veth; do
    for s in weft:5300:$WEFT unbound:5301:$UNBOUND; do
      IFS=: read -r name port pid <<<"$s"
      declare -A r=()
      for set in cluster external; do
        metrics > "$work/m0"
        read -r q lost per cores < <(peak "$pid" "$path" "$port" "$work/$set.txt")
        metrics > "$work/m1"
        printf '%-8s %-9s %-9s %9s %7s %12s %12s\n' "$name" "$path" "$set" "$q" "$lost" "$per" "$cores"
        r[$set]=$q r[$set-per]=$per
        if [ "$name" = weft ] && [ "$threads" = 2 ]; then printf '         datagrams per socket: %s\n' "$(socket_spread "$work/m0" "$work/m1")"; fi
      done
      rate=$(( r[cluster] * 8 / 10 ))
      metrics > "$work/m0"
      OUTSTANDING=100 perf "$path" "$port" "$work/cluster.txt" -l "$DURATION" -Q "$rate" -v > "$work/v.out"
      got=$(awk '/Queries per second/ {printf "%.0f", $4}' "$work/v.out")
      metrics > "$work/m1"
      read -r p50 p99 < <(client_pct < "$work/v.out")
      [ "$p50" = n/a ] && grep -v '^>' "$work/v.out" | tail -n 5 >&2
      sp99=n/a bucket=- hp99=n/a hbucket=-
      if [ "$name" = weft ]; then
        read -r sp99 bucket < <(server_p99 request_duration_seconds "$work/m0" "$work/m1")
        read -r hp99 hbucket < <(server_p99 request_handling_seconds "$work/m0" "$work/m1")
      fi
      printf '         at 80%% (%s qps asked, %s got, cluster names): client p50 %s ms, p99 %s ms; server p99 %s ms from the kernel'"'"'s receive stamp (bucket %s), %s ms in its own hands (bucket %s)\n' \
        "$rate" "$got" "$p50" "$p99" "$sp99" "$bucket" "$hp99" "$hbucket"
      rows+=("$(printf '%-8s %-9s %7s %10s %10s %12s %12s %9s %9s %11s %9s' "$name" "$path" "$threads" "${r[cluster]}" "${r[external]}" "${r[cluster-per]}" "${r[external-per]}" "$p50" "$p99" "$sp99" "$hp99")")
    done
  done
  stop "$WEFT" "$UNBOUND"
done

printf '\n== summary (%ss runs; QPS/CPU-s: answers per second of the server'"'"'s own CPU time; latency at 80%% of each row'"'"'s cluster peak, ms)\n' "$DURATION"
printf '%-8s %-9s %7s %10s %10s %12s %12s %9s %9s %11s %9s\n' server path threads QPS-clustr QPS-extern clustr/CPU-s extern/CPU-s client-p50 client-p99 server-p99 in-hands
printf '%s\n' "${rows[@]}"
echo "load at the end:$(uptime | sed 's/.*load average://')"
