#!/usr/bin/env bash
# Pull throughput and memory: a fresh pull and a re-pull of N generated orders
# from the simulator on loopback, RUNS times each, side by side in one run.
# Prints each run and the medians. Usage: benches/pull.sh [N] [RUNS] [extra shop-sim flags...]
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-10000}; runs=${2:-5}; shift $(( $# > 2 ? 2 : $# ))
cargo build --release --quiet
bin=target/release/station
work=$(mktemp -d); trap 'kill $sim 2>/dev/null; rm -rf "$work"' EXIT
port=$(( 20000 + RANDOM % 20000 ))
$bin shop-sim --generate "$n" --seed 7 --token bench --listen 127.0.0.1:$port "$@" > "$work/sim.log" &
sim=$!
for _ in $(seq 50); do grep -q listening "$work/sim.log" 2>/dev/null && break; sleep 0.1; done
measure() { # $1 = label, $2 = db
    STATION_SHOP_TOKEN=bench /usr/bin/time -f "%e %M" -o "$work/t" \
        $bin --db "$2" pull --shop-url http://127.0.0.1:$port > /dev/null
    read -r secs kb < "$work/t"; echo "$1 $secs $kb"
}
for i in $(seq "$runs"); do
    measure fresh "$work/run$i.db"
    measure repull "$work/run$i.db"
done | tee "$work/results"
for kind in fresh repull; do
    secs=$(awk -v k=$kind '$1==k {print $2}' "$work/results" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    kb=$(awk -v k=$kind '$1==k {print $3}' "$work/results" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    awk -v k=$kind -v n="$n" -v s="$secs" -v kb="$kb" -v r="$runs" 'BEGIN {
        printf "%-6s %d orders: median %.2f s (%.0f orders/s), median peak RSS %.1f MB, %d runs\n", k, n, s, n/s, kb/1024, r }'
done
