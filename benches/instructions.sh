#!/bin/sh
# Instructions per request of each variant of `benches/instructions.rs`,
# counted by valgrind's callgrind on the thread that drives the requests:
# its count at 40 000 requests minus its count at 20 000, over 20 000, so
# start-up and the runtime's set-up cancel out. Instruction counts do not move with the
# machine's load, which wall-clock figures here do (BENCHMARKS.md §1).
#
#   bash benches/instructions.sh                 # every variant
#   VARIANTS="bare snapshot_reject" bash benches/instructions.sh
#
# Needs valgrind (`apt-get install -y valgrind`).
set -eu
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed: apt-get install -y valgrind" >&2; exit 1; }
bin=$(cargo bench --bench instructions --no-run 2>&1 | sed -n 's/.*Executable .*(\(.*\)).*/\1/p' | tail -n 1)
[ -x "$bin" ] || { echo "could not build the instructions bench" >&2; exit 1; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
# The main thread's count only: the snapshotter's sampling runs on threads
# of its own, as often as the (slowed) run lasts.
count() {
    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file="$out/cg" "$bin" "$1" "$2" >/dev/null 2>&1
    sed -n 's/^totals: *\([0-9]*\).*/\1/p' "$out/cg-01"
    rm -f "$out"/cg*
}
variants=${VARIANTS:-$("$bin" | sed 's/.*variants: //')}
printf '%-28s %s\n' variant instructions/request
# Three measurements per variant, the median printed: a run now and then
# takes a path of its own (the sampling thread scheduled late, say).
for v in $variants; do
    per=$(for _ in 1 2 3; do
        low=$(count "$v" 20000)
        high=$(count "$v" 40000)
        echo $(( (high - low) / 20000 ))
    done | sort -n | sed -n 2p)
    printf '%-28s %d\n' "$v" "$per"
done
