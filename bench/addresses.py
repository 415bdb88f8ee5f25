"""Several public addresses per NAT: connections held at once to ONE destination ip:port.

With N addresses (instance.publicAddresses) a destination ip:port takes about N × 64,512
connections through one NAT. The bench holds N × 64,512 × 0.97 (the target), then pushes past
N × 64,512: it counts what the destination saw from each public address, the NAT's tracking
entries and the kernel memory they take (the nf_conntrack slab), and the failures the NAT
counted (conntrack insert_failed: the agent's ErrorPortAllocation).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nat.instance import agent
from testbed.topology import INTERNET_HOST, Topology

PORT_SPACE = 65535 - 1024 + 1
SOURCES = [f"10.0.128.{host}" for host in range(10, 18)]  # 8 × 64,512 source ports
PROCESSES = 18  # each holds at most RLIMIT_NOFILE (20,000 here) sockets


def conntrack_slab_bytes() -> int:
    """Kernel memory of tracking entries (all namespaces): nf_conntrack slab objects."""
    for line in Path("/proc/slabinfo").read_text().splitlines():
        words = line.split()
        if words and words[0] == "nf_conntrack":
            return int(words[1]) * int(words[3])  # active objects × object size
    return 0


def port_allocation_failures(topology: Topology) -> int:
    text = topology.ns(topology.nat, "cat", agent.CONNTRACK_STAT).stdout
    return agent.parse_conntrack_stat(text).get("port_allocation", 0)


def seen_by_destination(topology: Topology, port: int) -> dict[str, int]:
    """Established connections at the destination, by the public address they came from."""
    listing = topology.ns(topology.internet, "ss", "-Htn", "state", "established",
                          f"( sport = :{port} )", timeout=120).stdout
    seen: dict[str, int] = {}
    for line in listing.splitlines():
        peer = line.split()[-1].rsplit(":", 1)[0]
        seen[peer] = seen.get(peer, 0) + 1
    return dict(sorted(seen.items()))


def hold(addresses: int, count: int, port: int,
         launch: Callable[..., subprocess.Popen[str]],
         prepare: Callable[[Topology, dict[str, str]], None]) -> dict[str, Any]:
    """`count` connections to INTERNET_HOST:port from the private host's 8 addresses."""
    with Topology(block_pmtud=False, public_addresses=addresses) as topology:
        prepare(topology, {"NAT_PUBLIC_ADDRESSES": str(addresses), "NAT_ADDRESS_WAIT": "2"})
        present = topology.ns(topology.private, "ip", "-4", "-o", "addr", "show").stdout
        for source in SOURCES:
            if f" {source}/" not in present:
                topology.ns(topology.private, "ip", "addr", "add", f"{source}/20", "dev",
                            "eth0")
        servers = [launch(topology, topology.internet, "accept-server", str(port), "hold")
                   for _ in range(PROCESSES)]
        for server in servers:
            assert server.stdout is not None and "listening" in server.stdout.readline()
        slab_before = conntrack_slab_bytes()
        failures_before = port_allocation_failures(topology)
        share = -(-count // PROCESSES)
        clients = [launch(topology, topology.private, "hold", INTERNET_HOST, str(port),
                          # 10 s: the client's own SYN retries (at 1, 3 and 7 s) get their
                          # chance, as a real client's do; failures never stop the run
                          str(share), SOURCES[index % len(SOURCES)], "500", "10",
                          str(count))
                   for index in range(PROCESSES)]
        runs = []
        for client in clients:
            assert client.stdout is not None
            runs.append(json.loads(client.stdout.readline()))
        held = {
            "target": share * PROCESSES,
            "established": sum(r["established"] for r in runs),
            "failures": sum(r["failures"] for r in runs),
            "seconds": max(r["seconds"] for r in runs),
            "seen_by_destination": seen_by_destination(topology, port),
            "nat_conntrack_entries": int(topology.ns(
                topology.nat, "cat", "/proc/sys/net/netfilter/nf_conntrack_count").stdout),
            "conntrack_memory_mib": round((conntrack_slab_bytes() - slab_before) / 2**20, 1),
            "port_allocation_failures": port_allocation_failures(topology) - failures_before,
            "local_errors": [r["local_errors"] for r in runs if r["local_errors"]]}
        for process in clients:
            process.communicate(timeout=120)
        for process in servers:
            process.kill()
            process.wait()
    return held


def beyond_capacity(addresses: int) -> int:
    """How many the second run asks: 4,000 past what the addresses' ports allow."""
    return addresses * PORT_SPACE + 4_000


def table_needed(addresses: int) -> int:
    """The global tracking-table size the runs get (its size bounds every namespace's):
    twice what the second run asks, for room to spare."""
    return 2 * beyond_capacity(addresses)


def measure(addresses: int, quick: bool, step: Callable[[str], None],
            launch: Callable[..., subprocess.Popen[str]],
            prepare: Callable[[Topology, dict[str, str]], None]) -> dict[str, Any]:
    """Both runs; the caller gives the global table `table_needed` entries meanwhile."""
    capacity = addresses * PORT_SPACE
    target = int(capacity * 0.97) if not quick else 20_000
    beyond = beyond_capacity(addresses)
    step(f"{addresses} public addresses: {target:,} connections held to one ip:port")
    results: dict[str, Any] = {"addresses": addresses, "capacity": capacity,
                               "held": hold(addresses, target, 9300, launch, prepare)}
    if not quick:
        step(f"{addresses} public addresses: {beyond:,} connections, past "
             f"{addresses} × {PORT_SPACE:,}")
        results["beyond"] = hold(addresses, beyond, 9301, launch, prepare)
    return results
