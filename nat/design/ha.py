"""High availability: what the NAT agents are told, and all they are allowed to do (pure).

The agents (nat/instance/agent.py) move this stack's private route tables between this stack's NAT
interfaces and ask this stack's Auto Scaling groups to replace a broken NAT. The policy grants
exactly that: ReplaceRoute on these route tables (by ARN), SetInstanceHealth on groups tagged
with this component's HA group, and read-only calls. Each AZ's Elastic IP stays on a network
interface that outlives instances, unless keepConnections lets the agents move the stack's
own Elastic IPs between the stack's own interfaces.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import fields
from typing import Any

from nat.inputs.options import OPTIONS
from nat.inputs.settings import HighAvailabilitySettings
from nat.instance.agent import RELEASE_TAG, MetricsSettings, Settings

__all__ = ["HA_GROUP_TAG", "RELEASE_TAG", "agent_settings", "agent_values", "ha_group_tag",
           "policy_document"]

HA_GROUP_TAG = "nat-instance-vpc:ha-group"
# the agent's types for the values it receives (its module is annotated as text)
_AGENT_TYPES: dict[str, Any] = {"float": float, "float | None": float, "bool": bool,
                                "str": str, "list[str]": list}
READ_ACTIONS = ("ec2:DescribeRouteTables", "ec2:DescribeNetworkInterfaces",
                "ec2:DescribeInstances", "autoscaling:DescribeAutoScalingInstances",
                "autoscaling:DescribeAutoScalingGroups")


def agent_values(group: str, settings: object,
                 target: type[Settings] | type[MetricsSettings]) -> dict[str, Any]:
    """The options of `group` that the agent receives (the table's `agent` names), from the
    checked settings, as the agent's dataclass types them."""
    types = {item.name: item.type for item in fields(target)}
    values: dict[str, Any] = {}
    for entry in OPTIONS:
        if entry.agent and entry.group == group:
            name = entry.agent.rsplit(".", 1)[-1]
            values[name] = _AGENT_TYPES[str(types[name])](getattr(settings, entry.field))
    return values


def agent_settings(region: str, interfaces: Mapping[str, tuple[str, str]],
                   route_tables: Sequence[tuple[str, str]], settings: HighAvailabilitySettings,
                   release: str = "", metrics: MetricsSettings | None = None,
                   handover: Mapping[str, tuple[str, str]] | None = None,
                   spare: str = "") -> Settings:
    """The agent's settings (agent.json): `interfaces` is AZ → (interface id, private
    address) of each NAT; `route_tables` is (route table id, AZ whose NAT owns it); `metrics`
    as nat.design.monitoring.agent_settings makes it, None for none; with keepConnections,
    `handover` is AZ → (standby address, Elastic IP allocation id) and `spare` the spare
    Elastic IP's allocation id."""
    extra = {zone: {"standby": standby, "allocation": allocation}
             for zone, (standby, allocation) in (handover or {}).items()}
    return Settings(region=region, metrics=metrics,
                    nats={zone: {"eni": eni, "address": address, **extra.get(zone, {})}
                          for zone, (eni, address) in sorted(interfaces.items())},
                    route_tables=dict(route_tables), release=release, spare=spare,
                    **agent_values("high_availability", settings, Settings))


def ha_group_tag(organization: str, group: str, vpc_id: str) -> str:
    """The value of the HA group tag: organization/project/stack/component/VPC, unique per
    deployment (the agents may replace only the NATs of groups tagged with it)."""
    return f"{organization}/{group}/{vpc_id}"


def policy_document(partition: str, region: str, account: str, route_tables: Sequence[str],
                    ha_group: str, vpc_id: str, addresses: Sequence[str] = (),
                    interfaces: Sequence[str] = (), agent_object: str = "") -> dict[str, Any]:
    """The agents' IAM policy: write only to this stack's route tables and groups. The route
    right also names the VPC (ec2:ReplaceRoute supports the ec2:Vpc key): a route table id
    of another VPC, however it got here, grants nothing. With keepConnections (`addresses`:
    the allocation ids of the AZs' and the spare Elastic IPs; `interfaces`: the NATs'),
    AssociateAddress of exactly these addresses to exactly these interfaces (both resources
    of the call must be allowed), the read of the addresses and subnets, and the agent's own
    S3 object (`agent_object`, its ARN)."""
    arn = f"arn:{partition}:ec2:{region}:{account}"
    moves: list[dict[str, Any]] = [{"Sid": "MoveThisStacksAddresses", "Effect": "Allow",
              "Action": "ec2:AssociateAddress",
              "Resource": [f"{arn}:elastic-ip/{a}" for a in sorted(set(addresses))] +
                          [f"{arn}:network-interface/{i}" for i in sorted(set(interfaces))]},
             {"Sid": "ReadAddressesAndSubnets", "Effect": "Allow",
              "Action": ["ec2:DescribeAddresses", "ec2:DescribeSubnets"], "Resource": "*"}] \
        if addresses else []
    if agent_object:  # the agent itself, where user data carries its loader
        moves.append({"Sid": "FetchTheAgent", "Effect": "Allow", "Action": "s3:GetObject",
                      "Resource": agent_object})
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadRoutesInterfacesAndGroups", "Effect": "Allow",
             "Action": list(READ_ACTIONS), "Resource": "*"},
            {"Sid": "MoveThisStacksRoutes", "Effect": "Allow", "Action": "ec2:ReplaceRoute",
             "Resource": [f"arn:{partition}:ec2:{region}:{account}:route-table/{table}"
                          for table in sorted(set(route_tables))],
             "Condition": {"StringEquals": {
                 "ec2:Vpc": f"arn:{partition}:ec2:{region}:{account}:vpc/{vpc_id}"}}},
            {"Sid": "ReplaceThisStacksNats", "Effect": "Allow",
             "Action": "autoscaling:SetInstanceHealth",
             "Resource": f"arn:{partition}:autoscaling:{region}:{account}:autoScalingGroup:*:"
                         "autoScalingGroupName/*",
             "Condition": {"StringEquals": {f"aws:ResourceTag/{HA_GROUP_TAG}": ha_group}}},
            *moves,
        ],
    }
