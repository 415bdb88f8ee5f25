"""`verify` against faults a stranger's stack can have and its own tests never build (moto),
against outputs documents of every bad shape, and with high availability.

Every message is read as a person would: each failing check names the AZ, the resource, the
cause and the command that repairs it; no "None", no raw structures.
"""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from natctl import cli_aws
from natctl.__main__ import main
from natctl.verify import CheckResult, stack_outputs
from natctl.verify import verify as verify_stack
from tests.moto_deployment import REGION, any_image, deploy

A, B = f"{REGION}a", f"{REGION}b"
STACK = "(stack)"


@pytest.fixture
def deployed(aws: Any) -> tuple[Any, Any, dict[str, Any]]:
    ec2 = aws.client("ec2")
    return aws, ec2, deploy(ec2)


@pytest.fixture(scope="module")
def good_outputs() -> dict[str, Any]:
    """A correct deployment's outputs (for tests that never reach AWS)."""
    import boto3
    from moto import mock_aws
    with mock_aws():
        outputs: dict[str, Any] = deploy(boto3.client(
            "ec2", region_name=REGION, aws_access_key_id="testing",
            aws_secret_access_key="testing"))
    return outputs


def readable(detail: str) -> None:
    assert "None" not in detail and "{'" not in detail and "[{" not in detail, detail
    assert not re.search(r"\bnot (\S+)\b.*\bgoes to \1\b", detail), detail


def failures(session: Any, outputs: dict[str, Any]) -> dict[tuple[str, str], str]:
    results = verify_stack(session, stack_outputs(outputs, "test outputs"))
    for result in results:
        readable(result.detail)
    return {(r.zone, r.check): r.detail for r in results if not r.passed}


def own_acl(ec2: Any, outputs: dict[str, Any], subnet: str,
            entries: list[dict[str, Any]]) -> str:
    """A custom network ACL, associated with `subnet` alone."""
    acl = ec2.create_network_acl(VpcId=outputs["vpc_id"])["NetworkAcl"]["NetworkAclId"]
    for item in entries:
        ec2.create_network_acl_entry(NetworkAclId=acl, **item)
    association: str = next(
        a["NetworkAclAssociationId"] for found in ec2.describe_network_acls(Filters=[
            {"Name": "association.subnet-id", "Values": [subnet]}])["NetworkAcls"]
        for a in found["Associations"] if a["SubnetId"] == subnet)
    ec2.replace_network_acl_association(AssociationId=association, NetworkAclId=acl)
    return str(acl)


def allow_all(number: int = 100) -> list[dict[str, Any]]:
    return [{"RuleNumber": number, "Protocol": "-1", "RuleAction": "allow", "Egress": egress,
             "CidrBlock": "0.0.0.0/0"} for egress in (True, False)]


