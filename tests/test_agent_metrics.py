"""The agent's metrics, in-process: parsing the NAT's counters, the data points each sample
makes, the PutMetricData request, and a collector that keeps working (and stays small) while
CloudWatch fails. The collector on real counters, in namespaces, is tests/test_metrics_datapath.py.
"""

from __future__ import annotations

import subprocess
import sys
import tracemalloc
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from nat.design.userdata import agent_script
from nat.instance.agent import (
    DROP_CAUSES,
    METRIC_UNITS,
    AwsError,
    Collector,
    MetricsSettings,
    Settings,
    Tally,
    counter_deltas,
    datums,
    parse_conntrack_stat,
    parse_ethtool,
    parse_forward_counters,
    put_metric_data_params,
)

ENA_SAMPLE = Path(__file__).parents[1] / "testbed" / "ena-ethtool-S.txt"
DATA = Path(__file__).with_name("data")
STAMP = "2026-11-27T05:00:00Z"

# the kernel's own layout (6.x: a header, then one hexadecimal row per CPU)
CONNTRACK_STAT = (DATA / "nf_conntrack-stat.txt").read_text()

# `iptables -nvxL NAT_FORWARD` after nat-bootstrap.sh apply (iptables 1.8, nf_tables), and
# one rule of a second VPC CIDR as iptables-legacy prints it
FORWARD = (DATA / "iptables-nvxL-NAT_FORWARD.txt").read_text()


def test_ena_allowance_counters_are_read_by_name() -> None:
    found = parse_ethtool(ENA_SAMPLE.read_text())
    assert found == {"bw_in_allowance_exceeded": 0, "bw_out_allowance_exceeded": 1523,
                     "pps_allowance_exceeded": 0, "conntrack_allowance_exceeded": 0,
                     "linklocal_allowance_exceeded": 0}
    # an order other than the driver's (the upstream kernel's), other counters around
    assert parse_ethtool("NIC statistics:\n     pps_allowance_exceeded: 9\n"
                         "     rx_drops: 4\n") == {"pps_allowance_exceeded": 9}
    assert parse_ethtool("no stats available\n") == {}


def test_table_full_drops_and_port_allocation_failures_are_columns_summed_over_cpus() -> None:
    # a failed insert counts as a drop too: table_full is what remains
    assert parse_conntrack_stat(CONNTRACK_STAT) == {"table_full": 0x0A + 0x05 - 0x07 - 0x02,
                                                    "port_allocation": 0x07 + 0x02}
    assert parse_conntrack_stat("entries searched found\n00000001 00000002 00000003\n") == {}
    assert parse_conntrack_stat("entries drop\n00000001 00000010\n") == {"table_full": 16}


def test_port_allocation_failures_are_published_in_minutes_they_happen() -> None:
    points = datums({"port_allocation": 12, "table_full": 0}, 5, detailed=False, failovers=0,
                    timestamp=STAMP)
    assert {"MetricName": "ErrorPortAllocation", "Value": 12, "Unit": "Count",
            "Timestamp": STAMP} in points
    quiet = datums({"port_allocation": 0}, 5, detailed=False, failovers=0, timestamp=STAMP)
    assert "ErrorPortAllocation" not in {p["MetricName"] for p in quiet}
    # not a packet drop of PacketsDropCount's causes: its own alarm says what to do
    assert points[0] == {"MetricName": "PacketsDropCount", "Value": 0, "Unit": "Count",
                         "Timestamp": STAMP}


def test_forwarded_traffic_by_direction() -> None:
    assert parse_forward_counters(FORWARD) == {
        "packets_out": 1200 + 50 + 9, "bytes_out": 100000 + 3000 + 540,
        "packets_in": 3000, "bytes_in": 4000000}


def test_deltas_count_a_reset_from_zero() -> None:
    assert counter_deltas({"a": 10, "b": 100}, {"a": 15, "b": 30, "c": 7}) == {"a": 5, "b": 30}


