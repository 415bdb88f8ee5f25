"""The agent's AWS side (its own signed Query API client) against moto_server: each action it
takes, and that nothing outside the stack is touched.

moto differs from AWS where noted; those differences are modelled in the namespace test bed
(testbed/ha.py), not here.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from nat.instance.agent import Agent, AwsError, Change, Credentials, Metadata, Settings, decide
from nat.instance.agent import Aws as AgentAws

REGION = "us-east-1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def aws(endpoint: str, monkeypatch: pytest.MonkeyPatch) -> AgentAws:
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    return AgentAws(REGION, Credentials(Metadata("http://127.0.0.1:9")))


def client(endpoint: str, service: str) -> Any:
    return boto3.client(service, region_name=REGION, endpoint_url=endpoint,  # type: ignore[call-overload]
                        aws_access_key_id="testing", aws_secret_access_key="testing")


@pytest.fixture
def stack(endpoint: str) -> dict[str, Any]:
    """Two AZs as the component makes them, plus a route table that is not the stack's."""
    ec2, groups = client(endpoint, "ec2"), client(endpoint, "autoscaling")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    image = ec2.describe_images(Owners=["amazon"], Filters=[
        {"Name": "name", "Values": ["al2023*"]}])["Images"][0]["ImageId"]
    made: dict[str, Any] = {"vpc": vpc, "eni": {}, "table": {}, "group": {}, "eip": {}}
    for index, zone in enumerate(("us-east-1a", "us-east-1b")):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{16 * index}.0/20",
                                   AvailabilityZone=zone)["Subnet"]["SubnetId"]
        eni = ec2.create_network_interface(SubnetId=subnet)["NetworkInterface"]
        made["eni"][zone] = eni["NetworkInterfaceId"]
        allocation = ec2.allocate_address(Domain="vpc")
        ec2.associate_address(AllocationId=allocation["AllocationId"],
                              NetworkInterfaceId=eni["NetworkInterfaceId"])
        made["eip"][zone] = allocation["PublicIp"]
        table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.create_route(RouteTableId=table, DestinationCidrBlock="0.0.0.0/0",
                         NetworkInterfaceId=eni["NetworkInterfaceId"])
        made["table"][zone] = table
        template = ec2.create_launch_template(
            LaunchTemplateName=f"lt-{vpc}-{zone}",
            LaunchTemplateData={"ImageId": image, "InstanceType": "t4g.nano"})["LaunchTemplate"]
        name = f"asg-{vpc}-{zone}"
        groups.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=1, MaxSize=1, DesiredCapacity=1,
            VPCZoneIdentifier=subnet,
            LaunchTemplate={"LaunchTemplateId": template["LaunchTemplateId"], "Version": "1"},
            Tags=[{"Key": "nat-instance-vpc:release", "Value": "abc", "ResourceId": name,
                   "ResourceType": "auto-scaling-group", "PropagateAtLaunch": False}])
        made["group"][zone] = name
        instance = groups.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
            "AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
        ec2.attach_network_interface(NetworkInterfaceId=eni["NetworkInterfaceId"],
                                     InstanceId=instance, DeviceIndex=1)
    # someone else's table in the same VPC, pointing at the same NAT interface
    other = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_route(RouteTableId=other, DestinationCidrBlock="0.0.0.0/0",
                     NetworkInterfaceId=made["eni"]["us-east-1a"])
    made["other_table"] = other
    return made


def default_route(endpoint: str, table: str) -> dict[str, Any]:
    routes = client(endpoint, "ec2").describe_route_tables(RouteTableIds=[table])[
        "RouteTables"][0]["Routes"]
    return next(r for r in routes if r.get("DestinationCidrBlock") == "0.0.0.0/0")


def test_reads_route_targets(aws: AgentAws, stack: dict[str, Any]) -> None:
    found = aws.route_targets(list(stack["table"].values()))
    assert found == {stack["table"][z]: (stack["eni"][z], "active") for z in stack["table"]}


