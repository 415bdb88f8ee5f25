"""NatZone: one AZ of NatInstances, and the launch specification every NAT instance shares.

A `NatZone` holds what belongs to its AZ: its NAT (a plain instance, or, with high
availability, a network interface that keeps the AZ's Elastic IP and an Auto Scaling group of
one launching onto it), its public address, the default routes of its private route tables
and its alarms. Both variants have one shape: `interface_id`, `public_ip`, `instance_id`
(plain) and `group_name` (high availability). An AZ without a NAT of its own (singleNat) has
routes and nothing else.

`LaunchSpec` is how a NAT instance is launched, written once; `instance_args` and
`template_args` render it for an aws.ec2.Instance and for an aws.ec2.LaunchTemplate.

No `from __future__ import annotations` here: Pulumi reads component annotations at run time.
"""

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from nat.design.ha import HA_GROUP_TAG, RELEASE_TAG
from nat.design.monitoring import AlarmSpec
from nat.design.rules import ANYWHERE

ZONE_TYPE = "nat:index:NatZone"
TAG_COMPONENT = "nat-instance-vpc:component"


@dataclass(frozen=True)
class Legacy:
    """Where NatInstanceVpc 0.1 kept these resources: aliases, so an upgrade replaces nothing.

    0.1 hung every resource directly under NatInstanceVpc; the routes had other names.
    """

    parent: pulumi.Resource
    route_names: Mapping[str, str]  # AZ → 0.1's name of that AZ's default route


@dataclass(frozen=True)
class Family:
    """How NatInstances names, tags and places its children."""

    name: str  # the NatInstances component's name
    tags: Mapping[str, str]  # the caller's tags (they may name another owner)
    legacy: Legacy | None = None

    def tags_of(self, resource_name: str) -> dict[str, str]:
        return {TAG_COMPONENT: self.name, **self.tags, "Name": resource_name}

    def options(self, resource_name: str, parent: pulumi.Resource,
                legacy_name: str | None = None, **extra: Any) -> pulumi.ResourceOptions:
        """Options of a child: its parent, and where 0.1 kept it (aliases)."""
        aliases = [pulumi.Alias(name=legacy_name or resource_name, parent=self.legacy.parent)] \
            if self.legacy else None
        return pulumi.ResourceOptions(parent=parent, aliases=aliases, **extra)


@dataclass(frozen=True)
class LaunchSpec:
    """What every NAT instance is launched with, plain or by its Auto Scaling group."""

    ami_id: pulumi.Input[str]
    pinned_ami: bool  # a pinned AMI replaces NATs when it changes; the SSM one never does
    instance_type: str
    key_name: str | None
    instance_profile: pulumi.Input[str] | None
    user_data: pulumi.Input[str]  # gzip, base64
    burstable: bool  # a NAT must not be throttled to its CPU baseline: unlimited credits
    volume_type: str = "gp3"

    def instance_args(self, subnet_id: pulumi.Input[str],
                      security_group_id: pulumi.Input[str]) -> dict[str, Any]:
        return dict(
            ami=self.ami_id, instance_type=self.instance_type, subnet_id=subnet_id,
            vpc_security_group_ids=[security_group_id], source_dest_check=False,
            # An auto-assigned address lets the first boot reach package mirrors before the
            # Elastic IP is associated; AWS releases it when the EIP arrives.
            associate_public_ip_address=True, key_name=self.key_name,
            iam_instance_profile=self.instance_profile,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(**self._metadata()),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_type=self.volume_type, encrypted=True, delete_on_termination=True),
            credit_specification=aws.ec2.InstanceCreditSpecificationArgs(
                cpu_credits="unlimited") if self.burstable else None,
            user_data_base64=self.user_data,
            # cloud-init runs user data once per instance: an in-place change would never run
            # the new script, so a changed script replaces the NAT.
            user_data_replace_on_change=True)

    def instance_args_on(self, interface_id: pulumi.Input[str]) -> dict[str, Any]:
        """An instance that boots on an interface made for it (its subnet, security group,
        source/dest check and addresses are the interface's)."""
        args = self.instance_args("", "")
        for key in ("subnet_id", "vpc_security_group_ids", "source_dest_check",
                    "associate_public_ip_address"):
            del args[key]
        return {**args, "primary_network_interface": aws.ec2.InstancePrimaryNetworkInterfaceArgs(
            network_interface_id=interface_id)}

    def template_args(self, interface_id: pulumi.Input[str]) -> dict[str, Any]:
        return dict(
            image_id=self.ami_id, instance_type=self.instance_type, key_name=self.key_name,
            iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(
                name=self.instance_profile),
            # the instance's primary interface is the AZ's own: its address, its EIP,
            # source/dest check off, the NAT security group
            network_interfaces=[aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                device_index=0, network_interface_id=interface_id,
                delete_on_termination="false")],
            metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(**self._metadata()),
            block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                device_name="/dev/xvda", ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                    volume_type=self.volume_type, encrypted="true",
                    delete_on_termination="true"))],
            user_data=self.user_data,
            credit_specification=aws.ec2.LaunchTemplateCreditSpecificationArgs(
                cpu_credits="unlimited") if self.burstable else None,
            update_default_version=True)

    def ignore_ami_changes(self, key: str) -> list[str]:
        """A new AL2023 release must not replace running NATs at the next `pulumi up`."""
        return [] if self.pinned_ami else [key]

    @staticmethod
    def _metadata() -> dict[str, Any]:
        return {"http_endpoint": "enabled", "http_tokens": "required",
                "http_put_response_hop_limit": 1}


