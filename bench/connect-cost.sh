#!/usr/bin/env bash
# Broker CPU per connect: a single node and a cluster node (Redis) side by side, with mqload's conn
# scenario (N idle clean-session clients, exact broker CPU over the connects), for one or more builds.
#
#   bench/connect-cost.sh [-r REPEATS] [-c CONNS] [-m single,cluster] DIR [DIR ...]
#
# DIR is a built checkout (dist/cli/main.js); give the before and the after build to compare them in
# one run. Rounds alternate builds and modes, each broker (and each Redis) is started fresh on a free
# port and stopped by PID. Prints one line per run and the medians. Not a test (docs/benchmarks.md).
set -euo pipefail

REPEATS=3
CONNS=10000
MODES=single,cluster
while getopts "r:c:m:" opt; do
  case $opt in
    r) REPEATS=$OPTARG ;;
    c) CONNS=$OPTARG ;;
    m) MODES=$OPTARG ;;
    *) echo "usage: $0 [-r REPEATS] [-c CONNS] [-m single,cluster] DIR [DIR ...]" >&2; exit 2 ;;
  esac
done
shift $((OPTIND - 1))
[ $# -ge 1 ] || { echo "usage: $0 [-r REPEATS] [-c CONNS] [-m single,cluster] DIR [DIR ...]" >&2; exit 2; }

HERE=$(cd "$(dirname "$0")" && pwd)
WORK=$(mktemp -d /tmp/connect-cost.XXXXXX)
MQLOAD=${MQLOAD:-$WORK/mqload}
if [ ! -x "$MQLOAD" ]; then cc -O2 -o "$MQLOAD" "$HERE/../../shared/bench/mqload.c" -lm; fi
ulimit -n 20000

BROKER_PID=
REDIS_PID=
stop() {
  for pid in $BROKER_PID $REDIS_PID; do
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  BROKER_PID=
  REDIS_PID=
}
trap 'stop; rm -rf "$WORK"' EXIT

free_port() {
  local port
  while :; do
    port=$((20000 + RANDOM % 9000))
    ss -ltn "( sport = :$port )" | grep -q ":$port" || { echo "$port"; return; }
  done
}

# run DIR MODE: prints "conn_per_s us_per_conn other" of one mqload run
run() {
  local dir=$1 mode=$2 port extra=()
  port=$(free_port)
  if [ "$mode" = cluster ]; then
    local rport
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly yes --appendfsync everysec --dir "$WORK" \
      --appendfilename "aof-$rport" --appenddirname "aof-$rport" > "$WORK/redis.log" 2>&1 &
    REDIS_PID=$!
    for _ in $(seq 50); do redis-cli -p "$rport" ping 2>/dev/null | grep -q PONG && break; sleep 0.1; done
    extra=(--redis "redis://127.0.0.1:$rport" --node-id "bench-$port")
  else
    extra=(--store memory)
  fi
  node "$dir/dist/cli/main.js" --port "$port" --host 127.0.0.1 --no-http --log-level warn --sys-interval 0 "${extra[@]}" > "$WORK/broker.log" 2>&1 &
  BROKER_PID=$!
  for _ in $(seq 100); do "$MQLOAD" -s probe -p "$port" > /dev/null 2>&1 && break; sleep 0.1; done
  local out
  out=$(timeout 150 "$MQLOAD" -s conn -c "$CONNS" -H 4 -p "$port" -x "$BROKER_PID" 2>/dev/null || true)
  stop
  local cps us status
  cps=$(tr ' ' '\n' <<< "$out" | sed -n 's/^conn_per_s=//p')
  us=$(tr ' ' '\n' <<< "$out" | sed -n 's/^broker_cpu_us_per_conn=//p')
  status=$(tr ' ' '\n' <<< "$out" | sed -n 's/^status=//p')
  echo "${cps:-0} ${us:-0} ${status:-failed}"
}

declare -A results
IFS=, read -r -a modes <<< "$MODES"
for round in $(seq "$REPEATS"); do
  for dir in "$@"; do
    for mode in "${modes[@]}"; do
      read -r cps us status < <(run "$dir" "$mode")
      load=$(cut -d' ' -f1 /proc/loadavg)
      printf 'round=%s build=%s mode=%s conn_per_s=%s broker_cpu_us_per_conn=%s status=%s loadavg=%s\n' "$round" "$dir" "$mode" "$cps" "$us" "$status" "$load"
      results["$dir|$mode"]+="$us "
    done
  done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2}'; }
echo "medians of $REPEATS (broker CPU µs per connect):"
for dir in "$@"; do
  line="  $dir:"
  single=
  for mode in "${modes[@]}"; do
    m=$(median <<< "${results["$dir|$mode"]}")
    line+=" $mode=$m"
    [ "$mode" = single ] && single=$m
    if [ "$mode" = cluster ] && [ -n "$single" ]; then line+=" cluster/single=$(awk -v a="$m" -v b="$single" 'BEGIN {printf "%.2f", a / b}')"; fi
  done
  echo "$line"
done
