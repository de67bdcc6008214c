#!/usr/bin/env bash
# The paused-clock limiter tables BENCHMARKS.md §4 quotes, by name, and a
# cell-by-cell comparison of two runs.
#
#   bash benches/model_tables.sh openings > A     # this checkout's build
#   BIN=/path/to/limiter_models-… bash benches/model_tables.sh openings > B
#   bash benches/model_tables.sh diff A B
#
# Tables:
#   openings    counted from the first second over 30 s: HAProxy and sliding
#               logs of 1 s and 10 s and the GCRAs at 3-500/s, 1 and 20 ms
#               away, a closed loop of 64 and the open loop (320 cells)
#   steady      HAProxy and sliding logs at 3-2 000/s from second 10, 1-150 ms
#               away, open loop, and a closed loop of 64 10 ms away
#   per-minute  0.1-2/s over 400 s, counted from 0 and from second 100,
#               GCRAs, sliding logs, HAProxy counters and quota windows, a
#               closed loop of 64 10 ms away (`OPEN=1`: the open loop, 1 ms)
#   small-bursts GCRAs with a burst of 1-3, with and without `Retry-After: 1`,
#               at 200-2 500/s over 30 s from second 10, 1 and 20 ms away.
#               nginx counts in whole milliseconds: a burst of one lets
#               any client through at most two a millisecond (2 000/s),
#               and less than the rate at some rates over 1 000/s (1 167/s
#               at 1 200/s, 1 500/s at 1 800/s): cells there read under
#               95 % at best
#   served-windows  windows that count the requests they served, without
#               quota headers: moving windows (Flask-Limiter's and slowapi's
#               moving window, Caddy's `rate_limit`) with `Retry-After` until
#               the oldest leaves or none, and fixed windows with `Retry-After`
#               to the reset or none; of 1 s and 10 s at 3-500/s over 60 s
#               from second 10 (open loop 1 ms away, closed loop of 64 10 ms
#               away), and of 60 s at 0.2-30/s over 400 s from second 100
#   traefik     Traefik's `rateLimit` (a bucket that serves late within half
#               an interval and names the exact wait in `X-Retry-In`) with
#               bursts of 1, 10 and 50 at 1-2 000/s: over 30 s from the
#               first second (1 and 20 ms away, a closed loop of 64 and the
#               open loop), then over 60 s from second 10 (the open loop,
#               1 and 50 ms away) (120 cells)
#   odd-windows windows that count refusals of lengths the other tables
#               do not use: HAProxy's counter of 2, 3, 4, 5 and 7 s and
#               sliding logs of 3, 4 and 7 s at 3-100/s, 1 ms away, a closed
#               loop of 64 and the open loop, over 30 s from the first
#               second and over 60 s from second 10 (128 cells)
#   spring      Spring Cloud Gateway's `RequestRateLimiter` (a bucket refilled
#               at each second of the server's clock, refusals free, a bare
#               429) with a second's burst and two, naming its rate in
#               headers and not, at 0.5-2 000/s: over 30 s from the first
#               second (1 and 20 ms away, a closed loop of 64 and the open
#               loop), then over 60 s from second 10 (the open loop, 1 and
#               50 ms away) (184 cells)
# `diff` prints the cells that moved 2 points or 0.5 % refused, and the means.
set -euo pipefail
cd "$(dirname "$0")/.."

table() {
    timeout 1200 "$BIN" table --exact --ignored --nocapture 2>&1 | grep -E "%.*refused" | grep -v concurrency || true
}

case "${1:-}" in
diff)
    python3 - "$2" "$3" <<'EOF'
import re, sys
rx = re.compile(r'(.*?\S)\s{2,}([\d.]+) %\s+([\d.]+)/s\s+([\d.]+) % refused')
def load(path):
    cells = {}
    for line in open(path):
        m = rx.match(line.strip())
        if m:
            cells[m.group(1)] = (float(m.group(2)), float(m.group(4)), 'MISS' in line)
    return cells
a, b = load(sys.argv[1]), load(sys.argv[2])
keys = [k for k in a if k in b]
for k in keys:
    (g1, r1, _), (g2, r2, _) = a[k], b[k]
    if abs(g1 - g2) >= 2 or abs(r1 - r2) >= 0.5:
        print(f"{k:45} {g1:6.1f} -> {g2:6.1f} %   refused {r1:6.2f} -> {r2:6.2f} %")
n = max(1, len(keys))
mean = lambda c, i: sum(c[k][i] for k in keys) / n
print(f"cells {len(keys)}: mean {mean(a, 0):.1f} -> {mean(b, 0):.1f} %; refused {mean(a, 1):.2f} -> {mean(b, 1):.2f} %; "
      f"misses {sum(a[k][2] for k in keys)} -> {sum(b[k][2] for k in keys)}")
EOF
    exit 0
    ;;
openings | steady | per-minute | small-bursts | served-windows | odd-windows | traefik | spring) ;;
*)
    sed -n '2,43p' "$0"
    exit 2
    ;;
esac

