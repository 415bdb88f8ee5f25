"""Monitoring in the resource graph (the real program under the mocks): the alarms and their
thresholds, what each NAT is told to publish, the dashboard, the notifications, the rights."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest

from nat.design.monitoring import dashboard_metric_names, published_metrics
from nat.design.userdata import decode_user_data
from nat.instance.agent import Settings
from natctl.offline import MOCK_MEMORY_MIB, Graph, ProgramError, Resource

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
DASHBOARD = "aws:cloudwatch/dashboard:Dashboard"
TOPIC = "aws:sns/topic:Topic"
INSTANCE = "aws:ec2/instance:Instance"
TEMPLATE = "aws:ec2/launchTemplate:LaunchTemplate"
GROUP = "aws:autoscaling/group:Group"
A, B = "us-east-1a", "us-east-1b"
TOPIC_ARN = "arn:aws:sns:us-east-1:123456789012:platform-alarms"


def alarms(graph: Graph, zone: str) -> dict[str, Resource]:
    """An AZ's alarms by kind (drops, connections, silent, cpu-credits)."""
    found = {}
    for alarm in graph.of_type(ALARM):
        match = re.fullmatch(rf"test-nat-(.+)-{zone}", alarm.name)
        if match:
            found[match.group(1)] = alarm
    return found


def agent_json(user_data: str) -> dict[str, Any]:
    body = user_data.split("cat >/etc/nat-instance/agent.json <<'NAT_AGENT_SETTINGS_END'\n")[1]
    return dict(json.loads(body.split("\nNAT_AGENT_SETTINGS_END")[0]))


def table_size_written(user_data: str) -> int:
    return int(re.search(r"^NAT_CONNTRACK_MAX=(\d+)$", user_data, re.M).group(1))  # type: ignore[union-attr]


@pytest.mark.parametrize(("instance_type", "override", "table"), [
    ("t4g.nano", None, MOCK_MEMORY_MIB["nano"] * 256),       # 131,072
    ("c7gn.medium", None, MOCK_MEMORY_MIB["medium"] * 256),
    ("m7g.xlarge", None, 2097152),                           # capped
    ("t4g.nano", 200000, 200000),                            # set by the user
])
def test_the_table_alarm_follows_the_table_the_nat_gets(run: Any, instance_type: str,
                                                        override: int | None,
                                                        table: int) -> None:
    keys = {"conntrackMax": override} if override else {}
    graph = run(azCount=2, natInstanceType=instance_type, **keys)
    for zone in (A, B):
        [nat] = [n for n in graph.of_type(INSTANCE) if n.name.endswith(zone)]
        assert table_size_written(decode_user_data(nat.inputs["userDataBase64"])) == table
        connections = alarms(graph, zone)["connections"]
        assert connections.inputs["threshold"] == int(table * 0.8)
        assert connections.inputs["metricName"] == "ActiveConnectionCount"
        assert connections.inputs["statistic"] == "Maximum"
        assert f"{table:,}" in connections.inputs["alarmDescription"]
    assert graph.exports["connection_table_sizes"] == {A: table, B: table}


def test_each_az_alarms_on_drops_a_full_table_silence_and_cpu_credits(run: Any) -> None:
    graph = run(azCount=2)
    for zone in (A, B):
        found = alarms(graph, zone)
        assert sorted(found) == ["connections", "cpu-credits", "drops", "ports", "silent"]
        mine = {"NatGroup": "nat-instance-vpc/test/test-nat", "AvailabilityZone": zone}
        ports = found["ports"].inputs
        assert (ports["metricName"], ports["statistic"], ports["threshold"],
                ports["comparisonOperator"], ports["treatMissingData"]) == (
            "ErrorPortAllocation", "Sum", 0, "GreaterThanThreshold", "notBreaching")
        assert ports["dimensions"] == mine and "publicAddresses" in ports["alarmDescription"]
        drops, silent = found["drops"].inputs, found["silent"].inputs
        assert (drops["namespace"], drops["metricName"], drops["statistic"]) == (
            "NatInstance", "PacketsDropCount", "Sum")
        assert drops["dimensions"] == mine and silent["dimensions"] == mine
        assert (drops["threshold"], drops["comparisonOperator"]) == (0, "GreaterThanThreshold")
        # batches arrive every 5 minutes: the alarms look back 10, so a batch in flight is
        # neither a drop missed nor silence
        assert (drops["period"], drops["evaluationPeriods"], drops["datapointsToAlarm"]) == \
            (60, 10, 3)
        assert drops["treatMissingData"] == "notBreaching"
        assert (silent["statistic"], silent["comparisonOperator"], silent["threshold"]) == (
            "SampleCount", "LessThanThreshold", 1)
        assert (silent["evaluationPeriods"], silent["datapointsToAlarm"],
                silent["treatMissingData"]) == (10, 10, "breaching")
        [nat] = [n for n in graph.of_type(INSTANCE) if n.name.endswith(zone)]
        credits = found["cpu-credits"].inputs
        assert (credits["namespace"], credits["metricName"]) == ("AWS/EC2",
                                                                 "CPUSurplusCreditBalance")
        assert credits["dimensions"] == {"InstanceId": nat.id}
        assert nat.inputs["creditSpecification"] == {"cpuCredits": "unlimited"}
        assert "alarmActions" not in drops or drops["alarmActions"] == []
        assert sorted(graph.exports["monitoring"]["alarm_names"][zone]) == sorted(
            alarm.inputs["name"] for alarm in found.values())


