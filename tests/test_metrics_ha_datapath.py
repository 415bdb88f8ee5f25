"""The agents' metrics with high availability, on the namespace test bed (testbed/ha.py): a
replaced NAT publishes under its AZ's name, and each route an agent moves is counted. Its own
module: one test bed at a time (they share the test process's way to "AWS")."""

from __future__ import annotations

import time
from collections import Counter

import pytest

from testbed.ha import LAB_METRICS, ZONES, HaLab
from tests import needs

pytestmark = pytest.mark.datapath
needs.network_namespaces("HA metrics data-path tests")

A, B = ZONES["a"].name, ZONES["b"].name


def test_a_replaced_nat_publishes_under_its_azs_name_and_failovers_are_counted() -> None:
    with HaLab(metrics=LAB_METRICS) as lab:
        lab.wait_until(lambda: lab.healthy("a") and lab.healthy("b") and
                       lab.applied == {"a": "a", "b": "b"}, 60, "both AZs on their own NAT")
        time.sleep(5)
        before = len(lab.metric(A, "ActiveConnectionCount", "SampleCount", minutes=3))

        def published() -> dict[str, float]:
            return {zone: sum(lab.metric(zone, "FailoverCount", "Sum")) for zone in (A, B)}
        killed = time.monotonic()
        lab.kill_nat("a")
        lab.wait_until(lambda: lab.applied.get("a") == "b", 30, "failover")
        lab.replace_instance("a")
        replaced = time.time()
        lab.wait_until(lambda: lab.applied.get("a") == "a", 60, "failback")
        lab.wait_until(lambda: sum(published().values()) == len(lab.route_events), 20,
                       "the failover and failback published")
        # the new instance's samples, under the same dimensions as its predecessor's
        stamps = lab.client("cloudwatch").get_metric_data(
            StartTime=replaced, EndTime=time.time() + 60, MetricDataQueries=[{
                "Id": "m", "MetricStat": {"Metric": {
                    "Namespace": "NatInstance", "MetricName": "ActiveConnectionCount",
                    "Dimensions": [{"Name": "NatGroup", "Value": LAB_METRICS.group},
                                   {"Name": "AvailabilityZone", "Value": A}]},
                    "Period": 60, "Stat": "SampleCount"}}])["MetricDataResults"][0]["Values"]
        assert before > 0 and sum(stamps) >= 3, (before, stamps)
        # each route change the router applied is one FailoverCount of the NAT the route now
        # points at (the agent that moved it), the start's included: a NAT up first holds the
        # other AZ's table until that AZ's NAT has been healthy for the failback delay
        counted = published()
        moved_to = Counter(target for _, _, target in lab.route_events)
        assert counted == {A: moved_to["a"], B: moved_to["b"]}, (counted, lab.route_events)
        # after the kill: NAT b took AZ a's table, NAT a's new instance took it back
        assert [target for when, private, target in lab.route_events
                if when >= killed and private == "a"] == ["b", "a"], lab.route_events
