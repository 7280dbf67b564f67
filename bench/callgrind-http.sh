#!/usr/bin/env bash
# Counts the user-space instructions an HTTP server spends per request, with
# valgrind's callgrind: a number that a busy machine does not change, unlike
# a rate (chapter 14, "Counting instructions"). The HTTP twin of
# bench/callgrind-echo.sh.
#
# Usage, from the repository's root, after
#   cargo build --release --example http
#   cargo build --release -p evio-peers        # for tokio_http
#
#   bash bench/callgrind-http.sh REQUESTS DEPTH SERVER [ARGS...]
#   bash bench/callgrind-http.sh 1000 1 target/release/examples/http --backend epoll --loops 1
#   bash bench/callgrind-http.sh 1000 1 target/release/tokio_http
#
# The server runs under callgrind (about fifty times slower, which does not
# matter: instructions are counted, not time). `bench/http_requests.py` opens
# 50 connections and sends one request on each, zeroes the counters, sends
# REQUESTS more GET requests on each (wrk's request, DEPTH in flight per
# connection: 1 as wrk, more pipelined), dumps the counters, and only then
# closes: so start-up, the connections' set-up and shutdown are left out, and
# the count covers exactly 50 * REQUESTS requests. Prints the instructions per
# request. The profile stays in a temporary directory;
# `callgrind_annotate --inclusive=yes FILE` shows where the instructions go.
set -euo pipefail
[ $# -ge 3 ] || { sed -n 7,13p "$0"; exit 2; }
requests=$1 depth=$2
shift 2
command -v valgrind >/dev/null || { echo "needs valgrind (apt-get install valgrind)"; exit 1; }
client=$(dirname "$0")/http_requests.py
dir=$(mktemp -d)
port=$((20000 + RANDOM % 20000))
valgrind --tool=callgrind --callgrind-out-file="$dir/out.%p" "$@" --port "$port" \
    >"$dir/server.log" 2>&1 &
server=$!
# A client that fails (an unexpected answer, a closed connection) must not
# leave the server running under valgrind.
trap 'kill -TERM "$server" 2>/dev/null || true' EXIT
# Listening: this server, on this port (on a shared machine another process
# may hold the port, and then this one has failed to start).
for _ in $(seq 150); do
    ss -ltnpH "sport = :$port" | grep -q "pid=$server," && break
    kill -0 "$server" 2>/dev/null || { cat "$dir/server.log"; exit 1; }
    sleep 0.2
done
result=$(python3 "$client" "$port" "$server" 50 "$requests" "$depth")
# SIGTERM: a background job ignores SIGINT, and tokio_http does not catch it.
kill -TERM "$server"
wait "$server" || true
profile=$(ls "$dir"/out.*.1)
instructions=$(awk '/^summary:/ {print $2}' "$profile")
total=${result#requests=}
echo "$* ($depth in flight): $total requests, $instructions instructions"
awk -v i="$instructions" -v t="$total" 'BEGIN { printf "%.1f instructions per request\n", i / t }'
echo "profile: $profile"
