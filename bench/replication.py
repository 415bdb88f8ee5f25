"""What connection-state replication (keepConnections: conntrackd) costs the NAT, on the
one-NAT topology: conntrackd runs on the NAT as the agent configures it, syncing to a peer
daemon (on the VPC router's side of the NAT's link, standing in for the other NAT), while the
data-path benchmark's throughput and churn run. Measured: the forwarding ratio with
replication on, and conntrackd's CPU time, memory and sync traffic per second of churn."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from nat.instance import agent
from testbed.topology import NAT_PRIVATE, PUBLIC_GATEWAY, Topology

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Daemon:
    process: subprocess.Popen[bytes]

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime + stime

    def rss_mib(self) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0


def _start(topology: Topology, namespace: str, local: str, peer: str, interface: str,
           name: str) -> Daemon:
    text = agent.conntrackd_config(local, peer, agent.SYNC_PORT, interface, name).replace(
        agent.STATE_DIR, str(topology.scratch))
    config = topology.scratch / f"{name}.conf"
    config.write_text(text)
    (topology.scratch / f"{name}.lock").unlink(missing_ok=True)  # left by a killed one
    process = subprocess.Popen(["ip", "netns", "exec", namespace, "conntrackd", "-C",
                                str(config)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    if process.poll() is not None:
        raise RuntimeError(f"conntrackd did not start in {namespace}: "
                           f"{(topology.scratch / f'{name}.log').read_text()[-500:]}")
    return Daemon(process)


def sync_bytes(topology: Topology) -> int:
    """Bytes the NAT sent to the sync port (an nftables counter)."""
    listed = topology.ns(topology.nat, "nft", "list", "table", "ip", "bench_sync").stdout
    return int(listed.split("bytes")[1].split()[0])


@contextmanager
def replicating(topology: Topology) -> Iterator[Daemon]:
    """conntrackd on the NAT (as the agent writes its configuration), its peer on the router."""
    topology.ns(topology.nat, "nft", "add", "table", "ip", "bench_sync")
    topology.ns(topology.nat, "nft", "add", "chain", "ip", "bench_sync", "out",
                "{ type filter hook output priority 0; }")
    topology.ns(topology.nat, "nft", "add", "rule", "ip", "bench_sync", "out", "udp", "dport",
                str(agent.SYNC_PORT), "counter")
    peer = _start(topology, topology.router, PUBLIC_GATEWAY, NAT_PRIVATE, topology.nat_link,
                  "bench-peer")
    nat = _start(topology, topology.nat, NAT_PRIVATE, PUBLIC_GATEWAY, topology.nat_interface,
                 "bench-nat")
    try:
        yield nat
    finally:
        for daemon in (nat, peer):
            daemon.process.kill()
            daemon.process.wait()
        topology.ns(topology.nat, "nft", "delete", "table", "ip", "bench_sync", check=False)
