"""Load generators run inside the benchmark's namespaces (standalone: no package imports).

    load.py accept-server PORT MODE     MODE hold: keep every connection; close: close at once;
                                        SO_REUSEPORT, so several servers share the port
    load.py hold DST PORT COUNT SRC[,SRC..] WINDOW TIMEOUT MAX_FAILURES
                                        open COUNT connections, at most WINDOW in flight, and
                                        keep them; print a JSON summary, then wait for stdin EOF
    load.py churn DST PORT SECONDS SRC[,SRC..] WINDOW TIMEOUT
                                        open short connections for SECONDS; print JSON
Every loop is bounded in count and time. One process holds at most RLIMIT_NOFILE sockets
(20,000 on the machines here), so the benchmark runs several of each.
"""

from __future__ import annotations

import errno
import json
import resource
import select
import socket
import sys
import time

IP_BIND_ADDRESS_NO_PORT = 24  # Linux: choose the port at connect, per 4-tuple


def raise_file_limit() -> None:
    """Soft limit up to the hard one (raising the hard one needs CAP_SYS_RESOURCE)."""
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def accept_server(port: int, mode: str) -> None:
    raise_file_limit()
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    server.bind(("0.0.0.0", port))
    server.listen(65535)
    server.setblocking(False)
    poller = select.epoll()
    poller.register(server.fileno(), select.EPOLLIN)
    held: list[socket.socket] = []
    print("listening", flush=True)
    deadline = time.monotonic() + 3600  # a benchmark never needs longer
    while time.monotonic() < deadline:
        for _ in poller.poll(1.0):
            while True:
                try:
                    connection, _ = server.accept()
                except BlockingIOError:
                    break
                if mode == "hold":
                    held.append(connection)
                else:
                    connection.close()


def _connect(destination: tuple[str, int], source: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_IP, IP_BIND_ADDRESS_NO_PORT, 1)
    sock.setblocking(False)
    sock.bind((source, 0))
    code = sock.connect_ex(destination)
    if code not in (0, errno.EINPROGRESS):
        sock.close()
        raise OSError(code, errno.errorcode.get(code, str(code)))
    return sock


def hold(destination: tuple[str, int], count: int, sources: list[str], window: int,
         timeout: float, max_failures: int) -> None:
    raise_file_limit()
    poller = select.epoll()
    pending: dict[int, tuple[socket.socket, float]] = {}
    established: list[socket.socket] = []
    failures = 0
    first_failure_at: int | None = None
    attempted = 0
    local_errors: dict[str, int] = {}
    started = time.monotonic()
    while (attempted < count and failures < max_failures) or pending:
        while attempted < count and len(pending) < window and failures < max_failures:
            try:
                sock = _connect(destination, sources[attempted % len(sources)])
            except OSError as error:
                name = errno.errorcode.get(error.errno or 0, str(error))
                local_errors[name] = local_errors.get(name, 0) + 1
                failures += 1
                first_failure_at = first_failure_at or len(established)
                attempted += 1
                continue
            attempted += 1
            pending[sock.fileno()] = (sock, time.monotonic() + timeout)
            poller.register(sock.fileno(), select.EPOLLOUT)
        for fd, _ in poller.poll(0.05):
            sock, _ = pending.pop(fd)
            poller.unregister(fd)
            if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0:
                established.append(sock)
            else:
                sock.close()
                failures += 1
                first_failure_at = first_failure_at or len(established)
        now = time.monotonic()
        for fd in [fd for fd, (_, deadline) in pending.items() if deadline < now]:
            sock, _ = pending.pop(fd)
            poller.unregister(fd)
            sock.close()
            failures += 1
            first_failure_at = first_failure_at or len(established)
    alive = sum(1 for s in established
                if s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0)
    print(json.dumps({"attempted": attempted, "established": len(established),
                      "still_open": alive, "failures": failures,
                      "established_before_first_failure": first_failure_at,
                      "local_errors": local_errors,
                      "seconds": round(time.monotonic() - started, 2)}), flush=True)
    sys.stdin.read()  # hold every connection until the benchmark has looked


def churn(destination: tuple[str, int], seconds: float, sources: list[str], window: int,
          timeout: float) -> None:
    raise_file_limit()
    poller = select.epoll()
    pending: dict[int, tuple[socket.socket, float, bool]] = {}
    completed = failures = attempted = 0
    started = time.monotonic()
    end = started + seconds
    while time.monotonic() < end or pending:
        while time.monotonic() < end and len(pending) < window:
            try:
                sock = _connect(destination, sources[attempted % len(sources)])
            except OSError:
                failures += 1
                attempted += 1
                continue
            attempted += 1
            pending[sock.fileno()] = (sock, time.monotonic() + timeout, False)
            poller.register(sock.fileno(), select.EPOLLOUT)
        for fd, _ in poller.poll(0.05):
            sock, deadline, connected = pending[fd]
            if not connected:
                if sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
                    failures += 1
                    poller.unregister(fd)
                    del pending[fd]
                    sock.close()
                    continue
                # connected: wait for the server's close, so TIME_WAIT is on its side
                pending[fd] = (sock, deadline, True)
                poller.modify(fd, select.EPOLLIN)
                continue
            poller.unregister(fd)
            del pending[fd]
            sock.close()
            completed += 1
        now = time.monotonic()
        for fd in [fd for fd, (_, deadline, _) in pending.items() if deadline < now]:
            sock, _, _ = pending.pop(fd)
            poller.unregister(fd)
            sock.close()
            failures += 1
    elapsed = time.monotonic() - started
    print(json.dumps({"attempted": attempted, "completed": completed, "failures": failures,
                      "seconds": round(elapsed, 2),
                      "per_second": round(completed / min(elapsed, seconds), 1)}), flush=True)


def main(argv: list[str]) -> int:
    command = argv[0]
    if command == "accept-server":
        accept_server(int(argv[1]), argv[2])
    elif command == "hold":
        hold((argv[1], int(argv[2])), int(argv[3]), argv[4].split(","), int(argv[5]),
             float(argv[6]), int(argv[7]))
    elif command == "churn":
        churn((argv[1], int(argv[2])), float(argv[3]), argv[4].split(","), int(argv[5]),
              float(argv[6]))
    else:
        print(f"unknown command {command}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
