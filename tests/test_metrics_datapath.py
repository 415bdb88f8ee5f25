"""The agent's metrics on real counters: NATs in network namespaces (testbed/ha.py), traffic
pushed through them, and "CloudWatch" (moto_server) read back with get_metric_data.

The kernel counts the connections and the bytes; a stand-in `ethtool` prints an ENA
interface's statistics (a recorded output whose allowance counters the test raises). The
agents sample every second and send every three (production: 60 s and 300 s).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from testbed.ha import ECHO_PORT, LAB_METRICS, PROXY_PORT, ZONES, HaLab
from testbed.topology import INTERNET_HOST, PROBE
from tests import needs

pytestmark = pytest.mark.datapath
needs.network_namespaces("metrics data-path tests")

A, B = ZONES["a"].name, ZONES["b"].name
HELD = 40  # connections held open through NAT a
DOWNLOADED = 3_000_000  # bytes fetched through NAT a


@pytest.fixture(scope="module")
def lab() -> Iterator[HaLab]:
    with HaLab(high_availability=False, metrics=LAB_METRICS) as built:
        yield built


def from_private_host(lab: HaLab, letter: str, *arguments: str) -> subprocess.Popen[str]:
    return subprocess.Popen(["ip", "netns", "exec", lab.names[f"priv-{letter}"],
                             sys.executable, PROBE, *arguments], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def settle(seconds: float = 8) -> None:
    """Two samples and a publish, and some."""
    time.sleep(seconds)


def test_tracked_connections_are_counted(lab: HaLab) -> None:
    holder = from_private_host(lab, "a", "hold", INTERNET_HOST, str(ECHO_PORT), str(HELD), "20")
    assert holder.stdout is not None and "listening" in holder.stdout.readline()
    settle()
    peak = max(lab.metric(A, "ActiveConnectionCount", "Maximum"))
    holder.wait(timeout=30)
    # the held flows, and a few of the NAT's own (its calls to the API, in TIME_WAIT)
    assert HELD <= peak <= HELD + 10, peak
    # AZ b's NAT carried none of them
    assert max(lab.metric(B, "ActiveConnectionCount", "Maximum")) < 10


def test_forwarded_bytes_are_counted_each_way(lab: HaLab) -> None:
    settle(4)
    before_in = sum(lab.metric(A, "BytesInFromDestination", "Sum"))
    before_out = sum(lab.metric(A, "BytesOutToDestination", "Sum"))
    download = from_private_host(lab, "a", "download", INTERNET_HOST, str(ECHO_PORT),
                                 str(DOWNLOADED))
    output, _ = download.communicate(timeout=60)
    assert f"ok {DOWNLOADED}" in output
    settle()
    received = sum(lab.metric(A, "BytesInFromDestination", "Sum")) - before_in
    sent = sum(lab.metric(A, "BytesOutToDestination", "Sum")) - before_out
    # the payload, plus IP and TCP headers (about 3 % at the internet MTU)
    assert DOWNLOADED <= received <= DOWNLOADED * 1.06, received
    assert 0 < sent < DOWNLOADED * 0.05, sent  # the request and the ACKs
    # packets as the forwarding rules see them: after receive offload (GRO) merged segments,
    # so fewer than on the wire under bulk TCP (the README says so)
    packets = sum(lab.metric(A, "PacketsInFromDestination", "Sum"))
    assert 0 < packets <= DOWNLOADED / 1000, packets


def test_allowance_drops_are_counted_by_cause_and_summed(lab: HaLab) -> None:
    settle(3)
    before = sum(lab.metric(A, "PacketsDropCount", "Sum"))
    lab.set_ena_counter("a", "bw_out_allowance_exceeded", 1523 + 700)
    lab.set_ena_counter("a", "pps_allowance_exceeded", 41)
    settle()
    assert sum(lab.metric(A, "PacketsDropCount", "Sum")) - before == 700 + 41
    assert sum(lab.metric(A, "PacketsDropBandwidthOut", "Sum")) == 700
    assert sum(lab.metric(A, "PacketsDropPps", "Sum")) == 41
    # published only when they happen: no data at all for the causes that did not
    assert lab.metric(A, "PacketsDropLinkLocal", "Sum") == []
    assert lab.metric(B, "PacketsDropBandwidthOut", "Sum") == []
    # a counter that goes back (a driver reset) counts from zero, never negative
    lab.set_ena_counter("a", "pps_allowance_exceeded", 5)
    settle()
    assert min(lab.metric(A, "PacketsDropCount", "Sum")) >= 0
    assert sum(lab.metric(A, "PacketsDropPps", "Sum")) == 41 + 5


def test_a_cloudwatch_outage_leaves_forwarding_alone_and_is_caught_up(lab: HaLab) -> None:
    nat = lab.nats["a"]
    block = ["OUTPUT", "-p", "tcp", "-d", INTERNET_HOST, "--dport", str(PROXY_PORT), "-j", "DROP"]
    watcher = lab.watch("a", 60)
    time.sleep(1)
    lab.ns(nat.namespace, "iptables", "-I", *block)
    cut = time.time()
    try:
        lab.wait_until(lambda: "cannot publish" in nat.log.read_text(), 30, "publish fails")
        time.sleep(12)
    finally:
        lab.ns(nat.namespace, "iptables", "-D", *block)
    healed = time.time()
    lab.wait_until(lambda: "reachable again" in nat.log.read_text(), 30, "publish resumes")
    seen = HaLab.watched(watcher)
    # egress never noticed
    assert seen.successes() and seen.longest_gap() <= 0.5, seen.longest_gap()
    # the samples taken while CloudWatch was away arrived afterwards
    stamps = lab.client("cloudwatch").get_metric_data(
        StartTime=cut - 1, EndTime=healed, MetricDataQueries=[{
            "Id": "m", "MetricStat": {"Metric": {
                "Namespace": "NatInstance", "MetricName": "ActiveConnectionCount",
                "Dimensions": [{"Name": "NatGroup", "Value": LAB_METRICS.group},
                               {"Name": "AvailabilityZone", "Value": A}]},
                "Period": 60, "Stat": "SampleCount"}}])["MetricDataResults"][0]["Values"]
    assert sum(stamps) >= 5, stamps

