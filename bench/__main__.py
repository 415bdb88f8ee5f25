"""`python -m bench`: the NAT data-path benchmark (needs root; not part of the test suite).

On the namespace topology of the data-path tests (testbed/topology.py), with the real bootstrap
script applied, it measures and prints as a table and as JSON:
 1. TCP throughput private → internet through the NAT, and over a direct routed path; again
    with conntrackd replicating the NAT's connections (keepConnections), and what conntrackd
    uses while the churn of 3 runs;
 2. connections held open at once to ONE destination ip:port through ONE NAT public address,
    from 4 private source addresses (the NAT must remap colliding source ports);
 3. connection churn: new short connections per second through the NAT, and conntrack drops;
 4. 2 and 3 again with the kernel's default tracking table for a 0.5 GiB instance;
 5. the bootstrap script's own run time when nothing needs installing;
 6. several public addresses (bench/addresses.py): connections held at once to ONE ip:port
    through a NAT with 4 addresses, to 97 % of 4 × 64,512 and past it;
 7. high availability (testbed/ha.py): the egress gaps a private host sees when its AZ's NAT
    dies, stops forwarding, comes back and is rolled out, and what a partition does;
 8. connection handover (bench/handover.py, keepConnections): long-lived flows from both AZs
    through a NAT killed, its failback and a rollout: survivors, pauses, the address kept.
It prints each step as it starts (step n of m, on standard error).
Each figure is the median over repetitions, with min and max. The only global setting it
changes, net.netfilter.nf_conntrack_max, is restored on exit.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import addresses, ha, handover, replication
from nat.design.userdata import BOOTSTRAP_SCRIPT_PATH
from testbed.topology import (
    INTERNET_GATEWAY_OUTSIDE,
    INTERNET_HOST,
    NAT_PRIVATE,
    PRIVATE_HOST,
    PRIVATE_TABLE,
    Topology,
    missing_requirements,
    run,
    script_tuning,
)

LOAD = str(Path(__file__).with_name("load.py"))
GLOBAL_CONNTRACK_MAX = "/proc/sys/net/netfilter/nf_conntrack_max"
PRIVATE_SOURCES = [PRIVATE_HOST, "10.0.128.11", "10.0.128.12", "10.0.128.13"]
NAT_GATEWAY_CONNECTIONS = 55_000  # AWS: per unique destination, per public IP
PORT_SPACE = addresses.PORT_SPACE  # MASQUERADE remaps unprivileged ports into 1024-65535
HALF_GIB_KIB = 512 * 1024
HANDOVER_FLOWS = 500  # talking TCP flows per AZ in the handover section (1,000 in all)
SERVER_PROCESSES = 6  # 20,000 sockets per process at most here


def kernel_default_conntrack_max(memory_bytes: int, page_size: int = 4096) -> int:
    """nf_conntrack_max as the kernel sizes it (nf_conntrack_init_start, Linux 5.x/6.x)."""
    pages = memory_bytes // page_size
    buckets = (pages * page_size // 16384) // 8  # 8 = sizeof(struct hlist_head)
    if pages > 4294967296 // page_size:
        buckets = 262144
    elif pages > 1024 * 1024 * 1024 // page_size:
        buckets = 65536
    return max(buckets, 1024)  # max_factor 1 when the size is not set by hand


def summary(values: list[float]) -> dict[str, float]:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2), "n": len(values)}


@contextmanager
def global_conntrack_max(value: int) -> Iterator[None]:
    path = Path(GLOBAL_CONNTRACK_MAX)
    original = path.read_text().strip()
    path.write_text(str(value))
    try:
        yield
    finally:
        path.write_text(original)


def prepare(topology: Topology, tuned: bool, extra_env: dict[str, str] | None = None) -> None:
    """Extra private addresses, roomy port ranges and backlogs, then the bootstrap script."""
    for address in PRIVATE_SOURCES[1:]:
        topology.ns(topology.private, "ip", "addr", "add", f"{address}/20", "dev", "eth0")
    for key, value in (("net.ipv4.ip_local_port_range", "1024 65535"),
                       ("net.ipv4.tcp_tw_reuse", "1")):
        topology.ns(topology.private, "sysctl", "-q", "-w", f"{key}={value}")
    for key in ("net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog"):
        topology.ns(topology.internet, "sysctl", "-q", "-w", f"{key}=65535")
    env = {} if tuned else {"NAT_TCP_ESTABLISHED_TIMEOUT": "432000",
                            "NAT_TCP_TIME_WAIT_TIMEOUT": "120"}
    env.update(extra_env or {})
    result = topology.bootstrap(env=env)
    if result.returncode != 0:
        raise RuntimeError(f"bootstrap failed:\n{result.output}")


def conntrack_drops(topology: Topology) -> int:
    """drop + early_drop + insert_failed in the NAT's namespace, summed over CPUs."""
    lines = topology.ns(topology.nat, "cat", "/proc/net/stat/nf_conntrack").stdout.split("\n")
    header = lines[0].split()
    total = 0
    for line in lines[1:]:
        if not line.strip():
            continue
        fields = dict(zip(header, (int(x, 16) for x in line.split()), strict=True))
        total += fields.get("drop", 0) + fields.get("early_drop", 0) + \
            fields.get("insert_failed", 0)
    return total


