"""Monitoring: what each NAT publishes, and the alarms and dashboard built on it (pure logic).

The agent on every NAT (nat/instance/agent.py) samples its counters each minute and sends them to
CloudWatch under `namespace`, with the dimensions NatGroup (project/stack/component) and
AvailabilityZone; a replaced NAT publishes under the same ones. Names follow NAT Gateway's
where one corresponds, so dashboards and runbooks read the same.

Cost is part of the design (CloudWatch bills each metric, alarm, dashboard and request): the
default is two metrics and three or four alarms per AZ, sent in one request every five
minutes; the rest is opt-in. `natctl plan` prices it (natctl/cost.py).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nat.design import ha
from nat.inputs.settings import MonitoringSettings
from nat.instance import agent

GROUP_DIMENSION = "NatGroup"
ZONE_DIMENSION = "AvailabilityZone"
TABLE_ALARM_SHARE = 0.8
DROP_MINUTES = 3  # minutes with drops (or a nearly full table) in the window that alarm
CREDIT_ALARM_PERIODS = 12  # five-minute periods: an hour of borrowing CPU credits

ALWAYS, DETAILED, DETAILED_WHEN_NONZERO, HA_WHEN_NONZERO, WHEN_NONZERO = (
    "always", "detailed", "detailed, in minutes with drops", "high availability, in minutes "
    "with route changes", "in minutes with failures")
HANDOVER_WHEN_NONZERO = "keepConnections, in minutes with replication failures"


@dataclass(frozen=True)
class Metric:
    name: str
    published: str  # ALWAYS, DETAILED…
    nat_gateway: str  # the AWS/NATGateway metric it corresponds to
    meaning: str
    statistic: str  # the one that reads it right


METRICS: tuple[Metric, ...] = (
    Metric("PacketsDropCount", ALWAYS, "PacketsDropCount",
           "Packets lost each minute, every cause summed: the ENA driver's five "
           "allowance-exceeded counters (bandwidth in, bandwidth out, packets per second, "
           "connection tracking, link-local) and the kernel's \"table full\" drops. Not 0 "
           "means the NAT is the bottleneck.", "Sum"),
    Metric("ActiveConnectionCount", ALWAYS, "ActiveConnectionCount",
           "Flows in the NAT's connection-tracking table (nf_conntrack_count): TCP, UDP and "
           "ICMP, where NAT Gateway counts TCP. The table holds connectionTableSizes entries; "
           "a full table drops new flows.", "Maximum"),
    Metric("BytesOutToDestination", DETAILED, "BytesOutToDestination",
           "Bytes forwarded from the VPC to the internet each minute.", "Sum"),
    Metric("BytesInFromDestination", DETAILED, "BytesInFromDestination",
           "Bytes forwarded from the internet back to the VPC each minute.", "Sum"),
    Metric("PacketsOutToDestination", DETAILED, "PacketsOutToDestination",
           "Packets forwarded from the VPC to the internet each minute.", "Sum"),
    Metric("PacketsInFromDestination", DETAILED, "PacketsInFromDestination",
           "Packets forwarded from the internet back to the VPC each minute.", "Sum"),
    Metric("PacketsDropBandwidthIn", DETAILED_WHEN_NONZERO, "PacketsDropCount",
           "Dropped or queued: inbound bandwidth over the instance type's allowance "
           "(ENA bw_in_allowance_exceeded).", "Sum"),
    Metric("PacketsDropBandwidthOut", DETAILED_WHEN_NONZERO, "PacketsDropCount",
           "Dropped or queued: outbound bandwidth over the allowance "
           "(bw_out_allowance_exceeded).", "Sum"),
    Metric("PacketsDropPps", DETAILED_WHEN_NONZERO, "PacketsDropCount",
           "Dropped: packets per second over the allowance (pps_allowance_exceeded).", "Sum"),
    Metric("PacketsDropConntrackAllowance", DETAILED_WHEN_NONZERO, "PacketsDropCount",
           "Dropped: the instance's own tracked-connection allowance in the VPC is used up "
           "(conntrack_allowance_exceeded).", "Sum"),
    Metric("PacketsDropLinkLocal", DETAILED_WHEN_NONZERO, "PacketsDropCount",
           "Dropped: traffic to DNS, the metadata service or time sync over its per-interface "
           "limit (linklocal_allowance_exceeded).", "Sum"),
    Metric("PacketsDropTableFull", DETAILED_WHEN_NONZERO, "PacketsDropCount",
           "Dropped: the kernel's tracking table was full (nf_conntrack \"drop\").", "Sum"),
    Metric("ErrorPortAllocation", WHEN_NONZERO, "ErrorPortAllocation",
           "New connections dropped because the NAT found no free source port for them: all "
           "ports of the address they were given, to that destination ip:port, are in use "
           "(the kernel's conntrack insert_failed). About 64,512 connections per public "
           "address to one destination; add addresses (instance.publicAddresses).", "Sum"),
    Metric("FailoverCount", HA_WHEN_NONZERO, "(none)",
           "Private route tables this AZ's agent moved, over to a NAT or back.", "Sum"),
    Metric("ReplicationErrors", HANDOVER_WHEN_NONZERO, "(none)",
           "keepConnections: conntrackd found stopped (and started again), a sync link that "
           "received nothing for 30 s while its peer answers, a commit of replicated "
           "connections or an Elastic IP move that failed. Connections moved then may have "
           "been reset.", "Sum"),
)
METRIC_NAMES = tuple(metric.name for metric in METRICS)
if set(METRIC_NAMES) != set(agent.METRIC_UNITS):  # the agent publishes exactly these
    raise ImportError("nat/design/monitoring.py and nat/instance/agent.py name different metrics")


def published_metrics(detailed: bool, high_availability: bool) -> tuple[str, ...]:
    """The metric names the NATs of a stack publish (some only in minutes with events)."""
    kinds = {ALWAYS, WHEN_NONZERO} | ({DETAILED, DETAILED_WHEN_NONZERO} if detailed else set()) | \
        ({HA_WHEN_NONZERO} if high_availability else set())
    return tuple(metric.name for metric in METRICS if metric.published in kinds)


def billed_metrics(detailed: bool, high_availability: bool) -> tuple[int, int]:
    """(metrics billed every hour, metrics billed only in hours they get data) per AZ."""
    names = {metric.name: metric.published for metric in METRICS}
    published = published_metrics(detailed, high_availability)
    steady = sum(1 for name in published if names[name] in (ALWAYS, DETAILED))
    return steady, len(published) - steady


def conntrack_max(memory_mib: float, override: int | None = None,
                  public_addresses: int = 1) -> int:
    """The tracking-table size a NAT runs with: the override, else nat-bootstrap.sh's rule
    (256 entries per MiB; at least 65,536, or with several public addresses 65,536 per
    address and 65,536 more; at most 2,097,152),
    applied by the component to the instance type's memory and written to the instance, so
    the alarm and the kernel agree."""
    if override is not None:
        return override
    least = 65536 if public_addresses == 1 else (public_addresses + 1) * 65536
    return min(max(int(memory_mib) * 256, least), 2097152)


def window_minutes(publish_interval: int) -> int:
    """The minutes an alarm looks back: data arrive in batches, up to one interval late."""
    return publish_interval // 60 + 5


def agent_settings(watch: MonitoringSettings, group: str) -> agent.MetricsSettings:
    """What each NAT is told to publish (the `metrics` part of agent.json), from the checked
    monitoring options."""
    return agent.MetricsSettings(group=group, sample_every=60.0,
                                 **ha.agent_values("monitoring", watch, agent.MetricsSettings))


def dimensions(group: str, zone: str) -> dict[str, str]:
    return {GROUP_DIMENSION: group, ZONE_DIMENSION: zone}


def policy_statement(namespace: str) -> dict[str, Any]:
    """PutMetricData, into this namespace only (the action has no resource ARN)."""
    return {"Sid": "PublishNatMetrics", "Effect": "Allow",
            "Action": "cloudwatch:PutMetricData", "Resource": "*",
            "Condition": {"StringEquals": {"cloudwatch:namespace": namespace}}}


# --- alarms -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AlarmSpec:
    slug: str
    description: str
    namespace: str
    metric_name: str
    statistic: str
    period: int
    evaluation_periods: int
    datapoints_to_alarm: int
    threshold: float
    comparison: str
    treat_missing_data: str
    dimensions: Mapping[str, Any]  # values may be outputs (an instance id, a group name)


def alarm_specs(zone: str, group: str, namespace: str, publish_interval: int,
                table_size: int, burstable: bool,
                credit_dimension: tuple[str, Any] | None) -> list[AlarmSpec]:
    """One AZ's alarms. Drops and a nearly full table in DROP_MINUTES minutes of the window;
    no data for the whole window; for burstable types, an hour of borrowed CPU credits.

    `credit_dimension` is ("InstanceId", id) for a plain NAT and ("AutoScalingGroupName",
    name) with high availability (EC2 publishes both).
    """
    window = window_minutes(publish_interval)
    ours = dimensions(group, zone)
    where = f"NAT instance in {zone} ({group})"
    specs = [
        AlarmSpec("drops", f"{where} dropped packets in {DROP_MINUTES} of the last {window} "
                  "minutes: it exceeds its instance type's network allowances (bandwidth, "
                  "packets per second, tracked connections) or its tracking table is full. "
                  "Usually: a larger instance type; `python -m natctl status` names the cause.",
                  namespace, "PacketsDropCount", "Sum", 60, window, DROP_MINUTES, 0,
                  "GreaterThanThreshold", "notBreaching", ours),
        AlarmSpec("connections", f"{where} tracks more than {TABLE_ALARM_SHARE:.0%} of its "
                  f"{table_size:,} table entries; a full table drops new connections. Raise "
                  "instance.conntrack.maxEntries (memory allowing) or use a larger type.",
                  namespace, "ActiveConnectionCount", "Maximum", 60, window, DROP_MINUTES,
                  math.floor(table_size * TABLE_ALARM_SHARE), "GreaterThanThreshold",
                  "notBreaching", ours),
        AlarmSpec("ports", f"{where} dropped new connections in {DROP_MINUTES} of the last "
                  f"{window} minutes for want of a free source port: one destination ip:port "
                  "takes about 64,512 connections per public address. Add public addresses "
                  "(instance.publicAddresses) or spread the load over more destinations.",
                  namespace, "ErrorPortAllocation", "Sum", 60, window, DROP_MINUTES, 0,
                  "GreaterThanThreshold", "notBreaching", ours),
        AlarmSpec("silent", f"{where} sent no metrics for {window} minutes: the instance or "
                  "its agent is down, or cannot reach CloudWatch.",
                  namespace, "ActiveConnectionCount", "SampleCount", 60, window, window, 1,
                  "LessThanThreshold", "breaching", ours),
    ]
    if burstable and credit_dimension is not None:
        specs.append(AlarmSpec(
            "cpu-credits", f"{where} has spent more CPU than its type earns for an hour with "
            "no credits left (it borrows surplus credits, billed when not repaid). A NAT "
            "that busy needs a larger or non-burstable type.",
            "AWS/EC2", "CPUSurplusCreditBalance", "Minimum", 300, CREDIT_ALARM_PERIODS,
            CREDIT_ALARM_PERIODS, 0, "GreaterThanThreshold", "notBreaching",
            {credit_dimension[0]: credit_dimension[1]}))
    return specs


# --- the dashboard ------------------------------------------------------------------------------
def dashboard_name(project: str, stack: str, component: str) -> str:
    """Dashboards are global to the account: project, stack and component, in the characters
    CloudWatch allows."""
    return re.sub(r"[^A-Za-z0-9_-]", "-", f"{project}-{stack}-{component}")[:255]


def dashboard_body(zones: Sequence[str], group: str, namespace: str, region: str,
                   detailed: bool, high_availability: bool, table_sizes: Mapping[str, int],
                   credit_dimensions: Mapping[str, tuple[str, str]]) -> dict[str, Any]:
    """Per AZ, a row: throughput, packets, tracked connections against the table size, drops
    (by cause with detailed metrics), failovers (high availability), CPU credits (burstable).
    Only metrics the NATs publish appear; without detailed metrics a note says how to add
    throughput and packets."""
    widgets: list[dict[str, Any]] = []
    y = 0

    def ours(name: str, zone: str, label: str, stat: str) -> list[Any]:
        return [namespace, name, GROUP_DIMENSION, group, ZONE_DIMENSION, zone,
                {"stat": stat, "label": label}]

    def graph(x: int, title: str, metrics: list[list[Any]], **extra: Any) -> dict[str, Any]:
        return {"type": "metric", "x": x, "y": y + 1, "width": 6, "height": 6,
                "properties": {"title": title, "view": "timeSeries", "region": region,
                               "period": 60, "metrics": metrics, **extra}}

    for zone in zones:
        widgets.append({"type": "text", "x": 0, "y": y, "width": 24, "height": 1,
                        "properties": {"markdown": f"### NAT in {zone}"}})
        row: list[dict[str, Any]] = []
        if detailed:
            row.append(graph(0, "Throughput (bytes/minute)", [
                ours("BytesOutToDestination", zone, "to the internet", "Sum"),
                ours("BytesInFromDestination", zone, "from the internet", "Sum")]))
            row.append(graph(6, "Packets (per minute)", [
                ours("PacketsOutToDestination", zone, "to the internet", "Sum"),
                ours("PacketsInFromDestination", zone, "from the internet", "Sum")]))
        else:
            row.append({"type": "text", "x": 0, "y": y + 1, "width": 12, "height": 6,
                        "properties": {"markdown": (
                            "Throughput and packets need detailed metrics "
                            "(`monitoring.detailedMetrics: true`; see the README's price "
                            "table). The NAT's EC2 NetworkIn/NetworkOut (5-minute) are in "
                            "the EC2 console.")}})
        table = table_sizes[zone]
        row.append(graph(12, "Tracked connections", [
            ours("ActiveConnectionCount", zone, "tracked", "Maximum")],
            annotations={"horizontal": [
                {"label": "table size", "value": table},
                {"label": f"alarm ({TABLE_ALARM_SHARE:.0%})",
                 "value": math.floor(table * TABLE_ALARM_SHARE)}]}))
        drops = [ours("PacketsDropCount", zone, "all causes", "Sum")]
        if detailed:
            drops += [ours(metric.name, zone, metric.name.removeprefix("PacketsDrop"), "Sum")
                      for metric in METRICS if metric.published == DETAILED_WHEN_NONZERO]
        drops.append(ours("ErrorPortAllocation", zone, "new connections, no free port", "Sum"))
        row.append(graph(18, "Dropped packets (per minute)", drops))
        extra_y = y + 7
        extras: list[dict[str, Any]] = []
        if high_availability:
            extras.append(graph(0, "Failovers (route tables moved)", [
                ours("FailoverCount", zone, "moved", "Sum")]))
        if zone in credit_dimensions:
            key, value = credit_dimensions[zone]
            extras.append(graph(6 * len(extras), "CPU credits", [
                ["AWS/EC2", "CPUCreditBalance", key, value, {"stat": "Minimum",
                                                            "label": "balance"}],
                ["AWS/EC2", "CPUSurplusCreditBalance", key, value,
                 {"stat": "Maximum", "label": "borrowed"}]], period=300))
        for widget in extras:
            widget["y"] = extra_y
        widgets += row + extras
        y = extra_y + (6 if extras else 0)
    return {"widgets": widgets}


def dashboard_metric_names(body: Mapping[str, Any], namespace: str) -> set[str]:
    """The names of this namespace's metrics a dashboard body draws."""
    return {metric[1] for widget in body["widgets"] if widget["type"] == "metric"
            for metric in widget["properties"]["metrics"] if metric[0] == namespace}


def metrics_table_markdown() -> str:
    """The README's metric reference, rendered from METRICS (a test keeps them in step)."""
    lines = ["| metric | published | NAT Gateway's | what it counts | statistic |",
             "|---|---|---|---|---|"]
    for metric in METRICS:
        lines.append(f"| `{metric.name}` | {metric.published} | `{metric.nat_gateway}` | "
                     f"{metric.meaning} | {metric.statistic} |")
    return "\n".join(lines)
