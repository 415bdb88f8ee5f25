"""NatInstances: NAT instances, their security group and the default routes, for any VPC.

The NAT layer of the guide, for a VPC made elsewhere (awsx.ec2.Vpc with no NAT Gateways,
plain aws.ec2 resources, or NatInstanceVpc). Every argument is checked before anything is
registered; plain subnet and route table ids are also checked with AWS (same VPC, right AZ).

No `from __future__ import annotations` here: Pulumi's schema analyzer reads this module's
annotations at run time.
"""

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi.runtime.sync_await import _sync_await

from nat.ami import al2023_ssm_parameter
from nat.args import NatInstancesArgs
from nat.instance_types import ARM64, X86_64
from nat.rules import ANYWHERE, expand_rules
from nat.settings import NatLayerSettings, component_problems, nat_instances_settings
from nat.userdata import encode_user_data, render_user_data
from nat.validation import ArgumentsError

COMPONENT_TYPE = "nat:index:NatInstances"
ZONE_TYPE = "nat:index:NatZone"
SSM_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"
TAG_COMPONENT = "nat-instance-vpc:component"


class InvalidArgumentsError(ArgumentsError, pulumi.RunError):
    """Bad component arguments. A RunError, so Pulumi prints the message without a traceback."""

    @classmethod
    def of(cls, error: ArgumentsError) -> "InvalidArgumentsError":
        return cls(error.heading, error.problems, error.fields)


@dataclass(frozen=True)
class Legacy:
    """Where NatInstanceVpc 0.1 kept these resources: aliases, so an upgrade replaces nothing.

    0.1 hung every resource directly under NatInstanceVpc; the routes had other names.
    """

    parent: pulumi.Resource
    route_names: Mapping[str, str]  # AZ → 0.1's name of that AZ's default route


def architecture_from_aws(supported: list[str] | None, fallback: str) -> str:
    """arm64 or x86_64 from the instance type's supportedArchitectures, else the name's."""
    for architecture in (ARM64, X86_64):
        if architecture in (supported or []):
            return architecture
    return fallback


def output_map(values: Mapping[str, pulumi.Input[str]]) -> pulumi.Output[dict[str, str]]:
    """AZ-keyed outputs as one output of a map (empty maps included)."""
    return pulumi.Output.from_input(dict(values))  # type: ignore[arg-type]


PLAIN_MAPS = ("public_subnet_ids", "private_route_table_ids")


def known_now(value: Any) -> tuple[bool, Any]:
    """(True, the value) for a plain value or an output whose value is already here."""
    if not isinstance(value, pulumi.Output):
        return True, value
    if not _sync_await(value.is_known()):
        return False, None
    return True, _sync_await(value.future())


def plain_maps(args: Mapping[str, Any]) -> dict[str, Any]:
    """The AZ-keyed maps with their keys in hand.

    An engine or SDK that does not send output values hands a component a whole map as one
    output (its dependencies attached) instead of a map of outputs. When its value is already
    known, split it back into a map whose values keep those dependencies; when it is not
    (a preview, before the resources exist), leave it for the checks to refuse clearly.
    """
    unwrapped = dict(args)
    for key in PLAIN_MAPS:
        whole = args.get(key)
        known, value = known_now(whole)
        if not isinstance(whole, pulumi.Output) or not known or not isinstance(value, dict):
            continue

        def part(path: tuple[Any, ...], output: pulumi.Output[Any] = whole) -> Any:
            def pick(mapping: Any) -> Any:
                for step in path:
                    mapping = mapping[step]
                return mapping
            return output.apply(pick)

        unwrapped[key] = {
            zone: [part((zone, i)) for i in range(len(item))] if isinstance(item, list)
            else part((zone,))
            for zone, item in value.items()}
    return unwrapped


def invoke_options(opts: pulumi.ResourceOptions | None) -> pulumi.InvokeOptions:
    """Lookups made before the component exists use the provider its caller gave it."""
    return pulumi.InvokeOptions(parent=opts.parent if opts else None,
                                provider=opts.provider if opts else None)


