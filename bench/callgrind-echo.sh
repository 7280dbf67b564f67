#!/usr/bin/env bash
# Counts the user-space instructions an echo server spends per round trip,
# with valgrind's callgrind: a number that a busy machine does not change,
# unlike a rate (chapter 14, "Counting instructions").
#
# Usage, from the repository's root, after
#   cargo build --release --example echo --example echo_load
#   cargo build --release -p evio-peers        # for tokio_echo
#
#   bash bench/callgrind-echo.sh INFLIGHT SECONDS SERVER [ARGS...]
#   bash bench/callgrind-echo.sh 1 5 target/release/examples/echo --backend epoll --loops 1
#   bash bench/callgrind-echo.sh 1 5 target/release/tokio_echo
#
# The server runs under callgrind (about fifty times slower, which does not
# matter: instructions are counted, not time). Its counters are zeroed once it
# listens, `echo_load` drives it for SECONDS with 50 connections and INFLIGHT
# messages in flight on each, and the counters are dumped before it stops: so
# start-up and shutdown are left out. Prints the instructions per round trip
# and per read (with many messages in flight, one read carries many round
# trips, and how many depends on timing: compare per read there). The
# profile stays in a temporary directory; `callgrind_annotate --inclusive=no
# FILE` shows where the instructions go.
set -euo pipefail
[ $# -ge 3 ] || { sed -n 5,11p "$0"; exit 2; }
inflight=$1 seconds=$2
shift 2
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
load=target/release/examples/echo_load
[ -x "$load" ] || { echo "build $load first"; exit 1; }
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
valgrind --tool=callgrind --callgrind-out-file="$dir/out.%p" "$@" --port "$port" \
    >"$dir/server.log" 2>&1 &
server=$!
for _ in $(seq 150); do
    ss -ltn | grep -q ":$port " && break
    sleep 0.2
done
# The reads over the same window, if perf can count the kernel's tracepoints
# (root, or perf_event_paranoid at most 1): valgrind runs the server's code,
# not the kernel's, so every `recvfrom` still reaches the kernel.
perf stat -e syscalls:sys_enter_recvfrom -x, -o "$dir/reads" -p "$server" 2>/dev/null &
perf=$!
callgrind_control -z "$server" >/dev/null 2>&1
result=$("$load" --addr "127.0.0.1:$port" --conns 50 --inflight "$inflight" \
    --seconds "$seconds" --kv)
callgrind_control -d "$server" >/dev/null 2>&1
kill -INT "$perf" 2>/dev/null || true
wait "$perf" || true
# SIGTERM: a background job ignores SIGINT, and tokio_echo does not catch it.
kill -TERM "$server"
wait "$server" || true
profile=$(ls "$dir"/out.*.1)
instructions=$(awk '/^summary:/ {print $2}' "$profile")
round_trips=$(sed 's/.*round_trips=\([0-9]*\).*/\1/' <<<"$result")
reads=$(awk -F, '/sys_enter_recvfrom/ {print $1}' "$dir/reads" 2>/dev/null || true)
echo "$* ($inflight in flight): $round_trips round trips, ${reads:-n/a} reads, $instructions instructions"
awk -v i="$instructions" -v t="$round_trips" -v r="${reads:-0}" 'BEGIN {
    printf "%.1f instructions per round trip", i / t
    if (r > 0) printf ", %.1f per read (%.2f round trips per read)", i / r, t / r
    print ""
}'
echo "profile: $profile"
