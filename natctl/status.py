"""`natctl status`: per AZ, how close each NAT is to its limits, in words.

Reads the stack's outputs (what `pulumi stack output --json` prints), then CloudWatch: the
NATs' own metrics (drops, tracked connections), EC2's free per-instance metrics (network
bytes, CPU credits) and the stack's alarms. Read-only: GetMetricData, DescribeAlarms,
DescribeAutoScalingGroups.

The judgement (`assess`) is pure: the same figures give the same words.
"""

from __future__ import annotations

import datetime
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from nat.design.monitoring import DETAILED_WHEN_NONZERO, METRICS, TABLE_ALARM_SHARE, dimensions
from nat.inputs.instance_types import is_burstable
from nat.outputs import MonitoringOutputs
from natctl.cost import load_prices
from natctl.outputs import InputError, StackOutputs
from natctl.verify import nat_instance_ids

DROP_CAUSES = tuple(m.name for m in METRICS if m.published == DETAILED_WHEN_NONZERO)
BANDWIDTH_PERIOD = 300  # EC2's basic monitoring: 5-minute sums
NEAR = 0.8  # a limit 80 % used is named before it is hit


@dataclass
class ZoneFigures:
    """What CloudWatch holds for one AZ's NAT (None: no data)."""

    zone: str
    instances: list[str]
    table_size: int
    drops: float | None = None  # over the window
    drops_by_cause: dict[str, float] = field(default_factory=dict)
    port_allocation_failures: float | None = None  # ErrorPortAllocation over the window
    replication_errors: float | None = None  # ReplicationErrors (keepConnections)
    public_addresses: int = 1
    connections_peak: float | None = None  # last hour
    connections_last: float | None = None
    last_data_age_minutes: float | None = None  # None: never
    network_peak_bytes: float | None = None  # the busier direction, in a 5-minute sum
    credit_balance: float | None = None
    credits_borrowed: float | None = None
    alarms_firing: list[str] = field(default_factory=list)


@dataclass
class ZoneStatus:
    zone: str
    ok: bool
    summary: str
    limits: list[str]
    figures: dict[str, Any]


def monitoring_outputs(stack: StackOutputs, source: str) -> MonitoringOutputs:
    """The outputs status needs, checked; InputError naming what is wrong."""
    monitoring = stack.monitoring
    if monitoring is None:
        raise InputError(f"{source} has no `monitoring` output: the stack was deployed by a "
                         "version without metrics. Fix: `pulumi up` with this version first")
    if not monitoring.namespace:
        raise InputError(f"{source}: monitoring is off in this stack, so its NATs publish "
                         "nothing. Fix: `pulumi config set monitoring true` and `pulumi up`")
    if not stack.connection_table_sizes:
        raise InputError(f"{source}: connection_table_sizes must map each NAT's AZ to its "
                         "table size. Fix: pass `pulumi stack output --json` of this project")
    for key in ("group", "instance_type"):
        if not getattr(monitoring, key):
            raise InputError(f"{source}: monitoring.{key} is missing. Fix: pass `pulumi stack "
                             "output --json` of this project")
    return monitoring