def test_a_faster_publish_interval_shortens_the_windows(run: Any) -> None:
    graph = run(azCount=1, metricsPublishIntervalSeconds=60)
    found = alarms(graph, A)
    assert found["silent"].inputs["evaluationPeriods"] == 6
    assert found["drops"].inputs["evaluationPeriods"] == 6
    [nat] = graph.of_type(INSTANCE)
    assert agent_json(decode_user_data(nat.inputs["userDataBase64"]))["metrics"][
        "publish_every"] == 60


def test_non_burstable_types_have_no_credit_alarm(run: Any) -> None:
    graph = run(azCount=1, natInstanceType="c7gn.medium")
    assert sorted(alarms(graph, A)) == ["connections", "drops", "ports", "silent"]
    assert "creditSpecification" not in graph.of_type(INSTANCE)[0].inputs


def test_plain_nats_run_the_agent_for_metrics_only(run: Any) -> None:
    graph = run(azCount=2, metricsNamespace="Platform/Nat", detailedMetrics=True)
    for nat in graph.of_type(INSTANCE):
        user_data = decode_user_data(nat.inputs["userDataBase64"])
        settings = agent_json(user_data)
        assert settings == {"region": "us-east-1", "metrics": {
            "namespace": "Platform/Nat", "group": "nat-instance-vpc/test/test-nat",
            "detailed": True, "sample_every": 60.0, "publish_every": 300.0}}
        loaded = Settings.from_document(settings)  # what the agent reads at boot
        assert not loaded.high_availability and loaded.metrics is not None
        assert "cat >/usr/local/sbin/nat-agent <<'NAT_AGENT_END'" in user_data
    [policy] = graph.of_type("aws:iam/rolePolicy:RolePolicy")
    assert json.loads(policy.inputs["policy"])["Statement"][0]["Condition"] == {
        "StringEquals": {"cloudwatch:namespace": "Platform/Nat"}}
    assert {a.inputs["namespace"] for a in graph.of_type(ALARM)} == {"Platform/Nat", "AWS/EC2"}


def test_with_high_availability_the_agents_publish_too(run: Any) -> None:
    graph = run(stack="ha", azCount=2, highAvailability=True)
    for template in graph.of_type(TEMPLATE):
        settings = agent_json(decode_user_data(template.inputs["userData"]))
        assert settings["metrics"]["group"] == "nat-instance-vpc/ha/ha-nat"
        assert settings["nats"]  # and fails over
    # a replaced NAT is the same AZ's: the credit alarm follows the group, not an instance
    for group in graph.of_type(GROUP):
        zone = A if group.name.endswith(A) else B
        credits = [a for a in graph.of_type(ALARM) if a.name == f"ha-nat-cpu-credits-{zone}"]
        assert credits[0].inputs["dimensions"] == {"AutoScalingGroupName": group.id}


def test_monitoring_off_means_no_agent_no_alarms_no_rights(run: Any) -> None:
    graph = run(azCount=1, monitoring=False)
    assert graph.of_type(ALARM) == [] and graph.of_type("aws:iam/rolePolicy:RolePolicy") == []
    user_data = decode_user_data(graph.of_type(INSTANCE)[0].inputs["userDataBase64"])
    assert "nat-agent" not in user_data.split("nat-bootstrap.sh install")[0].split(
        "NAT_BOOTSTRAP_SCRIPT_END")[-1] and "agent.json" not in user_data
    assert graph.exports["monitoring"]["namespace"] == ""


