"""NatInstances: NAT instances, their security group and the default routes, for any VPC.

The NAT layer of the guide, for a VPC made elsewhere (awsx.ec2.Vpc with no NAT Gateways,
plain aws.ec2 resources, or NatInstanceVpc). Every argument is checked before anything is
registered; plain subnet and route table ids are also checked with AWS (same VPC, right AZ).

No `from __future__ import annotations` here: Pulumi's schema analyzer reads this module's
annotations at run time.
"""

import contextlib
import functools
import json
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
from pulumi.runtime.sync_await import _sync_await

from nat.components.zone import TAG_COMPONENT, Family, LaunchSpec, Legacy, NatZone
from nat.design import monitoring
from nat.design.addresses import address_limit_problem, quota_warning
from nat.design.ami import al2023_ssm_parameter
from nat.design.ha import agent_settings, ha_group_tag, policy_document
from nat.design.rules import NAT_SECURITY_GROUP, expand_rules
from nat.design.userdata import (
    AgentObject,
    agent_object_key,
    agent_script,
    encode_user_data,
    release_of,
    render_user_data,
)
from nat.inputs.args import NatInstancesArgs
from nat.inputs.instance_types import ARM64, X86_64, is_burstable
from nat.inputs.settings import (
    InstanceSettings,
    NatLayerSettings,
    Wiring,
    component_problems,
    nat_instances_settings,
)
from nat.inputs.tuning import TuningOverrides
from nat.inputs.validation import CALLER_SPELLING, ArgumentsError, InputWarning, Problems
from nat.instance.agent import MetricsSettings
from nat.instance.agent import Settings as AgentSettings

COMPONENT_TYPE = "nat:index:NatInstances"
SSM_POLICY_ARN = "arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore"


class InvalidArgumentsError(ArgumentsError, pulumi.RunError):
    """Bad component arguments. A RunError, so Pulumi prints the message without a traceback."""

    @classmethod
    def of(cls, error: ArgumentsError) -> "InvalidArgumentsError":
        return cls(error.heading, error.problems, error.fields)


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


@contextlib.contextmanager
def warnings_to_pulumi() -> Iterator[None]:
    """Values accepted with a doubt (InputWarning) are shown as Pulumi warnings."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", InputWarning)
        yield
    for warning in caught:
        if issubclass(warning.category, InputWarning):
            pulumi.log.warn(str(warning.message))
        else:  # not ours: as it would have been shown
            warnings.warn_explicit(warning.message, warning.category, warning.filename,
                                   warning.lineno)


def looked_up(value: Any, lookup: str, field: str, key: str) -> Any:
    """A field a lookup must answer. Pulumi's standard mocks answer every lookup with `{}`:
    say which lookup and field a test's mocks must give, not `int(None)`."""
    if value is None:
        raise pulumi.RunError(
            f"{lookup} answered without {field} for {key}: a test's mocks must answer it "
            "(nat.testing.NatMocks answers every lookup the components make)")
    return value


def subnet_problem(zone: str, vpc_id: str | None, subnet: Mapping[str, Any], vpc_field: str
                   ) -> tuple[str, str] | None:
    """(why, fix) for a public subnet of another VPC, or keyed under another AZ."""
    if vpc_id and subnet["vpc_id"] != vpc_id:
        return (f"in {subnet['vpc_id']}, not in {vpc_field} {vpc_id}",
                "give a public subnet of that VPC")
    if subnet["availability_zone"] != zone:
        return (f"in {subnet['availability_zone']}, not {zone}", "key each subnet by its own AZ "
                "(a NAT in another AZ would carry this AZ's traffic across AZs)")
    return None


def table_problem(vpc_id: str | None, table: Mapping[str, Any], vpc_field: str
                  ) -> tuple[str, str] | None:
    if vpc_id and table["vpc_id"] != vpc_id:
        return (f"in {table['vpc_id']}, not in {vpc_field} {vpc_id}",
                "give route tables of that VPC")
    return None


