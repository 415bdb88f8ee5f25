"""Tiny TCP/UDP endpoints run inside the test namespaces (standalone: no package imports).

    probe.py serve PORT                 TCP: "whoami" → peer address; "upload N" → reads N
                                        bytes, answers "ok N"; "download N" → sends N bytes
    probe.py whoami HOST PORT           prints the address the server saw
    probe.py upload HOST PORT N         sends N bytes, prints the server's answer
    probe.py download HOST PORT N       receives N bytes, prints "ok N"
    probe.py hold HOST PORT COUNT SECONDS
                                        opens COUNT connections, prints "listening" when all
                                        are open, keeps them SECONDS, closes them
    probe.py many HOST PORT SOURCES FIRST COUNT
                                        from each source address of SOURCES (comma-separated),
                                        COUNT connections from ports FIRST.., all at once and
                                        held until each answered "whoami"; prints JSON: how
                                        many the server saw from each address, how many failed
    probe.py raw-tcp HOST PORT FLAGS    sends one TCP segment with FLAGS (e.g. SF: SYN and FIN
                                        together, which no stack sends), from a raw socket
    probe.py udp-listen PORT SECONDS    prints the source of every datagram received
    probe.py udp-send HOST PORT         sends one datagram
    probe.py watch HOST PORT SECONDS    a "whoami" every 0.1 s for SECONDS, each in its own
                                        thread (1 s timeout); prints "<start> ok <seen>" or
                                        "<start> fail" per attempt, <start> on CLOCK_MONOTONIC
Clients exit 1 with a reason on timeout or refusal; a client gives up after $PROBE_TIMEOUT
seconds (default 5) without progress. Every loop is bounded in time.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time

CHUNK = 65536


def _read_line(connection: socket.socket) -> str:
    data = b""
    while not data.endswith(b"\n") and len(data) < 256:
        piece = connection.recv(1)
        if not piece:
            break
        data += piece
    return data.decode().strip()


def _handle(connection: socket.socket, peer: str) -> None:
    with connection:
        connection.settimeout(30)
        words = _read_line(connection).split()
        if words[:1] == ["whoami"]:
            connection.sendall(peer.encode() + b"\n")
        elif words[:1] == ["upload"]:
            remaining = int(words[1])
            while remaining > 0:
                piece = connection.recv(min(CHUNK, remaining))
                if not piece:
                    break
                remaining -= len(piece)
            connection.sendall(f"ok {int(words[1]) - remaining}\n".encode())
        elif words[:1] == ["hold"]:  # until the client closes
            connection.settimeout(None)
            while connection.recv(CHUNK):
                pass
        elif words[:1] == ["download"]:
            remaining = int(words[1])
            block = b"x" * CHUNK
            while remaining > 0:
                connection.sendall(block[:min(CHUNK, remaining)])
                remaining -= min(CHUNK, remaining)


def serve(port: int) -> None:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("0.0.0.0", port))
    server.listen(128)
    print("listening", flush=True)
    while True:
        connection, (peer, _) = server.accept()
        print(f"accepted {peer}", flush=True)
        threading.Thread(target=_handle, args=(connection, peer), daemon=True).start()


def client(host: str, port: int, request: str, expect_bytes: int = 0,
           send_bytes: int = 0) -> str:
    """Each wait for the peer is bounded by $PROBE_TIMEOUT seconds (default 5)."""
    timeout = float(os.environ.get("PROBE_TIMEOUT", "5"))
    with socket.create_connection((host, port), timeout=timeout) as connection:
        connection.settimeout(timeout)
        connection.sendall(request.encode() + b"\n")
        if send_bytes:
            block = b"y" * CHUNK
            remaining = send_bytes
            while remaining > 0:
                connection.sendall(block[:min(CHUNK, remaining)])
                remaining -= min(CHUNK, remaining)
        if expect_bytes:
            received = 0
            while received < expect_bytes:
                piece = connection.recv(CHUNK)
                if not piece:
                    break
                received += len(piece)
            return f"ok {received}"
        return _read_line(connection)


def hold(host: str, port: int, count: int, seconds: float) -> None:
    """`count` established connections at once, for `seconds`."""
    connections = []
    try:
        for _ in range(count):
            connection = socket.create_connection((host, port), timeout=5)
            connection.sendall(b"hold\n")
            connections.append(connection)
        print("listening", flush=True)
        time.sleep(seconds)
    finally:
        for connection in connections:
            connection.close()


def many(host: str, port: int, sources: list[str], first: int, count: int) -> None:
    """Connections from fixed source ports, opened at once (non-blocking); each that connects
    within $PROBE_TIMEOUT asks "whoami"; the rest count as failed."""
    timeout = float(os.environ.get("PROBE_TIMEOUT", "5"))
    pending: list[socket.socket] = []
    failed = 0
    for source in sources:
        for source_port in range(first, first + count):
            connection = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            connection.bind((source, source_port))
            connection.setblocking(False)
            if connection.connect_ex((host, port)) not in (0, 115):  # 115: EINPROGRESS
                failed += 1
                connection.close()
                continue
            pending.append(connection)
    deadline = time.monotonic() + timeout
    connected: list[socket.socket] = []
    while pending and time.monotonic() < deadline:
        still = []
        for connection in pending:
            error = connection.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            try:
                connection.getpeername()
            except OSError:
                if error:
                    failed += 1
                    connection.close()
                else:
                    still.append(connection)
                continue
            connected.append(connection)
        pending = still
        time.sleep(0.05)
    failed += len(pending)
    seen: dict[str, int] = {}
    for connection in connected:
        connection.setblocking(True)
        connection.settimeout(timeout)
        try:
            connection.sendall(b"whoami\n")
            address = _read_line(connection)
        except OSError:
            address = ""
        if address:
            seen[address] = seen.get(address, 0) + 1
        else:
            failed += 1
    print(json.dumps({"seen": seen, "failed": failed}), flush=True)
    for connection in connected + pending:
        connection.close()


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\0"
    total = sum(int.from_bytes(data[i:i + 2], "big") for i in range(0, len(data), 2))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def raw_tcp(host: str, port: int, flags: str) -> None:
    """One TCP segment with the given flags (S, F, R, P, A, U), the kernel adding the IP
    header: for packets connection tracking calls INVALID."""
    import struct
    bits = {"F": 0x01, "S": 0x02, "R": 0x04, "P": 0x08, "A": 0x10, "U": 0x20}
    sender = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
    sender.connect((host, port))  # picks the source address by the route
    source = sender.getsockname()[0]
    header = struct.pack("!HHIIBBHHH", 40000, port, 1000, 0, 5 << 4,
                         sum(bits[f] for f in flags), 65535, 0, 0)
    pseudo = struct.pack("!4s4sBBH", socket.inet_aton(source), socket.inet_aton(host), 0,
                         socket.IPPROTO_TCP, len(header))
    header = header[:16] + struct.pack("!H", _checksum(pseudo + header)) + header[18:]
    sender.send(header)
    sender.close()


def watch(host: str, port: int, seconds: float) -> None:
    """Egress seen from a private host: one attempt every 100 ms, none waiting for another."""
    lock = threading.Lock()

    def attempt(started: float) -> None:
        try:
            with socket.create_connection((host, port), timeout=1) as connection:
                connection.settimeout(1)
                connection.sendall(b"whoami\n")
                seen = _read_line(connection)
            line = f"{started:.3f} ok {seen}" if seen else f"{started:.3f} fail"
        except OSError:
            line = f"{started:.3f} fail"
        with lock:
            print(line, flush=True)

    print("listening", flush=True)  # what Topology.start waits for
    end = time.monotonic() + seconds
    workers = []
    while (now := time.monotonic()) < end:
        worker = threading.Thread(target=attempt, args=(now,), daemon=True)
        worker.start()
        workers.append(worker)
        time.sleep(max(0.0, 0.1 - (time.monotonic() - now)))
    for worker in workers:
        worker.join(timeout=2)


def main(argv: list[str]) -> int:
    command = argv[0]
    try:
        if command == "serve":
            serve(int(argv[1]))
        elif command == "whoami":
            print(client(argv[1], int(argv[2]), "whoami"))
        elif command == "upload":
            size = int(argv[3])
            print(client(argv[1], int(argv[2]), f"upload {size}", send_bytes=size))
        elif command == "download":
            size = int(argv[3])
            print(client(argv[1], int(argv[2]), f"download {size}", expect_bytes=size))
        elif command == "udp-listen":
            listener = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            listener.bind(("0.0.0.0", int(argv[1])))
            deadline = time.monotonic() + float(argv[2])
            print("listening", flush=True)
            while (left := deadline - time.monotonic()) > 0:
                listener.settimeout(left)
                try:
                    _, (source, _) = listener.recvfrom(2048)
                except TimeoutError:
                    break
                print(f"from {source}", flush=True)
        elif command == "watch":
            watch(argv[1], int(argv[2]), float(argv[3]))
        elif command == "raw-tcp":
            raw_tcp(argv[1], int(argv[2]), argv[3])
        elif command == "hold":
            hold(argv[1], int(argv[2]), int(argv[3]), float(argv[4]))
        elif command == "many":
            many(argv[1], int(argv[2]), argv[3].split(","), int(argv[4]), int(argv[5]))
        elif command == "udp-send":
            sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sender.sendto(b"hello", (argv[1], int(argv[2])))
        else:
            print(f"unknown command {command}", file=sys.stderr)
            return 2
    except OSError as error:
        print(f"failed: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
