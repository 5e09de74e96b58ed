#!/usr/bin/env bash
# Runs the scaling series (BenchmarkScale*, and BenchmarkPutMany) COUNT
# times, each time against a new etcd in its own process, so that every
# repetition grows the store from empty as the series assume; then compares
# etcdkit with raw clientv3 with benchstat, and redraws the charts of the
# series that ran (bench/scale-*.png).
#
#   bench/scale.sh                            # 1k to 100k keys, 3 times
#   ETCDKIT_BENCH_LARGE=1 bench/scale.sh      # and the 1M sizes
#   COUNT=1 BENCH='ScaleLock' bench/scale.sh
#
# Results go to bench/results/$NAME.txt and $NAME-benchstat.txt (NAME=scale).
set -euo pipefail
cd "$(dirname "$0")/.."

COUNT=${COUNT:-3}
BENCH=${BENCH:-Scale|PutMany}
BENCHTIME=${BENCHTIME:-1s}
OUT=bench/results
NAME=${NAME:-scale}
mkdir -p "$OUT"

BENCHSTAT="$(go env GOPATH)/bin/benchstat"
[ -x "$BENCHSTAT" ] || GOFLAGS= go install golang.org/x/perf/cmd/benchstat@latest

tmp=$(mktemp -d)
server=
stop() {
  if [ -n "$server" ]; then kill "$server" 2>/dev/null; wait "$server" 2>/dev/null || true; fi
  server=
}
trap 'stop; rm -rf "$tmp"' EXIT
go build -o "$tmp/etcd" ./bench/cmd/etcd
go test -c -o "$tmp/bench.test" ./bench
: > "$OUT/$NAME.txt"
for i in $(seq "$COUNT"); do
  "$tmp/etcd" > "$tmp/endpoint" &
  server=$!
  for _ in $(seq 100); do [ -s "$tmp/endpoint" ] && break; sleep 0.1; done
  [ -s "$tmp/endpoint" ] || { echo "etcd did not start" >&2; exit 1; }
  (cd bench && ETCD_ENDPOINTS=$(cat "$tmp/endpoint") "$tmp/bench.test" -test.run '^$' \
    -test.bench "$BENCH" -test.benchtime "$BENCHTIME" -test.count 1 -test.timeout 2h) | tee -a "$OUT/$NAME.txt"
  stop
  rm -f "$tmp/endpoint"
done

"$BENCHSTAT" -col /impl "$OUT/$NAME.txt" > "$OUT/$NAME-benchstat.txt"
go run ./bench/chart -scale bench "$OUT/$NAME.txt"
cat "$OUT/$NAME-benchstat.txt"