def check_address_limit(component: str, name: str, instance: InstanceSettings,
                        opts: pulumi.ResourceOptions | None, standby: bool = False) -> None:
    """More public addresses than the instance type's interface holds (with the standby
    address of keepConnections): refused before anything is registered (AWS would refuse the
    interface at deploy time)."""
    if instance.public_addresses == 1 and not standby:
        return
    found = aws.ec2.get_instance_type(instance_type=instance.instance_type,
                                      opts=invoke_options(opts))
    limit = looked_up(found.maximum_ipv4_addresses_per_interface, "aws.ec2.getInstanceType",
                      "maximumIpv4AddressesPerInterface", instance.instance_type)
    problem = address_limit_problem(instance.public_addresses + standby,
                                    instance.instance_type, int(limit))
    if problem is not None:
        label = CALLER_SPELLING.get()
        problems = component_problems(component, name, label)
        field = "high_availability.keep_connections" if standby else \
            "instance.public_addresses"
        problems.fail(field, True if standby else instance.public_addresses, *problem)
        raise InvalidArgumentsError.of(problems.error())


def own_elastic_ips(component: str, name: str, settings: NatLayerSettings,
                    opts: pulumi.ResourceOptions | None
                    ) -> dict[str, list[tuple[str, str]]] | None:
    """The caller's own Elastic IPs, looked up before anything is registered: NAT AZ →
    (allocation id, public address) each. Refused: one AWS does not know in this region, or
    one associated with anything but an interface of this stack's NATs (tagged with its
    component: the second `pulumi up` finds them on its own interfaces)."""
    instance = settings.options.instance
    given = instance.elastic_ip_allocation_ids
    if not given:
        return None
    owner = settings.options.tags.get(TAG_COMPONENT, name)
    invoke = invoke_options(opts)
    problems = component_problems(component, name, CALLER_SPELLING.get())
    field = "instance.elastic_ip_allocation_ids"
    found: list[tuple[str, str]] = []
    # which exist, asked so that an unknown id is an answer, not a failed lookup
    existing = set(aws.ec2.get_eips(filters=[aws.ec2.GetEipsFilterArgs(
        name="allocation-id", values=list(given))], opts=invoke).allocation_ids or [])
    for allocation in given:
        if allocation not in existing:
            problems.fail(field, allocation, "not found in this account and region",
                          "give an Elastic IP of this region (`aws ec2 describe-addresses` "
                          "lists them)")
            continue
        address = aws.ec2.get_elastic_ip(id=allocation, opts=invoke)
        interface = address.network_interface_id
        if address.association_id:
            tags = aws.ec2.get_network_interface(id=interface, opts=invoke).tags or {} \
                if interface else {}
            if tags.get(TAG_COMPONENT) != owner:
                held_by = interface or address.instance_id or "something else"
                problems.fail(field, allocation, f"associated with {held_by}, not with this "
                              "stack's NATs", "disassociate it first (`aws ec2 "
                              f"disassociate-address --association-id "
                              f"{address.association_id}`), or give another")
                continue
        found.append((allocation, looked_up(address.public_ip, "aws.ec2.getElasticIp",
                                            "publicIp", allocation)))
    if problems.found:
        raise InvalidArgumentsError.of(problems.error())
    per = instance.public_addresses
    return {zone: found[index * per:(index + 1) * per]
            for index, zone in enumerate(settings.nat_zones)}


@dataclass(frozen=True)
class AddressCheck:
    """The public-address checks' verdict, made once where the arguments enter (NatInstanceVpc
    hands its own to its NatInstances): the caller's own Elastic IPs by NAT AZ, if any."""

    own_elastic_ips: dict[str, list[tuple[str, str]]] | None


def check_addresses(component: str, name: str, settings: NatLayerSettings,
                    opts: pulumi.ResourceOptions | None) -> AddressCheck:
    """The count against the instance type, and the caller's own Elastic IPs."""
    check_address_limit(component, name, settings.options.instance, opts,
                        standby=settings.options.high_availability.keep_connections)
    return AddressCheck(own_elastic_ips(component, name, settings, opts))


