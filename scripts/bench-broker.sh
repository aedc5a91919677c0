#!/usr/bin/env bash
# Runs `strom bench` against a fresh local strom (2 shards by default) and
# prints the bench's JSON line plus the broker's CPU seconds during the
# run, and saves the broker's /metrics after it. Used for the figures in
# tuning.md; every run starts from an empty data dir.
#
#   scripts/bench-broker.sh [--serve "extra serve flags"] [--cold N] -- <strom bench flags>
#
# --cold N: first produce N 1 KiB messages, restart the broker (so every
# read is cold, by sendfile), then run the bench flags (a consume-only run).
set -euo pipefail
cd "$(dirname "$0")/.."
STROM=${STROM:-target/release/strom}
SERVE_FLAGS=""
COLD=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --serve) SERVE_FLAGS="$SERVE_FLAGS $2"; shift 2 ;;
    --cold) COLD=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
[[ "$SERVE_FLAGS" == *--shards* ]] || SERVE_FLAGS="--shards 2 $SERVE_FLAGS"
DATA=$(mktemp -d "${TMPDIR:-/tmp}/strom-bench-XXXX")
# The broker picks free ports itself (port 0) and names them in its
# startup line; a port picked here could be taken before it binds.
start() {
  : > "$DATA.log"
  # shellcheck disable=SC2086
  $STROM serve --listen 127.0.0.1:0 --metrics-listen 127.0.0.1:0 --data-dir "$DATA" $SERVE_FLAGS 2>>"$DATA.log" &
  BROKER=$!
  for _ in $(seq 400); do
    line=$(grep "strom is serving" "$DATA.log" 2>/dev/null || true)
    if [[ -n "$line" ]]; then
      ADDR=$(sed -E 's/.*listen=([^ ]+).*/\1/' <<<"$line")
      MADDR=$(sed -E 's|.*metrics="http://([^/]+)/.*|\1|' <<<"$line")
      return
    fi
    sleep 0.05
  done
  echo "broker did not start: $(cat "$DATA.log")" >&2; exit 1
}
stop() { kill -TERM "$BROKER"; wait "$BROKER" || true; }
cpu() { awk '{print ($14 + $15) / 100}' "/proc/$BROKER/stat"; }
trap 'kill -9 $BROKER 2>/dev/null || true; rm -rf "$DATA" "$DATA.log"' EXIT
start
if [[ $COLD -gt 0 ]]; then
  $STROM bench --bootstrap "$ADDR" --messages "$COLD" --acks 1 --batch-size 65536 --json >/dev/null
  stop
  start
fi
before=$(cpu)
out=$($STROM bench --bootstrap "$ADDR" --json "$@")
after=$(cpu)
curl -s "$MADDR/metrics" > "${METRICS_OUT:-/tmp/strom-bench.metrics}"
stop
echo "$out" | python3 -c "
import json, sys
v = json.load(sys.stdin)
v['broker_cpu_s'] = round($after - $before, 3)
print(json.dumps(v))"
