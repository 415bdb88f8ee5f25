"""NatInstances: NAT instances, their security group and the default routes, for any VPC.

The NAT layer of the guide, for a VPC made elsewhere (awsx.ec2.Vpc with no NAT Gateways,
plain aws.ec2 resources, or NatInstanceVpc). Every argument is checked before anything is
registered; plain subnet and route table ids are also checked with AWS (same VPC, right AZ).

No `from __future__ import annotations` here: Pulumi's schema analyzer reads this module's
annotations at run time.
"""

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi.runtime.sync_await import _sync_await

from nat.design import monitoring
from nat.design.ami import al2023_ssm_parameter
from nat.design.ha import HA_GROUP_TAG, RELEASE_TAG, agent_settings, policy_document
from nat.design.rules import ANYWHERE, NAT_SECURITY_GROUP, expand_rules
from nat.design.userdata import encode_user_data, release_of, render_user_data
from nat.inputs.args import NatInstancesArgs
from nat.inputs.instance_types import ARM64, X86_64, is_burstable
from nat.inputs.settings import NatLayerSettings, component_problems, nat_instances_settings
from nat.inputs.tuning import TuningOverrides
from nat.inputs.validation import ArgumentsError
from nat.instance.agent import MetricsSettings
from nat.instance.agent import Settings as AgentSettings

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


def output_map(values: Mapping[str, Any]) -> pulumi.Output[dict[str, Any]]:
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


def check_plain_ids(name: str, settings: NatLayerSettings,
                    opts: pulumi.ResourceOptions | None) -> None:
    """Ask AWS about subnets and route tables given as plain ids: in the VPC, in their AZ.

    Ids that are outputs of resources made in the same program are unknown until deployment;
    for those, AWS itself refuses a subnet of another VPC.
    """
    problems = component_problems("NatInstances", name)
    wiring = settings.wiring
    assert wiring is not None
    vpc_id = wiring.vpc_id if isinstance(wiring.vpc_id, str) else None
    for zone in settings.nat_zones:
        subnet_id = wiring.public_subnet_ids[zone]
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
    for zone, tables in wiring.private_route_table_ids.items():
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


OUTPUTS = ("security_group_id", "nat_instance_ids", "nat_network_interface_ids",
           "nat_public_ips", "nat_zone_for_private_route_tables", "auto_scaling_group_names",
           "instance_role_name", "connection_table_sizes", "metrics_namespace", "metrics_group",
           "alarm_names", "alarm_topic_arn", "dashboard_name")