if [ -z "${BIN:-}" ]; then
    BIN=$(cargo test --release --test limiter_models --no-run --message-format=json 2>/dev/null |
        python3 -c 'import json, sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("executable") and m.get("target", {}).get("name") == "limiter_models":
        print(m["executable"])')
fi
export HAPROXY=1

case "$1" in
openings)
    for l in 1 20; do for s in 1 10; do
        models=sliding,gcra
        [ "$s" = 10 ] && models=haproxy,sliding,gcra
        for loop in 64 open; do
            if [ "$loop" = open ]; then unset CLOSED; else export CLOSED=64; fi
            SECS=30 FROM_S=0 LATENCY_MS=$l SLIDING_S=$s MODELS=$models RATES=3,10,30,100,500 table |
                sed "s/^/L$l C$loop S$s /"
        done
    done; done
    ;;
steady)
    for l in 1 10 50 150; do for s in 1 10; do
        models=sliding
        [ "$s" = 10 ] && models=haproxy,sliding
        (unset CLOSED; SECS=60 FROM_S=10 LATENCY_MS=$l SLIDING_S=$s MODELS=$models \
            RATES=3,8,20,30,100,500,2000 table) | sed "s/^/L$l /"
    done; done
    CLOSED=64 SECS=60 FROM_S=10 LATENCY_MS=10 SLIDING_S=10 MODELS=haproxy,sliding \
        RATES=3,8,20,30,100,500 table | sed "s/^/C64 /"
    ;;
per-minute)
    if [ -n "${OPEN:-}" ]; then unset CLOSED; export LATENCY_MS=1; else export CLOSED=64 LATENCY_MS=10; fi
    for from in 0 100; do for s in 10 60; do
        models=sliding,haproxy
        [ "$s" = 10 ] && models=gcra,sliding,haproxy,window
        NO_BURST=1 SECS=400 FROM_S=$from SLIDING_S=$s WINDOW_S=60 MODELS=$models \
            RATES=0.1,0.2,0.5,1,2 table | grep -v " w1s" | sed "s/^/F$from /"
    done; done
    ;;
served-windows)
    export FIXED=1
    for loop in open 64; do
        if [ "$loop" = open ]; then unset CLOSED; l=1; else export CLOSED=64; l=10; fi
        for w in 1 10; do
            SECS=60 FROM_S=10 LATENCY_MS=$l WINDOW_S=$w MOVING_S=$w MODELS=moving,RetryAfter,Bare \
                RATES=3,10,30,100,500 table | sed "s/^/C$loop /"
        done
    done
    unset CLOSED
    SECS=400 FROM_S=100 WINDOW_S=60 MOVING_S=60 MODELS=moving,RetryAfter,Bare \
        RATES=0.2,1,3,10,30 table | sed "s/^/Copen /"
    ;;
traefik)
    for l in 1 20; do for loop in 64 open; do
        if [ "$loop" = open ]; then unset CLOSED; else export CLOSED=64; fi
        TRAEFIK=1 SECS=30 FROM_S=0 LATENCY_MS=$l MODELS=traefik RATES=1,3,10,30,100,500,2000 table |
            sed "s/^/L$l C$loop /"
    done; done
    unset CLOSED
    for l in 1 50; do
        TRAEFIK=1 SECS=60 FROM_S=10 LATENCY_MS=$l MODELS=traefik RATES=3,8,30,100,500,2000 table |
            sed "s/^/steady L$l /"
    done
    ;;
spring)
    # The bucket steps at whole seconds of the server's clock: one phase
    # of it in every run (`WALL_PHASE_MS` chooses another).
    export WALL_PHASE_MS="${WALL_PHASE_MS:-300}"
    for l in 1 20; do for loop in 64 open; do
        if [ "$loop" = open ]; then unset CLOSED; else export CLOSED=64; fi
        SPRING=1 SECS=30 FROM_S=0 LATENCY_MS=$l MODELS=spring RATES=0.5,1,3,10,30,100,500,2000 table |
            sed "s/^/L$l C$loop /"
    done; done
    unset CLOSED
    for l in 1 50; do
        SPRING=1 SECS=60 FROM_S=10 LATENCY_MS=$l MODELS=spring RATES=1,3,10,30,100,500,2000 table |
            sed "s/^/steady L$l /"
    done
    ;;
odd-windows)
    for loop in 64 open; do
        if [ "$loop" = open ]; then unset CLOSED; else export CLOSED=64; fi
        for from in 0 10; do
            secs=30
            [ "$from" = 10 ] && secs=60
            SECS=$secs FROM_S=$from LATENCY_MS=1 HAPROXY_S=2,3,4,5,7 MODELS=haproxy RATES=3,10,30,100 table |
                sed "s/^/C$loop S$from /"
            for w in 3 4 7; do
                SECS=$secs FROM_S=$from LATENCY_MS=1 SLIDING_S=$w MODELS=sliding RATES=3,10,30,100 table |
                    sed "s/^/C$loop S$from /"
            done
        done
    done
    ;;
small-bursts)
    for l in 1 20; do
        SECS=30 FROM_S=10 LATENCY_MS=$l BURSTS=2,3 RETRY_AFTERS=none,1 MODELS="b1 ,b2 ,b3 " \
            RATES=200,500,700,1000,1200,1500,1800,2500 table | sed "s/^/L$l /"
    done
    ;;
esac
