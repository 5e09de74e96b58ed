#!/usr/bin/env bash
# Runs the benchmark suite against an etcd in its own process, so that the
# server's allocations stay out of allocs/op, then compares etcdkit with raw
# clientv3 with benchstat and redraws bench/ratios.png.
#
#   bench/run.sh                      # every benchmark, -count 6
#   COUNT=10 BENCH='Get|Put' bench/run.sh
#
# Results go to bench/results/ (raw output, benchstat text and CSV).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-6}
BENCH=${BENCH:-.}
BENCHTIME=${BENCHTIME:-1s}
OUT=bench/results
mkdir -p "$OUT"

BENCHSTAT="$(go env GOPATH)/bin/benchstat"
[ -x "$BENCHSTAT" ] || GOFLAGS= go install golang.org/x/perf/cmd/benchstat@latest

tmp=$(mktemp -d)
go build -o "$tmp/etcd" ./bench/cmd/etcd
"$tmp/etcd" > "$tmp/endpoint" &
server=$!
trap 'kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do [ -s "$tmp/endpoint" ] && break; sleep 0.1; done
[ -s "$tmp/endpoint" ] || { echo "etcd did not start" >&2; exit 1; }

ETCD_ENDPOINTS=$(cat "$tmp/endpoint") go test -run '^$' -bench "$BENCH" \
  -benchtime "$BENCHTIME" -count "$COUNT" -timeout 2h ./bench | tee "$OUT/bench.txt"

"$BENCHSTAT" -col /impl "$OUT/bench.txt" > "$OUT/benchstat.txt"
"$BENCHSTAT" -col /impl -format csv "$OUT/bench.txt" > "$OUT/benchstat.csv" 2>/dev/null
go run ./bench/chart -in "$OUT/benchstat.csv" -out bench/ratios.png
cat "$OUT/benchstat.txt"
