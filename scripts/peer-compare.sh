#!/usr/bin/env bash
# Runs benches/kafka_load (librdkafka) against strom and against a peer
# broker — tansu (nisshi) with in-memory storage, or sqlite — in the same
# run, alternating, so both are measured by the same client on the same
# machine state. Prints each run's lines prefixed with the broker.
#
#   scripts/peer-compare.sh [--runs N] [--peer memory|sqlite] -- <kafka_load flags>
#
# The peer binary: $TANSU (default /work/tansu/target/release/nisshi), built
# from its repository with
#   cargo build --release -p nisshi --features libsql,dynostore
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=3
PEER=memory
TANSU=${TANSU:-/work/tansu/target/release/nisshi}
while [[ $# -gt 0 ]]; do
  case "$1" in
    --runs) RUNS=$2; shift 2 ;;
    --peer) PEER=$2; shift 2 ;;
    --) shift; break ;;
    *) break ;;
  esac
done
cargo bench --bench kafka_load --no-run -q 2>/dev/null
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
PEER_PID=""
PEER_DIR=$(mktemp -d "${TMPDIR:-/tmp}/peer-XXXX")
trap '[[ -n "$PEER_PID" ]] && kill -9 $PEER_PID 2>/dev/null; rm -rf "$PEER_DIR"' EXIT
for run in $(seq "$RUNS"); do
  cargo bench -q --bench kafka_load -- "$@" | sed "s/^/strom run $run: /"
  port=$(free_port)
  case "$PEER" in
    memory) storage="memory://tansu/" ;;
    # tansu reads the URL's path relative to its working directory.
    sqlite) rm -f "$PEER_DIR"/tansu.db*; storage="sqlite://tansu.db" ;;
    *) echo "--peer memory or sqlite" >&2; exit 2 ;;
  esac
  (cd "$PEER_DIR" && exec "$TANSU" broker --listener-url "tcp://127.0.0.1:$port" \
    --advertised-listener-url "tcp://127.0.0.1:$port" \
    --storage-engine "$storage" --silent >"$PEER_DIR/log" 2>&1) &
  PEER_PID=$!
  for _ in $(seq 200); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.05
  done
  cargo bench -q --bench kafka_load -- --bootstrap "127.0.0.1:$port" --pid "$PEER_PID" "$@" \
    | sed "s/^/tansu-$PEER run $run: /"
  kill -TERM "$PEER_PID"; wait "$PEER_PID" 2>/dev/null || true
  PEER_PID=""
done