# --- network ACLs -----------------------------------------------------------------------------
def test_a_public_subnet_acl_denying_https_out(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    public = outputs["public_subnet_ids"][A]
    acl = own_acl(ec2, outputs, public, [
        {"RuleNumber": 90, "Protocol": "6", "RuleAction": "deny", "Egress": True,
         "CidrBlock": "0.0.0.0/0", "PortRange": {"From": 443, "To": 443}}, *allow_all()])
    found = failures(session, outputs)
    assert list(found) == [(A, "network ACL of the public subnet")]  # B's subnet: its own ACL
    assert found[(A, "network ACL of the public subnet")].startswith(
        f"{acl} on public subnet {public} blocks outbound TCP port 443 to 0.0.0.0/0 (the NAT "
        "to the internet): rule 90 denies it. NACLs are stateless")
    assert f"aws ec2 create-network-acl-entry --network-acl-id {acl}" in \
        found[(A, "network ACL of the public subnet")]


def test_a_private_subnet_acl_without_the_replies(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    private = outputs["private_subnet_ids"][B]
    own_acl(ec2, outputs, private, [
        {"RuleNumber": 100, "Protocol": "-1", "RuleAction": "allow", "Egress": True,
         "CidrBlock": "0.0.0.0/0"}])
    found = failures(session, outputs)
    assert list(found) == [(B, "network ACL of the private subnet")]
    assert "blocks inbound TCP ports 1024-65535 from 0.0.0.0/0 (replies from the internet): " \
        "no rule allows it (the final * rule denies)" in found[(B, "network ACL of the private "
                                                                "subnet")]


def test_the_nat_subnet_must_take_the_private_hosts_traffic(
        deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    public = outputs["public_subnet_ids"][A]
    own_acl(ec2, outputs, public, [
        {"RuleNumber": 50, "Protocol": "-1", "RuleAction": "deny", "Egress": False,
         "CidrBlock": "10.0.128.0/17"}, *allow_all()])
    detail = failures(session, outputs)[(A, "network ACL of the public subnet")]
    for cidr in (outputs["private_subnet_cidrs"][A], outputs["private_subnet_cidrs"][B]):
        assert f"inbound TCP port 443 from {cidr} (private hosts' traffic to the NAT, port 443)" \
               ": rule 50 denies it" in detail


def test_a_block_list_of_a_few_addresses_is_fine(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    own_acl(ec2, outputs, outputs["public_subnet_ids"][A], [
        {"RuleNumber": 10, "Protocol": "-1", "RuleAction": "deny", "Egress": egress,
         "CidrBlock": "203.0.113.0/24"} for egress in (True, False)] + allow_all())
    assert failures(session, outputs) == {}


# --- security groups, gateway, associations ---------------------------------------------------
def test_a_second_group_on_the_nat_is_named_with_its_rules(
        deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    wide = ec2.create_security_group(GroupName="debug", Description="debug",
                                     VpcId=outputs["vpc_id"])["GroupId"]
    ec2.authorize_security_group_ingress(GroupId=wide, IpPermissions=[
        {"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    nat = outputs["nat_instance_ids"][A]
    ec2.modify_instance_attribute(InstanceId=nat, Groups=[outputs["security_group_id"], wide])
    found = failures(session, outputs)
    assert list(found) == [(A, "security groups: only the stack's")]
    detail = found[(A, "security groups: only the stack's")]
    assert f"besides {outputs['security_group_id']}, the NAT has {wide} (" in detail
    assert "inbound all traffic from 0.0.0.0/0" in detail
    assert f"--groups {outputs['security_group_id']}" in detail


def test_a_detached_internet_gateway(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    igw, vpc = outputs["internet_gateway_id"], outputs["vpc_id"]
    ec2.detach_internet_gateway(InternetGatewayId=igw, VpcId=vpc)
    found = failures(session, outputs)
    assert set(found) == {(STACK, "internet gateway attached"),
                          (A, "public route → internet gateway"),
                          (B, "public route → internet gateway")}
    assert f"aws ec2 attach-internet-gateway --internet-gateway-id {igw} --vpc-id {vpc}" in \
        found[(STACK, "internet gateway attached")]
    assert f"goes to {igw}, which is not attached to {vpc}: the route is a blackhole" in \
        found[(A, "public route → internet gateway")]


def test_a_private_subnet_moved_to_the_public_table(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    private = outputs["private_subnet_ids"][A]
    association = next(a["RouteTableAssociationId"] for t in ec2.describe_route_tables(
        RouteTableIds=[outputs["private_route_table_ids"][A]])["RouteTables"]
        for a in t["Associations"] if a.get("SubnetId") == private)
    moved = ec2.replace_route_table_association(
        AssociationId=association, RouteTableId=outputs["public_route_table_id"])[
        "NewAssociationId"]
    found = failures(session, outputs)
    assert list(found) == [(A, "private route → NAT in its AZ")]
    assert found[(A, "private route → NAT in its AZ")] == (
        f"private subnet {private} is associated with {outputs['public_route_table_id']} (the "
        f"public route table), not the stack's {outputs['private_route_table_ids'][A]}. Fix: "
        f"associate it back: `aws ec2 replace-route-table-association --association-id {moved} "
        f"--route-table-id {outputs['private_route_table_ids'][A]}`, or `pulumi up --refresh` "
        f"(it associates the subnet with {outputs['private_route_table_ids'][A]} again)")


def test_a_private_subnet_on_the_main_table(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    private = outputs["private_subnet_ids"][B]
    association = next(a["RouteTableAssociationId"] for t in ec2.describe_route_tables(
        RouteTableIds=[outputs["private_route_table_ids"][B]])["RouteTables"]
        for a in t["Associations"] if a.get("SubnetId") == private)
    ec2.disassociate_route_table(AssociationId=association)
    detail = failures(session, outputs)[(B, "private route → NAT in its AZ")]
    assert "no table of its own (the VPC's main table applies)" in detail
    assert f"aws ec2 associate-route-table --route-table-id " \
           f"{outputs['private_route_table_ids'][B]} --subnet-id {private}" in detail


def test_drift_is_repaired_with_a_refresh(deployed: tuple[Any, Any, Any]) -> None:
    session, ec2, outputs = deployed
    ec2.delete_route(RouteTableId=outputs["private_route_table_ids"][A],
                     DestinationCidrBlock="0.0.0.0/0")
    detail = failures(session, outputs)[(A, "private route → NAT in its AZ")]
    assert detail.endswith("Fix: `pulumi up --refresh` (it creates 0.0.0.0/0 → "
                           f"{outputs['nat_network_interface_ids'][A]})")


# --- the outputs document -----------------------------------------------------------------------
class NoAws:
    """A session that fails the test if anything asks AWS."""

    region_name = REGION

    def client(self, *_: Any, **__: Any) -> Any:
        raise AssertionError("an AWS call was made for bad outputs")


def run_cli(tmp_path: Path, document: Any, monkeypatch: pytest.MonkeyPatch,
            capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    monkeypatch.setattr(cli_aws, "make_session", lambda _: NoAws())
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(document))
    code = main(["verify", str(path)])
    captured = capsys.readouterr()
    return code, captured.err + captured.out


def edit(outputs: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    changed = copy.deepcopy(outputs)
    *parents, leaf = path.split(".")
    target = changed
    for key in parents:
        target = target[key]
    if value is DELETE:
        del target[leaf]
    else:
        target[leaf] = value
    return changed


DELETE = object()


@pytest.mark.parametrize(("path", "value", "message"), [
    ("private_subnet_ids.us-east-1b", DELETE,
     "private_subnet_ids: no entry for us-east-1b: every map must cover the same AZs"),
    ("vpc_id", "10.0.0.0/16", 'vpc_id: "10.0.0.0/16" is not a VPC id (vpc-…)'),
    ("security_group_id", "subnet-0123456789abcdef0",
     'security_group_id: "subnet-0123456789abcdef0" is not a security group id (sg-…)'),
    ("nat_instance_ids.us-east-1a", "i-xyz",
     'nat_instance_ids.us-east-1a: "i-xyz" is not an instance id (i-…)'),
    ("private_subnet_cidrs.us-east-1a", "10.0.128.0/33",
     'private_subnet_cidrs.us-east-1a: "10.0.128.0/33" is not an IPv4 CIDR'),
    ("private_subnet_cidrs.us-east-1a", "10.0.128.1/20",
     'private_subnet_cidrs.us-east-1a: "10.0.128.1/20" is not an IPv4 CIDR'),
    ("ssh_cidr", "my office", 'ssh_cidr: "my office" is not an IPv4 CIDR'),
    ("public_subnet_ids", ["subnet-0123456789abcdef0"],
     'public_subnet_ids: ["subnet-0123456789abcdef0"] is not a map of AZ → value'),
    ("availability_zones", [], "availability_zones: [] is not a non-empty list of AZ names"),
    ("nat_public_ips.us-east-1a", "not an address",
     'nat_public_ips.us-east-1a: "not an address" is not an IPv4 address'),
    ("elastic_ips", "yes", 'elastic_ips: "yes" is not true or false'),
    ("nat_zone_for_private_subnet.us-east-1a", "us-east-1z",
     'nat_zone_for_private_subnet.us-east-1a: "us-east-1z" is not one of availability_zones'),
    ("internet_gateway_id", None, "internet_gateway_id: null is not an internet gateway id"),
])
def test_bad_outputs_exit_2_naming_the_key_before_any_aws_call(
        good_outputs: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], path: str, value: Any, message: str) -> None:
    code, text = run_cli(tmp_path, edit(good_outputs, path, value), monkeypatch, capsys)
    assert code == 2, text
    assert message in text
    assert "Traceback" not in text


def test_every_problem_is_listed_at_once(good_outputs: dict[str, Any], tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    broken = edit(edit(good_outputs, "vpc_id", "vpc-1"), "private_route_table_ids.us-east-1a",
                  "rtb")
    code, text = run_cli(tmp_path, broken, monkeypatch, capsys)
    assert code == 2 and "(2 problems)" in text
    assert "vpc_id:" in text and "private_route_table_ids.us-east-1a:" in text


def test_outputs_of_version_0_1_still_verify(deployed: tuple[Any, Any, Any]) -> None:
    """0.1 stacks had no nat_zone_for_private_subnet, interfaces or HA flag."""
    session, _, outputs = deployed
    old = {k: v for k, v in outputs.items() if k not in (
        "nat_zone_for_private_subnet", "nat_network_interface_ids", "high_availability")}
    assert failures(session, old) == {}


# --- high availability ------------------------------------------------------------------------
def deploy_ha(session: Any) -> dict[str, Any]:
    """The plain deployment turned into the HA shape: each NAT in a group of one, on the
    interface its routes name."""
    ec2, groups = session.client("ec2"), session.client("autoscaling")
    outputs = deploy(ec2)
    outputs["high_availability"] = True
    outputs["auto_scaling_group_names"] = {}
    template = ec2.create_launch_template(LaunchTemplateName="nat", LaunchTemplateData={
        "ImageId": any_image(ec2), "InstanceType": "t4g.nano"})["LaunchTemplate"][
        "LaunchTemplateId"]
    for zone in (A, B):
        name = f"nat-{zone}"
        groups.create_auto_scaling_group(
            AutoScalingGroupName=name, MinSize=0, MaxSize=1, DesiredCapacity=0,
            AvailabilityZones=[zone], LaunchTemplate={"LaunchTemplateId": template})
        groups.attach_instances(InstanceIds=[outputs["nat_instance_ids"][zone]],
                                AutoScalingGroupName=name)
        outputs["auto_scaling_group_names"][zone] = name
    outputs["nat_instance_ids"] = {}
    outputs["nat_for_private_subnet"] = {}
    for protocol in ("udp", "tcp"):  # the status exchange; a silent agent's kernel
        admit_within_group(ec2, outputs["security_group_id"], protocol, 7654, 7654)
    return outputs


def admit_within_group(ec2: Any, group: str, protocol: str, first: int, last: int) -> None:
    """The NAT security group's rule pair that admits itself (in and out) on ports."""
    permission = [{"IpProtocol": protocol, "FromPort": first, "ToPort": last,
                   "UserIdGroupPairs": [{"GroupId": group}]}]
    ec2.authorize_security_group_ingress(GroupId=group, IpPermissions=permission)
    ec2.authorize_security_group_egress(GroupId=group, IpPermissions=permission)


def results_ha(session: Any, outputs: dict[str, Any]) -> dict[tuple[str, str], CheckResult]:
    results = verify_stack(session, stack_outputs(outputs, "test outputs"))
    for result in results:
        readable(result.detail)
    return {(r.zone, r.check): r for r in results}


def test_ha_nats_are_found_from_their_groups(aws: Any) -> None:
    outputs = deploy_ha(aws)
    found = results_ha(aws, outputs)
    assert all(r.passed and not r.degraded for r in found.values()), \
        [r.detail for r in found.values() if not r.passed]
    assert (A, "NAT instance running") in found and (B, "source/dest check off") in found


def test_a_failed_over_az_is_degraded_not_broken(aws: Any) -> None:
    outputs = deploy_ha(aws)
    aws.client("ec2").replace_route(
        RouteTableId=outputs["private_route_table_ids"][A], DestinationCidrBlock="0.0.0.0/0",
        NetworkInterfaceId=outputs["nat_network_interface_ids"][B])
    found = results_ha(aws, outputs)
    route = found[(A, "private route → NAT in its AZ")]
    assert route.passed and route.degraded and route.status == "DEGRADED"
    assert route.detail.startswith(f"failed over, degraded: 0.0.0.0/0 in "
                                   f"{outputs['private_route_table_ids'][A]} goes to the NAT "
                                   f"in {B}, not {A}'s")


def test_an_empty_group_and_a_missing_group(aws: Any) -> None:
    outputs = deploy_ha(aws)
    groups = aws.client("autoscaling")
    groups.detach_instances(InstanceIds=[next(
        i["InstanceId"] for g in groups.describe_auto_scaling_groups(
            AutoScalingGroupNames=[f"nat-{A}"])["AutoScalingGroups"] for i in g["Instances"])],
        AutoScalingGroupName=f"nat-{A}", ShouldDecrementDesiredCapacity=True)
    outputs["auto_scaling_group_names"][B] = "nat-gone"
    found = results_ha(aws, outputs)
    # its one instance taken out and the capacity with it: nothing will be launched
    assert found[(A, "NAT instance running")].detail == (
        f"Auto Scaling group nat-{A} was scaled to 0 (min 0, max 1, desired 0): it launches "
        f"nothing. Fix: `aws autoscaling update-auto-scaling-group --auto-scaling-group-name "
        f"nat-{A} --min-size 1 --max-size 1 --desired-capacity 1`, or `pulumi up --refresh` "
        "(it sets the group back to one instance)")
    assert found[(B, "NAT instance running")].detail == (
        "Auto Scaling group nat-gone does not exist. Fix: `pulumi up --refresh` (it creates "
        "the group again, which launches the AZ's NAT on its interface)")


def test_the_cli_reports_degraded_and_still_passes(aws: Any, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    outputs = deploy_ha(aws)
    aws.client("ec2").replace_route(
        RouteTableId=outputs["private_route_table_ids"][B], DestinationCidrBlock="0.0.0.0/0",
        NetworkInterfaceId=outputs["nat_network_interface_ids"][A])
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(outputs))
    assert main(["verify", str(path), "--region", REGION]) == 0
    text = capsys.readouterr().out
    assert "DEGRADED" in text and text.rstrip().endswith(", 1 degraded (failed over)")


# --- no input crashes it ----------------------------------------------------------------------
JUNK = st.recursive(st.none() | st.booleans() | st.integers(-5, 70000) |
                    st.floats(allow_nan=False) | st.text(max_size=30) |
                    st.sampled_from(["us-east-1a", "10.0.0.0/16", "vpc-0123456789abcdef0",
                                     "i-0123456789abcdef0", "subnet-0123456789abcdef0", ""]),
                    lambda inner: st.lists(inner, max_size=3) |
                    st.dictionaries(st.text(max_size=12), inner, max_size=3), max_leaves=8)


def mutations(outputs: dict[str, Any]) -> st.SearchStrategy[Any]:
    """The deployed stack's outputs with up to four edits: a key deleted, replaced with junk,
    or a value inside a per-AZ map replaced; or a document that is junk through and through."""
    keys = sorted(outputs)

    @st.composite
    def edited(draw: st.DrawFn) -> Any:
        document = copy.deepcopy(outputs)
        for _ in range(draw(st.integers(1, 4))):
            key = draw(st.sampled_from(keys))
            action = draw(st.sampled_from(["delete", "replace", "inner"]))
            if action == "delete":
                document.pop(key, None)
            elif action == "inner" and isinstance(document.get(key), dict) and document[key]:
                inner = draw(st.sampled_from(sorted(document[key])))
                document[key][inner] = draw(JUNK)
            else:
                document[key] = draw(JUNK)
        return document
    return edited() | JUNK


@settings(max_examples=120, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_no_outputs_document_crashes_verify_or_status(
        deployed: tuple[Any, Any, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str],
        data: st.DataObject) -> None:
    outputs = dict(deployed[2], monitoring={
        "namespace": "NatInstance", "group": "p/s/nat", "detailed_metrics": False,
        "instance_type": "t4g.nano", "alarm_names": {}},
        connection_table_sizes={A: 131072, B: 131072})
    document = data.draw(mutations(outputs))
    command = data.draw(st.sampled_from(["verify", "status"]))
    path = tmp_path / "outputs.json"
    path.write_text(json.dumps(document))
    code = main([command, str(path), "--region", REGION])  # an exception fails the test
    captured = capsys.readouterr()
    assert code in (0, 1, 2)
    assert (captured.err if code == 2 else captured.out).strip()
    if code == 2:
        assert captured.err.startswith("error: ") and "Fix:" in captured.err
    for line in captured.out.splitlines():
        readable(line)