class IdChecks:
    """Subnets and route tables checked with AWS: in the VPC, in their AZ.

    Plain ids are looked up and checked now, before anything is registered. Ids that are
    outputs of other resources (`vpc.vpc_id`, awsx's subnets) are looked up once they are
    known, at deploy time, with the same messages; every resource that takes an id takes it
    through `gated`, so none of them (the NATs, the routes, the agents' policy) is created
    unless every check passed.
    """

    def __init__(self, name: str, wiring: Wiring, opts: pulumi.ResourceOptions | None) -> None:
        self.name = name
        self.wiring = wiring
        self.invoke = invoke_options(opts)
        self.label = CALLER_SPELLING.get()  # the deploy-time check speaks as the caller
        self.later: list[pulumi.Output[Any]] = []  # each: a problem (field, id, why, fix) or None
        self.gate: pulumi.Output[Any] | None = None

    def _subnet(self, subnet_id: Any) -> Any:
        if isinstance(subnet_id, str):
            found = aws.ec2.get_subnet(id=subnet_id, opts=self.invoke)
            return {"vpc_id": looked_up(found.vpc_id, "aws.ec2.getSubnet", "vpcId", subnet_id),
                    "availability_zone": looked_up(found.availability_zone, "aws.ec2.getSubnet",
                                                   "availabilityZone", subnet_id)}
        found_later = aws.ec2.get_subnet_output(id=subnet_id, opts=pulumi.InvokeOutputOptions(
            parent=self.invoke.parent, provider=self.invoke.provider))
        return pulumi.Output.all(subnet_id, found_later.vpc_id,
                                 found_later.availability_zone).apply(
            lambda v: {"vpc_id": looked_up(v[1], "aws.ec2.getSubnet", "vpcId", v[0]),
                       "availability_zone": looked_up(v[2], "aws.ec2.getSubnet",
                                                      "availabilityZone", v[0])})

    def _table(self, table_id: Any) -> Any:
        if isinstance(table_id, str):
            found = aws.ec2.get_route_table(route_table_id=table_id, opts=self.invoke)
            return {"vpc_id": looked_up(found.vpc_id, "aws.ec2.getRouteTable", "vpcId",
                                        table_id)}
        found_later = aws.ec2.get_route_table_output(
            route_table_id=table_id, opts=pulumi.InvokeOutputOptions(
                parent=self.invoke.parent, provider=self.invoke.provider))
        return pulumi.Output.all(table_id, found_later.vpc_id).apply(
            lambda v: {"vpc_id": looked_up(v[1], "aws.ec2.getRouteTable", "vpcId", v[0])})

    def run(self, settings: NatLayerSettings) -> None:
        """Check what can be checked now (raising at once); queue the rest."""
        problems = component_problems("NatInstances", self.name, self.label)
        vpc_id, vpc_field = self.wiring.vpc_id, self.label("vpc_id")
        for zone in settings.nat_zones:
            subnet_id = self.wiring.public_subnet_ids[zone]
            self._check(problems, f"public_subnet_ids.{zone}", vpc_id, subnet_id,
                        self._subnet(subnet_id),
                        functools.partial(subnet_problem, zone, vpc_field=vpc_field))
        for zone, tables in self.wiring.private_route_table_ids.items():
            for table_id in tables:
                self._check(problems, f"private_route_table_ids.{zone}", vpc_id, table_id,
                            self._table(table_id),
                            lambda vpc, found: table_problem(vpc, found, vpc_field))
        if problems.found:
            raise InvalidArgumentsError.of(problems.error())
        if self.later:
            name, label = self.name, self.label

            def verdict(found: list[Any]) -> bool:
                problems = component_problems("NatInstances", name, label)
                for problem in found:
                    if problem is not None:
                        problems.fail(*problem)
                if problems.found:
                    # a RunError only: the SDK wraps a ValueError in "While processing
                    # input" lines, and Pulumi prints a RunError as its message alone
                    raise pulumi.RunError(str(problems.error()))
                return True
            self.gate = pulumi.Output.all(*self.later).apply(verdict)

    def _check(self, problems: Problems, field: str, vpc_id: Any, resource_id: Any, found: Any,
               rule: Callable[[Any, Mapping[str, Any]], tuple[str, str] | None]) -> None:
        if all(isinstance(v, (str, dict)) for v in (vpc_id, resource_id, found)):
            problem = rule(vpc_id, found)
            if problem is not None:
                problems.fail(field, resource_id, *problem)
            return
        # some of it is known only at deploy time
        self.later.append(pulumi.Output.all(vpc_id, resource_id, found).apply(
            lambda v: None if (p := rule(v[0], v[2])) is None else (field, v[1], *p)))

    def gated(self, resource_id: Any) -> Any:
        """The id, known only once every check passed (the id itself when none waits)."""
        if self.gate is None:
            return resource_id
        return pulumi.Output.all(self.gate, resource_id).apply(lambda v: v[1])

    def checked_wiring(self) -> Wiring:
        wiring = self.wiring
        return Wiring(
            self.gated(wiring.vpc_id),
            {zone: self.gated(subnet) for zone, subnet in wiring.public_subnet_ids.items()},
            {zone: tuple(self.gated(t) for t in tables)
             for zone, tables in wiring.private_route_table_ids.items()},
            known_good=True)