def test_a_basic_sample_is_drops_summed_and_connections() -> None:
    deltas = {"bw_out_allowance_exceeded": 3, "pps_allowance_exceeded": 2, "table_full": 1,
              "bytes_out": 999}
    points = datums(deltas, 42, detailed=False, failovers=0, timestamp=STAMP)
    assert points == [
        {"MetricName": "PacketsDropCount", "Value": 6, "Unit": "Count", "Timestamp": STAMP},
        {"MetricName": "ActiveConnectionCount", "Value": 42, "Unit": "Count",
         "Timestamp": STAMP}]
    # nothing dropped is a data point too: the "NAT silent" alarm lives on them
    assert [p["Value"] for p in datums({}, 0, False, 0, STAMP)] == [0, 0]


def test_a_detailed_sample_adds_traffic_and_only_the_causes_that_dropped() -> None:
    deltas = {"bw_out_allowance_exceeded": 3, "pps_allowance_exceeded": 0, "bytes_out": 10,
              "bytes_in": 20, "packets_out": 1, "packets_in": 2}
    points = {p["MetricName"]: p["Value"] for p in datums(deltas, 5, True, 2, STAMP)}
    assert points == {"PacketsDropCount": 3, "ActiveConnectionCount": 5,
                      "BytesOutToDestination": 10, "BytesInFromDestination": 20,
                      "PacketsOutToDestination": 1, "PacketsInFromDestination": 2,
                      "PacketsDropBandwidthOut": 3, "FailoverCount": 2}


def test_every_metric_has_a_unit_and_every_cause_a_metric() -> None:
    assert set(DROP_CAUSES.values()) <= set(METRIC_UNITS)
    assert all(unit in ("Count", "Bytes") for unit in METRIC_UNITS.values())


def test_put_metric_data_request() -> None:
    params = put_metric_data_params("NatInstance", {"NatGroup": "p/s/nat",
                                                    "AvailabilityZone": "us-east-1a"},
                                    datums({}, 3, False, 0, STAMP))
    assert params["Namespace"] == "NatInstance"
    assert params["MetricData.member.2.MetricName"] == "ActiveConnectionCount"
    assert params["MetricData.member.2.Value"] == "3.0"
    assert params["MetricData.member.2.Timestamp"] == STAMP
    assert params["MetricData.member.1.Dimensions.member.1.Value"] == "p/s/nat"
    assert params["MetricData.member.1.Dimensions.member.2.Name"] == "AvailabilityZone"
    assert "MetricData.member.3.MetricName" not in params


class FakeNat:
    """Counters that grow by a fixed step per reading."""

    def __init__(self) -> None:
        self.readings = 0

    def read(self) -> tuple[dict[str, int], int | None]:
        self.readings += 1
        return {"bw_in_allowance_exceeded": self.readings, "table_full": 0}, 10


class FlakyCloudWatch:
    def __init__(self) -> None:
        self.error: Callable[[], Exception] | None = None
        self.requests: list[dict[str, str]] = []

    def put(self, params: dict[str, str]) -> None:
        if self.error is not None:
            raise self.error()  # a new one each time, as a failing call makes
        self.requests.append(params)

    def points(self) -> int:
        return sum(sum(1 for k in r if k.endswith(".MetricName")) for r in self.requests)


def collector(keep: int = 5, detailed: bool = False) -> tuple[Collector, FlakyCloudWatch]:
    cloudwatch = FlakyCloudWatch()
    settings = MetricsSettings("NatInstance", "p/s/nat", detailed=detailed, keep=keep,
                               publish_every=300)
    return Collector(settings, "us-east-1a", FakeNat().read, cloudwatch.put, Tally()), \
        cloudwatch


def test_the_first_reading_is_a_baseline_then_one_sample_each() -> None:
    c, cloudwatch = collector()
    for minute in range(4):
        c.sample(1_800_000_000 + 60 * minute)
    c.publish(0)
    assert len(cloudwatch.requests) == 1 and cloudwatch.points() == 3 * 2
    assert cloudwatch.requests[0]["MetricData.member.1.Value"] == "1.0"  # one drop a minute
    assert not c.queue