def test_alarms_notify_a_created_topic(run: Any) -> None:
    graph = run(azCount=2, createAlarmTopic=True)
    [topic] = graph.of_type(TOPIC)
    for alarm in graph.of_type(ALARM):
        assert alarm.inputs["alarmActions"] == [topic.inputs["arn"]]
        assert alarm.inputs["okActions"] == [topic.inputs["arn"]]
    assert graph.exports["monitoring"]["alarm_topic_arn"] == topic.inputs["arn"]


def test_alarms_notify_a_given_topic(run: Any) -> None:
    graph = run(azCount=1, alarmTopicArn=TOPIC_ARN)
    assert graph.of_type(TOPIC) == []
    assert {tuple(a.inputs["alarmActions"]) for a in graph.of_type(ALARM)} == {(TOPIC_ARN,)}


def test_no_alarms_when_asked(run: Any) -> None:
    graph = run(azCount=2, monitoringAlarms=False)
    assert graph.of_type(ALARM) == []
    assert graph.of_type("aws:iam/rolePolicy:RolePolicy")  # the metrics still flow


@pytest.mark.parametrize(("keys", "drawn"), [
    ({}, {"ActiveConnectionCount", "PacketsDropCount", "ErrorPortAllocation"}),
    ({"detailedMetrics": True}, set(published_metrics(True, False))),
    ({"highAvailability": True}, {"ActiveConnectionCount", "PacketsDropCount",
                                  "ErrorPortAllocation", "FailoverCount"}),
])
def test_the_dashboard_draws_only_what_is_published(run: Any, keys: dict[str, Any],
                                                    drawn: set[str]) -> None:
    graph = run(stack="ha" if keys.get("highAvailability") else "test", azCount=2,
                monitoringDashboard=True, **keys)
    [dashboard] = graph.of_type(DASHBOARD)
    body = json.loads(dashboard.inputs["dashboardBody"])  # valid JSON
    names = dashboard_metric_names(body, "NatInstance")
    assert names == drawn
    assert names <= set(published_metrics(bool(keys.get("detailedMetrics")),
                                          bool(keys.get("highAvailability"))))
    titles = [w["properties"].get("title") for w in body["widgets"]]
    assert titles.count("Tracked connections") == 2  # one row per AZ
    connections = next(w for w in body["widgets"]
                       if w["properties"].get("title") == "Tracked connections")
    assert {a["value"] for a in connections["properties"]["annotations"]["horizontal"]} == \
        {131072, int(131072 * 0.8)}
    # burstable: CPU credits, from EC2's own metrics
    assert titles.count("CPU credits") == 2
    assert re.fullmatch(r"nat-instance-vpc-(test|ha)-(test|ha)-nat",
                        dashboard.inputs["dashboardName"])


def test_no_dashboard_by_default(run: Any) -> None:
    assert run(azCount=1).of_type(DASHBOARD) == []


@pytest.mark.parametrize(("keys", "message"), [
    ({"monitoring": False, "detailedMetrics": True},
     "nat-instance-vpc:detailedMetrics = true: has no effect while nat-instance-vpc:monitoring "
     "is false"),
    ({"monitoringAlarms": False, "createAlarmTopic": True},
     "nat-instance-vpc:createAlarmTopic = true: has no effect while "
     "nat-instance-vpc:monitoringAlarms is false"),
    ({"alarmTopicArn": TOPIC_ARN, "createAlarmTopic": True},
     "nat-instance-vpc:createAlarmTopic = true: a topic is also given"),
    ({"alarmTopicArn": "platform-alarms"},
     'nat-instance-vpc:alarmTopicArn = "platform-alarms": not an SNS topic ARN'),
    ({"metricsNamespace": "AWS/NATGateway"},
     'nat-instance-vpc:metricsNamespace = "AWS/NATGateway": AWS/ namespaces are AWS\'s own'),
    ({"metricsNamespace": "nat instances"},
     'nat-instance-vpc:metricsNamespace = "nat instances": not a CloudWatch namespace'),
    ({"metricsPublishIntervalSeconds": 90},
     "nat-instance-vpc:metricsPublishIntervalSeconds = 90: not a multiple of 60"),
    ({"metricsPublishIntervalSeconds": 3600},
     "nat-instance-vpc:metricsPublishIntervalSeconds = 3600: out of range 60..900"),
])
def test_bad_monitoring_settings_are_refused_before_anything_exists(
        run: Any, keys: dict[str, Any], message: str) -> None:
    with pytest.raises(ProgramError) as raised:
        run(azCount=1, **keys)
    assert message in str(raised.value)
    assert raised.value.registered == 0