OUTPUTS = ("security_group_id", "nat_instance_ids", "nat_network_interface_ids",
           "nat_public_ips", "nat_public_ip_lists", "nat_zone_for_private_route_tables",
           "auto_scaling_group_names",
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

    def __init__(self, name: str, args: NatInstancesArgs,
                 opts: pulumi.ResourceOptions | None = None, *,
                 _legacy: Legacy | None = None) -> None:
        try:
            with warnings_to_pulumi():
                settings = nat_instances_settings(name, plain_maps(args),
                                                  CALLER_SPELLING.get())
        except ArgumentsError as error:
            raise InvalidArgumentsError.of(error) from None
        self._init(name, settings, opts, _legacy)

    @classmethod
    def from_settings(cls, name: str, settings: NatLayerSettings,
                      opts: pulumi.ResourceOptions | None = None, *,
                      _legacy: Legacy | None = None,
                      _addresses: AddressCheck | None = None) -> "NatInstances":
        """NAT instances from arguments already checked (NatInstanceVpc's own, or a stack's
        config): each input is checked once, where it enters (`_addresses`: the address
        checks NatInstanceVpc made)."""
        component = cls.__new__(cls)
        component._init(name, settings, opts, _legacy, _addresses)
        return component

    def _init(self, name: str, settings: NatLayerSettings,
              opts: pulumi.ResourceOptions | None, legacy: Legacy | None,
              addresses: AddressCheck | None = None) -> None:
        if settings.wiring is None:
            raise ValueError("NatInstances needs settings with their wiring (ids)")
        wiring = settings.wiring
        addresses = addresses or check_addresses("NatInstances", name, settings, opts)
        self._own_elastic_ips = addresses.own_elastic_ips
        if not wiring.known_good:
            checks = IdChecks(name, wiring, opts)
            checks.run(settings)
            wiring = checks.checked_wiring()
        super().__init__(COMPONENT_TYPE, name, None, opts)
        self._name = name
        self._settings = settings
        self._wiring = wiring
        self._family = Family(name, settings.options.tags, legacy)
        # names this component's NATs in the metrics' NatGroup dimension
        self._group = f"{pulumi.get_project()}/{pulumi.get_stack()}/{name}"
        # the agents' right to replace NATs follows this tag: unique per deployment (two
        # organisations' stacks of the same names in one account are two VPCs)
        self._ha_group = pulumi.Output.from_input(wiring.vpc_id).apply(
            # older engines tell no organization: Pulumi's own name for it then
            lambda vpc: ha_group_tag(pulumi.get_organization() or "organization", self._group,
                                     vpc))
        self._build()

    # --- helpers -------------------------------------------------------------------------------
    def _tags(self, resource_name: str) -> dict[str, str]:
        return self._family.tags_of(resource_name)

    def _options(self, resource_name: str, parent: pulumi.Resource,
                 **extra: Any) -> pulumi.ResourceOptions:
        return self._family.options(resource_name, parent, **extra)

    @property
    def _high_availability(self) -> bool:
        return self._settings.options.high_availability.enabled

    # --- the resources -------------------------------------------------------------------------
    def _look_up(self) -> tuple[pulumi.Input[str], pulumi.Input[str]]:
        """What AWS says before anything is made: the type's memory (the table size, a plain
        value the alarms' thresholds and the user data need), its architecture, the region;
        returns (AMI id, where it comes from)."""
        instance = self._settings.options.instance
        invoke = pulumi.InvokeOutputOptions(parent=self)
        instance_type_info = aws.ec2.get_instance_type(
            instance_type=instance.instance_type, opts=pulumi.InvokeOptions(parent=self))
        architecture = architecture_from_aws(instance_type_info.supported_architectures,
                                             instance.architecture)
        # the table size the kernel gets and the alarm measures against: one number
        memory = looked_up(instance_type_info.memory_size, "aws.ec2.getInstanceType",
                           "memorySize", instance.instance_type)
        self._table_size = monitoring.conntrack_max(
            int(memory), instance.tuning.values.get("max_entries"), instance.public_addresses)
        # NAT_PUBLIC_ADDRESSES only where it says more than the default: user data (and so
        # the NATs) of stacks with one address stay as they were
        self._tuning = TuningOverrides.from_values(
            {**instance.tuning.values, "max_entries": self._table_size,
             **({"public_addresses": instance.public_addresses}
                if instance.public_addresses > 1 else {})})
        self._region = aws.get_region_output(opts=invoke).region
        self._warn_of_the_quota()
        if instance.ami_id is not None:
            return instance.ami_id, instance.ami_id
        parameter = al2023_ssm_parameter(architecture)
        return aws.ssm.get_parameter_output(name=parameter, opts=invoke).value, \
            f"ssm:{parameter}"

    def _build(self) -> None:
        name, settings = self._name, self._settings
        options = settings.options
        ami_id, ami_source = self._look_up()
        security_group = self._security_group()
        role = self._role()
        profile = aws.iam.InstanceProfile(f"{name}-profile", role=role.name,
                                          opts=self._options(f"{name}-profile", role)) \
            if role else None

        def launch_spec(user_data: pulumi.Input[str]) -> LaunchSpec:
            instance = options.instance
            return LaunchSpec(ami_id=ami_id, pinned_ami=instance.ami_id is not None,
                              instance_type=instance.instance_type, key_name=instance.key_name,
                              instance_profile=profile.name if profile else None,
                              user_data=user_data,
                              burstable=is_burstable(instance.instance_type))

        # one component per AZ, so `pulumi stack` reads like the topology
        zones = {zone: NatZone(self._family, zone, self) for zone in settings.availability_zones}
        addresses = options.instance.public_addresses
        own = self._own_elastic_ips or {}
        subnets = self._wiring.public_subnet_ids
        if self._high_availability:
            assert role is not None
            keep = options.high_availability.keep_connections
            interfaces = {zone: zones[zone].add_interface(subnets[zone], security_group.id,
                                                          addresses, own.get(zone), keep)
                          for zone in settings.nat_zones}
            self._handover = {zone: (zones[zone].standby_ip, zones[zone].allocation_id)
                              for zone in settings.nat_zones} if keep else {}
            self._spare = self._spare_elastic_ip() if keep else None
            self._agent_bucket = self._agent_object() if keep else None
            policy = self._agent_policy(role, [e.id for e in interfaces.values()])
            release_and_user_data = self._agent_user_data(ami_source, interfaces)
            for zone in settings.nat_zones:
                zones[zone].launch_group(launch_spec(release_and_user_data.apply(lambda r: r[1])),
                                         subnets[zone], self._ha_group,
                                         release_and_user_data.apply(lambda r: r[0]), [policy])
        else:
            user_data = self._region.apply(lambda region: encode_user_data(render_user_data(
                settings.vpc_cidrs, self._tuning, self._metrics_only_agent(region))))
            for zone in settings.nat_zones:
                zones[zone].launch_instance(launch_spec(user_data), subnets[zone],
                                            security_group.id,
                                            options.instance.use_elastic_ip, addresses,
                                            own.get(zone))
        nat_zones = {zone: zones[zone] for zone in settings.nat_zones}
        for zone in settings.availability_zones:
            target = nat_zones[settings.nat_zone_for(zone)].interface_id
            assert target is not None
            zones[zone].add_routes(self._wiring.private_route_table_ids[zone], target,
                                   agents_move_them=self._high_availability)
        self.security_group_id = security_group.id
        self.instance_role_name = role.name if role else pulumi.Output.from_input("")
        self._outputs(nat_zones)
        self._monitoring(nat_zones)
        for zone_component in zones.values():
            zone_component.finish()
        self.register_outputs({key: getattr(self, key) for key in OUTPUTS})

    def _outputs(self, nat_zones: Mapping[str, NatZone]) -> None:
        settings = self._settings

        def outputs(pick: Any) -> pulumi.Output[dict[str, Any]]:
            return output_map({zone: pick(z) for zone, z in nat_zones.items()
                               if pick(z) is not None})
        self.nat_instance_ids = outputs(lambda z: z.instance_id)
        self.nat_network_interface_ids = outputs(lambda z: z.interface_id)
        self.nat_public_ips = outputs(lambda z: z.public_ip)
        self.nat_public_ip_lists = outputs(lambda z: z.public_ips)
        self.nat_zone_for_private_route_tables = output_map(
            {zone: settings.nat_zone_for(zone) for zone in settings.availability_zones})
        self.auto_scaling_group_names = outputs(lambda z: z.group_name)
        self.connection_table_sizes = pulumi.Output.from_input(
            dict.fromkeys(settings.nat_zones, self._table_size))

    def _warn_of_the_quota(self) -> None:
        """Before anything is allocated: the stack's Elastic IPs and the account's others past
        the default quota (a raised quota is not visible without Service Quotas rights)."""
        settings = self._settings
        instance = settings.options.instance
        if not instance.use_elastic_ip or instance.elastic_ip_allocation_ids:
            return  # none to allocate
        invoke = pulumi.InvokeOptions(parent=self)
        everyone = aws.ec2.get_eips(opts=invoke)
        ours = aws.ec2.get_eips(tags={TAG_COMPONENT: self._family.tags_of("")[TAG_COMPONENT]},
                                opts=invoke)
        others = len(set(everyone.allocation_ids or []) - set(ours.allocation_ids or []))
        region = aws.get_region(opts=invoke).region or ""
        warning = quota_warning(len(settings.nat_zones) * instance.public_addresses, others,
                                region)
        if warning is not None:
            pulumi.log.warn(warning, resource=self)

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
                                 self._high_availability,
                                 settings.options.high_availability.keep_connections):
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

    # --- high availability ---------------------------------------------------------------------
    def _route_tables(self) -> list[tuple[pulumi.Input[str], str]]:
        """(route table, AZ whose NAT owns it) for every private route table."""
        settings = self._settings
        return [(table, settings.nat_zone_for(zone)) for zone in settings.availability_zones
                for table in self._wiring.private_route_table_ids[zone]]

    def _agent_policy(self, role: aws.iam.Role,
                      interfaces: Sequence[pulumi.Output[str]]) -> aws.iam.RolePolicy:
        """What the agents may do: move this stack's routes, replace this stack's NATs, and
        with keepConnections move this stack's Elastic IPs between its interfaces."""
        name = self._name
        invoke = pulumi.InvokeOutputOptions(parent=self)
        allocations = [pulumi.Output.from_input(allocation)
                       for _, allocation in self._handover.values()]
        if self._spare is not None:
            allocations.append(self._spare.allocation_id)
        tables = [pulumi.Output.from_input(table) for table, _ in self._route_tables()]
        agent_arn: pulumi.Input[str] = ""
        if self._agent_bucket is not None:
            agent_arn = pulumi.Output.concat(self._agent_bucket.arn, "/", self._agent_key[0])
        return aws.iam.RolePolicy(
            f"{name}-ha", role=role.id,
            policy=pulumi.Output.all(
                aws.get_partition_output(opts=invoke).partition,
                aws.get_region_output(opts=invoke).region,
                aws.get_caller_identity_output(opts=invoke).account_id,
                self._wiring.vpc_id, self._ha_group, tables, allocations,
                interfaces if allocations else [], agent_arn).apply(
                lambda values: json.dumps(policy_document(
                    values[0], values[1], values[2], values[5], values[4], values[3],
                    values[6], values[7], values[8]))),
            opts=self._options(f"{name}-ha", role))

    def _agent_user_data(self, ami_source: pulumi.Input[str],
                         interfaces: Mapping[str, aws.ec2.NetworkInterface]
                         ) -> pulumi.Output[tuple[str, str]]:
        """(release, user data) of every AZ's launch template: the agents are told every
        NAT's interface and every route table."""
        tables = self._route_tables()
        handover = {zone: pulumi.Output.all(*pair) for zone, pair in self._handover.items()}
        agent = pulumi.Output.all(
            self._region, ami_source,
            {zone: pulumi.Output.all(e.id, e.private_ip) for zone, e in interfaces.items()},
            [pulumi.Output.from_input(table) for table, _ in tables], handover,
            self._spare.allocation_id if self._spare is not None else "",
            self._agent_bucket.bucket if self._agent_bucket is not None else "")
        return agent.apply(lambda values: self._user_data(
            values[0], values[1], values[2], [(table, owner) for table, (_, owner) in
                                             zip(values[3], tables, strict=True)],
            values[4], values[5], values[6]))

    def _agent_object(self) -> aws.s3.Bucket:
        """keepConnections: the agent no longer fits EC2's 16 KB of user data beside the
        bootstrap script, so it is an object of a private bucket of the stack's; user data
        carries a loader and the agent's SHA-256 (nat/instance/loader.py)."""
        name = self._name
        bucket = aws.s3.Bucket(f"{name}-agent", bucket_prefix="nat-agent-", force_destroy=True,
                               tags=self._tags(f"{name}-agent"),
                               opts=self._options(f"{name}-agent", self))
        aws.s3.BucketPublicAccessBlock(
            f"{name}-agent-private", bucket=bucket.id, block_public_acls=True,
            block_public_policy=True, ignore_public_acls=True, restrict_public_buckets=True,
            opts=self._options(f"{name}-agent-private", bucket))
        text = agent_script(handover=True)
        self._agent_key = agent_object_key(text)  # (key, SHA-256): the policy and user data
        self._agent_upload = aws.s3.BucketObjectv2(
            f"{name}-agent-object", bucket=bucket.id, key=self._agent_key[0], content=text,
            content_type="text/x-python", opts=self._options(f"{name}-agent-object", bucket))
        return bucket

    def _spare_elastic_ip(self) -> aws.ec2.Eip:
        """keepConnections: the address a NAT borrows while another NAT carries its AZ's (it
        boots and proves its data path on it before failback)."""
        eip_name = f"{self._name}-eip-spare"
        return aws.ec2.Eip(eip_name, domain="vpc", tags=self._family.tags_of(eip_name),
                           opts=self._options(eip_name, self))

    def _user_data(self, region: str, ami_source: str,
                   interfaces: Mapping[str, Sequence[str]],
                   tables: Sequence[tuple[str, str]],
                   handover: Mapping[str, Sequence[str]] | None = None,
                   spare: str = "", bucket: str = "") -> tuple[str, str]:
        """(release, user data): the release fingerprints the rest of the launch template."""
        settings = self._settings
        instance = settings.options.instance
        nats = {zone: (pair[0], pair[1]) for zone, pair in interfaces.items()}

        def rendered(release: str) -> str:
            return render_user_data(settings.vpc_cidrs, self._tuning, agent_settings(
                region, nats, tables, settings.options.high_availability, release,
                self._metrics_settings(),
                {zone: (pair[0], pair[1]) for zone, pair in (handover or {}).items()}, spare),
                agent_object=AgentObject(bucket, self._agent_key[0], region, self._agent_key[1])
                if bucket else None)
        release = release_of(rendered(""), ami_source, instance.instance_type,
                             instance.key_name)
        return release, encode_user_data(rendered(release))

    # --- monitoring ----------------------------------------------------------------------------
    def _monitoring(self, nat_zones: Mapping[str, NatZone]) -> None:
        """Per AZ, the alarms (under the AZ's component); the stack's topic and dashboard."""
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
        # the dimension of EC2's own metrics (CPU credits) for each AZ's NAT
        credit_dimensions: dict[str, tuple[str, pulumi.Output[str]]] = {}
        for zone, nat in nat_zones.items():
            if nat.group_name is not None:
                credit_dimensions[zone] = ("AutoScalingGroupName", nat.group_name)
            else:
                assert nat.instance_id is not None
                credit_dimensions[zone] = ("InstanceId", nat.instance_id)
        if watch.create_alarm_topic:
            topic = aws.sns.Topic(f"{name}-alarms", tags=self._tags(f"{name}-alarms"),
                                  opts=self._options(f"{name}-alarms", self))
            self.alarm_topic_arn = topic.arn
        elif watch.alarm_topic_arn:
            self.alarm_topic_arn = pulumi.Output.from_input(watch.alarm_topic_arn)
        actions = [self.alarm_topic_arn] if watch.alarm_topic_arn or watch.create_alarm_topic \
            else []
        if watch.alarms:
            for zone, nat in nat_zones.items():
                nat.add_alarms(monitoring.alarm_specs(
                    zone, self._group, watch.namespace, watch.publish_interval_seconds,
                    self._table_size, burstable, credit_dimensions[zone]), actions)
            self.alarm_names = output_map({zone: nat.alarm_names
                                           for zone, nat in nat_zones.items()})
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