def conntrack_count(topology: Topology) -> int:
    return int(topology.ns(topology.nat, "cat",
                           "/proc/sys/net/netfilter/nf_conntrack_count").stdout)


def load(topology: Topology, namespace: str, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, LOAD, *args],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)


def start_servers(topology: Topology, port: int, mode: str,
                  count: int) -> list[subprocess.Popen[str]]:
    servers = [load(topology, topology.internet, "accept-server", str(port), mode)
               for _ in range(count)]
    for server in servers:
        assert server.stdout is not None and "listening" in server.stdout.readline()
    return servers


def stop(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        process.kill()
        process.wait()


def held_connections(topology: Topology, count: int, port: int) -> dict[str, Any]:
    """`count` connections to one ip:port, one client process per private source address."""
    servers = start_servers(topology, port, "hold", SERVER_PROCESSES)
    share = -(-count // len(PRIVATE_SOURCES))
    clients = [load(topology, topology.private, "hold", INTERNET_HOST, str(port), str(share),
                    source, "1000", "3", "250") for source in PRIVATE_SOURCES]
    runs = []
    for client in clients:
        assert client.stdout is not None
        runs.append(json.loads(client.stdout.readline()))
    entries = conntrack_count(topology)  # while every client still holds its connections
    for client in clients:
        client.communicate(timeout=60)
    stop(servers)
    return {"target": share * len(clients),
            "established": sum(r["established"] for r in runs),
            "still_open": sum(r["still_open"] for r in runs),
            "failures": sum(r["failures"] for r in runs),
            "nat_conntrack_entries": entries,
            "seconds": max(r["seconds"] for r in runs),
            "local_errors": [r["local_errors"] for r in runs if r["local_errors"]]}


def churn(topology: Topology, seconds: float, port: int) -> dict[str, Any]:
    servers = start_servers(topology, port, "close", 1)
    before = conntrack_drops(topology)
    client = load(topology, topology.private, "churn", INTERNET_HOST, str(port), str(seconds),
                  ",".join(PRIVATE_SOURCES), "256", "3")
    output, _ = client.communicate(timeout=seconds + 60)
    result: dict[str, Any] = json.loads(output)
    result["conntrack_drops"] = conntrack_drops(topology) - before
    result["nat_conntrack_entries_after"] = conntrack_count(topology)
    stop(servers)
    return result


FORWARDER = "10.0.32.20"


def use_direct_path(topology: Topology, direct: bool) -> None:
    """Private route table: 0.0.0.0/0 → a plain forwarding host, or → the NAT."""
    via, device = (FORWARDER, "to-fwd") if direct else (NAT_PRIVATE, topology.nat_link)
    topology.ns(topology.router, "ip", "route", "replace", "default", "via", via, "dev", device,
                "table", PRIVATE_TABLE)


def open_direct_path(topology: Topology) -> str:
    """A host like the NAT (one interface, same hops) that only forwards: no conntrack, no
    NAT rules; and the internet gateway lets the private host through unmapped."""
    forwarder = topology.namespaces[0].rsplit("-", 1)[0] + "-fwd"
    if forwarder in topology.namespaces:  # opened already (a second throughput run)
        return forwarder
    run(["ip", "netns", "add", forwarder])
    topology.namespaces.append(forwarder)
    run(["ip", "link", "add", "tmpl0", "mtu", "9001", "type", "veth", "peer", "name", "tmpr0",
         "mtu", "9001"])
    run(["ip", "link", "set", "tmpl0", "netns", forwarder, "name", "eth0"])
    run(["ip", "link", "set", "tmpr0", "netns", topology.router, "name", "to-fwd"])
    for namespace, interface, address in ((forwarder, "eth0", f"{FORWARDER}/24"),
                                          (topology.router, "to-fwd", "10.0.32.1/24")):
        topology.ns(namespace, "ip", "addr", "add", address, "dev", interface)
        topology.ns(namespace, "ip", "link", "set", interface, "up")
    topology.ns(forwarder, "ip", "link", "set", "lo", "up")
    topology.ns(forwarder, "ip", "route", "add", "default", "via", "10.0.32.1")
    topology.ns(forwarder, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
    topology.ns(topology.router, "ip", "route", "add", "10.0.32.0/24", "dev", "to-fwd",
                "table", PRIVATE_TABLE)
    for rule in (["-s", PRIVATE_HOST], ["-d", PRIVATE_HOST]):
        topology.ns(topology.igw, "iptables", "-I", "FORWARD", "1", *rule, "-j", "ACCEPT")
    topology.ns(topology.internet, "ip", "route", "add", "10.0.128.0/20", "via",
                INTERNET_GATEWAY_OUTSIDE)
    return forwarder


def throughput(topology: Topology, seconds: int, repetitions: int) -> dict[str, Any]:
    server = subprocess.Popen(["ip", "netns", "exec", topology.internet, "iperf3", "-s",
                               "-p", "5201"], stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    open_direct_path(topology)
    figures: dict[str, list[float]] = {"nat": [], "direct": []}
    try:
        for _ in range(repetitions):
            for path in ("nat", "direct"):
                use_direct_path(topology, path == "direct")
                result = topology.ns(topology.private, "iperf3", "-c", INTERNET_HOST, "-p",
                                     "5201", "-t", str(seconds), "-J", timeout=seconds + 30)
                report = json.loads(result.stdout)
                figures[path].append(report["end"]["sum_received"]["bits_per_second"] / 1e9)
    finally:
        use_direct_path(topology, False)
        server.kill()
        server.wait()
    ratios = [n / d for n, d in zip(figures["nat"], figures["direct"], strict=True)]
    return {"nat_gbps": summary(figures["nat"]), "direct_gbps": summary(figures["direct"]),
            "ratio": summary(ratios)}


def replication_cost(topology: Topology, seconds: int, repetitions: int,
                     churn_seconds: float) -> dict[str, Any]:
    """The forwarding ratio with conntrackd replicating, and what conntrackd uses while the
    churn runs (new connections each second, each one an entry to sync)."""
    with replication.replicating(topology) as daemon:
        measured = throughput(topology, seconds, repetitions)
        cpu, sent, started = daemon.cpu_seconds(), replication.sync_bytes(topology), \
            time.monotonic()
        churned = churn(topology, churn_seconds, 9100)
        elapsed = time.monotonic() - started
        return {"ratio": measured["ratio"], "nat_gbps": measured["nat_gbps"],
                "churn_connections_per_second": churned["per_second"],
                "conntrackd_cpu_percent": round(100 * (daemon.cpu_seconds() - cpu) / elapsed, 1),
                "conntrackd_rss_mib": round(daemon.rss_mib(), 1),
                "sync_kbytes_per_second": round((replication.sync_bytes(topology) - sent) /
                                                elapsed / 1024, 1)}


def script_runtime(topology: Topology, repetitions: int) -> dict[str, float]:
    timings = []
    for _ in range(repetitions):
        result = topology.run_on_nat(
            f"start=$(date +%s%N); /bin/bash {BOOTSTRAP_SCRIPT_PATH} apply >/dev/null 2>&1; "
            "end=$(date +%s%N); echo elapsed_ms=$(( (end - start) / 1000000 ))")
        timings.append(float(result.output.split("elapsed_ms=")[1].split()[0]))
    return summary(timings)


class Progress:
    """What the benchmark is measuring now, step n of m, on standard error as it goes."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.done = 0
        self.started = time.monotonic()

    def __call__(self, what: str) -> None:
        self.done += 1
        elapsed = time.monotonic() - self.started
        print(f"[{self.done}/{self.total}, {elapsed:4.0f} s] {what}", file=sys.stderr,
              flush=True)


SECTIONS = ("data-path", "connections", "addresses", "ha", "handover")
ADDRESSES = 4  # public addresses of the NAT in the "addresses" section


def run_benchmark(quick: bool, sections: tuple[str, ...] = SECTIONS) -> dict[str, Any]:
    repetitions = 3
    seconds = 2 if quick else 5
    churn_seconds = 5 if quick else 30
    parity_target = 20_000 if quick else NAT_GATEWAY_CONNECTIONS
    limit_target = 0 if quick else PORT_SPACE + 2_000
    ha_repetitions = 1 if quick else 3
    tuned = script_tuning(HALF_GIB_KIB)
    default_max = kernel_default_conntrack_max(HALF_GIB_KIB * 1024)
    steps = (3 if "data-path" in sections else 0) + \
        (repetitions * (5 if limit_target else 4) if "connections" in sections else 0) + \
        (ha_repetitions * len(ha.SCENARIOS) + 1 if "ha" in sections else 0) + \
        ((1 if quick else 2) if "addresses" in sections else 0) + \
        (3 * ha_repetitions if "handover" in sections else 0)
    step = Progress(steps)
    results: dict[str, Any] = {
        "machine": {"hostname": platform.node(), "cpus": os.cpu_count(),
                    "kernel": platform.release(), "python": platform.python_version()},
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "mode": "quick" if quick else "full", "sections": list(sections),
        "instance_model": "0.5 GiB (t4g.nano)",
        "conntrack_max": {"tuned": tuned["nf_conntrack_max"], "kernel_default": default_max},
    }
    if "data-path" in sections:
        with Topology(block_pmtud=False) as topology:
            prepare(topology, tuned=True)
            step("bootstrap script run time (5 runs)")
            results["script_runtime_ms"] = script_runtime(topology, 5)
            step(f"TCP throughput, NAT vs plain forwarding ({repetitions} × {seconds} s each)")
            results["throughput"] = throughput(topology, seconds, repetitions)
            step("TCP throughput and churn with conntrackd replicating (keepConnections)")
            results["replication"] = replication_cost(topology, seconds, repetitions,
                                                      churn_seconds)

    for label, table_size, tuned_script in (("tuned", tuned["nf_conntrack_max"], True),
                                            ("kernel_default", default_max, False)):
        if "connections" not in sections:
            break
        with global_conntrack_max(table_size):
            holds, limits, churns = [], [], []
            for index in range(repetitions):
                with Topology(block_pmtud=False) as topology:
                    prepare(topology, tuned=tuned_script)
                    step(f"{label} table: {parity_target:,} connections held to one ip:port "
                         f"({index + 1}/{repetitions})")
                    holds.append(held_connections(topology, parity_target, 9000 + index))
                if limit_target and label == "tuned":
                    with Topology(block_pmtud=False) as topology:
                        prepare(topology, tuned=tuned_script)
                        step(f"tuned table: {limit_target:,} connections, past the port space "
                             f"({index + 1}/{repetitions})")
                        limits.append(held_connections(topology, limit_target, 9200 + index))
                with Topology(block_pmtud=False) as topology:
                    prepare(topology, tuned=tuned_script)
                    step(f"{label} table: connection churn for {churn_seconds} s "
                         f"({index + 1}/{repetitions})")
                    churns.append(churn(topology, churn_seconds, 9100 + index))
        results[f"held_connections_{label}"] = {
            "target": holds[0]["target"], "runs": holds,
            "established": summary([h["established"] for h in holds]),
            "failures": summary([h["failures"] for h in holds]),
        }
        if limits:
            results["held_connections_port_space"] = {
                "target": limits[0]["target"], "port_space": PORT_SPACE, "runs": limits,
                "established": summary([h["established"] for h in limits]),
                "failures": summary([h["failures"] for h in limits]),
            }
        results[f"churn_{label}"] = {
            "seconds": churn_seconds, "runs": churns,
            "connections_per_second": summary([c["per_second"] for c in churns]),
            "failures": summary([c["failures"] for c in churns]),
            "conntrack_drops": summary([c["conntrack_drops"] for c in churns]),
        }
    if "addresses" in sections:
        current = int(Path(GLOBAL_CONNTRACK_MAX).read_text())
        with global_conntrack_max(max(current, addresses.table_needed(ADDRESSES))):
            results["several_addresses"] = addresses.measure(
                ADDRESSES, quick, step, load,
                lambda topology, env: prepare(topology, tuned=True, extra_env=env))
    if "ha" in sections:
        measured = ha.measure(ha_repetitions, step)
        results["high_availability"] = {
            "failback_after_s": measured["failback_after_s"], "runs": measured["runs"],
            **{f"{scenario}.{figure}": summary([run[figure] for run in runs])
               for scenario, runs in measured["runs"].items()
               for figure in runs[0]}}
    if "handover" in sections:
        results["handover"] = handover_summary(
            handover.measure(ha_repetitions, 100 if quick else HANDOVER_FLOWS, step))
    return results


def handover_summary(measured: dict[str, Any]) -> dict[str, Any]:
    """Per event and kind of flow: survivors (%), pauses, the address kept, over the runs."""
    summarized: dict[str, Any] = {key: value for key, value in measured.items()
                                  if key != "runs"}
    events: dict[str, list[dict[str, Any]]] = {}
    for name, runs in measured["runs"].items():
        if name == "new_connections_address_at_once":
            summarized[f"{name}.egress_gap_s"] = summary([one["egress_gap_s"] for one in runs])
            continue
        for measured_run in runs:
            for event, kinds in ((f"rollout.{k}", v) for k, v in measured_run.items()) \
                    if name == "rollout" else ((name, measured_run),):
                events.setdefault(event, []).append(kinds)
    for event, runs in events.items():
        for kind in runs[0]:
            if kind == "new_connections":
                summarized[f"{event}.new_connections.egress_gap_s"] = summary(
                    [one[kind]["egress_gap_s"] for one in runs])
                continue
            for figure in ("survived_pct", "pause_median_s", "pause_max_s"):
                values = [one[kind][figure] for one in runs if one[kind][figure] is not None]
                if values:
                    summarized[f"{event}.{kind}.{figure}"] = summary(values)
            summarized[f"{event}.{kind}.address_unchanged_runs"] = sum(
                bool(one[kind]["address_unchanged"]) for one in runs)
    summarized["runs"] = measured["runs"]
    return summarized


def render_table(results: dict[str, Any]) -> str:
    def figure(data: dict[str, float], unit: str = "", digits: int = 2) -> str:
        return (f"{data['median']:,.{digits}f}{unit} (min {data['min']:,.{digits}f}, "
                f"max {data['max']:,.{digits}f}, n={data['n']:g})")

    machine = results["machine"]
    lines = [f"NAT data-path benchmark, {results['date']} ({results['mode']} run)",
             f"machine: {machine['cpus']} CPUs, kernel {machine['kernel']}, Python "
             f"{machine['python']}; conntrack table: tuned {results['conntrack_max']['tuned']:,}"
             f" vs kernel default {results['conntrack_max']['kernel_default']:,} for "
             f"{results['instance_model']}", ""]
    lines.append(f"{'figure':<52} median (min, max, n)")
    if "throughput" in results:
        t = results["throughput"]
        lines += [f"{'TCP throughput through the NAT (Gbit/s)':<52} {figure(t['nat_gbps'])}",
                  f"{'TCP throughput, direct path without NAT (Gbit/s)':<52} "
                  f"{figure(t['direct_gbps'])}",
                  f"{'ratio NAT / direct (target >= 0.90)':<52} {figure(t['ratio'])}"]
    for label, title in (("tuned", "tuned table"), ("kernel_default", "kernel default table")):
        if f"held_connections_{label}" not in results:
            continue
        held = results[f"held_connections_{label}"]
        churned = results[f"churn_{label}"]
        lines += [
            f"{'held to one ip:port, one public IP, ' + title:<52} "
            f"{figure(held['established'], digits=0)} of {held['target']:,}",
            f"{'  ... failed':<52} {figure(held['failures'], digits=0)}",
            f"{'new connections per second, ' + title:<52} "
            f"{figure(churned['connections_per_second'], digits=0)}",
            f"{'  ... failed connections in ' + str(churned['seconds']) + ' s':<52} "
            f"{figure(churned['failures'], digits=0)}",
            f"{'  ... conntrack drops (table full)':<52} "
            f"{figure(churned['conntrack_drops'], digits=0)}",
        ]
    if "held_connections_port_space" in results:
        limit = results["held_connections_port_space"]
        lines += [f"{'held, pushing past the port space (tuned table)':<52} "
                  f"{figure(limit['established'], digits=0)} of {limit['target']:,} "
                  f"(port space {limit['port_space']:,})",
                  f"{'  ... failed':<52} {figure(limit['failures'], digits=0)}"]
    if "several_addresses" in results:
        several = results["several_addresses"]
        count, capacity = several["addresses"], several["capacity"]
        for key, title in (("held", f"held to one ip:port, {count} public IPs"),
                           ("beyond", f"pushing past {count} × 64,512")):
            if key not in several:
                continue
            run = several[key]
            lines += [f"{title:<52} {run['established']:,} of {run['target']:,} "
                      f"(capacity {capacity:,}; NAT Gateway 8 × 55,000 = 440,000)",
                      f"{'  ... failed / counted by ErrorPortAllocation':<52} "
                      f"{run['failures']:,} / {run['port_allocation_failures']:,}",
                      f"{'  ... seen by the destination, per address':<52} "
                      + ", ".join(f"{n:,}" for n in run["seen_by_destination"].values()),
                      f"{'  ... tracking entries, their kernel memory (MiB)':<52} "
                      f"{run['nat_conntrack_entries']:,}, {run['conntrack_memory_mib']:,}"]
    if "script_runtime_ms" in results:
        lines.append(f"{'bootstrap script run time, nothing to install (ms)':<52} "
                     f"{figure(results['script_runtime_ms'], digits=0)}")
    if "high_availability" in results:
        measured = results["high_availability"]
        for key, title in HA_FIGURES:
            lines.append(f"{title:<52} {figure(measured[key], digits=1)}")
    if "replication" in results:
        cost = results["replication"]
        lines += [f"{'with conntrackd replicating: ratio NAT / direct':<52} "
                  f"{figure(cost['ratio'])}",
                  f"{'  ... churn (connections/s)':<52} "
                  f"{cost['churn_connections_per_second']:,.0f}",
                  f"{'  ... conntrackd CPU (% of one core), memory (MiB)':<52} "
                  f"{cost['conntrackd_cpu_percent']}, {cost['conntrackd_rss_mib']}",
                  f"{'  ... sync traffic (KiB/s)':<52} {cost['sync_kbytes_per_second']}"]
    if "handover" in results:
        measured = results["handover"]
        lines.append(f"handover ({measured['flows_per_az']} talking TCP flows per AZ, a tenth as "
                     f"many server-talking, 4 UDP; address moves after "
                     f"{measured['address_delay_s']:g} s)")
        for key, data in measured.items():
            if isinstance(data, dict) and "median" in data and \
                    (key.endswith("survived_pct") or key.endswith("pause_max_s") or
                     key.endswith("egress_gap_s")):
                lines.append(f"{'  ' + key:<52} {figure(data, digits=1)}")
    return "\n".join(lines) + "\n"


HA_FIGURES = (
    ("dead_nat.failover_gap_s", "HA: egress gap, NAT gone (s, target <= 10)"),
    ("dead_nat.route_moved_after_s", "  ... route moved after (s)"),
    ("dead_nat.failback_gap_s", "HA: egress gap at failback (s, target <= 2)"),
    ("dead_nat.failback_after_boot_s", "  ... failback after the new NAT booted (s)"),
    ("stopped_forwarding.failover_gap_s", "HA: egress gap, forwarding stopped (s)"),
    ("stopped_forwarding.replacement_asked_after_s", "  ... replacement asked after (s)"),
    ("rollout.longest_gap_az_a_s", "HA: rollout, longest gap in AZ a (s)"),
    ("rollout.longest_gap_az_b_s", "HA: rollout, longest gap in AZ b (s)"),
    ("rollout.duration_s", "  ... rollout of both AZs took (s)"),
    ("upstream_cut.failover_gap_s", "HA: egress gap, internet side cut (s, target <= 5)"),
    ("upstream_cut.route_moved_after_s", "  ... route moved after (s)"),
    ("agent_restart_after_2s.route_changes", "HA: agent crash, restarted 2 s later: moves"),
    ("agent_restart_at_once.route_changes", "HA: agent restarted at once: route moves"),
    ("api_cut_short.route_changes", "HA: API answers cut short 20 s: route moves"),
    ("api_cut_short.agent_exits", "  ... agent exits"),
    ("agent_frozen.moved_after_s", "HA: agent frozen: AZ moved after (s, limit 20)"),
    ("agent_frozen.failback_after_resume_s", "  ... back after it resumed (s, hysteresis 5)"),
    ("both_broken.route_changes_while_both_broken", "HA: both NATs broken: route moves"),
    ("both_broken.both_azs_on_b_after_s", "  ... both AZs on the NAT back first after (s)"),
    ("loss_10_percent.moved", "HA: 10 % loss each way: AZ moved (1 yes, 0 no)"),
    ("loss_10_percent.moved_after_s", "  ... after (s; 60: not in the minute)"),
    ("loss_25_percent.moved", "HA: 25 % loss each way: AZ moved (1 yes, 0 no)"),
    ("loss_25_percent.moved_after_s", "  ... after (s; 60: not in the minute)"),
    ("partition.route_changes", "HA: partition 60 s, route changes"),
    ("partition.settled_after_s", "  ... settled after (s, stable within 60)"),
    ("partition.longest_gap_after_settling_s", "  ... longest gap once settled (s)"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="short smoke run: fewer connections, shorter runs")
    parser.add_argument("--only", choices=SECTIONS, action="append",
                        help="measure only this section (repeatable): data-path (throughput, "
                             "script), connections (held, churn), addresses (held to one "
                             "destination through 4 public addresses), ha (failover gaps), "
                             "handover (connections kept across failover, failback, rollout)")
    parser.add_argument("--json", metavar="FILE", type=Path,
                        help="also write the results as JSON to FILE "
                             "(default bench/results/latest.json)")
    args = parser.parse_args(argv)
    missing = missing_requirements()
    if missing:
        print(f"error: the benchmark {missing}", file=sys.stderr)
        return 2
    sections = tuple(args.only or SECTIONS)
    if "data-path" in sections and \
            subprocess.run(["which", "iperf3"], capture_output=True).returncode != 0:
        print("error: the benchmark needs iperf3 (apt-get install iperf3)", file=sys.stderr)
        return 2
    if ("data-path" in sections or "handover" in sections) and \
            subprocess.run(["which", "conntrackd"], capture_output=True).returncode != 0:
        print("error: the benchmark needs conntrackd (apt-get install conntrackd)",
              file=sys.stderr)
        return 2
    results = run_benchmark(args.quick, sections)
    target = args.json or Path(__file__).with_name("results") / "latest.json"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(results, indent=2) + "\n")
    print(render_table(results))
    print(json.dumps(results, indent=2))
    print(f"\nJSON written to {target}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