def check_plain_ids(name: str, args: Mapping[str, Any], settings: NatLayerSettings,
                    opts: pulumi.ResourceOptions | None) -> None:
    """Ask AWS about subnets and route tables given as plain ids: in the VPC, in their AZ.

    Ids that are outputs of resources made in the same program are unknown until deployment;
    for those, AWS itself refuses a subnet of another VPC.
    """
    problems = component_problems("NatInstances", name)
    vpc_id = args["vpc_id"] if isinstance(args["vpc_id"], str) else None
    for zone in settings.nat_zones:
        subnet_id = args["public_subnet_ids"][zone]
        if not isinstance(subnet_id, str):
            continue
        subnet = aws.ec2.get_subnet(id=subnet_id, opts=invoke_options(opts))
        if vpc_id and subnet.vpc_id != vpc_id:
            problems.fail(f"public_subnet_ids.{zone}", subnet_id, f"in {subnet.vpc_id}, not in "
                          f"vpcId {vpc_id}", "give a public subnet of that VPC")
        elif subnet.availability_zone != zone:
            problems.fail(f"public_subnet_ids.{zone}", subnet_id, f"in "
                          f"{subnet.availability_zone}, not {zone}", "key each subnet by its "
                          "own AZ (a NAT in another AZ would carry this AZ's traffic across AZs)")
    for zone, tables in args["private_route_table_ids"].items():
        for table_id in tables:
            if not isinstance(table_id, str) or not vpc_id:
                continue
            table = aws.ec2.get_route_table(route_table_id=table_id, opts=invoke_options(opts))
            if table.vpc_id != vpc_id:
                problems.fail(f"private_route_table_ids.{zone}", table_id, f"in "
                              f"{table.vpc_id}, not in vpcId {vpc_id}",
                              "give route tables of that VPC")
    if problems.found:
        raise InvalidArgumentsError.of(problems.error())