class NatZone(pulumi.ComponentResource):
    """One AZ of NatInstances: its NAT, public address, routes and alarms."""

    interface_id: pulumi.Output[str] | None
    """The NAT's network interface: what the routes point at (None: no NAT here)."""
    public_ip: pulumi.Output[str] | None
    public_ips: pulumi.Output[list[str]] | None
    """Every public address of the NAT, public_ip first."""
    instance_id: pulumi.Output[str] | None
    """Plain NATs: the instance (with high availability the group owns the instances)."""
    group_name: pulumi.Output[str] | None
    """High availability: the Auto Scaling group of one."""

    def __init__(self, family: Family, zone: str, parent: pulumi.Resource) -> None:
        super().__init__(ZONE_TYPE, f"{family.name}-zone-{zone}", None,
                         pulumi.ResourceOptions(parent=parent))
        self.family, self.zone = family, zone
        self.interface_id = self.public_ip = self.instance_id = self.group_name = None
        self.public_ips = None
        self.allocation_id: pulumi.Output[str] | None = None  # of the first public address
        self.standby_ip: pulumi.Output[str] | None = None  # keepConnections: for the AZ before
        self._public_ips: list[pulumi.Output[str]] = []
        self._associations: list[aws.ec2.EipAssociation] = []
        self._alarm_names: list[pulumi.Output[str]] = []

    # --- the public addresses ------------------------------------------------------------------
    def _elastic_ip(self, number: int) -> aws.ec2.Eip:
        """The NAT's `number`th public address (from 1). The first is the same resource in
        both modes, so switching to high availability keeps it."""
        eip_name = f"{self.family.name}-eip-{self.zone}" + (f"-{number}" if number > 1 else "")
        return aws.ec2.Eip(eip_name, domain="vpc", tags=self.family.tags_of(eip_name),
                           opts=self.family.options(eip_name, self))

    def _associate_all(self, count: int, interface: aws.ec2.NetworkInterface,
                       own: Sequence[tuple[str, str]] | None = None) -> None:
        """`count` Elastic IPs on the interface: its primary address, then its secondary ones
        in address order. `own`: the caller's (allocation id, address) pairs, associated and
        never managed (nothing allocates or releases them)."""
        secondary = pulumi.Output.all(interface.private_ip, interface.private_ips).apply(
            lambda values: sorted((ip for ip in values[1] if ip != values[0]),
                                  key=ipaddress.IPv4Address))
        def nth(index: int) -> pulumi.Output[str]:
            return secondary.apply(lambda ips: ips[index])

        for number in range(1, count + 1):
            allocation: tuple[pulumi.Input[str], pulumi.Input[str]]
            parent: aws.ec2.Eip | None = None
            if own:
                allocation = own[number - 1]
            else:
                parent = self._elastic_ip(number)
                allocation = (parent.allocation_id, parent.public_ip)
            self._associate(allocation, number, parent, network_interface_id=interface.id,
                            **({"private_ip_address": nth(number - 2)} if number > 1 else {}))

    def _associate(self, allocation: tuple[pulumi.Input[str], pulumi.Input[str]], number: int,
                   parent: pulumi.Resource | None = None, **target: Any) -> None:
        """Associate (allocation id, its public address); under the Elastic IP when the stack
        made it, else under this zone."""
        assoc_name = f"{self.family.name}-eip-assoc-{self.zone}" + \
            (f"-{number}" if number > 1 else "")
        allocation_id, public_ip = allocation
        self._associations.append(aws.ec2.EipAssociation(
            assoc_name, allocation_id=allocation_id, **target,
            opts=self.family.options(assoc_name, parent or self)))
        address = pulumi.Output.from_input(public_ip)
        if number == 1:
            self.public_ip = address
            self.allocation_id = pulumi.Output.from_input(allocation_id)
        self._public_ips.append(address)
        self.public_ips = pulumi.Output.all(*self._public_ips)

    def _interface(self, subnet_id: pulumi.Input[str], security_group_id: pulumi.Input[str],
                   addresses: int, description: str) -> aws.ec2.NetworkInterface:
        eni_name = f"{self.family.name}-eni-{self.zone}"
        interface = aws.ec2.NetworkInterface(
            eni_name, subnet_id=subnet_id, security_groups=[security_group_id],
            source_dest_check=False, description=description,
            # the NAT's further public addresses: one secondary private IP each
            private_ips_count=addresses - 1 if addresses > 1 else None,
            tags=self.family.tags_of(eni_name), opts=self.family.options(eni_name, self))
        self.interface_id = interface.id
        return interface

    # --- plain: one instance -------------------------------------------------------------------
    def launch_instance(self, spec: LaunchSpec, subnet_id: pulumi.Input[str],
                        security_group_id: pulumi.Input[str], use_elastic_ip: bool,
                        addresses: int = 1,
                        own: Sequence[tuple[str, str]] | None = None) -> None:
        nat_name = f"{self.family.name}-{self.zone}"
        if addresses > 1 or own:
            # secondary private IPs need an interface of our own, made first: the instance
            # boots on it with its addresses and their Elastic IPs in place
            interface = self._interface(
                subnet_id, security_group_id, addresses,
                "NAT instance interface (nat-instance-vpc): the NAT's public addresses")
            self._associate_all(addresses, interface, own)
            nat = aws.ec2.Instance(
                nat_name, **spec.instance_args_on(interface.id), tags=self.family.tags_of(nat_name),
                opts=self.family.options(nat_name, self,
                                         ignore_changes=spec.ignore_ami_changes("ami"),
                                         depends_on=self._associations))
            self.instance_id = nat.id
            return
        nat = aws.ec2.Instance(nat_name, **spec.instance_args(subnet_id, security_group_id),
                               tags=self.family.tags_of(nat_name),
                               opts=self.family.options(
                                   nat_name, self, ignore_changes=spec.ignore_ami_changes("ami")))
        self.instance_id = nat.id
        self.interface_id = nat.primary_network_interface_id
        if use_elastic_ip:
            elastic_ip = self._elastic_ip(1)
            self._associate((elastic_ip.allocation_id, elastic_ip.public_ip), 1, elastic_ip,
                            instance_id=nat.id)
        else:
            self.public_ip = nat.public_ip
            self.public_ips = pulumi.Output.all(nat.public_ip)

    # --- high availability: an interface that outlives instances, a group of one ---------------
    def add_interface(self, subnet_id: pulumi.Input[str],
                      security_group_id: pulumi.Input[str], addresses: int = 1,
                      own: Sequence[tuple[str, str]] | None = None, standby: bool = False
                      ) -> aws.ec2.NetworkInterface:
        """`standby`: one more secondary private IP, the last in address order, kept free for
        the Elastic IP of the AZ before this one (keepConnections)."""
        interface = self._interface(
            subnet_id, security_group_id, addresses + standby,
            "NAT instance interface (nat-instance-vpc): outlives instances, keeps the AZ's "
            "Elastic IP" + ("s" if addresses > 1 else ""))
        self._associate_all(addresses, interface, own)
        if standby:
            self.standby_ip = pulumi.Output.all(interface.private_ip, interface.private_ips).apply(
                lambda values: sorted((ip for ip in values[1] if ip != values[0]),
                                      key=ipaddress.IPv4Address)[-1])
        return interface

    def launch_group(self, spec: LaunchSpec, subnet_id: pulumi.Input[str],
                     ha_group: pulumi.Input[str],
                     release: pulumi.Input[str], depends_on: Sequence[pulumi.Resource]) -> None:
        assert self.interface_id is not None and self._associations
        name, zone = self.family.name, self.zone
        lt_name, group_name = f"{name}-lt-{zone}", f"{name}-asg-{zone}"
        template = aws.ec2.LaunchTemplate(
            lt_name, **spec.template_args(self.interface_id),
            tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(
                resource_type=kind, tags=self.family.tags_of(f"{name}-{zone}"))
                for kind in ("instance", "volume")],
            tags=self.family.tags_of(lt_name),
            opts=self.family.options(lt_name, self,
                                     ignore_changes=spec.ignore_ami_changes("imageId")))
        group = aws.autoscaling.Group(
            group_name, min_size=1, max_size=1, desired_capacity=1,
            vpc_zone_identifiers=[subnet_id],
            launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                id=template.id, version=template.latest_version.apply(str)),
            health_check_type="EC2", health_check_grace_period=120,
            # the interface can serve one instance at a time: replace by terminating first
            # (the agents have already moved the AZ's routes away)
            instance_maintenance_policy=aws.autoscaling.GroupInstanceMaintenancePolicyArgs(
                min_healthy_percentage=0, max_healthy_percentage=100),
            tags=[aws.autoscaling.GroupTagArgs(key=key, value=value, propagate_at_launch=True)
                  for key, value in self.family.tags_of(f"{name}-{zone}").items()] + [
                aws.autoscaling.GroupTagArgs(key=HA_GROUP_TAG, value=ha_group,
                                             propagate_at_launch=False),
                aws.autoscaling.GroupTagArgs(key=RELEASE_TAG, value=release,
                                             propagate_at_launch=False)],
            # boot with the address in place and the agent's rights granted
            opts=self.family.options(group_name, self,
                                     depends_on=[*self._associations, *depends_on]))
        self.group_name = group.name

    # --- what every AZ has -----------------------------------------------------------------------
    def add_routes(self, tables: Sequence[pulumi.Input[str]], target: pulumi.Input[str],
                   agents_move_them: bool) -> None:
        """0.0.0.0/0 of each private route table of this AZ → `target` (its NAT's interface,
        or the one NAT's with singleNat)."""
        name, zone, legacy = self.family.name, self.zone, self.family.legacy
        for index, table in enumerate(tables):
            route_name = f"{name}-default-route-{zone}" + (f"-{index + 1}" if index else "")
            legacy_name = legacy.route_names.get(zone) if legacy else None
            # With high availability the agents move this route; Pulumi keeps what it
            # created, and deletes it, but never points it back at a NAT by itself.
            aws.ec2.Route(route_name, route_table_id=table, destination_cidr_block=ANYWHERE,
                          network_interface_id=target,
                          opts=self.family.options(route_name, self, legacy_name,
                                                   ignore_changes=["networkInterfaceId"]
                                                   if agents_move_them else None))

    def add_alarms(self, specs: Sequence[AlarmSpec], actions: list[pulumi.Output[str]]) -> None:
        for spec in specs:
            alarm_name = f"{self.family.name}-{spec.slug}-{self.zone}"
            alarm = aws.cloudwatch.MetricAlarm(
                alarm_name, alarm_description=spec.description, namespace=spec.namespace,
                metric_name=spec.metric_name, statistic=spec.statistic, period=spec.period,
                evaluation_periods=spec.evaluation_periods,
                datapoints_to_alarm=spec.datapoints_to_alarm, threshold=spec.threshold,
                comparison_operator=spec.comparison, treat_missing_data=spec.treat_missing_data,
                dimensions=dict(spec.dimensions), alarm_actions=actions, ok_actions=actions,
                tags=self.family.tags_of(alarm_name),
                opts=self.family.options(alarm_name, self))
            self._alarm_names.append(alarm.name)

    @property
    def alarm_names(self) -> pulumi.Output[list[str]]:
        return pulumi.Output.all(*self._alarm_names)

    def finish(self) -> None:
        self.register_outputs({key: value for key, value in (
            ("interfaceId", self.interface_id), ("publicIp", self.public_ip),
            ("publicIps", self.public_ips),
            ("instanceId", self.instance_id), ("groupName", self.group_name))
            if value is not None})