@pytest.mark.parametrize("error", [lambda: AwsError("ServiceUnavailable", "down"),
                                   lambda: AwsError("503", "busy"),
                                   lambda: urllib.error.URLError("connection refused"),
                                   # what Aws.call makes of a failed call: kept, not dropped
                                   lambda: AwsError("RequestFailed", "PutMetricData: timed out"),
                                   lambda: OSError("network unreachable")])
def test_an_outage_keeps_the_newest_samples_and_memory_flat(
        error: Callable[[], Exception]) -> None:
    c, cloudwatch = collector(keep=5)
    cloudwatch.error = error
    tracemalloc.start()
    try:
        for minute in range(200):
            c.sample(1_800_000_000 + 60 * minute)
            c.publish(minute)
        early, _ = tracemalloc.get_traced_memory()
        for minute in range(200, 5000):
            c.sample(1_800_000_000 + 60 * minute)
            c.publish(minute)
        late, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(c.queue) == 5 and c.dropped == 199 + 4800 - 5
    assert late - early < 20_000, (early, late)
    cloudwatch.error = None  # back: what was kept goes out, the newest
    c.publish(5000)
    assert cloudwatch.points() == 5 * 2 and not c.queue
    stamps = sorted({v for r in cloudwatch.requests for k, v in r.items()
                     if k.endswith(".Timestamp")})
    assert stamps == [f"2027-01-18T19:{minute}:00Z" for minute in range(15, 20)]  # newest


def test_a_refused_request_is_dropped_not_retried_forever() -> None:
    c, cloudwatch = collector()
    c.sample(1_800_000_000)
    c.sample(1_800_000_060)
    cloudwatch.error = lambda: AwsError("InvalidParameterValue", "bad")
    c.publish(0)
    assert not c.queue and c.dropped == 1
    cloudwatch.error = None
    c.publish(1)
    assert cloudwatch.requests == []


def test_a_long_backlog_goes_in_requests_cloudwatch_accepts() -> None:
    c, cloudwatch = collector(keep=600, detailed=True)
    for minute in range(601):
        c.sample(1_800_000_000 + 60 * minute)
    c.publish(0)
    assert not c.queue and len(cloudwatch.requests) > 1
    assert all(sum(1 for k in r if k.endswith(".MetricName")) <= 1000
               for r in cloudwatch.requests)
    assert cloudwatch.points() == 600 * 3  # drops, connections, the bw_in cause


def test_failovers_are_counted_once() -> None:
    c, cloudwatch = collector()
    c.failovers.add()
    c.failovers.add()
    c.sample(1_800_000_000)  # baseline: the count waits for the first sample
    c.sample(1_800_000_060)
    c.sample(1_800_000_120)
    c.publish(0)
    failovers = [v for r in cloudwatch.requests for k, v in r.items()
                 if v == "FailoverCount"]
    assert len(failovers) == 1


def test_settings_without_high_availability_are_metrics_only() -> None:
    raw: dict[str, Any] = {"region": "us-east-1",  # agent.json, as the agent loads it
                           "metrics": {"namespace": "NatInstance", "group": "p/s/nat",
                                       "detailed": False, "publish_every": 300.0}}
    settings = Settings.from_document(raw)
    assert not settings.high_availability
    assert isinstance(settings.metrics, MetricsSettings)


@pytest.mark.parametrize("shipped", [False, True], ids=["source", "as-user-data-carries-it"])
def test_the_agent_runs_on_python_3_9(shipped: bool, tmp_path: Path) -> None:
    """Amazon Linux 2023's python3 is 3.9: no newer syntax or library calls, in the source
    and in the minified text user data carries."""
    agent = Path(__file__).parents[1] / "nat" / "instance" / "agent.py"
    if shipped:
        agent = tmp_path / "nat-agent.py"
        agent.write_text(agent_script())
        compile(agent.read_text(), str(agent), "exec")
    vermin = Path(sys.executable).with_name("vermin")
    result = subprocess.run([str(vermin), "--target=3.9-", "--violations",
                             "--no-tips", "--eval-annotations", str(agent)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr

