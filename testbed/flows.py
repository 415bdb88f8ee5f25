"""Long-lived flows through the NATs, for the handover tests and benchmark (standalone: no
package imports; runs inside the test namespaces).

    flows.py serve PORT              TCP and UDP on PORT. TCP: each line "N" is answered with
                                     "N <address the server saw>"; the line "stream" makes it
                                     send "N <address>" every 0.2 s unasked (a server talking
                                     to an idle client). UDP: each datagram "N" is answered
                                     the same way.
    flows.py run HOST PORT COUNT SECONDS MODE
                                     COUNT flows for SECONDS (MODE: echo, stream or udp); each
                                     echo or udp flow sends "N" every 0.2 s and checks the
                                     answer. Prints "listening" when all are open, then at the
                                     end one JSON line: per flow its answers' gaps longer than
                                     0.5 s ([start, length], CLOCK_MONOTONIC; a third item
                                     "open" when the run ended in it), whether and when
                                     it was reset or failed a check, and each address the
                                     server saw with when it was first seen.
Every loop is bounded in time.
"""

from __future__ import annotations

import asyncio
import json
import socket
import sys
import time
from typing import Any

INTERVAL = 0.2
GAP = 0.5


def outcome(flow: dict[str, Any], moment: float, lead: float = 12.0, lag: float = 5.0,
            within: float = 30.0) -> tuple[bool, float]:
    """(survived, pause) of one reported flow through an event at `moment` (when its route
    moved): the outage the event caused is the gaps that began from `lead` s before it (a
    planned move shifts the address first, seconds before the route) to `lag` s after (a
    loaded client still reads answers sent before the event); the flow
    survived if it was never reset or failed a check and each of those gaps ended (answers came
    again: not a silence the run ended in) within `within` s of the event. Later gaps belong to
    later events."""
    caused = [gap for gap in flow["gaps"] if moment - lead <= gap[0] <= moment + lag]
    pause = max((gap[1] for gap in caused), default=0.0)
    survived = flow["ended"] is None and all(
        len(gap) == 2 and gap[0] + gap[1] <= moment + within for gap in caused)
    return survived, pause


async def _serve_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    peer = writer.get_extra_info("peername")[0]
    try:
        line = (await reader.readline()).decode().strip()
        if line == "stream":
            number = 0
            while True:
                writer.write(f"{number} {peer}\n".encode())
                await writer.drain()
                number += 1
                await asyncio.sleep(INTERVAL)
        while line:
            writer.write(f"{line} {peer}\n".encode())
            await writer.drain()
            line = (await reader.readline()).decode().strip()
    except (OSError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


class _Echo(asyncio.DatagramProtocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport

    def datagram_received(self, data: bytes, address: tuple[str, int]) -> None:
        self.transport.sendto(data.strip() + f" {address[0]}".encode(),  # type: ignore[attr-defined]
                              address)


async def serve(port: int) -> None:
    server = await asyncio.start_server(_serve_tcp, "0.0.0.0", port, backlog=4096)
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(_Echo, local_addr=("0.0.0.0", port))
    print("listening", flush=True)
    async with server:
        await server.serve_forever()


class Flow:
    def __init__(self) -> None:
        self.last = time.monotonic()
        self.gaps: list[list[float]] = []
        self.ended: float | None = None
        self.why = ""
        self.addresses: dict[str, float] = {}
        self.expected = 0
        self.port = 0  # the private host's end (to find the flow in a NAT's table)

    def heard(self, number: int, address: str) -> None:
        now = time.monotonic()
        if now - self.last > GAP:
            self.gaps.append([round(self.last, 3), round(now - self.last, 3)])
        self.last = now
        self.addresses.setdefault(address, round(now, 3))
        if number < self.expected - 1000:  # not this flow's numbers: something crossed
            self.end("wrong answer")

    def end(self, why: str) -> None:
        if self.ended is None:
            self.ended, self.why = round(time.monotonic(), 3), why

    def report(self, until: float) -> dict[str, Any]:
        # a silence still going on at the end is marked open: it never ended
        gaps = self.gaps + ([[round(self.last, 3), round(until - self.last, 3), "open"]]
                            if until - self.last > GAP else [])
        return {"gaps": gaps, "ended": self.ended, "why": self.why,
                "addresses": self.addresses, "port": self.port}


async def _tcp_flow(host: str, port: int, flow: Flow, mode: str, stop: float,
                    opened: asyncio.Event) -> None:
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), 10)
    except (TimeoutError, OSError) as error:
        flow.end(f"connect: {type(error).__name__}")
        opened.set()
        return
    opened.set()
    flow.port = writer.get_extra_info("sockname")[1]

    async def send() -> None:
        if mode == "stream":
            writer.write(b"stream\n")
            await writer.drain()
            return
        while time.monotonic() < stop and flow.ended is None:
            writer.write(f"{flow.expected}\n".encode())
            flow.expected += 1
            await writer.drain()
            await asyncio.sleep(INTERVAL)

    sender = asyncio.ensure_future(send())
    try:
        while time.monotonic() < stop and flow.ended is None:
            try:
                line = await asyncio.wait_for(reader.readline(), max(0.1, stop -
                                                                       time.monotonic()))
            except TimeoutError:
                break
            if not line:
                flow.end("closed")
                break
            words = line.decode().split()
            flow.heard(int(words[0]), words[1])
    except OSError as error:
        flow.end(type(error).__name__)
    finally:
        sender.cancel()
        writer.close()


class _UdpFlow(asyncio.DatagramProtocol):
    def __init__(self, flow: Flow) -> None:
        self.flow = flow

    def datagram_received(self, data: bytes, address: tuple[str, int]) -> None:
        words = data.decode().split()
        self.flow.heard(int(words[0]), words[1])

    def error_received(self, error: Exception) -> None:
        pass  # an ICMP error during an outage: the flow goes on


async def _udp_flow(host: str, port: int, flow: Flow, stop: float,
                    opened: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _UdpFlow(flow),
                                                       remote_addr=(host, port))
    opened.set()
    try:
        while time.monotonic() < stop:
            transport.sendto(f"{flow.expected}\n".encode())
            flow.expected += 1
            await asyncio.sleep(INTERVAL)
    finally:
        transport.close()


async def run(host: str, port: int, count: int, seconds: float, mode: str) -> None:
    flows = [Flow() for _ in range(count)]
    stop = time.monotonic() + seconds + 120  # the tasks are cancelled at the end
    events = [asyncio.Event() for _ in flows]
    tasks = []
    for index, (flow, opened) in enumerate(zip(flows, events, strict=False)):
        if mode == "udp":
            tasks.append(asyncio.ensure_future(_udp_flow(host, port, flow, stop, opened)))
        else:
            tasks.append(asyncio.ensure_future(_tcp_flow(host, port, flow, mode, stop,
                                                         opened)))
        if index % 100 == 99:
            await asyncio.sleep(0.05)  # no SYN storm
    await asyncio.wait_for(asyncio.gather(*(e.wait() for e in events)), 60)
    await asyncio.sleep(1)
    for flow in flows:
        flow.gaps, flow.last = [], time.monotonic()
    print("listening", flush=True)
    await asyncio.sleep(seconds)
    until = time.monotonic()
    reports = [flow.report(until) for flow in flows]
    for task in tasks:
        task.cancel()
    print(json.dumps({"flows": reports, "until": round(until, 3)}), flush=True)


def main(argv: list[str]) -> int:
    socket.setdefaulttimeout(10)
    if argv[:1] == ["serve"]:
        asyncio.run(serve(int(argv[1])))
    elif argv[:1] == ["run"]:
        asyncio.run(run(argv[1], int(argv[2]), int(argv[3]), float(argv[4]), argv[5]))
    else:
        print(__doc__, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
