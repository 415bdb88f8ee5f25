"""Monitoring's pure parts: what is published and billed, the table size, the alarms, the
dashboard (checked against CloudWatch's dashboard-body rules, and kept as a reviewed snapshot:
any change to what users see shows up as a diff of tests/data/*.json)."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import pytest

from nat.design import monitoring
from nat.design.monitoring import (
    alarm_specs,
    billed_metrics,
    conntrack_max,
    dashboard_body,
    dashboard_metric_names,
    dashboard_name,
    published_metrics,
    window_minutes,
)
from nat.inputs.settings import MonitoringSettings
from nat.instance import agent

DATA = Path(__file__).with_name("data")
ZONES = ["us-east-1a", "us-east-1b"]
GROUP = "nat-instance-vpc/prod/prod-nat"
STATISTICS = {"Sum", "Maximum", "Minimum", "Average", "SampleCount"}


def snapshot(name: str, value: Any) -> None:
    """`value` equals the reviewed snapshot tests/data/NAME (UPDATE_SNAPSHOTS=1 rewrites it)."""
    path = DATA / name
    text = json.dumps(value, indent=1, sort_keys=True, default=str) + "\n"
    if os.environ.get("UPDATE_SNAPSHOTS"):
        path.write_text(text)
    assert path.exists(), f"no snapshot {path}: run with UPDATE_SNAPSHOTS=1 and review it"
    assert json.loads(text) == json.loads(path.read_text())


def test_what_is_published() -> None:
    assert published_metrics(False, False) == ("PacketsDropCount", "ActiveConnectionCount",
                                               "ErrorPortAllocation")
    assert published_metrics(False, True) == ("PacketsDropCount", "ActiveConnectionCount",
                                              "ErrorPortAllocation", "FailoverCount")
    detailed = published_metrics(True, False)
    assert len(detailed) == 13 and "FailoverCount" not in detailed
    # and ReplicationErrors, which only keepConnections' code publishes (in minutes it fails)
    assert set(published_metrics(True, True)) | {"ReplicationErrors"} == set(agent.METRIC_UNITS)
    assert "ReplicationErrors" not in published_metrics(True, True)


@pytest.mark.parametrize(("detailed", "ha", "billed"), [
    (False, False, (2, 1)), (False, True, (2, 2)), (True, False, (6, 7)), (True, True, (6, 8)),
])
def test_what_is_billed(detailed: bool, ha: bool, billed: tuple[int, int]) -> None:
    assert billed_metrics(detailed, ha) == billed


@pytest.mark.parametrize(("memory", "override", "size"), [
    (512, None, 131072), (200, None, 65536), (256, None, 65536), (257, None, 65792),
    (8192, None, 2097152), (8193, None, 2097152), (512.9, None, 131072), (512, 4096, 4096)])
def test_the_table_size(memory: float, override: int | None, size: int) -> None:
    assert conntrack_max(memory, override) == size


def test_the_window_covers_a_batch_in_flight() -> None:
    assert [window_minutes(s) for s in (60, 300, 900)] == [6, 10, 20]


def test_the_agent_and_the_policy_are_told_the_same_namespace() -> None:
    watch = MonitoringSettings(namespace="Ns", detailed_metrics=True,
                               publish_interval_seconds=120)
    assert monitoring.agent_settings(watch, GROUP).to_document() == {
        "namespace": "Ns", "group": GROUP, "detailed": True, "sample_every": 60.0,
        "publish_every": 120.0}
    assert monitoring.agent_settings(watch, GROUP) == agent.MetricsSettings(
        "Ns", GROUP, True, 120.0, 60.0)
    assert monitoring.policy_statement("Ns") == {
        "Sid": "PublishNatMetrics", "Effect": "Allow", "Action": "cloudwatch:PutMetricData",
        "Resource": "*", "Condition": {"StringEquals": {"cloudwatch:namespace": "Ns"}}}
    assert monitoring.dimensions(GROUP, "us-east-1a") == {
        "NatGroup": GROUP, "AvailabilityZone": "us-east-1a"}


def test_the_alarms_of_an_az() -> None:
    burstable = alarm_specs("us-east-1a", GROUP, "NatInstance", 300, 131072, True,
                            ("InstanceId", "i-0123456789abcdef0"))
    plain = alarm_specs("us-east-1a", GROUP, "NatInstance", 60, 524288, False, None)
    assert [a.slug for a in plain] == ["drops", "connections", "ports", "silent"]
    snapshot("alarms-us-east-1a.json", [dataclasses.asdict(a) for a in burstable + plain])


def test_dashboard_names_are_what_cloudwatch_allows() -> None:
    assert dashboard_name("nat-instance-vpc", "prod", "prod") == "nat-instance-vpc-prod-prod"
    assert dashboard_name("my project", "dev.1", "a/b") == "my-project-dev-1-a-b"
    assert len(dashboard_name("p" * 200, "s" * 200, "c")) == 255


def check_dashboard(body: dict[str, Any], namespace: str) -> None:
    """CloudWatch's dashboard-body rules for the widgets used: a 24-column grid, no overlap,
    metric widgets with a view, region, period and [namespace, name, dimension pairs...,
    options] rows, text widgets with markdown."""
    cells: set[tuple[int, int]] = set()
    for widget in body["widgets"]:
        assert set(widget) == {"type", "x", "y", "width", "height", "properties"}
        x, y, width, height = widget["x"], widget["y"], widget["width"], widget["height"]
        assert x >= 0 and x + width <= 24 and y >= 0 and 1 <= height <= 1000
        covered = {(x + i, y + j) for i in range(width) for j in range(height)}
        assert not covered & cells, f"{widget['properties']} overlaps"
        cells |= covered
        properties = widget["properties"]
        if widget["type"] == "text":
            assert set(properties) == {"markdown"} and properties["markdown"]
            continue
        assert widget["type"] == "metric"
        assert properties["view"] == "timeSeries" and properties["region"] == "us-east-1"
        assert properties["period"] % 60 == 0 and properties["title"]
        for row in properties["metrics"]:
            *names, options = row
            assert set(options) == {"stat", "label"} and options["stat"] in STATISTICS
            assert options["label"]
            assert len(names) % 2 == 0  # namespace, name, then name/value pairs
            if names[0] == namespace:
                assert dict(zip(names[2::2], names[3::2], strict=True)).keys() == {
                    "NatGroup", "AvailabilityZone"}


@pytest.mark.parametrize(("detailed", "ha", "credits"), [
    (False, False, True), (True, True, False), (True, False, True)])
def test_the_dashboard(detailed: bool, ha: bool, credits: bool) -> None:
    body = dashboard_body(ZONES, GROUP, "NatInstance", "us-east-1", detailed, ha,
                          {"us-east-1a": 131072, "us-east-1b": 65536},
                          {z: ("InstanceId", f"i-{i}") for i, z in enumerate(ZONES)}
                          if credits else {})
    check_dashboard(body, "NatInstance")
    assert dashboard_metric_names(body, "NatInstance") <= set(published_metrics(detailed, ha))
    snapshot(f"dashboard-{'detailed' if detailed else 'basic'}-{'ha' if ha else 'plain'}"
             f"{'-credits' if credits else ''}.json", body)
