"""A printed fix must repair its fault: for each fault class of the verify suite, break a
moto deployment that way, run the `aws …` commands verify prints, and verify again.

The commands run through `aws_cli`, which reads the AWS CLI's syntax (service, operation,
`--kebab-case` options, `--no-flag`) and makes the same API call with boto3: the CLI's
option names are the API's member names in kebab case, so a wrong option name or value is
refused by botocore's own validation, as the CLI would refuse it. A fault whose fix is
`pulumi up --refresh` (no CLI here) must say what the refresh will change; a fault only a
person can fix must say what to do.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Callable
from typing import Any

import pytest

from natctl.verify import CheckResult, stack_outputs
from natctl.verify import verify as verify_stack
from tests.moto_deployment import deploy
from tests.test_verify_faults import deploy_ha

A, B = "us-east-1a", "us-east-1b"
COMMAND = re.compile(r"`(aws [^`]+)`")


def aws_cli(session: Any, command: str) -> Any:
    """Run one AWS CLI command line as the API call it makes."""
    words = shlex.split(command)
    assert words[0] == "aws" and len(words) >= 3, command
    client = session.client(words[1])
    operation = "".join(part.capitalize() for part in words[2].split("-"))
    shape = client.meta.service_model.operation_model(operation).input_shape
    members = {name.lower(): (name, member) for name, member in shape.members.items()}
    params: dict[str, Any] = {}
    rest = words[3:]
    while rest:
        option = rest.pop(0)
        assert option.startswith("--"), (command, option)
        negated = option.startswith("--no-") and option[5:].replace("-", "") in members
        key = (option[5:] if negated else option[2:]).replace("-", "")
        assert key in members, f"{option} is no option of {words[1]} {words[2]}"
        name, member = members[key]
        if member.type_name == "boolean":
            params[name] = not negated
            continue
        if member.type_name == "structure" and set(member.members) == {"Value"} and \
                member.members["Value"].type_name == "boolean":
            params[name] = {"Value": not negated}  # --[no-]source-dest-check and the like
            continue
        values = []
        while rest and not rest[0].startswith("--"):
            values.append(rest.pop(0))
        if member.type_name == "list":
            params[name] = values
        elif member.type_name == "integer":
            params[name] = int(values[0])
        elif member.type_name == "structure" and set(member.members) == {"Value"}:
            params[name] = {"Value": values[0]}  # the CLI's shorthand for AttributeValue
        else:
            params[name] = values[0]
    return getattr(client, re.sub(r"(?<!^)(?=[A-Z])", "_", operation).lower())(**params)


def says_what_a_refresh_changes(detail: str) -> bool:
    return all(re.match(r" (\(it [a-z]|restores )", rest)
               for rest in detail.split("`pulumi up --refresh`")[1:])


def verify(session: Any, outputs: dict[str, Any]) -> list[CheckResult]:
    return verify_stack(session, stack_outputs(outputs, "test outputs"))


# --- the faults ----------------------------------------------------------------------------------
def source_dest_on(session: Any, outputs: dict[str, Any]) -> None:
    session.client("ec2").modify_instance_attribute(
        InstanceId=outputs["nat_instance_ids"][A], SourceDestCheck={"Value": True})


def imdsv1(session: Any, outputs: dict[str, Any]) -> None:
    session.client("ec2").modify_instance_metadata_options(
        InstanceId=outputs["nat_instance_ids"][A], HttpTokens="optional")


def nat_stopped(session: Any, outputs: dict[str, Any]) -> None:
    session.client("ec2").stop_instances(InstanceIds=[outputs["nat_instance_ids"][A]])


def gateway_detached(session: Any, outputs: dict[str, Any]) -> None:
    session.client("ec2").detach_internet_gateway(
        InternetGatewayId=outputs["internet_gateway_id"], VpcId=outputs["vpc_id"])


def private_association(ec2: Any, outputs: dict[str, Any]) -> str:
    """AZ a's private subnet's association with its route table."""
    subnet = outputs["private_subnet_ids"][A]
    table = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id",
                                                "Values": [subnet]}])["RouteTables"][0]
    return str(next(a["RouteTableAssociationId"] for a in table["Associations"]
                    if a.get("SubnetId") == subnet))


def private_subnet_on_the_public_table(session: Any, outputs: dict[str, Any]) -> None:
    ec2 = session.client("ec2")
    ec2.replace_route_table_association(AssociationId=private_association(ec2, outputs),
                                        RouteTableId=outputs["public_route_table_id"])


def private_subnet_on_the_main_table(session: Any, outputs: dict[str, Any]) -> None:
    ec2 = session.client("ec2")
    ec2.disassociate_route_table(AssociationId=private_association(ec2, outputs))


def second_group_on_the_nat(session: Any, outputs: dict[str, Any]) -> None:
    ec2 = session.client("ec2")
    other = ec2.create_security_group(GroupName="extra", Description="extra",
                                      VpcId=outputs["vpc_id"])["GroupId"]
    instance = ec2.describe_instances(InstanceIds=[outputs["nat_instance_ids"][A]])[
        "Reservations"][0]["Instances"][0]
    ec2.modify_network_interface_attribute(
        NetworkInterfaceId=instance["NetworkInterfaces"][0]["NetworkInterfaceId"],
        Groups=[outputs["security_group_id"], other])


def ha_route_deleted(session: Any, outputs: dict[str, Any]) -> None:
    session.client("ec2").delete_route(RouteTableId=outputs["private_route_table_ids"][A],
                                       DestinationCidrBlock="0.0.0.0/0")


def ha_route_replaced_elsewhere(session: Any, outputs: dict[str, Any]) -> None:
    ec2 = session.client("ec2")
    stray = ec2.create_network_interface(
        SubnetId=outputs["public_subnet_ids"][A])["NetworkInterface"]["NetworkInterfaceId"]
    ec2.replace_route(RouteTableId=outputs["private_route_table_ids"][A],
                      DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=stray)


def ha_group_scaled_to_zero(session: Any, outputs: dict[str, Any]) -> None:
    groups = session.client("autoscaling")
    name = outputs["auto_scaling_group_names"][A]
    instance = groups.describe_auto_scaling_groups(AutoScalingGroupNames=[name])[
        "AutoScalingGroups"][0]["Instances"][0]["InstanceId"]
    groups.update_auto_scaling_group(AutoScalingGroupName=name, MinSize=0, MaxSize=0,
                                     DesiredCapacity=0)
    session.client("ec2").terminate_instances(InstanceIds=[instance])


def ha_nat_off_its_interface(session: Any, outputs: dict[str, Any]) -> None:
    """AZ a's NAT runs, but not on the stack's interface (relaunched without it), and the
    route names that interface, which no instance holds: pointing the route back there
    would repair nothing."""
    ec2 = session.client("ec2")
    free = ec2.create_network_interface(
        SubnetId=outputs["public_subnet_ids"][A])["NetworkInterface"]["NetworkInterfaceId"]
    outputs["nat_network_interface_ids"][A] = free
    ec2.replace_route(RouteTableId=outputs["private_route_table_ids"][A],
                      DestinationCidrBlock="0.0.0.0/0", NetworkInterfaceId=free)


FAULTS: dict[str, tuple[bool, Callable[[Any, dict[str, Any]], None]]] = {
    "source/dest check on": (False, source_dest_on),
    "IMDSv1 allowed": (False, imdsv1),
    "NAT stopped": (False, nat_stopped),
    "internet gateway detached": (False, gateway_detached),
    "private subnet on the public table": (False, private_subnet_on_the_public_table),
    "private subnet on the main table": (False, private_subnet_on_the_main_table),
    "a second security group on the NAT": (False, second_group_on_the_nat),
    "HA: route deleted": (True, ha_route_deleted),
    "HA: route to an interface of no NAT": (True, ha_route_replaced_elsewhere),
    "HA: group scaled to 0": (True, ha_group_scaled_to_zero),
    "HA: NAT relaunched off its interface": (True, ha_nat_off_its_interface),
}


@pytest.mark.parametrize("fault", FAULTS)
def test_the_printed_fix_repairs_the_fault(aws: Any, fault: str) -> None:
    high_availability, inject = FAULTS[fault]
    outputs = deploy_ha(aws) if high_availability else deploy(aws.client("ec2"))
    assert all(r.passed for r in verify(aws, outputs))
    inject(aws, outputs)
    broken = [r for r in verify(aws, outputs) if not r.passed]
    assert broken, f"{fault}: verify found nothing"
    for result in broken:  # a refresh offered says what it will change
        assert says_what_a_refresh_changes(result.detail), result.detail
    commands = [c for r in broken for c in COMMAND.findall(r.detail.split("Fix:", 1)[-1])
                if c.startswith("aws ")]
    assert commands, [r.detail for r in broken]
    for command in dict.fromkeys(commands):  # each once, in the order printed
        aws_cli(aws, command)
    after = verify(aws, outputs)
    if fault == "HA: NAT relaunched off its interface":
        # the route now leads to a NAT that is there (another AZ's, degraded), not back to
        # the dead interface; the NAT itself is the outputs' edit, not the route's to mend
        route = next(r for r in after if (r.zone, r.check) == (A, "private route → NAT in "
                                                                   "its AZ"))
        assert route.passed and route.degraded, route.detail
        assert outputs["nat_network_interface_ids"][A] not in " ".join(commands)
        return
    if fault == "HA: group scaled to 0":
        # moto launches the group's instance from its template but does not put it on the
        # AZ's interface (AWS does, as the stack's launch template says: device 0 is the
        # interface): what depends on that is not moto's to show. The group is back to one
        # instance, running.
        assert next(r for r in after if (r.zone, r.check) == (A, "NAT instance running")
                    ).passed
        return
    still = [r.detail for r in after if not r.passed]
    assert still == [], (fault, commands, still)


def test_a_refresh_says_what_it_will_change(aws: Any) -> None:
    """Where only Pulumi can put the stack back, the fix says what `pulumi up --refresh`
    changes."""
    ec2 = aws.client("ec2")
    outputs = deploy(ec2)
    ec2.delete_route(RouteTableId=outputs["private_route_table_ids"][A],
                     DestinationCidrBlock="0.0.0.0/0")
    ec2.terminate_instances(InstanceIds=[outputs["nat_instance_ids"][B]])
    ec2.detach_internet_gateway(InternetGatewayId=outputs["internet_gateway_id"],
                                VpcId=outputs["vpc_id"])
    refreshes = [r.detail for r in verify(aws, outputs)
                 if not r.passed and "`pulumi up --refresh`" in r.detail]
    assert len(refreshes) >= 3
    for detail in refreshes:
        assert says_what_a_refresh_changes(detail), detail
    assert not says_what_a_refresh_changes("Fix: `pulumi up --refresh`. Then")
