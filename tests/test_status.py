"""`natctl status` against moto's CloudWatch, with the metric data the NATs (and EC2) would
have put there, and the outputs the real program exports (run under the mocks)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from natctl.__main__ import main
from natctl.outputs import stack_outputs
from natctl.status import status

A, B = "us-east-1a", "us-east-1b"
NOW = datetime.datetime.now(datetime.UTC)
NANO_BASELINE = 0.032e9  # t4g.nano, bits per second (natctl/prices.json)
TABLE = 131072  # t4g.nano's table (the mocks give it 512 MiB)


@pytest.fixture(scope="module")
def plain_outputs() -> dict[str, Any]:
    from natctl.offline import run_program
    graph = run_program({"aws:region": "us-east-1", "nat-instance-vpc:azCount": "2"},
                        stack="dev")
    outputs: dict[str, Any] = json.loads(json.dumps(graph.exports))  # as the CLI prints them
    return outputs


def put(session: Any, namespace: str, name: str, dimensions: dict[str, str],
        values: list[tuple[float, float]]) -> None:
    """(minutes ago, value) data points."""
    session.client("cloudwatch").put_metric_data(Namespace=namespace, MetricData=[{
        "MetricName": name, "Value": value,
        "Timestamp": NOW - datetime.timedelta(minutes=ago),
        "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()]}
        for ago, value in values])


def nat_metrics(session: Any, outputs: dict[str, Any], zone: str, drops: float = 0,
                connections: float = 1234, last_minutes_ago: float = 2,
                causes: dict[str, float] | None = None) -> None:
    ours = {"NatGroup": outputs["monitoring"]["group"], "AvailabilityZone": zone}
    put(session, "NatInstance", "ActiveConnectionCount", ours,
        [(last_minutes_ago + 10, connections / 2), (last_minutes_ago, connections)])
    put(session, "NatInstance", "PacketsDropCount", ours, [(30, drops), (last_minutes_ago, 0)])
    for cause, value in (causes or {}).items():
        put(session, "NatInstance", cause, ours, [(30, value)])


def ec2_metrics(session: Any, instance: str, bits_per_second: float = 3.2e6,
                credits: float = 144, borrowed: float = 0) -> None:
    sums = bits_per_second * 300 / 8
    for name in ("NetworkIn", "NetworkOut"):
        put(session, "AWS/EC2", name, {"InstanceId": instance}, [(20, sums / 3), (8, sums)])
    put(session, "AWS/EC2", "CPUCreditBalance", {"InstanceId": instance}, [(6, credits)])
    put(session, "AWS/EC2", "CPUSurplusCreditBalance", {"InstanceId": instance},
        [(6, borrowed)])


def healthy(session: Any, outputs: dict[str, Any], zone: str) -> None:
    nat_metrics(session, outputs, zone)
    ec2_metrics(session, outputs["nat_instance_ids"][zone])


def one(aws: Any, outputs: dict[str, Any], zone: str = A) -> Any:
    return next(s for s in status(aws, stack_outputs(outputs, "test"), "test", 24, NOW)
                if s.zone == zone)


def test_within_limits_in_words(aws: Any, plain_outputs: dict[str, Any]) -> None:
    healthy(aws, plain_outputs, A)
    result = one(aws, plain_outputs)
    assert result.ok and result.limits == []
    assert result.summary == (
        "AZ us-east-1a: 10% of baseline bandwidth (busiest 5 minutes of the last hour: 3.2 of "
        "32 Mbit/s); 0 drops in 24 h; 1,234 tracked connections at peak (1% of 131,072); "
        "144 CPU credits. Within limits.")


@pytest.mark.parametrize(("bits_per_second", "words"), [
    (1.5 * NANO_BASELINE, "over its baseline bandwidth: it is spending its burst allowance"),
    (0.85 * NANO_BASELINE, "near its baseline bandwidth (85%)"),
])
def test_bandwidth_near_or_over_the_baseline(aws: Any, plain_outputs: dict[str, Any],
                                            bits_per_second: float, words: str) -> None:
    nat_metrics(aws, plain_outputs, A)
    ec2_metrics(aws, plain_outputs["nat_instance_ids"][A], bits_per_second)
    result = one(aws, plain_outputs)
    assert not result.ok and any(limit.startswith(words) for limit in result.limits)
    assert "a larger instance type" in result.summary


def test_drops_named_by_cause_with_detailed_metrics(aws: Any,
                                                    plain_outputs: dict[str, Any]) -> None:
    outputs = json.loads(json.dumps(plain_outputs))
    outputs["monitoring"]["detailed_metrics"] = True
    nat_metrics(aws, outputs, A, drops=741, causes={"PacketsDropBandwidthOut": 700,
                                                    "PacketsDropPps": 41})
    ec2_metrics(aws, outputs["nat_instance_ids"][A])
    result = one(aws, outputs)
    assert result.limits == ["dropped 741 packets in 24 h (BandwidthOut 700, Pps 41)"]
    assert "741 drops in 24 h" in result.summary


def test_drops_without_detailed_metrics_say_how_to_learn_why(
        aws: Any, plain_outputs: dict[str, Any]) -> None:
    nat_metrics(aws, plain_outputs, A, drops=12)
    ec2_metrics(aws, plain_outputs["nat_instance_ids"][A])
    assert one(aws, plain_outputs).limits == [
        "dropped 12 packets in 24 h (turn on detailedMetrics to see which limit)"]


def test_a_nearly_full_tracking_table(aws: Any, plain_outputs: dict[str, Any]) -> None:
    nat_metrics(aws, plain_outputs, A, connections=0.85 * TABLE)
    ec2_metrics(aws, plain_outputs["nat_instance_ids"][A])
    assert one(aws, plain_outputs).limits == [
        "tracking table 85% full: new connections are dropped when it fills"]


def test_port_allocation_failures_say_to_add_addresses(aws: Any,
                                                      plain_outputs: dict[str, Any]) -> None:
    nat_metrics(aws, plain_outputs, A)
    ec2_metrics(aws, plain_outputs["nat_instance_ids"][A])
    put(aws, "NatInstance", "ErrorPortAllocation",
        {"NatGroup": plain_outputs["monitoring"]["group"], "AvailabilityZone": A},
        [(40, 300), (20, 120)])
    result = one(aws, plain_outputs)
    assert result.limits == [
        "420 new connections failed in 24 h for want of a free source port: a destination "
        "ip:port takes about 64,512 connections through 1 public address. Add public "
        "addresses (publicAddressesPerNat)"]
    assert result.figures["port_allocation_failures"] == 420


def test_cpu_credits_exhausted(aws: Any, plain_outputs: dict[str, Any]) -> None:
    nat_metrics(aws, plain_outputs, A)
    ec2_metrics(aws, plain_outputs["nat_instance_ids"][A], credits=0, borrowed=12.5)
    assert one(aws, plain_outputs).limits == [
        "CPU credits exhausted: borrowing (12.5 surplus credits)"]


def test_a_silent_nat(aws: Any, plain_outputs: dict[str, Any]) -> None:
    nat_metrics(aws, plain_outputs, A, last_minutes_ago=40)
    ec2_metrics(aws, plain_outputs["nat_instance_ids"][A])
    limits = one(aws, plain_outputs).limits
    assert len(limits) == 1 and limits[0].startswith("silent: no metrics for 40 minutes")
    never = one(aws, plain_outputs, B)  # nothing ever published for B
    assert never.limits[0].startswith("silent: no metrics from this NAT at all")
    assert "bandwidth unknown (no EC2 network data yet)" in never.summary


def test_firing_alarms_are_named(aws: Any, plain_outputs: dict[str, Any]) -> None:
    healthy(aws, plain_outputs, A)
    cloudwatch = aws.client("cloudwatch")
    name = plain_outputs["monitoring"]["alarm_names"][A][0]
    cloudwatch.put_metric_alarm(AlarmName=name, MetricName="PacketsDropCount",
                                Namespace="NatInstance", Statistic="Sum", Period=60,
                                EvaluationPeriods=1, Threshold=0,
                                ComparisonOperator="GreaterThanThreshold")
    cloudwatch.set_alarm_state(AlarmName=name, StateValue="ALARM", StateReason="test")
    assert one(aws, plain_outputs).limits == [f"alarms firing: {name}"]


def test_with_high_availability_the_groups_name_the_instances(aws: Any) -> None:
    from natctl.offline import run_program
    graph = run_program({"aws:region": "us-east-1", "nat-instance-vpc:azCount": "1",
                         "nat-instance-vpc:highAvailability": "true"}, stack="ha")
    outputs = json.loads(json.dumps(graph.exports))
    ec2 = aws.client("ec2")
    image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    template = ec2.create_launch_template(LaunchTemplateName="nat", LaunchTemplateData={
        "ImageId": image, "InstanceType": "t4g.nano"})["LaunchTemplate"]["LaunchTemplateId"]
    group = outputs["auto_scaling_group_names"][A]
    aws.client("autoscaling").create_auto_scaling_group(
        AutoScalingGroupName=group, MinSize=1, MaxSize=1, DesiredCapacity=1,
        AvailabilityZones=[A], LaunchTemplate={"LaunchTemplateId": template})
    [instance] = aws.client("autoscaling").describe_auto_scaling_groups(
        AutoScalingGroupNames=[group])["AutoScalingGroups"][0]["Instances"]
    nat_metrics(aws, outputs, A)
    ec2_metrics(aws, instance["InstanceId"], 0.5 * NANO_BASELINE)
    result = one(aws, outputs)
    assert result.ok and "50% of baseline bandwidth" in result.summary
    assert result.figures["instances"] == [instance["InstanceId"]]


def test_the_command_exit_codes_and_json(aws: Any, plain_outputs: dict[str, Any],
                                         tmp_path: Any, capsys: Any) -> None:
    outputs = tmp_path / "outputs.json"
    outputs.write_text(json.dumps(plain_outputs))
    healthy(aws, plain_outputs, A)
    healthy(aws, plain_outputs, B)
    assert main(["status", str(outputs), "--region", "us-east-1"]) == 0
    text = capsys.readouterr().out
    assert text.count("Within limits.") == 2
    nat_metrics(aws, plain_outputs, B, drops=5)
    assert main(["status", str(outputs), "--json", "--region", "us-east-1"]) == 1
    document = json.loads(capsys.readouterr().out)
    assert document["ok"] is False and document["zones"][A]["ok"] is True
    assert document["zones"][B]["limits"][0].startswith("dropped 5 packets")
    assert document["zones"][B]["drops"] == 5


@pytest.mark.parametrize(("change", "message"), [
    (lambda o: o.pop("monitoring"), "has no `monitoring` output: the stack was deployed by a "
                                    "version without metrics"),
    (lambda o: o["monitoring"].update(namespace=""), "monitoring is off in this stack"),
    (lambda o: o.update(connection_table_sizes={}), "connection_table_sizes must map"),
])
def test_bad_outputs_are_refused_before_any_call(aws: Any, plain_outputs: dict[str, Any],
                                                 tmp_path: Any, capsys: Any, change: Any,
                                                 message: str) -> None:
    outputs = json.loads(json.dumps(plain_outputs))
    change(outputs)
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    assert main(["status", str(path), "--region", "us-east-1"]) == 2
    assert message in capsys.readouterr().err


def test_an_hours_window_out_of_range_is_refused(capsys: Any) -> None:
    assert main(["status", "-", "--hours", "0"]) == 2
    assert "--hours 0: out of range" in capsys.readouterr().err


def test_failed_handovers_are_named_with_where_to_look(aws: Any,
                                                     plain_outputs: dict[str, Any]) -> None:
    """keepConnections: the agents' ReplicationErrors (only stacks with it are asked)."""
    nat_metrics(aws, plain_outputs, A)
    ec2_metrics(aws, plain_outputs["nat_instance_ids"][A])
    put(aws, "NatInstance", "ReplicationErrors",
        {"NatGroup": plain_outputs["monitoring"]["group"], "AvailabilityZone": A},
        [(40, 2), (20, 1)])
    assert one(aws, plain_outputs).limits == []  # a stack without keepConnections
    kept = {**plain_outputs, "keep_connections": True}
    result = one(aws, kept)
    assert result.limits == [
        "connection handover failed 3 times in 24 h (conntrackd stopped or its sync link "
        "down, a commit or an Elastic IP move failed): connections moved then may have been "
        "reset. Fix: read the NAT's agent log (`journalctl -u nat-agent`, lines "
        "\"handover:\"); a failed address move is usually IAM or the Elastic IP quota, a "
        "sync link down the NAT security group's UDP 3780-3785 rule (`python -m natctl "
        "verify`)"]
    assert result.figures["replication_errors"] == 3
