# Start a server in the background and wait until it is ready; the book's
# "Run it" blocks use it. For bash, from the repository root:
#
#   . scripts/serve.sh
#   serve ./target/debug/examples/echo --port 0   # waits for the ready line
#   printf 'hi\n' | nc -N 127.0.0.1 "$PORT"        # the port it printed
#   stop                                           # kill it, wait for it
#
# `serve COMMAND...` runs COMMAND with `&`, its standard output copied to the
# terminal (`serve -q`: not copied; `serve -e FILE`: its standard error
# written to FILE), and waits (up to SERVE_TIMEOUT seconds, 60 by default:
# `cargo run` may have to build first) for the line every
# server example prints once it listens, `NAME server started on port P
# (loops: N)`. Then it sets PORT (P) and SERVER (the pid) and returns. If the
# server exits first, or prints no ready line in time, `serve` says so, stops
# it, and fails: under `set -e` (as CI runs a block), the block fails there,
# before it sends anything to a port where some other server may listen.
# With `--port 0` the kernel picks a free port, so two blocks (or a block and
# a server of your own) never meet.
#
# `serve -r REGEX COMMAND...` waits for a line matching REGEX instead (for a
# server that is not one of ours, such as redis-server); PORT is then the
# number after "port" in that line, if any. Such a server listens on a port
# of its own choosing: check it first with `free_port PORT`, which fails if
# something already listens there.
#
# `stop` kills SERVER (the examples stop cleanly on SIGTERM) and waits for
# that one process, not for every background job as a bare `wait` would.
# `serve` also arranges for `stop` at the shell's exit, so that a block that
# fails half-way does not leave its server running.
serve() {
  local quiet=0 i=0 ready='server started on port' err=/dev/stderr
  while :; do
    case "${1:-}" in
      -q) quiet=1; shift ;;
      -e) err=$2; shift 2 ;;
      -r) ready=$2; shift 2 ;;
      *) break ;;
    esac
  done
  SERVE_LOG=$(mktemp "${TMPDIR:-/tmp}/serve.XXXXXX")
  if [ "$err" = /dev/stderr ]; then
    if [ "$quiet" = 1 ]; then "$@" >"$SERVE_LOG" & else "$@" > >(tee "$SERVE_LOG") & fi
  else
    if [ "$quiet" = 1 ]; then "$@" >"$SERVE_LOG" 2>"$err" & else "$@" > >(tee "$SERVE_LOG") 2>"$err" & fi
  fi
  SERVER=$!
  trap stop EXIT
  until grep -Eq "$ready" "$SERVE_LOG"; do
    if ! kill -0 "$SERVER" 2>/dev/null; then
      sleep 0.1 # what it printed before it exited may still be on its way
      grep -Eq "$ready" "$SERVE_LOG" && break
      echo "serve: $* exited without its ready line: not started" >&2
      stop
      return 1
    fi
    if [ "$i" -ge $((${SERVE_TIMEOUT:-60} * 20)) ]; then
      echo "serve: no ready line from $* in ${SERVE_TIMEOUT:-60} s: stopped it" >&2
      stop
      return 1
    fi
    sleep 0.05
    i=$((i + 1))
  done
  PORT=$(grep -Em 1 "$ready" "$SERVE_LOG" | sed -n 's/.*port \([0-9]*\).*/\1/p')
}

stop() {
  if [ -n "${SERVER:-}" ]; then
    kill "$SERVER" 2>/dev/null || true
    wait "$SERVER" 2>/dev/null || true
    SERVER=
  fi
  rm -f "${SERVE_LOG:-}"
  SERVE_LOG=
}

free_port() {
  if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then
    echo "free_port: something already listens on port $1" >&2
    return 1
  fi
}
