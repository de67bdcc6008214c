#!/bin/sh
# The paused-clock model table of `tests/limiter_models/` (every model of
# the issue, nginx without `burst=` and without `nodelay`, at 5-2 000/s) at
# five server latencies: each latency shifts when requests land against
# the limiter's schedule, so one cell's outcome, which a single pause
# landing inside or outside the counted seconds can move by five points,
# is read over five draws. Summarised per model class and per rate: the
# mean goodput (capped at 100 %), the mean share refused, and the cells
# that miss the target (>= 95 % of the allowed rate, <= 1 % refused).
#
#   bash benches/model_ensemble.sh run OUT [B]   # 525 cells, a minute; OUT from the repository root
#   bash benches/model_ensemble.sh matrix OUT [B] # 349 cells of other kinds, one draw each
#   bash benches/model_ensemble.sh far OUT [B]    # 500 cells: 1-200 ms away, 429 and 503
#   bash benches/model_ensemble.sh summary A B   # side by side
#
# `BIN=` runs another build's table binary (any mode).
# `POLICY=adaptive` is the layer's default; the table's other switches
# (`RATES`, `MODELS`, `SECS`, `FROM_S`, ...) pass through.
set -eu
cd "$(dirname "$0")/.."
summary() {
    [ $# -ge 1 ] || { echo "usage: model_ensemble.sh summary A [B ...]" >&2; exit 1; }
    # Columns per file: mean goodput, mean refused, misses.
    awk '
        FNR == 1 { f++ ; names[f] = FILENAME }
        {
            line = $0; sub(/^[^ ]+ /, "", line)
            n = split(line, w, /  +/)
            name = w[1]; good = w[2] + 0; if (good > 100) good = 100
            refused = $0; sub(/ % refused.*/, "", refused); sub(/.* /, "", refused)
            miss = ($0 ~ /MISS/)
            model = name; sub(/ [0-9]+\/s/, "", model)
            rate = name; sub(/^[^0-9]* /, "", rate); sub(/\/s.*/, "", rate)
            for (k = 1; k <= 3; k++) {
                key = (k == 1 ? "model " model : (k == 2 ? "rate " rate : "all"))
                keys[key] = 1
                g[key, f] += good; r[key, f] += refused; m[key, f] += miss; c[key, f]++
            }
        }
        END {
            printf "%-30s", ""
            for (i = 1; i <= f; i++) printf "  %22s", names[i]
            printf "\n"
            for (key in keys) {
                printf "%-30s", key
                for (i = 1; i <= f; i++)
                    if (c[key, i]) printf "  %6.1f %% %5.2f %% %4d", g[key, i] / c[key, i], r[key, i] / c[key, i], m[key, i]
                    else printf "  %22s", "-"
                printf "\n"
            }
        }' "$@" | { IFS= read -r header; printf '%s\n' "$header"; sort -t' ' -k1,1 -k2,2n; }
}

# The table's test binary, built here, or `BIN=` (another build's).
table_bin() {
    bin=${BIN:-$(cargo test --release --test limiter_models --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -n 1)}
    [ -x "$bin" ] || { echo "could not build tests/limiter_models/" >&2; exit 1; }
}

case "${1:-}" in
run)
    out=${2:?usage: model_ensemble.sh run OUT}
    table_bin
    : >"$out"
    for l in 2 5 10 20 30; do
        POLICY=${POLICY:-adaptive} NO_BURST=1 DELAYED=1 RATES=${RATES:-5,20,50,100,500,1000,2000} LATENCY_MS=$l \
            "$bin" --ignored --nocapture table 2>&1 | grep -E '% refused' | grep -v '^concurrency' | sed "s|^|L$l |" >>"$out"
    done
    shift 2
    summary "$out" "$@"
    ;;
matrix)
    # The session's wider matrix, one draw each: the table at 5-2 000/s;
    # at the issue's rates 50, 100 and 200 ms away; windows of 10 s that
    # count refusals (seconds 20-60); refusals answered 503 as nginx does.
    out=${2:?usage: model_ensemble.sh matrix OUT}
    table_bin
    : >"$out"
    table() {
        tag=$1
        shift
        env POLICY=${POLICY:-adaptive} "$@" "$bin" --ignored --nocapture table 2>&1 | grep -E '% refused' | grep -v '^concurrency' | sed "s|^|$tag |" >>"$out"
    }
    table base NO_BURST=1 DELAYED=1 RATES=5,20,50,100,500,1000,2000
    for l in 50 100 200; do table "L$l" NO_BURST=1 DELAYED=1 LATENCY_MS=$l; done
    table S10 SLIDING_S=10 SECS=60 FROM_S=20 MODELS=sliding RATES=20,100,500,2000
    table 503 NO_BURST=1 DELAYED=1 REFUSE_WITH=503
    shift 2
    summary "$out" "$@"
    ;;
far)
    # Far servers and nginx's default status: 1-200 ms away, refusals
    # answered 429 and 503, at 3-500/s, 30 s counted from second 5 (250
    # cells a status).
    out=${2:?usage: model_ensemble.sh far OUT}
    table_bin
    : >"$out"
    for l in 1 20 50 100 200; do
        for status in 429 503; do
            env POLICY=${POLICY:-adaptive} REFUSE_WITH=$status LATENCY_MS=$l RATES=${RATES:-3,10,50,200,500} SECS=30 \
                "$bin" --ignored --nocapture table 2>&1 | grep -E '% refused' | grep -v '^concurrency' | sed "s|^|L$l-$status |" >>"$out"
        done
    done
    shift 2
    summary "$out" "$@"
    ;;
summary)
    shift
    summary "$@"
    ;;
*)
    echo "usage: model_ensemble.sh run|matrix|far OUT [B ...] | summary A [B ...]" >&2
    exit 1
    ;;
esac
