"""NatInstanceVpc: the AWS guide's whole network, its own VPC and subnets plus NatInstances.

No `from __future__ import annotations` here: Pulumi's schema analyzer reads this module's
annotations at run time.
"""

from dataclasses import replace
from typing import Any

import pulumi
import pulumi_aws as aws

from nat.components.nat_instances import (
    InvalidArgumentsError,
    NatInstances,
    check_addresses,
    output_map,
    warnings_to_pulumi,
)
from nat.components.zone import TAG_COMPONENT, Legacy
from nat.design.rules import ANYWHERE
from nat.inputs.args import NatInstanceVpcArgs
from nat.inputs.settings import VpcSettings, Wiring, nat_instance_vpc_settings
from nat.inputs.validation import CALLER_SPELLING, ArgumentsError

COMPONENT_TYPE = "nat:index:NatInstanceVpc"


class NatInstanceVpc(pulumi.ComponentResource):
    """The AWS guide "NAT instances": a VPC with one public and one private subnet per AZ, an
    internet gateway, and private subnets that reach the internet through NAT instances
    (NatInstances) instead of NAT Gateways."""

    vpc_id: pulumi.Output[str]
    """The VPC."""
    vpc_cidr: pulumi.Output[str]
    """The VPC's IPv4 CIDR."""
    internet_gateway_id: pulumi.Output[str]
    """The internet gateway."""
    public_route_table_id: pulumi.Output[str]
    """The public subnets' route table (0.0.0.0/0 → the internet gateway)."""
    public_subnet_ids: pulumi.Output[dict[str, str]]
    """AZ → public subnet (where that AZ's NAT runs)."""
    private_subnet_ids: pulumi.Output[dict[str, str]]
    """AZ → private subnet."""
    private_subnet_cidrs: pulumi.Output[dict[str, str]]
    """AZ → private subnet CIDR."""
    private_route_table_ids: pulumi.Output[dict[str, str]]
    """AZ → the private subnet's route table (0.0.0.0/0 → a NAT)."""
    security_group_id: pulumi.Output[str]
    """The NATs' security group: exactly the guide's table."""
    nat_instance_ids: pulumi.Output[dict[str, str]]
    """AZ → the NAT instance in that AZ, without highAvailability. With it, empty: each AZ's
    Auto Scaling group owns its instance and replaces it (autoScalingGroupNames names the
    groups; natNetworkInterfaceIds the interfaces that outlive the instances)."""
    nat_network_interface_ids: pulumi.Output[dict[str, str]]
    """AZ → the network interface of that AZ's NAT: what its routes point at."""
    nat_public_ips: pulumi.Output[dict[str, str]]
    """AZ → the NAT's public address (its Elastic IP unless useElasticIp is false). Partners'
    allow-lists need all of them: during a failover an AZ leaves through another AZ's NAT."""
    nat_public_ip_lists: pulumi.Output[dict[str, list[str]]]
    """AZ → every public address of that AZ's NAT (instance.publicAddresses of them; the
    first is natPublicIps'). Allow-lists need every address of every AZ."""
    nat_zone_for_private_route_tables: pulumi.Output[dict[str, str]]
    """AZ → the AZ whose NAT its private route tables use (itself, or the first with
    singleNat); with highAvailability, the AZ they return to after a failover."""
    auto_scaling_group_names: pulumi.Output[dict[str, str]]
    """AZ → the Auto Scaling group of that AZ's NAT (highAvailability only)."""
    instance_role_name: pulumi.Output[str]
    """The NATs' IAM role, to attach more policies; empty when the NATs need no role."""
    connection_table_sizes: pulumi.Output[dict[str, int]]
    """AZ → the NAT's connection-tracking table size (nf_conntrack_max), from its instance
    type's memory unless set: what the tracking-table alarm measures against."""
    metrics_namespace: pulumi.Output[str]
    """The CloudWatch namespace of the NATs' metrics (empty with monitoring off)."""
    metrics_group: pulumi.Output[str]
    """The NatGroup dimension of this component's metrics: project/stack/component."""
    alarm_names: pulumi.Output[dict[str, list[str]]]
    """AZ → the names of that AZ's CloudWatch alarms."""
    alarm_topic_arn: pulumi.Output[str]
    """The SNS topic the alarms notify (given or created; empty if none)."""
    dashboard_name: pulumi.Output[str]
    """The CloudWatch dashboard (empty unless monitoring.dashboard)."""

    def __init__(self, name: str, args: NatInstanceVpcArgs,
                 opts: pulumi.ResourceOptions | None = None) -> None:
        try:
            with warnings_to_pulumi():
                settings = nat_instance_vpc_settings(name, args, label=CALLER_SPELLING.get())
        except ArgumentsError as error:
            raise InvalidArgumentsError.of(error) from None
        self._init(name, settings, opts)

    @classmethod
    def from_settings(cls, name: str, settings: VpcSettings,
                      opts: pulumi.ResourceOptions | None = None) -> "NatInstanceVpc":
        """The network from settings already checked (a stack's config): each input is
        checked once, where it enters."""
        component = cls.__new__(cls)
        component._init(name, settings, opts)
        return component

    def _init(self, name: str, settings: VpcSettings,
              opts: pulumi.ResourceOptions | None) -> None:
        # its NAT layer's interfaces carry this component's name (the tags it hands down)
        self._addresses = check_addresses("NatInstanceVpc", name, settings.nat_layer, opts)
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._settings = settings
        self._build()

    def _tags(self, resource_name: str) -> dict[str, str]:
        return {**self._settings.options.tags, "Name": resource_name,
                TAG_COMPONENT: self._name}

    def _options(self, parent: pulumi.Resource) -> pulumi.ResourceOptions:
        """Grouped under `parent`; 0.1 kept everything directly under the component (alias)."""
        aliases = None if parent is self else [pulumi.Alias(parent=self)]
        return pulumi.ResourceOptions(parent=parent, aliases=aliases)

    def _build(self) -> None:
        name, settings = self._name, self._settings

        def resource(kind: Any, resource_name: str, parent: pulumi.Resource,
                     tagged: bool = True, **props: Any) -> Any:
            if tagged:
                props["tags"] = self._tags(resource_name)
            return kind(resource_name, **props, opts=self._options(parent))

        vpc = resource(aws.ec2.Vpc, f"{name}-vpc", self, cidr_block=str(settings.vpc_cidr),
                       enable_dns_support=True, enable_dns_hostnames=True)
        internet_gateway = resource(aws.ec2.InternetGateway, f"{name}-igw", vpc, vpc_id=vpc.id)
        public_route_table = resource(aws.ec2.RouteTable, f"{name}-public-rt", vpc,
                                      vpc_id=vpc.id)
        resource(aws.ec2.Route, f"{name}-public-default-route", public_route_table,
                 tagged=False, route_table_id=public_route_table.id,
                 destination_cidr_block=ANYWHERE, gateway_id=internet_gateway.id)

        public_subnets: dict[str, aws.ec2.Subnet] = {}
        private_subnets: dict[str, aws.ec2.Subnet] = {}
        private_route_tables: dict[str, aws.ec2.RouteTable] = {}
        for zone, public_cidr, private_cidr in zip(settings.availability_zones,
                                                   settings.public_subnet_cidrs,
                                                   settings.private_subnet_cidrs, strict=True):
            public_subnets[zone] = resource(
                aws.ec2.Subnet, f"{name}-public-{zone}", vpc, vpc_id=vpc.id,
                cidr_block=str(public_cidr), availability_zone=zone,
                map_public_ip_on_launch=False)
            resource(aws.ec2.RouteTableAssociation, f"{name}-public-rta-{zone}",
                     public_subnets[zone], tagged=False, subnet_id=public_subnets[zone].id,
                     route_table_id=public_route_table.id)
            private_subnets[zone] = resource(
                aws.ec2.Subnet, f"{name}-private-{zone}", vpc, vpc_id=vpc.id,
                cidr_block=str(private_cidr), availability_zone=zone,
                map_public_ip_on_launch=False)
            private_route_tables[zone] = resource(
                aws.ec2.RouteTable, f"{name}-private-rt-{zone}", private_subnets[zone],
                vpc_id=vpc.id)
            resource(aws.ec2.RouteTableAssociation, f"{name}-private-rta-{zone}",
                     private_subnets[zone], tagged=False, subnet_id=private_subnets[zone].id,
                     route_table_id=private_route_tables[zone].id)

        # the NAT layer gets these settings as they are: checked once, at this component's
        # door; NatInstances' tags name this component as the owner
        layer = replace(settings.nat_layer,
                        options=settings.options.with_tags({TAG_COMPONENT: name,
                                                            **settings.options.tags}),
                        wiring=Wiring(vpc.id, {z: s.id for z, s in public_subnets.items()},
                                      {z: (t.id,) for z, t in private_route_tables.items()},
                                      known_good=True))
        nat = NatInstances.from_settings(
            f"{name}-nat", layer, pulumi.ResourceOptions(parent=self), _addresses=self._addresses,
            _legacy=Legacy(self, {z: f"{name}-private-default-route-{z}"
                                  for z in settings.availability_zones}))

        self.vpc_id = vpc.id
        self.vpc_cidr = pulumi.Output.from_input(str(settings.vpc_cidr))
        self.internet_gateway_id = internet_gateway.id
        self.public_route_table_id = public_route_table.id
        self.public_subnet_ids = output_map({z: s.id for z, s in public_subnets.items()})
        self.private_subnet_ids = output_map({z: s.id for z, s in private_subnets.items()})
        self.private_subnet_cidrs = output_map({z: str(c) for z, c in zip(
            settings.availability_zones, settings.private_subnet_cidrs, strict=True)})
        self.private_route_table_ids = output_map(
            {z: t.id for z, t in private_route_tables.items()})
        self.security_group_id = nat.security_group_id
        self.nat_instance_ids = nat.nat_instance_ids
        self.nat_network_interface_ids = nat.nat_network_interface_ids
        self.nat_public_ips = nat.nat_public_ips
        self.nat_public_ip_lists = nat.nat_public_ip_lists
        self.nat_zone_for_private_route_tables = nat.nat_zone_for_private_route_tables
        self.auto_scaling_group_names = nat.auto_scaling_group_names
        for key in ("instance_role_name", "connection_table_sizes", "metrics_namespace",
                    "metrics_group",
                    "alarm_names", "alarm_topic_arn", "dashboard_name"):
            setattr(self, key, getattr(nat, key))
        self.register_outputs({key: getattr(self, key) for key in OUTPUTS})

    @property
    def settings(self) -> VpcSettings:
        return self._settings


OUTPUTS = tuple(key for key in NatInstanceVpc.__annotations__)