class NatInstances(pulumi.ComponentResource):
    """NAT instances for an existing VPC: one per AZ (or one for all), the AWS guide's security
    group, and each private route table's 0.0.0.0/0 route to the NAT of its AZ. With
    highAvailability, each NAT runs in an Auto Scaling group of one and an agent fails its AZ
    over to another AZ's NAT within seconds."""

    security_group_id: pulumi.Output[str]
    """The NATs' security group: exactly the guide's table."""
    nat_instance_ids: pulumi.Output[dict[str, str]]
    """AZ → the NAT instance in that AZ (empty with highAvailability: the Auto Scaling groups
    own the instances)."""
    nat_network_interface_ids: pulumi.Output[dict[str, str]]
    """AZ → the network interface of that AZ's NAT: what its routes point at."""
    nat_public_ips: pulumi.Output[dict[str, str]]
    """AZ → the NAT's public address (its Elastic IP unless useElasticIp is false). Partners'
    allow-lists need all of them: during a failover an AZ leaves through another AZ's NAT."""
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

    def __init__(self, name: str, args: NatInstancesArgs,
                 opts: pulumi.ResourceOptions | None = None, *,
                 _legacy: Legacy | None = None) -> None:
        try:
            settings = nat_instances_settings(name, plain_maps(args))
        except ArgumentsError as error:
            raise InvalidArgumentsError.of(error) from None
        self._init(name, settings, opts, _legacy)

    @classmethod
    def from_settings(cls, name: str, settings: NatLayerSettings,
                      opts: pulumi.ResourceOptions | None = None, *,
                      _legacy: Legacy | None = None) -> "NatInstances":
        """NAT instances from arguments already checked (NatInstanceVpc's own, or a stack's
        config): each input is checked once, where it enters."""
        component = cls.__new__(cls)
        component._init(name, settings, opts, _legacy)
        return component

    def _init(self, name: str, settings: NatLayerSettings,
              opts: pulumi.ResourceOptions | None, legacy: Legacy | None) -> None:
        if settings.wiring is None:
            raise ValueError("NatInstances needs settings with their wiring (ids)")
        check_plain_ids(name, settings, opts)
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._settings = settings
        self._wiring = settings.wiring
        self._legacy = legacy
        # names this component's NATs: the HA group tag and the metrics' NatGroup dimension
        self._group = f"{pulumi.get_project()}/{pulumi.get_stack()}/{name}"
        self._build()

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

    @property
    def _high_availability(self) -> bool:
        return self._settings.options.high_availability.enabled

    # --- the resources -------------------------------------------------------------------------
    def _build(self) -> None:
        name, settings = self._name, self._settings
        options = settings.options
        invoke = pulumi.InvokeOutputOptions(parent=self)

        # known now (the alarms' thresholds and the user data need them as plain values)
        instance_type_info = aws.ec2.get_instance_type(
            instance_type=options.instance.instance_type, opts=pulumi.InvokeOptions(parent=self))
        architecture = architecture_from_aws(instance_type_info.supported_architectures,
                                             options.instance.architecture)
        # the table size the kernel gets and the alarm measures against: one number
        self._table_size = monitoring.conntrack_max(
            instance_type_info.memory_size, options.instance.tuning.values.get("max_entries"))
        self._tuning = TuningOverrides.from_values(
            {**options.instance.tuning.values, "max_entries": self._table_size})
        self._region = aws.get_region_output(opts=invoke).region
        if options.instance.ami_id is not None:
            ami_id: pulumi.Input[str] = options.instance.ami_id
            ami_source: pulumi.Input[str] = options.instance.ami_id
        else:
            parameter = al2023_ssm_parameter(architecture)
            ami_id = aws.ssm.get_parameter_output(name=parameter, opts=invoke).value
            ami_source = f"ssm:{parameter}"

        security_group = self._security_group()
        role = self._role()
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name,
                                          opts=self._options(f"{name}-profile", role)) \
            if role else None

        # one group per AZ, so `pulumi stack` reads like the topology
        zones: dict[str, pulumi.ComponentResource] = {
            zone: pulumi.ComponentResource(ZONE_TYPE, f"{name}-zone-{zone}", None,
                                           pulumi.ResourceOptions(parent=self))
            for zone in settings.availability_zones}
        interfaces: dict[str, pulumi.Output[str]] = {}
        public_ips: dict[str, pulumi.Output[str]] = {}
        instance_ids: dict[str, pulumi.Output[str]] = {}
        groups: dict[str, pulumi.Output[str]] = {}
        if self._high_availability:
            assert role is not None and profile is not None
            self._ha_zones(zones, ami_id, ami_source, security_group, role, profile,
                           interfaces, public_ips, groups)
        else:
            user_data = self._region.apply(lambda region: encode_user_data(render_user_data(
                settings.vpc_cidrs, self._tuning, self._metrics_only_agent(region))))
            for zone in settings.nat_zones:
                nat, public_ips[zone] = self._nat_instance(
                    zone, zones[zone], self._wiring.public_subnet_ids[zone], ami_id, security_group,
                    profile, user_data)
                instance_ids[zone] = nat.id
                interfaces[zone] = nat.primary_network_interface_id

        for zone in settings.availability_zones:
            tables = self._wiring.private_route_table_ids[zone]
            for index, table in enumerate(tables):
                route_name = f"{name}-default-route-{zone}" + (f"-{index + 1}" if index else "")
                legacy = self._legacy.route_names.get(zone) if self._legacy else None
                # With high availability the agents move this route; Pulumi keeps what it
                # created, and deletes it, but never points it back at a NAT by itself.
                aws.ec2.Route(route_name, route_table_id=table,
                              destination_cidr_block=ANYWHERE,
                              network_interface_id=interfaces[settings.nat_zone_for(zone)],
                              opts=self._options(route_name, zones[zone], legacy,
                                                 ignore_changes=["networkInterfaceId"]
                                                 if self._high_availability else None))
        for zone_group in zones.values():
            zone_group.register_outputs({})

        self.security_group_id = security_group.id
        self.nat_instance_ids = output_map(instance_ids)
        self.nat_network_interface_ids = output_map(interfaces)
        self.nat_public_ips = output_map(public_ips)
        self.nat_zone_for_private_route_tables = output_map(
            {zone: settings.nat_zone_for(zone) for zone in settings.availability_zones})
        self.auto_scaling_group_names = output_map(groups)
        self.instance_role_name = role.name if role else pulumi.Output.from_input("")
        self.connection_table_sizes = pulumi.Output.from_input(
            dict.fromkeys(settings.nat_zones, self._table_size))
        self._monitoring(zones, {
            zone: ("AutoScalingGroupName", groups[zone]) if self._high_availability
            else ("InstanceId", instance_ids[zone]) for zone in settings.nat_zones})
        self.register_outputs({key: getattr(self, key) for key in OUTPUTS})

    def _security_group(self) -> aws.ec2.SecurityGroup:
        """Each guide row is its own resource, with no inline rules: the provider then removes
        AWS's default allow-all egress rule, so the group holds exactly the table."""
        name, settings = self._name, self._settings
        sg_name = f"{name}-sg"
        security_group = aws.ec2.SecurityGroup(
            sg_name, vpc_id=self._wiring.vpc_id,
            description="NAT instances: the AWS guide's rules (nat-instance-vpc)",
            tags=self._tags(sg_name), opts=self._options(sg_name, self))
        for rule in expand_rules(settings.private_cidrs, settings.options.access.ssh_cidr,
                                 settings.options.access.enable_test_rules,
                                 self._high_availability):
            rule_class = (aws.vpc.SecurityGroupIngressRule if rule.direction == "inbound"
                          else aws.vpc.SecurityGroupEgressRule)
            rule_name = f"{sg_name}-{rule.slug}"
            peer: dict[str, Any] = {"referenced_security_group_id": security_group.id} \
                if rule.cidr == NAT_SECURITY_GROUP else {"cidr_ipv4": rule.cidr}
            rule_class(rule_name, security_group_id=security_group.id, **peer,
                       ip_protocol=rule.protocol, from_port=rule.from_port,
                       to_port=rule.to_port, description=rule.description,
                       opts=self._options(rule_name, security_group))
        return security_group

    def _role(self) -> aws.iam.Role | None:
        """The NATs' role: SSM; the agents' metrics and, with high availability, routes."""
        options = self._settings.options
        if not (options.instance.enable_ssm or self._high_availability or
                options.monitoring.enabled):
            return None
        name = self._name
        role = aws.iam.Role(f"{name}-role", assume_role_policy=json.dumps({
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                           "Principal": {"Service": "ec2.amazonaws.com"}}],
        }), tags=self._tags(f"{name}-role"), opts=self._options(f"{name}-role", self))
        if options.instance.enable_ssm:
            aws.iam.RolePolicyAttachment(f"{name}-ssm", role=role.name,
                                         policy_arn=SSM_POLICY_ARN,
                                         opts=self._options(f"{name}-ssm", role))
        if options.monitoring.enabled:
            aws.iam.RolePolicy(f"{name}-metrics", role=role.id, policy=json.dumps({
                "Version": "2012-10-17",
                "Statement": [monitoring.policy_statement(options.monitoring.namespace)]}),
                opts=self._options(f"{name}-metrics", role))
        return role

    def _metrics_settings(self) -> MetricsSettings | None:
        watch = self._settings.options.monitoring
        return monitoring.agent_settings(watch, self._group) if watch.enabled else None

    def _metrics_only_agent(self, region: str) -> AgentSettings | None:
        """The agent of a plain NAT: metrics, no failover."""
        metrics = self._metrics_settings()
        return None if metrics is None else AgentSettings(region=region, metrics=metrics)

    def _credit_specification(self, kind: Any) -> Any:
        """A NAT must not be throttled to its CPU baseline: burstable types run unlimited
        (the cpu-credits alarm says when that costs money)."""
        if not is_burstable(self._settings.options.instance.instance_type):
            return None
        return kind(cpu_credits="unlimited")

    def _nat_instance(self, zone: str, parent: pulumi.Resource, subnet_id: pulumi.Input[str],
                      ami_id: pulumi.Input[str], security_group: aws.ec2.SecurityGroup,
                      instance_profile: aws.iam.InstanceProfile | None,
                      user_data: pulumi.Input[str]
                      ) -> tuple[aws.ec2.Instance, pulumi.Output[str]]:
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
            credit_specification=self._credit_specification(
                aws.ec2.InstanceCreditSpecificationArgs),
            user_data_base64=user_data,
            # cloud-init runs user data once per instance: an in-place change would never run
            # the new script, so a changed script replaces the NAT.
            user_data_replace_on_change=True,
            tags=self._tags(nat_name),
            opts=self._options(nat_name, parent,
                               ignore_changes=[] if instance.ami_id else ["ami"]))
        if not instance.use_elastic_ip:
            return nat_instance, nat_instance.public_ip
        elastic_ip = self._elastic_ip(zone, parent)
        assoc_name = f"{name}-eip-assoc-{zone}"
        aws.ec2.EipAssociation(assoc_name, allocation_id=elastic_ip.allocation_id,
                               instance_id=nat_instance.id,
                               opts=self._options(assoc_name, elastic_ip))
        return nat_instance, elastic_ip.public_ip

    def _elastic_ip(self, zone: str, parent: pulumi.Resource) -> aws.ec2.Eip:
        """The AZ's public address: the same resource in both modes, so switching to high
        availability keeps it."""
        eip_name = f"{self._name}-eip-{zone}"
        return aws.ec2.Eip(eip_name, domain="vpc", tags=self._tags(eip_name),
                           opts=self._options(eip_name, parent))

    # --- high availability ---------------------------------------------------------------------
    def _ha_zones(self, zones: Mapping[str, pulumi.Resource],
                  ami_id: pulumi.Input[str], ami_source: pulumi.Input[str],
                  security_group: aws.ec2.SecurityGroup, role: aws.iam.Role,
                  profile: aws.iam.InstanceProfile, interfaces: dict[str, pulumi.Output[str]],
                  public_ips: dict[str, pulumi.Output[str]],
                  groups: dict[str, pulumi.Output[str]]) -> None:
        """Per AZ: an interface that keeps the Elastic IP, a launch template that puts each
        new instance on it, an Auto Scaling group of one; the agents' policy."""
        name, settings = self._name, self._settings
        invoke = pulumi.InvokeOutputOptions(parent=self)
        ha_group = self._group
        tables = [(table, settings.nat_zone_for(zone)) for zone in settings.availability_zones
                  for table in self._wiring.private_route_table_ids[zone]]
        policy = aws.iam.RolePolicy(
            f"{name}-ha", role=role.id,
            policy=pulumi.Output.all(
                aws.get_partition_output(opts=invoke).partition,
                aws.get_region_output(opts=invoke).region,
                aws.get_caller_identity_output(opts=invoke).account_id,
                *[table for table, _ in tables]).apply(
                lambda values: json.dumps(policy_document(values[0], values[1], values[2],
                                                          values[3:], ha_group))),
            opts=self._options(f"{name}-ha", role))

        associations: dict[str, aws.ec2.EipAssociation] = {}
        eni: dict[str, aws.ec2.NetworkInterface] = {}
        for zone in settings.nat_zones:
            eni_name = f"{name}-eni-{zone}"
            eni[zone] = aws.ec2.NetworkInterface(
                eni_name, subnet_id=self._wiring.public_subnet_ids[zone],
                security_groups=[security_group.id], source_dest_check=False,
                description="NAT instance interface (nat-instance-vpc): outlives instances, "
                            "keeps the AZ's Elastic IP",
                tags=self._tags(eni_name), opts=self._options(eni_name, zones[zone]))
            elastic_ip = self._elastic_ip(zone, zones[zone])
            assoc_name = f"{name}-eip-assoc-{zone}"
            associations[zone] = aws.ec2.EipAssociation(
                assoc_name, allocation_id=elastic_ip.allocation_id,
                network_interface_id=eni[zone].id, opts=self._options(assoc_name, elastic_ip))
            interfaces[zone] = eni[zone].id
            public_ips[zone] = elastic_ip.public_ip

        instance = settings.options.instance
        agent = pulumi.Output.all(
            self._region, ami_source,
            {zone: pulumi.Output.all(e.id, e.private_ip) for zone, e in eni.items()},
            [pulumi.Output.from_input(table) for table, _ in tables])
        release_and_user_data = agent.apply(lambda values: self._user_data(
            values[0], values[1], values[2], [(table, owner) for table, (_, owner) in
                                             zip(values[3], tables, strict=True)]))
        for zone in settings.nat_zones:
            lt_name, group_name = f"{name}-lt-{zone}", f"{name}-asg-{zone}"
            template = aws.ec2.LaunchTemplate(
                lt_name,
                image_id=ami_id,
                instance_type=instance.instance_type,
                key_name=instance.key_name,
                iam_instance_profile=aws.ec2.LaunchTemplateIamInstanceProfileArgs(
                    name=profile.name),
                # the instance's primary interface is the AZ's own: its address, its EIP,
                # source/dest check off, the NAT security group
                network_interfaces=[aws.ec2.LaunchTemplateNetworkInterfaceArgs(
                    device_index=0, network_interface_id=eni[zone].id,
                    delete_on_termination="false")],
                metadata_options=aws.ec2.LaunchTemplateMetadataOptionsArgs(
                    http_endpoint="enabled", http_tokens="required",
                    http_put_response_hop_limit=1),
                block_device_mappings=[aws.ec2.LaunchTemplateBlockDeviceMappingArgs(
                    device_name="/dev/xvda", ebs=aws.ec2.LaunchTemplateBlockDeviceMappingEbsArgs(
                        volume_type="gp3", encrypted="true", delete_on_termination="true"))],
                user_data=release_and_user_data.apply(lambda r: r[1]),
                credit_specification=self._credit_specification(
                    aws.ec2.LaunchTemplateCreditSpecificationArgs),
                tag_specifications=[aws.ec2.LaunchTemplateTagSpecificationArgs(
                    resource_type=kind, tags=self._tags(f"{name}-{zone}"))
                    for kind in ("instance", "volume")],
                update_default_version=True,
                tags=self._tags(lt_name),
                # as for plain NATs: a new AL2023 release is no reason to replace them
                opts=self._options(lt_name, zones[zone],
                                   ignore_changes=[] if instance.ami_id else ["imageId"]))
            group = aws.autoscaling.Group(
                group_name, min_size=1, max_size=1, desired_capacity=1,
                vpc_zone_identifiers=[self._wiring.public_subnet_ids[zone]],
                launch_template=aws.autoscaling.GroupLaunchTemplateArgs(
                    id=template.id, version=template.latest_version.apply(str)),
                health_check_type="EC2", health_check_grace_period=120,
                # the interface can serve one instance at a time: replace by terminating
                # first (the agents have already moved the AZ's routes away)
                instance_maintenance_policy=aws.autoscaling.GroupInstanceMaintenancePolicyArgs(
                    min_healthy_percentage=0, max_healthy_percentage=100),
                tags=[aws.autoscaling.GroupTagArgs(key=key, value=value, propagate_at_launch=True)
                      for key, value in self._tags(f"{name}-{zone}").items()] + [
                    aws.autoscaling.GroupTagArgs(key=HA_GROUP_TAG, value=ha_group,
                                                 propagate_at_launch=False),
                    aws.autoscaling.GroupTagArgs(key=RELEASE_TAG,
                                                 value=release_and_user_data.apply(
                                                     lambda r: r[0]),
                                                 propagate_at_launch=False)],
                # boot with the address in place and the agent's rights granted
                opts=self._options(group_name, zones[zone],
                                   depends_on=[associations[zone], policy]))
            groups[zone] = group.name

    def _user_data(self, region: str, ami_source: str,
                   interfaces: Mapping[str, Sequence[str]],
                   tables: Sequence[tuple[str, str]]) -> tuple[str, str]:
        """(release, user data): the release fingerprints the rest of the launch template."""
        settings = self._settings
        instance = settings.options.instance
        nats = {zone: (pair[0], pair[1]) for zone, pair in interfaces.items()}

        def rendered(release: str) -> str:
            return render_user_data(settings.vpc_cidrs, self._tuning, agent_settings(
                region, nats, tables, settings.options.high_availability, release,
                self._metrics_settings()))
        release = release_of(rendered(""), ami_source, instance.instance_type,
                             instance.key_name)
        return release, encode_user_data(rendered(release))

    # --- monitoring ----------------------------------------------------------------------------
    def _monitoring(self, zones: Mapping[str, pulumi.Resource],
                    credit_dimensions: Mapping[str, tuple[str, pulumi.Output[str]]]) -> None:
        """Per AZ, the alarms (under the AZ's group); the stack's topic and dashboard."""
        name, settings = self._name, self._settings
        watch = settings.options.monitoring
        empty = pulumi.Output.from_input("")
        self.metrics_namespace = pulumi.Output.from_input(watch.namespace if watch.enabled
                                                          else "")
        self.metrics_group = pulumi.Output.from_input(self._group)
        self.alarm_topic_arn = empty
        self.dashboard_name = empty
        self.alarm_names = output_map({})
        if not watch.enabled:
            return
        burstable = is_burstable(settings.options.instance.instance_type)
        if watch.create_alarm_topic:
            topic = aws.sns.Topic(f"{name}-alarms", tags=self._tags(f"{name}-alarms"),
                                  opts=self._options(f"{name}-alarms", self))
            self.alarm_topic_arn = topic.arn
        elif watch.alarm_topic_arn:
            self.alarm_topic_arn = pulumi.Output.from_input(watch.alarm_topic_arn)
        actions = [self.alarm_topic_arn] if watch.alarm_topic_arn or watch.create_alarm_topic \
            else []
        if watch.alarms:
            names: dict[str, Any] = {}
            for zone in settings.nat_zones:
                specs = monitoring.alarm_specs(zone, self._group, watch.namespace,
                                               watch.publish_interval_seconds, self._table_size,
                                               burstable, credit_dimensions[zone])
                names[zone] = pulumi.Output.all(*[
                    self._alarm(zone, zones[zone], spec, actions).name for spec in specs])
            self.alarm_names = output_map(names)
        if watch.dashboard:
            body = pulumi.Output.all(self._region, {
                zone: value for zone, (_, value) in credit_dimensions.items()}).apply(
                lambda values: json.dumps(monitoring.dashboard_body(
                    settings.nat_zones, self._group, watch.namespace, values[0],
                    watch.detailed_metrics, self._high_availability,
                    dict.fromkeys(settings.nat_zones, self._table_size),
                    {zone: (credit_dimensions[zone][0], value)
                     for zone, value in values[1].items()} if burstable else {})))
            board_name = monitoring.dashboard_name(pulumi.get_project(), pulumi.get_stack(),
                                                   name)
            dashboard = aws.cloudwatch.Dashboard(
                f"{name}-dashboard", dashboard_name=board_name, dashboard_body=body,
                opts=self._options(f"{name}-dashboard", self))
            self.dashboard_name = dashboard.dashboard_name

    def _alarm(self, zone: str, parent: pulumi.Resource, spec: monitoring.AlarmSpec,
               actions: list[pulumi.Output[str]]) -> aws.cloudwatch.MetricAlarm:
        alarm_name = f"{self._name}-{spec.slug}-{zone}"
        return aws.cloudwatch.MetricAlarm(
            alarm_name, alarm_description=spec.description, namespace=spec.namespace,
            metric_name=spec.metric_name, statistic=spec.statistic, period=spec.period,
            evaluation_periods=spec.evaluation_periods,
            datapoints_to_alarm=spec.datapoints_to_alarm, threshold=spec.threshold,
            comparison_operator=spec.comparison, treat_missing_data=spec.treat_missing_data,
            dimensions=dict(spec.dimensions), alarm_actions=actions, ok_actions=actions,
            tags=self._tags(alarm_name), opts=self._options(alarm_name, parent))
