"""The stack's outputs: one typed structure, written by the program, read by the commands.

`pulumi stack output --json` prints `StackOutputs.to_document()`: nat/program.py builds a
`StackOutputs` from the component's resolved outputs and exports each field under its own
name; natctl/outputs.py checks such a document whole and builds the same `StackOutputs` back,
which is all `verify` and `status` read.

Pure: no Pulumi, no AWS.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from ipaddress import IPv4Network
from typing import Any


@dataclass(frozen=True)
class MonitoringOutputs:
    """What `natctl status` reads (empty namespace: monitoring off)."""

    namespace: str
    group: str  # the NatGroup dimension: project/stack/component
    detailed_metrics: bool
    instance_type: str
    alarm_names: dict[str, list[str]] = field(default_factory=dict)  # AZ → alarm names
    alarm_topic_arn: str = ""
    dashboard_name: str = ""


@dataclass(frozen=True)
class StackOutputs:
    """Field names are the output names. Maps are keyed by AZ. A stack deployed by an older
    version may lack what later versions added; natctl fills those from what it has."""

    vpc_id: str
    availability_zones: tuple[str, ...]
    internet_gateway_id: str
    public_subnet_ids: dict[str, str]
    private_subnet_ids: dict[str, str]
    private_subnet_cidrs: dict[str, IPv4Network]
    private_route_table_ids: dict[str, str]
    security_group_id: str
    ssh_cidr: IPv4Network | None
    test_rules_enabled: bool
    elastic_ips: bool
    high_availability: bool
    nat_zone_for_private_subnet: dict[str, str]  # private subnet's AZ → AZ of its NAT
    nat_public_ips: dict[str, str]  # NAT AZ → its public address
    # NAT AZ → every public address of its NAT, nat_public_ips' first (older stacks: that one)
    nat_public_ip_lists: dict[str, list[str]] = field(default_factory=dict)
    nat_instance_ids: dict[str, str] = field(default_factory=dict)  # plain NATs
    nat_network_interface_ids: dict[str, str] = field(default_factory=dict)  # NAT AZ → ENI
    auto_scaling_group_names: dict[str, str] = field(default_factory=dict)  # HA
    # plain NATs: private subnet's AZ → the instance serving it (what 0.1 stacks had)
    nat_for_private_subnet: dict[str, str] = field(default_factory=dict)
    vpc_cidr: str = ""
    public_route_table_id: str = ""
    connection_table_sizes: dict[str, int] = field(default_factory=dict)  # NAT AZ → size
    keep_connections: bool = False  # connections and addresses follow an AZ (handover)
    monitoring: MonitoringOutputs | None = None

    @property
    def nat_zones(self) -> list[str]:
        return [zone for zone in self.availability_zones if zone in self.nat_public_ips]

    def to_document(self) -> dict[str, Any]:
        """The JSON document `pulumi stack output --json` prints."""
        document: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, MonitoringOutputs):
                value = {f.name: getattr(value, f.name) for f in fields(value)}
            elif isinstance(value, tuple):
                value = list(value)
            elif isinstance(value, IPv4Network):
                value = str(value)
            elif isinstance(value, dict):
                value = {k: str(v) if isinstance(v, IPv4Network) else
                         list(v) if isinstance(v, (list, tuple)) else v
                         for k, v in value.items()}
            document[item.name] = value
        return document


OUTPUT_NAMES: tuple[str, ...] = tuple(item.name for item in fields(StackOutputs))