def test_a_failover_replaces_the_route_and_touches_nothing_else(
        aws: AgentAws, stack: dict[str, Any], endpoint: str) -> None:
    """The route of AZ a to AZ b's interface; the other table and the addresses stay."""
    ec2 = client(endpoint, "ec2")
    addresses_before = ec2.describe_addresses()["Addresses"]
    settings = Settings(region=REGION, targets=[], failback_after=60,
                        nats={z: {"eni": e, "address": "x"} for z, e in stack["eni"].items()},
                        route_tables={t: z for z, t in stack["table"].items()})
    view_routes = {t: z for z, t in stack["table"].items()}
    changes = decide(_view("us-east-1b", settings, view_routes, {"us-east-1a": False}))
    assert changes == [Change(stack["table"]["us-east-1a"], "us-east-1b",
                              "the NAT in us-east-1a does not answer")]
    for change in changes:
        aws.replace_route(change.route_table, settings.nats[change.target]["eni"])
    assert default_route(endpoint, stack["table"]["us-east-1a"])["NetworkInterfaceId"] == \
        stack["eni"]["us-east-1b"]
    assert default_route(endpoint, stack["table"]["us-east-1b"])["NetworkInterfaceId"] == \
        stack["eni"]["us-east-1b"]
    assert default_route(endpoint, stack["other_table"])["NetworkInterfaceId"] == \
        stack["eni"]["us-east-1a"]
    # no address moved: each AZ's Elastic IP stays on its own interface
    assert ec2.describe_addresses()["Addresses"] == addresses_before


def _view(me: str, settings: Settings, routes: dict[str, str],
          down: dict[str, bool]) -> Any:
    from nat.instance.agent import View
    order = settings.order
    reachable = {z: z not in down for z in order}
    return View(me=me, order=order, healthy={z: reachable[z] for z in order},
                reachable=reachable, sees_me=dict.fromkeys(order, True), routes=dict(routes),
                owners=dict(settings.route_tables), failback_after=60,
                dead={z: z in down for z in order})


def test_asks_the_group_for_a_new_instance_at_once(aws: AgentAws, stack: dict[str, Any],
                                                   endpoint: str) -> None:
    groups = client(endpoint, "autoscaling")
    group = stack["group"]["us-east-1a"]
    instance = groups.describe_auto_scaling_groups(AutoScalingGroupNames=[group])[
        "AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    assert aws.group_instance(instance) == {"group": group, "health": "Healthy"}
    aws.set_unhealthy(instance)
    # moto only records the flag (AWS replaces the instance; the test bed models that)
    assert aws.group_instance(instance)["health"] == "Unhealthy"
    other = stack["group"]["us-east-1b"]
    assert all(i["HealthStatus"] == "Healthy" for i in groups.describe_auto_scaling_groups(
        AutoScalingGroupNames=[other])["AutoScalingGroups"][0]["Instances"])


def test_reads_the_release_its_group_wants(aws: AgentAws, stack: dict[str, Any]) -> None:
    assert aws.group_tag(stack["group"]["us-east-1a"], "nat-instance-vpc:release") == "abc"
    assert aws.group_tag(stack["group"]["us-east-1a"], "absent") == ""


def test_tells_whether_a_nat_is_gone(aws: AgentAws, stack: dict[str, Any],
                                     endpoint: str) -> None:
    eni = stack["eni"]["us-east-1a"]
    instance = aws.interface_instance(eni)
    assert instance is not None and aws.instance_state(instance) == "running"
    client(endpoint, "ec2").terminate_instances(InstanceIds=[instance])
    assert aws.instance_state(instance) in ("shutting-down", "terminated")


def test_an_api_error_is_named(aws: AgentAws) -> None:
    with pytest.raises(AwsError) as raised:
        aws.replace_route("rtb-0000000000000dead", "eni-0000000000000beef")
    assert raised.value.code.startswith("InvalidRouteTableID") or "NotFound" in raised.value.code


def test_the_agent_needs_its_own_address_among_the_nats(monkeypatch: pytest.MonkeyPatch) -> None:
    class Probe:
        @staticmethod
        def primary() -> tuple[str, str]:
            return "ens5", "10.9.9.9/20"

    class NoMetadata:
        def get(self, _: str) -> str:
            return "i-0123456789abcdef0"

    settings = Settings(region=REGION, targets=[], route_tables={}, failback_after=60,
                        nats={"us-east-1a": {"eni": "eni-1", "address": "10.0.0.10"}})
    with pytest.raises(SystemExit, match=r"my address 10\.9\.9\.9 is none of the NATs'"):
        Agent(settings, None, NoMetadata(), Probe())  # type: ignore[arg-type]
