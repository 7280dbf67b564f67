#!/usr/bin/env python3
"""A fixed number of keep-alive GET requests, for bench/callgrind-http.sh.

Usage: http_requests.py PORT SERVER_PID CONNS REQUESTS [DEPTH]

Opens CONNS connections to 127.0.0.1:PORT and sends one warm-up request on
each; then zeroes the server's callgrind counters (SERVER_PID), sends
REQUESTS more on each connection, DEPTH at a time (1: the next once the
answer came, as wrk does; more: pipelined), dumps the counters and only then
closes. So the count covers exactly CONNS * REQUESTS requests, without the
connections' set-up and tear-down. The request is wrk's, byte for byte.
Every response must be `200` with a body; prints `requests=N`.

Python, not Rust: the server runs about fifty times slower under
callgrind, so a plain selector loop keeps up, and this needs no build.
"""

import selectors
import socket
import subprocess
import sys


def main():
    port, pid, conns, requests = (int(a) for a in sys.argv[1:5])
    depth = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    request = f"GET / HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    socks = [socket.create_connection(("127.0.0.1", port)) for _ in range(conns)]
    for s in socks:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    run(socks, request, 1, 1)
    callgrind("-z", pid)
    run(socks, request, requests, depth)
    callgrind("-d", pid)
    for s in socks:
        s.close()
    print(f"requests={conns * requests}")


def callgrind(flag, pid):
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True)


def run(socks, request, requests, depth):
    """`requests` requests on every socket, `depth` in flight; returns once
    every answer has arrived."""
    sel = selectors.DefaultSelector()
    # Per socket: requests still to send, answers still to come, bytes read.
    state = {}
    for s in socks:
        first = min(depth, requests)
        s.sendall(request * first)
        state[s] = [requests - first, requests, b""]
        sel.register(s, selectors.EVENT_READ)
    busy = len(socks)
    while busy:
        for key, _ in sel.select():
            s = key.fileobj
            st = state[s]
            data = s.recv(65536)
            if not data:
                sys.exit("server closed a connection")
            buf = st[2] + data
            answered = 0
            while True:
                n = response_len(buf)
                if n is None:
                    break
                buf = buf[n:]
                answered += 1
            st[1] -= answered
            st[2] = buf
            more = min(answered, st[0])
            if more:
                s.sendall(request * more)
                st[0] -= more
            if st[1] == 0:
                sel.unregister(s)
                busy -= 1
    sel.close()


def response_len(buf):
    """The length of the whole response at the start of `buf`, or None if
    it has not all arrived. Exits on anything but a 200 with a body."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = buf[:end].split(b"\r\n")
    if not head[0].startswith(b"HTTP/1.1 200 "):
        sys.exit(f"unexpected response: {head[0]!r}")
    length = None
    for line in head[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if not length:
        sys.exit("a response without a body")
    total = end + 4 + length
    return total if len(buf) >= total else None


if __name__ == "__main__":
    main()