def gather(session: Any, stack: StackOutputs, now: datetime.datetime,
           hours: float) -> list[ZoneFigures]:
    """One GetMetricData call for every figure of every AZ, and the alarms' states."""
    monitoring = monitoring_outputs(stack, "the stack outputs")
    sizes = stack.connection_table_sizes
    zones = sorted(sizes)
    current = nat_instance_ids(session, stack)[0]
    instances = {zone: current.get(zone, []) for zone in zones}
    namespace, group = monitoring.namespace, monitoring.group
    burstable = is_burstable(monitoring.instance_type)
    queries: list[dict[str, Any]] = []
    meaning: dict[str, tuple[str, str, str]] = {}  # query id → (zone, figure, how)

    def ask(zone: str, figure: str, how: str, metric: dict[str, Any], stat: str,
            period: int) -> None:
        query_id = f"q{len(queries)}"
        meaning[query_id] = (zone, figure, how)
        queries.append({"Id": query_id, "MetricStat": {"Metric": metric, "Period": period,
                                                       "Stat": stat}})

    def ours(name: str, zone: str) -> dict[str, Any]:
        return {"Namespace": namespace, "MetricName": name, "Dimensions": [
            {"Name": k, "Value": v} for k, v in dimensions(group, zone).items()]}

    def ec2(name: str, instance: str) -> dict[str, Any]:
        return {"Namespace": "AWS/EC2", "MetricName": name,
                "Dimensions": [{"Name": "InstanceId", "Value": instance}]}

    for zone in zones:
        ask(zone, "drops", "sum", ours("PacketsDropCount", zone), "Sum", 3600)
        ask(zone, "ports", "sum", ours("ErrorPortAllocation", zone), "Sum", 3600)
        if stack.keep_connections:
            ask(zone, "replication", "sum", ours("ReplicationErrors", zone), "Sum", 3600)
        if monitoring.detailed_metrics:
            for cause in DROP_CAUSES:
                ask(zone, f"cause:{cause}", "sum", ours(cause, zone), "Sum", 3600)
        ask(zone, "connections", "recent", ours("ActiveConnectionCount", zone), "Maximum", 60)
        for instance in instances[zone]:
            for name in ("NetworkIn", "NetworkOut"):
                ask(zone, "network", "peak", ec2(name, instance), "Sum", BANDWIDTH_PERIOD)
            if burstable:
                ask(zone, "credit_balance", "last", ec2("CPUCreditBalance", instance),
                    "Minimum", 300)
                ask(zone, "credits_borrowed", "last", ec2("CPUSurplusCreditBalance", instance),
                    "Maximum", 300)
    cloudwatch = session.client("cloudwatch")
    start = now - datetime.timedelta(hours=max(hours, 1))
    series: dict[str, tuple[list[datetime.datetime], list[float]]] = {}
    for first in range(0, len(queries), 500):  # GetMetricData takes 500 queries a call
        pages = cloudwatch.get_paginator("get_metric_data").paginate(
            MetricDataQueries=queries[first:first + 500], StartTime=start, EndTime=now,
            ScanBy="TimestampDescending")
        for page in pages:
            for result in page["MetricDataResults"]:
                stamps, values = series.setdefault(result["Id"], ([], []))
                stamps += result["Timestamps"]
                values += [float(v) for v in result["Values"]]

    figures = {zone: ZoneFigures(zone, instances[zone], sizes[zone],
                                 public_addresses=len(stack.nat_public_ip_lists.get(zone, [])) or 1)
               for zone in zones}
    hour_ago = now - datetime.timedelta(hours=1)
    for query_id, (zone, figure, _) in meaning.items():
        stamps, values = series.get(query_id, ([], []))
        pairs = sorted(zip(stamps, values, strict=True), key=lambda pair: pair[0])
        target = figures[zone]
        if not pairs:
            continue
        if figure == "drops":
            target.drops = sum(v for _, v in pairs)
        elif figure == "ports":
            target.port_allocation_failures = sum(v for _, v in pairs)
        elif figure == "replication":
            target.replication_errors = sum(v for _, v in pairs)
        elif figure.startswith("cause:"):
            target.drops_by_cause[figure[6:]] = sum(v for _, v in pairs)
        elif figure == "connections":
            recent = [v for t, v in pairs if t >= hour_ago]
            target.connections_peak = max(recent) if recent else None
            target.connections_last = pairs[-1][1]
            target.last_data_age_minutes = (now - pairs[-1][0]).total_seconds() / 60
        elif figure == "network":
            recent = [v for t, v in pairs if t >= hour_ago]
            if recent:
                target.network_peak_bytes = max(target.network_peak_bytes or 0.0,
                                                max(recent))
        elif figure == "credit_balance":
            target.credit_balance = pairs[-1][1]
        elif figure == "credits_borrowed":
            target.credits_borrowed = pairs[-1][1]
    alarm_names = [name for zone in zones
                   for name in monitoring.alarm_names.get(zone, [])]
    if alarm_names:
        firing = cloudwatch.describe_alarms(AlarmNames=alarm_names, StateValue="ALARM")
        for alarm in firing["MetricAlarms"]:
            for owner in zones:
                if alarm["AlarmName"] in monitoring.alarm_names.get(owner, []):
                    figures[owner].alarms_firing.append(alarm["AlarmName"])
    return [figures[zone] for zone in zones]


def _count(value: float) -> str:
    return f"{value:,.0f}"


