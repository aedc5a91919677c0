#!/usr/bin/env bash
# Idle cost of partitions: starts BINARY on a fresh data dir, creates one
# topic of N partitions (confluent-kafka's admin client), waits 3 s, and
# prints the broker's CPU seconds over the next 10 s (utime+stime from
# /proc/PID/stat), its resident memory and its open file descriptors.
#
#   scripts/idle-cpu.sh [BINARY] N      # BINARY defaults to target/release/strom
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ $# -ge 2 ]]; then BIN=$1; N=$2; else BIN=target/release/strom; N=${1:?partitions}; fi
DATA=$(mktemp -d "${TMPDIR:-/tmp}/idle-XXXX")
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$BIN" serve --listen "127.0.0.1:$PORT" --data-dir "$DATA" --metrics-listen none > "$DATA.log" 2>&1 &
BP=$!
trap 'kill $BP 2>/dev/null; wait $BP 2>/dev/null; rm -rf "$DATA" "$DATA.log"' EXIT
sleep 1
python3 - "$PORT" "$N" <<'PY'
import sys
from confluent_kafka.admin import AdminClient, NewTopic
a = AdminClient({'bootstrap.servers': f'127.0.0.1:{sys.argv[1]}'})
for f in a.create_topics([NewTopic('idle', int(sys.argv[2]), 1)], operation_timeout=120, request_timeout=120).values():
    f.result()
PY
sleep 3
t0=$(awk '{print $14+$15}' /proc/$BP/stat); sleep 10; t1=$(awk '{print $14+$15}' /proc/$BP/stat)
hz=$(getconf CLK_TCK)
echo "partitions=$N idle_cpu_s_per_10s=$(python3 -c "print(round(($t1-$t0)/$hz, 2))") rss_mb=$(( $(awk '/VmRSS/{print $2}' /proc/$BP/status) / 1024 )) fds=$(ls /proc/$BP/fd | wc -l)"