class NatInstances(pulumi.ComponentResource):
    """NAT instances for an existing VPC: one per AZ (or one for all), the AWS guide's security
    group, and each private route table's 0.0.0.0/0 route to the NAT of its AZ."""

    security_group_id: pulumi.Output[str]
    """The NATs' security group: exactly the guide's table."""
    nat_instance_ids: pulumi.Output[dict[str, str]]
    """AZ → the NAT instance in that AZ."""
    nat_network_interface_ids: pulumi.Output[dict[str, str]]
    """AZ → the primary network interface of that AZ's NAT: the route target."""
    nat_public_ips: pulumi.Output[dict[str, str]]
    """AZ → the NAT's public address (its Elastic IP unless useElasticIp is false). Partners'
    allow-lists need all of them."""
    nat_zone_for_private_route_tables: pulumi.Output[dict[str, str]]
    """AZ → the AZ whose NAT its private route tables use (itself, or the first with
    singleNat)."""
    instance_role_name: pulumi.Output[str]
    """The NATs' IAM role, to attach more policies; empty when the NATs need no role."""

    def __init__(self, name: str, args: NatInstancesArgs,
                 opts: pulumi.ResourceOptions | None = None, *,
                 _legacy: Legacy | None = None) -> None:
        args = plain_maps(args)  # type: ignore[assignment]
        try:
            settings = nat_instances_settings(name, args)
        except ArgumentsError as error:
            raise InvalidArgumentsError.of(error) from None
        check_plain_ids(name, args, settings, opts)
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._settings = settings
        self._legacy = _legacy
        self._build(args)

    # --- helpers -------------------------------------------------------------------------------
    def _tags(self, resource_name: str) -> dict[str, str]:
        """The caller's tags may name another owner (NatInstanceVpc names itself)."""
        return {TAG_COMPONENT: self._name, **self._settings.options.tags,
                "Name": resource_name}

    def _options(self, resource_name: str, parent: pulumi.Resource,
                 legacy_name: str | None = None, **extra: Any) -> pulumi.ResourceOptions:
        """Options of a child: its parent, and where 0.1 kept it (aliases)."""
        aliases = [pulumi.Alias(name=legacy_name or resource_name, parent=self._legacy.parent)] \
            if self._legacy else None
        return pulumi.ResourceOptions(parent=parent, aliases=aliases, **extra)

    # --- the resources -------------------------------------------------------------------------
    def _build(self, args: NatInstancesArgs) -> None:
        name, settings = self._name, self._settings
        options = settings.options
        invoke = pulumi.InvokeOutputOptions(parent=self)

        instance_type_info = aws.ec2.get_instance_type_output(
            instance_type=options.instance.instance_type, opts=invoke)
        architecture = instance_type_info.supported_architectures.apply(
            lambda supported: architecture_from_aws(supported, options.instance.architecture))
        if options.instance.ami_id is not None:
            ami_id: pulumi.Input[str] = options.instance.ami_id
        else:
            ami_id = aws.ssm.get_parameter_output(
                name=architecture.apply(al2023_ssm_parameter), opts=invoke).value

        security_group = self._security_group(args)
        instance_profile = self._instance_profile()
        user_data = encode_user_data(render_user_data(settings.vpc_cidrs,
                                                      options.instance.tuning))

        # one group per AZ, so `pulumi stack` reads like the topology
        zones: dict[str, pulumi.ComponentResource] = {
            zone: pulumi.ComponentResource(ZONE_TYPE, f"{name}-zone-{zone}", None,
                                           pulumi.ResourceOptions(parent=self))
            for zone in settings.availability_zones}
        nat_instances: dict[str, aws.ec2.Instance] = {}
        public_ips: dict[str, pulumi.Output[str]] = {}
        for zone in settings.nat_zones:
            nat_instances[zone], public_ips[zone] = self._nat_instance(
                zone, zones[zone], args["public_subnet_ids"][zone], ami_id, security_group,
                instance_profile, user_data)

        for zone in settings.availability_zones:
            target = nat_instances[settings.nat_zone_for(zone)]
            tables = args["private_route_table_ids"][zone]
            for index, table in enumerate(tables):
                route_name = f"{name}-default-route-{zone}" + (f"-{index + 1}" if index else "")
                legacy = self._legacy.route_names.get(zone) if self._legacy else None
                aws.ec2.Route(route_name, route_table_id=table,
                              destination_cidr_block=ANYWHERE,
                              network_interface_id=target.primary_network_interface_id,
                              opts=self._options(route_name, zones[zone], legacy))

        for zone_group in zones.values():
            zone_group.register_outputs({})

        self.security_group_id = security_group.id
        self.nat_instance_ids = output_map({z: i.id for z, i in nat_instances.items()})
        self.nat_network_interface_ids = output_map(
            {z: i.primary_network_interface_id for z, i in nat_instances.items()})
        self.nat_public_ips = output_map(public_ips)
        self.nat_zone_for_private_route_tables = output_map(
            {zone: settings.nat_zone_for(zone) for zone in settings.availability_zones})
        self.instance_role_name = self._role.name if self._role else pulumi.Output.from_input("")
        self.register_outputs({
            "security_group_id": self.security_group_id,
            "nat_instance_ids": self.nat_instance_ids,
            "nat_network_interface_ids": self.nat_network_interface_ids,
            "nat_public_ips": self.nat_public_ips,
            "nat_zone_for_private_route_tables": self.nat_zone_for_private_route_tables,
            "instance_role_name": self.instance_role_name,
        })

    def _security_group(self, args: NatInstancesArgs) -> aws.ec2.SecurityGroup:
        """Each guide row is its own resource, with no inline rules: the provider then removes
        AWS's default allow-all egress rule, so the group holds exactly the table."""
        name, settings = self._name, self._settings
        sg_name = f"{name}-sg"
        security_group = aws.ec2.SecurityGroup(
            sg_name, vpc_id=args["vpc_id"],
            description="NAT instances: the AWS guide's rules (nat-instance-vpc)",
            tags=self._tags(sg_name), opts=self._options(sg_name, self))
        for rule in expand_rules(settings.private_cidrs, settings.options.access.ssh_cidr,
                                 settings.options.access.enable_test_rules):
            rule_class = (aws.vpc.SecurityGroupIngressRule if rule.direction == "inbound"
                          else aws.vpc.SecurityGroupEgressRule)
            rule_name = f"{sg_name}-{rule.slug}"
            rule_class(rule_name, security_group_id=security_group.id, cidr_ipv4=rule.cidr,
                       ip_protocol=rule.protocol, from_port=rule.from_port,
                       to_port=rule.to_port, description=rule.description,
                       opts=self._options(rule_name, security_group))
        return security_group

    def _instance_profile(self) -> aws.iam.InstanceProfile | None:
        self._role: aws.iam.Role | None = None
        if not self._settings.options.instance.enable_ssm:
            return None
        name = self._name
        role = aws.iam.Role(f"{name}-role", assume_role_policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                           "Principal": {"Service": "ec2.amazonaws.com"}}],
        }), tags=self._tags(f"{name}-role"), opts=self._options(f"{name}-role", self))
        aws.iam.RolePolicyAttachment(f"{name}-ssm", role=role.name, policy_arn=SSM_POLICY_ARN,
                                     opts=self._options(f"{name}-ssm", role))
        self._role = role
        return aws.iam.InstanceProfile(f"{name}-profile", role=role.name,
                                       opts=self._options(f"{name}-profile", role))

    def _nat_instance(self, zone: str, parent: pulumi.Resource, subnet_id: pulumi.Input[str],
                      ami_id: pulumi.Input[str], security_group: aws.ec2.SecurityGroup,
                      instance_profile: aws.iam.InstanceProfile | None,
                      user_data: str) -> tuple[aws.ec2.Instance, pulumi.Output[str]]:
        name, instance = self._name, self._settings.options.instance
        nat_name = f"{name}-{zone}"
        # A new AL2023 release must not replace running NATs at the next `pulumi up`; a pinned
        # AMI is a deliberate choice, so changing the pin does replace them.
        nat_instance = aws.ec2.Instance(
            nat_name,
            ami=ami_id,
            instance_type=instance.instance_type,
            subnet_id=subnet_id,
            vpc_security_group_ids=[security_group.id],
            source_dest_check=False,
            # An auto-assigned address lets the first boot reach package mirrors before the
            # Elastic IP is associated; AWS releases it when the EIP arrives.
            associate_public_ip_address=True,
            key_name=instance.key_name,
            iam_instance_profile=instance_profile.name if instance_profile else None,
            metadata_options=aws.ec2.InstanceMetadataOptionsArgs(
                http_endpoint="enabled", http_tokens="required", http_put_response_hop_limit=1),
            root_block_device=aws.ec2.InstanceRootBlockDeviceArgs(
                volume_type="gp3", encrypted=True, delete_on_termination=True),
            user_data_base64=user_data,
            # cloud-init runs user data once per instance: an in-place change would never run
            # the new script, so a changed script replaces the NAT.
            user_data_replace_on_change=True,
            tags=self._tags(nat_name),
            opts=self._options(nat_name, parent,
                               ignore_changes=[] if instance.ami_id else ["ami"]))
        if not instance.use_elastic_ip:
            return nat_instance, nat_instance.public_ip
        eip_name = f"{name}-eip-{zone}"
        elastic_ip = aws.ec2.Eip(eip_name, domain="vpc", tags=self._tags(eip_name),
                                 opts=self._options(eip_name, parent))
        assoc_name = f"{name}-eip-assoc-{zone}"
        aws.ec2.EipAssociation(assoc_name, allocation_id=elastic_ip.allocation_id,
                               instance_id=nat_instance.id,
                               opts=self._options(assoc_name, elastic_ip))
        return nat_instance, elastic_ip.public_ip