def assess(figures: ZoneFigures, baseline_gbps: float | None, burstable: bool,
           detailed: bool, hours: float, silent_after_minutes: float) -> ZoneStatus:
    """The words for one AZ: what it uses of each limit, and which it hits."""
    limits: list[str] = []
    parts: list[str] = []
    window = f"{hours:g} h"
    if figures.last_data_age_minutes is None:
        limits.append("silent: no metrics from this NAT at all (is its agent running? it "
                      "logs to the console and `journalctl -u nat-agent`)")
    elif figures.last_data_age_minutes > silent_after_minutes:
        limits.append(f"silent: no metrics for {figures.last_data_age_minutes:.0f} minutes "
                      "(the instance or its agent is down, or cannot reach CloudWatch)")

    if figures.network_peak_bytes is None or baseline_gbps is None:
        parts.append("bandwidth unknown" + (" (no EC2 network data yet)"
                                            if baseline_gbps is not None else
                                            " (instance type not in the price table)"))
    else:
        bits_per_second = figures.network_peak_bytes * 8 / BANDWIDTH_PERIOD
        share = bits_per_second / (baseline_gbps * 1e9)
        parts.append(f"{share:.0%} of baseline bandwidth (busiest 5 minutes of the last "
                     f"hour: {bits_per_second / 1e6:,.1f} of {baseline_gbps * 1000:,.0f} "
                     "Mbit/s)")
        if share >= 1:
            limits.append("over its baseline bandwidth: it is spending its burst allowance, "
                          "and drops come when that runs out")
        elif share >= NEAR:
            limits.append(f"near its baseline bandwidth ({share:.0%})")

    drops = figures.drops or 0.0
    parts.append(f"{_count(drops)} drops in {window}")
    if drops > 0:
        causes = {name.removeprefix("PacketsDrop"): value
                  for name, value in figures.drops_by_cause.items() if value}
        why = (", ".join(f"{name} {_count(value)}" for name, value in
                         sorted(causes.items(), key=lambda item: -item[1])) if causes else
               "turn on detailedMetrics to see which limit" if not detailed else "cause unknown")
        limits.append(f"dropped {_count(drops)} packets in {window} ({why})")

    if figures.port_allocation_failures:
        count = figures.public_addresses
        limits.append(
            f"{_count(figures.port_allocation_failures)} new connections failed in {window} for "
            f"want of a free source port: a destination ip:port takes about "
            f"{count * 64512:,} connections through {count} public address"
            f"{'es' if count > 1 else ''}. Add public addresses (publicAddressesPerNat)")
    if figures.replication_errors:
        limits.append(
            f"connection handover failed {_count(figures.replication_errors)} times in {window} "
            "(conntrackd stopped or its sync link down, a commit or an Elastic IP move "
            "failed): connections moved then may have been reset. Fix: read the NAT's agent "
            "log (`journalctl -u nat-agent`, lines \"handover:\"); a failed address move is "
            "usually IAM or the Elastic IP quota, a sync link down the NAT security group's "
            "UDP 3780-3785 rule (`python -m natctl verify`)")
    if figures.connections_peak is not None:
        share = figures.connections_peak / figures.table_size
        parts.append(f"{_count(figures.connections_peak)} tracked connections at peak "
                     f"({share:.0%} of {_count(figures.table_size)})")
        if share >= TABLE_ALARM_SHARE:
            limits.append(f"tracking table {share:.0%} full: new connections are dropped when "
                          "it fills")
    if burstable:
        if figures.credits_borrowed:
            limits.append(f"CPU credits exhausted: borrowing ({figures.credits_borrowed:,.1f} "
                          "surplus credits)")
        elif figures.credit_balance is not None:
            parts.append(f"{figures.credit_balance:,.0f} CPU credits")
    if figures.alarms_firing:
        limits.append("alarms firing: " + ", ".join(sorted(figures.alarms_firing)))

    advice = ""
    if any(not text.startswith("silent") for text in limits):
        advice = (" What to do: usually a larger instance type (`python -m natctl plan "
                  "--gb-per-month N` compares them); see the README's Monitoring section.")
    summary = f"AZ {figures.zone}: " + "; ".join(parts) + (
        ". LIMITS: " + "; ".join(limits) + "." + advice if limits else ". Within limits.")
    return ZoneStatus(figures.zone, not limits, summary, limits, asdict(figures))


def status(session: Any, stack: StackOutputs, source: str, hours: float,
           now: datetime.datetime | None = None) -> list[ZoneStatus]:
    monitoring = monitoring_outputs(stack, source)
    now = now or datetime.datetime.now(datetime.timezone.utc)  # noqa: UP017 (boto3 stubs)
    instance_type = monitoring.instance_type
    baseline = load_prices()["instances"].get(instance_type, {}).get("baseline_gbps")
    # a NAT sends its samples every publish interval (at most 15 minutes) and ingestion
    # takes a few: silent beyond 20
    return [assess(figures, baseline, is_burstable(instance_type),
                   monitoring.detailed_metrics, hours, 20)
            for figures in gather(session, stack, now, hours)]


def render_text(statuses: Sequence[ZoneStatus]) -> str:
    return "".join(s.summary + "\n" for s in statuses)


def render_json(statuses: Sequence[ZoneStatus]) -> str:
    return json.dumps({"ok": all(s.ok for s in statuses),
                       "zones": {s.zone: {"ok": s.ok, "summary": s.summary, "limits": s.limits,
                                          **s.figures} for s in statuses}}, indent=2,
                      default=str) + "\n"
